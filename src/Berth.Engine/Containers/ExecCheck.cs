using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>
/// What an exec's process would fail on before it runs, checked in the running container's own view
/// of its files (/proc/PID/root, every mount of the container, paths resolved in-root) the way runc's
/// exec checks them: the working directory, then the command looked up as Go's exec.LookPath does
/// (a name with a slash is stat'ed, else each $PATH directory is searched for an executable regular
/// file). The messages are runc's, which dockerd passes on; finding the failure here, before the
/// runtime starts, keeps the runtime's own error line out of the process's stderr.
/// </summary>
public static class ExecCheck
{
    /// <summary>runc's error for a process that cannot start in the container whose init is
    /// <paramref name="pid"/>, or null when it can (or the container's root cannot be opened: the
    /// runtime then decides).</summary>
    public static string? Problem(int pid, Berth.Oci.Runtime.Process proc)
    {
        if (pid <= 0 || proc.Args is not { Count: > 0 } args) return null;
        Fd root;
        try { root = Sys.Open($"/proc/{pid}/root", O_PATH | O_DIRECTORY); }
        catch (SyscallException) { return null; }
        using (root)
        {
            var cwd = string.IsNullOrEmpty(proc.Cwd) ? "/" : proc.Cwd;
            var (cwdStat, cwdErr) = Stat(root, cwd);
            if (cwdStat is null || !cwdStat.Value.IsDirectory)
                return $"chdir to cwd (\"{cwd}\") set in config.json failed: {cwdErr ?? "not a directory"}";
            var file = args[0];
            if (file.Contains('/'))
            {
                var (st, err) = Stat(root, file.StartsWith('/') ? file : cwd.TrimEnd('/') + "/" + file);
                if (st is null) return $"exec: \"{file}\": stat {file}: {err}";
                return IsExecutable(st.Value) ? null : $"exec: \"{file}\": permission denied";
            }
            var path = proc.Env?.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? "";
            foreach (var dir in path.Split(':'))
            {
                var d = dir.Length == 0 ? cwd : dir.StartsWith('/') ? dir : cwd.TrimEnd('/') + "/" + dir;
                if (Stat(root, d.TrimEnd('/') + "/" + file).Stat is { } st && IsExecutable(st)) return null;
            }
            return $"exec: \"{file}\": executable file not found in $PATH";
        }
    }

    static bool IsExecutable(FileStat st) => !st.IsDirectory && (st.Mode & 0x49 /* 0111 */) != 0;

    /// <summary>stat(2) of a path inside the root, following symlinks in-root; on failure Go's
    /// lower-case errno text.</summary>
    static (FileStat? Stat, string? Error) Stat(Fd root, string path)
    {
        try
        {
            using var fd = RootfsPath.TryOpen(root, path);
            if (fd is null) return (null, "no such file or directory");
            return FileAt.TryStat(fd, "") is { } st ? (st, null) : (null, "no such file or directory");
        }
        catch (SyscallException e) { return (null, GoErrno(e.Errno)); }
    }

    static string GoErrno(int errno)
    {
        var s = Errno.Describe(errno);
        return s.Length > 0 ? char.ToLowerInvariant(s[0]) + s[1..] : s;
    }
}
