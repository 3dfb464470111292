using Berth.Cluster.Controllers;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class DaemonSetControllerTests
{
    static V1DaemonSet Ds(string name, string strategy = "RollingUpdate") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1DaemonSetSpec
        {
            Selector = Harness.Selector(name), Template = Harness.Template(name),
            UpdateStrategy = new V1DaemonSetUpdateStrategy { Type = strategy },
        },
    };

    static async Task<Harness> StartAsync(params V1Node[] nodes)
    {
        var h = new Harness();
        h.Add(new DaemonSetController(h.Factory));
        foreach (var n in nodes) await h.Client.CreateAsync(n);
        await h.StartAsync();
        return h;
    }

    static Task<V1DaemonSet> StatusWhere(Harness h, string name, Func<V1DaemonSetStatus, bool> ok, string what) =>
        Eventually(() => h.Client.GetAsync<V1DaemonSet>("default", name).AsTask(), d => d.Status is { } s && d.Status.ObservedGeneration == d.Metadata.Generation && ok(s), what: what);

    static Dictionary<string, string> Ssd => new() { ["disk"] = "ssd" };

    [Fact]
    public async Task One_pod_per_eligible_node_pinned_by_node_affinity()
    {
        var notReady = Node("n4", labels: Ssd, taints: [new V1Taint { Key = "node.kubernetes.io/not-ready", Effect = "NoExecute" }], unschedulable: true);
        await using var h = await StartAsync(Node("n1", labels: Ssd), Node("n2", labels: Ssd, taints: [new V1Taint { Key = "dedicated", Value = "db", Effect = "NoSchedule" }]), Node("n3"), notReady);
        var ds = Ds("agent");
        ds.Spec.Template.Spec.NodeSelector = Ssd;
        await h.Client.CreateAsync(ds);
        // n1, and n4 (its not-ready taint and unschedulable flag are tolerated by every daemon pod); not n2 (taint) nor n3 (selector).
        var pods = await Eventually(() => h.PodsAsync(), l => l.Count == 2, what: "2 pods");
        Assert.Equal(["n1", "n4"], pods.Select(DaemonSetController.TargetNode).Order());
        var p = pods.First(x => DaemonSetController.TargetNode(x) == "n1");
        var term = p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms.Single();
        Assert.Equal(("metadata.name", "In", "n1"), (term.MatchFields.Single().Key, term.MatchFields.Single().OperatorProperty, term.MatchFields.Single().Values.Single()));
        Assert.Null(p.Spec.NodeName);
        foreach (var key in new[] { "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable" })
            Assert.Contains(p.Spec.Tolerations, t => t.Key == key && t.OperatorProperty == "Exists");
        Assert.Equal(DaemonSetController.TemplateHash(ds.Spec.Template), p.Metadata.Labels[DaemonSetController.RevisionLabel]);
        var st = (await StatusWhere(h, "agent", s => s.NumberReady == 2 && s.NumberAvailable == 2, "ready=2")).Status;
        Assert.Equal((2, 2, 2, 0), (st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.UpdatedNumberScheduled ?? 0, st.NumberMisscheduled));

        // Tolerating the taint adds n2; a new matching node gets a pod; a node losing the label loses it.
        var cur = (await h.Client.GetAsync<V1DaemonSet>("default", "agent"))!;
        cur.Spec.Template.Spec.Tolerations = [new V1Toleration { Key = "dedicated", OperatorProperty = "Equal", Value = "db", Effect = "NoSchedule" }];
        await h.Client.UpdateAsync(cur);
        await h.Client.CreateAsync(Node("n5", labels: Ssd));
        var n1 = (await h.Client.GetAsync<V1Node>(null, "n1"))!;
        n1.Metadata.Labels.Remove("disk");
        await h.Client.UpdateAsync(n1);
        await Eventually(() => h.PodsAsync(), l => l.Select(DaemonSetController.TargetNode).Order().SequenceEqual(["n2", "n4", "n5"]), what: "pods on n2, n4, n5");
        await StatusWhere(h, "agent", s => s.DesiredNumberScheduled == 3 && s.UpdatedNumberScheduled == 3 && s.NumberAvailable == 3, "status after node changes");
    }

    [Fact]
    public async Task RollingUpdate_replaces_pods_within_maxUnavailable()
    {
        await using var h = await StartAsync(Node("a"), Node("b"), Node("c"));
        await h.Client.CreateAsync(Ds("log"));
        await StatusWhere(h, "log", s => s.NumberAvailable == 3, "3 available");
        var cur = (await h.Client.GetAsync<V1DaemonSet>("default", "log"))!;
        cur.Spec.Template.Spec.Containers[0].Image = "nginx:2";
        var updated = await h.Client.UpdateAsync(cur);
        var hash = DaemonSetController.TemplateHash(updated.Spec.Template);
        int maxMissing = 0;
        var deadline = Environment.TickCount64 + 10_000;
        while (Environment.TickCount64 < deadline)
        {
            var pods = await h.PodsAsync();
            maxMissing = Math.Max(maxMissing, 3 - pods.Count(p => PodConditionsReady(p)));
            if (pods.Count == 3 && pods.All(p => p.Metadata.Labels[DaemonSetController.RevisionLabel] == hash && PodConditionsReady(p))) break;
            await Task.Delay(5);
        }
        var final = await StatusWhere(h, "log", s => s.UpdatedNumberScheduled == 3 && s.NumberAvailable == 3, "rolled out");
        Assert.All(await h.PodsAsync(), p => Assert.Equal("nginx:2", p.Spec.Containers[0].Image));
        Assert.True(maxMissing <= 1, $"at most one node without a ready pod at a time (saw {maxMissing})");
    }

    static bool PodConditionsReady(V1Pod p) => p.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    [Fact]
    public async Task MaxSurge_starts_the_new_pod_before_removing_the_old()
    {
        await using var h = await StartAsync(Node("a"), Node("b"));
        var ds = Ds("net");
        ds.Spec.UpdateStrategy.RollingUpdate = new V1RollingUpdateDaemonSet { MaxSurge = "1", MaxUnavailable = "0" };
        await h.Client.CreateAsync(ds);
        await StatusWhere(h, "net", s => s.NumberAvailable == 2, "2 available");
        var cur = (await h.Client.GetAsync<V1DaemonSet>("default", "net"))!;
        cur.Spec.Template.Spec.Containers[0].Image = "nginx:2";
        h.MakeReady = p => p.Spec.Containers[0].Image != "nginx:2";      // hold the new pods back
        await h.Client.UpdateAsync(cur);
        // maxSurge=1: one new pod beside its old one, and no old pod goes while the new one is not ready.
        await Eventually(() => h.PodsAsync(), l => l.Count == 3, what: "a surge pod beside an old one");
        await Task.Delay(300);
        var held = await h.PodsAsync();
        Assert.Equal(3, held.Count);
        Assert.Equal(2, held.Count(p => p.Spec.Containers[0].Image == "nginx:1"));
        h.MakeReady = _ => true;
        await h.KickKubeletAsync();
        await StatusWhere(h, "net", s => s.UpdatedNumberScheduled == 2 && s.NumberAvailable == 2, "rolled out");
        await Eventually(() => h.PodsAsync(), l => l.Count == 2 && l.All(p => p.Spec.Containers[0].Image == "nginx:2"), what: "old pods gone");
    }

    [Fact]
    public async Task OnDelete_replaces_only_deleted_pods_and_failed_pods_are_recreated()
    {
        await using var h = await StartAsync(Node("a"), Node("b"));
        await h.Client.CreateAsync(Ds("od", "OnDelete"));
        var pods = await Eventually(() => h.PodsAsync(), l => l.Count == 2, what: "2 pods");
        var cur = (await h.Client.GetAsync<V1DaemonSet>("default", "od"))!;
        cur.Spec.Template.Spec.Containers[0].Image = "nginx:2";
        await h.Client.UpdateAsync(cur);
        await StatusWhere(h, "od", s => s.UpdatedNumberScheduled is null or 0, "nothing updated");
        await Task.Delay(200);
        Assert.All(await h.PodsAsync(), p => Assert.Equal("nginx:1", p.Spec.Containers[0].Image));
        await h.Client.DeleteAsync<V1Pod>("default", pods[0].Metadata.Name);
        var after = await Eventually(() => h.PodsAsync(), l => l.Count == 2 && l.Count(p => p.Spec.Containers[0].Image == "nginx:2") == 1, what: "deleted pod replaced with the new template");
        // A failed pod is deleted and replaced.
        var old = after.Single(p => p.Spec.Containers[0].Image == "nginx:1");
        await JobControllerTests.SetPhaseAsync(h.Client, old, "Failed");
        await Eventually(() => h.PodsAsync(), l => l.Count == 2 && l.All(p => p.Spec.Containers[0].Image == "nginx:2"), what: "failed pod replaced");
    }
}
