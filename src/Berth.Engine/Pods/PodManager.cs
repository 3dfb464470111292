using System.Text;
using Berth.Engine.Containers;
using Berth.Engine.Monitor;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Pods;

/// <summary>Owns pods: their records, their infra process (started on `pod start`, on the first
/// `run --pod` and whenever a container of a stopped pod starts) and the lifecycle verbs over their
/// containers. Daemonless like containers: liveness comes from the kernel (pid + start time).</summary>
public sealed class PodManager(ContainerManager containers)
{
    public PodStore Store { get; } = new(containers.Store.Root, containers.Store.RunRoot);
    public ContainerManager Containers { get; } = containers;

    /// <summary>`pod create`; <paramref name="network"/> from <see cref="PodNetworking.Prepare"/> (null:
    /// a namespace with only loopback, `--network none`).</summary>
    public PodRecord Create(string? name, string? hostname, Dictionary<string, string> labels, PodInfraConfig? network = null)
    {
        var id = ContainerStore.NewId();
        name = string.IsNullOrEmpty(name) ? NameGenerator.Next() + "_pod" : name;
        if (!ContainerStore.ValidName(name)) throw EngineException.Invalid($"invalid pod name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        hostname = string.IsNullOrEmpty(hostname) ? name : hostname;
        if (hostname.Length > 64 || hostname.Any(ch => char.IsWhiteSpace(ch) || ch == '/'))
            throw EngineException.Invalid($"invalid hostname \"{hostname}\"");
        var p = new PodRecord { Id = id, Name = name, Hostname = hostname, Labels = labels, Created = JsonFileLog.FormatTime(DateTime.UtcNow) };
        if (network is not null) p.InfraConfig = network;
        if (p.InfraConfig.HostNetwork) p.SharedNamespaces = ["ipc", "uts"];
        Store.Add(p);
        return p;
    }

    /// <summary>Loads a pod with its containers and state as they are now.</summary>
    public PodRecord Get(string nameOrId) => Fill(Store.Load(Store.Resolve(nameOrId)));

    public List<PodRecord> List()
    {
        var all = Containers.List();
        var list = new List<PodRecord>();
        foreach (var id in Store.ListIds())
        {
            try { list.Add(Fill(Store.Load(id), all)); } catch (EngineException) { }
        }
        return list.OrderByDescending(p => p.Created, StringComparer.Ordinal).ToList();
    }

    PodRecord Fill(PodRecord p, List<ContainerRecord>? all = null)
    {
        var members = (all ?? Containers.List()).Where(c => c.Pod == p.Id).ToList();
        p.Containers = members.Select(c => new PodContainer { Id = c.Id, Name = c.BareName, State = ContainerFormat.State(c) }).ToList();
        p.NumContainers = members.Count;
        var infra = InfraAlive(p);
        var running = members.Count(c => c.State.Running);
        p.State = infra
            ? (running == members.Count ? "Running" : running > 0 || members.Count > 0 ? "Degraded" : "Running")
            : running > 0 ? "Degraded" : p.Started ? "Exited" : "Created";
        return p;
    }

    public static bool InfraAlive(PodRecord p) =>
        p.Infra is { Pid: > 0 } i && ProcStat.Read(i.Pid) is { } s && s.StartTime == i.StartTime && s.State is not ('Z' or 'X');

    /// <summary>Starts the infra process unless it runs; returns its pid. Under the pod's lock, so
    /// concurrent `run --pod` calls start one infra.</summary>
    public int EnsureInfra(string id)
    {
        using (Store.Lock(id))
        {
            var p = Store.Load(id);
            if (InfraAlive(p)) return p.Infra!.Pid;
            var pid = StartInfra(p);
            var info = new PodInfraInfo { Pid = pid, StartTime = ProcStat.Read(pid)?.StartTime ?? 0 };
            try { PodNetworking.Connect(p, pid, Containers.Store.Root, Environment.ProcessPath!, info); }
            catch (EngineException)
            {
                kill(pid, 9);
                throw;
            }
            p.Infra = info;
            p.Started = true;
            Store.Save(p);
            return pid;
        }
    }

    unsafe int StartInfra(PodRecord p)
    {
        Directory.CreateDirectory(Store.RunDir(p.Id));
        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw SyscallException.Last("pipe2");
        using var r = new Fd(fds[0]);
        int pid;
        using (var w = new Fd(fds[1]))
        using (var devnull = RuntimeClient.DevNull())
        {
            // The run directory in argv names the pod (and lets tests find the process).
            string[] argv = ["berth-pod-infra", "--hostname", p.Hostname, "--rundir", Store.RunDir(p.Id), .. p.InfraConfig.HostNetwork ? ["--host-network"] : Array.Empty<string>()];
            pid = Spawn.Start(Environment.ProcessPath!, argv,
                RuntimeClient.ChildEnv(), [(devnull.Value, 0), (devnull.Value, 1), (devnull.Value, 2), (w.Value, 3)], newSession: true);
        }
        var buf = new byte[512];
        var n = 0;
        while (n < buf.Length)
        {
            int k;
            try { k = Sys.Read(r.Value, buf.AsSpan(n)); } catch (SyscallException) { break; }
            if (k <= 0) break;
            n += k;
            if (buf.AsSpan(0, n).Contains((byte)'\n')) break;
        }
        var line = Encoding.UTF8.GetString(buf, 0, n).Trim();
        if (line != "ok")
        {
            kill(pid, 9);
            Sys.Wait(pid);
            throw new EngineException(ErrorKind.Internal, $"pod {p.Name}: infra process failed: {(line.Length > 0 ? line : "exited")}");
        }
        // Not our child to wait for: it was spawned in its own session; a zombie is reaped by init
        // once this CLI exits.
        return pid;
    }

    void StopInfra(string id)
    {
        using (Store.Lock(id))
        {
            var p = Store.Load(id);
            if (InfraAlive(p))
            {
                kill(p.Infra!.Pid, 9);
                for (var i = 0; i < 500 && InfraAlive(p); i++) Thread.Sleep(10);
            }
            p.Infra = null;
            Store.Save(p);
            // The namespace went with the infra; its veth, address and port rules are released here.
            PodNetworking.Release(p, Containers.Store.Root);
        }
    }

    // ------------------------------------------------------------------ containers in pods

    /// <summary>`run --pod NAME`: the container joins the pod (its hostname is the pod's).</summary>
    public void Join(ContainerRecord c, string pod)
    {
        var p = Store.Load(Store.Resolve(pod));
        if (c.Config.Hostname.Length > 0 && c.Config.Hostname != p.Hostname)
            throw EngineException.Invalid("invalid config provided: cannot set hostname when joining the pod's UTS namespace");
        // podman's messages: the pod's network is decided when the pod is created.
        if (c.HostConfig.PortBindings.Count > 0 || c.HostConfig.PublishAllPorts)
            throw EngineException.Invalid("invalid config provided: published or exposed ports must be defined when the pod is created: network cannot be configured when it is shared with a pod");
        if (c.HostConfig.NetworkMode is { Length: > 0 } nm && nm != "none")
            throw EngineException.Invalid("invalid config provided: networks must be defined when the pod is created: network cannot be configured when it is shared with a pod");
        c.Pod = p.Id;
        c.Config.Hostname = p.Hostname;
        // The pod's infra holds the network namespace: no network of the container's own to connect.
        c.HostConfig.NetworkMode = "none";
    }

    /// <summary>The bundle of a pod's container joins the infra's namespaces (called before each start:
    /// the infra's pid changes when the pod restarts). Starts the infra if it is not running.</summary>
    public void PrepareStart(ContainerRecord c)
    {
        if (c.Pod is null) return;
        if (!Directory.Exists(Store.Dir(c.Pod))) throw new EngineException(ErrorKind.FailedPrecondition, $"container {c.BareName}: its pod {c.Pod[..12]} no longer exists");
        var pid = EnsureInfra(c.Pod);
        var pod = Store.Load(c.Pod);
        PodNetworking.WriteContainerFiles(c, pod);
        var path = Path.Combine(Containers.Store.BundleDir(c.Id), "config.json");
        var spec = SpecJson.ParseSpec(File.ReadAllBytes(path), path);
        JoinNamespaces(spec, pid, pod.InfraConfig.HostNetwork);
        ContainerStore.WriteAtomic(path, SpecJson.Serialize(spec), durable: false);
    }

    public static void JoinNamespaces(Spec spec, int infraPid, bool hostNetwork = false)
    {
        var ns = (spec.Linux ??= new Oci.Runtime.Linux()).Namespaces ??= [];
        foreach (var t in new[] { "network", "ipc", "uts" })
        {
            ns.RemoveAll(n => n.Type == t);
            if (t == "network" && hostNetwork) continue; // the host's network namespace: none in the spec
            ns.Add(new Namespace { Type = t, Path = $"/proc/{infraPid}/ns/{(t == "network" ? "net" : t)}" });
        }
        // The UTS namespace is the pod's: its hostname is set there, not by each container.
        spec.Hostname = null;
        spec.Domainname = null;
    }

    // ------------------------------------------------------------------ verbs

    public void Start(string nameOrId)
    {
        var p = Get(nameOrId);
        EnsureInfra(p.Id);
        foreach (var c in p.Containers.Where(c => c.State != "running"))
            Containers.Start(c.Id, hold: false);
    }

    public void Stop(string nameOrId, int? timeout)
    {
        var p = Get(nameOrId);
        foreach (var c in p.Containers) Containers.Stop(c.Id, timeout);
        StopInfra(p.Id);
    }

    public void Kill(string nameOrId, string signal)
    {
        var p = Get(nameOrId);
        var running = p.Containers.Where(c => c.State is "running" or "paused").ToList();
        if (running.Count == 0 && !InfraAlive(p)) throw new EngineException(ErrorKind.FailedPrecondition, $"pod {p.Name} is not running");
        foreach (var c in running) Containers.Kill(c.Id, signal);
        if (Signals.Parse(signal) == 9) StopInfra(p.Id);
    }

    /// <summary>`pod rm`: with running containers only with <paramref name="force"/> (which removes
    /// them); stopped containers of the pod go with it, then the infra and the record.</summary>
    public void Remove(string nameOrId, bool force)
    {
        var p = Get(nameOrId);
        var running = p.Containers.Where(c => c.State is "running" or "paused" or "restarting").ToList();
        if (running.Count > 0 && !force)
            throw new EngineException(ErrorKind.FailedPrecondition,
                $"cannot remove pod \"{p.Name}\": it has {running.Count} running container(s) ({string.Join(", ", running.Select(c => c.Name))}): stop them or use -f");
        foreach (var c in p.Containers) Containers.Remove(c.Id, force: true);
        StopInfra(p.Id);
        Store.Remove(p);
    }

    public bool Exists(string nameOrId)
    {
        try { Store.Resolve(nameOrId); return true; }
        catch (EngineException e) when (e.Kind == ErrorKind.NotFound) { return false; }
    }
}
