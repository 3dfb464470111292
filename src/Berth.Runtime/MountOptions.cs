using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime;

/// <summary>OCI mount options → mount(2) flags, propagation flags and filesystem data, as runc
/// and mount(8) read them.</summary>
public sealed record ParsedMount(ulong Flags, ulong ClearFlags, ulong Propagation, string Data, bool Bind, bool Recursive, string? Unsupported);

public static class MountOptions
{
    static readonly Dictionary<string, (bool Clear, ulong Flag)> Flags = new()
    {
        ["async"] = (true, MS_SYNCHRONOUS), ["atime"] = (true, MS_NOATIME), ["defaults"] = (false, 0),
        ["dev"] = (true, MS_NODEV), ["diratime"] = (true, MS_NODIRATIME), ["dirsync"] = (false, MS_DIRSYNC),
        ["exec"] = (true, MS_NOEXEC), ["mand"] = (false, MS_MANDLOCK), ["noatime"] = (false, MS_NOATIME),
        ["nodev"] = (false, MS_NODEV), ["nodiratime"] = (false, MS_NODIRATIME), ["noexec"] = (false, MS_NOEXEC),
        ["nomand"] = (true, MS_MANDLOCK), ["norelatime"] = (true, MS_RELATIME), ["nostrictatime"] = (true, MS_STRICTATIME),
        ["nosuid"] = (false, MS_NOSUID), ["relatime"] = (false, MS_RELATIME), ["remount"] = (false, MS_REMOUNT),
        ["ro"] = (false, MS_RDONLY), ["rw"] = (true, MS_RDONLY), ["strictatime"] = (false, MS_STRICTATIME),
        ["suid"] = (true, MS_NOSUID), ["sync"] = (false, MS_SYNCHRONOUS), ["lazytime"] = (false, MS_LAZYTIME),
        ["nolazytime"] = (true, MS_LAZYTIME), ["nosymfollow"] = (false, MS_NOSYMFOLLOW), ["symfollow"] = (true, MS_NOSYMFOLLOW),
    };

    public static readonly Dictionary<string, ulong> Propagation = new()
    {
        ["private"] = MS_PRIVATE, ["rprivate"] = MS_PRIVATE | MS_REC, ["shared"] = MS_SHARED, ["rshared"] = MS_SHARED | MS_REC,
        ["slave"] = MS_SLAVE, ["rslave"] = MS_SLAVE | MS_REC, ["unbindable"] = MS_UNBINDABLE, ["runbindable"] = MS_UNBINDABLE | MS_REC,
    };

    static readonly HashSet<string> Refused = ["idmap", "ridmap", "tmpcopyup", "rro", "rrw", "rnosuid", "rsuid", "rnodev",
        "rdev", "rnoexec", "rexec", "rnoatime", "ratime", "rnodiratime", "rdiratime", "rrelatime", "rnorelatime",
        "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow"];

    public static ParsedMount Parse(IEnumerable<string>? options)
    {
        ulong flags = 0, clear = 0, prop = 0;
        bool bind = false, rec = false;
        string? unsupported = null;
        var data = new List<string>();
        foreach (var o in options ?? [])
        {
            if (o is "bind") { bind = true; continue; }
            if (o is "rbind") { bind = true; rec = true; continue; }
            if (Flags.TryGetValue(o, out var f))
            {
                if (f.Clear) { flags &= ~f.Flag; clear |= f.Flag; }
                else { flags |= f.Flag; clear &= ~f.Flag; }
                continue;
            }
            if (Propagation.TryGetValue(o, out var p)) { prop |= p; continue; }
            if (Refused.Contains(o)) { unsupported ??= o; continue; }
            data.Add(o);
        }
        return new ParsedMount(flags, clear, prop, string.Join(',', data), bind, rec, unsupported);
    }
}
