using System.Globalization;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>
/// The resource, device and mount fields of HostConfig (docker's names): parsing of the flags that
/// carry them in docker's syntax (--mount's CSV, --ulimit, --device), their validation with docker's
/// messages, the mounts they add to the record, and what they change in the OCI spec.
/// </summary>
public static class HostResources
{
    // ------------------------------------------------------------------ flag syntax (docker CLI)

    /// <summary>`--mount type=…,source=…,target=…,readonly,…` as the docker CLI parses it.</summary>
    public static HostMount ParseMount(string value)
    {
        var m = new HostMount();
        foreach (var field in SplitCsv(value))
        {
            var eq = field.IndexOf('=');
            var key = (eq < 0 ? field : field[..eq]).ToLowerInvariant();
            var val = eq < 0 ? "" : field[(eq + 1)..];
            if (eq < 0)
            {
                switch (key)
                {
                    case "readonly" or "ro": m.ReadOnly = true; continue;
                    case "volume-nocopy": (m.VolumeOptions ??= new()).NoCopy = true; continue;
                    default: throw EngineException.Invalid($"invalid argument \"{value}\" for \"--mount\" flag: invalid field '{field}' must be a key=value pair");
                }
            }
            switch (key)
            {
                case "type": m.Type = val.ToLowerInvariant(); break;
                case "source" or "src": m.Source = val; break;
                case "target" or "dst" or "destination": m.Target = val; break;
                case "readonly" or "ro": m.ReadOnly = ParseBool(value, key, val); break;
                case "consistency": break;
                case "bind-propagation": (m.BindOptions ??= new()).Propagation = val.ToLowerInvariant(); break;
                case "volume-nocopy": (m.VolumeOptions ??= new()).NoCopy = ParseBool(value, key, val); break;
                case "volume-label":
                    var kv = val.Split('=', 2);
                    ((m.VolumeOptions ??= new()).Labels ??= [])[kv[0]] = kv.Length > 1 ? kv[1] : "";
                    break;
                case "volume-driver":
                    ((m.VolumeOptions ??= new()).DriverConfig ??= new()).Name = val;
                    break;
                case "volume-opt":
                    var opt = val.Split('=', 2);
                    if (opt.Length < 2) throw EngineException.Invalid($"invalid argument \"{value}\" for \"--mount\" flag: invalid value for {key}: {val}");
                    (((m.VolumeOptions ??= new()).DriverConfig ??= new()).Options ??= [])[opt[0]] = opt[1];
                    break;
                case "tmpfs-size":
                    long size;
                    try { size = ParseRam(val); }
                    catch (EngineException) { throw EngineException.Invalid($"invalid argument \"{value}\" for \"--mount\" flag: invalid value for {key}: {val}"); }
                    (m.TmpfsOptions ??= new()).SizeBytes = size;
                    break;
                case "tmpfs-mode":
                    if (!uint.TryParse(val, NumberStyles.None, null, out _) || val.Any(ch => ch > '7'))
                        throw EngineException.Invalid($"invalid argument \"{value}\" for \"--mount\" flag: invalid value for {key}: {val}");
                    (m.TmpfsOptions ??= new()).Mode = Convert.ToUInt32(val, 8);
                    break;
                default: throw EngineException.Invalid($"invalid argument \"{value}\" for \"--mount\" flag: unexpected key '{key}' in '{field}'");
            }
        }
        string? err = null;
        if (m.Type.Length == 0) err = "type is required";
        else if (m.Target.Length == 0) err = "target is required";
        else if (m.VolumeOptions is not null && m.Type != "volume") err = $"cannot mix 'volume-*' options with mount type '{m.Type}'";
        else if (m.BindOptions is not null && m.Type != "bind") err = $"cannot mix 'bind-*' options with mount type '{m.Type}'";
        else if (m.TmpfsOptions is not null && m.Type != "tmpfs") err = $"cannot mix 'tmpfs-*' options with mount type '{m.Type}'";
        if (err is not null) throw EngineException.Invalid($"invalid argument \"{value}\" for \"--mount\" flag: {err}");
        return m;
    }

    static bool ParseBool(string value, string key, string val) => val.ToLowerInvariant() switch
    {
        "1" or "t" or "true" => true,
        "0" or "f" or "false" => false,
        _ => throw EngineException.Invalid($"invalid argument \"{value}\" for \"--mount\" flag: invalid value for {key}: {val}"),
    };

