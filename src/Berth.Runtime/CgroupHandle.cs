using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;

namespace Berth.Runtime;

/// <summary>The runtime's view of a container's cgroup: the OCI rules runc applies on top of the
/// cgroup manager (default device allow-list, joining memory last, the in-container cgroup mount).</summary>
public sealed class CgroupHandle
{
    readonly ICgroupManager _m;
    public string SpecPath { get; }

    CgroupHandle(ICgroupManager m, string specPath) { _m = m; SpecPath = specPath; }

    public static CgroupHandle ForCreate(string id, string? cgroupsPath, bool systemd)
    {
        if (systemd && !Directory.Exists("/run/systemd/system"))
            throw RuntimeException.Invalid("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver");
        // Default: relative, so it nests under the caller's cgroup (runc nests its default too).
        var path = string.IsNullOrEmpty(cgroupsPath) ? "berth/" + id : cgroupsPath;
        try { return new CgroupHandle(CgroupManagerFactory.Create(path, id), path); }
        catch (CgroupException e) { throw RuntimeException.Invalid(e.Message); }
    }

    public static CgroupHandle ForExisting(string id, string specPath, IReadOnlyDictionary<string, string>? recorded) =>
        new(recorded is { Count: > 0 } ? CgroupManagerFactory.Open(id, recorded) : CgroupManagerFactory.Create(specPath, id), specPath);

    /// <summary>What to record in the container's state to reopen this cgroup from any caller.</summary>
    public Dictionary<string, string> HierarchyPaths => new(_m.HierarchyPaths);

    public void Create() => Wrap(_m.Create);

    /// <summary>Devices every container may use, as runc allows them (null, zero, full, random,
    /// urandom, tty, ptmx, pts, and mknod of any node).</summary>
    static readonly DeviceCgroup[] AllowedDevices =
    [
        new() { Allow = true, Type = "c", Access = "m" }, new() { Allow = true, Type = "b", Access = "m" },
        new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" }, new() { Allow = true, Type = "c", Major = 1, Minor = 8, Access = "rwm" },
        new() { Allow = true, Type = "c", Major = 1, Minor = 7, Access = "rwm" }, new() { Allow = true, Type = "c", Major = 5, Minor = 0, Access = "rwm" },
        new() { Allow = true, Type = "c", Major = 1, Minor = 5, Access = "rwm" }, new() { Allow = true, Type = "c", Major = 1, Minor = 9, Access = "rwm" },
        new() { Allow = true, Type = "c", Major = 136, Access = "rwm" }, new() { Allow = true, Type = "c", Major = 5, Minor = 2, Access = "rwm" },
    ];

    public IReadOnlyList<string> Apply(LinuxResources? r, List<Device>? devices)
    {
        r ??= new LinuxResources();
        var copy = new LinuxResources
        {
            Memory = r.Memory, Cpu = r.Cpu, Pids = r.Pids, BlockIO = r.BlockIO, HugepageLimits = r.HugepageLimits,
            Unified = r.Unified, Network = r.Network, Rdma = r.Rdma, Devices = r.Devices,
        };
        if (devices is not null)
        {
            // create: spec rules, then the default allow-list, then the configured device nodes.
            var rules = new List<DeviceCgroup>(r.Devices ?? []);
            rules.AddRange(AllowedDevices);
            foreach (var d in devices.Where(d => d.Type != "p")) // fifos are not device nodes
                rules.Add(new DeviceCgroup { Allow = true, Type = d.Type is "u" ? "c" : d.Type, Major = d.Major, Minor = d.Minor, Access = "rwm" });
            copy.Devices = rules;
        }
        return Wrap(() => _m.Apply(copy));
    }

    /// <summary>The v1 `tasks` files of every hierarchy but memory. A thread that writes its own tid
    /// there before spawning gives birth to a child that is already inside: writing a tid to
    /// `tasks` costs ~30 µs, while moving a process through cgroup.procs takes the kernel's
    /// threadgroup rwsem (an RCU grace period, ~2 ms per hierarchy measured here).</summary>
    public List<string> BirthTaskFiles() =>
        _m.Paths.Where(kv => kv.Key != "unified" && !kv.Key.Split(',').Contains("memory"))
            .Select(kv => Path.Combine(kv.Value, "tasks")).ToList();

    /// <summary>Files init writes itself into right before execve: the v1 memory hierarchy's
    /// `tasks` (its own tid; the exec'ing thread leads the process) and the unified hierarchy's
    /// cgroup.procs (v2, or hybrid's v2 part), so init's own pages are never charged to the container.</summary>
    public List<string> LateProcsFiles(LinuxResources? r)
    {
        var files = new List<string>();
        // Hybrid: the v2 part holds only what no v1 hierarchy has (hugetlb here). Joining it costs
        // a threadgroup migration (an RCU grace period); do it only when a limit lives there.
        var needUnified = _m.Layout.Mode == CgroupMode.V2 || r?.HugepageLimits is { Count: > 0 } || r?.Unified is { Count: > 0 };
        foreach (var (key, dir) in _m.Paths)
        {
            if (key == "unified") { if (needUnified) files.Add(Path.Combine(dir, "cgroup.procs")); }
            else if (key.Split(',').Contains("memory")) files.Add(Path.Combine(dir, "tasks"));
        }
        return files;
    }

    public List<CgroupMountSource> MountSources()
    {
        if (_m.Layout.Mode == CgroupMode.V2) return [];
        return _m.Paths.Select(kv => new CgroupMountSource { Name = kv.Key, HostPath = kv.Value }).ToList();
    }

    public string? V2Dir => _m.Layout.Mode == CgroupMode.V2 && _m.Paths.TryGetValue("unified", out var d) ? d : null;

    public IReadOnlyList<int> GetPids() => Wrap(_m.GetPids);
    public void Freeze() => Wrap(_m.Freeze);
    public void Thaw() => Wrap(_m.Thaw);
    public bool IsFrozen() => Wrap(_m.IsFrozen);
    public void Destroy() => Wrap(_m.Destroy);
    public string StatsEventJson(string id) => CgroupStatsJson.Serialize(id, Wrap(_m.GetStats));

    static void Wrap(Action a) => Wrap(() => { a(); return 0; });

    static T Wrap<T>(Func<T> f)
    {
        try { return f(); }
        catch (CgroupException e) { throw new RuntimeException(ErrorKind.FailedPrecondition, e.Message); }
    }
}
