using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Berth.Cluster.Api.Admission;
using Berth.Cluster.Storage;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Api;

public sealed partial class ApiHandler
{
    const string NameChars = "bcdfghjklmnpqrstvwxz2456789";

    void CheckTypeMeta(ResourceType type, JsonObject obj, string expectedKind, string expectedApiVersion)
    {
        var kind = obj.Str("kind");
        var apiVersion = obj.Str("apiVersion");
        if (!string.IsNullOrEmpty(apiVersion) && apiVersion != expectedApiVersion)
            throw ApiException.BadRequest($"the API version in the data ({apiVersion}) does not match the expected API version ({expectedApiVersion})");
        if (!string.IsNullOrEmpty(kind) && kind != expectedKind)
            throw ApiException.BadRequest($"the kind in the data ({kind}) does not match the expected kind ({expectedKind})");
        obj["kind"] = expectedKind;
        obj["apiVersion"] = expectedApiVersion;
    }

    void CheckNamespace(Target t, JsonObject obj)
    {
        var meta = obj.Meta();
        if (!t.Type.Namespaced) { meta.Remove("namespace"); return; }
        var ns = meta.Str("namespace");
        if (string.IsNullOrEmpty(ns)) meta["namespace"] = t.Namespace;
        else if (ns != t.Namespace)
            throw ApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
    }

    static readonly HashSet<string> MetaFields =
    [
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
    ];

    /// <summary>
    /// The decoding checks of a written object, in one walk against its kind's schema (<see cref="SchemaCheck"/>):
    /// <para>A value of the wrong JSON type (a string for spec.replicas) is refused whatever fieldValidation
    /// says, as Kubernetes' typed decoding refuses it: a 400 naming the field for a body, a 422 on
    /// "patch" for a patch (with the patch as a strategic merge patch reports it, or the patched object
    /// for JSON and merge patches), in the API server's words.</para>
    /// <para>fieldValidation: fields the kind's schema does not declare (at any depth) are a 400 with Strict (what
    /// kubectl sends by default), a Warning header each with Warn (the default), nothing with Ignore; with Warn
    /// and Ignore they are dropped. Kinds without a schema are checked at the top level and in metadata only.</para>
    /// <paramref name="patchType"/> is the content type of a patch (null for a create, update or apply) and
    /// <paramref name="patch"/> its text.
    /// </summary>
    void CheckFields(HttpContext ctx, ResourceType type, JsonObject obj, FieldValidation.Mode mode, bool isPatch = false, string? patchType = null, string? patch = null)
    {
        type = Served(ctx) ?? type; // the body is at the requested version
        var schema = discovery.OpenApi.CompiledOf(type.Group, type.Version, type.Kind);
        List<string> unknown;
        SchemaCheckResult? found = null;
        if (schema is not null)
        {
            found = SchemaCheck.Check(discovery.OpenApi.Definitions, schema, obj);
            if (found.Mismatch is { } m) ThrowTypeMismatch(type, obj, m, patchType, patch);
            unknown = found.Unknown;
        }
        else
        {
            if (mode == FieldValidation.Mode.Ignore) return;
            unknown = [];
            foreach (var (k, _) in obj)
                if (k is not ("apiVersion" or "kind" or "metadata") && !type.Fields.Contains(k)) unknown.Add(k);
            if (obj["metadata"] is JsonObject meta)
                foreach (var (k, _) in meta)
                    if (!MetaFields.Contains(k)) unknown.Add("metadata." + k);
        }
        if (mode == FieldValidation.Mode.Ignore)
        {
            found?.Prune();
            return;
        }
        // with the JSON body's repeated keys (found by ReadObjectAsync), in document order as Kubernetes lists them
        var body = ctx.Items[DuplicatesKey] as byte[];
        if (unknown.Count == 0 && (body is null || !FieldValidation.HasDuplicateFields(body))) return;
        var order = new Dictionary<string, int>(StringComparer.Ordinal);
        var dups = body is null ? [] : FieldValidation.DuplicateFields(body, order);
        var problems = new List<(int At, string Text)>();
        foreach (var (path, at) in dups) problems.Add((at, $"duplicate field \"{path}\""));
        foreach (var u in unknown) problems.Add((order.GetValueOrDefault(u, int.MaxValue), $"unknown field \"{u}\""));
        if (problems.Count == 0) return;
        var texts = problems.OrderBy(p => p.At).Select(p => p.Text).ToList();
        if (mode == FieldValidation.Mode.Warn)
        {
            foreach (var t in texts) ctx.Response.Headers.Append("Warning", "299 - \"" + t.Replace("\"", "\\\"") + "\"");
            if (unknown.Count > 0) found?.Prune();
            return;
        }
        // a body that does not decode is "cannot be handled as a Kind"; a patch's result only names the fields
        var prefix = isPatch ? "" : $"{type.Kind} in version \"{type.Version}\" cannot be handled as a {type.Kind}: ";
        throw ApiException.BadRequest(prefix + "strict decoding error: " + string.Join(", ", texts));
    }

    static void ThrowTypeMismatch(ResourceType type, JsonObject obj, TypeMismatch m, string? patchType, string? patch)
    {
        switch (patchType)
        {
            case null:
                throw ApiException.BadRequest($"{type.Kind} in version \"{type.Version}\" cannot be handled as a {type.Kind}: {m.DecodeText}");
            case "application/strategic-merge-patch+json":
                JsonNode? patchNode = null;
                try { patchNode = JsonNode.Parse(patch ?? "null"); } catch (System.Text.Json.JsonException) { }
                throw ApiException.Invalid("", "", "", [FieldError.Invalid("patch", TypeCheck.GoFormat(patchNode), m.ConvertText)]);
            default:
                throw ApiException.Invalid("", "", "", [FieldError.Invalid("patch", obj.ToJsonString(), m.DecodeText)]);
        }
    }

    void Validate(ResourceType type, JsonObject obj, JsonObject? old)
    {
        var errors = new List<FieldError>();
        Validation.ValidateObjectMeta(obj.Meta(), type.NameRule, errors);
        type.Validate?.Invoke(obj, old, errors);
        if (errors.Count > 0) throw ApiException.Invalid(type.Group, type.Kind, obj.Str("metadata.name") ?? "", errors);
    }

