using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using k8s.Models;

namespace Berth.Cluster.Api;

/// <summary>Names the model types whose OpenAPI schemas Berth.Cluster.SchemaGen generates (with all they reach).</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class OpenApiRootsAttribute(params Type[] roots) : Attribute
{
    public Type[] Roots { get; } = roots;
}

/// <summary>The schemas of every served kind (core first, so shared types get core's names), generated at build time.</summary>
[OpenApiRoots(
    typeof(V1Pod), typeof(V1Namespace), typeof(V1Node), typeof(V1Service), typeof(V1Endpoints), typeof(V1ConfigMap),
    typeof(V1Secret), typeof(Corev1Event), typeof(V1ServiceAccount), typeof(V1Binding),
    typeof(V1Deployment), typeof(V1ReplicaSet), typeof(V1DaemonSet), typeof(V1StatefulSet),
    typeof(V1Job), typeof(V1CronJob), typeof(V1EndpointSlice), typeof(V1Lease), typeof(V1Scale), typeof(V1Eviction),
    typeof(V1PersistentVolumeClaim), typeof(V1PersistentVolume), typeof(V1ControllerRevision),
    typeof(V1Role), typeof(V1ClusterRole), typeof(V1RoleBinding), typeof(V1ClusterRoleBinding),
    typeof(V1SelfSubjectAccessReview), typeof(V1SelfSubjectRulesReview), typeof(V1SubjectAccessReview), typeof(V1LocalSubjectAccessReview),
    typeof(Authenticationv1TokenRequest),
    typeof(V1ReplicationController), typeof(V1Ingress), typeof(V1PodDisruptionBudget),
    typeof(V1ResourceQuota), typeof(V1LimitRange),
    typeof(V2HorizontalPodAutoscaler), typeof(V1HorizontalPodAutoscaler))]
internal static partial class OpenApiSchemas;

/// <summary>
/// OpenAPI v2 (/openapi/v2) and v3 (/openapi/v3, /openapi/v3/api/v1, /openapi/v3/apis/G/V) documents for
/// the served kinds: real schemas (generated from the KubernetesClient.Aot models, see
/// <see cref="OpenApiSchemas"/>) and paths whose operations carry x-kubernetes-group-version-kind and the
/// fieldValidation/dryRun/fieldManager parameters, which kubectl checks before it sends them. Each
/// document is built once and served from its cached bytes; the v3 index names each document's hash.
/// </summary>
public sealed class OpenApiDocuments(ResourceRegistry registry)
{
    readonly Lazy<JsonObject> definitions = new(() => Materialize(JsonNode.Parse(OpenApiSchemas.DefinitionsJson)!).AsObject());
    readonly Lazy<Dictionary<(string, string, string), string>> byKind = new(() => []);
    readonly Lock gate = new();
    Dictionary<string, (byte[] Body, string Hash)>? v3;
    byte[]? v2Json, v3Index;

    /// <summary>The definitions (v2 names, "#/definitions/…" refs), for schema-driven validation. Do not mutate.</summary>
    internal JsonObject Definitions => definitions.Value;

    /// <summary>The definition name of a kind (io.k8s.api.apps.v1.Deployment), if it has a schema.</summary>
    internal string? DefinitionOf(string group, string version, string kind)
    {
        var map = byKind.Value;
        lock (map)
        {
            if (map.Count == 0)
                foreach (var (name, def) in Definitions)
                    if (def?["x-kubernetes-group-version-kind"] is JsonArray gvks)
                        foreach (var g in gvks)
                            map[(g!["group"]!.GetValue<string>(), g["version"]!.GetValue<string>(), g["kind"]!.GetValue<string>())] = name;
            return map.GetValueOrDefault((group, version, kind));
        }
    }

    readonly System.Collections.Concurrent.ConcurrentDictionary<string, SchemaNode> compiled = new(StringComparer.Ordinal);

    /// <summary>A kind's schema compiled for the write path's checks (<see cref="SchemaCheck"/>), if it has one; built once.</summary>
    internal SchemaNode? CompiledOf(string group, string version, string kind) =>
        DefinitionOf(group, version, kind) is { } def ? compiled.GetOrAdd(def, d => SchemaNode.Compile(Definitions, d)) : null;

