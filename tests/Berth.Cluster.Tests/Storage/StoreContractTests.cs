using System.Text;
using Berth.Cluster.Storage;
using Berth.Cluster.Storage.Etcd;
using Berth.Cluster.Storage.Sqlite;

namespace Berth.Cluster.Tests.Storage;

/// <summary>The contract every <see cref="IStore"/> keeps; one subclass per implementation.</summary>
public abstract class StoreContractTests : IAsyncLifetime
{
    protected IStore Store = null!;
    protected abstract Task<IStore> OpenAsync();
    protected abstract Task<IStore> ReopenAsync();

    public async Task InitializeAsync() => Store = await OpenAsync();
    public async Task DisposeAsync() => await Store.DisposeAsync();

    static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    static string S(byte[] b) => Encoding.UTF8.GetString(b);

    [Fact]
    public async Task Create_assigns_increasing_revisions_and_refuses_duplicates()
    {
        var a = await Store.CreateAsync("/r/a", B("1"));
        var b = await Store.CreateAsync("/r/b", B("2"));
        Assert.True(b.ModRevision > a.ModRevision);
        Assert.Equal(a.ModRevision, a.CreateRevision);
        Assert.Equal(b.ModRevision, Store.CurrentRevision);
        await Assert.ThrowsAsync<StoreKeyExistsException>(() => Store.CreateAsync("/r/a", B("x")));
        Assert.Equal("1", S((await Store.GetAsync("/r/a"))!.Value));
    }

    [Fact]
    public async Task Update_and_delete_check_the_expected_revision()
    {
        var a = await Store.CreateAsync("/r/a", B("1"));
        var u = await Store.UpdateAsync("/r/a", B("2"), a.ModRevision);
        Assert.Equal(a.CreateRevision, u.CreateRevision);
        Assert.True(u.ModRevision > a.ModRevision);
        var conflict = await Assert.ThrowsAsync<StoreConflictException>(() => Store.UpdateAsync("/r/a", B("3"), a.ModRevision));
        Assert.Equal(u.ModRevision, conflict.Actual);
        await Assert.ThrowsAsync<StoreConflictException>(() => Store.DeleteAsync("/r/a", a.ModRevision));
        await Assert.ThrowsAsync<StoreKeyNotFoundException>(() => Store.UpdateAsync("/r/none", B("3"), 0));
        var d = await Store.DeleteAsync("/r/a", u.ModRevision);
        Assert.Equal("2", S(d.Value));
        Assert.Null(await Store.GetAsync("/r/a"));
        await Assert.ThrowsAsync<StoreKeyNotFoundException>(() => Store.DeleteAsync("/r/a", 0));
        // re-created key starts a new life
        var again = await Store.CreateAsync("/r/a", B("4"));
        Assert.Equal(again.ModRevision, again.CreateRevision);
    }

    [Fact]
    public async Task List_filters_by_prefix_pages_and_reads_past_revisions()
    {
        foreach (var n in new[] { "c", "a", "b", "d" }) await Store.CreateAsync("/r/" + n, B(n));
        await Store.CreateAsync("/rx/a", B("other prefix"));
        var all = await Store.ListAsync("/r/");
        Assert.Equal(["/r/a", "/r/b", "/r/c", "/r/d"], all.Items.Select(i => i.Key));
        var p1 = await Store.ListAsync("/r/", limit: 3);
        Assert.True(p1.More);
        Assert.Equal(3, p1.Items.Count);
        var p2 = await Store.ListAsync("/r/", startAfter: p1.Items[^1].Key, limit: 3, revision: p1.Revision);
        Assert.False(p2.More);
        Assert.Equal(["/r/d"], p2.Items.Select(i => i.Key));

        var before = Store.CurrentRevision;
        await Store.UpdateAsync("/r/a", B("a2"), 0);
        await Store.DeleteAsync("/r/b", 0);
        var old = await Store.ListAsync("/r/", revision: before);
        Assert.Equal("a", S(old.Items.Single(i => i.Key == "/r/a").Value));
        Assert.Contains(old.Items, i => i.Key == "/r/b");
        var now = await Store.ListAsync("/r/");
        Assert.Equal("a2", S(now.Items.Single(i => i.Key == "/r/a").Value));
        Assert.DoesNotContain(now.Items, i => i.Key == "/r/b");
        await Assert.ThrowsAsync<StoreFutureRevisionException>(() => Store.ListAsync("/r/", revision: Store.CurrentRevision + 10));
    }

