using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Api;

public sealed partial class ApiHandler
{
    /// <summary>The pod subresources a real API server streams from the pod's kubelet.</summary>
    internal static readonly string[] KubeletSubresources = ["log", "exec", "attach", "portforward", "proxy"];

    /// <summary>
    /// pods/log, exec, attach, portforward and proxy. The API server makes its own checks first (the pod
    /// exists, the container is one of the pod's, the pod is on a node), as Kubernetes' does; then, as
    /// kube-apiserver does, it connects to that node's kubelet (the node's preferred address, its
    /// daemonEndpoints.kubeletEndpoint port or 10250). Nodes are registered through the API and Berth has
    /// no node agent yet: when nothing answers there, the error is kube-apiserver's (a 500 carrying the
    /// dial error: `Get "https://…/containerLogs/…": dial tcp …: connect: connection refused` for logs,
    /// `error dialing backend: …` for the streams); when something does answer, a 503 says Berth cannot
    /// speak to it yet.
    /// </summary>
    async Task KubeletStreamAsync(HttpContext ctx, Target t, CancellationToken ct)
    {
        var e = await store.GetAsync(t.Type.Key(t.Namespace, t.Name!), ct) ?? throw ApiException.NotFound("", "pods", t.Name!);
        var pod = Decode(e);
        var name = t.Name!;
        var container = ctx.Request.Query["container"].ToString();
        if (t.Subresource is "log" or "exec" or "attach")
        {
            var containers = pod.Objects("spec.containers").Select(c => c.Str("name") ?? "").ToList();
            var all = containers.Concat(pod.Objects("spec.initContainers").Concat(pod.Objects("spec.ephemeralContainers")).Select(c => c.Str("name") ?? "")).ToList();
            if (container.Length == 0 && containers.Count != 1)
                throw ApiException.BadRequest($"a container name must be specified for pod {name}, choose one of: [{string.Join(" ", containers)}]");
            if (container.Length > 0 && !all.Contains(container))
                throw ApiException.BadRequest($"container {container} is not valid for pod {name}");
            if (container.Length == 0) container = containers[0];
        }
        var node = pod.Str("spec.nodeName");
        if (string.IsNullOrEmpty(node)) throw ApiException.BadRequest($"pod {name} does not have a host assigned");
        var nodeType = registry.Find("", "v1", "nodes")!;
        var nodeEntry = await store.GetAsync(nodeType.Key(null, node), ct) ?? throw ApiException.NotFound("", "nodes", node);
        var (host, port) = KubeletEndpoint(Decode(nodeEntry));
        var dialError = await DialAsync(host, port, ct);
        if (dialError is null)
        {
            var what = t.Subresource switch { "log" => "logs", "portforward" => "port-forward", "proxy" => "proxying", var x => x };
            throw new ApiException(503, "ServiceUnavailable",
                $"cannot reach the kubelet of node \"{node}\" at {JoinHostPort(host, port)} for pod \"{t.Namespace}/{name}\": Berth has no node agent serving {what} yet");
        }
        if (t.Subresource == "log")
        {
            // LogLocation: the kubelet's containerLogs URL, with the options the request set (url.Values.Encode sorts them)
            var q = ctx.Request.Query;
            var ps = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var b in new[] { "follow", "previous", "timestamps" })
                if (q[b].ToString() == "true") ps[b] = "true";
            foreach (var v in new[] { "sinceSeconds", "sinceTime", "tailLines", "limitBytes" })
                if (q[v].ToString() is { Length: > 0 } x) ps[v] = x;
            var query = ps.Count == 0 ? "" : "?" + string.Join("&", ps.Select(kv => $"{kv.Key}={Uri.EscapeDataString(kv.Value)}"));
            var url = $"https://{JoinHostPort(host, port)}/containerLogs/{t.Namespace}/{name}/{container}{query}";
            throw new ApiException(500, "", $"Get \"{url}\": {dialError}");
        }
        throw new ApiException(500, "", $"error dialing backend: {dialError}");
    }

    /// <summary>kube-apiserver's NodeConnectionInfo: the first address of the preferred types, the kubelet's port or 10250.</summary>
    internal static (string Host, int Port) KubeletEndpoint(JsonObject node)
    {
        var addresses = node.Objects("status.addresses").ToList();
        string? host = null;
        foreach (var type in new[] { "Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP" })
            if ((host = addresses.FirstOrDefault(a => a.Str("type") == type)?.Str("address")) is { Length: > 0 }) break;
        if (string.IsNullOrEmpty(host))
            throw new ApiException(500, "", $"no preferred addresses found; known addresses: [{string.Join(" ", addresses.Select(a => $"{{{a.Str("type")} {a.Str("address")}}}"))}]");
        var port = node.Long("status.daemonEndpoints.kubeletEndpoint.Port") is { } p and > 0 and < 65536 ? (int)p : 10250;
        return (host, port);
    }

    static string JoinHostPort(string host, int port) => host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}";

    /// <summary>Connects to the kubelet's port: null when something accepts, else the error as Go's net.Dial words it.</summary>
    static async Task<string?> DialAsync(string host, int port, CancellationToken ct)
    {
        var addr = JoinHostPort(host, port);
        System.Net.IPAddress[] ips;
        if (System.Net.IPAddress.TryParse(host, out var ip)) ips = [ip];
        else
        {
            try { ips = await System.Net.Dns.GetHostAddressesAsync(host, ct); }
            catch (System.Net.Sockets.SocketException) { return $"dial tcp: lookup {host}: no such host"; }
            if (ips.Length == 0) return $"dial tcp: lookup {host}: no such host";
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(5)); // kube-apiserver's --kubelet-timeout
        try
        {
            using var sock = new System.Net.Sockets.Socket(ips[0].AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await sock.ConnectAsync(new System.Net.IPEndPoint(ips[0], port), timeout.Token);
            return null;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return $"dial tcp {addr}: i/o timeout"; }
        catch (System.Net.Sockets.SocketException se)
        {
            var why = se.SocketErrorCode switch
            {
                System.Net.Sockets.SocketError.ConnectionRefused => "connection refused",
                System.Net.Sockets.SocketError.HostUnreachable => "no route to host",
                System.Net.Sockets.SocketError.NetworkUnreachable => "network is unreachable",
                System.Net.Sockets.SocketError.TimedOut => "connection timed out",
                _ => se.Message.ToLowerInvariant(),
            };
            return $"dial tcp {JoinHostPort(ips[0].ToString(), port)}: connect: {why}";
        }
    }
}
