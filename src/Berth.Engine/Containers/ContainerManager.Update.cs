using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Oci.Runtime;

namespace Berth.Engine.Containers;

/// <summary>`docker update`'s request (POST /containers/ID/update): Docker's Resources fields and the
/// restart policy. As dockerd reads them, 0 and "" leave a field unchanged; PidsLimit null leaves it
/// unchanged and 0 or less lifts the limit; a null or unnamed RestartPolicy leaves the policy.</summary>
public sealed class ContainerUpdate
{
    public long Memory { get; set; }
    public long MemorySwap { get; set; }
    public long MemoryReservation { get; set; }
    /// <summary>Deprecated by docker: accepted with dockerd's warning, never applied.</summary>
    public long KernelMemory { get; set; }
    public long NanoCpus { get; set; }
    public long CpuShares { get; set; }
    public long CpuPeriod { get; set; }
    public long CpuQuota { get; set; }
    public string? CpusetCpus { get; set; }
    public string? CpusetMems { get; set; }
    public long? PidsLimit { get; set; }
    public ushort BlkioWeight { get; set; }
    /// <summary>Kept for the next start, not applied live (as dockerd 20.10 does).</summary>
    public long CpuRealtimePeriod { get; set; }
    public long CpuRealtimeRuntime { get; set; }
    public RestartPolicy? RestartPolicy { get; set; }
    /// <summary>The Docker fields Berth does not update (the API refuses them when set).</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Rest { get; set; }

    internal bool ChangesRestartPolicy => RestartPolicy is { Name.Length: > 0 };

    internal bool ChangesLimits => (Memory | MemorySwap | MemoryReservation | NanoCpus | CpuShares | CpuPeriod | CpuQuota | BlkioWeight) != 0
        || !string.IsNullOrEmpty(CpusetCpus) || !string.IsNullOrEmpty(CpusetMems) || PidsLimit is not null;

    /// <summary>The request's resource fields as a HostConfig, for the checks shared with create.</summary>
    internal HostConfig AsHostConfig() => new()
    {
        Memory = Memory, MemorySwap = MemorySwap, MemoryReservation = MemoryReservation, NanoCpus = NanoCpus,
        CpuShares = CpuShares, CpuPeriod = CpuPeriod, CpuQuota = CpuQuota, CpusetCpus = CpusetCpus ?? "",
        CpusetMems = CpusetMems ?? "", PidsLimit = PidsLimit, BlkioWeight = BlkioWeight,
        CpuRealtimePeriod = CpuRealtimePeriod, CpuRealtimeRuntime = CpuRealtimeRuntime,
    };

    /// <summary>Real-time fields only reach the bundle (the next start), as dockerd 20.10 keeps them.</summary>
    internal bool ChangesRealtime => (CpuRealtimePeriod | CpuRealtimeRuntime) != 0;
}

public sealed partial class ContainerManager
{
    /// <summary>
    /// `docker update`: changes a container's resource limits and restart policy in any state. Everything
    /// is checked before anything changes; a running or paused container gets the new limits from the
    /// runtime (`update --resources`) at once, and in every state the bundle's config.json and the record
    /// keep them, so a later start has them too and inspect shows them. A runtime failure puts the
    /// limits it touched back and leaves the record and bundle as they were. Returns dockerd's warnings.
    /// </summary>
    public List<string> Update(string nameOrId, ContainerUpdate u)
    {
        var warnings = new List<string>();
        // dockerd's verifyContainerSettings: the request alone, before the container is looked up
        var req = u.AsHostConfig();
        HostResources.CheckResources(req, update: true, warnings);
        u.BlkioWeight = req.BlkioWeight; // dropped when the kernel cannot weigh block I/O
        (u.CpuRealtimePeriod, u.CpuRealtimeRuntime) = (req.CpuRealtimePeriod, req.CpuRealtimeRuntime); // and real-time without RT group scheduling
        if (u.PidsLimit is < 0) u.PidsLimit = 0;
        if (u.KernelMemory != 0) warnings.Add("Specifying a kernel memory limit is deprecated and will be removed in a future release.");
        if (u.ChangesRestartPolicy) CheckRestartPolicy(u.RestartPolicy!);

        var id = Store.Resolve(nameOrId);
        ContainerRecord c;
        using (Store.Lock(id))
        {
            c = Store.Load(id);
            if (ReconcileLocked(c)) Store.Save(c);
            var old = CopyLimits(c.HostConfig);
            Merge(c, u);
            if (u.ChangesLimits || u.ChangesRealtime)
            {
                if (c.State.Running && u.ChangesLimits) UpdateRunning(c, LimitsFor(c.HostConfig, u, revert: false), () => LimitsFor(old, u, revert: true));
                var specPath = Path.Combine(Store.BundleDir(id), "config.json");
                var spec = SpecJson.ParseSpec(File.ReadAllBytes(specPath), specPath);
                HostResources.SetLimits((spec.Linux ??= new Oci.Runtime.Linux()).Resources ??= new LinuxResources(), c.HostConfig);
                ContainerStore.WriteAtomic(specPath, SpecJson.Serialize(spec), durable: true);
            }
            Store.Save(c, durable: true);
        }
        Events.ContainerEvents.Emit(Store.Root, c, "update");
        return warnings;
    }