    internal async Task<JsonObject> CreateAsync(Target t, JsonObject obj, bool dryRun, CancellationToken ct) =>
        (await CreateStoredAsync(t, obj, dryRun, ct)).Obj;

    /// <summary>Creates the object; also answers the store's entry (its wire form without resourceVersion), null on a dry run.</summary>
    internal async Task<(JsonObject Obj, StoreEntry? Stored)> CreateStoredAsync(Target t, JsonObject obj, bool dryRun, CancellationToken ct)
    {
        var type = t.Type;
        CheckTypeMeta(type, obj, type.Kind, type.ApiVersion);
        CheckNamespace(t, obj);
        var meta = obj.Meta();
        if (string.IsNullOrEmpty(meta.Str("name")) && meta.Str("generateName") is { Length: > 0 } gen)
            meta["name"] = gen + new string(RandomNumberGenerator.GetItems<char>(NameChars, 5));
        var name = meta.Str("name") ?? "";
        if (!string.IsNullOrEmpty(meta.Str("resourceVersion")))
            throw ApiException.Invalid(type.Group, type.Kind, name, [FieldError.Invalid("metadata.resourceVersion", meta.Str("resourceVersion"), "must be empty on create")]);
        meta["uid"] = Json.NewUid();
        meta["creationTimestamp"] = Json.Now();
        meta.Remove("deletionTimestamp");
        meta.Remove("deletionGracePeriodSeconds");
        if (type.TracksGeneration) meta["generation"] = 1; else meta.Remove("generation");
        if (type.ResetStatusOnCreate) obj.Remove("status");
        type.OnCreate?.Invoke(obj);
        type.Default?.Invoke(obj);
        if (type.Namespaced) await Admission.MutateAsync(type, t.Namespace!, obj, ct);
        DropEmptyMetadata(obj);
        Validate(type, obj, null);
        if (type.Namespaced) await CheckNamespaceActiveAsync(type, name, t.Namespace!, ct);
        if (type.Kind == "Service") await AllocateServiceAsync(obj, ct);
        if (type.Namespaced) await Admission.ValidateAsync(type, t.Namespace!, obj, null, dryRun, ct);
        if (dryRun)
        {
            if (await store.GetAsync(type.Key(t.Namespace, name), ct) is not null) throw ApiException.AlreadyExists(type.Group, type.Plural, name);
            return (obj, null);
        }
        try
        {
            var e = await store.CreateAsync(type.Key(t.Namespace, name), Encode(obj), ct);
            Admission.Written(type, t.Namespace, e.ModRevision);
            meta["resourceVersion"] = e.ModRevision.ToString();
            return (obj, e);
        }
        catch (StoreKeyExistsException) { throw ApiException.AlreadyExists(type.Group, type.Plural, name); }
    }

    /// <summary>Kinds whose stored form needs no defaulting or kind-specific validation (Events): see <see cref="CreateBuiltAsync"/>.</summary>
    internal static bool CanCreateBuilt(ResourceType type) =>
        type.Default is null && type.Validate is null && type.OnCreate is null && !type.TracksGeneration && !type.ResetStatusOnCreate && type.Kind != "Service";

    /// <summary>
    /// Creates an object a server component serialized itself from typed data, already stamped (uid,
    /// creationTimestamp, apiVersion, kind, namespace; no resourceVersion): the NamespaceLifecycle check
    /// and one store write, no JSON tree. Only for <see cref="CanCreateBuilt"/> kinds.
    /// </summary>
    internal async Task<StoreEntry> CreateBuiltAsync(Target t, string name, byte[] stored, CancellationToken ct)
    {
        var type = t.Type;
        if (!CanCreateBuilt(type)) throw new InvalidOperationException($"{type.Plural} are defaulted or validated on create: use CreateAsync");
        if (type.Namespaced) await CheckNamespaceActiveAsync(type, name, t.Namespace!, ct);
        try { return await store.CreateAsync(type.Key(t.Namespace, name), stored, ct); }
        catch (StoreKeyExistsException) { throw ApiException.AlreadyExists(type.Group, type.Plural, name); }
    }

    NamespaceLister? namespaceLister;

    internal NamespaceLister Namespaces
    {
        get
        {
            if (namespaceLister is { } l) return l;
            var created = new NamespaceLister(store, registry.Find("", "v1", "namespaces")!.KeyPrefix);
            if (Interlocked.CompareExchange(ref namespaceLister, created, null) is { } other) { created.Dispose(); return other; }
            return created;
        }
    }

    AdmissionChain? admission;

    /// <summary>LimitRanger and ResourceQuota (see <see cref="AdmissionChain"/>).</summary>
    internal AdmissionChain Admission
    {
        get
        {
            if (admission is { } a) return a;
            var created = new AdmissionChain(store, registry.Find("", "v1", "resourcequotas")!, registry.Find("", "v1", "limitranges")!);
            if (Interlocked.CompareExchange(ref admission, created, null) is { } other) { created.Dispose(); return other; }
            return created;
        }
    }

    /// <summary>Stops the namespace and policy listers' watches (the server is stopping).</summary>
    internal void StopBackground()
    {
        namespaceLister?.Dispose();
        admission?.Dispose();
    }

    /// <summary>A write of a namespace by this server (see <see cref="NamespaceLister.Written"/>).</summary>
    void NamespaceWritten(ResourceType type, string? name, long revision)
    {
        if (type.Kind == "Namespace" && type.Group.Length == 0 && name is not null) Namespaces.Written(name, revision);
    }

    /// <summary>
    /// The NamespaceLifecycle admission check: no new content in a namespace that is missing or being terminated.
    /// A namespace the lister knows as active needs no store read; otherwise the store is asked.
    /// </summary>
    async Task CheckNamespaceActiveAsync(ResourceType type, string name, string ns, CancellationToken ct)
    {
        if (Namespaces.IsKnownActive(ns)) return;
        var nsType = registry.Find("", "v1", "namespaces")!;
        var e = await store.GetAsync(nsType.Key(null, ns), ct) ?? throw ApiException.NotFound("", "namespaces", ns);
        bool terminating = Decode(e).Str("metadata.deletionTimestamp") is not null;
        if (terminating)
            throw ApiException.Forbidden(type.Group, type.Plural, name, $"unable to create new content in namespace {ns} because it is being terminated");
    }

