namespace Berth.Linux.Cgroups;

/// <summary>
/// Turns an OCI cgroupsPath into a path inside each hierarchy, following runc's cgroupfs rules.
/// </summary>
public static class CgroupPaths
{
    /// <summary>
    /// Validates and cleans <paramref name="cgroupsPath"/> (falling back to <paramref name="defaultPath"/>
    /// when it is empty). Returns the cleaned path and whether it was absolute. Systemd-style
    /// "slice:prefix:name" paths are refused: Berth only implements the cgroupfs driver.
    /// </summary>
    public static (string Path, bool Absolute) Parse(string? cgroupsPath, string defaultPath, string systemdProbe = "/run/systemd/system")
    {
        string p = string.IsNullOrEmpty(cgroupsPath) ? defaultPath : cgroupsPath;
        if (string.IsNullOrEmpty(p)) throw new CgroupException("empty cgroups path");
        bool absolute = p[0] == '/';
        if (!absolute && p.Split(':').Length == 3)
        {
            throw new CgroupException(Directory.Exists(systemdProbe)
                ? $"cgroups path \"{p}\" requests the systemd cgroup driver, which Berth does not implement; use a cgroupfs path"
                : "systemd cgroup driver requested but systemd is not running");
        }
        var parts = new List<string>();
        foreach (var c in p.Split('/'))
        {
            if (c.Length == 0 || c == ".") continue;
            if (c == "..") throw new CgroupException($"invalid cgroups path \"{p}\": \"..\" is not allowed");
            if (c.Contains('\0')) throw new CgroupException($"invalid cgroups path \"{p}\"");
            parts.Add(c);
        }
        if (parts.Count == 0) throw new CgroupException($"invalid cgroups path \"{p}\": it names the root cgroup");
        return ((absolute ? "/" : "") + string.Join('/', parts), absolute);
    }

    /// <summary>
    /// The hierarchy path for a cleaned cgroups path, given the caller's cgroup in that hierarchy.
    /// Absolute paths are taken from the hierarchy's root, as runc does (podman's
    /// "/libpod_parent/libpod-ID" must land at the same place whoever calls); relative paths go
    /// under the caller's cgroup (that is how Berth's default path nests under a non-root memory
    /// cgroup such as this machine's /process_api/…).
    /// </summary>
    public static string InHierarchy(string path, bool absolute, string callerPath)
    {
        if (absolute) return path;
        string caller = callerPath.Length > 1 ? callerPath.TrimEnd('/') : "/";
        return caller == "/" ? "/" + path : caller + "/" + path;
    }

    /// <summary>"/a/b/c" → ["/a", "/a/b", "/a/b/c"].</summary>
    internal static List<string> Levels(string path)
    {
        var levels = new List<string>();
        int i = 0;
        while ((i = path.IndexOf('/', i + 1)) > 0) levels.Add(path[..i]);
        levels.Add(path);
        return levels;
    }

    internal static string Parent(string path)
    {
        int i = path.LastIndexOf('/');
        return i <= 0 ? "/" : path[..i];
    }
}
