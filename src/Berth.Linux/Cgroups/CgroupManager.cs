namespace Berth.Linux.Cgroups;

/// <summary>The cgroupfs driver: one directory per managed hierarchy, v1 and v2 handled per controller.</summary>
internal sealed partial class CgroupManager : ICgroupManager
{
    readonly string _id;
    readonly CgroupManagerOptions _options;
    /// <summary>Managed hierarchies with the container's hierarchy path and directory in each.</summary>
    readonly List<(CgroupHierarchy H, string CgPath, string Dir)> _targets = new();

    public CgroupLayout Layout { get; }
    public IReadOnlyDictionary<string, string> Paths { get; }

    public CgroupManager(string id, CgroupLayout layout, string path, bool absolute, CgroupManagerOptions options)
    {
        _id = id;
        _options = options;
        Layout = layout;
        var paths = new Dictionary<string, string>();
        foreach (var h in layout.Managed)
        {
            string cg = CgroupPaths.InHierarchy(path, absolute, h.ProcessPath);
            string dir = h.DirOf(cg);
            _targets.Add((h, cg, dir));
            paths[h.IsUnified ? "unified" : string.Join(',', h.Controllers)] = dir;
        }
        Paths = paths;
        HierarchyPaths = _targets.ToDictionary(t => Key(t.H), t => t.CgPath);
    }

    /// <summary>Reopens a manager on the hierarchy paths recorded when the cgroup was created, so
    /// every later caller finds it wherever that caller's own cgroup is.</summary>
    public CgroupManager(string id, CgroupLayout layout, IReadOnlyDictionary<string, string> hierarchyPaths, CgroupManagerOptions options)
    {
        _id = id;
        _options = options;
        Layout = layout;
        var paths = new Dictionary<string, string>();
        foreach (var h in layout.Managed)
        {
            if (!hierarchyPaths.TryGetValue(Key(h), out var cg)) continue;
            string dir = h.DirOf(cg);
            _targets.Add((h, cg, dir));
            paths[Key(h)] = dir;
        }
        Paths = paths;
        HierarchyPaths = _targets.ToDictionary(t => Key(t.H), t => t.CgPath);
    }

    static string Key(CgroupHierarchy h) => h.IsUnified ? "unified" : string.Join(',', h.Controllers);

    public IReadOnlyDictionary<string, string> HierarchyPaths { get; }

    // ---- helpers -------------------------------------------------------------------------------

    /// <summary>The container's directory in the hierarchy handling <paramref name="controller"/>, or null.</summary>
    (CgroupHierarchy H, string Dir)? Find(string controller)
    {
        var h = Layout.For(controller);
        if (h is null) return null;
        foreach (var t in _targets)
            if (ReferenceEquals(t.H, h)) return (t.H, t.Dir);
        return null;
    }

    /// <summary>Like <see cref="Find"/> but throws when the controller is not available for a setting.</summary>
    (CgroupHierarchy H, string Dir) Require(string controller, string setting) =>
        Find(controller) ?? throw new CgroupException($"cannot set {setting}: the {controller} controller is not mounted");

    /// <summary>Path of a file that must exist for <paramref name="setting"/> to be honoured.</summary>
    static string RequireFile(string dir, string file, string setting, string? reason = null)
    {
        string path = Path.Combine(dir, file);
        if (!File.Exists(path))
            throw new CgroupException($"cannot set {setting}: {file} does not exist" + (reason is null ? "" : $" ({reason})"), path);
        return path;
    }

    void Write(string path, string value)
    {
        CgroupFs.Write(path, value);
        _options.OnWrite?.Invoke(path, value);
    }

    void Write(string dir, string file, string value) => Write(Path.Combine(dir, file), value);

    (CgroupHierarchy H, string Dir)? Unified
    {
        get
        {
            foreach (var t in _targets)
                if (t.H.IsUnified) return (t.H, t.Dir);
            return null;
        }
    }

    // ---- lifecycle -------------------------------------------------------------------------------

