using System.Globalization;
using System.Text;
using System.Text.Json;
using Berth.Oci.Runtime;

namespace Berth.Linux.Cgroups;

// Resource writes. Zero means "not set" for memory limit/swap/reservation, cpu shares/quota/period and
// the realtime values, as in runc (OCI clients send 0 for "unset"); every other present field is
// written or refused with a CgroupException, never dropped.
internal sealed partial class CgroupManager
{
    public IReadOnlyList<string> Apply(LinuxResources r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var warnings = new List<string>();
        if (r.Cpu is { } cpu) { ApplyCpuset(cpu); }
        if (r.Devices is { Count: > 0 } devices) ApplyDevices(devices);
        if (r.Memory is { } mem) ApplyMemory(mem, warnings);
        if (r.Cpu is { } cpu2) ApplyCpu(cpu2);
        if (r.Pids is { } pids)
        {
            var (_, dir) = Require("pids", "pids.limit");
            Write(dir, "pids.max", pids.Limit > 0 ? pids.Limit.ToString(CultureInfo.InvariantCulture) : "max");
        }
        if (r.BlockIO is { } bio) ApplyBlockIo(bio);
        if (r.HugepageLimits is { Count: > 0 } huge) ApplyHugetlb(huge);
        if (r.Network is { } net) ApplyNetwork(net);
        if (r.Rdma is { Count: > 0 } rdma) ApplyRdma(rdma);
        if (r.Unified is { Count: > 0 } unified) ApplyUnified(unified);
        return warnings;
    }