    static void CheckRestartPolicy(RestartPolicy rp)
    {
        if (rp.Name is not ("no" or "always" or "unless-stopped" or "on-failure")) throw EngineException.Invalid($"invalid restart policy '{rp.Name}'");
        if (rp.Name != "on-failure" && rp.MaximumRetryCount != 0) throw EngineException.Invalid($"maximum retry count cannot be used with restart policy '{rp.Name}'");
        if (rp.MaximumRetryCount < 0) throw EngineException.Invalid("maximum retry count cannot be negative");
    }

    /// <summary>The request into the record's HostConfig, with dockerd's checks against what is set
    /// already (container.UpdateContainer): --cpus excludes a set period or quota and the reverse, and a
    /// larger memory limit needs a larger memory+swap limit in the same request.</summary>
    static void Merge(ContainerRecord c, ContainerUpdate u)
    {
        var hc = c.HostConfig;
        EngineException Conflict(string why) => new(ErrorKind.FailedPrecondition, $"Cannot update container {c.Id}: {why}");
        if (u.NanoCpus > 0 && hc.CpuPeriod > 0) throw Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set");
        if (u.NanoCpus > 0 && hc.CpuQuota > 0) throw Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
        if (u.CpuPeriod > 0 && hc.NanoCpus > 0) throw Conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set");
        if (u.CpuQuota > 0 && hc.NanoCpus > 0) throw Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
        if (u.Memory != 0 && u.Memory > hc.MemorySwap && u.MemorySwap == 0)
            throw Conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
        if (u.ChangesRestartPolicy && hc.AutoRemove && u.RestartPolicy!.Name != "no")
            throw Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container");
        if (u.BlkioWeight != 0) hc.BlkioWeight = u.BlkioWeight;
        if (u.CpuShares != 0) hc.CpuShares = u.CpuShares;
        if (u.NanoCpus != 0) hc.NanoCpus = u.NanoCpus;
        if (u.CpuPeriod != 0) hc.CpuPeriod = u.CpuPeriod;
        if (u.CpuQuota != 0) hc.CpuQuota = u.CpuQuota;
        if (!string.IsNullOrEmpty(u.CpusetCpus)) hc.CpusetCpus = u.CpusetCpus;
        if (!string.IsNullOrEmpty(u.CpusetMems)) hc.CpusetMems = u.CpusetMems;
        if (u.Memory != 0) hc.Memory = u.Memory;
        if (u.MemorySwap != 0) hc.MemorySwap = u.MemorySwap;
        if (u.MemoryReservation != 0) hc.MemoryReservation = u.MemoryReservation;
        if (u.PidsLimit is { } pids) hc.PidsLimit = pids;
        if (u.CpuRealtimePeriod != 0) hc.CpuRealtimePeriod = u.CpuRealtimePeriod;
        if (u.CpuRealtimeRuntime != 0) hc.CpuRealtimeRuntime = u.CpuRealtimeRuntime;
        // What the kernel would refuse half-way through (memory+swap below memory): refused before.
        if (hc.MemorySwap > 0 && hc.Memory == 0) throw Conflict("You should always set the Memory limit when using Memoryswap limit, see usage");
        if (hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory) throw Conflict("Minimum memoryswap limit should be larger than memory limit, see usage");
        if (u.ChangesRestartPolicy) hc.RestartPolicy = new RestartPolicy { Name = u.RestartPolicy!.Name, MaximumRetryCount = u.RestartPolicy.MaximumRetryCount };
    }

