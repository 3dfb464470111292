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

    /// <summary>
    /// authorization.k8s.io SelfSubjectAccessReview / SelfSubjectRulesReview and authentication.k8s.io
    /// SelfSubjectReview (kubectl auth can-i, auth can-i --list, auth whoami). Every client this server
    /// authenticates is its administrator (the admin certificate or the admin token: system:masters), and
    /// there is no RBAC, so every access is allowed, as for system:masters on a real cluster.
    /// </summary>
    async Task ReviewAsync(HttpContext ctx, Target t, CancellationToken ct)
    {
        // kubectl sends reviews as protobuf; nothing in one changes the answer here, so that body is not decoded
        var review = ctx.Request.ContentType?.StartsWith(Protobuf.MediaType, StringComparison.Ordinal) == true
            ? new JsonObject { ["spec"] = new JsonObject() }
            : await ReadObjectAsync(ctx, ct);
        CheckTypeMeta(t.Type, review, t.Type.Kind, t.Type.ApiVersion);
        var (user, groups) = Identity(ctx);
        switch (t.Type.Kind)
        {
            case "SelfSubjectAccessReview":
                if (review["spec"] is JsonObject { Count: > 0 } spec && spec["resourceAttributes"] is null && spec["nonResourceAttributes"] is null)
                    throw ApiException.Invalid(t.Type.Group, t.Type.Kind, "", [FieldError.Invalid("spec.resourceAttributes", null, "exactly one of nonResourceAttributes or resourceAttributes must be specified")]);
                review["status"] = new JsonObject { ["allowed"] = true, ["reason"] = "the user is in group system:masters (berth server has no RBAC: its clients are administrators)" };
                break;
            case "SelfSubjectRulesReview":
                review["status"] = new JsonObject
                {
                    ["resourceRules"] = new JsonArray(new JsonObject { ["verbs"] = new JsonArray("*"), ["apiGroups"] = new JsonArray("*"), ["resources"] = new JsonArray("*") }),
                    ["nonResourceRules"] = new JsonArray(new JsonObject { ["verbs"] = new JsonArray("*"), ["nonResourceURLs"] = new JsonArray("*") }),
                    ["incomplete"] = false,
                };
                break;
            default: // SelfSubjectReview
                review["status"] = new JsonObject
                {
                    ["userInfo"] = new JsonObject { ["username"] = user, ["groups"] = new JsonArray(groups.Select(g => (JsonNode?)g).ToArray()) },
                };
                break;
        }
        review.Meta()["creationTimestamp"] = null;
        await WriteJsonAsync(ctx, 201, review);
    }

    /// <summary>Who the request authenticated as: the client certificate's CN and O, or the admin token's user.</summary>
    static (string User, string[] Groups) Identity(HttpContext ctx)
    {
        if (ctx.Connection.ClientCertificate is { } cert && !ctx.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var dn = cert.SubjectName.Name.Split(',', StringSplitOptions.TrimEntries);
            var cn = dn.FirstOrDefault(p => p.StartsWith("CN=", StringComparison.Ordinal))?[3..] ?? "";
            var orgs = dn.Where(p => p.StartsWith("O=", StringComparison.Ordinal)).Select(p => p[2..]);
            return (cn, [.. orgs, "system:authenticated"]);
        }
        return ("admin", ["system:masters", "system:authenticated"]);
    }
}