    /// <summary>Touches every node once, so that concurrent readers never race on JsonObject's lazy set-up.</summary>
    static JsonNode Materialize(JsonNode node)
    {
        if (node is JsonObject o) foreach (var (_, c) in o) { if (c is not null) Materialize(c); }
        else if (node is JsonArray a) foreach (var c in a) { if (c is not null) Materialize(c); }
        return node;
    }

    static string GvPath(string group, string version) => group.Length == 0 ? $"api/{version}" : $"apis/{group}/{version}";

    static JsonArray Params(params string[] names)
    {
        var a = new JsonArray();
        foreach (var n in names)
            a.Add((JsonNode)new JsonObject { ["name"] = n, ["in"] = "query", ["type"] = "string", ["uniqueItems"] = true });
        return a;
    }

    /// <summary>The paths of one kind, operations tagged with its GVK, in v2 shape.</summary>
    void AddPaths(JsonObject paths, ResourceType t, string defName)
    {
        var prefix = "/" + GvPath(t.Group, t.Version) + (t.Namespaced ? "/namespaces/{namespace}/" : "/") + t.Plural;
        var gvk = new JsonObject { ["group"] = t.Group, ["kind"] = t.Kind, ["version"] = t.Version };
        var refBody = new JsonObject { ["$ref"] = "#/definitions/" + defName };
        JsonObject Op(string id, string action, JsonArray parameters, bool body)
        {
            var op = new JsonObject
            {
                ["operationId"] = id + t.Kind,
                ["consumes"] = new JsonArray("application/json", "application/yaml"),
                ["produces"] = new JsonArray("application/json", "application/yaml"),
                ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "OK", ["schema"] = refBody.DeepClone() } },
                ["x-kubernetes-action"] = action,
                ["x-kubernetes-group-version-kind"] = gvk.DeepClone(),
            };
            if (body) parameters.Add((JsonNode)new JsonObject { ["name"] = "body", ["in"] = "body", ["required"] = true, ["schema"] = refBody.DeepClone() });
            op["parameters"] = parameters;
            return op;
        }
        paths[prefix] = new JsonObject
        {
            ["get"] = Op("list", "list", Params("labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"), false),
            ["post"] = Op("create", "post", Params("dryRun", "fieldManager", "fieldValidation"), true),
            ["delete"] = Op("deletecollection", "deletecollection", Params("labelSelector", "fieldSelector", "dryRun"), false),
        };
        paths[prefix + "/{name}"] = new JsonObject
        {
            ["get"] = Op("read", "get", Params(), false),
            ["put"] = Op("replace", "put", Params("dryRun", "fieldManager", "fieldValidation"), true),
            ["patch"] = Op("patch", "patch", Params("dryRun", "fieldManager", "fieldValidation", "force"), true),
            ["delete"] = Op("delete", "delete", Params("dryRun", "gracePeriodSeconds", "propagationPolicy"), false),
        };
    }

    public byte[] V2Json()
    {
        lock (gate)
        {
            if (v2Json is not null) return v2Json;
            var paths = new JsonObject();
            foreach (var t in registry.All)
                if (DefinitionOf(t.Group, t.Version, t.Kind) is { } def) AddPaths(paths, t, def);
            var doc = new JsonObject
            {
                ["swagger"] = "2.0",
                ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0+berth" },
                ["paths"] = paths,
                ["definitions"] = Definitions.DeepClone(),
            };
            return v2Json = Encoding.UTF8.GetBytes(doc.ToJsonString());
        }
    }

    void BuildV3()
    {
        if (v3 is not null) return;
        var docs = new Dictionary<string, (byte[], string)>();
        foreach (var (g, v) in registry.GroupVersions)
        {
            var paths = new JsonObject();
            var roots = new List<string>();
            foreach (var t in registry.All.Where(t => t.Group == g && t.Version == v))
                if (DefinitionOf(t.Group, t.Version, t.Kind) is { } def) { AddPaths(paths, t, def); roots.Add(def); }
            var schemas = new JsonObject();
            foreach (var name in Reachable(roots)) schemas[name] = V3Schema(Definitions[name]!.DeepClone());
            // v3 operations: parameters with a schema, bodies as requestBody
            foreach (var (_, item) in paths)
                foreach (var (_, op) in item!.AsObject())
                {
                    var ps = op!["parameters"]!.AsArray();
                    JsonNode? body = null;
                    foreach (var p in ps.ToArray())
                    {
                        if (p!["in"]!.GetValue<string>() == "body") { body = p["schema"]!.DeepClone(); ps.Remove(p); continue; }
                        p.AsObject().Remove("type");
                        p["schema"] = new JsonObject { ["type"] = "string", ["uniqueItems"] = true };
                    }
                    op.AsObject().Remove("consumes");
                    op.AsObject().Remove("produces");
                    if (body is not null)
                    {
                        // Strategic merge patch is served but not advertised here: kubectl would then compute
                        // apply patches from these schemas, which carry no patch strategies / merge keys,
                        // instead of from its compiled-in types.
                        string[] types = op["x-kubernetes-action"]!.GetValue<string>() == "patch"
                            ? ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
                            : ["application/json", "application/yaml"];
                        var content = new JsonObject();
                        foreach (var ty in types) content[ty] = new JsonObject { ["schema"] = V3Schema(body.DeepClone()) };
                        op["requestBody"] = new JsonObject { ["content"] = content, ["required"] = true };
                    }
                    var ok = op["responses"]!["200"]!.AsObject();
                    var schema = ok["schema"]!.DeepClone();
                    ok.Remove("schema");
                    ok["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = V3Schema(schema) } };
                }
            var doc = new JsonObject
            {
                ["openapi"] = "3.0.0",
                ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0+berth" },
                ["paths"] = paths,
                ["components"] = new JsonObject { ["schemas"] = schemas },
            };
            var bytes = Encoding.UTF8.GetBytes(doc.ToJsonString());
            docs[GvPath(g, v)] = (bytes, Convert.ToHexString(SHA256.HashData(bytes)));
        }
        v3 = docs;
    }

    /// <summary>v2 → v3 schema: refs under #/components/schemas, int-or-string as Kubernetes' v3 extension.</summary>
    static JsonNode V3Schema(JsonNode node)
    {
        if (node is JsonObject o)
        {
            if (o["$ref"] is JsonValue r) o["$ref"] = r.GetValue<string>().Replace("#/definitions/", "#/components/schemas/");
            if (o["format"]?.GetValue<string>() == "int-or-string")
            {
                o.Remove("format");
                o.Remove("type");
                o["x-kubernetes-int-or-string"] = true;
            }
            foreach (var (_, child) in o.ToArray())
                if (child is not null) V3Schema(child);
        }
        else if (node is JsonArray a)
            foreach (var child in a)
                if (child is not null) V3Schema(child);
        return node;
    }

    IEnumerable<string> Reachable(IEnumerable<string> roots)
    {
        var seen = new SortedSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(roots);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!seen.Add(n) || Definitions[n] is not { } def) continue;
            foreach (var r in Refs(def)) stack.Push(r);
        }
        return seen;
    }

    static IEnumerable<string> Refs(JsonNode node)
    {
        if (node is JsonObject o)
        {
            if (o["$ref"] is JsonValue r) yield return r.GetValue<string>()["#/definitions/".Length..];
            foreach (var (_, c) in o)
                if (c is not null) foreach (var x in Refs(c)) yield return x;
        }
        else if (node is JsonArray a)
            foreach (var c in a)
                if (c is not null) foreach (var x in Refs(c)) yield return x;
    }

    /// <summary>/openapi/v3: the index of group-version documents, each URL with its content hash.</summary>
    public byte[] V3Index()
    {
        lock (gate)
        {
            if (v3Index is not null) return v3Index;
            BuildV3();
            var paths = new JsonObject();
            foreach (var (path, (_, hash)) in v3!)
                paths[path] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{path}?hash={hash}" };
            return v3Index = Encoding.UTF8.GetBytes(new JsonObject { ["paths"] = paths }.ToJsonString());
        }
    }

    /// <summary>One group-version's document ("api/v1", "apis/apps/v1"), null if not served.</summary>
    public (byte[] Body, string Hash)? V3(string gvPath)
    {
        lock (gate)
        {
            BuildV3();
            return v3!.TryGetValue(gvPath, out var d) ? d : null;
        }
    }
}