    /// <summary>ClusterIP from 10.43.0.0/16 and node ports from 30000-32767, unique among existing services.</summary>
    async Task AllocateServiceAsync(JsonObject svc, CancellationToken ct)
    {
        var spec = svc.Obj("spec");
        var type = spec.Str("type");
        await allocGate.WaitAsync(ct);
        try
        {
            var all = await store.ListAsync(registry.Find("", "v1", "services")!.KeyPrefix, ct: ct);
            var usedIps = new HashSet<string>();
            var usedPorts = new HashSet<long>();
            foreach (var e in all.Items)
            {
                var o = Decode(e);
                if (o.Str("spec.clusterIP") is { } ip) usedIps.Add(ip);
                foreach (var p in o.Objects("spec.ports")) if (p.Long("nodePort") is { } np) usedPorts.Add(np);
            }
            if (type != "ExternalName" && string.IsNullOrEmpty(spec.Str("clusterIP")))
            {
                var n = RandomNumberGenerator.GetInt32(10, 65000);
                string ip;
                do { ip = $"10.43.{n / 254}.{n % 254 + 1}"; n = n % 64990 + 10; } while (!usedIps.Add(ip));
                spec["clusterIP"] = ip;
            }
            if (spec.Str("clusterIP") is { } cip) spec["clusterIPs"] = new JsonArray(cip);
            if (type is "NodePort" or "LoadBalancer")
                foreach (var p in spec.Objects("ports"))
                {
                    if (p.Long("nodePort") is { } np)
                    {
                        if (np is < 30000 or > 32767) throw ApiException.Invalid("", "Service", svc.Str("metadata.name") ?? "", [FieldError.Invalid("spec.ports[0].nodePort", np.ToString(), "provided port is not in the valid range. The range of valid ports is 30000-32767")]);
                        continue;
                    }
                    long port;
                    do port = RandomNumberGenerator.GetInt32(30000, 32768); while (!usedPorts.Add(port));
                    p["nodePort"] = port;
                }
        }
        finally { allocGate.Release(); }
    }

    /// <summary>
    /// ObjectMeta's maps and lists are omitempty in the API server's types: an empty one (`annotations: {}`
    /// from kubectl's apply and diff patches) is not kept, so it neither shows nor counts as a change.
    /// </summary>
    static void DropEmptyMetadata(JsonObject obj)
    {
        if (obj["metadata"] is not JsonObject meta) return;
        foreach (var k in OmitEmptyMetadata)
            if (meta[k] is JsonObject { Count: 0 } or JsonArray { Count: 0 } || meta.ContainsKey(k) && meta[k] is null) meta.Remove(k);
    }

    static readonly string[] OmitEmptyMetadata = ["labels", "annotations", "finalizers", "ownerReferences", "managedFields"];

    /// <summary>Whether an update leaves the object as it was (resourceVersion and managedFields aside).</summary>
    static bool Unchanged(JsonObject old, JsonObject updated)
    {
        if (old.Count != updated.Count) return false;
        foreach (var (k, v) in old)
        {
            if (!updated.TryGetPropertyValue(k, out var u)) return false;
            if (k == "metadata" && v is JsonObject om && u is JsonObject um)
            {
                foreach (var (mk, mv) in om)
                    if (mk is not ("resourceVersion" or "managedFields") && !JsonNode.DeepEquals(mv, um[mk])) return false;
                foreach (var (mk, _) in um)
                    if (mk is not ("resourceVersion" or "managedFields") && !om.ContainsKey(mk)) return false;
            }
            else if (!JsonNode.DeepEquals(v, u)) return false;
        }
        return true;
    }

