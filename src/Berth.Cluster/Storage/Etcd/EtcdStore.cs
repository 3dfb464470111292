using System.Threading.Channels;
using Etcdserverpb;
using Mvccpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Berth.Cluster.Storage.Etcd;

/// <summary>
/// The store in a real etcd v3 cluster, through etcd's own gRPC API (the generated KV and Watch clients
/// of the dotnet-etcd package, called directly). etcd's revisions are the store's revisions, so
/// resourceVersions are etcd revisions and several `berth server`s on one etcd agree on them:
/// create = Txn(create_revision == 0 → put), update/delete = Txn(mod_revision == expected → put/delete,
/// else range to tell a conflict from a missing key), list = Range(prefix, limit, revision), watch =
/// Watch(prefix, start_revision, prev_kv, progress requests), compact = Compact.
/// etcd acknowledges a write only after a quorum has it in its WAL (fsynced), so an acknowledged write
/// survives a crash of this process.
/// <see cref="CurrentRevision"/> and <see cref="CompactedRevision"/> are the newest values this process
/// has seen (in every response header, and read at open); another server may be ahead.
/// </summary>
public sealed class EtcdStore : IStore
{
    readonly GrpcChannel channel;
    readonly KV.KVClient kv;
    readonly Watch.WatchClient watchClient;
    readonly string root;
    readonly TimeSpan progressInterval;
    readonly CancellationTokenSource closing = new();
    readonly Lock watchesGate = new();
    readonly HashSet<EtcdWatch> watches = [];
    long current, compacted;

    EtcdStore(GrpcChannel channel, string root, TimeSpan progressInterval)
    {
        this.channel = channel;
        this.root = root;
        this.progressInterval = progressInterval;
        kv = new KV.KVClient(channel);
        watchClient = new Watch.WatchClient(channel);
    }

    public string Endpoints { get; private init; } = "";
    public long CurrentRevision => Volatile.Read(ref current);
    public long CompactedRevision => Volatile.Read(ref compacted);

    /// <summary>
    /// Parses `etcd://HOST:PORT[,HOST:PORT…]` (or http://…) into client URLs; throws
    /// <see cref="ArgumentException"/> naming the endpoint for anything else.
    /// </summary>
    public static IReadOnlyList<Uri> ParseEndpoints(string endpoint)
    {
        var scheme = endpoint.StartsWith("etcd://", StringComparison.Ordinal) ? "etcd://"
            : endpoint.StartsWith("http://", StringComparison.Ordinal) ? "http://"
            : throw new ArgumentException($"--datastore-endpoint \"{endpoint}\" is not etcd://HOST:PORT[,HOST:PORT…] (https:// is not supported)");
        var list = new List<Uri>();
        foreach (var part in endpoint[scheme.Length..].Split(','))
        {
            var hp = part.StartsWith("http://", StringComparison.Ordinal) ? part[7..] : part;
            hp = hp.TrimEnd('/');
            if (!Uri.TryCreate("http://" + hp, UriKind.Absolute, out var u) || u.IsDefaultPort || u.AbsolutePath != "/" || hp.Length == 0)
                throw new ArgumentException($"--datastore-endpoint \"{endpoint}\": \"{part}\" is not HOST:PORT");
            list.Add(u);
        }
        return list;
    }

