using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Berth.Engine.Containers;

namespace Berth.Engine.Pods;

/// <summary>`pod inspect` as podman 4 writes it (its InspectPodData): podman's field names and its nulls
/// for unset lists. Berth's infra is a process, not a container, so there is no InfraContainerID and no
/// pod cgroup; what podman shows on `inspect` of the infra container (the pod's address, gateway, MAC and
/// published ports) is here under NetworkSettings, in the same shape, while the pod runs on a network.</summary>
public sealed class PodInspect
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string Created { get; set; } = "";
    public string ExitPolicy { get; set; } = "continue";
    public string State { get; set; } = "";
    public string Hostname { get; set; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Labels { get; set; }
    public bool CreateCgroup { get; set; }
    public bool CreateInfra { get; set; } = true;
    public PodInspectInfraConfig InfraConfig { get; set; } = new();
    public List<string> SharedNamespaces { get; set; } = [];
    public int NumContainers { get; set; }
    public List<PodContainer> Containers { get; set; } = [];
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public NetworkSettings? NetworkSettings { get; set; }
}

/// <summary>podman's InspectPodInfraConfig (every field, nulls as podman writes them).</summary>
public sealed class PodInspectInfraConfig
{
    public Dictionary<string, List<PortBinding>> PortBindings { get; set; } = [];
    public bool HostNetwork { get; set; }
    public string StaticIP { get; set; } = "";
    public string StaticMAC { get; set; } = "";
    public bool NoManageResolvConf { get; set; }
    public List<string>? DNSServer { get; set; }
    public List<string>? DNSSearch { get; set; }
    public List<string>? DNSOption { get; set; }
    public bool NoManageHosts { get; set; }
    public List<string>? HostAdd { get; set; }
    public List<string>? Networks { get; set; }
    public Dictionary<string, List<string>>? NetworkOptions { get; set; }
    [JsonPropertyName("pid_ns")] public string PidNs { get; set; } = "private";
    [JsonPropertyName("userns")] public string UserNs { get; set; } = "host";
    [JsonPropertyName("uts_ns")] public string UtsNs { get; set; } = "private";
}