    static string S(long v) => v.ToString(CultureInfo.InvariantCulture);
    static string S(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    // ---- memory ------------------------------------------------------------------------------------

    void ApplyMemory(Memory m, List<string> warnings)
    {
        // Kernel memory limits are deprecated (removed from v1 in Linux 6.1, never in v2): runc accepts
        // and ignores them with a warning, and so do we.
        if (m.Kernel is not null) warnings.Add("memory.kernel (kernel memory limit) is deprecated and was ignored");
        if (m.KernelTcp is not null) warnings.Add("memory.kernelTCP (kernel TCP memory limit) is deprecated and was ignored");

        long limit = m.Limit ?? 0, swap = m.Swap ?? 0, reservation = m.Reservation ?? 0;
        bool any = limit != 0 || swap != 0 || reservation != 0 || m.Swappiness is not null
                   || m.DisableOomKiller is not null || m.UseHierarchy is not null;
        if (!any) return;
        var (h, dir) = Require("memory", "memory");

        if (m.CheckBeforeUpdate == true && limit > 0)
        {
            string usageFile = h.IsUnified ? "memory.current" : "memory.usage_in_bytes";
            ulong usage = ulong.Parse(CgroupFs.Read(Path.Combine(dir, usageFile)), CultureInfo.InvariantCulture);
            if ((ulong)limit < usage)
                throw new CgroupException($"cannot set memory.limit to {limit}: it is below the current usage {usage} (checkBeforeUpdate)");
        }
        if (h.IsUnified) ApplyMemoryV2(m, dir, limit, swap, reservation);
        else ApplyMemoryV1(m, dir, limit, swap, reservation);
    }

    void ApplyMemoryV1(Memory m, string dir, long limit, long swap, long reservation)
    {
        const string memsw = "memory.memsw.limit_in_bytes";
        // Lifting the memory limit also lifts memory+swap when swap is not given (runc does the same),
        // else the old memsw limit would still cap the container.
        if (limit == -1 && swap == 0 && File.Exists(Path.Combine(dir, memsw))) swap = -1;

        if (swap != 0)
        {
            string swapFile = RequireFile(dir, memsw, "memory.swap", "swap accounting disabled");
            if (limit != 0)
            {
                // The kernel keeps memsw >= limit at all times: raise memsw first when growing,
                // lower the limit first when shrinking.
                long current = long.Parse(CgroupFs.Read(Path.Combine(dir, "memory.limit_in_bytes")), CultureInfo.InvariantCulture);
                if (swap == -1 || current < swap)
                {
                    Write(swapFile, S(swap));
                    Write(dir, "memory.limit_in_bytes", S(limit));
                }
                else
                {
                    Write(dir, "memory.limit_in_bytes", S(limit));
                    Write(swapFile, S(swap));
                }
            }
            else Write(swapFile, S(swap));
        }
        else if (limit != 0) Write(dir, "memory.limit_in_bytes", S(limit));

        if (reservation != 0) Write(RequireFile(dir, "memory.soft_limit_in_bytes", "memory.reservation"), S(reservation));
        if (m.Swappiness is { } sw)
        {
            if (sw > 100) throw new CgroupException($"cannot set memory.swappiness: invalid value {sw} (valid range is 0-100)");
            Write(RequireFile(dir, "memory.swappiness", "memory.swappiness"), S(sw));
        }
        if (m.DisableOomKiller is { } noOom)
            Write(RequireFile(dir, "memory.oom_control", "memory.disableOOMKiller"), noOom ? "1" : "0");
        if (m.UseHierarchy is { } useH)
            Write(RequireFile(dir, "memory.use_hierarchy", "memory.useHierarchy"), useH ? "1" : "0");
    }

    void ApplyMemoryV2(Memory m, string dir, long limit, long swap, long reservation)
    {
        if (SwapV2(limit, swap) is { } swapMax)
            Write(RequireFile(dir, "memory.swap.max", "memory.swap", "swap accounting disabled"), swapMax);
        if (limit != 0) Write(RequireFile(dir, "memory.max", "memory.limit"), limit == -1 ? "max" : S(limit));
        if (reservation != 0) Write(RequireFile(dir, "memory.low", "memory.reservation"), reservation == -1 ? "max" : S(reservation));
        if (m.Swappiness is { } sw)
            Write(RequireFile(dir, "memory.swappiness", "memory.swappiness", "not supported on cgroup v2"), S(sw));
        if (m.DisableOomKiller == true)
            throw new CgroupException("cannot set memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer");
        if (m.UseHierarchy == false)
            throw new CgroupException("cannot set memory.useHierarchy to false: cgroup v2 is always hierarchical");
    }

    /// <summary>
    /// OCI swap is memory+swap (v1 memsw); v2's memory.swap.max is swap alone: swap - limit, "max" for
    /// -1. Null when nothing is to be written. Mirrors runc's ConvertMemorySwapToCgroupV2Value.
    /// </summary>
    internal static string? SwapV2(long limit, long swap)
    {
        if (swap == 0) return limit == -1 ? "max" : null; // unlimited memory lifts swap too
        if (swap == -1) return "max";
        if (limit == 0 || limit == -1)
            throw new CgroupException("cannot set memory.swap: a swap limit needs a memory limit");
        if (swap < limit)
            throw new CgroupException($"cannot set memory.swap: memory+swap {swap} must be >= the memory limit {limit}");
        return S(swap - limit);
    }

    // ---- cpu / cpuset --------------------------------------------------------------------------------

    void ApplyCpuset(Cpu c)
    {
        if (string.IsNullOrEmpty(c.Cpus) && string.IsNullOrEmpty(c.Mems)) return;
        var (_, dir) = Require("cpuset", string.IsNullOrEmpty(c.Cpus) ? "cpu.mems" : "cpu.cpus");
        if (!string.IsNullOrEmpty(c.Cpus)) Write(dir, "cpuset.cpus", c.Cpus);
        if (!string.IsNullOrEmpty(c.Mems)) Write(dir, "cpuset.mems", c.Mems);
    }

    void ApplyCpu(Cpu c)
    {
        ulong shares = c.Shares ?? 0, period = c.Period ?? 0, rtPeriod = c.RealtimePeriod ?? 0;
        long quota = c.Quota ?? 0, rtRuntime = c.RealtimeRuntime ?? 0;
        bool any = shares != 0 || period != 0 || quota != 0 || c.Burst is not null || rtPeriod != 0
                   || rtRuntime != 0 || c.Idle is not null;
        if (!any) return;
        var (h, dir) = Require("cpu", "cpu");
        if (h.IsUnified) ApplyCpuV2(c, dir, shares, quota, period, rtPeriod, rtRuntime);
        else ApplyCpuV1(c, dir, shares, quota, period, rtPeriod, rtRuntime);
    }

    void ApplyCpuV1(Cpu c, string dir, ulong shares, long quota, ulong period, ulong rtPeriod, long rtRuntime)
    {
        if (shares != 0)
        {
            Write(dir, "cpu.shares", S(shares));
            // The kernel clamps shares to [2, 262144] silently; report it instead.
            string got = CgroupFs.Read(Path.Combine(dir, "cpu.shares"));
            if (got != S(shares))
                throw new CgroupException($"cannot set cpu.shares to {shares}: the kernel set {got} (valid range is 2-262144)", Path.Combine(dir, "cpu.shares"));
        }
        bool quotaWritten = false;
        if (period != 0)
        {
            try { Write(dir, "cpu.cfs_period_us", S(period)); }
            catch (CgroupException e) when (e.Errno == Errno.EINVAL && quota != 0)
            {
                // The new period may be refused against the old quota (quota/period must stay
                // within the parent's): set the quota first, then the period.
                Write(dir, "cpu.cfs_quota_us", S(quota));
                quotaWritten = true;
                Write(dir, "cpu.cfs_period_us", S(period));
            }
        }
        if (quota != 0 && !quotaWritten) Write(dir, "cpu.cfs_quota_us", S(quota));
        if (c.Burst is { } burst)
            Write(RequireFile(dir, "cpu.cfs_burst_us", "cpu.burst", "kernel without CFS burst"), S(burst));
        // Period before runtime: runtime must fit in the period.
        if (rtPeriod != 0)
            Write(RequireFile(dir, "cpu.rt_period_us", "cpu.realtimePeriod", "kernel without CONFIG_RT_GROUP_SCHED"), S(rtPeriod));
        if (rtRuntime != 0)
            Write(RequireFile(dir, "cpu.rt_runtime_us", "cpu.realtimeRuntime", "kernel without CONFIG_RT_GROUP_SCHED"), S(rtRuntime));
        if (c.Idle is { } idle) Write(RequireFile(dir, "cpu.idle", "cpu.idle"), S(idle));
    }

    void ApplyCpuV2(Cpu c, string dir, ulong shares, long quota, ulong period, ulong rtPeriod, long rtRuntime)
    {
        if (rtPeriod != 0 || rtRuntime != 0)
            throw new CgroupException("cannot set cpu.realtimePeriod/realtimeRuntime: not supported on cgroup v2");
        if (shares != 0) Write(RequireFile(dir, "cpu.weight", "cpu.shares"), S(SharesToWeight(shares)));
        if (quota != 0 || period != 0)
        {
            // "max" keeps the quota unlimited; without a period the kernel keeps the current one.
            string value = quota > 0 ? S(quota) : "max";
            if (period != 0) value += " " + S(period);
            Write(RequireFile(dir, "cpu.max", "cpu.quota"), value);
        }
        if (c.Burst is { } burst) Write(RequireFile(dir, "cpu.max.burst", "cpu.burst"), S(burst));
        if (c.Idle is { } idle) Write(RequireFile(dir, "cpu.idle", "cpu.idle"), S(idle));
    }

    /// <summary>v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], as runc converts.</summary>
    internal static ulong SharesToWeight(ulong shares)
    {
        shares = Math.Clamp(shares, 2UL, 262144UL);
        return 1 + ((shares - 2) * 9999) / 262142;
    }

    // ---- block I/O -----------------------------------------------------------------------------------

    void ApplyBlockIo(BlockIo b)
    {
        bool any = b.Weight is not null || b.LeafWeight is not null || b.WeightDevice is { Count: > 0 }
                   || b.ThrottleReadBpsDevice is { Count: > 0 } || b.ThrottleWriteBpsDevice is { Count: > 0 }
                   || b.ThrottleReadIopsDevice is { Count: > 0 } || b.ThrottleWriteIopsDevice is { Count: > 0 };
        if (!any) return;
        var (h, dir) = Require(Layout.For("io") is not null ? "io" : "blkio", "blockIO");
        if (h.IsUnified) ApplyIoV2(b, dir);
        else ApplyBlkioV1(b, dir);
    }

    /// <summary>The first of <paramref name="files"/> that exists (CFQ names, then BFQ ones).</summary>
    static string FirstExisting(string dir, string setting, params string[] files)
    {
        foreach (var f in files)
            if (File.Exists(Path.Combine(dir, f))) return Path.Combine(dir, f);
        throw new CgroupException($"cannot set {setting}: none of {string.Join(", ", files)} exists (no proportional-weight I/O scheduler)", dir);
    }

    void ApplyBlkioV1(BlockIo b, string dir)
    {
        if (b.Weight is { } w) Write(FirstExisting(dir, "blockIO.weight", "blkio.weight", "blkio.bfq.weight"), S(w));
        if (b.LeafWeight is { } lw) Write(RequireFile(dir, "blkio.leaf_weight", "blockIO.leafWeight", "CFQ scheduler only"), S(lw));
        foreach (var d in b.WeightDevice ?? [])
        {
            if (d.Weight is { } dw)
                Write(FirstExisting(dir, "blockIO.weightDevice", "blkio.weight_device", "blkio.bfq.weight_device"), $"{d.Major}:{d.Minor} {dw}");
            if (d.LeafWeight is { } dlw)
                Write(RequireFile(dir, "blkio.leaf_weight_device", "blockIO.weightDevice.leafWeight", "CFQ scheduler only"), $"{d.Major}:{d.Minor} {dlw}");
        }
        void Throttle(List<ThrottleDevice>? list, string file, string setting)
        {
            foreach (var t in list ?? [])
                Write(RequireFile(dir, file, setting), $"{t.Major}:{t.Minor} {t.Rate}");
        }
        Throttle(b.ThrottleReadBpsDevice, "blkio.throttle.read_bps_device", "blockIO.throttleReadBpsDevice");
        Throttle(b.ThrottleWriteBpsDevice, "blkio.throttle.write_bps_device", "blockIO.throttleWriteBpsDevice");
        Throttle(b.ThrottleReadIopsDevice, "blkio.throttle.read_iops_device", "blockIO.throttleReadIOPSDevice");
        Throttle(b.ThrottleWriteIopsDevice, "blkio.throttle.write_iops_device", "blockIO.throttleWriteIOPSDevice");
    }

    /// <summary>blkio weight [10, 1000] → io.weight [1, 10000], as runc converts.</summary>
    internal static ulong BlkioWeightToIoWeight(ulong w) => 1 + (Math.Clamp(w, 10UL, 1000UL) - 10) * 9999 / 990;

    void ApplyIoV2(BlockIo b, string dir)
    {
        if (b.LeafWeight is not null || b.WeightDevice?.Any(d => d.LeafWeight is not null) == true)
            throw new CgroupException("cannot set blockIO leafWeight: not supported on cgroup v2");
        // BFQ takes blkio's own weight range; io.weight (the cost model) takes 1-10000.
        bool bfq = File.Exists(Path.Combine(dir, "io.bfq.weight"));
        if (b.Weight is { } w)
        {
            if (bfq) Write(dir, "io.bfq.weight", S(w));
            else Write(RequireFile(dir, "io.weight", "blockIO.weight"), S(BlkioWeightToIoWeight(w)));
        }
        foreach (var d in b.WeightDevice ?? [])
        {
            if (d.Weight is not { } dw) continue;
            if (bfq) Write(dir, "io.bfq.weight", $"{d.Major}:{d.Minor} {dw}");
            else Write(RequireFile(dir, "io.weight", "blockIO.weightDevice"), $"{d.Major}:{d.Minor} {BlkioWeightToIoWeight(dw)}");
        }
        // io.max takes one line per device with any of rbps/wbps/riops/wiops.
        var lines = new Dictionary<(long, long), StringBuilder>();
        var order = new List<(long, long)>();
        void Add(List<ThrottleDevice>? list, string key)
        {
            foreach (var t in list ?? [])
            {
                if (!lines.TryGetValue((t.Major, t.Minor), out var sb))
                {
                    lines[(t.Major, t.Minor)] = sb = new StringBuilder($"{t.Major}:{t.Minor}");
                    order.Add((t.Major, t.Minor));
                }
                sb.Append(' ').Append(key).Append('=').Append(t.Rate == 0 ? "max" : S(t.Rate));
            }
        }
        Add(b.ThrottleReadBpsDevice, "rbps");
        Add(b.ThrottleWriteBpsDevice, "wbps");
        Add(b.ThrottleReadIopsDevice, "riops");
        Add(b.ThrottleWriteIopsDevice, "wiops");
        if (order.Count > 0)
        {
            string ioMax = RequireFile(dir, "io.max", "blockIO throttling");
            foreach (var key in order) Write(ioMax, lines[key].ToString());
        }
    }

    // ---- hugetlb, network, rdma, unified ------------------------------------------------------------

    void ApplyHugetlb(List<HugepageLimit> limits)
    {
        var (h, dir) = Require("hugetlb", "hugepageLimits");
        foreach (var l in limits)
        {
            if (l.PageSize.Length == 0 || l.PageSize.Contains('/') || l.PageSize.Contains(".."))
                throw new CgroupException($"cannot set hugepageLimits: invalid page size \"{l.PageSize}\"");
            string file = h.IsUnified ? $"hugetlb.{l.PageSize}.max" : $"hugetlb.{l.PageSize}.limit_in_bytes";
            Write(RequireFile(dir, file, $"hugepageLimits {l.PageSize}", "page size not supported by the kernel"), S(l.Limit));
        }
    }

    void ApplyNetwork(NetworkResources n)
    {
        // net_cls/net_prio only exist in v1; on v2 such limits are done with eBPF, not cgroup files.
        if (n.ClassId is { } classId)
        {
            var (h, dir) = Require("net_cls", "network.classID");
            if (h.IsUnified) throw new CgroupException("cannot set network.classID: net_cls is cgroup v1 only");
            Write(dir, "net_cls.classid", S(classId));
        }
        if (n.Priorities is { Count: > 0 } prios)
        {
            var (h, dir) = Require("net_prio", "network.priorities");
            if (h.IsUnified) throw new CgroupException("cannot set network.priorities: net_prio is cgroup v1 only");
            foreach (var p in prios)
            {
                if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("name", out var name) || !p.TryGetProperty("priority", out var prio))
                    throw new CgroupException("cannot set network.priorities: each entry needs \"name\" and \"priority\"");
                Write(dir, "net_prio.ifpriomap", $"{name.GetString()} {prio.GetUInt32()}");
            }
        }
    }