    /// <summary>
    /// Connects to etcd at <paramref name="endpoint"/> (see <see cref="ParseEndpoints"/>) and reads its
    /// current and compacted revisions. Keys are stored under <paramref name="keyPrefix"/> (empty: as
    /// given, e.g. /registry/…). Throws <see cref="StoreUnavailableException"/> when etcd does not answer.
    /// </summary>
    public static async Task<EtcdStore> OpenAsync(string endpoint, string keyPrefix = "", TimeSpan? progressInterval = null, CancellationToken ct = default)
    {
        var urls = ParseEndpoints(endpoint);
        GrpcChannel channel;
        if (urls.Count == 1)
            channel = GrpcChannel.ForAddress(urls[0], new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 });
        else
        {
            var services = new ServiceCollection();
            services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => urls.Select(u => new BalancerAddress(u.Host, u.Port)).ToArray()));
            channel = GrpcChannel.ForAddress("static:///etcd", new GrpcChannelOptions
            {
                Credentials = ChannelCredentials.Insecure,
                ServiceProvider = services.BuildServiceProvider(),
                MaxReceiveMessageSize = 64 << 20,
                ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } },
            });
        }
        var store = new EtcdStore(channel, keyPrefix, progressInterval ?? TimeSpan.FromSeconds(5)) { Endpoints = endpoint };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var r = await store.Call(() => store.kv.RangeAsync(new RangeRequest { Key = store.K("\0"), CountOnly = true }, cancellationToken: timeout.Token), "open", timeout.Token);
            store.Seen(r.Header);
            await store.RefreshCompactedAsync(timeout.Token);
            return store;
        }
        catch (Exception e) when (e is not StoreException || e is StoreUnavailableException)
        {
            await store.DisposeAsync();
            if (e is StoreUnavailableException) throw;
            if (e is OperationCanceledException && !ct.IsCancellationRequested)
                throw new StoreUnavailableException($"etcd at {endpoint} did not answer within 10 s");
            throw;
        }
    }

    ByteString K(string key) => ByteString.CopyFromUtf8(root + key);
    string Unroot(ByteString key) => key.ToStringUtf8()[root.Length..];

    // etcd compares keys as bytes; UTF-8 keeps code point order, so bumping the last char gives a key
    // after every key with the prefix.
    static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    /// <summary>The range end that covers every key starting with <paramref name="prefix"/> (etcd's "\0" = to the end).</summary>
    ByteString RangeEnd(string prefix)
    {
        var full = root + prefix;
        return full.Length == 0 ? ByteString.CopyFrom(0) : ByteString.CopyFromUtf8(PrefixEnd(full));
    }

    void Seen(ResponseHeader? h)
    {
        if (h is null) return;
        var r = h.Revision;
        long c;
        while (r > (c = Volatile.Read(ref current)) && Interlocked.CompareExchange(ref current, r, c) != c) { }
    }

    void SeenCompacted(long r)
    {
        long c;
        while (r > (c = Volatile.Read(ref compacted)) && Interlocked.CompareExchange(ref compacted, r, c) != c) { }
    }

    StoreEntry Entry(KeyValue k) => new(Unroot(k.Key), k.Value.ToByteArray(), k.CreateRevision, k.ModRevision);

    /// <summary>Runs one etcd call, translating etcd's errors into the store's.</summary>
    async Task<T> Call<T>(Func<AsyncUnaryCall<T>> call, string what, CancellationToken ct, long revision = 0)
    {
        ObjectDisposedException.ThrowIf(closing.IsCancellationRequested, this);
        try { return await call(); }
        catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange && e.Status.Detail.Contains("compacted", StringComparison.Ordinal))
        {
            await RefreshCompactedAsync(ct);
            throw new StoreCompactedException(revision, CompactedRevision);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange && e.Status.Detail.Contains("future revision", StringComparison.Ordinal))
        {
            throw new StoreFutureRevisionException(revision, CurrentRevision);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && ct.IsCancellationRequested)
        {
            throw new OperationCanceledException(ct);
        }
        catch (RpcException e)
        {
            throw new StoreUnavailableException($"etcd at {Endpoints}: {what}: {e.Status.StatusCode}: {e.Status.Detail}");
        }
    }

    /// <summary>
    /// Reads etcd's compaction revision: a range at revision 1 succeeds unless history was compacted,
    /// and then a watch from revision 1 is refused with the compaction revision.
    /// </summary>
    async Task RefreshCompactedAsync(CancellationToken ct)
    {
        try
        {
            await kv.RangeAsync(new RangeRequest { Key = K("\0"), CountOnly = true, Revision = 1 }, cancellationToken: ct);
            return;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange) { }
        using var call = watchClient.Watch(cancellationToken: ct);
        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = K("\0"), StartRevision = 1 } }, ct);
        while (await call.ResponseStream.MoveNext(ct))
        {
            var r = call.ResponseStream.Current;
            if (r.CompactRevision > 0) { SeenCompacted(r.CompactRevision); break; }
            if (r.Canceled) break;
        }
        await call.RequestStream.CompleteAsync();
    }

    public async Task<StoreEntry?> GetAsync(string key, CancellationToken ct = default)
    {
        var r = await Call(() => kv.RangeAsync(new RangeRequest { Key = K(key) }, cancellationToken: ct), $"get \"{key}\"", ct);
        Seen(r.Header);
        return r.Kvs.Count == 0 ? null : Entry(r.Kvs[0]);
    }

    public async Task<StoreList> ListAsync(string prefix, string? startAfter = null, int limit = 0, long revision = 0, CancellationToken ct = default)
    {
        if (revision != 0 && revision <= CompactedRevision) throw new StoreCompactedException(revision, CompactedRevision);
        var req = new RangeRequest
        {
            Key = K(startAfter is null ? prefix : startAfter + "\0"),
            RangeEnd = RangeEnd(prefix),
            Limit = limit,
            Revision = revision,
        };
        var r = await Call(() => kv.RangeAsync(req, cancellationToken: ct), $"list \"{prefix}\"", ct, revision);
        Seen(r.Header);
        var items = new List<StoreEntry>(r.Kvs.Count);
        foreach (var k in r.Kvs) items.Add(Entry(k));
        return new StoreList(items, revision == 0 ? r.Header.Revision : revision, r.More);
    }

    public async Task<StoreEntry> CreateAsync(string key, byte[] value, CancellationToken ct = default)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = K(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = K(key), Value = ByteString.CopyFrom(value) } });
        var r = await Call(() => kv.TxnAsync(txn, cancellationToken: ct), $"create \"{key}\"", ct);
        Seen(r.Header);
        if (!r.Succeeded) throw new StoreKeyExistsException(key);
        return new StoreEntry(key, value, r.Header.Revision, r.Header.Revision);
    }

    /// <summary>A Txn guarded by the key's mod_revision (or its existence for 0), else a range to tell why not.</summary>
    async Task<(TxnResponse R, KeyValue? Prev)> GuardedAsync(string key, long expectedRevision, RequestOp op, string what, CancellationToken ct)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(expectedRevision != 0
            ? new Compare { Key = K(key), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = expectedRevision }
            : new Compare { Key = K(key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Greater, CreateRevision = 0 });
        txn.Success.Add(op);
        txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = K(key) } });
        var r = await Call(() => kv.TxnAsync(txn, cancellationToken: ct), $"{what} \"{key}\"", ct);
        Seen(r.Header);
        if (!r.Succeeded)
        {
            var found = r.Responses[0].ResponseRange.Kvs;
            if (found.Count == 0) throw new StoreKeyNotFoundException(key);
            throw new StoreConflictException(key, expectedRevision, found[0].ModRevision);
        }
        return (r, op.RequestPut is not null ? r.Responses[0].ResponsePut.PrevKv : r.Responses[0].ResponseDeleteRange.PrevKvs.FirstOrDefault());
    }

    public async Task<StoreEntry> UpdateAsync(string key, byte[] value, long expectedRevision, CancellationToken ct = default)
    {
        var op = new RequestOp { RequestPut = new PutRequest { Key = K(key), Value = ByteString.CopyFrom(value), PrevKv = true } };
        var (r, prev) = await GuardedAsync(key, expectedRevision, op, "update", ct);
        return new StoreEntry(key, value, prev?.CreateRevision ?? r.Header.Revision, r.Header.Revision);
    }

    public async Task<StoreEntry> DeleteAsync(string key, long expectedRevision, CancellationToken ct = default)
    {
        var op = new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = K(key), PrevKv = true } };
        var (r, prev) = await GuardedAsync(key, expectedRevision, op, "delete", ct);
        if (prev is null) throw new StoreKeyNotFoundException(key); // deleted between compare and delete cannot happen in one txn
        return new StoreEntry(key, prev.Value.ToByteArray(), prev.CreateRevision, r.Header.Revision);
    }

    public async Task<IStoreWatch> WatchAsync(string prefix, long afterRevision, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(closing.IsCancellationRequested, this);
        if (afterRevision < CompactedRevision) throw new StoreCompactedException(afterRevision, CompactedRevision);
        var w = new EtcdWatch(this, prefix);
        lock (watchesGate) watches.Add(w);
        try
        {
            await w.StartAsync(afterRevision, ct);
        }
        catch
        {
            w.Dispose();
            throw;
        }
        return w;
    }

    public async Task CompactAsync(long revision, CancellationToken ct = default)
    {
        revision = Math.Min(revision, CurrentRevision);
        if (revision <= CompactedRevision) return;
        try
        {
            // physical: wait until the compaction is applied, so that every later read sees it.
            var r = await Call(() => kv.CompactAsync(new CompactionRequest { Revision = revision, Physical = true }, cancellationToken: ct), $"compact to {revision}", ct, revision);
            Seen(r.Header);
        }
        catch (StoreCompactedException) { } // another server compacted further already
        SeenCompacted(revision);
    }

    public async ValueTask DisposeAsync()
    {
        if (closing.IsCancellationRequested) return;
        closing.Cancel();
        EtcdWatch[] open;
        lock (watchesGate) open = [.. watches];
        foreach (var w in open) w.Dispose();
        foreach (var w in open) await w.Stopped;
        channel.Dispose();
        closing.Dispose();
    }

    /// <summary>
    /// One etcd watch stream: a pump reads etcd's responses into a bounded channel (ended with
    /// <see cref="StoreWatchLaggedException"/> when the reader falls <see cref="WatchHub.Capacity"/>
    /// events behind, with <see cref="StoreCompactedException"/> when etcd refuses the start revision
    /// because another server compacted past it). Progress requests every few seconds move
    /// <see cref="Progress"/> forward while no events for this prefix arrive, for bookmarks.
    /// </summary>
    sealed class EtcdWatch(EtcdStore store, string prefix) : IStoreWatch
    {
        readonly Channel<StoreEvent> channel = Channel.CreateBounded<StoreEvent>(
            new BoundedChannelOptions(WatchHub.Capacity) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        readonly CancellationTokenSource stop = CancellationTokenSource.CreateLinkedTokenSource(store.closing.Token);
        AsyncDuplexStreamingCall<WatchRequest, WatchResponse>? call;
        long progress, after;
        Task pump = Task.CompletedTask;

        public ChannelReader<StoreEvent> Events => channel.Reader;
        public long Progress => Volatile.Read(ref progress);
        public Task Stopped => pump;

        public async Task StartAsync(long afterRevision, CancellationToken ct)
        {
            after = afterRevision;
            progress = afterRevision;
            call = store.watchClient.Watch(cancellationToken: stop.Token);
            var create = new WatchCreateRequest
            {
                Key = store.K(prefix),
                RangeEnd = store.RangeEnd(prefix),
                StartRevision = afterRevision + 1,
                PrevKv = true,
                ProgressNotify = true,
            };
            try
            {
                await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create }, ct);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, stop.Token);
                if (!await call.ResponseStream.MoveNext(linked.Token))
                    throw new StoreUnavailableException($"etcd at {store.Endpoints} closed the watch on \"{prefix}\"");
                var first = call.ResponseStream.Current;
                store.Seen(first.Header);
                if (first.CompactRevision > 0)
                {
                    store.SeenCompacted(first.CompactRevision);
                    throw new StoreCompactedException(afterRevision, first.CompactRevision);
                }
                if (first.Canceled) throw new StoreUnavailableException($"etcd at {store.Endpoints} refused the watch on \"{prefix}\": {first.CancelReason}");
                if (!first.Created) Handle(first);
            }
            catch (RpcException e)
            {
                throw new StoreUnavailableException($"etcd at {store.Endpoints}: watch \"{prefix}\": {e.Status.StatusCode}: {e.Status.Detail}");
            }
            pump = Task.Run(PumpAsync);
        }

        async Task PumpAsync()
        {
            var ticker = Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(store.progressInterval);
                try
                {
                    while (await timer.WaitForNextTickAsync(stop.Token))
                        await call!.RequestStream.WriteAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() }, stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or RpcException or InvalidOperationException) { }
            });
            Exception? end = null;
            try
            {
                while (await call!.ResponseStream.MoveNext(stop.Token))
                {
                    var r = call.ResponseStream.Current;
                    store.Seen(r.Header);
                    if (r.CompactRevision > 0)
                    {
                        store.SeenCompacted(r.CompactRevision);
                        end = new StoreCompactedException(after, r.CompactRevision);
                        break;
                    }
                    if (r.Canceled) { end = new StoreUnavailableException($"etcd ended the watch on \"{prefix}\": {r.CancelReason}"); break; }
                    if (!Handle(r)) { end = new StoreWatchLaggedException(prefix); break; }
                }
            }
            catch (OperationCanceledException) { }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && stop.IsCancellationRequested) { }
            catch (RpcException e) { end = new StoreUnavailableException($"etcd at {store.Endpoints}: watch \"{prefix}\": {e.Status.StatusCode}: {e.Status.Detail}"); }
            channel.Writer.TryComplete(end);
            stop.Cancel();
            try { await ticker; } catch (OperationCanceledException) { }
        }

        /// <summary>Queues a response's events; false when the reader is too far behind.</summary>
        bool Handle(WatchResponse r)
        {
            foreach (var e in r.Events)
            {
                var k = e.Kv;
                var key = store.Unroot(k.Key);
                var prev = e.PrevKv is { } p ? store.Entry(p) : null;
                StoreEvent ev;
                if (e.Type == Event.Types.EventType.Delete)
                {
                    // etcd's delete event carries the key and the delete's revision; the value is in prev_kv.
                    var last = prev ?? new StoreEntry(key, [], 0, 0);
                    ev = new StoreEvent(StoreEventType.Delete, new StoreEntry(key, last.Value, last.CreateRevision, k.ModRevision), prev);
                }
                else
                    ev = new StoreEvent(StoreEventType.Put, store.Entry(k), k.CreateRevision == k.ModRevision ? null : prev);
                if (!channel.Writer.TryWrite(ev)) return false;
                after = ev.Revision;
                Volatile.Write(ref progress, ev.Revision);
            }
            // A response without events is a progress notification: everything up to its header's
            // revision has been sent. With events, the header may be newer than the last event.
            if (r.Events.Count == 0 && r.Header is { } h && h.Revision > Volatile.Read(ref progress))
                Volatile.Write(ref progress, h.Revision);
            return true;
        }

        public void Dispose()
        {
            lock (store.watchesGate) store.watches.Remove(this);
            try { stop.Cancel(); } catch (ObjectDisposedException) { }
            call?.Dispose();
            channel.Writer.TryComplete();
        }
    }
}
