using System.Net;
using Berth.Engine.Networking;
using Microsoft.AspNetCore.Http;

namespace Berth.Engine.DockerApi;

/// <summary>/networks: list, inspect, create, remove, prune, connect, disconnect — over the same
/// NetworkManager and ContainerNetworking the `berth network` verbs use.</summary>
public sealed partial class DockerApiHandler
{
    NetworkManager Networks => ContainerNetworking.Manager(DataRoot);

    async Task ListNetworks(HttpContext ctx, string[] _)
    {
        var f = Filters(ctx);
        OnlyFilters(f, "name", "id", "label", "driver", "type", "scope");
        var list = await Blocking(() => Networks.List());
        list.AddRange(Predefined.Values);
        if (f.TryGetValue("name", out var names)) list = list.Where(n => names.Any(x => n.Name.Contains(x, StringComparison.Ordinal))).ToList();
        if (f.TryGetValue("id", out var ids)) list = list.Where(n => ids.Any(x => n.Id.StartsWith(x, StringComparison.Ordinal))).ToList();
        if (f.TryGetValue("driver", out var drivers)) list = list.Where(n => drivers.Contains(n.Driver)).ToList();
        if (f.TryGetValue("label", out var labels)) list = list.Where(n => labels.All(l => LabelMatch(n.Labels, l))).ToList();
        if (f.TryGetValue("scope", out var scopes)) list = list.Where(_ => scopes.Contains("local")).ToList();
        if (f.TryGetValue("type", out var types))
            list = list.Where(n => types.Contains(n.Name is "bridge" || Predefined.ContainsKey(n.Name) ? "builtin" : "custom")).ToList();
        await WriteRawJsonAsync(ctx, 200, NetworkFormat.Json(list, array: true, indented: false));
    }

