using System.CommandLine;
using Berth.Engine;
using Berth.Engine.Containers;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>Options of run/create beyond the basic set: mounts, resources and devices. Value
    /// options listed here are known to <see cref="SeparateCommand"/> too.</summary>
    static readonly HashSet<string> MoreValueOptions =
    [
        "--mount", "--ulimit", "--device", "--memory-swap", "--memory-reservation", "--cpu-shares", "-c", "--cpuset-cpus", "--cpuset-mems",
        "--shm-size", "--group-add", "--sysctl", "--oom-score-adj", "--domainname",
        "--health-cmd", "--health-interval", "--health-timeout", "--health-retries", "--health-start-period", "--pod",
    ];
    static readonly HashSet<string> MoreFlagOptions = ["--oom-kill-disable", "--no-healthcheck", "--init"];

    sealed class MoreRunFlags
    {
        readonly Option<string[]> _mount = new("--mount") { Description = "attach a mount: type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…][,volume-nocopy][,tmpfs-size=…][,tmpfs-mode=…]" };
        readonly Option<string[]> _ulimit = new("--ulimit") { Description = "a resource limit: NAME=SOFT[:HARD] (e.g. nofile=1024:2048)" };
        readonly Option<string[]> _device = new("--device") { Description = "add a host device: HOST[:CONTAINER][:rwm]" };
        readonly Option<string?> _memorySwap = new("--memory-swap") { Description = "memory plus swap limit (-1: unlimited swap)" };
        readonly Option<string?> _memoryReservation = new("--memory-reservation") { Description = "memory soft limit" };
        readonly Option<string?> _cpuShares = new("--cpu-shares", "-c") { Description = "CPU shares (relative weight)" };
        readonly Option<string?> _cpusetCpus = new("--cpuset-cpus") { Description = "CPUs the container may use (0-3, 0,1)" };
        readonly Option<string?> _cpusetMems = new("--cpuset-mems") { Description = "memory nodes the container may use (0-3, 0,1)" };
        readonly Option<string?> _shmSize = new("--shm-size") { Description = "size of the container's private /dev/shm (default 64m)" };
        readonly Option<string[]> _groupAdd = new("--group-add") { Description = "additional groups (name or gid) for the container's process" };
        readonly Option<string[]> _sysctl = new("--sysctl") { Description = "a namespaced kernel parameter: KEY=VALUE (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)" };
        readonly Option<string?> _oomScoreAdj = new("--oom-score-adj") { Description = "the OOM killer's score adjustment (-1000 to 1000)" };
        readonly Option<bool> _oomKillDisable = new("--oom-kill-disable") { Description = "disable the OOM killer for the container" };
        readonly Option<string?> _domainname = new("--domainname") { Description = "the container's NIS domain name" };
        readonly Option<string?> _healthCmd = new("--health-cmd") { Description = "command to run to check health (run with /bin/sh -c)" };
        readonly Option<string?> _healthInterval = new("--health-interval") { Description = "time between checks (ms|s|m|h), default 30s" };
        readonly Option<string?> _healthTimeout = new("--health-timeout") { Description = "maximum time a check may take, default 30s" };
        readonly Option<string?> _healthRetries = new("--health-retries") { Description = "consecutive failures that make the container unhealthy, default 3" };
        readonly Option<string?> _healthStartPeriod = new("--health-start-period") { Description = "start-up time during which failures do not count" };
        readonly Option<bool> _noHealthcheck = new("--no-healthcheck") { Description = "disable any health check (the image's too)" };
        readonly Option<bool> _init = new("--init") { Description = "run an init as PID 1 that forwards signals and reaps processes" };
        readonly Option<string?> _pod = new("--pod") { Description = "run the container in a pod (sharing its network, IPC and UTS namespaces)" };

        public string? Pod(ParseResult p) => p.GetValue(_pod);

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { _mount, _ulimit, _device, _memorySwap, _memoryReservation, _cpuShares, _cpusetCpus, _cpusetMems, _shmSize,
                _groupAdd, _sysctl, _oomScoreAdj, _oomKillDisable, _domainname,
                _healthCmd, _healthInterval, _healthTimeout, _healthRetries, _healthStartPeriod, _noHealthcheck, _init, _pod })
                c.Options.Add(o);
        }

        /// <summary>The flags into the create request (docker's HostConfig/Config fields).</summary>
        public void Apply(ParseResult p, ContainerRecord rec)
        {
            var hc = rec.HostConfig;
            foreach (var m in p.GetValue(_mount) ?? []) hc.Mounts.Add(HostResources.ParseMount(m));
            foreach (var u in p.GetValue(_ulimit) ?? [])
            {
                var ul = HostResources.ParseUlimit(u);
                hc.Ulimits.RemoveAll(x => x.Name == ul.Name);
                hc.Ulimits.Add(ul);
            }
            foreach (var d in p.GetValue(_device) ?? []) hc.Devices.Add(HostResources.ParseDevice(d));
            if (p.GetValue(_memorySwap) is { } ms) hc.MemorySwap = ms == "-1" ? -1 : HostResources.ParseSizeFlag("--memory-swap", ms);
            if (p.GetValue(_memoryReservation) is { } mr) hc.MemoryReservation = HostResources.ParseSizeFlag("--memory-reservation", mr);
            if (p.GetValue(_shmSize) is { } shm) hc.ShmSize = HostResources.ParseSizeFlag("--shm-size", shm);
            if (p.GetValue(_cpuShares) is { } cs)
                hc.CpuShares = long.TryParse(cs, out var n) ? n : throw EngineException.Invalid($"invalid argument \"{cs}\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \"{cs}\": invalid syntax");
            hc.CpusetCpus = p.GetValue(_cpusetCpus) ?? "";
            hc.CpusetMems = p.GetValue(_cpusetMems) ?? "";
            hc.GroupAdd = [.. p.GetValue(_groupAdd) ?? []];
            foreach (var s in p.GetValue(_sysctl) ?? [])
            {
                var kv = s.Split('=', 2);
                if (kv.Length != 2 || kv[0].Length == 0) throw EngineException.Invalid($"invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not allowed");
                hc.Sysctls[kv[0]] = kv[1];
            }
            if (p.GetValue(_oomScoreAdj) is { } oom)
                hc.OomScoreAdj = int.TryParse(oom, out var o) ? o : throw EngineException.Invalid($"invalid argument \"{oom}\" for \"--oom-score-adj\" flag: strconv.ParseInt: parsing \"{oom}\": invalid syntax");
            if (p.GetValue(_oomKillDisable)) hc.OomKillDisable = true;
            rec.Config.Domainname = p.GetValue(_domainname) ?? "";
            if (p.GetValue(_init)) hc.Init = true;
            ApplyHealth(p, rec.Config);
        }

        /// <summary>The --health-* flags as the docker CLI turns them into Config.Healthcheck.</summary>
        void ApplyHealth(ParseResult p, ContainerConfig cfg)
        {
            var cmd = p.GetValue(_healthCmd);
            long? Duration(Option<string?> o)
            {
                if (p.GetValue(o) is not { } s) return null;
                var ns = Healthcheck.ParseDuration(o.Name, s);
                if (ns < 0) throw EngineException.Invalid($"{o.Name} cannot be negative");
                return ns;
            }
            var interval = Duration(_healthInterval);
            var timeout = Duration(_healthTimeout);
            var start = Duration(_healthStartPeriod);
            int? retries = null;
            if (p.GetValue(_healthRetries) is { } rs)
            {
                retries = int.TryParse(rs, out var r) ? r : throw EngineException.Invalid($"invalid argument \"{rs}\" for \"--health-retries\" flag: strconv.ParseInt: parsing \"{rs}\": invalid syntax");
                if (r < 0) throw EngineException.Invalid("--health-retries cannot be negative");
            }
            var any = cmd is not null || interval is not null || timeout is not null || start is not null || retries is not null;
            if (p.GetValue(_noHealthcheck))
            {
                if (any) throw EngineException.Invalid("--no-healthcheck conflicts with --health-* options");
                cfg.Healthcheck = new Berth.Oci.Image.HealthConfig { Test = ["NONE"] };
                return;
            }
            if (!any) return;
            cfg.Healthcheck = new Berth.Oci.Image.HealthConfig
            {
                Test = cmd is { Length: > 0 } ? ["CMD-SHELL", cmd] : null,
                Interval = interval, Timeout = timeout, StartPeriod = start, Retries = retries,
            };
        }
    }
}
