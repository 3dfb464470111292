using System.Text.Json;

namespace Berth.Oci.Runtime;

/// <summary>Reads config.json (and process.json / resources for exec and update) from a
/// JsonDocument into the spec records, checking every type. Hand-written because it runs on the
/// start-up path of every container twice (runtime and init): System.Text.Json's serializer spends
/// ~3 ms building its metadata on a cold NativeAOT start, a JsonDocument walk ~0.1 ms. Unknown
/// properties are ignored, as the spec requires.</summary>
internal static class SpecReader
{
    public static T Read<T>(ReadOnlySpan<byte> utf8, string what, Func<JsonElement, string, T> read)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            var line = e.LineNumber is { } l ? $" (line {l + 1})" : "";
            throw new SpecException($"{what}: invalid JSON{line}: {FirstSentence(e.Message)}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind == JsonValueKind.Null) throw new SpecException($"{what}: document is null");
            try { return read(doc.RootElement, "$"); }
            catch (TypeError e) { throw new SpecException($"{what}: invalid JSON at {e.Path}: {e.Message}"); }
        }
    }

    static string FirstSentence(string s)
    {
        var i = s.IndexOf(". LineNumber", StringComparison.Ordinal);
        if (i < 0) i = s.IndexOf(". Path:", StringComparison.Ordinal);
        return i > 0 ? s[..i] : s.TrimEnd('.');
    }

    sealed class TypeError(string path, string message) : Exception(message) { public string Path { get; } = path; }

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => "a string", JsonValueKind.Number => "a number", JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array", JsonValueKind.Object => "an object", _ => "null",
    };

    static TypeError Expected(JsonElement e, string path, string what) => new(path, $"expected {what}, got {Kind(e)}");

    static void Obj(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Expected(e, path, "an object");
    }

    static bool IsNull(JsonElement e) => e.ValueKind == JsonValueKind.Null;

    static string? Str(JsonElement e, string path) =>
        e.ValueKind switch { JsonValueKind.String => e.GetString(), JsonValueKind.Null => null, _ => throw Expected(e, path, "a string") };

    static string StrReq(JsonElement e, string path) => Str(e, path) ?? "";

    static bool Bool(JsonElement e, string path) =>
        e.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Expected(e, path, "a boolean") };

    static long I64(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var v) ? v : throw Expected(e, path, "an integer");
    static ulong U64(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetUInt64(out var v) ? v : throw Expected(e, path, "an unsigned integer");
    static int I32(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v) ? v : throw Expected(e, path, "a 32-bit integer");
    static uint U32(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetUInt32(out var v) ? v : throw Expected(e, path, "an unsigned 32-bit integer");
    static ushort U16(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetUInt16(out var v) ? v : throw Expected(e, path, "an unsigned 16-bit integer");

    static long? I64N(JsonElement e, string p) => IsNull(e) ? null : I64(e, p);
    static ulong? U64N(JsonElement e, string p) => IsNull(e) ? null : U64(e, p);
    static int? I32N(JsonElement e, string p) => IsNull(e) ? null : I32(e, p);
    static uint? U32N(JsonElement e, string p) => IsNull(e) ? null : U32(e, p);
    static ushort? U16N(JsonElement e, string p) => IsNull(e) ? null : U16(e, p);
    static bool? BoolN(JsonElement e, string p) => IsNull(e) ? null : Bool(e, p);

    static List<T>? List<T>(JsonElement e, string path, Func<JsonElement, string, T> item)
    {
        if (IsNull(e)) return null;
        if (e.ValueKind != JsonValueKind.Array) throw Expected(e, path, "an array");
        var list = new List<T>(e.GetArrayLength());
        var i = 0;
        foreach (var x in e.EnumerateArray()) { list.Add(item(x, $"{path}[{i}]")); i++; }
        return list;
    }

    static List<string>? Strings(JsonElement e, string path) => List(e, path, StrReq);

    static Dictionary<string, T>? Map<T>(JsonElement e, string path, Func<JsonElement, string, T> item)
    {
        if (IsNull(e)) return null;
        Obj(e, path);
        var d = new Dictionary<string, T>();
        foreach (var p in e.EnumerateObject()) d[p.Name] = item(p.Value, $"{path}.{p.Name}");
        return d;
    }

    static T? O<T>(JsonElement e, string path, Func<JsonElement, string, T> read) where T : class => IsNull(e) ? null : read(e, path);

    // ------------------------------------------------------------------ the spec

    /// <summary>Set by init, which gets the seccomp filter already compiled: the profile (often the
    /// largest part of a config) is then not materialized.</summary>
    [ThreadStatic] public static bool SkipSeccomp;

    public static Spec ReadSpec(JsonElement e, string path)
    {
        Obj(e, path);
        var s = new Spec();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "ociVersion": s.OciVersion = StrReq(v, q); break;
                case "process": s.Process = O(v, q, ReadProcess); break;
                case "root": s.Root = O(v, q, ReadRoot); break;
                case "hostname": s.Hostname = Str(v, q); break;
                case "domainname": s.Domainname = Str(v, q); break;
                case "mounts": s.Mounts = List(v, q, ReadMount); break;
                case "hooks": s.Hooks = O(v, q, ReadHooks); break;
                case "annotations": s.Annotations = Map(v, q, StrReq); break;
                case "linux": s.Linux = O(v, q, ReadLinux); break;
            }
        }
        return s;
    }

    public static Process ReadProcess(JsonElement e, string path)
    {
        Obj(e, path);
        var r = new Process();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "terminal": r.Terminal = Bool(v, q); break;
                case "consoleSize": r.ConsoleSize = O(v, q, (x, y) => { Obj(x, y); var b = new Box(); foreach (var f in x.EnumerateObject()) { if (f.Name == "height") b.Height = U32(f.Value, y + ".height"); else if (f.Name == "width") b.Width = U32(f.Value, y + ".width"); } return b; }); break;
                case "user": r.User = O(v, q, ReadUser) ?? new User(); break;
                case "args": r.Args = Strings(v, q); break;
                case "commandLine": r.CommandLine = Str(v, q); break;
                case "env": r.Env = Strings(v, q); break;
                case "cwd": r.Cwd = StrReq(v, q); break;
                case "capabilities": r.Capabilities = O(v, q, ReadCaps); break;
                case "rlimits": r.Rlimits = List(v, q, (x, y) => { Obj(x, y); var l = new Rlimit(); foreach (var f in x.EnumerateObject()) { var z = $"{y}.{f.Name}"; switch (f.Name) { case "type": l.Type = StrReq(f.Value, z); break; case "hard": l.Hard = U64(f.Value, z); break; case "soft": l.Soft = U64(f.Value, z); break; } } return l; }); break;
                case "noNewPrivileges": r.NoNewPrivileges = Bool(v, q); break;
                case "apparmorProfile": r.ApparmorProfile = Str(v, q); break;
                case "oomScoreAdj": r.OomScoreAdj = I32N(v, q); break;
                case "selinuxLabel": r.SelinuxLabel = Str(v, q); break;
                case "ioPriority": r.IoPriority = O(v, q, (x, y) => { Obj(x, y); var io = new IoPriority(); foreach (var f in x.EnumerateObject()) { if (f.Name == "class") io.Class = StrReq(f.Value, y + ".class"); else if (f.Name == "priority") io.Priority = I32(f.Value, y + ".priority"); } return io; }); break;
                case "scheduler": r.Scheduler = O(v, q, (x, y) => { Obj(x, y); return new Scheduler { Policy = x.TryGetProperty("policy", out var pol) ? StrReq(pol, y + ".policy") : "" }; }); break;
                case "execCPUAffinity": r.ExecCpuAffinity = O(v, q, (x, y) => { Obj(x, y); var a = new ExecCpuAffinity(); foreach (var f in x.EnumerateObject()) { if (f.Name == "initial") a.Initial = Str(f.Value, y + ".initial"); else if (f.Name == "final") a.Final = Str(f.Value, y + ".final"); } return a; }); break;
            }
        }
        return r;
    }

    static User ReadUser(JsonElement e, string path)
    {
        Obj(e, path);
        var u = new User();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "uid": u.Uid = U32(v, q); break;
                case "gid": u.Gid = U32(v, q); break;
                case "umask": u.Umask = U32N(v, q); break;
                case "additionalGids": u.AdditionalGids = List(v, q, U32); break;
                case "username": u.Username = Str(v, q); break;
            }
        }
        return u;
    }

    static Capabilities ReadCaps(JsonElement e, string path)
    {
        Obj(e, path);
        var c = new Capabilities();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "bounding": c.Bounding = Strings(v, q); break;
                case "effective": c.Effective = Strings(v, q); break;
                case "inheritable": c.Inheritable = Strings(v, q); break;
                case "permitted": c.Permitted = Strings(v, q); break;
                case "ambient": c.Ambient = Strings(v, q); break;
            }
        }
        return c;
    }

    static Root ReadRoot(JsonElement e, string path)
    {
        Obj(e, path);
        var r = new Root();
        foreach (var p in e.EnumerateObject())
        {
            if (p.Name == "path") r.Path = StrReq(p.Value, path + ".path");
            else if (p.Name == "readonly") r.Readonly = Bool(p.Value, path + ".readonly");
        }
        return r;
    }

    static IdMapping ReadIdMapping(JsonElement e, string path)
    {
        Obj(e, path);
        var m = new IdMapping();
        foreach (var p in e.EnumerateObject())
        {
            var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "containerID": m.ContainerId = U32(p.Value, q); break;
                case "hostID": m.HostId = U32(p.Value, q); break;
                case "size": m.Size = U32(p.Value, q); break;
            }
        }
        return m;
    }

    static Mount ReadMount(JsonElement e, string path)
    {
        Obj(e, path);
        var m = new Mount();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "destination": m.Destination = StrReq(v, q); break;
                case "type": m.Type = Str(v, q); break;
                case "source": m.Source = Str(v, q); break;
                case "options": m.Options = Strings(v, q); break;
                case "uidMappings": m.UidMappings = List(v, q, ReadIdMapping); break;
                case "gidMappings": m.GidMappings = List(v, q, ReadIdMapping); break;
            }
        }
        return m;
    }

    static Hook ReadHook(JsonElement e, string path)
    {
        Obj(e, path);
        var h = new Hook();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "path": h.Path = StrReq(v, q); break;
                case "args": h.Args = Strings(v, q); break;
                case "env": h.Env = Strings(v, q); break;
                case "timeout": h.Timeout = I32N(v, q); break;
            }
        }
        return h;
    }

    static Hooks ReadHooks(JsonElement e, string path)
    {
        Obj(e, path);
        var h = new Hooks();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "prestart": h.Prestart = List(v, q, ReadHook); break;
                case "createRuntime": h.CreateRuntime = List(v, q, ReadHook); break;
                case "createContainer": h.CreateContainer = List(v, q, ReadHook); break;
                case "startContainer": h.StartContainer = List(v, q, ReadHook); break;
                case "poststart": h.Poststart = List(v, q, ReadHook); break;
                case "poststop": h.Poststop = List(v, q, ReadHook); break;
            }
        }
        return h;
    }

    static Linux ReadLinux(JsonElement e, string path)
    {
        Obj(e, path);
        var l = new Linux();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "uidMappings": l.UidMappings = List(v, q, ReadIdMapping); break;
                case "gidMappings": l.GidMappings = List(v, q, ReadIdMapping); break;
                case "timeOffsets": l.TimeOffsets = Map(v, q, (x, y) => { Obj(x, y); var t = new TimeOffset(); foreach (var f in x.EnumerateObject()) { if (f.Name == "secs") t.Secs = I64(f.Value, y + ".secs"); else if (f.Name == "nanosecs") t.Nanosecs = U32(f.Value, y + ".nanosecs"); } return t; }); break;
                case "sysctl": l.Sysctl = Map(v, q, StrReq); break;
                case "resources": l.Resources = O(v, q, ReadResources); break;
                case "cgroupsPath": l.CgroupsPath = Str(v, q); break;
                case "namespaces": l.Namespaces = List(v, q, (x, y) => { Obj(x, y); var n = new Namespace(); foreach (var f in x.EnumerateObject()) { if (f.Name == "type") n.Type = StrReq(f.Value, y + ".type"); else if (f.Name == "path") n.Path = Str(f.Value, y + ".path"); } return n; }); break;
                case "devices": l.Devices = List(v, q, ReadDevice); break;
                case "seccomp": if (!SkipSeccomp) l.Seccomp = O(v, q, ReadSeccomp); break;
                case "rootfsPropagation": l.RootfsPropagation = Str(v, q); break;
                case "maskedPaths": l.MaskedPaths = Strings(v, q); break;
                case "readonlyPaths": l.ReadonlyPaths = Strings(v, q); break;
                case "mountLabel": l.MountLabel = Str(v, q); break;
                case "intelRdt": if (!IsNull(v)) l.IntelRdt = v.Clone(); break;
                case "personality": l.Personality = O(v, q, (x, y) => { Obj(x, y); var pe = new Personality(); foreach (var f in x.EnumerateObject()) { if (f.Name == "domain") pe.Domain = StrReq(f.Value, y + ".domain"); else if (f.Name == "flags") pe.Flags = Strings(f.Value, y + ".flags"); } return pe; }); break;
                case "memoryPolicy": if (!IsNull(v)) l.MemoryPolicy = v.Clone(); break;
                case "netDevices": if (!IsNull(v)) l.NetDevices = v.Clone(); break;
            }
        }
        return l;
    }

    static Device ReadDevice(JsonElement e, string path)
    {
        Obj(e, path);
        var d = new Device();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "type": d.Type = StrReq(v, q); break;
                case "path": d.Path = StrReq(v, q); break;
                case "major": d.Major = I64(v, q); break;
                case "minor": d.Minor = I64(v, q); break;
                case "fileMode": d.FileMode = U32N(v, q); break;
                case "uid": d.Uid = U32N(v, q); break;
                case "gid": d.Gid = U32N(v, q); break;
            }
        }
        return d;
    }

    public static LinuxResources ReadResources(JsonElement e, string path)
    {
        Obj(e, path);
        var r = new LinuxResources();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "devices": r.Devices = List(v, q, ReadDeviceRule); break;
                case "memory": r.Memory = O(v, q, ReadMemory); break;
                case "cpu": r.Cpu = O(v, q, ReadCpu); break;
                case "pids": r.Pids = O(v, q, (x, y) => { Obj(x, y); var pd = new Pids(); if (x.TryGetProperty("limit", out var lim)) pd.Limit = I64(lim, y + ".limit"); return pd; }); break;
                case "blockIO": r.BlockIO = O(v, q, ReadBlockIo); break;
                case "hugepageLimits": r.HugepageLimits = List(v, q, (x, y) => { Obj(x, y); var h = new HugepageLimit(); foreach (var f in x.EnumerateObject()) { if (f.Name == "pageSize") h.PageSize = StrReq(f.Value, y + ".pageSize"); else if (f.Name == "limit") h.Limit = U64(f.Value, y + ".limit"); } return h; }); break;
                case "network": r.Network = O(v, q, (x, y) => { Obj(x, y); var n = new NetworkResources(); foreach (var f in x.EnumerateObject()) { if (f.Name == "classID") n.ClassId = U32N(f.Value, y + ".classID"); else if (f.Name == "priorities") n.Priorities = List(f.Value, y + ".priorities", (a, _) => a.Clone()); } return n; }); break;
                case "rdma": r.Rdma = Map(v, q, (x, _) => x.Clone()); break;
                case "unified": r.Unified = Map(v, q, StrReq); break;
            }
        }
        return r;
    }

    static DeviceCgroup ReadDeviceRule(JsonElement e, string path)
    {
        Obj(e, path);
        var d = new DeviceCgroup();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "allow": d.Allow = Bool(v, q); break;
                case "type": d.Type = Str(v, q); break;
                case "major": d.Major = I64N(v, q); break;
                case "minor": d.Minor = I64N(v, q); break;
                case "access": d.Access = Str(v, q); break;
            }
        }
        return d;
    }

    static Memory ReadMemory(JsonElement e, string path)
    {
        Obj(e, path);
        var m = new Memory();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "limit": m.Limit = I64N(v, q); break;
                case "reservation": m.Reservation = I64N(v, q); break;
                case "swap": m.Swap = I64N(v, q); break;
                case "kernel": m.Kernel = I64N(v, q); break;
                case "kernelTCP": m.KernelTcp = I64N(v, q); break;
                case "swappiness": m.Swappiness = U64N(v, q); break;
                case "disableOOMKiller": m.DisableOomKiller = BoolN(v, q); break;
                case "useHierarchy": m.UseHierarchy = BoolN(v, q); break;
                case "checkBeforeUpdate": m.CheckBeforeUpdate = BoolN(v, q); break;
            }
        }
        return m;
    }

    static Cpu ReadCpu(JsonElement e, string path)
    {
        Obj(e, path);
        var c = new Cpu();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "shares": c.Shares = U64N(v, q); break;
                case "quota": c.Quota = I64N(v, q); break;
                case "burst": c.Burst = U64N(v, q); break;
                case "period": c.Period = U64N(v, q); break;
                case "realtimeRuntime": c.RealtimeRuntime = I64N(v, q); break;
                case "realtimePeriod": c.RealtimePeriod = U64N(v, q); break;
                case "cpus": c.Cpus = Str(v, q); break;
                case "mems": c.Mems = Str(v, q); break;
                case "idle": c.Idle = I64N(v, q); break;
            }
        }
        return c;
    }

    static BlockIo ReadBlockIo(JsonElement e, string path)
    {
        Obj(e, path);
        var b = new BlockIo();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "weight": b.Weight = U16N(v, q); break;
                case "leafWeight": b.LeafWeight = U16N(v, q); break;
                case "weightDevice": b.WeightDevice = List(v, q, (x, y) => { Obj(x, y); var w = new WeightDevice(); foreach (var f in x.EnumerateObject()) { var z = $"{y}.{f.Name}"; switch (f.Name) { case "major": w.Major = I64(f.Value, z); break; case "minor": w.Minor = I64(f.Value, z); break; case "weight": w.Weight = U16N(f.Value, z); break; case "leafWeight": w.LeafWeight = U16N(f.Value, z); break; } } return w; }); break;
                case "throttleReadBpsDevice": b.ThrottleReadBpsDevice = List(v, q, ReadThrottle); break;
                case "throttleWriteBpsDevice": b.ThrottleWriteBpsDevice = List(v, q, ReadThrottle); break;
                case "throttleReadIOPSDevice": b.ThrottleReadIopsDevice = List(v, q, ReadThrottle); break;
                case "throttleWriteIOPSDevice": b.ThrottleWriteIopsDevice = List(v, q, ReadThrottle); break;
            }
        }
        return b;
    }

    static ThrottleDevice ReadThrottle(JsonElement e, string path)
    {
        Obj(e, path);
        var t = new ThrottleDevice();
        foreach (var p in e.EnumerateObject())
        {
            var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "major": t.Major = I64(p.Value, q); break;
                case "minor": t.Minor = I64(p.Value, q); break;
                case "rate": t.Rate = U64(p.Value, q); break;
            }
        }
        return t;
    }

    static Seccomp ReadSeccomp(JsonElement e, string path)
    {
        Obj(e, path);
        var s = new Seccomp();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "defaultAction": s.DefaultAction = StrReq(v, q); break;
                case "defaultErrnoRet": s.DefaultErrnoRet = U32N(v, q); break;
                case "architectures": s.Architectures = Strings(v, q); break;
                case "flags": s.Flags = Strings(v, q); break;
                case "listenerPath": s.ListenerPath = Str(v, q); break;
                case "listenerMetadata": s.ListenerMetadata = Str(v, q); break;
                case "syscalls": s.Syscalls = List(v, q, ReadSyscall); break;
            }
        }
        return s;
    }

    static SeccompSyscall ReadSyscall(JsonElement e, string path)
    {
        Obj(e, path);
        var s = new SeccompSyscall();
        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value; var q = $"{path}.{p.Name}";
            switch (p.Name)
            {
                case "names": s.Names = Strings(v, q) ?? new(); break;
                case "action": s.Action = StrReq(v, q); break;
                case "errnoRet": s.ErrnoRet = U32N(v, q); break;
                case "args": s.Args = List(v, q, (x, y) => { Obj(x, y); var a = new SeccompArg(); foreach (var f in x.EnumerateObject()) { var z = $"{y}.{f.Name}"; switch (f.Name) { case "index": a.Index = U32(f.Value, z); break; case "value": a.Value = U64(f.Value, z); break; case "valueTwo": a.ValueTwo = U64(f.Value, z); break; case "op": a.Op = StrReq(f.Value, z); break; } } return a; }); break;
            }
        }
        return s;
    }
}
