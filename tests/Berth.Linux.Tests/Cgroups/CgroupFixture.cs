using Berth.Linux.Cgroups;

namespace Berth.Linux.Tests.Cgroups;

/// <summary>
/// A temp directory that imitates cgroup mounts with regular files, plus fake mountinfo and
/// /proc/self/cgroup files. Records every write the manager makes (path relative to the root).
/// </summary>
sealed class CgroupFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("berth-cgfix-").FullName;
    public List<(string Path, string Value)> Writes { get; } = new();

    public CgroupManagerOptions Options(Action<string, DeviceFilterProgram>? attach = null) => new()
    {
        OnWrite = (p, v) => Writes.Add((Rel(p), v)),
        SystemdProbe = Path.Combine(Root, "run-systemd-system"),
        FreezeTimeout = TimeSpan.FromSeconds(1),
        AttachDeviceFilter = attach,
    };

    public string Rel(string path) => path.StartsWith(Root, StringComparison.Ordinal) ? path[Root.Length..] : path;

    public string P(string rel) => Path.Combine(Root, rel.TrimStart('/'));

    /// <summary>Creates a file (and its directories) with the given content.</summary>
    public void File(string rel, string content = "")
    {
        string p = P(rel);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        System.IO.File.WriteAllText(p, content);
    }

    public void Files(string dir, params string[] names)
    {
        foreach (var n in names) File(dir + "/" + n);
    }

    public string Read(string rel) => System.IO.File.ReadAllText(P(rel));

    /// <summary>v1 hierarchies like this machine's; <paramref name="cpuAcctTogether"/> co-mounts
    /// cpu,cpuacct; <paramref name="unifiedControllers"/> non-null adds a cgroup2 mount at
    /// ROOT/unified with those controllers (hybrid when non-empty).</summary>
    public CgroupLayout V1(string memoryPath = "/process_api/abc", bool cpuAcctTogether = false, string? unifiedControllers = null)
    {
        var mi = new List<string> { $"31 23 0:28 / {Root} rw,relatime - tmpfs tmpfs rw,mode=755" };
        var cg = new List<string>();
        int id = 32;
        void V1Mount(string dirName, string opts, int hid, string path)
        {
            Directory.CreateDirectory(P(dirName));
            mi.Add($"{id++} 31 0:{id} / {Root}/{dirName} rw,nosuid,nodev,noexec,relatime shared:{id} - cgroup cgroup rw,{opts}");
            cg.Add($"{hid}:{opts}:{path}");
        }
        if (cpuAcctTogether) V1Mount("cpu,cpuacct", "cpu,cpuacct", 2, "/");
        else { V1Mount("cpu", "cpu", 1, "/"); V1Mount("cpuacct", "cpuacct", 2, "/"); }
        V1Mount("cpuset", "cpuset", 3, "/");
        V1Mount("memory", "memory", 4, memoryPath);
        V1Mount("devices", "devices", 5, "/");
        V1Mount("freezer", "freezer", 6, "/");
        V1Mount("blkio", "blkio", 7, "/");
        V1Mount("pids", "pids", 8, "/");
        Directory.CreateDirectory(P("systemd"));
        mi.Add($"{id++} 31 0:99 / {Root}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd");
        cg.Add("9:name=systemd:/");
        File("cpuset/cpuset.cpus", "0-3\n");
        File("cpuset/cpuset.mems", "0\n");
        if (unifiedControllers is not null)
        {
            File("unified/cgroup.controllers", unifiedControllers + "\n");
            File("unified/cgroup.subtree_control", "");
            mi.Add($"{id++} 31 0:98 / {Root}/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate");
            cg.Add("0::/");
        }
        return Write(mi, cg);
    }

    /// <summary>Pure v2 at ROOT/cg2 (the caller in <paramref name="callerPath"/>).</summary>
    public CgroupLayout V2(string callerPath = "/user.slice/session-1.scope", string controllers = "cpuset cpu io memory hugetlb pids rdma misc")
    {
        File("cg2/cgroup.controllers", controllers + "\n");
        File("cg2/cgroup.subtree_control", "");
        var mi = new List<string>
        {
            $"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
            $"35 22 0:30 / {Root}/cg2 rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot",
        };
        return Write(mi, [$"0::{callerPath}"]);
    }

    CgroupLayout Write(List<string> mountinfo, List<string> cgroup)
    {
        File("proc/mountinfo", string.Join('\n', mountinfo) + "\n");
        File("proc/cgroup", string.Join('\n', cgroup) + "\n");
        return CgroupLayout.Discover(P("proc/mountinfo"), P("proc/cgroup"));
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