    public void Create()
    {
        foreach (var (h, cg, leafDir) in _targets)
        {
            // v1: the leaf first. Its parents (such as /berth, shared by every container) usually
            // exist, and are then not looked at again; a missing parent takes the level-by-level path.
            // (A cpuset parent with empty cpus/mems, made by someone else, is filled level by level.)
            if (!h.IsUnified && CgroupFs.MkdirIfParentExists(leafDir) is { } made
                && (!h.Has("cpuset") || TryInheritCpuset(h.DirOf(CgroupPaths.Parent(cg)), leafDir, made)))
                continue;
            foreach (var level in CgroupPaths.Levels(cg))
            {
                string parentDir = h.DirOf(CgroupPaths.Parent(level));
                string dir = h.DirOf(level);
                if (h.IsUnified)
                {
                    EnableControllers(parentDir);
                    CgroupFs.Mkdir(dir);
                }
                else
                {
                    CgroupFs.Mkdir(dir);
                    if (h.Has("cpuset"))
                    {
                        CopyIfEmpty(parentDir, dir, "cpuset.cpus");
                        CopyIfEmpty(parentDir, dir, "cpuset.mems");
                    }
                }
            }
        }
    }

    /// <summary>A new v1 cpuset has empty cpus/mems and refuses tasks until they are set: the
    /// parent's are copied (into a directory just made without a look: it is empty, or holds the
    /// parent's values already where cgroup.clone_children is set). False, with nothing written, when
    /// the parent's own are empty.</summary>
    bool TryInheritCpuset(string parentDir, string dir, bool made)
    {
        var cpus = CgroupFs.Read(Path.Combine(parentDir, "cpuset.cpus"));
        var mems = CgroupFs.Read(Path.Combine(parentDir, "cpuset.mems"));
        if (cpus.Length == 0 || mems.Length == 0) return false;
        if (made || CgroupFs.Read(Path.Combine(dir, "cpuset.cpus")).Length == 0) Write(dir, "cpuset.cpus", cpus);
        if (made || CgroupFs.Read(Path.Combine(dir, "cpuset.mems")).Length == 0) Write(dir, "cpuset.mems", mems);
        return true;
    }

    void CopyIfEmpty(string parentDir, string dir, string file)
    {
        if (CgroupFs.Read(Path.Combine(dir, file)).Length > 0) return;
        Write(dir, file, CgroupFs.Read(Path.Combine(parentDir, file)));
    }

