using Berth.Cluster.Controllers;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class StatefulSetControllerTests
{
    static V1StatefulSet Sts(string name, int replicas, string policy = "OrderedReady") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1StatefulSetSpec
        {
            Replicas = replicas, ServiceName = name + "-svc", PodManagementPolicy = policy,
            Selector = Harness.Selector(name), Template = Harness.Template(name),
            UpdateStrategy = new V1StatefulSetUpdateStrategy { Type = "RollingUpdate" },
        },
    };

    static async Task<Harness> StartAsync()
    {
        var h = new Harness();
        h.Add(new StatefulSetController(h.Factory));
        await h.StartAsync();
        return h;
    }

    static Task<V1StatefulSet> StatusWhere(Harness h, string name, Func<V1StatefulSetStatus, bool> ok, string what) =>
        Eventually(() => h.Client.GetAsync<V1StatefulSet>("default", name).AsTask(), s => s.Status is { } st && s.Status.ObservedGeneration == s.Metadata.Generation && ok(st), what: what);

    static List<string> Names(List<V1Pod> l) => l.Select(p => p.Metadata.Name).Order().ToList();

    [Fact]
    public async Task OrderedReady_creates_one_ordinal_at_a_time_and_scales_down_in_reverse()
    {
        await using var h = await StartAsync();
        h.MakeReady = p => p.Metadata.Name != "db-1";          // hold db-1 not ready
        await h.Client.CreateAsync(Sts("db", 3));
        var pods = await Eventually(() => h.PodsAsync(), l => l.Count == 2, what: "db-0 and db-1");
        await Task.Delay(300);
        Assert.Equal(["db-0", "db-1"], Names(await h.PodsAsync()));    // db-2 waits for db-1
        var p0 = pods.Single(p => p.Metadata.Name == "db-0");
        Assert.Equal(("db-0", "db-svc"), (p0.Spec.Hostname, p0.Spec.Subdomain));
        Assert.Equal(("db-0", "0"), (p0.Metadata.Labels[StatefulSetController.PodNameLabel], p0.Metadata.Labels[StatefulSetController.PodIndexLabel]));
        Assert.StartsWith("db-", p0.Metadata.Labels[StatefulSetController.RevisionLabel]);
        Assert.True(p0.Metadata.OwnerReferences.Single().Controller);
        h.MakeReady = _ => true;
        await h.KickKubeletAsync();
        await Eventually(() => h.PodsAsync(), l => l.Count == 3, what: "db-2 after db-1 is ready");
        var st = (await StatusWhere(h, "db", s => s.ReadyReplicas == 3, "ready=3")).Status;
        Assert.Equal((3, 3, 3, 3), (st.Replicas, st.CurrentReplicas ?? 0, st.UpdatedReplicas ?? 0, st.AvailableReplicas ?? 0));
        Assert.Equal(st.CurrentRevision, st.UpdateRevision);

        // Scale down to 1: db-2 goes first, then db-1.
        var cur = (await h.Client.GetAsync<V1StatefulSet>("default", "db"))!;
        cur.Spec.Replicas = 1;
        await h.Client.UpdateAsync(cur);
        await Eventually(() => h.PodsAsync(), l => Names(l).SequenceEqual(["db-0"]), what: "scaled to db-0");
        var deletes = (await h.Client.ListAsync<Corev1Event>("default")).Items.Where(e => e.Reason == "SuccessfulDelete").OrderBy(e => e.Metadata.Name).Select(e => e.Message).ToList();
        Assert.Equal(["delete Pod db-2 in StatefulSet db successful", "delete Pod db-1 in StatefulSet db successful"], deletes);
    }

    [Fact]
    public async Task Parallel_creates_all_pods_at_once()
    {
        await using var h = await StartAsync();
        h.MakeReady = _ => false;
        await h.Client.CreateAsync(Sts("cache", 3, "Parallel"));
        var pods = await Eventually(() => h.PodsAsync(), l => l.Count == 3, what: "3 pods without waiting for readiness");
        Assert.Equal(["cache-0", "cache-1", "cache-2"], Names(pods));
    }

    [Fact]
    public async Task RollingUpdate_replaces_from_the_highest_ordinal_down_to_the_partition()
    {
        await using var h = await StartAsync();
        await h.Client.CreateAsync(Sts("web", 3));
        var before = await StatusWhere(h, "web", s => s.ReadyReplicas == 3, "ready=3");
        var oldRev = before.Status.UpdateRevision;
        var cur = (await h.Client.GetAsync<V1StatefulSet>("default", "web"))!;
        cur.Spec.Template.Spec.Containers[0].Image = "nginx:2";
        cur.Spec.UpdateStrategy.RollingUpdate = new V1RollingUpdateStatefulSetStrategy { Partition = 1 };
        await h.Client.UpdateAsync(cur);
        var part = await StatusWhere(h, "web", s => s.UpdatedReplicas == 2 && s.ReadyReplicas == 3, "ordinals 1 and 2 updated");
        Assert.Equal(oldRev, part.Status.CurrentRevision);
        Assert.NotEqual(oldRev, part.Status.UpdateRevision);
        var pods = await h.PodsAsync();
        Assert.Equal("nginx:1", pods.Single(p => p.Metadata.Name == "web-0").Spec.Containers[0].Image);
        Assert.All(pods.Where(p => p.Metadata.Name != "web-0"), p => Assert.Equal("nginx:2", p.Spec.Containers[0].Image));

        // Partition 0 finishes the rollout; currentRevision becomes the update revision.
        cur = (await h.Client.GetAsync<V1StatefulSet>("default", "web"))!;
        cur.Spec.UpdateStrategy.RollingUpdate.Partition = 0;
        await h.Client.UpdateAsync(cur);
        var done = await StatusWhere(h, "web", s => s.UpdatedReplicas == 3 && s.CurrentRevision == s.UpdateRevision && s.ReadyReplicas == 3, "rollout complete");
        Assert.Equal(3, done.Status.CurrentReplicas);
        var deletes = (await h.Client.ListAsync<Corev1Event>("default")).Items.Where(e => e.Reason == "SuccessfulDelete").OrderBy(e => e.Metadata.Name).Select(e => e.Message).ToList();
        Assert.Equal(["delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful", "delete Pod web-0 in StatefulSet web successful"], deletes);
    }

    [Fact]
    public async Task OnDelete_keeps_old_pods_until_deleted()
    {
        await using var h = await StartAsync();
        var s = Sts("od", 2);
        s.Spec.UpdateStrategy = new V1StatefulSetUpdateStrategy { Type = "OnDelete" };
        await h.Client.CreateAsync(s);
        await StatusWhere(h, "od", x => x.ReadyReplicas == 2, "ready=2");
        var cur = (await h.Client.GetAsync<V1StatefulSet>("default", "od"))!;
        cur.Spec.Template.Spec.Containers[0].Image = "nginx:2";
        await h.Client.UpdateAsync(cur);
        await StatusWhere(h, "od", x => x.UpdatedReplicas is null or 0, "nothing updated");
        await Task.Delay(200);
        Assert.All(await h.PodsAsync(), p => Assert.Equal("nginx:1", p.Spec.Containers[0].Image));
        await h.Client.DeleteAsync<V1Pod>("default", "od-1");
        await Eventually(() => h.PodsAsync(), l => l.Count == 2 && l.Single(p => p.Metadata.Name == "od-1").Spec.Containers[0].Image == "nginx:2", what: "od-1 recreated new");
    }

    [Fact]
    public async Task VolumeClaimTemplates_become_one_claim_per_pod()
    {
        await using var h = await StartAsync();
        var s = Sts("pg", 1);
        s.Spec.VolumeClaimTemplates = [new V1PersistentVolumeClaim { Metadata = new V1ObjectMeta { Name = "data" } }];
        await h.Client.CreateAsync(s);
        var pod = (await Eventually(() => h.PodsAsync(), l => l.Count == 1, what: "pg-0"))[0];
        Assert.Equal("data-pg-0", pod.Spec.Volumes.Single(v => v.Name == "data").PersistentVolumeClaim.ClaimName);
        var claims = await Eventually(async () => (await h.Client.ListAsync<V1PersistentVolumeClaim>("default")).Items.ToList(), l => l.Count == 1, what: "claim data-pg-0");
        Assert.Equal("data-pg-0", claims[0].Metadata.Name);
        Assert.Null(claims[0].Metadata.OwnerReferences); // whenDeleted: Retain (the default) keeps the claim
        Assert.Equal(s.Spec.Selector.MatchLabels, claims[0].Metadata.Labels);
    }
}
