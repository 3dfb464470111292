using k8s;
using k8s.Models;

namespace Berth.Cluster.Client;

public enum WatchEventType { Added, Modified, Deleted, Bookmark }

/// <summary>One change seen by a watch. <see cref="Object"/> is shared with other watchers: never mutate it.</summary>
public readonly record struct WatchEvent<T>(WatchEventType Type, T Object);

/// <summary>A consistent list: the items and the resourceVersion to start a watch from.</summary>
public sealed record ObjectList<T>(IReadOnlyList<T> Items, string ResourceVersion);

/// <summary>How dependents are treated when an owner is deleted (metav1.DeletionPropagation).</summary>
public enum PropagationPolicy { Background, Foreground, Orphan }

public sealed record DeleteOptions(PropagationPolicy? Propagation = null, string? Uid = null, string? ResourceVersion = null);

/// <summary>
/// The seam through which the scheduler and the controllers see the cluster state: typed
/// get/list/watch/create/update/updateStatus/delete and pods/binding, as the API server offers them.
/// Implementations: <see cref="InMemoryClusterClient"/> (tests, benchmarks) and
/// <see cref="LocalClusterClient"/> (inside `berth server`, through the API handler's verbs). Objects handed out by Watch and List are shared snapshots and must not be mutated
/// (clone with <see cref="Kinds.Clone{T}"/> to change one); objects handed out by Get belong to the caller.
/// </summary>
public interface IClusterClient
{
    ValueTask<T?> GetAsync<T>(string? ns, string name, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>;
    ValueTask<ObjectList<T>> ListAsync<T>(string? ns = null, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>;
    /// <summary>Events after <paramref name="resourceVersion"/>, in order. Throws ClusterException(Gone)
    /// when that version was compacted away (the caller relists).</summary>
    IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(string? ns, string resourceVersion, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>;
    ValueTask<T> CreateAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>;
    /// <summary><see cref="CreateAsync"/> for a caller that does not read the created object (an implementation may skip decoding it).</summary>
    async ValueTask CreateOnlyAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta> =>
        await CreateAsync(obj, ct).ConfigureAwait(false);
    /// <summary>
    /// Creates objects the caller built whole (a component's own Events), answering nothing. All are
    /// attempted; the first failure is thrown after that. An implementation may write them together.
    /// </summary>
    async ValueTask CreateManyOnlyAsync<T>(IReadOnlyList<T> objs, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ClusterException? first = null;
        foreach (var o in objs)
        {
            try { await CreateOnlyAsync(o, ct).ConfigureAwait(false); }
            catch (ClusterException e) { first ??= e; }
        }
        if (first is not null) throw first;
    }
    /// <summary>Replaces spec and metadata (status is kept); optimistic concurrency when metadata.resourceVersion is set.</summary>
    ValueTask<T> UpdateAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>;
    /// <summary>Replaces status only (the status subresource).</summary>
    ValueTask<T> UpdateStatusAsync<T>(T obj, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>;
    ValueTask DeleteAsync<T>(string? ns, string name, DeleteOptions? options = null, CancellationToken ct = default) where T : class, IKubernetesObject<V1ObjectMeta>;
    /// <summary>POST pods/{name}/binding: sets spec.nodeName of an unbound pod (Conflict if already bound).</summary>
    ValueTask BindAsync(V1Binding binding, CancellationToken ct = default);
    /// <summary>PUT namespaces/{name}/finalize: replaces spec.finalizers; a terminating namespace with none left is removed.</summary>
    ValueTask<V1Namespace> FinalizeNamespaceAsync(V1Namespace ns, CancellationToken ct = default);
}
