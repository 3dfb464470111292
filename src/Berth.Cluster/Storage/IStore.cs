using System.Threading.Channels;

namespace Berth.Cluster.Storage;

/// <summary>
/// One key's value at one revision. Revisions are the store's global, monotonically increasing
/// write counter (etcd's revision, kine's row id): <see cref="ModRevision"/> is the write that produced
/// this value, <see cref="CreateRevision"/> the write that created the key.
/// </summary>
public sealed record StoreEntry(string Key, byte[] Value, long CreateRevision, long ModRevision);

public enum StoreEventType { Put, Delete }

/// <summary>
/// A change: <see cref="Entry"/> is the new value (for a delete: the last value, with the delete's
/// revision as ModRevision); <see cref="Previous"/> the value it replaced, when there was one.
/// </summary>
public sealed record StoreEvent(StoreEventType Type, StoreEntry Entry, StoreEntry? Previous)
{
    public long Revision => Entry.ModRevision;
}

/// <summary>A page of a list at one revision; <see cref="More"/> says a later page exists.</summary>
public sealed record StoreList(IReadOnlyList<StoreEntry> Items, long Revision, bool More);

/// <summary>A running watch: events in revision order until disposed or ended by the store.</summary>
public interface IStoreWatch : IDisposable
{
    /// <summary>Completes with <see cref="StoreWatchLaggedException"/> when the reader fell too far behind.</summary>
    ChannelReader<StoreEvent> Events { get; }

    /// <summary>
    /// Every event with a revision up to this one has been queued on <see cref="Events"/> (it moves on
    /// without events too, as etcd's progress notifications do): a bookmark may carry it once the queue is empty.
    /// </summary>
    long Progress { get; }
}

/// <summary>
/// The cluster's key-value store with revisions, shaped after etcd's v3 API so that an etcd
/// implementation maps each call onto one etcd operation: create = txn(create_revision==0) put,
/// update/delete = txn(mod_revision==expected), list = range(prefix, revision), watch = watch(prefix,
/// start_revision), compact = compact. All writes are durable when their task completes.
/// </summary>
public interface IStore : IAsyncDisposable
{
    /// <summary>The revision of the last write (0 for an empty store).</summary>
    long CurrentRevision { get; }

    /// <summary>Revisions at or below this were compacted away: no list or watch may start before it.</summary>
    long CompactedRevision { get; }

    Task<StoreEntry?> GetAsync(string key, CancellationToken ct = default);

    /// <summary>
    /// Keys starting with <paramref name="prefix"/>, in key order, strictly after
    /// <paramref name="startAfter"/> when given, at most <paramref name="limit"/> (0 = all), as of
    /// <paramref name="revision"/> (0 = current). Throws <see cref="StoreCompactedException"/> for a
    /// compacted revision and <see cref="StoreFutureRevisionException"/> for one not reached yet.
    /// </summary>
    Task<StoreList> ListAsync(string prefix, string? startAfter = null, int limit = 0, long revision = 0, CancellationToken ct = default);

    /// <summary>Creates the key; throws <see cref="StoreKeyExistsException"/> if it exists.</summary>
    Task<StoreEntry> CreateAsync(string key, byte[] value, CancellationToken ct = default);

    /// <summary>
    /// Replaces the value if the key's current ModRevision equals <paramref name="expectedRevision"/>
    /// (0 = unconditionally); throws <see cref="StoreConflictException"/> or <see cref="StoreKeyNotFoundException"/>.
    /// </summary>
    Task<StoreEntry> UpdateAsync(string key, byte[] value, long expectedRevision, CancellationToken ct = default);

    /// <summary>Deletes the key (same precondition as update); returns the delete event's entry (last value, delete revision).</summary>
    Task<StoreEntry> DeleteAsync(string key, long expectedRevision, CancellationToken ct = default);

    /// <summary>
    /// Events for keys under <paramref name="prefix"/> with revision &gt; <paramref name="afterRevision"/>,
    /// history first and then live. Throws <see cref="StoreCompactedException"/> when that history is known
    /// to be gone; when that turns out only later (another server sharing the store compacted it), the
    /// watch's <see cref="IStoreWatch.Events"/> ends with that exception.
    /// </summary>
    Task<IStoreWatch> WatchAsync(string prefix, long afterRevision, CancellationToken ct = default);

    /// <summary>Forgets history at or below <paramref name="revision"/> (the latest value of each live key stays).</summary>
    Task CompactAsync(long revision, CancellationToken ct = default);
}

public class StoreException(string message) : Exception(message);

public sealed class StoreKeyExistsException(string key) : StoreException($"key \"{key}\" already exists")
{
    public string Key { get; } = key;
}

public sealed class StoreKeyNotFoundException(string key) : StoreException($"key \"{key}\" not found")
{
    public string Key { get; } = key;
}

public sealed class StoreConflictException(string key, long expected, long actual)
    : StoreException($"key \"{key}\" is at revision {actual}, not the expected {expected}")
{
    public string Key { get; } = key;
    public long Actual { get; } = actual;
}

public sealed class StoreCompactedException(long requested, long compacted)
    : StoreException($"revision {requested} has been compacted (oldest available is {compacted + 1})")
{
    public long Requested { get; } = requested;
    public long Compacted { get; } = compacted;
}

public sealed class StoreFutureRevisionException(long requested, long current)
    : StoreException($"revision {requested} is newer than the store's current revision {current}");

public sealed class StoreWatchLaggedException(string prefix)
    : StoreException($"watch on \"{prefix}\" fell too far behind and was closed");

/// <summary>The store's backend (etcd) cannot be reached or failed the call.</summary>
public sealed class StoreUnavailableException(string message) : StoreException(message);
