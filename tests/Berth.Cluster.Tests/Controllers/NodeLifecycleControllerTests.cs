using Berth.Cluster.Controllers;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class NodeLifecycleControllerTests
{
    static V1Pod PodOn(string name, string node, params V1Toleration[] tolerations)
    {
        var p = Pod(name, nodeName: node);
        p.Metadata.Uid = null;
        p.Spec.Tolerations = tolerations.Length == 0 ? null : tolerations.ToList();
        return p;
    }

    [Fact]
    public async Task Silent_nodes_turn_unknown_get_unreachable_taints_and_lose_untolerating_pods_in_time()
    {
        var time = new FakeTimeProvider(JobControllerTests.Epoch);
        await using var h = new Harness(time) { Kubelet = false };
        h.Add(new NodeLifecycleController(h.Factory, time));
        var n = Node("n1");
        await h.Client.CreateAsync(n);
        await h.Client.CreateAsync(new V1Lease { Metadata = new V1ObjectMeta { Name = "n1", NamespaceProperty = "kube-node-lease" }, Spec = new V1LeaseSpec { HolderIdentity = "n1", RenewTime = time.GetUtcNow().UtcDateTime } });
        await h.Client.CreateAsync(PodOn("plain", "n1"));
        await h.Client.CreateAsync(PodOn("brief", "n1", new V1Toleration { Key = "node.kubernetes.io/unreachable", OperatorProperty = "Exists", Effect = "NoExecute", TolerationSeconds = 10 }));
        await h.Client.CreateAsync(PodOn("forever", "n1", new V1Toleration { Key = "node.kubernetes.io/unreachable", OperatorProperty = "Exists", Effect = "NoExecute" }));
        await h.StartAsync();

        // A renewed lease keeps it Ready.
        time.Advance(TimeSpan.FromSeconds(30));
        var lease = (await h.Client.GetAsync<V1Lease>("kube-node-lease", "n1"))!;
        lease.Spec.RenewTime = time.GetUtcNow().UtcDateTime;
        await h.Client.UpdateAsync(lease);
        await Task.Delay(100);
        time.Advance(TimeSpan.FromSeconds(30));
        await Task.Delay(200);
        Assert.Equal("True", (await h.Client.GetAsync<V1Node>(null, "n1"))!.Status.Conditions.Single(c => c.Type == "Ready").Status);

        // Silence for longer than 40 s: Unknown and both unreachable taints.
        await JobControllerTests.AdvanceUntilAsync(time, async () => (await h.Client.GetAsync<V1Node>(null, "n1"))!.Spec.Taints?.Count == 2);
        var node = (await h.Client.GetAsync<V1Node>(null, "n1"))!;
        var ready = node.Status.Conditions.Single(c => c.Type == "Ready");
        Assert.Equal(("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."), (ready.Status, ready.Reason, ready.Message));
        Assert.Equal(["NoExecute", "NoSchedule"], node.Spec.Taints.Where(t => t.Key == "node.kubernetes.io/unreachable").Select(t => t.Effect).Order());
        var tainted = time.GetUtcNow();

        // tolerationSeconds=10 goes after 10 s; no toleration gets the default 300 s; unbounded stays.
        var at1 = await JobControllerTests.AdvanceUntilAsync(time, async () => !(await h.PodsAsync()).Any(p => p.Metadata.Name == "brief"));
        Assert.InRange(at1 - tainted, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(12));
        var at2 = await JobControllerTests.AdvanceUntilAsync(time, async () => !(await h.PodsAsync()).Any(p => p.Metadata.Name == "plain"));
        Assert.InRange(at2 - tainted, TimeSpan.FromSeconds(300), TimeSpan.FromSeconds(302));
        Assert.Equal(["forever"], (await h.PodsAsync()).Select(p => p.Metadata.Name));

        // The kubelet comes back: Ready=True, taints removed.
        node = (await h.Client.GetAsync<V1Node>(null, "n1"))!;
        node.Status.Conditions.Single(c => c.Type == "Ready").Status = "True";
        node.Status.Conditions.Single(c => c.Type == "Ready").LastHeartbeatTime = time.GetUtcNow().UtcDateTime;
        await h.Client.UpdateStatusAsync(node);
        await Eventually(() => h.Client.GetAsync<V1Node>(null, "n1").AsTask(), x => x.Spec.Taints is null || x.Spec.Taints.Count == 0, what: "taints removed");
    }
}
