using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// Discovery documents built from the registry: legacy (/api, /apis, /api/v1, /apis/g, /apis/g/v),
/// aggregated (apidiscovery.k8s.io/v2, what kubectl 1.32 asks for first), /version, and the OpenAPI
/// documents (<see cref="OpenApi"/>).
/// </summary>
public sealed class Discovery(ResourceRegistry registry, string serverAddress)
{
    public const string AggregatedV2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    public OpenApiDocuments OpenApi { get; } = new(registry);

    static JsonArray Arr(IEnumerable<string> items) => new(items.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray());

    static (string Group, string Version, string Kind, string[] Verbs) Sub(ResourceType t, string sub) => sub switch
    {
        "status" => (t.Group, t.Version, t.Kind, ["get", "patch", "update"]),
        "scale" => ("autoscaling", "v1", "Scale", ["get", "patch", "update"]),
        "binding" => ("", "v1", "Binding", ["create"]),
        "eviction" => ("policy", "v1", "Eviction", ["create"]),
        "finalize" => (t.Group, t.Version, t.Kind, ["update"]),
        "log" => ("", "v1", "Pod", ["get"]),
        "exec" => ("", "v1", "PodExecOptions", ["create", "get"]),
        "attach" => ("", "v1", "PodAttachOptions", ["create", "get"]),
        "portforward" => ("", "v1", "PodPortForwardOptions", ["create", "get"]),
        "proxy" => ("", "v1", "PodProxyOptions", ["create", "delete", "get", "patch", "update"]),
        _ => (t.Group, t.Version, t.Kind, ["get"]),
    };

    public JsonObject Version() => new()
    {
        ["major"] = "1",
        ["minor"] = "32",
        ["gitVersion"] = "v1.32.0+berth",
        ["gitCommit"] = "",
        ["gitTreeState"] = "clean",
        ["buildDate"] = "2026-01-01T00:00:00Z",
        ["goVersion"] = "none (berth, .NET " + Environment.Version + ")",
        ["compiler"] = "dotnet",
        ["platform"] = "linux/amd64",
    };

