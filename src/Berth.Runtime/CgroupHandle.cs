using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;

namespace Berth.Runtime;

/// <summary>The runtime's view of a container's cgroup: the OCI rules runc applies on top of the
/// cgroup manager (default device allow-list, joining memory last, the in-container cgroup mount).</summary>
public sealed class CgroupHandle
{
    ICgroupManager _m;
    readonly string _id;
    public string SpecPath { get; }

    CgroupHandle(ICgroupManager m, string specPath, string id) { _m = m; SpecPath = specPath; _id = id; }

    /// <summary>False when rootless create could write none of the hierarchies: the container then
    /// lives in the caller's cgroups and its processes are found through its pid namespace.</summary>
    public bool HasCgroup => _m.Paths.Count > 0;

    public static CgroupHandle ForCreate(string id, string? cgroupsPath, bool systemd)
    {
        if (systemd && !Directory.Exists("/run/systemd/system"))
            throw RuntimeException.Invalid("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver");
        // Default: relative, so it nests under the caller's cgroup (runc nests its default too).
        var path = string.IsNullOrEmpty(cgroupsPath) ? "berth/" + id : cgroupsPath;
        try { return new CgroupHandle(CgroupManagerFactory.Create(path, id), path, id); }
        catch (CgroupException e) { throw RuntimeException.Invalid(e.Message); }
    }

    /// <summary>Reopens the cgroup recorded at create. <paramref name="rootless"/> with nothing recorded
    /// means create skipped every hierarchy: the handle has no cgroup.</summary>
    public static CgroupHandle ForExisting(string id, string specPath, IReadOnlyDictionary<string, string>? recorded, bool rootless = false) =>
        new(recorded is { Count: > 0 } || rootless ? CgroupManagerFactory.Open(id, recorded ?? new Dictionary<string, string>()) : CgroupManagerFactory.Create(specPath, id), specPath, id);

    /// <summary>Rootless create (runc --rootless): makes the cgroup in each hierarchy the caller may
    /// write and skips the others, saying so through <paramref name="note"/>; the handle then manages
    /// only the hierarchies it created.</summary>
    public void CreateWhereWritable(Action<string> note)
    {
        var kept = new Dictionary<string, string>();
        foreach (var (key, cgPath) in _m.HierarchyPaths)
        {
            var one = CgroupManagerFactory.Open(_id, new Dictionary<string, string> { [key] = cgPath }, _m.Layout);
            try
            {
                one.Create();
                kept[key] = cgPath;
            }
            catch (CgroupException e) when (e.Errno is Berth.Linux.Errno.EACCES or Berth.Linux.Errno.EPERM or Berth.Linux.Errno.EROFS)
            {
                note($"rootless: cannot create cgroup {_m.Paths[key]} ({Berth.Linux.Errno.Describe(e.Errno)}), skipping");
                try { one.Destroy(); } catch (CgroupException) { }
            }
        }
        _m = CgroupManagerFactory.Open(_id, kept, _m.Layout);
    }

    /// <summary>Rootless: a limit whose controller's hierarchy was skipped cannot be applied; runc
    /// refuses such a config with this message rather than run the container unlimited.</summary>
    public void RequireControllersFor(LinuxResources? r)
    {
        if (r is null) return;
        var needed = new List<(string Controller, string What)>();
        if (r.Memory is { } m && (m.Limit is not (null or 0) || m.Reservation is not (null or 0) || m.Swap is not (null or 0) || m.Swappiness is not null || m.DisableOomKiller is not null))
            needed.Add(("memory", "memory"));
        if (r.Cpu is { } c)
        {
            if (c.Shares is not (null or 0) || c.Quota is not (null or 0) || c.Period is not (null or 0) || c.RealtimePeriod is not (null or 0) || c.RealtimeRuntime is not (null or 0))
                needed.Add(("cpu", "cpu"));
            if (!string.IsNullOrEmpty(c.Cpus) || !string.IsNullOrEmpty(c.Mems)) needed.Add(("cpuset", "cpuset"));
        }
        if (r.Pids is not null) needed.Add(("pids", "pids"));
        if (r.BlockIO is { } b && (b.Weight is not null || b.LeafWeight is not null || b.WeightDevice is { Count: > 0 } || b.ThrottleReadBpsDevice is { Count: > 0 }
            || b.ThrottleWriteBpsDevice is { Count: > 0 } || b.ThrottleReadIopsDevice is { Count: > 0 } || b.ThrottleWriteIopsDevice is { Count: > 0 }))
            needed.Add(("blkio", "blkio"));
        if (r.HugepageLimits is { Count: > 0 }) needed.Add(("hugetlb", "hugetlb"));
        foreach (var (controller, what) in needed)
        {
            var h = _m.Layout.For(controller);
            var key = h is null ? null : h.IsUnified ? "unified" : string.Join(',', h.Controllers);
            if (key is null || !_m.Paths.ContainsKey(key))
                throw RuntimeException.Invalid($"rootless: cannot set {what} limit: container could not join or create cgroup (no permission to write the {controller} hierarchy)");
        }
        if (r.Unified is { Count: > 0 } && !_m.Paths.ContainsKey("unified"))
            throw RuntimeException.Invalid("rootless: cannot set linux.resources.unified: container could not join or create cgroup");
    }

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

    /// <summary>Writes the limits. <paramref name="rootless"/> leaves the device rules out: an
    /// unprivileged caller cannot write them, and runc ignores them there too.</summary>
    public IReadOnlyList<string> Apply(LinuxResources? r, List<Device>? devices, bool rootless = false)
    {
        if (!HasCgroup) return [];
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
        if (rootless) copy.Devices = null;
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
    public string? FreezerStateFile => _m.FreezerStateFile;
    public static bool IsFrozenFile(string file) => Wrap(() => CgroupManagerFactory.ReadFrozenFile(file));
    public void Destroy() => Wrap(_m.Destroy);
    public string StatsEventJson(string id) => HasCgroup ? CgroupStatsJson.Serialize(id, Wrap(_m.GetStats))
        : throw RuntimeException.Precondition($"container \"{id}\" has no cgroup (rootless: the caller could not create one), so no stats");

    static void Wrap(Action a) => Wrap(() => { a(); return 0; });

    static T Wrap<T>(Func<T> f)
    {
        try { return f(); }
        catch (CgroupException e) { throw new RuntimeException(ErrorKind.FailedPrecondition, e.Message); }
    }
}