    /// <summary>Carries over what a client may not change, and the parts another endpoint owns.</summary>
    static void PrepareUpdate(ResourceType type, JsonObject old, JsonObject obj, string? sub)
    {
        var meta = obj.Meta();
        var oldMeta = old.Meta();
        foreach (var k in new[] { "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "name", "namespace" })
        {
            if (oldMeta[k] is { } v) meta[k] = v.DeepClone(); else meta.Remove(k);
        }
        if (meta["managedFields"] is null && oldMeta["managedFields"] is { } mf) meta["managedFields"] = mf.DeepClone();
        if (sub is null && type.HasStatus)
        {
            if (old["status"] is { } st) obj["status"] = st.DeepClone(); else obj.Remove("status");
        }
        if (type.TracksGeneration && sub is null && !JsonNode.DeepEquals(old["spec"], obj["spec"]))
            meta["generation"] = (oldMeta.Long("generation") ?? 0) + 1;
    }

    async Task UpdateAsync(HttpContext ctx, Target t, JsonObject obj, bool dryRun, CancellationToken ct)
    {
        var type = t.Type;
        if (t.Subresource == "scale")
        {
            await WriteJsonAsync(ctx, 200, await WriteScaleAsync(t, obj, dryRun, ct));
            return;
        }
        if (t.Subresource == "finalize")
        {
            await RespondObjectAsync(ctx, 200, await FinalizeNamespaceAsync(t, obj, ct), type);
            return;
        }
        await RespondObjectAsync(ctx, 200, await ReplaceAsync(t, obj, dryRun, ct), type);
    }

    /// <summary>PUT of an object or its status: the name and namespace must match the target; the
    /// object's resourceVersion, when set, must be current (optimistic concurrency).</summary>
    internal async Task<JsonObject> ReplaceAsync(Target t, JsonObject obj, bool dryRun, CancellationToken ct)
    {
        var type = t.Type;
        CheckTypeMeta(type, obj, type.Kind, type.ApiVersion);
        CheckNamespace(t, obj);
        if (obj.Str("metadata.name") is { } n && n != t.Name)
            throw ApiException.BadRequest($"the name of the object ({n}) does not match the name on the URL ({t.Name})");
        obj.Meta()["name"] = t.Name;
        var expected = ParseRv(obj.Str("metadata.resourceVersion"), "resourceVersion");
        return await WriteUpdateAsync(t, expected, _ => obj, dryRun, ct);
    }

    /// <summary>
    /// Read-modify-write of one object with optimistic concurrency: <paramref name="expected"/> is the
    /// client's resourceVersion (0 = none: retried on conflicts, as the API server does for patches).
    /// </summary>
    async Task<JsonObject> WriteUpdateAsync(Target t, long expected, Func<JsonObject, JsonObject> change, bool dryRun, CancellationToken ct)
    {
        var type = t.Type;
        var key = type.Key(t.Namespace, t.Name!);
        for (var attempt = 0; ; attempt++)
        {
            var e = await store.GetAsync(key, ct) ?? throw ApiException.NotFound(type.Group, type.Plural, t.Name!);
            if (expected != 0 && e.ModRevision != expected)
                throw ApiException.Conflict(type.Group, type.Plural, t.Name!, "the object has been modified; please apply your changes to the latest version and try again");
            var old = Decode(e);
            var obj = change((JsonObject)old.DeepClone());
            CheckTypeMeta(type, obj, type.Kind, type.ApiVersion);
            if (t.Subresource is "finalize") { }
            else if (t.Subresource is "status")
            {
                var merged = (JsonObject)old.DeepClone();
                if (obj["status"] is { } st) merged["status"] = st.DeepClone(); else merged.Remove("status");
                obj = merged;
            }
            else PrepareUpdate(type, old, obj, t.Subresource);
            type.Default?.Invoke(obj);
            DropEmptyMetadata(obj);
            Validate(type, obj, old);
            if (type.Kind == "Service" && old.Str("spec.clusterIP") is { } ip && obj.Str("spec.clusterIP") is null) obj.Obj("spec")["clusterIP"] = ip;
            if (t.Subresource is null && type.Namespaced) await Admission.ValidateAsync(type, t.Namespace!, obj, old, dryRun, ct);
            if (dryRun) { obj.Meta()["resourceVersion"] = e.ModRevision.ToString(); return obj; }
            // A write that changes nothing is not written (no new resourceVersion, no watch event), as the
            // API server skips it: `kubectl patch` then says "patched (no change)".
            if (Unchanged(old, obj)) { obj.Meta()["resourceVersion"] = e.ModRevision.ToString(); return obj; }
            try
            {
                // An object being deleted whose last finalizer is gone is deleted now.
                if (obj.Str("metadata.deletionTimestamp") is not null && obj.Arr("metadata.finalizers").Count == 0 && !AwaitsKubelet(type, obj)
                    && !(type.Kind == "Namespace" && obj.Arr("spec.finalizers").Count > 0))
                {
                    var d = await store.DeleteAsync(key, e.ModRevision, ct);
                    NamespaceWritten(type, t.Name, d.ModRevision);
                    Admission.Written(type, t.Namespace, d.ModRevision);
                    obj.Meta()["resourceVersion"] = d.ModRevision.ToString();
                    return obj;
                }
                var w = await store.UpdateAsync(key, Encode(obj), e.ModRevision, ct);
                NamespaceWritten(type, t.Name, w.ModRevision);
                Admission.Written(type, t.Namespace, w.ModRevision);
                obj.Meta()["resourceVersion"] = w.ModRevision.ToString();
                return obj;
            }
            catch (StoreConflictException) when (expected == 0 && attempt < 10) { }
            catch (StoreConflictException) { throw ApiException.Conflict(type.Group, type.Plural, t.Name!, "the object has been modified; please apply your changes to the latest version and try again"); }
            catch (StoreKeyNotFoundException) { throw ApiException.NotFound(type.Group, type.Plural, t.Name!); }
        }
    }

    /// <summary>A pod on a node that is terminating gracefully is removed by its kubelet (delete with grace 0), not by the finalizer path.</summary>
    static bool AwaitsKubelet(ResourceType type, JsonObject obj) =>
        type.Kind == "Pod" && obj.Long("metadata.deletionGracePeriodSeconds") is > 0 && !string.IsNullOrEmpty(obj.Str("spec.nodeName"));

    async Task PatchAsync(HttpContext ctx, Target t, FieldValidation.Mode fieldValidation, bool dryRun, CancellationToken ct)
    {
        var (text, contentType) = await ReadBodyAsync(ctx, ct);
        var type = t.Type;
        if (contentType == "application/apply-patch+yaml")
        {
            await ApplyAsync(ctx, t, text, fieldValidation, dryRun, ct);
            return;
        }
        Func<JsonNode?, JsonNode?> apply = contentType switch
        {
            "application/json-patch+json" => doc => JsonPatch.Apply(doc, ParseJson(text) as JsonArray ?? throw ApiException.BadRequest("json patch must be an array of operations")),
            "application/merge-patch+json" => doc => MergePatch.Apply(doc, ParseJson(text)),
            "application/strategic-merge-patch+json" => doc => StrategicMerge.Apply(doc as JsonObject ?? new JsonObject(), ParseJson(text) as JsonObject ?? throw ApiException.BadRequest("strategic merge patch must be an object")),
            _ => throw ApiException.UnsupportedMediaType($"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json ({contentType})"),
        };
        if (t.Subresource == "scale")
        {
            // applied to the latest object on every try: only a resourceVersion the patch itself sets is a precondition
            var scaled = await WriteUpdateAsync(t with { Subresource = null }, 0, o =>
            {
                var scale = apply(ToScale(type, o)) as JsonObject ?? throw ApiException.BadRequest("patch produced no object");
                var replicas = scale.Long("spec.replicas");
                if (replicas is null or < 0)
                    throw ApiException.Invalid("autoscaling", "Scale", t.Name!, [replicas is { } r ? FieldError.Invalid("spec.replicas", r, "must be greater than or equal to 0") : FieldError.Required("spec.replicas")]);
                if (scale.Str("metadata.resourceVersion") is { } srv && srv != o.Str("metadata.resourceVersion"))
                    throw ApiException.Conflict(type.Group, type.Plural, t.Name!, "the object has been modified; please apply your changes to the latest version and try again");
                o.Obj("spec")["replicas"] = replicas;
                return o;
            }, dryRun, ct);
            await WriteJsonAsync(ctx, 200, ToScale(type, scaled));
            return;
        }
        var checkedFields = false;
        var result = await WriteUpdateAsync(t, 0, old =>
        {
            var rv = old.Str("metadata.resourceVersion");
            var patched = apply(Out(ctx, old)) as JsonObject ?? throw ApiException.BadRequest("the patch produced something other than an object");
            // fieldValidation of the patched object, as for create and update (once: a retried write would repeat the warnings)
            if (t.Subresource is null && !checkedFields) { CheckFields(ctx, type, patched, fieldValidation, isPatch: true, contentType, text); checkedFields = true; }
            var prv = patched.Str("metadata.resourceVersion");
            if (prv is not null && prv != rv)
                throw ApiException.Conflict(type.Group, type.Plural, t.Name!, "the object has been modified; please apply your changes to the latest version and try again");
            return In(ctx, patched);
        }, dryRun, ct);
        await RespondObjectAsync(ctx, 200, result, type);
    }

    /// <summary>
    /// Server-side apply (application/apply-patch+yaml): creates the object when absent, otherwise
    /// merges the applied configuration into the live object (strategic merge semantics) and records
    /// the field manager in managedFields. A field another manager recorded (in managedFields) whose value
    /// the apply would change is a 409 conflict naming both, unless force=true, which takes the field over.
    /// </summary>
    async Task ApplyAsync(HttpContext ctx, Target t, string text, FieldValidation.Mode fieldValidation, bool dryRun, CancellationToken ct)
    {
        var type = t.Type;
        var manager = ctx.Request.Query["fieldManager"].ToString();
        if (manager.Length == 0) throw ApiException.BadRequest("PATCH /apply requires a non-empty fieldManager query parameter");
        var applied = Yaml.ToJson(text) as JsonObject ?? throw ApiException.BadRequest("the applied configuration must be an object");
        if (t.Subresource is null) CheckFields(ctx, type, applied, fieldValidation);
        var entry = new JsonObject
        {
            ["manager"] = manager,
            ["operation"] = "Apply",
            ["apiVersion"] = (Served(ctx) ?? type).ApiVersion,
            ["time"] = Json.Now(),
            ["fieldsType"] = "FieldsV1",
            ["fieldsV1"] = FieldSet(applied),
        };
        if (await store.GetAsync(type.Key(t.Namespace, t.Name!), ct) is null)
        {
            if (applied.Str("metadata.name") is { } n && n != t.Name) throw ApiException.BadRequest($"the name of the object ({n}) does not match the name on the URL ({t.Name})");
            applied.Meta()["name"] = t.Name;
            applied.Meta()["managedFields"] = new JsonArray(entry);
            await RespondObjectAsync(ctx, 201, await CreateAsync(t, In(ctx, applied), dryRun, ct), type);
            return;
        }
        var result = await WriteUpdateAsync(t, 0, stored =>
        {
            var old = Out(ctx, stored); // merged at the requested version
            var merged = StrategicMerge.Apply(old, applied);
            var others = merged.Arr("metadata.managedFields").OfType<JsonObject>().Where(m => m.Str("manager") != manager || m.Str("operation") != "Apply").Select(m => (JsonObject)m.DeepClone()).ToList();
            var conflicts = ManagedFields.Conflicts(entry["fieldsV1"]!.AsObject(), old, applied, others);
            if (conflicts.Count > 0 && !IsTrue(ctx.Request.Query["force"].ToString())) throw ManagedFields.ConflictError(type, t.Name!, conflicts);
            foreach (var (path, owner) in conflicts) ManagedFields.Release(owner, path);
            var fields = others.Where(m => m["fieldsV1"] is not JsonObject { Count: 0 }).Select(m => (JsonNode?)m).ToList();
            fields.Add(entry);
            merged.Meta()["managedFields"] = new JsonArray(fields.ToArray());
            return In(ctx, merged);
        }, dryRun, ct);
        await RespondObjectAsync(ctx, 200, result, type);
    }

    /// <summary>The FieldsV1 set ("f:field" keys, "k:{...}" for keyed list items) of an applied configuration.</summary>
    static JsonObject FieldSet(JsonObject o, string path = "")
    {
        var set = new JsonObject();
        foreach (var (k, v) in o)
        {
            if (path.Length == 0 && k is "apiVersion" or "kind") continue;
            if (path == ".metadata" && k is "name" or "namespace" or "managedFields") continue;
            var child = path + "." + k;
            if (v is JsonObject vo) set["f:" + k] = FieldSet(vo, child);
            else if (v is JsonArray va && StrategicMerge.MergeKey(child) is { Length: > 0 } key)
            {
                var items = new JsonObject();
                foreach (var item in va.OfType<JsonObject>())
                    if (item[key] is { } id) items[$"k:{{\"{key}\":{id.ToJsonString()}}}"] = FieldSet(item, child);
                set["f:" + k] = items;
            }
            else set["f:" + k] = new JsonObject();
        }
        return set;
    }

    // ---- scale ----

    static JsonObject ToScale(ResourceType type, JsonObject obj) => new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = new JsonObject
        {
            ["name"] = obj.Str("metadata.name"),
            ["namespace"] = obj.Str("metadata.namespace"),
            ["uid"] = obj.Str("metadata.uid"),
            ["resourceVersion"] = obj.Str("metadata.resourceVersion"),
            ["creationTimestamp"] = obj.Str("metadata.creationTimestamp"),
        },
        ["spec"] = new JsonObject { ["replicas"] = obj.Long("spec.replicas") ?? 0 },
        ["status"] = new JsonObject
        {
            ["replicas"] = obj.Long("status.replicas") ?? 0,
            ["selector"] = obj["spec"]?["selector"] is JsonObject s ? LabelSelector.FromJson(s).ToString() : "",
        },
    };

    async Task<JsonObject> WriteScaleAsync(Target t, JsonObject scale, bool dryRun, CancellationToken ct)
    {
        var replicas = scale.Long("spec.replicas");
        if (replicas is null or < 0)
            throw ApiException.Invalid("autoscaling", "Scale", t.Name!, [replicas is { } r ? FieldError.Invalid("spec.replicas", r, "must be greater than or equal to 0") : FieldError.Required("spec.replicas")]);
        var expected = ParseRv(scale.Str("metadata.resourceVersion"), "resourceVersion");
        var result = await WriteUpdateAsync(t with { Subresource = null }, expected, o => { o.Obj("spec")["replicas"] = replicas; return o; }, dryRun, ct);
        return ToScale(t.Type, result);
    }

    // ---- pods: binding, eviction ----

    async Task BindAsync(HttpContext ctx, Target t, JsonObject binding, bool dryRun, CancellationToken ct)
    {
        await BindPodAsync(t, binding, dryRun, ct);
        await WriteJsonAsync(ctx, 201, Success());
    }

    /// <summary>pods/binding: sets spec.nodeName of an unbound, undeleted pod (409 otherwise) and PodScheduled=True.</summary>
    internal async Task BindPodAsync(Target t, JsonObject binding, bool dryRun, CancellationToken ct)
    {
        var node = binding.Str("target.name");
        if (string.IsNullOrEmpty(node))
            throw ApiException.Invalid("", "Binding", t.Name!, [FieldError.Required("target.name")]);
        JsonObject Assign(JsonObject pod)
        {
            if (binding.Str("metadata.uid") is { Length: > 0 } uid && uid != pod.Str("metadata.uid"))
                throw ApiException.Conflict("", "pods", t.Name!, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {pod.Str("metadata.uid")}");
            if (pod.Str("metadata.deletionTimestamp") is not null)
                throw ApiException.Conflict("", "pods", t.Name!, "pod is being deleted, cannot be assigned to a host");
            if (pod.Str("spec.nodeName") is { Length: > 0 } existing)
                throw ApiException.Conflict("", "pods", t.Name!, $"pod {t.Name} is already assigned to node \"{existing}\"");
            pod.Obj("spec")["nodeName"] = node;
            if (binding["metadata"]?["annotations"] is JsonObject ann)
                foreach (var (k, v) in ann) pod.Meta().Obj("annotations")[k] = v?.DeepClone();
            SetPodScheduled(pod);
            return pod;
        }
        // Annotations from the binding go through the generic update (metadata validation).
        if (binding["metadata"]?["annotations"] is JsonObject { Count: > 0 })
        {
            await WriteUpdateAsync(t with { Subresource = "binding" }, 0, Assign, dryRun, ct);
            return;
        }
        // Otherwise, as kube's binding storage does, one conditional write of the stored pod with only
        // spec.nodeName and the PodScheduled condition changed: no copy, defaulting or re-validation
        // of a spec the binding does not touch.
        var key = t.Type.Key(t.Namespace, t.Name!);
        for (var attempt = 0; ; attempt++)
        {
            var e = await store.GetAsync(key, ct) ?? throw ApiException.NotFound("", "pods", t.Name!);
            // the usual pod (no conditions yet) is bound on its stored bytes; the same checks, the same result
            var bytes = StoredJson.BindPod(e.Value, node, Json.Now(), out var podUid, out var deleting, out _);
            if (bytes is not null)
            {
                if (binding.Str("metadata.uid") is { Length: > 0 } uid && uid != podUid)
                    throw ApiException.Conflict("", "pods", t.Name!, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {podUid}");
                if (deleting) throw ApiException.Conflict("", "pods", t.Name!, "pod is being deleted, cannot be assigned to a host");
            }
            else bytes = Encode(Assign(Decode(e)));
            if (dryRun) return;
            try
            {
                await store.UpdateAsync(key, bytes, e.ModRevision, ct);
                return;
            }
            catch (StoreConflictException) when (attempt < 10) { }
            catch (StoreConflictException) { throw ApiException.Conflict("", "pods", t.Name!, "the object has been modified; please apply your changes to the latest version and try again"); }
            catch (StoreKeyNotFoundException) { throw ApiException.NotFound("", "pods", t.Name!); }
        }
    }

    /// <summary>The binding's PodScheduled=True condition (the API server writes it with spec.nodeName, as kube's binding storage does).</summary>
    static void SetPodScheduled(JsonObject pod)
    {
        var status = pod.Obj("status");
        var conditions = status["conditions"] as JsonArray ?? (JsonArray)(status["conditions"] = new JsonArray())!;
        var now = Json.Now();
        foreach (var c in conditions.OfType<JsonObject>())
        {
            if (c.Str("type") != "PodScheduled") continue;
            if (c.Str("status") != "True") c["lastTransitionTime"] = now;
            c["status"] = "True";
            c.Remove("reason"); c.Remove("message"); c.Remove("lastProbeTime");
            return;
        }
        conditions.Add((JsonNode)new JsonObject { ["type"] = "PodScheduled", ["status"] = "True", ["lastProbeTime"] = null, ["lastTransitionTime"] = now });
    }

    /// <summary>
    /// POST pods/x/eviction, as the API server's eviction REST: a pod that is pending, finished or already
    /// deleting is deleted at once; otherwise the one PodDisruptionBudget selecting it must allow a
    /// disruption (429 TooManyRequests when it does not: `kubectl drain` retries), which is taken from its
    /// status (disruptionsAllowed - 1, the pod recorded in disruptedPods) before the pod is deleted.
    /// </summary>
    async Task EvictAsync(HttpContext ctx, Target t, JsonObject eviction, bool dryRun, CancellationToken ct)
    {
        var options = eviction["deleteOptions"] as JsonObject ?? new JsonObject();
        if (options["dryRun"] is JsonArray dr && dr.Any(x => x?.GetValue<string>() == "All")) dryRun = true;
        var podTarget = t with { Subresource = null };
        var entry = await store.GetAsync(t.Type.Key(t.Namespace, t.Name!), ct) ?? throw ApiException.NotFound(t.Type.Group, t.Type.Plural, t.Name!);
        var pod = Decode(entry);
        if (!CanIgnoreDisruptionBudget(pod))
        {
            var pdbType = registry.Find("policy", "v1", "poddisruptionbudgets")!;
            var budgets = new List<JsonObject>();
            foreach (var e in (await store.ListAsync(pdbType.Prefix(t.Namespace), ct: ct)).Items)
            {
                var b = Decode(e);
                if (b["spec"]?["selector"] is JsonObject sel && sel.Count > 0 && LabelSelector.FromJson(sel) is { Requirements.Count: > 0 } ls && ls.Matches(pod["metadata"]?["labels"] as JsonObject))
                    budgets.Add(b);
            }
            if (budgets.Count > 1)
                throw new ApiException(500, "", "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.");
            if (budgets.Count == 1)
            {
                var pdb = budgets[0];
                var name = pdb.Str("metadata.name")!;
                var (current, desired) = (pdb.Long("status.currentHealthy") ?? 0, pdb.Long("status.desiredHealthy") ?? 0);
                // an unready pod does not count as healthy: taking it costs the budget nothing
                if (!(!PodReady(pod) && current >= desired && desired > 0))
                    await WriteUpdateAsync(new Target(pdbType, t.Namespace, name, "status"), 0, b =>
                    {
                        if ((b.Long("status.observedGeneration") ?? 0) < (b.Long("metadata.generation") ?? 0))
                            throw TooManyEvictions($"The disruption budget {name} is still being processed by the server.", 10);
                        var allowed = b.Long("status.disruptionsAllowed") ?? 0;
                        if (allowed < 0) throw ApiException.Forbidden("policy", "poddisruptionbudget", name, "pdb disruptions allowed is negative");
                        if (allowed == 0)
                            throw TooManyEvictions($"The disruption budget {name} needs {b.Long("status.desiredHealthy") ?? 0} healthy pods and has {b.Long("status.currentHealthy") ?? 0} currently", 0);
                        var st = b.Obj("status");
                        st["disruptionsAllowed"] = allowed - 1;
                        if (allowed - 1 == 0) DisruptionAllowedCondition(st, false);
                        st.Obj("disruptedPods")[t.Name!] = Json.Now();
                        return b;
                    }, dryRun, ct);
            }
        }
        await DeleteOneAsync(podTarget, options, dryRun, ct);
        await WriteJsonAsync(ctx, 201, Success());
    }

    /// <summary>A pod that is pending, finished or already being deleted is evicted without asking its budget.</summary>
    static bool CanIgnoreDisruptionBudget(JsonObject pod) =>
        pod.Str("status.phase") is "Succeeded" or "Failed" or "Pending" || pod.Str("metadata.deletionTimestamp") is not null;

    static bool PodReady(JsonObject pod) => pod.Objects("status.conditions").Any(c => c.Str("type") == "Ready" && c.Str("status") == "True");

    /// <summary>The 429 of a refused eviction (its cause names the budget; kubectl drain retries).</summary>
    static ApiException TooManyEvictions(string cause, int retryAfterSeconds)
    {
        var details = new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["reason"] = "DisruptionBudget", ["message"] = cause }) };
        if (retryAfterSeconds > 0) details["retryAfterSeconds"] = retryAfterSeconds;
        return new ApiException(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.", details);
    }

    /// <summary>The PDB's DisruptionAllowed condition as the disruption controller and the eviction path set it.</summary>
    internal static void DisruptionAllowedCondition(JsonObject status, bool allowed)
    {
        var conditions = status["conditions"] as JsonArray ?? (JsonArray)(status["conditions"] = new JsonArray());
        var c = conditions.OfType<JsonObject>().FirstOrDefault(x => x.Str("type") == "DisruptionAllowed");
        var (st, reason) = allowed ? ("True", "SufficientPods") : ("False", "InsufficientPods");
        if (c is null) conditions.Add((JsonNode)(c = new JsonObject { ["type"] = "DisruptionAllowed" }));
        if (c.Str("status") != st) c["lastTransitionTime"] = Json.Now();
        c["status"] = st;
        c["reason"] = reason;
        c["message"] = "";
        c["observedGeneration"] = status.Long("observedGeneration") ?? 0;
    }

    static JsonObject Success() => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Success",
        ["code"] = 201,
    };

