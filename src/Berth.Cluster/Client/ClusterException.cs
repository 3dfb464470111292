namespace Berth.Cluster.Client;

/// <summary>Why a cluster call failed, in the API server's terms (mapped to HTTP codes at the edge).</summary>
public enum ClusterErrorKind
{
    NotFound, AlreadyExists, Conflict, Gone, Invalid,
    /// <summary>Refused by policy, e.g. creating in a namespace that is being terminated (403).</summary>
    Forbidden,
    /// <summary>Anything else the server answered (bad request, internal error).</summary>
    Other,
}

/// <summary>A failed cluster call; the message names the object (kind, namespace, name).</summary>
public sealed class ClusterException(ClusterErrorKind kind, string message) : Exception(message)
{
    public ClusterErrorKind Kind { get; } = kind;

    internal static ClusterException NotFound(ResourceKind k, string? ns, string name) =>
        new(ClusterErrorKind.NotFound, $"{k.Plural}{k.GroupSuffix} \"{name}\" not found{InNamespace(ns)}");
    internal static ClusterException AlreadyExists(ResourceKind k, string? ns, string name) =>
        new(ClusterErrorKind.AlreadyExists, $"{k.Plural}{k.GroupSuffix} \"{name}\" already exists{InNamespace(ns)}");
    internal static ClusterException Conflict(ResourceKind k, string? ns, string name) =>
        new(ClusterErrorKind.Conflict, $"Operation cannot be fulfilled on {k.Plural}{k.GroupSuffix} \"{name}\"{InNamespace(ns)}: the object has been modified; please apply your changes to the latest version and try again");
    internal static ClusterException Invalid(ResourceKind k, string? name, string why) =>
        new(ClusterErrorKind.Invalid, $"{k.Kind} \"{name}\" is invalid: {why}");

    static string InNamespace(string? ns) => string.IsNullOrEmpty(ns) ? "" : $" in namespace \"{ns}\"";
}
