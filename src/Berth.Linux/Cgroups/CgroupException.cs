namespace Berth.Linux.Cgroups;

/// <summary>
/// A cgroup operation that could not be carried out. The message is one line starting with
/// "cgroup: " and names the setting or file; <see cref="Errno"/> is set when the kernel refused.
/// </summary>
public sealed class CgroupException : Exception
{
    /// <summary>The cgroup file or directory involved, when there is one.</summary>
    public string? Path { get; }

    /// <summary>The errno of a failed system call, or 0 when the failure is not a kernel error.</summary>
    public int Errno { get; }

    public CgroupException(string message, string? path = null, int errno = 0, Exception? inner = null)
        : base(message.StartsWith("cgroup: ", StringComparison.Ordinal) ? message : "cgroup: " + message, inner)
    {
        Path = path;
        Errno = errno;
    }
}