    public JsonObject ApiVersions() => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = Arr(["v1"]),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = serverAddress }),
    };

    JsonObject GroupEntry(string group)
    {
        var versions = registry.GroupVersions.Where(gv => gv.Group == group).Select(gv =>
            (JsonNode?)new JsonObject { ["groupVersion"] = $"{group}/{gv.Version}", ["version"] = gv.Version }).ToArray();
        return new JsonObject
        {
            ["name"] = group,
            ["versions"] = new JsonArray(versions),
            ["preferredVersion"] = versions[0]!.DeepClone(),
        };
    }

    public JsonObject ApiGroupList() => new()
    {
        ["kind"] = "APIGroupList",
        ["apiVersion"] = "v1",
        ["groups"] = new JsonArray(registry.GroupVersions.Select(gv => gv.Group).Where(g => g.Length > 0).Distinct().Select(g => (JsonNode?)GroupEntry(g)).ToArray()),
    };

    public JsonObject? ApiGroup(string group)
    {
        if (group.Length == 0 || !registry.GroupVersions.Any(gv => gv.Group == group)) return null;
        var e = GroupEntry(group);
        e["kind"] = "APIGroup";
        e["apiVersion"] = "v1";
        return e;
    }

    public JsonObject? ResourceList(string group, string version)
    {
        var types = registry.All.Where(t => t.Group == group && t.Version == version).ToList();
        if (types.Count == 0) return null;
        var resources = new JsonArray();
        foreach (var t in types)
        {
            var r = new JsonObject
            {
                ["name"] = t.Plural,
                ["singularName"] = t.Singular,
                ["namespaced"] = t.Namespaced,
                ["kind"] = t.Kind,
                ["verbs"] = Arr(t.Verbs),
            };
            if (!t.CreateOnly) r["storageVersionHash"] = Hash(t.GroupVersion + "/" + t.Kind);
            if (t.ShortNames.Length > 0) r["shortNames"] = Arr(t.ShortNames);
            if (t.Categories.Length > 0) r["categories"] = Arr(t.Categories);
            resources.Add((JsonNode)r);
            foreach (var s in t.Subresources)
            {
                var (g, v, k, verbs) = Sub(t, s);
                var sr = new JsonObject { ["name"] = $"{t.Plural}/{s}", ["singularName"] = "", ["namespaced"] = t.Namespaced, ["kind"] = k, ["verbs"] = Arr(verbs) };
                // a subresource served as another group's kind names both (kubectl drain looks for pods/eviction's)
                if (g != t.Group || v != t.Version) { sr["group"] = g; sr["version"] = v; }
                resources.Add((JsonNode)sr);
            }
        }
        return new JsonObject { ["kind"] = "APIResourceList", ["apiVersion"] = "v1", ["groupVersion"] = types[0].GroupVersion, ["resources"] = resources };
    }

    /// <summary>apidiscovery.k8s.io/v2 APIGroupDiscoveryList: the core group for /api, the others for /apis.</summary>
    public JsonObject Aggregated(bool legacy)
    {
        var items = new JsonArray();
        foreach (var group in registry.GroupVersions.Select(gv => gv.Group).Distinct().Where(g => (g.Length == 0) == legacy))
        {
            var versions = new JsonArray();
            foreach (var (_, version) in registry.GroupVersions.Where(gv => gv.Group == group))
            {
                var resources = new JsonArray();
                foreach (var t in registry.All.Where(t => t.Group == group && t.Version == version))
                {
                    var r = new JsonObject
                    {
                        ["resource"] = t.Plural,
                        ["responseKind"] = new JsonObject { ["group"] = t.Group, ["version"] = t.Version, ["kind"] = t.Kind },
                        ["scope"] = t.Namespaced ? "Namespaced" : "Cluster",
                        ["singularResource"] = t.Singular,
                        ["verbs"] = Arr(t.Verbs),
                    };
                    if (t.ShortNames.Length > 0) r["shortNames"] = Arr(t.ShortNames);
                    if (t.Categories.Length > 0) r["categories"] = Arr(t.Categories);
                    var subs = new JsonArray();
                    foreach (var s in t.Subresources)
                    {
                        var (g, v, k, verbs) = Sub(t, s);
                        subs.Add((JsonNode)new JsonObject
                        {
                            ["subresource"] = s,
                            ["responseKind"] = new JsonObject { ["group"] = g, ["version"] = v, ["kind"] = k },
                            ["verbs"] = Arr(verbs),
                        });
                    }
                    if (subs.Count > 0) r["subresources"] = subs;
                    resources.Add((JsonNode)r);
                }
                versions.Add((JsonNode)new JsonObject { ["version"] = version, ["resources"] = resources, ["freshness"] = "Current" });
            }
            items.Add((JsonNode)new JsonObject { ["metadata"] = new JsonObject { ["name"] = group, ["creationTimestamp"] = null }, ["versions"] = versions });
        }
        return new JsonObject { ["kind"] = "APIGroupDiscoveryList", ["apiVersion"] = "apidiscovery.k8s.io/v2", ["metadata"] = new JsonObject(), ["items"] = items };
    }

    static string Hash(string s) => Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(s)).AsSpan(0, 8));

    static string GvPath(string group, string version) => group.Length == 0 ? $"api/{version}" : $"apis/{group}/{version}";

    /// <summary>
    /// /openapi/v2 as the protobuf kubectl asks for first (gnostic openapi_v2.Document with swagger "2.0"
    /// and info only): a valid document with no definitions; the JSON one has them all.
    /// </summary>
    public static byte[] OpenApiV2Protobuf()
    {
        static byte[] Field(int number, byte[] payload) => [(byte)((number << 3) | 2), (byte)payload.Length, .. payload];
        var info = Field(1, Encoding.UTF8.GetBytes("Kubernetes")).Concat(Field(2, Encoding.UTF8.GetBytes("v1.32.0+berth"))).ToArray();
        return [.. Field(1, Encoding.UTF8.GetBytes("2.0")), .. Field(2, info)];
    }
}