    void ApplyRdma(Dictionary<string, JsonElement> rdma)
    {
        var (_, dir) = Require("rdma", "rdma");
        foreach (var (device, limits) in rdma)
        {
            var sb = new StringBuilder(device);
            if (limits.ValueKind == JsonValueKind.Object)
            {
                if (limits.TryGetProperty("hcaHandles", out var hh) && hh.ValueKind == JsonValueKind.Number) sb.Append(" hca_handle=").Append(hh.GetUInt32());
                if (limits.TryGetProperty("hcaObjects", out var ho) && ho.ValueKind == JsonValueKind.Number) sb.Append(" hca_object=").Append(ho.GetUInt32());
            }
            if (sb.Length == device.Length) continue; // neither limit given for this device
            Write(RequireFile(dir, "rdma.max", $"rdma {device}"), sb.ToString());
        }
    }

    void ApplyUnified(Dictionary<string, string> unified)
    {
        var (_, dir) = Unified ?? throw new CgroupException("cannot set unified: cgroup v2 is not mounted");
        foreach (var (key, value) in unified)
        {
            if (key.Length == 0 || key.Contains('/') || key.Contains("..") || key.Contains('\0') || key == ".")
                throw new CgroupException($"cannot set unified \"{key}\": not a cgroup file name");
            Write(RequireFile(dir, key, $"unified \"{key}\""), value);
        }
    }

    // ---- devices -------------------------------------------------------------------------------------

    void ApplyDevices(List<DeviceCgroup> rules)
    {
        // The devices controller is a v1 hierarchy, or on v2 an eBPF program attached to the cgroup.
        if (Find("devices") is { H.IsUnified: false } v1)
        {
            ApplyDevicesV1(rules, v1.Dir);
            return;
        }
        var (_, dir) = Unified ?? throw new CgroupException("cannot set devices: neither the devices controller nor cgroup v2 is mounted");
        var program = DeviceFilter.Build(rules);
        if (_options.AttachDeviceFilter is { } attach) attach(dir, program);
        else DeviceFilter.Attach(dir, program);
    }

    void ApplyDevicesV1(List<DeviceCgroup> rules, string dir)
    {
        for (int i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            string file = rule.Allow ? "devices.allow" : "devices.deny";
            string type = DeviceFilter.TypeOf(rule);
            // "a" (any type) resets the whole list to allow-all or deny-all; the kernel ignores
            // major/minor/access for it, so write the short form.
            Write(dir, file, type == "a" ? "a" : DeviceFilter.V1Line(rule));
        }
    }
}