    // ---- delete ----

    async Task<JsonObject> DeleteOptionsAsync(HttpContext ctx, CancellationToken ct)
    {
        var options = new JsonObject();
        if (ctx.Request.ContentLength is > 0 || ctx.Request.Headers.TransferEncoding.Count > 0)
        {
            var (bytes, type) = await ReadBytesAsync(ctx, ct);
            if (type == Protobuf.MediaType) options = Protobuf.Decode(bytes);
            else if (bytes.Length > 0 && System.Text.Encoding.UTF8.GetString(bytes) is { } text && !string.IsNullOrWhiteSpace(text))
                options = (type.Contains("yaml", StringComparison.Ordinal) ? Yaml.ToJson(text) : ParseJson(text)) as JsonObject ?? options;
        }
        var q = ctx.Request.Query;
        if (q["gracePeriodSeconds"].ToString() is { Length: > 0 } g && long.TryParse(g, out var gv)) options["gracePeriodSeconds"] = gv;
        if (q["propagationPolicy"].ToString() is { Length: > 0 } p) options["propagationPolicy"] = p;
        if (q["orphanDependents"].ToString() is "true") options["propagationPolicy"] = "Orphan";
        return options;
    }

    async Task DeleteAsync(HttpContext ctx, Target t, bool dryRun, CancellationToken ct)
    {
        var options = await DeleteOptionsAsync(ctx, ct);
        if (options["dryRun"] is JsonArray dr && dr.Any(x => x?.GetValue<string>() == "All")) dryRun = true;
        var (obj, deleted) = await DeleteOneAsync(t, options, dryRun, ct);
        // Gone at once: a Success Status, as Kubernetes answers for kinds without ReturnDeletedObject
        // (the typed clients decode a V1Status here); pods and services answer with the object.
        if (deleted && t.Type.Kind is not ("Pod" or "Service") && Negotiate(ctx).Shape == Shape.Object)
        {
            var details = new JsonObject { ["name"] = t.Name, ["kind"] = t.Type.Plural, ["uid"] = obj.Str("metadata.uid") };
            if (t.Type.Group.Length > 0) details["group"] = t.Type.Group;
            await WriteJsonAsync(ctx, 200, new JsonObject
            {
                ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Success", ["details"] = details,
            });
            return;
        }
        await RespondObjectAsync(ctx, deleted ? 200 : 202, obj, t.Type);
    }

