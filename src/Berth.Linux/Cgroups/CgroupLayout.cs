namespace Berth.Linux.Cgroups;

/// <summary>How the host mounts cgroups.</summary>
public enum CgroupMode
{
    /// <summary>Only cgroup v1 hierarchies (a cgroup2 mount, if any, owns no controllers and is ignored).</summary>
    V1,
    /// <summary>v1 hierarchies plus a cgroup2 mount that owns the controllers not bound to v1.</summary>
    Hybrid,
    /// <summary>Only the unified cgroup2 hierarchy.</summary>
    V2,
}

/// <summary>
/// One mounted cgroup hierarchy: a v1 hierarchy (one or more controllers, or a named one such as
/// name=systemd) or the v2 unified hierarchy.
/// </summary>
public sealed class CgroupHierarchy
{
    /// <summary>Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory.</summary>
    public required string MountPoint { get; init; }

    /// <summary>The hierarchy path shown at the mount point (mountinfo's root field, usually "/").</summary>
    public required string MountRoot { get; init; }

    /// <summary>Controllers of this hierarchy ("cpu", "cpuacct"; for v2 those in cgroup.controllers).
    /// A named v1 hierarchy has none.</summary>
    public required IReadOnlyList<string> Controllers { get; init; }

    /// <summary>The v1 name= option of a named hierarchy ("systemd"), else null.</summary>
    public string? Name { get; init; }

    /// <summary>True for the cgroup2 (unified) hierarchy.</summary>
    public required bool IsUnified { get; init; }

    /// <summary>The calling process's cgroup in this hierarchy, from /proc/self/cgroup ("/" for the root).</summary>
    public required string ProcessPath { get; init; }

    /// <summary>The directory of a hierarchy path (absolute within the hierarchy).</summary>
    public string DirOf(string cgroupPath)
    {
        string rel = cgroupPath;
        if (MountRoot != "/")
        {
            // The mount shows only a subtree: strip its root. A path outside it is not reachable
            // through this mount; treat the mount point as its root (what a cgroup namespace shows).
            if (rel == MountRoot) rel = "/";
            else if (rel.StartsWith(MountRoot + "/", StringComparison.Ordinal)) rel = rel[MountRoot.Length..];
        }
        return rel == "/" ? MountPoint : MountPoint.TrimEnd('/') + rel;
    }

    public bool Has(string controller) => Controllers.Contains(controller);

    public override string ToString() =>
        IsUnified ? $"cgroup2 at {MountPoint}" : $"cgroup v1 {string.Join(',', Name is null ? Controllers : [$"name={Name}"])} at {MountPoint}";
}

/// <summary>
/// The cgroup layout seen by the calling process: the mode, the mounted hierarchies and, for each
/// controller, which hierarchy handles it. Built from /proc/self/mountinfo and /proc/self/cgroup.
/// </summary>
public sealed class CgroupLayout
{
    public CgroupMode Mode { get; }

    /// <summary>Every mounted hierarchy the process belongs to (v1 ones, named ones, and the unified one).</summary>
    public IReadOnlyList<CgroupHierarchy> Hierarchies { get; }

    /// <summary>The cgroup2 hierarchy in hybrid and v2 mode, else null.</summary>
    public CgroupHierarchy? Unified { get; }

    /// <summary>The hierarchies Berth creates cgroups in: v1 hierarchies with controllers, plus the
    /// unified one (hybrid, v2). Named v1 hierarchies (name=systemd) are left alone.</summary>
    public IReadOnlyList<CgroupHierarchy> Managed { get; }

    public CgroupLayout(CgroupMode mode, IReadOnlyList<CgroupHierarchy> hierarchies)
    {
        Mode = mode;
        Hierarchies = hierarchies;
        Unified = mode == CgroupMode.V1 ? null : hierarchies.FirstOrDefault(h => h.IsUnified);
        Managed = hierarchies.Where(h => h.IsUnified ? mode != CgroupMode.V1 : h.Controllers.Count > 0).ToList();
    }

    /// <summary>The hierarchy that handles a controller (e.g. "memory", "hugetlb"), or null if none does.
    /// In hybrid mode a controller bound to the unified mount is handled the v2 way.</summary>
    public CgroupHierarchy? For(string controller)
    {
        foreach (var h in Managed)
            if (!h.IsUnified && h.Has(controller)) return h;
        return Unified is { } u && u.Has(controller) ? u : null;
    }

