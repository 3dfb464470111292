using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class ReplicaSetControllerTests
{
    static V1ReplicaSet Rs(string name, int replicas) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1ReplicaSetSpec { Replicas = replicas, Selector = Harness.Selector(name), Template = Harness.Template(name) },
    };

    [Fact]
    public async Task Creates_scales_adopts_and_reports_status()
    {
        await using var h = new Harness();
        h.Add(new ReplicaSetController(h.Factory));
        await h.StartAsync();
        var rs = await h.Client.CreateAsync(Rs("web", 3));
        var pods = await Eventually(() => h.PodsAsync(), l => l.Count == 3, what: "3 pods");
        Assert.All(pods, p =>
        {
            Assert.StartsWith("web-", p.Metadata.Name);
            Assert.Equal(rs.Metadata.Uid, p.Metadata.OwnerReferences.Single().Uid);
            Assert.True(p.Metadata.OwnerReferences.Single().Controller);
            Assert.Equal("web", p.Metadata.Labels["app"]);
        });
        await Eventually(() => h.Client.GetAsync<V1ReplicaSet>("default", "web").AsTask(), r => r.Status?.ReadyReplicas == 3 && r.Status.AvailableReplicas == 3 && r.Status.ObservedGeneration == r.Metadata.Generation, what: "status ready=3");

        // Scale down to 1.
        var cur = (await h.Client.GetAsync<V1ReplicaSet>("default", "web"))!;
        cur.Spec.Replicas = 1;
        await h.Client.UpdateAsync(cur);
        await Eventually(() => h.PodsAsync(), l => l.Count == 1, what: "1 pod");

        // An orphan with matching labels is adopted, and the surplus removed.
        await h.Client.CreateAsync(Pod("stray", labels: new() { ["app"] = "web" }));
        var after = await Eventually(() => h.PodsAsync(), l => l.Count == 1 && l.All(p => p.Metadata.OwnerReferences?.Count == 1), what: "orphan adopted and surplus deleted");
        Assert.Single(after);

        // A pod relabelled away is released (ownerReference removed) and replaced.
        var owned = after[0];
        owned.Metadata.Labels["app"] = "other";
        await h.Client.UpdateAsync(owned);
        await Eventually(() => h.PodsAsync(), l => l.Count == 2 && l.Count(p => p.Metadata.OwnerReferences is null || p.Metadata.OwnerReferences.Count == 0) == 1, what: "released and replaced");
    }

    [Fact]
    public async Task Deleted_pods_are_replaced_without_overshooting()
    {
        await using var h = new Harness();
        h.Add(new ReplicaSetController(h.Factory));
        await h.StartAsync();
        await h.Client.CreateAsync(Rs("api", 5));
        var pods = await Eventually(() => h.PodsAsync(), l => l.Count == 5, what: "5 pods");
        foreach (var p in pods.Take(3)) await h.Client.DeleteAsync<V1Pod>("default", p.Metadata.Name);
        await Eventually(() => h.PodsAsync(), l => l.Count == 5, what: "replaced");
        await Task.Delay(300);
        Assert.Equal(5, (await h.PodsAsync()).Count);
    }
}