[JsonSourceGenerationOptions(WriteIndented = true, IndentSize = 4)]
[JsonSerializable(typeof(PodInspect))]
[JsonSerializable(typeof(List<PodInspect>))]
public sealed partial class PodInspectJsonContext : JsonSerializerContext
{
    /// <summary>Output as podman writes it: no \u002B for '+'.</summary>
    public static PodInspectJsonContext Relaxed { get; } = new(new JsonSerializerOptions
    {
        WriteIndented = true, IndentSize = 4,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>What `pod inspect` and `pod ps` print, from a pod record (<see cref="PodManager.Get"/>/<see
/// cref="PodManager.List"/> fill its state and containers).</summary>
public static class PodFormat
{
    public static PodInspect Inspect(PodRecord p)
    {
        var cfg = p.InfraConfig;
        static List<string>? NullIfEmpty(List<string> l) => l.Count > 0 ? [.. l] : null;
        return new PodInspect
        {
            Id = p.Id,
            Name = p.Name,
            Created = p.Created,
            State = p.State,
            Hostname = p.Hostname,
            Labels = p.Labels.Count > 0 ? p.Labels : null,
            CreateInfra = p.CreateInfra,
            InfraConfig = new PodInspectInfraConfig
            {
                PortBindings = cfg.PortBindings,
                HostNetwork = cfg.HostNetwork,
                StaticIP = cfg.StaticIP,
                DNSServer = NullIfEmpty(cfg.DNSServer),
                HostAdd = NullIfEmpty(cfg.HostAdd),
                Networks = NullIfEmpty(cfg.Networks),
            },
            // podman lists net for a host-network pod too: its containers share the (host's) namespace of the infra
            SharedNamespaces = p.SharedNamespaces.Contains("net") ? p.SharedNamespaces : [.. p.SharedNamespaces.Append("net").Order(StringComparer.Ordinal)],
            NumContainers = p.NumContainers,
            Containers = p.Containers,
            NetworkSettings = NetworkSettings(p),
        };
    }

    /// <summary>The pod's network as podman shows it on the infra container's inspect: while the infra runs
    /// connected to a network, its address, gateway and MAC under the network's name and the published ports.</summary>
    public static NetworkSettings? NetworkSettings(PodRecord p)
    {
        if (p.Infra is not { Network: { } network, IPAddress: { } ip } info || !PodManager.InfraAlive(p)) return null;
        var s = new NetworkSettings { SandboxKey = $"/proc/{info.Pid}/ns/net" };
        foreach (var port in info.Ports ?? [])
        {
            // "HOSTIP:HOSTPORT->PORT/PROTO", as the pod was connected
            var arrow = port.IndexOf("->", StringComparison.Ordinal);
            var colon = port.LastIndexOf(':', arrow);
            var key = port[(arrow + 2)..];
            if (!s.Ports.TryGetValue(key, out var list) || list is null) s.Ports[key] = list = [];
            var hostIp = port[..colon];
            list.Add(new PortBinding { HostIp = hostIp == "0.0.0.0" ? "" : hostIp, HostPort = port[(colon + 1)..arrow] });
        }
        s.Networks[network] = new EndpointSettings
        {
            NetworkID = info.NetworkID ?? network,
            Gateway = info.Gateway ?? "",
            IPAddress = ip,
            IPPrefixLen = info.IPPrefixLen,
            MacAddress = info.MacAddress ?? "",
        };
        return s;
    }

    /// <summary>`pod ps` rows with podman's field names (ListPodReporter): the lists joined by commas, Labels a map.</summary>
    public static JsonObject Row(PodRecord p, DateTime now, bool trunc)
    {
        string Id(string id) => trunc ? id[..12] : id;
        var labels = new JsonObject();
        foreach (var (k, v) in p.Labels.OrderBy(kv => kv.Key, StringComparer.Ordinal)) labels[k] = v;
        var id = Id(p.Id);
        return new JsonObject
        {
            ["ID"] = id,
            ["Id"] = id,
            ["Name"] = p.Name,
            ["Status"] = p.State,
            ["Created"] = Berth.Images.Units.HumanDuration(now - ContainerFormat.ParseTime(p.Created)) + " ago",
            // Berth's infra is a process, not a container (as a podman pod created with --infra=false)
            ["InfraID"] = "",
            ["InfraId"] = "",
            ["NumberOfContainers"] = p.NumContainers.ToString(),
            ["Networks"] = string.Join(',', p.InfraConfig.Networks),
            ["Labels"] = labels,
            ["Cgroup"] = "",
            ["Namespace"] = "",
            ["ContainerIds"] = string.Join(',', p.Containers.Select(c => Id(c.Id))),
            ["ContainerNames"] = string.Join(',', p.Containers.Select(c => c.Name)),
            ["ContainerStatuses"] = string.Join(',', p.Containers.Select(c => c.State)),
        };
    }

    /// <summary>`pod ps --format json`: podman's array of ListPodsReport objects (full ids, RFC 3339 times).</summary>
    public static string Json(IEnumerable<PodRecord> pods)
    {
        var arr = new JsonArray();
        foreach (var p in pods)
        {
            var labels = new JsonObject();
            foreach (var (k, v) in p.Labels) labels[k] = v;
            arr.Add((JsonNode)new JsonObject
            {
                ["Cgroup"] = "",
                ["Containers"] = new JsonArray([.. p.Containers.Select(c => (JsonNode)new JsonObject { ["Id"] = c.Id, ["Names"] = c.Name, ["Status"] = c.State })]),
                ["Created"] = p.Created,
                ["Id"] = p.Id,
                ["InfraId"] = "",
                ["Name"] = p.Name,
                ["Namespace"] = "",
                ["Networks"] = new JsonArray([.. p.InfraConfig.Networks.Select(n => (JsonNode)JsonValue.Create(n))]),
                ["Status"] = p.State,
                ["Labels"] = labels,
            });
        }
        return arr.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    /// <summary>podman's column headers for the fields of <see cref="Row"/>.</summary>
    public static string Header(string field) => field switch
    {
        "ID" or "Id" => "POD ID",
        "InfraID" or "InfraId" => "INFRA ID",
        "NumberOfContainers" => "# OF CONTAINERS",
        "ContainerIds" => "IDS",
        "ContainerNames" => "NAMES",
        "ContainerStatuses" => "STATUS",
        "Namespace" => "NAMESPACES",
        _ => field.ToUpperInvariant(),
    };

    /// <summary>`pod ps --filter`, podman's keys: values of one key are alternatives, different keys must all match.</summary>
    public static List<PodRecord> Filter(List<PodRecord> pods, IEnumerable<string> filters)
    {
        foreach (var group in filters.Select(f => f.Split('=', 2)).GroupBy(f => f[0]))
        {
            var values = group.Select(g => g.Length > 1 ? g[1] : "").ToList();
            Func<PodRecord, string, bool> match = group.Key switch
            {
                "id" => (p, v) => p.Id.StartsWith(v, StringComparison.Ordinal),
                "name" => (p, v) => Regex(v, "name").IsMatch(p.Name),
                "label" => (p, v) => v.Split('=', 2) is var kv && p.Labels.TryGetValue(kv[0], out var lv) && (kv.Length == 1 || lv == kv[1]),
                "status" => (p, v) => v is "stopped" or "running" or "paused" or "exited" or "dead" or "created" or "degraded"
                    ? string.Equals(p.State, v, StringComparison.OrdinalIgnoreCase)
                    : throw EngineException.Invalid($"invalid filter 'status={v}': expected stopped, running, paused, exited, dead, created or degraded"),
                "network" => (p, v) => p.InfraConfig.Networks.Contains(v),
                "ctr-names" => (p, v) => p.Containers.Any(c => Regex(v, "ctr-names").IsMatch(c.Name)),
                "ctr-ids" => (p, v) => p.Containers.Any(c => c.Id.StartsWith(v, StringComparison.Ordinal)),
                "ctr-status" => (p, v) => p.Containers.Any(c => c.State == v),
                "ctr-number" => (p, v) => int.TryParse(v, out var n) ? p.NumContainers == n
                    : throw EngineException.Invalid($"invalid filter 'ctr-number={v}': not a number"),
                _ => throw EngineException.Invalid($"invalid filter \"{group.Key}\": expected id, name, label, status, network, ctr-names, ctr-ids, ctr-status or ctr-number"),
            };
            pods = pods.Where(p => values.Any(v => match(p, v))).ToList();
        }
        return pods;
    }

    static System.Text.RegularExpressions.Regex Regex(string pattern, string key)
    {
        try { return new(pattern, System.Text.RegularExpressions.RegexOptions.CultureInvariant); }
        catch (ArgumentException) { throw EngineException.Invalid($"invalid filter '{key}={pattern}': not a regular expression"); }
    }

    /// <summary>`pod ps --sort`: created (newest first, podman's default), id, name or number.</summary>
    public static List<PodRecord> Sort(List<PodRecord> pods, string? by) => (by ?? "created") switch
    {
        "created" => pods.OrderByDescending(p => p.Created, StringComparer.Ordinal).ToList(),
        "id" => pods.OrderBy(p => p.Id, StringComparer.Ordinal).ToList(),
        "name" => pods.OrderBy(p => p.Name, StringComparer.Ordinal).ToList(),
        "number" => pods.OrderBy(p => p.NumContainers).ToList(),
        var s => throw EngineException.Invalid($"invalid option for --sort \"{s}\": expected created, id, name or number"),
    };
}