    /// <summary>Reads the layout of the calling process (paths injectable for tests).</summary>
    public static CgroupLayout Discover(string mountinfoPath = "/proc/self/mountinfo", string cgroupPath = "/proc/self/cgroup") =>
        Parse(CgroupFs.Read(mountinfoPath), CgroupFs.Read(cgroupPath), mountinfoPath, cgroupPath);

    /// <summary>Builds a layout from the text of a mountinfo and a /proc/PID/cgroup file.</summary>
    public static CgroupLayout Parse(string mountinfo, string procCgroup, string mountinfoName = "mountinfo", string cgroupName = "cgroup")
    {
        var mounts = ParseMountinfo(mountinfo, mountinfoName);
        var hierarchies = new List<CgroupHierarchy>();
        bool anyV1Controller = false;
        CgroupHierarchy? unified = null;

        foreach (var rawLine in procCgroup.Split('\n'))
        {
            string line = rawLine.Trim();
            if (line.Length == 0) continue;
            // "ID:CONTROLLERS:PATH"; the path may itself contain ':'.
            int a = line.IndexOf(':'), b = a < 0 ? -1 : line.IndexOf(':', a + 1);
            if (a < 0 || b < 0) throw new CgroupException($"{cgroupName}: malformed line \"{line}\"");
            string id = line[..a], list = line[(a + 1)..b], path = line[(b + 1)..];
            if (path.EndsWith(" (deleted)", StringComparison.Ordinal)) path = path[..^" (deleted)".Length];

            if (id == "0" && list.Length == 0)
            {
                var m = mounts.FirstOrDefault(m => m.FsType == "cgroup2" && m.MountPoint == "/sys/fs/cgroup")
                        ?? mounts.FirstOrDefault(m => m.FsType == "cgroup2");
                if (m is null) continue; // v2 entry present but not mounted: nothing to manage there
                string ctl = CgroupFs.TryRead(Path.Combine(m.MountPoint, "cgroup.controllers")) ?? "";
                unified = new CgroupHierarchy
                {
                    MountPoint = m.MountPoint, MountRoot = m.Root, IsUnified = true, ProcessPath = path,
                    Controllers = ctl.Split(' ', StringSplitOptions.RemoveEmptyEntries),
                };
                hierarchies.Add(unified);
                continue;
            }

            var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries);
            // A v1 mount belongs to this hierarchy when its super options name all of its controllers.
            var mount = mounts.FirstOrDefault(m => m.FsType == "cgroup" && names.All(n => m.SuperOptions.Contains(n)));
            if (mount is null) continue; // hierarchy not mounted in this mount namespace
            string? name = names.FirstOrDefault(n => n.StartsWith("name=", StringComparison.Ordinal))?[5..];
            var controllers = names.Where(n => !n.Contains('=')).ToArray();
            anyV1Controller |= controllers.Length > 0;
            hierarchies.Add(new CgroupHierarchy
            {
                MountPoint = mount.MountPoint, MountRoot = mount.Root, IsUnified = false, ProcessPath = path,
                Controllers = controllers, Name = name,
            });
        }

        if (hierarchies.Count == 0)
            throw new CgroupException($"no mounted cgroup hierarchy found ({mountinfoName}, {cgroupName})");
        var mode = !anyV1Controller ? CgroupMode.V2
            : unified is not null && unified.Controllers.Count > 0 ? CgroupMode.Hybrid
            : CgroupMode.V1;
        if (mode == CgroupMode.V2 && unified is null)
            throw new CgroupException($"no cgroup controllers are mounted ({mountinfoName}, {cgroupName})");
        return new CgroupLayout(mode, hierarchies);
    }

    sealed record Mount(string Root, string MountPoint, string FsType, HashSet<string> SuperOptions);

    /// <summary>Parses the cgroup/cgroup2 lines of a mountinfo file.</summary>
    static List<Mount> ParseMountinfo(string text, string what)
    {
        var result = new List<Mount>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
            var f = line.Split(' ');
            int sep = f.Length > 6 ? Array.IndexOf(f, "-", 6) : -1;
            if (sep < 0 || sep + 1 >= f.Length)
                throw new CgroupException($"{what}: malformed line \"{line}\"");
            string fstype = f[sep + 1];
            if (fstype != "cgroup" && fstype != "cgroup2") continue;
            string superOpts = sep + 3 < f.Length ? f[sep + 3] : "";
            result.Add(new Mount(Unescape(f[3]), Unescape(f[4]), fstype, [.. superOpts.Split(',')]));
        }
        return result;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo octal.</summary>
    static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new System.Text.StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s[at] is >= '0' and <= '7' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
}