    /// <summary>
    /// Deletes one object as the API server does: preconditions; propagationPolicy Orphan/Foreground
    /// recorded as the "orphan"/"foregroundDeletion" finalizer for the garbage collector; objects with
    /// finalizers, and pods on a node with a grace period, only get deletionTimestamp (graceful).
    /// Returns the object and whether it is gone.
    /// </summary>
    internal async Task<(JsonObject Obj, bool Deleted)> DeleteOneAsync(Target t, JsonObject options, bool dryRun, CancellationToken ct)
    {
        var type = t.Type;
        var key = type.Key(t.Namespace, t.Name!);
        for (var attempt = 0; ; attempt++)
        {
            var e = await store.GetAsync(key, ct) ?? throw ApiException.NotFound(type.Group, type.Plural, t.Name!);
            var obj = Decode(e);
            if (options.Str("preconditions.uid") is { } uid && uid != obj.Str("metadata.uid"))
                throw ApiException.Conflict(type.Group, type.Plural, t.Name!, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {obj.Str("metadata.uid")}");
            if (options.Str("preconditions.resourceVersion") is { } prv && prv != e.ModRevision.ToString())
                throw ApiException.Conflict(type.Group, type.Plural, t.Name!, $"Precondition failed: ResourceVersion in precondition: {prv}, ResourceVersion in object meta: {e.ModRevision}");
            var meta = obj.Meta();
            var finalizers = obj.Arr("metadata.finalizers").Select(f => f?.GetValue<string>() ?? "").ToList();
            var policy = options.Str("propagationPolicy");
            var changed = false;
            if (policy is "Orphan" && !finalizers.Contains("orphan")) { finalizers.Add("orphan"); changed = true; }
            if (policy is "Foreground" && !finalizers.Contains("foregroundDeletion")) { finalizers.Add("foregroundDeletion"); changed = true; }
            long grace = 0;
            if (type.Kind == "Pod" && !string.IsNullOrEmpty(obj.Str("spec.nodeName")) && obj.Str("status.phase") is not ("Succeeded" or "Failed"))
                grace = options.Long("gracePeriodSeconds") ?? obj.Long("spec.terminationGracePeriodSeconds") ?? 30;
            if (type.Kind == "Namespace" && !finalizers.Contains("kubernetes") && obj.Arr("spec.finalizers").Count > 0 && meta["deletionTimestamp"] is null)
            {
                obj.Obj("status")["phase"] = "Terminating";
                changed = true;
            }
            var alreadyDeleting = meta["deletionTimestamp"] is not null;
            if (finalizers.Count == 0 && grace == 0 && !(type.Kind == "Namespace" && obj.Arr("spec.finalizers").Count > 0))
            {
                if (dryRun) return (obj, true);
                try
                {
                    var d = await store.DeleteAsync(key, e.ModRevision, ct);
                    NamespaceWritten(type, t.Name, d.ModRevision);
                    Admission.Written(type, t.Namespace, d.ModRevision);
                    meta["resourceVersion"] = d.ModRevision.ToString();
                    return (obj, true);
                }
                catch (StoreConflictException) when (attempt < 10) { continue; }
                catch (StoreKeyNotFoundException) { throw ApiException.NotFound(type.Group, type.Plural, t.Name!); }
            }
            if (alreadyDeleting && !changed)
            {
                // A shorter grace period may still shorten a pending graceful delete.
                var current = meta.Long("deletionGracePeriodSeconds") ?? 0;
                if (!(grace < current)) return (obj, false);
            }
            if (!alreadyDeleting || grace < (meta.Long("deletionGracePeriodSeconds") ?? 0))
            {
                meta["deletionTimestamp"] = Json.Time(DateTimeOffset.UtcNow.AddSeconds(grace));
                meta["deletionGracePeriodSeconds"] = grace;
            }
            meta["finalizers"] = new JsonArray(finalizers.Select(f => (JsonNode?)JsonValue.Create(f)).ToArray());
            if (finalizers.Count == 0) meta.Remove("finalizers");
            if (dryRun) return (obj, false);
            try
            {
                var w = await store.UpdateAsync(key, Encode(obj), e.ModRevision, ct);
                NamespaceWritten(type, t.Name, w.ModRevision);
                Admission.Written(type, t.Namespace, w.ModRevision);
                meta["resourceVersion"] = w.ModRevision.ToString();
                return (obj, false);
            }
            catch (StoreConflictException) when (attempt < 10) { }
            catch (StoreKeyNotFoundException) { throw ApiException.NotFound(type.Group, type.Plural, t.Name!); }
        }
    }

    async Task DeleteCollectionAsync(HttpContext ctx, Target t, bool dryRun, CancellationToken ct)
    {
        var options = await DeleteOptionsAsync(ctx, ct);
        var q = ctx.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"], t.Type);
        var page = await store.ListAsync(t.Type.Prefix(t.Namespace), ct: ct);
        var items = new JsonArray();
        foreach (var e in page.Items)
        {
            var o = Decode(e);
            if (!labels.Matches(o["metadata"]?["labels"] as JsonObject) || !fields.Matches(o)) continue;
            try
            {
                var (obj, _) = await DeleteOneAsync(new Target(t.Type, o.Str("metadata.namespace"), o.Str("metadata.name"), null), options, dryRun, ct);
                items.Add((JsonNode)Out(ctx, obj));
            }
            catch (ApiException ex) when (ex.Code == 404) { }
        }
        await WriteJsonAsync(ctx, 200, new JsonObject
        {
            ["kind"] = t.Type.ListKind,
            ["apiVersion"] = (Served(ctx) ?? t.Type).ApiVersion,
            ["metadata"] = new JsonObject { ["resourceVersion"] = store.CurrentRevision.ToString() },
            ["items"] = items,
        });
    }

    // ---- namespaces: finalize ----

    /// <summary>PUT namespaces/x/finalize: replaces spec.finalizers; a deleting namespace with none left is removed.</summary>
    internal async Task<JsonObject> FinalizeNamespaceAsync(Target t, JsonObject obj, CancellationToken ct) =>
        await WriteUpdateAsync(t with { Subresource = "finalize" }, 0, old =>
        {
            old.Obj("spec")["finalizers"] = obj["spec"]?["finalizers"]?.DeepClone() ?? new JsonArray();
            return old;
        }, false, ct);
}

public sealed partial class ApiHandler
{
    /// <summary>Creates an object unless it exists (bootstrap objects).</summary>
    public async Task CreateIfAbsentAsync(string group, string version, string plural, string? ns, JsonObject obj, CancellationToken ct)
    {
        var type = registry.Find(group, version, plural) ?? throw new ArgumentException($"unknown resource {plural}");
        try { await CreateAsync(new Target(type, ns, null, null), obj, false, ct); }
        catch (ApiException e) when (e.Code == 409) { }
    }
}