    static HostConfig CopyLimits(HostConfig hc) => new()
    {
        Memory = hc.Memory, MemorySwap = hc.MemorySwap, MemoryReservation = hc.MemoryReservation, NanoCpus = hc.NanoCpus,
        CpuShares = hc.CpuShares, CpuPeriod = hc.CpuPeriod, CpuQuota = hc.CpuQuota, CpusetCpus = hc.CpusetCpus,
        CpusetMems = hc.CpusetMems, PidsLimit = hc.PidsLimit, BlkioWeight = hc.BlkioWeight,
        CpuRealtimePeriod = hc.CpuRealtimePeriod, CpuRealtimeRuntime = hc.CpuRealtimeRuntime,
    };

    /// <summary>The cgroup values of the fields the request touches, taken from <paramref name="hc"/>. With
    /// <paramref name="revert"/> (putting the old limits back) an unset field gets the kernel's default
    /// ("no limit", 1024 shares, a 100 ms period, every online CPU and node); weights never set are left.</summary>
    static LinuxResources LimitsFor(HostConfig hc, ContainerUpdate u, bool revert)
    {
        var r = new LinuxResources();
        if (u.Memory != 0 || u.MemorySwap != 0)
        {
            r.Memory = new Memory { Limit = hc.Memory > 0 ? hc.Memory : -1 };
            if (HostResources.SwapLimitSupported && (hc.MemorySwap != 0 || revert)) r.Memory.Swap = hc.MemorySwap != 0 ? hc.MemorySwap : -1;
        }
        if (u.MemoryReservation != 0 && hc.MemoryReservation > 0) (r.Memory ??= new Memory()).Reservation = hc.MemoryReservation;
        Cpu Cpu() => r.Cpu ??= new Cpu();
        if (u.CpuShares != 0 && (hc.CpuShares > 0 || revert)) Cpu().Shares = hc.CpuShares > 0 ? (ulong)hc.CpuShares : 1024;
        if (u.NanoCpus != 0 || u.CpuPeriod != 0 || u.CpuQuota != 0)
        {
            if (hc.NanoCpus > 0) { Cpu().Period = 100_000; Cpu().Quota = hc.NanoCpus / 10_000; }
            else if (revert) { Cpu().Period = hc.CpuPeriod > 0 ? (ulong)hc.CpuPeriod : 100_000; Cpu().Quota = hc.CpuQuota != 0 ? hc.CpuQuota : -1; }
            else
            {
                if (u.CpuPeriod != 0) Cpu().Period = (ulong)hc.CpuPeriod;
                if (u.CpuQuota != 0) Cpu().Quota = hc.CpuQuota;
            }
        }
        // a cpuset never set goes back to every online CPU or node (what the cgroup had from its parent)
        if (!string.IsNullOrEmpty(u.CpusetCpus) && (hc.CpusetCpus.Length > 0 || revert))
            Cpu().Cpus = hc.CpusetCpus.Length > 0 ? hc.CpusetCpus : HostResources.Online("/sys/devices/system/cpu/online");
        if (!string.IsNullOrEmpty(u.CpusetMems) && (hc.CpusetMems.Length > 0 || revert))
            Cpu().Mems = hc.CpusetMems.Length > 0 ? hc.CpusetMems : HostResources.Online("/sys/devices/system/node/online");
        if (u.PidsLimit is not null) r.Pids = new Pids { Limit = hc.PidsLimit is > 0 ? hc.PidsLimit.Value : -1 };
        if (u.BlkioWeight != 0 && hc.BlkioWeight > 0) r.BlockIO = new BlockIo { Weight = hc.BlkioWeight };
        return r;
    }

    /// <summary>`runtime update --resources FILE ID`; on failure the old values go back (best effort) and
    /// the runtime's error is thrown.</summary>
    void UpdateRunning(ContainerRecord c, LinuxResources limits, Func<LinuxResources> revert)
    {
        var file = Path.Combine(Store.RunDir(c.Id), $"update-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}.json");
        var log = file + ".log";
        try
        {
            string? error = RunUpdate(c.Id, limits, file, log);
            if (error is null) return;
            RunUpdate(c.Id, revert(), file, log);
            throw new EngineException(ErrorKind.Internal, $"Cannot update container {c.Id}: {error}");
        }
        finally { File.Delete(file); File.Delete(log); }
    }

    string? RunUpdate(string id, LinuxResources limits, string file, string log)
    {
        File.WriteAllBytes(file, JsonSerializer.SerializeToUtf8Bytes(limits, SpecJsonContext.Default.LinuxResources));
        File.Delete(log);
        using var devnull = RuntimeClient.DevNull();
        var rc = Runtime.Run(["update", "--resources", file, id], devnull.Value, devnull.Value, devnull.Value, log);
        return rc == 0 ? null : RuntimeClient.LastError(log) ?? $"the runtime's update exited with {rc}";
    }
}
