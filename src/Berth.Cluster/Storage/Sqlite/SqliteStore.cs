using Berth.Cluster.Storage;

namespace Berth.Cluster.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode holding a revision log, as k3s's kine does. Every
/// write appends a row (its AUTOINCREMENT id is the revision, never reused); a key's value at
/// revision R is its newest row with id ≤ R, and a delete is a row marked deleted that keeps the last
/// value (so watches can send it). Watch = replay of rows after the start revision, then live events;
/// compaction deletes rows that are superseded at the compaction revision.
/// Durability: journal_mode=WAL with synchronous=FULL fsyncs the WAL on every commit, so a write is
/// on disk before its task completes (NORMAL would only guarantee consistency, not the last commits,
/// after a power loss; a kill -9 alone loses nothing either way).
/// Two connections: the writer (writes, watch starts, compaction), serialised by one async lock
/// (SQLite has one writer anyway), and a reader for gets and lists with its own lock, so that reads
/// do not wait for a batch's fsync (WAL readers see the last commit; every acknowledged write is
/// committed before its task completes, so a read that follows it sees it).
/// </summary>
public sealed class SqliteStore : IStore
{
    readonly SqliteDb db;
    readonly SqliteDb reader;
    readonly SemaphoreSlim gate = new(1, 1);
    readonly SemaphoreSlim readGate = new(1, 1);
    readonly WatchHub hub;
    long current, compacted;
    bool disposed;

    SqliteStore(SqliteDb db, SqliteDb reader)
    {
        this.db = db;
        this.reader = reader;
        hub = new WatchHub(() => CurrentRevision);
    }

    public string Path => db.Path;
    public long CurrentRevision => Volatile.Read(ref current);
    public long CompactedRevision => Volatile.Read(ref compacted);
    public int WatchCount => hub.Count;

