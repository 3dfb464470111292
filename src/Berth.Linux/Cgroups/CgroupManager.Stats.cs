using System.Globalization;

namespace Berth.Linux.Cgroups;

// Statistics: each section is read from whichever hierarchy handles its controller, the v1 or
// the v2 way. Files the kernel does not offer leave their fields at zero.
internal sealed partial class CgroupManager
{
    /// <summary>USER_HZ: cpuacct.stat counts in these ticks.</summary>
    const ulong ClockTicks = 100;

    public CgroupStats GetStats()
    {
        var s = new CgroupStats();
        if (Find("cpu") is { } cpu)
        {
            if (cpu.H.IsUnified) CpuV2(cpu.Dir, s.Cpu);
            else Throttling(cpu.Dir, s.Cpu.Throttling, "nr_periods", "nr_throttled", "throttled_time", 1);
        }
        if (Find("cpuacct") is { H.IsUnified: false } acct) CpuacctV1(acct.Dir, s.Cpu.Usage);
        if (Find("cpuset") is { } cpuset) Cpuset(cpuset.H, cpuset.Dir, s.Cpuset);
        if (Find("memory") is { } mem)
        {
            if (mem.H.IsUnified) MemoryV2(mem.Dir, s.Memory);
            else MemoryV1(mem.Dir, s.Memory);
        }
        if (Find("pids") is { } pids)
        {
            s.Pids.Current = ReadU64(pids.Dir, "pids.current");
            s.Pids.Limit = ReadU64(pids.Dir, "pids.max"); // "max" reads as 0, as in runc
        }
        if (Find("io") is { H.IsUnified: true } io) IoV2(io.Dir, s.Blkio);
        else if (Find("blkio") is { H.IsUnified: false } blkio) BlkioV1(blkio.Dir, s.Blkio);
        if (Find("hugetlb") is { } huge) Hugetlb(huge.H, huge.Dir, s.Hugetlb);
        return s;
    }

    /// <summary>A number file; missing, empty or "max" read as 0.</summary>
    static ulong ReadU64(string dir, string file)
    {
        string? text = CgroupFs.TryRead(Path.Combine(dir, file));
        return text is null ? 0 : ParseU64(text.Trim());
    }

