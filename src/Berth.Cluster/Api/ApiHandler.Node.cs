using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Api;

public sealed partial class ApiHandler
{
    /// <summary>The pod subresources a real API server streams from the pod's kubelet.</summary>
    internal static readonly string[] KubeletSubresources = ["log", "exec", "attach", "portforward", "proxy"];

    /// <summary>
    /// pods/log, exec, attach, portforward and proxy. The API server makes its own checks first (the pod
    /// exists, the container is one of the pod's, the pod is on a node), as Kubernetes' does; then a real
    /// one connects to that node's kubelet. Nodes are registered through the API and Berth has no node
    /// agent serving these streams yet, so the answer is a 503 that says so, in one line.
    /// </summary>
    async Task KubeletStreamAsync(HttpContext ctx, Target t, CancellationToken ct)
    {
        var e = await store.GetAsync(t.Type.Key(t.Namespace, t.Name!), ct) ?? throw ApiException.NotFound("", "pods", t.Name!);
        var pod = Decode(e);
        var name = t.Name!;
        if (t.Subresource is "log" or "exec" or "attach")
        {
            var containers = pod.Objects("spec.containers").Select(c => c.Str("name") ?? "").ToList();
            var all = containers.Concat(pod.Objects("spec.initContainers").Concat(pod.Objects("spec.ephemeralContainers")).Select(c => c.Str("name") ?? "")).ToList();
            var container = ctx.Request.Query["container"].ToString();
            if (container.Length == 0 && containers.Count != 1)
                throw ApiException.BadRequest($"a container name must be specified for pod {name}, choose one of: [{string.Join(" ", containers)}]");
            if (container.Length > 0 && !all.Contains(container))
                throw ApiException.BadRequest($"container {container} is not valid for pod {name}");
        }
        var node = pod.Str("spec.nodeName");
        if (string.IsNullOrEmpty(node)) throw ApiException.BadRequest($"pod {name} does not have a host assigned");
        var (doing, what) = t.Subresource switch
        {
            "log" => ("get the logs of", "logs"),
            "exec" => ("exec into", "exec"),
            "attach" => ("attach to", "attach"),
            "portforward" => ("port-forward to", "port-forward"),
            _ => ("proxy to", "proxying"),
        };
        throw new ApiException(503, "ServiceUnavailable",
            $"cannot {doing} pod \"{t.Namespace}/{name}\": node \"{node}\" has no kubelet this server can reach (Berth has no node agent serving {what} yet)");
    }
}