    /// <summary>docker's two other pre-defined networks, listed and inspected as docker shows them
    /// (`--network host|none` are container modes to the engine, not records in its store).</summary>
    static readonly Dictionary<string, NetworkRecord> Predefined = new[] { ("host", "host"), ("none", "null") }.ToDictionary(
        p => p.Item1,
        p => new NetworkRecord
        {
            Name = p.Item1, Driver = p.Item2, Created = DateTimeOffset.UnixEpoch,
            Id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("berth-network-" + p.Item1))),
        });

    static NetworkRecord? FindPredefined(string nameOrId) =>
        Predefined.Values.FirstOrDefault(n => n.Name == nameOrId || (nameOrId.Length >= 12 && n.Id.StartsWith(nameOrId, StringComparison.Ordinal)));

    async Task InspectNetwork(HttpContext ctx, string[] a)
    {
        var n = FindPredefined(a[0]) ?? await Blocking(() => NetworkFormat.Find(Networks, a[0]));
        await WriteRawJsonAsync(ctx, 200, NetworkFormat.Json([n], array: false, indented: false));
    }

    async Task CreateNetwork(HttpContext ctx, string[] _)
    {
        var body = await ReadJsonAsync(ctx, DockerJson.Default.NetworkCreateBody) ?? throw ApiError.BadRequest("a network name is required");
        if (string.IsNullOrEmpty(body.Name)) throw ApiError.BadRequest("a network name is required");
        if (body.Driver is { Length: > 0 } d && d != "bridge") throw ApiError.BadRequest($"network driver \"{d}\" is not supported (bridge)");
        if (body.EnableIPv6 == true) throw ApiError.BadRequest("IPv6 networks are not supported");
        var ipam = body.IPAM?.Config ?? [];
        if (ipam.Count > 1) throw ApiError.BadRequest("only one IPAM config (one IPv4 subnet) is supported");
        string? bridge = null;
        var mtu = 0;
        foreach (var (k, v) in body.Options ?? [])
        {
            if (k == "com.docker.network.bridge.name") bridge = v;
            else if (k == "com.docker.network.driver.mtu" && int.TryParse(v, out var m) && m is >= 68 and <= 65535) mtu = m;
            else throw ApiError.BadRequest($"unsupported network option \"{k}={v}\"");
        }
        var rec = await Blocking(() =>
        {
            if (Networks.Store.TryGet(body.Name) is not null) throw new ApiError(409, $"network with name {body.Name} already exists");
            return Networks.Create(new NetworkCreateRequest(body.Name)
            {
                Subnet = ipam.FirstOrDefault()?.Subnet, Gateway = ipam.FirstOrDefault()?.Gateway, Internal = body.Internal,
                Bridge = bridge, Mtu = mtu, Labels = body.Labels ?? [],
            });
        });
        await WriteJsonAsync(ctx, 201, new NetworkCreateResponse { Id = rec.Id }, DockerJson.Default.NetworkCreateResponse);
    }

    async Task RemoveNetwork(HttpContext ctx, string[] a)
    {
        await Blocking(() =>
        {
            var mgr = Networks;
            if (FindPredefined(a[0]) is { } p) throw new ApiError(403, $"{p.Name} is a pre-defined network and cannot be removed");
            var n = NetworkFormat.Find(mgr, a[0]);
            if (n.Name == "bridge") throw new ApiError(403, "bridge is a pre-defined network and cannot be removed");
            if (n.Endpoints.Count > 0)
                throw new ApiError(403, $"error while removing network: network {n.Name} id {n.Id} has active endpoints");
            mgr.Remove(n.Name);
        });
        await NoContent(ctx);
    }

    async Task PruneNetworks(HttpContext ctx, string[] _)
    {
        var removed = await Blocking(() => Networks.Prune());
        await WriteJsonAsync(ctx, 200, new PruneNetworksResponse { NetworksDeleted = removed }, DockerJson.Default.PruneNetworksResponse);
    }

    async Task ConnectNetwork(HttpContext ctx, string[] a)
    {
        var body = await ReadJsonAsync(ctx, DockerJson.Default.NetworkConnectBody) ?? throw ApiError.BadRequest("a container is required");
        if (string.IsNullOrEmpty(body.Container)) throw ApiError.BadRequest("a container is required");
        var ip = body.EndpointConfig?.IPAMConfig?.IPv4Address;
        if (ip is { Length: > 0 } && !IPAddress.TryParse(ip, out _)) throw ApiError.BadRequest($"invalid IPv4 address \"{ip}\"");
        await Blocking(() =>
        {
            var n = NetworkFormat.Find(Networks, a[0]);
            var c = Containers.Get(body.Container);
            ContainerNetworking.ConnectContainer(Containers.Store, c.Id, n.Name, body.EndpointConfig?.Aliases ?? [], ip is { Length: > 0 } ? ip : null, Environment.ProcessPath!);
        });
        await NoContent(ctx, 200);
    }

    async Task DisconnectNetwork(HttpContext ctx, string[] a)
    {
        var body = await ReadJsonAsync(ctx, DockerJson.Default.NetworkDisconnectBody) ?? throw ApiError.BadRequest("a container is required");
        if (string.IsNullOrEmpty(body.Container)) throw ApiError.BadRequest("a container is required");
        await Blocking(() =>
        {
            var n = NetworkFormat.Find(Networks, a[0]);
            var c = Containers.Get(body.Container);
            if (!c.NetworkSettings.Networks.ContainsKey(n.Name))
                throw new ApiError(403, $"container {c.Id} is not connected to network {n.Name}");
            ContainerNetworking.DisconnectContainer(Containers.Store, c.Id, n.Name, body.Force);
        });
        await NoContent(ctx, 200);
    }

    static async Task WriteRawJsonAsync(HttpContext ctx, int status, byte[] json)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = json.Length + 1;
        await ctx.Response.Body.WriteAsync(json);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray());
    }
}

public sealed class NetworkCreateBody
{
    public string Name { get; set; } = "";
    public string? Driver { get; set; }
    public bool Internal { get; set; }
    public bool? EnableIPv6 { get; set; }
    public bool CheckDuplicate { get; set; }
    public bool Attachable { get; set; }
    public NetworkIpamBody? IPAM { get; set; }
    public Dictionary<string, string>? Options { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
}

public sealed class NetworkIpamBody
{
    public string? Driver { get; set; }
    public List<NetworkIpamConfigBody>? Config { get; set; }
}

public sealed class NetworkIpamConfigBody
{
    public string? Subnet { get; set; }
    public string? Gateway { get; set; }
    public string? IPRange { get; set; }
}

public sealed class NetworkCreateResponse
{
    public string Id { get; set; } = "";
    public string Warning { get; set; } = "";
}

public sealed class PruneNetworksResponse
{
    public List<string> NetworksDeleted { get; set; } = [];
}

public sealed class NetworkConnectBody
{
    public string Container { get; set; } = "";
    public Berth.Engine.Containers.EndpointSettings? EndpointConfig { get; set; }
}

public sealed class NetworkDisconnectBody
{
    public string Container { get; set; } = "";
    public bool Force { get; set; }
}
