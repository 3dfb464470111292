using Berth.Cluster.Client;
using Berth.Cluster.ControlPlane;
using Berth.Cluster.Tests.Client;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.ControlPlane;

public class NamespaceControllerTests
{
    [Fact]
    public async Task Deleting_a_namespace_deletes_its_content_then_the_namespace()
    {
        await using var c = await LocalCluster.StartAsync("shop", "other");
        await c.Client.CreateAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "cm", NamespaceProperty = "shop" } });
        await c.Client.CreateAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "s", NamespaceProperty = "shop" } });
        await c.Client.CreateAsync(Pod("loose", ns: "shop"));
        var bound = await c.Client.CreateAsync(Pod("bound", ns: "shop"));
        await c.Client.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "bound", NamespaceProperty = "shop" }, Target = new V1ObjectReference { Name = "n1" } });
        await c.Client.CreateAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "keep", NamespaceProperty = "other" } });
        using var cts = new CancellationTokenSource();
        var run = ControllerManager.RunAsync(c.Client, ControllerManager.Select(["namespace"]), cts.Token);

        await c.Client.DeleteAsync<V1Namespace>(null, "shop");
        // The bound pod waits for its kubelet (graceful deletion), so the namespace stays Terminating.
        var pod = await Eventually(() => c.Client.GetAsync<V1Pod>("shop", "bound").AsTask(), p => p.Metadata.DeletionTimestamp is not null, what: "bound pod terminating");
        await Eventually(async () => (await c.Client.ListAsync<V1ConfigMap>("shop")).Items.ToList(), l => l.Count == 0, what: "configmaps gone");
        // The controller deletes kind after kind: the configmaps being gone says nothing of the others yet.
        await Eventually(async () => (await c.Client.ListAsync<V1Secret>("shop")).Items.ToList(), l => l.Count == 0, what: "secrets gone");
        await Eventually(async () => await c.Client.GetAsync<V1Pod>("shop", "loose") is null ? "" : null, _ => true, what: "loose pod gone");
        var ns = await c.Client.GetAsync<V1Namespace>(null, "shop");
        Assert.Equal("Terminating", ns!.Status.Phase);
        Assert.Contains("kubernetes", ns.Spec.Finalizers);
        // The kubelet confirms the pod is gone (grace period 0): the namespace follows.
        await c.Api.DeleteOneAsync(new Berth.Cluster.Api.ApiHandler.Target(c.Api.Registry.Find("", "v1", "pods")!, "shop", "bound", null),
            new System.Text.Json.Nodes.JsonObject { ["gracePeriodSeconds"] = 0 }, false, default);
        await Eventually(async () => await c.Client.GetAsync<V1Namespace>(null, "shop") is null ? "" : null, _ => true, what: "namespace gone");
        Assert.NotNull(await c.Client.GetAsync<V1ConfigMap>("other", "keep"));
        cts.Cancel();
        await run.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Controllers_flag_selects_as_kube_controller_manager_does()
    {
        var byDefault = ControllerManager.All.Count(d => d.DefaultEnabled);
        Assert.Equal(byDefault, ControllerManager.Select([]).Count);
        Assert.Equal(byDefault - 1, ControllerManager.Select(["*,-namespace"]).Count);
        Assert.DoesNotContain(ControllerManager.Select([]), d => d.Name == "node-lifecycle-controller");
        Assert.Contains(ControllerManager.Select(["*,node-lifecycle"]), d => d.Name == "node-lifecycle-controller");
        Assert.Equal(["replicaset-controller", "deployment-controller"], ControllerManager.Select(["deployment", "replicaset-controller"]).Select(d => d.Name));
        var e = Assert.Throws<ArgumentException>(() => ControllerManager.Select(["nope"]));
        Assert.Contains("unknown controller \"nope\"", e.Message);
    }
}
