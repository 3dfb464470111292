using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class GarbageCollectorTests
{
    static async Task<Harness> Start()
    {
        var h = new Harness();
        h.Add(new ReplicaSetController(h.Factory));
        h.Add(new DeploymentController(h.Factory));
        h.Add(new GarbageCollector(h.Factory));
        await h.StartAsync();
        return h;
    }

    static V1Deployment Deploy(string name, int replicas) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1DeploymentSpec { Replicas = replicas, Selector = Harness.Selector(name), Template = Harness.Template(name) },
    };

    [Fact]
    public async Task Background_deletion_cascades_to_replicasets_and_pods()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(Deploy("web", 2));
        await Eventually(() => h.PodsAsync(), l => l.Count == 2, what: "pods");
        await h.Client.DeleteAsync<V1Deployment>("default", "web");
        await Eventually(async () => (await h.Client.ListAsync<V1ReplicaSet>()).Items.ToList(), l => l.Count == 0, what: "replicasets collected");
        await Eventually(() => h.PodsAsync(), l => l.Count == 0, what: "pods collected");
    }

    [Fact]
    public async Task Foreground_deletion_keeps_the_owner_until_dependents_are_gone()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(Deploy("web", 2));
        await Eventually(() => h.PodsAsync(), l => l.Count == 2, what: "pods");
        await h.Client.DeleteAsync<V1Deployment>("default", "web", new DeleteOptions(PropagationPolicy.Foreground));
        var d = await h.Client.GetAsync<V1Deployment>("default", "web");
        Assert.NotNull(d);                                      // still there, finalizer pending
        Assert.Contains("foregroundDeletion", d!.Metadata.Finalizers);
        await Eventually(async () => (await h.Client.ListAsync<V1Deployment>()).Items.ToList(), l => l.Count == 0, what: "deployment finally gone");
        Assert.Empty((await h.Client.ListAsync<V1ReplicaSet>()).Items);
        Assert.Empty((await h.Client.ListAsync<V1Pod>()).Items);
    }

    [Fact]
    public async Task Orphan_deletion_leaves_dependents_without_owner_references()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(new V1ReplicaSet { Metadata = new V1ObjectMeta { Name = "rs", NamespaceProperty = "default" }, Spec = new V1ReplicaSetSpec { Replicas = 2, Selector = Harness.Selector("rs"), Template = Harness.Template("rs") } });
        await Eventually(() => h.PodsAsync(), l => l.Count == 2, what: "pods");
        await h.Client.DeleteAsync<V1ReplicaSet>("default", "rs", new DeleteOptions(PropagationPolicy.Orphan));
        await Eventually(async () => (await h.Client.ListAsync<V1ReplicaSet>()).Items.ToList(), l => l.Count == 0, what: "rs gone");
        var pods = await Eventually(() => h.PodsAsync(), l => l.Count == 2 && l.All(p => p.Metadata.OwnerReferences is null || p.Metadata.OwnerReferences.Count == 0), what: "pods orphaned");
        await Task.Delay(300);
        Assert.Equal(2, (await h.PodsAsync()).Count);
    }

    [Fact]
    public async Task Dangling_dependents_are_collected_and_live_owners_are_respected()
    {
        await using var h = await Start();
        var cm = await h.Client.CreateAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "owner", NamespaceProperty = "default" } });
        var alive = Pod("alive"); alive.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "owner", Uid = cm.Metadata.Uid }];
        var dangling = Pod("dangling"); dangling.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "owner", Uid = "not-this-one" }];
        await h.Client.CreateAsync(alive);
        await h.Client.CreateAsync(dangling);
        await Eventually(() => h.PodsAsync(), l => l.Count == 1 && l[0].Metadata.Name == "alive", what: "dangling pod collected");
        await Task.Delay(300);
        Assert.NotNull(await h.Client.GetAsync<V1Pod>("default", "alive"));
    }
    [Fact]
    public void Only_objects_with_owners_or_a_held_deletion_are_work_items()
    {
        Assert.False(GarbageCollector.HasWork(new V1ObjectMeta { Name = "p" }));
        Assert.False(GarbageCollector.HasWork(new V1ObjectMeta { Name = "p", OwnerReferences = [] }));
        Assert.False(GarbageCollector.HasWork(new V1ObjectMeta { Name = "p", DeletionTimestamp = DateTime.UtcNow, Finalizers = ["example.com/x"] }));
        Assert.True(GarbageCollector.HasWork(new V1ObjectMeta { Name = "p", OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "rs", Uid = "u" }] }));
        Assert.True(GarbageCollector.HasWork(new V1ObjectMeta { Name = "p", DeletionTimestamp = DateTime.UtcNow, Finalizers = ["orphan"] }));
        Assert.True(GarbageCollector.HasWork(new V1ObjectMeta { Name = "p", DeletionTimestamp = DateTime.UtcNow, Finalizers = ["foregroundDeletion"] }));
    }
}
