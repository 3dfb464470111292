using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>A column of a kind's <c>as=Table</c> output (priority 1 = shown with -o wide).</summary>
public sealed record TableColumn(string Name, string Type, string Description, Func<JsonObject, DateTimeOffset, JsonNode?> Cell, int Priority = 0, string Format = "");

/// <summary>
/// Everything the generic handler needs to serve one kind: adding a kind is adding one of these
/// (see <see cref="BuiltinResources"/>).
/// </summary>
public sealed class ResourceType
{
    public required string Group { get; init; }
    public required string Version { get; init; }
    public required string Kind { get; init; }
    public required string Plural { get; init; }
    public string Singular => Kind.ToLowerInvariant();
    public string[] ShortNames { get; init; } = [];
    public string[] Categories { get; init; } = [];
    public bool Namespaced { get; init; } = true;
    /// <summary>Has a /status subresource: the main resource's writes keep the old status.</summary>
    public bool HasStatus { get; init; }
    /// <summary>Has a /scale subresource over spec.replicas (autoscaling/v1 Scale).</summary>
    public bool HasScale { get; init; }
    /// <summary>metadata.generation counts spec changes.</summary>
    public bool TracksGeneration { get; init; }
    /// <summary>Clears status on create (the controllers own it).</summary>
    public bool ResetStatusOnCreate { get; init; }
    /// <summary>Name rule; DNS-1123 subdomain unless the kind says otherwise.</summary>
    public Func<string, string?> NameRule { get; init; } = Validation.CheckDns1123Subdomain;
    /// <summary>Fills defaults of a new or updated object (after uid and metadata are set).</summary>
    public Action<JsonObject>? Default { get; init; }
    /// <summary>Fills what only a new object gets (runs before <see cref="Default"/> on create).</summary>
    public Action<JsonObject>? OnCreate { get; init; }
    /// <summary>Kind-specific validation; the new object and, on update, the old one.</summary>
    public Action<JsonObject, JsonObject?, List<FieldError>>? Validate { get; init; }
    public IReadOnlyList<TableColumn> Columns { get; init; } = [];
    /// <summary>The object's top-level fields besides apiVersion, kind and metadata (for fieldValidation=Strict).</summary>
    public string[] Fields { get; init; } = ["spec", "status"];
    /// <summary>Extra fields allowed in field selectors beyond metadata.name/namespace.</summary>
    public string[] FieldSelectors { get; init; } = [];

    // computed once (Group, Version, Kind and Plural are init-only): every request and store key uses them
    string? apiVersion, keyPrefix;
    public string ApiVersion => apiVersion ??= Group.Length == 0 ? Version : $"{Group}/{Version}";
    public string GroupVersion => ApiVersion;
    public string ListKind => Kind + "List";
    public string KeyPrefix => keyPrefix ??= "/registry/" + (Group.Length == 0 ? "" : Group + "/") + Plural + "/";

    public string Key(string? ns, string name) => Namespaced ? $"{KeyPrefix}{ns}/{name}" : KeyPrefix + name;
    public string Prefix(string? ns) => Namespaced && !string.IsNullOrEmpty(ns) ? $"{KeyPrefix}{ns}/" : KeyPrefix;

    public IEnumerable<string> Subresources
    {
        get
        {
            if (HasStatus) yield return "status";
            if (HasScale) yield return "scale";
            foreach (var s in ExtraSubresources) yield return s;
        }
    }

    /// <summary>Serves DELETE on the collection (namespaces do not: kube's namespace storage has no deletecollection).</summary>
    public bool CanDeleteCollection { get; init; } = true;

    /// <summary>The verbs discovery lists for the resource.</summary>
    public string[] Verbs => CreateOnly ? ["create"]
        : CanDeleteCollection ? ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        : ["create", "delete", "get", "list", "patch", "update", "watch"];

    /// <summary>A review (SelfSubjectAccessReview …): create only, answered at once, nothing stored.</summary>
    public bool CreateOnly { get; init; }

    /// <summary>Other subresources by name (binding, eviction, finalize).</summary>
    public string[] ExtraSubresources { get; init; } = [];

    /// <summary>
    /// Set on a served version that is not the kind's storage version: how its objects convert to and
    /// from the stored one (see <see cref="VersionConversion"/>). Null for the storage version and single-version kinds.
    /// </summary>
    public VersionConversion? Conversion { get; init; }
}

/// <summary>The kinds this server serves, by group/version/plural and by kind.</summary>
public sealed class ResourceRegistry
{
    readonly List<ResourceType> all = [];
    readonly Dictionary<(string, string, string), ResourceType> byPlural = [];

    public IReadOnlyList<ResourceType> All => all;

    public void Add(ResourceType t)
    {
        all.Add(t);
        byPlural[(t.Group, t.Version, t.Plural)] = t;
    }

    public ResourceType? Find(string group, string version, string plural) =>
        byPlural.GetValueOrDefault((group, version, plural));

    public IEnumerable<(string Group, string Version)> GroupVersions =>
        all.Select(t => (t.Group, t.Version)).Distinct();
}