    /// <summary>Opens (creating when absent) the store file at <paramref name="path"/>.</summary>
    public static SqliteStore Open(string path)
    {
        var db = new SqliteDb(path);
        try
        {
            db.Exec("PRAGMA journal_mode=WAL");
            db.Exec("PRAGMA synchronous=FULL");
            db.Exec("""
                CREATE TABLE IF NOT EXISTS kv (
                  id INTEGER PRIMARY KEY AUTOINCREMENT,
                  name TEXT NOT NULL,
                  created INTEGER NOT NULL,
                  deleted INTEGER NOT NULL,
                  create_revision INTEGER NOT NULL,
                  prev_revision INTEGER NOT NULL,
                  value BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS kv_name_id ON kv(name, id);
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                """);
            var store = new SqliteStore(db, new SqliteDb(path));
            var s = db.Prepare("SELECT seq FROM sqlite_sequence WHERE name = 'kv'");
            store.current = s.Step() ? s.Int64(0) : 0;
            s.Reset();
            var c = db.Prepare("SELECT value FROM meta WHERE key = 'compact_rev'");
            store.compacted = c.Step() ? c.Int64(0) : 0;
            c.Reset();
            return store;
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    static string PrefixEnd(string prefix) =>
        prefix.Length == 0 ? "\U0010FFFF" : prefix[..^1] + (char)(prefix[^1] + 1);

    // id, created, deleted, create_revision, value of a key's newest row
    (long Id, bool Deleted, long CreateRev, byte[] Value)? Latest(string key) => Latest(db, key);

    static (long Id, bool Deleted, long CreateRev, byte[] Value)? Latest(SqliteDb db, string key)
    {
        var s = db.Prepare("SELECT id, created, deleted, create_revision, value FROM kv WHERE name = ?1 ORDER BY id DESC LIMIT 1");
        s.Bind(1, key);
        try
        {
            if (!s.Step()) return null;
            var id = s.Int64(0);
            return (id, s.Int64(2) != 0, s.Int64(1) != 0 ? id : s.Int64(3), s.Blob(4));
        }
        finally { s.Reset(); }
    }

    public async Task<StoreEntry?> GetAsync(string key, CancellationToken ct = default)
    {
        await readGate.WaitAsync(ct);
        try
        {
            ThrowIfDisposed();
            var l = Latest(reader, key);
            return l is { Deleted: false } v ? new StoreEntry(key, v.Value, v.CreateRev, v.Id) : null;
        }
        finally { readGate.Release(); }
    }

    public async Task<StoreList> ListAsync(string prefix, string? startAfter = null, int limit = 0, long revision = 0, CancellationToken ct = default)
    {
        await readGate.WaitAsync(ct);
        try
        {
            ThrowIfDisposed();
            // current is set after its commit: the reader's snapshot (taken at the first step) holds every row up to it
            var now = CurrentRevision;
            var rev = revision == 0 ? now : revision;
            if (revision != 0 && revision <= CompactedRevision) throw new StoreCompactedException(revision, CompactedRevision);
            if (rev > now) throw new StoreFutureRevisionException(rev, now);
            var s = reader.Prepare("""
                SELECT kv.id, kv.name, kv.created, kv.create_revision, kv.value FROM kv
                JOIN (SELECT MAX(id) AS mid FROM kv WHERE name >= ?1 AND name < ?2 AND name > ?3 AND id <= ?4 GROUP BY name) m
                  ON kv.id = m.mid
                WHERE kv.deleted = 0 ORDER BY kv.name LIMIT ?5
                """);
            s.Bind(1, prefix).Bind(2, PrefixEnd(prefix)).Bind(3, startAfter ?? "").Bind(4, rev).Bind(5, limit > 0 ? limit + 1 : -1);
            var items = new List<StoreEntry>();
            var more = false;
            try
            {
                while (s.Step())
                {
                    if (limit > 0 && items.Count == limit) { more = true; break; }
                    var id = s.Int64(0);
                    items.Add(new StoreEntry(s.Text(1), s.Blob(4), s.Int64(2) != 0 ? id : s.Int64(3), id));
                }
            }
            finally { s.Reset(); }
            // a compaction that ran meanwhile (it raises the mark before deleting) may have taken rows of this revision
            if (revision != 0 && revision <= CompactedRevision) throw new StoreCompactedException(revision, CompactedRevision);
            return new StoreList(items, rev, more);
        }
        finally { readGate.Release(); }
    }

    public Task<StoreEntry> CreateAsync(string key, byte[] value, CancellationToken ct = default) =>
        WriteAsync(key, ct, latest =>
        {
            if (latest is { Deleted: false }) throw new StoreKeyExistsException(key);
            var id = Append(key, created: true, deleted: false, 0, latest?.Id ?? 0, value);
            return new StoreEvent(StoreEventType.Put, new StoreEntry(key, value, id, id), null);
        });

    public Task<StoreEntry> UpdateAsync(string key, byte[] value, long expectedRevision, CancellationToken ct = default) =>
        WriteAsync(key, ct, latest =>
        {
            if (latest is not { Deleted: false } l) throw new StoreKeyNotFoundException(key);
            if (expectedRevision != 0 && l.Id != expectedRevision) throw new StoreConflictException(key, expectedRevision, l.Id);
            var id = Append(key, created: false, deleted: false, l.CreateRev, l.Id, value);
            return new StoreEvent(StoreEventType.Put, new StoreEntry(key, value, l.CreateRev, id), new StoreEntry(key, l.Value, l.CreateRev, l.Id));
        });

    public Task<StoreEntry> DeleteAsync(string key, long expectedRevision, CancellationToken ct = default) =>
        WriteAsync(key, ct, latest =>
        {
            if (latest is not { Deleted: false } l) throw new StoreKeyNotFoundException(key);
            if (expectedRevision != 0 && l.Id != expectedRevision) throw new StoreConflictException(key, expectedRevision, l.Id);
            var id = Append(key, created: false, deleted: true, l.CreateRev, l.Id, l.Value);
            return new StoreEvent(StoreEventType.Delete, new StoreEntry(key, l.Value, l.CreateRev, id), new StoreEntry(key, l.Value, l.CreateRev, l.Id));
        });

    long Append(string key, bool created, bool deleted, long createRev, long prevRev, byte[] value)
    {
        var s = db.Prepare("INSERT INTO kv (name, created, deleted, create_revision, prev_revision, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id");
        s.Bind(1, key).Bind(2, created ? 1 : 0).Bind(3, deleted ? 1 : 0).Bind(4, createRev).Bind(5, prevRev).Bind(6, value);
        try
        {
            if (!s.Step()) throw new StoreException($"insert of key \"{key}\" returned no revision");
            return s.Int64(0);
        }
        finally { s.Reset(); }
    }

    sealed record PendingWrite(string Key, Func<(long Id, bool Deleted, long CreateRev, byte[] Value)?, StoreEvent> Write)
    {
        public readonly TaskCompletionSource<StoreEntry> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    readonly Lock pendingGate = new();
    List<PendingWrite> pending = [];
    bool committing; // a commit round runs or is queued: it takes every pending write

    /// <summary>
    /// Group commit: writes that arrive while a batch is committing are queued and committed together
    /// in the next transaction (one fsync), each still getting its own revision and its own
    /// precondition check against the state its predecessors in the batch left. Completion (and the
    /// watch events) follow the commit, so nothing is acknowledged before it is durable.
    /// The writer that finds no round running commits one itself (a lone write is committed on its own
    /// thread, no hand-off); the others only wait for their write's completion, which the round sets
    /// (one hand-off each, none through the writer's lock). When more writes queued meanwhile, the round
    /// goes on as one thread-pool work item per batch, so the leader's own request is not held.
    /// </summary>
    async Task<StoreEntry> WriteAsync(string key, CancellationToken ct, Func<(long Id, bool Deleted, long CreateRev, byte[] Value)?, StoreEvent> write)
    {
        ct.ThrowIfCancellationRequested();
        var w = new PendingWrite(key, write);
        bool lead;
        lock (pendingGate)
        {
            pending.Add(w);
            lead = !committing;
            committing = true;
        }
        // once queued the write is committed even if the caller stops waiting (as before: a cancelled wait
        // could not take it back out of the batch either)
        if (lead) await CommitRoundAsync();
        return await w.Done.Task;
    }

    async Task CommitRoundAsync()
    {
        List<PendingWrite> batch = [];
        try
        {
            await gate.WaitAsync();
            try
            {
                lock (pendingGate) { batch = pending; pending = []; }
                if (disposed)
                    foreach (var w in batch) w.Done.TrySetException(new ObjectDisposedException(nameof(SqliteStore)));
                else if (batch.Count > 0) CommitBatch(batch);
            }
            finally { gate.Release(); }
        }
        catch (Exception e)
        {
            // nothing may be left waiting: a write whose batch failed outside its transaction fails with it
            foreach (var w in batch) w.Done.TrySetException(e);
        }
        lock (pendingGate)
        {
            if (pending.Count == 0) { committing = false; return; }
        }
        ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.CommitRoundAsync(), this, preferLocal: false);
    }

    void CommitBatch(List<PendingWrite> batch)
    {
        var results = new List<(PendingWrite W, StoreEvent? E, Exception? X)>(batch.Count);
        db.Exec("BEGIN IMMEDIATE");
        try
        {
            foreach (var w in batch)
            {
                try { results.Add((w, w.Write(Latest(w.Key)), null)); }
                catch (StoreException e) when (e is not SqliteException) { results.Add((w, null, e)); }
            }
            db.Exec("COMMIT");
        }
        catch (Exception e)
        {
            try { db.Exec("ROLLBACK"); } catch (SqliteException) { }
            foreach (var w in batch) w.Done.TrySetException(e);
            return;
        }
        foreach (var (w, e, x) in results)
        {
            if (e is not null)
            {
                hub.Publish(e);
                Volatile.Write(ref current, e.Revision); // after the publish: a watch's Progress never runs ahead of its queue
                w.Done.TrySetResult(e.Entry);
            }
            else w.Done.TrySetException(x!);
        }
    }

    public async Task<IStoreWatch> WatchAsync(string prefix, long afterRevision, CancellationToken ct = default)
    {
        await gate.WaitAsync(ct);
        try
        {
            ThrowIfDisposed();
            if (afterRevision < compacted) throw new StoreCompactedException(afterRevision, compacted);
            var history = new List<StoreEvent>();
            if (afterRevision < current)
            {
                var s = db.Prepare("""
                    SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.value, p.id, p.created, p.create_revision, p.value, p.deleted
                    FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision
                    WHERE k.id > ?1 AND k.name >= ?2 AND k.name < ?3 ORDER BY k.id
                    """);
                s.Bind(1, afterRevision).Bind(2, prefix).Bind(3, PrefixEnd(prefix));
                try
                {
                    while (s.Step())
                    {
                        var id = s.Int64(0);
                        var key = s.Text(1);
                        var createRev = s.Int64(2) != 0 ? id : s.Int64(4);
                        var entry = new StoreEntry(key, s.Blob(5), createRev, id);
                        StoreEntry? prev = null;
                        if (!s.IsNull(6) && s.Int64(10) == 0)
                        {
                            var pid = s.Int64(6);
                            prev = new StoreEntry(key, s.Blob(9), s.Int64(7) != 0 ? pid : s.Int64(8), pid);
                        }
                        history.Add(new StoreEvent(s.Int64(3) != 0 ? StoreEventType.Delete : StoreEventType.Put, entry, prev));
                    }
                }
                finally { s.Reset(); }
            }
            return hub.Add(prefix, history);
        }
        finally { gate.Release(); }
    }

    public async Task CompactAsync(long revision, CancellationToken ct = default)
    {
        await gate.WaitAsync(ct);
        try
        {
            ThrowIfDisposed();
            revision = Math.Min(revision, current);
            if (revision <= compacted) return;
            var before = compacted;
            Volatile.Write(ref compacted, revision); // before the delete: see ListAsync
            db.Exec("BEGIN IMMEDIATE");
            try
            {
                var s = db.Prepare("""
                    DELETE FROM kv WHERE id <= ?1 AND (deleted = 1 OR
                      id < (SELECT MAX(k2.id) FROM kv k2 WHERE k2.name = kv.name AND k2.id <= ?1))
                    """);
                s.Bind(1, revision).Run();
                var m = db.Prepare("INSERT INTO meta (key, value) VALUES ('compact_rev', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
                m.Bind(1, revision).Run();
                db.Exec("COMMIT");
            }
            catch
            {
                Volatile.Write(ref compacted, before);
                db.Exec("ROLLBACK");
                throw;
            }
        }
        finally { gate.Release(); }
    }

    void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    public async ValueTask DisposeAsync()
    {
        await gate.WaitAsync();
        try
        {
            if (disposed) return;
            disposed = true;
            hub.CloseAll();
            db.Dispose();
            await readGate.WaitAsync();
            reader.Dispose();
            readGate.Release();
        }
        finally { gate.Release(); }
    }
}