    /// <summary>Enables in a v2 parent's subtree_control every controller it offers that is not yet
    /// enabled, so its children get the controllers' interface files.</summary>
    void EnableControllers(string parentDir)
    {
        var available = CgroupFs.Read(Path.Combine(parentDir, "cgroup.controllers")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var enabled = CgroupFs.Read(Path.Combine(parentDir, "cgroup.subtree_control")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var missing = available.Except(enabled).ToList();
        if (missing.Count == 0) return;
        string file = Path.Combine(parentDir, "cgroup.subtree_control");
        try { Write(file, string.Join(' ', missing.Select(c => "+" + c))); }
        catch (CgroupException)
        {
            // One at a time, so the error names the controller the kernel refused.
            foreach (var c in missing) Write(file, "+" + c);
        }
    }

    public void AddProcess(int pid, bool includeMemory = true)
    {
        if (pid <= 0) throw new CgroupException($"invalid pid {pid}");
        foreach (var (h, _, dir) in _targets)
        {
            if (!includeMemory && h.Has("memory")) continue;
            Write(dir, "cgroup.procs", pid.ToString());
        }
    }

    public void AddProcessToMemory(int pid)
    {
        if (pid <= 0) throw new CgroupException($"invalid pid {pid}");
        var (_, dir) = Find("memory") ?? throw new CgroupException("cannot join the memory cgroup: the memory controller is not mounted");
        Write(dir, "cgroup.procs", pid.ToString());
    }

    /// <summary>The directory whose cgroup.procs lists the container's processes.</summary>
    string ProcsDir =>
        (Layout.Mode == CgroupMode.V2 ? Unified?.Dir : null)
        ?? Find("pids")?.Dir ?? Find("freezer")?.Dir ?? _targets.First().Dir;

    public IReadOnlyList<int> GetPids()
    {
        string text = CgroupFs.Read(Path.Combine(ProcsDir, "cgroup.procs"));
        var pids = new List<int>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            pids.Add(int.Parse(line.Trim()));
        return pids;
    }

    public bool Exists() => _targets.Any(t => Directory.Exists(t.Dir));

    public void Destroy()
    {
        var errors = new List<CgroupException>();
        // Leaf only, like runc: parents such as /berth may be shared with other containers.
        foreach (var (_, _, dir) in Enumerable.Reverse(_targets))
        {
            try { CgroupFs.Rmdir(dir, _options.RemoveTimeout); }
            catch (CgroupException e) { errors.Add(e); }
        }
        if (errors.Count == 1) throw errors[0];
        if (errors.Count > 1)
            throw new CgroupException(string.Join("; ", errors.Select(e => e.Message["cgroup: ".Length..])), errors[0].Path, errors[0].Errno);
    }

    // ---- freezer ---------------------------------------------------------------------------------

    /// <summary>The v1 freezer hierarchy, else the unified cgroup (cgroup.freeze is a core v2 file).</summary>
    (CgroupHierarchy H, string Dir) FreezerTarget =>
        Find("freezer") ?? (Layout.Mode != CgroupMode.V1 ? Unified : null)
        ?? throw new CgroupException("cannot freeze: the freezer controller is not mounted");

    public void Freeze() => SetFrozen(true);

    public void Thaw() => SetFrozen(false);

    void SetFrozen(bool frozen)
    {
        var (h, dir) = FreezerTarget;
        var deadline = DateTime.UtcNow + _options.FreezeTimeout;
        int delayMs = 1;
        while (true)
        {
            // v1: a freeze can stay in FREEZING while tasks are in uninterruptible sleep; writing
            // FROZEN again retries it. v2: cgroup.events reports "frozen 1" once every task stopped.
            if (h.IsUnified) Write(dir, "cgroup.freeze", frozen ? "1" : "0");
            else Write(dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
            if (ReadFrozen(h, dir) == frozen) return;
            if (DateTime.UtcNow >= deadline)
                throw new CgroupException($"cannot {(frozen ? "freeze" : "thaw")} {dir}: state did not change within {_options.FreezeTimeout.TotalSeconds:0.#}s", dir);
            Thread.Sleep(delayMs);
            delayMs = Math.Min(delayMs * 2, 100);
        }
    }

    public bool IsFrozen()
    {
        var (h, dir) = FreezerTarget;
        return ReadFrozen(h, dir);
    }

    public string? FreezerStateFile
    {
        get
        {
            try { var (h, dir) = FreezerTarget; return Path.Combine(dir, h.IsUnified ? "cgroup.events" : "freezer.state"); }
            catch (CgroupException) { return null; }
        }
    }

    /// <summary>Whether a <see cref="FreezerStateFile"/> says frozen.</summary>
    public static bool ReadFrozenFile(string file)
    {
        if (Path.GetFileName(file) == "freezer.state") return CgroupFs.Read(file) == "FROZEN";
        foreach (var line in CgroupFs.Read(file).Split('\n'))
            if (line.StartsWith("frozen ", StringComparison.Ordinal)) return line.AsSpan(7).Trim() is "1";
        return false;
    }

    static bool ReadFrozen(CgroupHierarchy h, string dir)
    {
        if (!h.IsUnified) return CgroupFs.Read(Path.Combine(dir, "freezer.state")) == "FROZEN";
        foreach (var line in CgroupFs.Read(Path.Combine(dir, "cgroup.events")).Split('\n'))
            if (line.StartsWith("frozen ", StringComparison.Ordinal)) return line.AsSpan(7).Trim() is "1";
        return false;
    }
}
