using System.Text;
using Berth.Cluster.Api;
using Berth.Cluster.Client;
using Berth.Cluster.Storage.Sqlite;
using Berth.Cluster.Tests.Client;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Api;

/// <summary>The NamespaceLifecycle check's lister: known-active namespaces from a store watch, everything else from the store.</summary>
public sealed class NamespaceListerTests
{
    static byte[] Ns(string name, bool terminating = false) => Encoding.UTF8.GetBytes(
        $"{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{name}\"{(terminating ? ",\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"" : "")}}}}}");

    static async Task Eventually(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition());
    }

    [Fact]
    public async Task Follows_the_store_and_forgets_what_this_server_wrote_until_the_watch_delivers_it()
    {
        var dir = Directory.CreateTempSubdirectory("berth-nslister-").FullName;
        try
        {
            await using var store = SqliteStore.Open(Path.Combine(dir, "state.db"));
            var a = await store.CreateAsync("/registry/namespaces/a", Ns("a"));
            using var lister = new NamespaceLister(store, "/registry/namespaces/");
            Assert.False(lister.IsKnownActive("a")); // starts its list and watch; not known yet
            await Eventually(() => lister.IsKnownActive("a"));
            Assert.False(lister.IsKnownActive("b"));
            await store.CreateAsync("/registry/namespaces/b", Ns("b"));
            await Eventually(() => lister.IsKnownActive("b"));
            // a write by this server: unknown (the store decides) until the watch has delivered it
            lister.Written("a", store.CurrentRevision + 2);
            Assert.False(lister.IsKnownActive("a"));
            var t = await store.UpdateAsync("/registry/namespaces/a", Ns("a"), a.ModRevision); // still active, but older than the mark
            await Task.Delay(200);
            Assert.False(lister.IsKnownActive("a"));
            await store.UpdateAsync("/registry/namespaces/a", Ns("a"), t.ModRevision); // the marked write
            await Eventually(() => lister.IsKnownActive("a"));
            lister.Written("b", 0); // an older mark changes nothing
            Assert.True(lister.IsKnownActive("b"));
            var b = await store.GetAsync("/registry/namespaces/b");
            await store.UpdateAsync("/registry/namespaces/b", Ns("b", terminating: true), b!.ModRevision);
            await Eventually(() => !lister.IsKnownActive("b")); // terminating
            var b2 = await store.GetAsync("/registry/namespaces/b");
            await store.DeleteAsync("/registry/namespaces/b", b2!.ModRevision);
            await store.CreateAsync("/registry/namespaces/c", Ns("c"));
            await Eventually(() => lister.IsKnownActive("c"));
            Assert.False(lister.IsKnownActive("b"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task A_namespace_deleted_through_the_api_refuses_the_next_create_at_once()
    {
        await using var c = await LocalCluster.StartAsync("shop");
        await c.Client.CreateAsync(Pod("a", ns: "shop"));
        await Eventually(() => c.Api.Namespaces.IsKnownActive("shop"));
        await c.Client.CreateAsync(Pod("b", ns: "shop")); // admitted from the lister
        await c.Client.DeleteAsync<V1Namespace>(null, "shop");
        Assert.False(c.Api.Namespaces.IsKnownActive("shop")); // marked by the delete itself, not by the watch
        var ex = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateAsync(Pod("c", ns: "shop")).AsTask());
        Assert.Equal(ClusterErrorKind.Forbidden, ex.Kind);
        Assert.Contains("because it is being terminated", ex.Message);
        var missing = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateAsync(Pod("d", ns: "nowhere")).AsTask());
        Assert.Equal(ClusterErrorKind.NotFound, missing.Kind);
    }
}
