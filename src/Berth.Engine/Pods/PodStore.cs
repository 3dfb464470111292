using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Engine.Containers;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Pods;

/// <summary>A pod as the engine persists it (podman's `pod inspect` field names). The pod's
/// namespaces belong to its infra process: a small `berth-pod-infra` process (not a container)
/// that unshared net (unless the pod uses the host's), IPC and UTS, brought lo up, set the hostname
/// and waits; its network namespace is connected to the pod's network (<see cref="PodNetworking"/>).</summary>
public sealed class PodRecord
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string Created { get; set; } = "";
    /// <summary>Created | Running | Degraded | Exited (computed when read).</summary>
    public string State { get; set; } = "Created";
    public string Hostname { get; set; } = "";
    public Dictionary<string, string> Labels { get; set; } = [];
    public bool CreateInfra { get; set; } = true;
    public List<string> SharedNamespaces { get; set; } = ["ipc", "net", "uts"];
    public int NumContainers { get; set; }
    public List<PodContainer> Containers { get; set; } = [];
    /// <summary>The pod's network as `pod create` asked for it (podman's InfraConfig).</summary>
    public PodInfraConfig InfraConfig { get; set; } = new() { NetworkMode = "none" };
    /// <summary>Engine bookkeeping: the infra process (pid and start time, so a recycled pid is not
    /// mistaken for it). Null while the pod is not running.</summary>
    public PodInfraInfo? Infra { get; set; }
    public bool Started { get; set; }

    public string ShortId => Id[..12];
}

public sealed class PodContainer
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string State { get; set; } = "";
}

public sealed class PodInfraInfo
{
    public int Pid { get; set; }
    public ulong StartTime { get; set; }
    /// <summary>While running on a network: where the pod is connected, its address and published ports.</summary>
    public string? Network { get; set; }
    public string? IPAddress { get; set; }
    public int IPPrefixLen { get; set; }
    public string? Gateway { get; set; }
    public string? MacAddress { get; set; }
    /// <summary>The network's id (podman's inspect shows it as the endpoint's NetworkID).</summary>
    public string? NetworkID { get; set; }
    /// <summary>The network's embedded DNS server (user networks), null on the default bridge.</summary>
    public string? Dns { get; set; }
    public List<string>? Ports { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, IndentSize = 4, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PodRecord))]
[JsonSerializable(typeof(List<PodRecord>))]
public sealed partial class PodJsonContext : JsonSerializerContext;

/// <summary>Pods under &lt;root&gt;/pods/&lt;id&gt;/pod.json (atomically written, a lock file per pod for
/// read-modify-write) with a name index &lt;root&gt;/pod-names/&lt;name&gt; created with O_EXCL, as
/// containers are kept: no global lock.</summary>
public sealed class PodStore(string root, string runRoot)
{
    public string Root { get; } = Path.GetFullPath(root);
    public string RunRoot { get; } = Path.GetFullPath(runRoot);
    string PodsDir => Path.Combine(Root, "pods");
    string NamesDir => Path.Combine(Root, "pod-names");
    public string Dir(string id) => Path.Combine(PodsDir, id);
    public string RunDir(string id) => Path.Combine(RunRoot, "pods", id);

    public void Add(PodRecord p)
    {
        Directory.CreateDirectory(PodsDir);
        Directory.CreateDirectory(NamesDir);
        Directory.CreateDirectory(Dir(p.Id));
        Save(p);
        var fd = open(Path.Combine(NamesDir, p.Name), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0x1a4);
        if (fd < 0)
        {
            var err = Marshal.GetLastPInvokeError();
            try { Directory.Delete(Dir(p.Id), true); } catch (IOException) { }
            if (err == Errno.EEXIST) throw new EngineException(ErrorKind.AlreadyExists, $"the pod name \"{p.Name}\" is already in use by another pod");
            throw new SyscallException("open", Path.Combine(NamesDir, p.Name), err);
        }
        using var f = new Fd(fd);
        Sys.WriteAll(f.Value, Encoding.ASCII.GetBytes(p.Id), "pod name");
    }

    public void Save(PodRecord p) =>
        ContainerStore.WriteAtomic(Path.Combine(Dir(p.Id), "pod.json"), JsonSerializer.SerializeToUtf8Bytes(p, PodJsonContext.Default.PodRecord), durable: true);

    public PodRecord Load(string id)
    {
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(Dir(id), "pod.json")), PodJsonContext.Default.PodRecord)!; }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw NoSuchPod(id); }
    }

    public static EngineException NoSuchPod(string nameOrId) => new(ErrorKind.NotFound, $"no such pod: {nameOrId}");

    /// <summary>A name, a full id or a unique id prefix.</summary>
    public string Resolve(string nameOrId)
    {
        if (nameOrId.Length == 0) throw NoSuchPod(nameOrId);
        if (ContainerStore.ValidName(nameOrId) && File.Exists(Path.Combine(NamesDir, nameOrId)))
        {
            var id = File.ReadAllText(Path.Combine(NamesDir, nameOrId)).Trim();
            if (File.Exists(Path.Combine(Dir(id), "pod.json"))) return id;
        }
        var matches = ListIds().Where(i => i.StartsWith(nameOrId, StringComparison.Ordinal)).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw NoSuchPod(nameOrId),
            _ => throw EngineException.Invalid($"more than one pod matches \"{nameOrId}\": use more of its id"),
        };
    }

    public List<string> ListIds() =>
        !Directory.Exists(PodsDir) ? [] :
        Directory.EnumerateDirectories(PodsDir).Select(d => Path.GetFileName(d)!).Where(n => n.Length == 64 && File.Exists(Path.Combine(Dir(n), "pod.json"))).ToList();

    /// <summary>The pod's lock (flock), held around infra start/stop and record changes.</summary>
    public IDisposable Lock(string id)
    {
        if (!Directory.Exists(Dir(id))) throw NoSuchPod(id);
        return ContainerStore.LockFile(Path.Combine(Dir(id), "lock"));
    }

    public void Remove(PodRecord p)
    {
        var trash = Path.Combine(PodsDir, ".removing-" + p.Id);
        try { Directory.Move(Dir(p.Id), trash); } catch (DirectoryNotFoundException) { }
        var name = Path.Combine(NamesDir, p.Name);
        try { if (File.Exists(name) && File.ReadAllText(name).Trim() == p.Id) File.Delete(name); } catch (IOException) { }
        try { Directory.Delete(RunDir(p.Id), true); } catch (DirectoryNotFoundException) { }
        try { Directory.Delete(trash, true); } catch (DirectoryNotFoundException) { }
    }
}