    static ulong ParseU64(string s) =>
        ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v) ? v : 0; // "max", "-1" → 0

    /// <summary>"key value" lines (memory.stat, cpu.stat, …); unparsable values are skipped.</summary>
    static SortedDictionary<string, ulong> ReadKeyValues(string dir, string file)
    {
        var map = new SortedDictionary<string, ulong>(StringComparer.Ordinal);
        string? text = CgroupFs.TryRead(Path.Combine(dir, file));
        if (text is null) return map;
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 2 && ulong.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)) map[f[0]] = v;
        }
        return map;
    }

    static List<ulong>? ReadList(string dir, string file)
    {
        string? text = CgroupFs.TryRead(Path.Combine(dir, file));
        if (string.IsNullOrWhiteSpace(text)) return null;
        return text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(ParseU64).ToList();
    }

    static void Throttling(string dir, ThrottlingStats t, string periods, string throttled, string time, ulong timeScale)
    {
        var st = ReadKeyValues(dir, "cpu.stat");
        t.Periods = st.GetValueOrDefault(periods);
        t.ThrottledPeriods = st.GetValueOrDefault(throttled);
        t.ThrottledTime = st.GetValueOrDefault(time) * timeScale;
    }

    static void CpuacctV1(string dir, CpuUsage u)
    {
        u.Total = ReadU64(dir, "cpuacct.usage");
        u.PerCpu = ReadList(dir, "cpuacct.usage_percpu");
        // cpuacct.usage_all: "cpu user system" per line, in nanoseconds.
        if (CgroupFs.TryRead(Path.Combine(dir, "cpuacct.usage_all")) is { } all)
        {
            var user = new List<ulong>();
            var sys = new List<ulong>();
            foreach (var line in all.Split('\n').Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length != 3) continue;
                user.Add(ParseU64(f[1]));
                sys.Add(ParseU64(f[2]));
            }
            if (user.Count > 0) { u.PerCpuUser = user; u.PerCpuKernel = sys; }
        }
        // cpuacct.stat is in USER_HZ ticks.
        var st = ReadKeyValues(dir, "cpuacct.stat");
        u.User = st.GetValueOrDefault("user") * (1_000_000_000 / ClockTicks);
        u.Kernel = st.GetValueOrDefault("system") * (1_000_000_000 / ClockTicks);
    }

    static void CpuV2(string dir, CpuStats c)
    {
        var st = ReadKeyValues(dir, "cpu.stat");
        c.Usage.Total = st.GetValueOrDefault("usage_usec") * 1000;
        c.Usage.User = st.GetValueOrDefault("user_usec") * 1000;
        c.Usage.Kernel = st.GetValueOrDefault("system_usec") * 1000;
        Throttling(dir, c.Throttling, "nr_periods", "nr_throttled", "throttled_usec", 1000);
    }

    static void Cpuset(CgroupHierarchy h, string dir, CpusetStats c)
    {
        string suffix = h.IsUnified ? ".effective" : "";
        c.Cpus = ParseRanges(CgroupFs.TryRead(Path.Combine(dir, "cpuset.cpus" + suffix)));
        c.Mems = ParseRanges(CgroupFs.TryRead(Path.Combine(dir, "cpuset.mems" + suffix)));
        if (h.IsUnified) return;
        c.CpuExclusive = ReadU64(dir, "cpuset.cpu_exclusive");
        c.MemHardwall = ReadU64(dir, "cpuset.mem_hardwall");
        c.MemExclusive = ReadU64(dir, "cpuset.mem_exclusive");
        c.MemoryMigrate = ReadU64(dir, "cpuset.memory_migrate");
        c.MemorySpreadPage = ReadU64(dir, "cpuset.memory_spread_page");
        c.MemorySpreadSlab = ReadU64(dir, "cpuset.memory_spread_slab");
        c.MemoryPressure = ReadU64(dir, "cpuset.memory_pressure");
        c.SchedLoadBalance = ReadU64(dir, "cpuset.sched_load_balance");
        if (CgroupFs.TryRead(Path.Combine(dir, "cpuset.sched_relax_domain_level")) is { } lvl
            && long.TryParse(lvl, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
            c.SchedRelaxDomainLevel = l;
    }

    /// <summary>"0-3,8" → [0,1,2,3,8]; null for empty.</summary>
    internal static List<ushort>? ParseRanges(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var list = new List<ushort>();
        foreach (var part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int dash = part.IndexOf('-');
            ushort lo = ushort.Parse(dash < 0 ? part : part[..dash], CultureInfo.InvariantCulture);
            ushort hi = dash < 0 ? lo : ushort.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture);
            for (int i = lo; i <= hi; i++) list.Add((ushort)i);
        }
        return list;
    }

    static void MemoryEntryV1(string dir, string prefix, MemoryEntry e)
    {
        e.Usage = ReadU64(dir, prefix + ".usage_in_bytes");
        e.Max = ReadU64(dir, prefix + ".max_usage_in_bytes");
        e.Failcnt = ReadU64(dir, prefix + ".failcnt");
        e.Limit = ReadU64(dir, prefix + ".limit_in_bytes");
    }

    static void MemoryV1(string dir, MemoryStats m)
    {
        var raw = ReadKeyValues(dir, "memory.stat");
        m.Raw = raw.Count > 0 ? raw : null;
        m.Cache = raw.GetValueOrDefault("cache");
        MemoryEntryV1(dir, "memory", m.Usage);
        MemoryEntryV1(dir, "memory.memsw", m.Swap);
        MemoryEntryV1(dir, "memory.kmem", m.Kernel);
        MemoryEntryV1(dir, "memory.kmem.tcp", m.KernelTcp);
    }

    /// <summary>"max" → ulong.MaxValue (what runc reports for an unlimited v2 limit).</summary>
    static ulong ReadLimitV2(string dir, string file)
    {
        string? text = CgroupFs.TryRead(Path.Combine(dir, file));
        return text is null ? 0 : text == "max" ? ulong.MaxValue : ParseU64(text);
    }

    static void MemoryV2(string dir, MemoryStats m)
    {
        var raw = ReadKeyValues(dir, "memory.stat");
        m.Raw = raw.Count > 0 ? raw : null;
        m.Cache = raw.GetValueOrDefault("file");
        m.Usage.Usage = ReadU64(dir, "memory.current");
        m.Usage.Max = ReadU64(dir, "memory.peak");
        m.Usage.Limit = ReadLimitV2(dir, "memory.max");
        m.Usage.Failcnt = ReadKeyValues(dir, "memory.events").GetValueOrDefault("max");
        if (File.Exists(Path.Combine(dir, "memory.swap.current")))
        {
            // Reported as memory+swap, matching v1's memsw and runc's v2 conversion.
            m.Swap.Usage = m.Usage.Usage + ReadU64(dir, "memory.swap.current");
            ulong swapMax = ReadLimitV2(dir, "memory.swap.max");
            m.Swap.Limit = swapMax == ulong.MaxValue || m.Usage.Limit == ulong.MaxValue ? ulong.MaxValue : swapMax + m.Usage.Limit;
            m.Swap.Max = ReadU64(dir, "memory.swap.peak");
            m.Swap.Failcnt = ReadKeyValues(dir, "memory.swap.events").GetValueOrDefault("max");
        }
    }

    /// <summary>Parses v1 blkio "MAJ:MIN Op value" lines (the "Total" line has no device).</summary>
    static List<BlkioEntry>? ReadBlkio(string dir, params string[] files)
    {
        foreach (var file in files)
        {
            string? text = CgroupFs.TryRead(Path.Combine(dir, file));
            if (text is null) continue;
            var list = new List<BlkioEntry>();
            foreach (var line in text.Split('\n'))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length != 3) continue;
                var dev = f[0].Split(':');
                if (dev.Length != 2) continue;
                list.Add(new BlkioEntry { Major = ParseU64(dev[0]), Minor = ParseU64(dev[1]), Op = f[1], Value = ParseU64(f[2]) });
            }
            // An empty file (no CFQ/BFQ accounting) falls through to the next, as runc does.
            if (list.Count > 0) return list;
        }
        return null;
    }

    static void BlkioV1(string dir, BlkioStats b)
    {
        b.IoServiceBytesRecursive = ReadBlkio(dir, "blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive");
        b.IoServicedRecursive = ReadBlkio(dir, "blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced_recursive");
    }

    /// <summary>io.stat "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.." → runc's Read/Write entries.</summary>
    static void IoV2(string dir, BlkioStats b)
    {
        string? text = CgroupFs.TryRead(Path.Combine(dir, "io.stat"));
        if (text is null) return;
        var bytes = new List<BlkioEntry>();
        var ios = new List<BlkioEntry>();
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 2) continue;
            var dev = f[0].Split(':');
            if (dev.Length != 2) continue;
            ulong maj = ParseU64(dev[0]), min = ParseU64(dev[1]);
            foreach (var kv in f.Skip(1))
            {
                int eq = kv.IndexOf('=');
                if (eq < 0) continue;
                ulong v = ParseU64(kv[(eq + 1)..]);
                switch (kv[..eq])
                {
                    case "rbytes": bytes.Add(new() { Major = maj, Minor = min, Op = "Read", Value = v }); break;
                    case "wbytes": bytes.Add(new() { Major = maj, Minor = min, Op = "Write", Value = v }); break;
                    case "rios": ios.Add(new() { Major = maj, Minor = min, Op = "Read", Value = v }); break;
                    case "wios": ios.Add(new() { Major = maj, Minor = min, Op = "Write", Value = v }); break;
                }
            }
        }
        b.IoServiceBytesRecursive = bytes.Count > 0 ? bytes : null;
        b.IoServicedRecursive = ios.Count > 0 ? ios : null;
    }

    static void Hugetlb(CgroupHierarchy h, string dir, SortedDictionary<string, HugetlbStats> result)
    {
        if (!Directory.Exists(dir)) return;
        // Page sizes are whatever hugetlb.<size>.* files the kernel offers.
        string suffix = h.IsUnified ? ".max" : ".limit_in_bytes";
        foreach (var path in Directory.EnumerateFiles(dir, "hugetlb.*" + suffix))
        {
            string name = Path.GetFileName(path);
            string size = name["hugetlb.".Length..^suffix.Length];
            if (size.Contains('.')) continue; // e.g. hugetlb.2MB.rsvd.max
            result[size] = h.IsUnified
                ? new HugetlbStats
                {
                    Usage = ReadU64(dir, $"hugetlb.{size}.current"),
                    Failcnt = ReadKeyValues(dir, $"hugetlb.{size}.events").GetValueOrDefault("max"),
                }
                : new HugetlbStats
                {
                    Usage = ReadU64(dir, $"hugetlb.{size}.usage_in_bytes"),
                    Max = ReadU64(dir, $"hugetlb.{size}.max_usage_in_bytes"),
                    Failcnt = ReadU64(dir, $"hugetlb.{size}.failcnt"),
                };
        }
    }
}