    [Fact]
    public async Task Watch_replays_history_then_streams_live_events_in_order()
    {
        var a = await Store.CreateAsync("/r/a", B("1"));
        await Store.UpdateAsync("/r/a", B("2"), 0);
        using var w = await Store.WatchAsync("/r/", a.ModRevision);
        await Store.CreateAsync("/other/x", B("not watched"));
        await Store.DeleteAsync("/r/a", 0);
        await Store.CreateAsync("/r/b", B("3"));
        var events = new List<StoreEvent>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (events.Count < 3) events.Add(await w.Events.ReadAsync(cts.Token));
        Assert.Equal([StoreEventType.Put, StoreEventType.Delete, StoreEventType.Put], events.Select(e => e.Type));
        Assert.Equal("1", S(events[0].Previous!.Value));
        Assert.Equal("2", S(events[0].Entry.Value));
        Assert.Equal("2", S(events[1].Entry.Value));
        Assert.Equal("/r/b", events[2].Entry.Key);
        Assert.Null(events[2].Previous);
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.Revision < p.Second.Revision));
    }

    [Fact]
    public async Task Watch_progress_covers_every_queued_event()
    {
        using var w = await Store.WatchAsync("/r/", Store.CurrentRevision);
        var a = await Store.CreateAsync("/r/a", B("1"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var e = await w.Events.ReadAsync(cts.Token);
        Assert.Equal(a.ModRevision, e.Revision);
        Assert.True(w.Progress >= a.ModRevision, $"progress {w.Progress} < {a.ModRevision}");
        Assert.False(w.Events.TryPeek(out _));
    }

    [Fact]
    public async Task Compaction_keeps_live_keys_and_refuses_older_watches_and_lists()
    {
        var a = await Store.CreateAsync("/r/a", B("1"));
        await Store.UpdateAsync("/r/a", B("2"), 0);
        await Store.CreateAsync("/r/b", B("x"));
        await Store.DeleteAsync("/r/b", 0);
        var rev = Store.CurrentRevision;
        await Store.CompactAsync(rev);
        Assert.Equal(rev, Store.CompactedRevision);
        Assert.Equal("2", S((await Store.GetAsync("/r/a"))!.Value));
        Assert.Single((await Store.ListAsync("/r/")).Items);
        var ex = await Assert.ThrowsAsync<StoreCompactedException>(() => Store.WatchAsync("/r/", a.ModRevision));
        Assert.Equal(rev, ex.Compacted);
        await Assert.ThrowsAsync<StoreCompactedException>(() => Store.ListAsync("/r/", revision: a.ModRevision));
        using var w = await Store.WatchAsync("/r/", rev);
        await Store.UpdateAsync("/r/a", B("3"), 0);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var e = await w.Events.ReadAsync(cts.Token);
        Assert.Equal("2", S(e.Previous!.Value));
    }

    [Fact]
    public async Task Acknowledged_writes_survive_reopening()
    {
        await Store.CreateAsync("/r/a", B("1"));
        var u = await Store.UpdateAsync("/r/a", B("2"), 0);
        await Store.CompactAsync(u.ModRevision - 1);
        Store = await ReopenAsync();
        var e = await Store.GetAsync("/r/a");
        Assert.Equal("2", S(e!.Value));
        Assert.Equal(u.ModRevision, Store.CurrentRevision);
        Assert.Equal(u.ModRevision - 1, Store.CompactedRevision);
        var next = await Store.CreateAsync("/r/b", B("3"));
        Assert.True(next.ModRevision > u.ModRevision);
    }

    [Fact]
    public async Task A_watcher_that_falls_behind_is_ended_not_buffered_forever()
    {
        using var w = await Store.WatchAsync("/r/", Store.CurrentRevision);
        await Store.CreateAsync("/r/k", B("0"));
        for (var i = 0; i < 4200; i++) await Store.UpdateAsync("/r/k", B(i.ToString()), 0);
        var read = 0;
        var ex = await Assert.ThrowsAnyAsync<StoreWatchLaggedException>(async () =>
        {
            await foreach (var _ in w.Events.ReadAllAsync()) read++;
        });
        Assert.InRange(read, 1, 4200);
    }
}

/// <summary>The same contract against a real etcd (one per test class; each test under its own key prefix).</summary>
public sealed class EtcdStoreTests(EtcdServer etcd) : StoreContractTests, IClassFixture<EtcdServer>
{
    readonly string root = "/t" + Guid.NewGuid().ToString("N")[..8];

    protected override async Task<IStore> OpenAsync() => await EtcdStore.OpenAsync(etcd.Endpoint, root, TimeSpan.FromMilliseconds(200));

    protected override async Task<IStore> ReopenAsync()
    {
        await Store.DisposeAsync();
        return await OpenAsync();
    }

    [Fact]
    public async Task Two_stores_on_one_etcd_see_each_others_writes_and_watches()
    {
        await using var other = await EtcdStore.OpenAsync(etcd.Endpoint, root);
        using var w = await other.WatchAsync("/r/", other.CurrentRevision);
        var a = await Store.CreateAsync("/r/a", Encoding.UTF8.GetBytes("1"));
        Assert.Equal("1", Encoding.UTF8.GetString((await other.GetAsync("/r/a"))!.Value));
        await Assert.ThrowsAsync<StoreConflictException>(() => other.UpdateAsync("/r/a", [], a.ModRevision - 1));
        var u = await other.UpdateAsync("/r/a", Encoding.UTF8.GetBytes("2"), a.ModRevision);
        Assert.Equal(u.ModRevision, (await Store.GetAsync("/r/a"))!.ModRevision);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal(a.ModRevision, (await w.Events.ReadAsync(cts.Token)).Revision);
        Assert.Equal(u.ModRevision, (await w.Events.ReadAsync(cts.Token)).Revision);
    }

    [Fact]
    public async Task Progress_moves_without_events_so_bookmarks_advance()
    {
        using var w = await Store.WatchAsync("/quiet/", Store.CurrentRevision);
        await using var other = await EtcdStore.OpenAsync(etcd.Endpoint, root);
        var x = await other.CreateAsync("/busy/x", [1]);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (w.Progress < x.ModRevision && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(w.Progress >= x.ModRevision, $"progress {w.Progress} never reached {x.ModRevision}");
        Assert.False(w.Events.TryPeek(out _));
    }

    [Fact]
    public async Task A_watch_from_history_another_server_compacted_ends_with_compacted()
    {
        var a = await Store.CreateAsync("/r/a", [1]);
        await Store.UpdateAsync("/r/a", [2], 0);
        await using var other = await EtcdStore.OpenAsync(etcd.Endpoint, root);
        var stale = Store.CompactedRevision;
        await other.CompactAsync(other.CurrentRevision);
        // Store has not seen that compaction: etcd refuses the start revision itself.
        Assert.Equal(stale, Store.CompactedRevision);
        // etcd accepts the watch and then ends it with the compaction revision
        var ex = await Assert.ThrowsAsync<StoreCompactedException>(async () =>
        {
            using var w = await Store.WatchAsync("/r/", a.ModRevision - 1);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await foreach (var _ in w.Events.ReadAllAsync(cts.Token)) { }
        });
        Assert.True(ex.Compacted >= a.ModRevision);
        Assert.True(Store.CompactedRevision >= other.CompactedRevision);
        await Assert.ThrowsAsync<StoreCompactedException>(() => Store.ListAsync("/r/", revision: a.ModRevision));
    }

    [Theory]
    [InlineData("https://127.0.0.1:2379")]
    [InlineData("etcd://")]
    [InlineData("etcd://127.0.0.1")]
    [InlineData("etcd://127.0.0.1:2379/path")]
    [InlineData("postgres://x:1")]
    public void Bad_endpoints_are_refused_naming_them(string endpoint)
    {
        var e = Assert.Throws<ArgumentException>(() => EtcdStore.ParseEndpoints(endpoint));
        Assert.Contains(endpoint, e.Message);
    }

    [Fact]
    public void Several_endpoints_and_http_are_accepted()
    {
        Assert.Equal(2, EtcdStore.ParseEndpoints("etcd://127.0.0.1:1,localhost:2").Count);
        Assert.Single(EtcdStore.ParseEndpoints("http://127.0.0.1:2379"));
    }

    [Fact]
    public async Task An_etcd_that_does_not_answer_is_unavailable_naming_it()
    {
        var port = Api.ApiFixture.FreePort();
        var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => EtcdStore.OpenAsync($"etcd://127.0.0.1:{port}"));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
    }
}

public sealed class SqliteStoreTests : StoreContractTests, IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("berth-store-").FullName;
    string DbPath => Path.Combine(dir, "state.db");

    protected override Task<IStore> OpenAsync() => Task.FromResult<IStore>(SqliteStore.Open(DbPath));

    protected override async Task<IStore> ReopenAsync()
    {
        await Store.DisposeAsync();
        return SqliteStore.Open(DbPath);
    }

    [Fact]
    public void Opening_a_file_that_is_not_a_database_names_it()
    {
        var bad = Path.Combine(dir, "bad.db");
        File.WriteAllText(bad, new string('x', 4096));
        var e = Assert.ThrowsAny<StoreException>(() => SqliteStore.Open(bad));
        Assert.Contains(bad, e.Message);
    }

    [Fact]
    public async Task Concurrent_writes_are_group_committed_each_with_its_own_revision_and_precondition()
    {
        // 400 creates and 200 conditional updates of one key, all issued at once from the thread pool: every
        // create gets its own revision, exactly one update per observed revision wins, a watch sees all of it in
        // revision order, and all of it is on disk after reopening.
        var seed = await Store.CreateAsync("/c/hot", Encoding.UTF8.GetBytes("0"));
        using var watch = await Store.WatchAsync("/c/", seed.ModRevision);
        var creates = Enumerable.Range(0, 400).Select(i => Task.Run(() => Store.CreateAsync($"/c/k{i:D3}", Encoding.UTF8.GetBytes(i.ToString())))).ToArray();
        var updates = Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
        {
            try { return (await Store.UpdateAsync("/c/hot", Encoding.UTF8.GetBytes("u" + i), seed.ModRevision)).ModRevision; }
            catch (StoreConflictException) { return 0L; }
        })).ToArray();
        var created = await Task.WhenAll(creates).WaitAsync(TimeSpan.FromSeconds(60)); // a write left waiting fails here
        var updated = await Task.WhenAll(updates).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(400, created.Select(e => e.ModRevision).Distinct().Count());
        Assert.Single(updated, r => r != 0);
        Assert.Equal(seed.ModRevision + 401, Store.CurrentRevision);
        var seen = new List<long>();
        while (seen.Count < 401 && await watch.Events.WaitToReadAsync())
            while (watch.Events.TryRead(out var e)) seen.Add(e.Revision);
        Assert.Equal(Enumerable.Range(1, 401).Select(i => seed.ModRevision + i), seen);
        Store = await ReopenAsync();
        Assert.Equal(400, (await Store.ListAsync("/c/k")).Items.Count);
        Assert.Equal(updated.Single(r => r != 0), (await Store.GetAsync("/c/hot"))!.ModRevision);
    }

    [Fact]
    public async Task A_write_after_dispose_fails_instead_of_waiting()
    {
        await Store.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Store.CreateAsync("/d/a", Encoding.UTF8.GetBytes("1")).WaitAsync(TimeSpan.FromSeconds(10)));
        Store = SqliteStore.Open(DbPath);
    }

    public void Dispose() => Directory.Delete(dir, true);
}
