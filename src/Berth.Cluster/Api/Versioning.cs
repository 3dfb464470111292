using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Api;

/// <summary>
/// A kind served at several versions and stored once (kube-apiserver's storage version): each served
/// version that is not the storage version carries one of these. The handler works on the storage
/// version's <see cref="ResourceType"/> (defaulting, validation, table columns, store keys) and converts
/// at the edges: request bodies in (<see cref="ToStorage"/>), every object it answers out
/// (<see cref="FromStorage"/>) — get, list, watch, create, update, patch (applied to the object at the
/// requested version), apply and delete. Both functions get their own copy and may change it.
/// </summary>
public sealed class VersionConversion(ResourceType storage, Func<JsonObject, JsonObject> toStorage, Func<JsonObject, JsonObject> fromStorage)
{
    /// <summary>The kind at its storage version (registered too: it is the preferred version).</summary>
    public ResourceType Storage => storage;

    /// <summary>An object of the served version as the storage version (apiVersion included).</summary>
    public JsonObject ToStorage(JsonObject served) => toStorage((JsonObject)served.DeepClone());

    /// <summary>A stored object as the served version (apiVersion included).</summary>
    public JsonObject FromStorage(JsonObject stored) => fromStorage((JsonObject)stored.DeepClone());
}

/// <summary>The request-edge conversion hooks: a request at a non-storage version remembers its served type on the context.</summary>
public sealed partial class ApiHandler
{
    const string ServedKey = "berth.served-version";

    /// <summary>The served version of a request at a non-storage version, else null.</summary>
    static ResourceType? Served(HttpContext ctx) => ctx.Items.TryGetValue(ServedKey, out var v) ? v as ResourceType : null;

    /// <summary>The target at its kind's storage version; the requested version is kept for <see cref="In"/> and <see cref="Out"/>.</summary>
    static Target AtStorage(HttpContext ctx, Target t)
    {
        if (t.Type.Conversion is not { } c) return t;
        ctx.Items[ServedKey] = t.Type;
        return t with { Type = c.Storage };
    }

    /// <summary>A request body at the requested version, as the storage version (its apiVersion and kind are checked against the requested version first).</summary>
    JsonObject In(HttpContext ctx, JsonObject o)
    {
        if (Served(ctx) is not { } s) return o;
        CheckTypeMeta(s, o, s.Kind, s.ApiVersion);
        return s.Conversion!.ToStorage(o);
    }

    /// <summary>A stored object as the requested version.</summary>
    static JsonObject Out(HttpContext ctx, JsonObject o) => Served(ctx) is { } s ? s.Conversion!.FromStorage(o) : o;
}