    /// <summary>One CSV record (encoding/csv): commas separate fields, a field may be quoted.</summary>
    static List<string> SplitCsv(string s)
    {
        var fields = new List<string>();
        var cur = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < s.Length; i++)
        {
            var ch = s[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < s.Length && s[i + 1] == '"') { cur.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else cur.Append(ch);
            }
            else if (ch == '"' && cur.Length == 0) quoted = true;
            else if (ch == ',') { fields.Add(cur.ToString()); cur.Clear(); }
            else cur.Append(ch);
        }
        fields.Add(cur.ToString());
        return fields;
    }

    static readonly string[] UlimitNames =
        ["core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"];

    /// <summary>`--ulimit NAME=SOFT[:HARD]` (go-units ParseUlimit).</summary>
    public static Ulimit ParseUlimit(string value)
    {
        string Bad(string why) => $"invalid argument \"{value}\" for \"--ulimit\" flag: {why}";
        var kv = value.Split('=', 2);
        if (kv.Length != 2) throw EngineException.Invalid(Bad($"invalid ulimit argument: {value}"));
        if (!UlimitNames.Contains(kv[0])) throw EngineException.Invalid(Bad($"invalid ulimit type: {kv[0]}"));
        var limits = kv[1].Split(':');
        if (limits.Length > 2) throw EngineException.Invalid(Bad($"too many limit value arguments - {kv[1]}, can only have up to two, `soft[:hard]`"));
        if (!long.TryParse(limits[0], out var soft)) throw EngineException.Invalid(Bad($"invalid ulimit soft value: {limits[0]}"));
        var hard = soft;
        if (limits.Length == 2 && !long.TryParse(limits[1], out hard)) throw EngineException.Invalid(Bad($"invalid ulimit hard value: {limits[1]}"));
        if (soft > hard) throw EngineException.Invalid(Bad($"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"));
        return new Ulimit { Name = kv[0], Soft = soft, Hard = hard };
    }

    /// <summary>`--device HOST[:CONTAINER][:PERMISSIONS]` (the docker CLI's validateLinuxPath).</summary>
    public static DeviceMapping ParseDevice(string value)
    {
        string Bad(string why) => $"invalid argument \"{value}\" for \"--device\" flag: {why}";
        var split = value.Split(':');
        if (split.Length > 3 || split[0].Length == 0) throw EngineException.Invalid(Bad($"bad format for path: {value}"));
        var d = new DeviceMapping { PathOnHost = split[0], PathInContainer = split[0], CgroupPermissions = "rwm" };
        if (split.Length == 2)
        {
            if (ValidDeviceMode(split[1])) d.CgroupPermissions = split[1];
            else d.PathInContainer = split[1];
        }
        else if (split.Length == 3)
        {
            if (!ValidDeviceMode(split[2])) throw EngineException.Invalid(Bad($"bad mode specified: {split[2]}"));
            d.PathInContainer = split[1];
            d.CgroupPermissions = split[2];
        }
        if (!d.PathInContainer.StartsWith('/')) throw EngineException.Invalid(Bad($"{d.PathInContainer} is not an absolute path"));
        return d;
    }

    static bool ValidDeviceMode(string mode) =>
        mode.Length is > 0 and <= 3 && mode.All(c => c is 'r' or 'w' or 'm') && mode.Distinct().Count() == mode.Length;

    /// <summary>docker's RAMInBytes: 64m, 1g, 512k, 1.5GiB, plain bytes.</summary>
    public static long ParseRam(string s)
    {
        var t = s.Trim().ToLowerInvariant();
        if (t.EndsWith("ib", StringComparison.Ordinal)) t = t[..^2];
        else if (t.EndsWith('b')) t = t[..^1];
        long mult = 1;
        if (t.Length > 0 && "kmgtp".Contains(t[^1]))
        {
            mult = t[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, 't' => 1L << 40, _ => 1L << 50 };
            t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0 || t.Length == 0)
            throw EngineException.Invalid($"invalid size: '{s}'");
        return (long)(v * mult);
    }

    /// <summary>A size flag's value with docker's message for a bad one.</summary>
    public static long ParseSizeFlag(string flag, string value)
    {
        try { return ParseRam(value); }
        catch (EngineException e) { throw EngineException.Invalid($"invalid argument \"{value}\" for \"{flag}\" flag: {e.Message}"); }
    }

    // ------------------------------------------------------------------ validation (docker daemon)

    static readonly string[] NamespacedSysctls = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];

    public static void Validate(HostConfig hc)
    {
        hc.Normalize();
        // By default memory+swap is twice the memory (dockerd's adaptContainerSettings).
        if (hc.Memory > 0 && hc.MemorySwap == 0 && SwapLimitSupported) hc.MemorySwap = hc.Memory * 2;
        CheckResources(hc, update: false, []);
        if (hc.OomScoreAdj is < -1000 or > 1000) throw EngineException.Invalid($"Invalid value {hc.OomScoreAdj}, range for oom score adj is [-1000, 1000]");
        if (hc.ShmSize < 0) throw EngineException.Invalid("SHM size can not be less than 0");
        foreach (var (k, _) in hc.Sysctls)
        {
            var allowed = NamespacedSysctls.Contains(k) || k.StartsWith("fs.mqueue.", StringComparison.Ordinal) || k.StartsWith("net.", StringComparison.Ordinal);
            if (!allowed) throw EngineException.Invalid($"sysctl '{k}' is not allowed");
            if (k.StartsWith("net.", StringComparison.Ordinal) && hc.NetworkMode == "host")
                throw EngineException.Invalid($"sysctl \"{k}\" not allowed in host network namespace");
        }
        foreach (var u in hc.Ulimits)
        {
            if (!UlimitNames.Contains(u.Name)) throw EngineException.Invalid($"invalid ulimit type: {u.Name}");
            if (u.Soft > u.Hard) throw EngineException.Invalid($"ulimit soft limit must be less than or equal to hard limit: {u.Soft} > {u.Hard}");
        }
        foreach (var d in hc.Devices)
        {
            if (d.CgroupPermissions.Length == 0) d.CgroupPermissions = "rwm";
            if (d.PathInContainer.Length == 0) d.PathInContainer = d.PathOnHost;
            if (!ValidDeviceMode(d.CgroupPermissions)) throw EngineException.Invalid($"invalid device mode: {d.CgroupPermissions}");
            DeviceNode(d); // exists and is a device
        }
    }

    const long MinMemory = 6 * 1024 * 1024;

    /// <summary>The resource fields as dockerd's verifyPlatformContainerResources checks them, at create and
    /// at update (<paramref name="update"/>: the request holds only what changes; 0 and "" mean unchanged).
    /// What this kernel cannot do is dropped with a warning, as dockerd does (blkio weight).</summary>
    public static void CheckResources(HostConfig hc, bool update, List<string> warnings)
    {
        if (hc.Memory != 0 && hc.Memory < MinMemory) throw EngineException.Invalid("Minimum memory limit allowed is 6MB");
        if (!update && hc.MemorySwap > 0 && hc.Memory == 0) throw EngineException.Invalid("You should always set the Memory limit when using Memoryswap limit, see usage");
        if (hc.Memory > 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory) throw EngineException.Invalid("Minimum memoryswap limit should be larger than memory limit, see usage");
        if (hc.MemorySwap < -1) throw EngineException.Invalid($"invalid memory swap limit {hc.MemorySwap}: -1 (unlimited) or a size");
        if (hc.MemoryReservation < 0 || (hc.MemoryReservation > 0 && hc.MemoryReservation < MinMemory)) throw EngineException.Invalid("Minimum memory reservation allowed is 6MB");
        if (hc.Memory > 0 && hc.MemoryReservation > 0 && hc.Memory < hc.MemoryReservation)
            throw EngineException.Invalid("Minimum memory limit can not be less than memory reservation limit, see usage");
        if (hc.NanoCpus > 0 && hc.CpuPeriod > 0) throw EngineException.Invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        if (hc.NanoCpus > 0 && hc.CpuQuota > 0) throw EngineException.Invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        var ncpu = Environment.ProcessorCount;
        if (hc.NanoCpus < 0 || hc.NanoCpus > ncpu * 1_000_000_000L)
            throw EngineException.Invalid($"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available");
        if (hc.CpuPeriod != 0 && (hc.CpuPeriod < 1000 || hc.CpuPeriod > 1_000_000))
            throw EngineException.Invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        if (hc.CpuQuota > 0 && hc.CpuQuota < 1000) throw EngineException.Invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)");
        if (hc.CpuShares < 0) throw EngineException.Invalid($"invalid CPU shares {hc.CpuShares}: it must not be negative");
        // The kernel clamps cpu.shares to [2, 262144]: an update refuses that before anything is written.
        if (update && hc.CpuShares is > 0 and < 2) throw EngineException.Invalid("The minimum allowed cpu-shares is 2");
        if (update && hc.CpuShares > 262_144) throw EngineException.Invalid("The maximum allowed cpu-shares is 262144");
        // as dockerd: a kernel without real-time group scheduling (or cgroup v2) drops them with a warning
        if (hc.CpuRealtimePeriod > 0 && !RealtimeSupported)
        {
            warnings.Add("Your kernel does not support cgroup cpu real-time period");
            hc.CpuRealtimePeriod = 0;
        }
        if (hc.CpuRealtimeRuntime > 0 && !RealtimeSupported)
        {
            warnings.Add("Your kernel does not support cgroup cpu real-time runtime");
            hc.CpuRealtimeRuntime = 0;
        }
        // (dockerd 20.10 compares them at create only)
        if (!update && hc.CpuRealtimePeriod != 0 && hc.CpuRealtimeRuntime != 0 && hc.CpuRealtimeRuntime > hc.CpuRealtimePeriod)
            throw EngineException.Invalid("cpu-rt-runtime cannot be higher than cpu-rt-period");
        CheckCpuset(hc.CpusetCpus, "/sys/devices/system/cpu/online", "cpuset cpus", "CPUs");
        CheckCpuset(hc.CpusetMems, "/sys/devices/system/node/online", "cpuset mems", "memory nodes");
        if (hc.BlkioWeight > 0 && !BlkioWeightSupported)
        {
            warnings.Add("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.");
            hc.BlkioWeight = 0;
        }
        if (hc.BlkioWeight > 0 && hc.BlkioWeight is < 10 or > 1000) throw EngineException.Invalid("Range of blkio weight is from 10 to 1000");
    }

    /// <summary>A memory+swap limit can be set (v1 with swap accounting, or v2).</summary>
    public static bool SwapLimitSupported =>
        File.Exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") || File.Exists("/sys/fs/cgroup/cgroup.controllers");

    /// <summary>cgroup v1's cpu controller with CONFIG_RT_GROUP_SCHED (cpu.rt_runtime_us), as dockerd's sysinfo.CPURealtime.</summary>
    static bool RealtimeSupported => File.Exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us") || File.Exists("/sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us");

    /// <summary>What a cpuset never set amounts to: every online CPU (or memory node), as the container's
    /// cgroup got from its parent.</summary>
    public static string Online(string onlineFile) => File.Exists(onlineFile) ? File.ReadAllText(onlineFile).Trim() : "0";

    static bool BlkioWeightSupported =>
        File.Exists("/sys/fs/cgroup/blkio/blkio.weight") || File.Exists("/sys/fs/cgroup/blkio/blkio.bfq.weight")
        || (File.Exists("/sys/fs/cgroup/cgroup.controllers") && File.ReadAllText("/sys/fs/cgroup/cgroup.controllers").Split(' ', '\n').Contains("io"));

    static void CheckCpuset(string value, string onlineFile, string what, string plural)
    {
        if (value.Length == 0) return;
        var wanted = ParseList(value) ?? throw EngineException.Invalid($"Invalid value {value} for {what}: invalid format: {value}");
        var onlineText = File.Exists(onlineFile) ? File.ReadAllText(onlineFile).Trim() : "0";
        var online = ParseList(onlineText) ?? [];
        if (!wanted.All(online.Contains))
            throw EngineException.Invalid($"Requested {plural} are not available - requested {value}, available: {onlineText}");
    }

    /// <summary>A kernel list ("0-2,4"); null when malformed.</summary>
    static HashSet<int>? ParseList(string s)
    {
        var set = new HashSet<int>();
        foreach (var part in s.Split(','))
        {
            var r = part.Split('-');
            if (r.Length > 2 || !int.TryParse(r[0], NumberStyles.None, null, out var a)) return null;
            var b = a;
            if (r.Length == 2 && !int.TryParse(r[1], NumberStyles.None, null, out b)) return null;
            if (b < a) return null;
            for (var i = a; i <= b; i++) set.Add(i);
        }
        return set;
    }

    static (char Type, FileStat Stat) DeviceNode(DeviceMapping d)
    {
        var path = d.PathOnHost;
        try { path = new FileInfo(path).ResolveLinkTarget(true)?.FullName ?? path; }
        catch (IOException) { }
        var st = FileAt.TryStat(path);
        var why = st is null ? "no such file or directory" : st.Value.Type is S_IFCHR or S_IFBLK ? null : "not a device node";
        if (why is not null)
            throw EngineException.Invalid($"error gathering device information while adding custom device \"{d.PathOnHost}\": {why}");
        return (st!.Value.Type == S_IFCHR ? 'c' : 'b', st.Value);
    }

    // ------------------------------------------------------------------ mounts

    /// <summary>HostConfig.Mounts as the container's mount points (docker's validateMountConfig).
    /// Volume mounts without a source are anonymous: their name is given at create.</summary>
    public static List<MountPoint> MountPoints(HostConfig hc)
    {
        var result = new List<MountPoint>();
        foreach (var m in hc.Mounts)
        {
            string Bad(string why) => $"invalid mount config for type \"{m.Type}\": {why}";
            if (!m.Target.StartsWith('/')) throw EngineException.Invalid(Bad($"invalid mount path: '{m.Target}' mount path must be absolute"));
            var mp = new MountPoint { Destination = m.Target, RW = !m.ReadOnly, Propagation = "" };
            switch (m.Type)
            {
                case "bind":
                    if (m.Source.Length == 0) throw EngineException.Invalid(Bad("field Source must not be empty"));
                    if (m.VolumeOptions is not null) throw EngineException.Invalid(Bad("field VolumeOptions must not be specified"));
                    if (m.TmpfsOptions is not null) throw EngineException.Invalid(Bad("field TmpfsOptions must not be specified"));
                    if (!m.Source.StartsWith('/')) throw EngineException.Invalid(Bad($"invalid mount path: '{m.Source}' mount path must be absolute"));
                    if (!Path.Exists(m.Source)) throw EngineException.Invalid(Bad($"bind source path does not exist: {m.Source}"));
                    var prop = m.BindOptions?.Propagation is { Length: > 0 } p ? p : "rprivate";
                    if (prop is not ("private" or "rprivate" or "shared" or "rshared" or "slave" or "rslave"))
                        throw EngineException.Invalid(Bad($"invalid propagation mode: {prop}"));
                    mp.Type = "bind"; mp.Source = m.Source; mp.Propagation = prop;
                    break;
                case "volume":
                    if (m.BindOptions is not null) throw EngineException.Invalid(Bad("field BindOptions must not be specified"));
                    if (m.TmpfsOptions is not null) throw EngineException.Invalid(Bad("field TmpfsOptions must not be specified"));
                    if (m.Source.Length > 0 && !ContainerStore.ValidName(m.Source))
                        throw EngineException.Invalid(Bad($"invalid volume name \"{m.Source}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"));
                    mp.Type = "volume"; mp.Driver = "local"; mp.Name = m.Source; mp.Propagation = "";
                    mp.Mode = m.VolumeOptions?.NoCopy == true ? "nocopy" : "z";
                    mp.CreateWith = m.VolumeOptions;
                    break;
                case "tmpfs":
                    if (m.Source.Length > 0) throw EngineException.Invalid(Bad("field Source must not be specified"));
                    if (m.BindOptions is not null || m.VolumeOptions is not null) throw EngineException.Invalid(Bad("field BindOptions/VolumeOptions must not be specified"));
                    var opts = new List<string>();
                    if (m.ReadOnly) opts.Add("ro");
                    if (m.TmpfsOptions is { SizeBytes: > 0 } ts) opts.Add(TmpfsSize(ts.SizeBytes));
                    if (m.TmpfsOptions is { Mode: > 0 } tm) opts.Add("mode=" + Convert.ToString(tm.Mode, 8));
                    mp.Type = "tmpfs"; mp.Mode = string.Join(',', opts);
                    break;
                default:
                    throw EngineException.Invalid(Bad("mount type unknown"));
            }
            result.Add(mp);
        }
        return result;
    }

    /// <summary>size=N with the largest unit that divides it (moby's ConvertTmpfsOptions).</summary>
    static string TmpfsSize(long bytes)
    {
        foreach (var (unit, div) in new[] { ("g", 1L << 30), ("m", 1L << 20), ("k", 1L << 10) })
            if (bytes % div == 0) return $"size={bytes / div}{unit}";
        return $"size={bytes}";
    }

    /// <summary>Mount points may not share a destination (docker's "Duplicate mount point").</summary>
    public static void CheckDuplicates(List<MountPoint> mounts)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in mounts)
            if (!seen.Add(m.Destination.TrimEnd('/').Length == 0 ? "/" : m.Destination.TrimEnd('/')))
                throw EngineException.Invalid($"Duplicate mount point: {m.Destination}");
    }

    // ------------------------------------------------------------------ the OCI spec

    /// <summary>The cgroup limits of the HostConfig's resource fields, written into the spec's resources:
    /// at create, and when `update` rewrites the bundle (so a later start keeps the new limits).</summary>
    public static void SetLimits(LinuxResources res, HostConfig hc)
    {
        Memory Mem() => res.Memory ??= new Memory();
        Cpu Cpu() => res.Cpu ??= new Cpu();
        if (hc.Memory > 0) Mem().Limit = hc.Memory;
        if (hc.MemoryReservation > 0) Mem().Reservation = hc.MemoryReservation;
        if (hc.MemorySwap != 0 && hc.Memory > 0 && SwapLimitSupported) Mem().Swap = hc.MemorySwap;
        if (hc.CpuShares > 0) Cpu().Shares = (ulong)hc.CpuShares;
        // --cpus is a quota over a 100 ms period; it excludes --cpu-period/--cpu-quota.
        if (hc.NanoCpus > 0) { Cpu().Period = 100_000; Cpu().Quota = hc.NanoCpus / 10_000; }
        else
        {
            if (hc.CpuPeriod > 0) Cpu().Period = (ulong)hc.CpuPeriod;
            if (hc.CpuQuota != 0) Cpu().Quota = hc.CpuQuota;
        }
        if (hc.CpusetCpus.Length > 0) Cpu().Cpus = hc.CpusetCpus;
        if (hc.CpusetMems.Length > 0) Cpu().Mems = hc.CpusetMems;
        if (hc.CpuRealtimePeriod > 0) Cpu().RealtimePeriod = (ulong)hc.CpuRealtimePeriod;
        if (hc.CpuRealtimeRuntime != 0) Cpu().RealtimeRuntime = hc.CpuRealtimeRuntime;
        res.Pids = hc.PidsLimit is long limit && limit > 0 ? new Pids { Limit = limit } : null;
        if (hc.BlkioWeight > 0) (res.BlockIO ??= new BlockIo()).Weight = hc.BlkioWeight;
    }

    /// <summary>What these HostConfig fields change in the spec (after SpecBuilder's defaults).</summary>
    public static void Apply(Spec spec, ContainerRecord c)
    {
        var hc = c.HostConfig;
        var p = spec.Process!;
        var linux = spec.Linux!;
        var res = linux.Resources ??= new LinuxResources();
        SetLimits(res, hc);
        if (hc.OomKillDisable == true) (res.Memory ??= new Memory()).DisableOomKiller = true;
        if (hc.OomScoreAdj != 0) p.OomScoreAdj = hc.OomScoreAdj;
        if (hc.Ulimits.Count > 0)
            p.Rlimits = hc.Ulimits.Select(u => new Rlimit { Type = "RLIMIT_" + u.Name.ToUpperInvariant(), Soft = (ulong)u.Soft, Hard = (ulong)u.Hard }).ToList();
        if (hc.Sysctls.Count > 0)
        {
            linux.Sysctl ??= [];
            foreach (var (k, v) in hc.Sysctls) linux.Sysctl[k] = v;
        }
        if (hc.ShmSize > 0)
            foreach (var m in (spec.Mounts ?? []).Where(m => m.Destination == "/dev/shm" && m.Type == "tmpfs"))
                m.Options = (m.Options ?? []).Where(o => !o.StartsWith("size=", StringComparison.Ordinal)).Append(TmpfsSize(hc.ShmSize)).ToList();
        if (hc.GroupAdd.Count > 0)
        {
            var gids = p.User.AdditionalGids ??= [];
            foreach (var g in hc.GroupAdd)
            {
                var gid = SpecBuilder.ResolveUser(c.Rootfs, "0:" + g).Gid;
                if (!gids.Contains(gid)) gids.Add(gid);
            }
        }
        foreach (var d in hc.Devices)
        {
            var (type, st) = DeviceNode(d);
            linux.Devices ??= [];
            linux.Devices.RemoveAll(x => x.Path == d.PathInContainer);
            linux.Devices.Add(new Device
            {
                Type = type.ToString(), Path = d.PathInContainer, Major = st.RdevMajor, Minor = st.RdevMinor,
                FileMode = st.Mode & 0xfff, Uid = st.Uid, Gid = st.Gid,
            });
            if (!hc.Privileged)
                (res.Devices ??= []).Add(new DeviceCgroup { Allow = true, Type = type.ToString(), Major = st.RdevMajor, Minor = st.RdevMinor, Access = d.CgroupPermissions });
        }
    }
}
