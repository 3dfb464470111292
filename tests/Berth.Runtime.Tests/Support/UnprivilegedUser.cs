using System.Diagnostics;

namespace Berth.Runtime.Tests.Support;

/// <summary>A throwaway unprivileged user for rootless tests: created with useradd, given one
/// subordinate uid and gid range (usermod --add-subuids/--add-subgids, so /etc/subuid and /etc/subgid
/// are edited under shadow's lock, never rewritten by hand), its own XDG_RUNTIME_DIR, and removed
/// (ranges, user, directory) on dispose.</summary>
public sealed class UnprivilegedUser : IDisposable
{
    public string Name { get; }
    public uint Uid { get; }
    public uint Gid { get; }
    /// <summary>First id of the subordinate range (uid and gid alike), <see cref="SubCount"/> long.</summary>
    public uint SubStart { get; }
    public const uint SubCount = 65536;
    public string RuntimeDir { get; }

    public UnprivilegedUser()
    {
        Name = "btrl" + Guid.NewGuid().ToString("N")[..8];
        // A range far from the usual 100000.. so that tests of other areas do not collide with it.
        SubStart = (uint)(1_000_000 + Random.Shared.Next(0, 20_000) * (long)SubCount);
        Run("useradd", "-M", "-s", "/bin/sh", Name);
        try
        {
            Run("usermod", "--add-subuids", $"{SubStart}-{SubStart + SubCount - 1}", "--add-subgids", $"{SubStart}-{SubStart + SubCount - 1}", Name);
            Uid = uint.Parse(Output("id", "-u", Name));
            Gid = uint.Parse(Output("id", "-g", Name));
            RuntimeDir = Path.Combine(Path.GetTempPath(), "berth-xdg-" + Name);
            Directory.CreateDirectory(RuntimeDir);
            Own(RuntimeDir);
            File.SetUnixFileMode(RuntimeDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>What runs berth-runc as this user: setpriv drops to its ids (no supplementary groups)
    /// and env sets XDG_RUNTIME_DIR, as a login session would.</summary>
    public IReadOnlyList<string> Prefix =>
        ["/usr/bin/setpriv", $"--reuid={Uid}", $"--regid={Gid}", "--clear-groups", "/usr/bin/env", $"XDG_RUNTIME_DIR={RuntimeDir}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"];

    public void Own(string path) => Run("chown", $"{Uid}:{Gid}", path);

    public void OwnTree(string path) => Run("chown", "-R", $"{Uid}:{Gid}", path);

    public void Dispose()
    {
        try { Run("usermod", "--del-subuids", $"{SubStart}-{SubStart + SubCount - 1}", "--del-subgids", $"{SubStart}-{SubStart + SubCount - 1}", Name); }
        catch (InvalidOperationException) { }
        try { Run("userdel", Name); } catch (InvalidOperationException) { }
        if (RuntimeDir is not null && Directory.Exists(RuntimeDir)) Directory.Delete(RuntimeDir, true);
    }

    static void Run(string file, params string[] args) => Output(file, args);

    static string Output(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd();
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {e}");
        return o.Trim();
    }
}
