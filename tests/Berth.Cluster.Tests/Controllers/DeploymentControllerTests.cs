using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class DeploymentControllerTests
{
    static V1Deployment Deploy(string name, int replicas, string image = "nginx:1", string strategy = "RollingUpdate", string? surge = "1", string? unavailable = "0") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1DeploymentSpec
        {
            Replicas = replicas, Selector = Harness.Selector(name), Template = Harness.Template(name, image),
            Strategy = strategy == "Recreate" ? new V1DeploymentStrategy { Type = "Recreate" }
                : new V1DeploymentStrategy { Type = "RollingUpdate", RollingUpdate = new V1RollingUpdateDeployment { MaxSurge = surge, MaxUnavailable = unavailable } },
        },
    };

    static async Task<Harness> Start()
    {
        var h = new Harness();
        h.Add(new ReplicaSetController(h.Factory));
        h.Add(new DeploymentController(h.Factory));
        await h.StartAsync();
        return h;
    }

    static bool RolledOut(V1Deployment d) =>
        d.Status?.ObservedGeneration >= d.Metadata.Generation && d.Status.UpdatedReplicas == d.Spec.Replicas &&
        d.Status.Replicas == d.Spec.Replicas && d.Status.AvailableReplicas == d.Spec.Replicas &&
        d.Status.Conditions?.Any(c => c.Type == "Progressing" && c.Reason == "NewReplicaSetAvailable") == true;

    async static Task<List<V1ReplicaSet>> ReplicaSets(Harness h) => (await h.Client.ListAsync<V1ReplicaSet>("default")).Items.ToList();

    static Task Image(Harness h, string name, string image) => Mutate(h, name, d => d.Spec.Template.Spec.Containers[0].Image = image);

    static async Task Mutate(Harness h, string name, Action<V1Deployment> change)
    {
        var d = (await h.Client.GetAsync<V1Deployment>("default", name))!;
        change(d);
        await h.Client.UpdateAsync(d);
    }

    [Fact]
    public async Task Creates_a_revisioned_replicaset_and_reports_available()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(Deploy("web", 3));
        var d = await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), RolledOut, what: "rolled out");
        var rs = Assert.Single(await ReplicaSets(h));
        Assert.Equal("1", rs.Metadata.Annotations[DeploymentController.RevisionAnnotation]);
        Assert.Equal("1", d.Metadata.Annotations[DeploymentController.RevisionAnnotation]);
        var hash = rs.Metadata.Labels[DeploymentController.HashLabel];
        Assert.Equal("web-" + hash, rs.Metadata.Name);
        Assert.Equal(hash, rs.Spec.Selector.MatchLabels[DeploymentController.HashLabel]);
        Assert.Equal(d.Metadata.Uid, rs.Metadata.OwnerReferences.Single().Uid);
        Assert.Contains(d.Status.Conditions, c => c.Type == "Available" && c.Status == "True" && c.Reason == "MinimumReplicasAvailable");
        Assert.All(await h.PodsAsync(), p => Assert.Equal(hash, p.Metadata.Labels[DeploymentController.HashLabel]));
    }

    [Fact]
    public async Task Rolling_update_honours_max_surge_and_max_unavailable_then_undo_reuses_the_old_replicaset()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(Deploy("web", 4, surge: "1", unavailable: "0"));
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), RolledOut, what: "first rollout");

        int maxPods = 0, minReady = int.MaxValue;
        string? snapshot = null;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                var pods = await h.PodsAsync();
                // maxSurge bounds the ReplicaSets' desired replicas (pods lag behind the ReplicaSet controller).
                var sets = await ReplicaSets(h);
                var desired = sets.Sum(r => r.Spec.Replicas ?? 0);
                if (desired > 5 && snapshot is null) snapshot = string.Join("; ", sets.Select(r => $"{r.Metadata.Name} spec={r.Spec.Replicas}"));
                maxPods = Math.Max(maxPods, desired);
                minReady = Math.Min(minReady, pods.Count(PodConditions.IsReady));
                await Task.Delay(2);
            }
        });
        await Image(h, "web", "nginx:2");
        var d = await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), x => RolledOut(x) && x.Metadata.Generation == 2, what: "second rollout");
        sampling.Cancel();
        await sampler;
        Assert.True(maxPods <= 5, $"maxSurge 1 allows at most 5 desired replicas, saw {maxPods}: {snapshot}");
        Assert.True(minReady >= 4, $"maxUnavailable 0 keeps 4 ready, saw {minReady}");
        Assert.Equal("2", d.Metadata.Annotations[DeploymentController.RevisionAnnotation]);
        var sets = await ReplicaSets(h);
        Assert.Equal(2, sets.Count);
        var oldRs = sets.Single(r => r.Metadata.Annotations[DeploymentController.RevisionAnnotation] == "1");
        Assert.Equal(0, oldRs.Spec.Replicas);
        Assert.All(await h.PodsAsync(), p => Assert.Equal("nginx:2", p.Spec.Containers[0].Image));

        // kubectl rollout undo: the template goes back; the old ReplicaSet becomes revision 3.
        await Image(h, "web", "nginx:1");
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), x => RolledOut(x) && x.Metadata.Generation == 3, what: "undo rollout");
        sets = await ReplicaSets(h);
        Assert.Equal(2, sets.Count);
        var back = sets.Single(r => r.Metadata.Uid == oldRs.Metadata.Uid);
        Assert.Equal("3", back.Metadata.Annotations[DeploymentController.RevisionAnnotation]);
        Assert.Equal("1", back.Metadata.Annotations[DeploymentController.RevisionHistoryAnnotation]);
        Assert.Equal(4, back.Spec.Replicas);
    }

    [Fact]
    public async Task Max_unavailable_lets_old_pods_go_first_when_new_ones_are_not_ready()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(Deploy("web", 4, surge: "0", unavailable: "1"));
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), RolledOut, what: "first rollout");
        h.MakeReady = p => p.Spec.Containers[0].Image != "nginx:bad";
        await Image(h, "web", "nginx:bad");
        await Task.Delay(800);
        var pods = await h.PodsAsync();
        Assert.True(pods.Count <= 4);
        Assert.Equal(3, pods.Count(PodConditions.IsReady));       // exactly one unavailable, rollout stuck
        var d = (await h.Client.GetAsync<V1Deployment>("default", "web"))!;
        Assert.Equal(1, d.Status.UpdatedReplicas);
        Assert.Contains(d.Status.Conditions, c => c.Type == "Progressing" && c.Reason == "ReplicaSetUpdated");
        h.MakeReady = _ => true;
        await h.KickKubeletAsync();
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), x => RolledOut(x) && x.Metadata.Generation == 2, what: "rollout completes once ready");
    }

    [Fact]
    public async Task Recreate_removes_old_pods_before_creating_new_ones()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(Deploy("db", 2, strategy: "Recreate"));
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "db").AsTask(), RolledOut, what: "first rollout");
        bool mixed = false;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                var images = (await h.PodsAsync()).Select(p => p.Spec.Containers[0].Image).Distinct().Count();
                if (images > 1) mixed = true;
                await Task.Delay(2);
            }
        });
        await Image(h, "db", "nginx:2");
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "db").AsTask(), x => RolledOut(x) && x.Metadata.Generation == 2, what: "recreate rollout");
        sampling.Cancel();
        await sampler;
        Assert.False(mixed, "old and new pods ran at the same time");
    }

    [Fact]
    public async Task Paused_deployment_does_not_roll_out_until_resumed_and_history_is_limited()
    {
        await using var h = await Start();
        var spec = Deploy("web", 1);
        spec.Spec.RevisionHistoryLimit = 1;
        await h.Client.CreateAsync(spec);
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), RolledOut, what: "first rollout");
        await Mutate(h, "web", d => { d.Spec.Paused = true; d.Spec.Template.Spec.Containers[0].Image = "nginx:2"; });
        var paused = await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), x => x.Status?.Conditions?.Any(c => c.Reason == "DeploymentPaused") == true, what: "paused condition");
        Assert.Single(await ReplicaSets(h));
        await Mutate(h, "web", d => d.Spec.Paused = false);
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), x => RolledOut(x) && x.Status.ObservedGeneration == x.Metadata.Generation && (x.Status.UpdatedReplicas ?? 0) == 1 && x.Metadata.Annotations[DeploymentController.RevisionAnnotation] == "2", what: "resumed rollout");
        await Image(h, "web", "nginx:3");
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), x => RolledOut(x) && x.Metadata.Annotations[DeploymentController.RevisionAnnotation] == "3", what: "third rollout");
        // History limit 1: the current ReplicaSet plus one old one.
        await Eventually(async () => await ReplicaSets(h), l => l.Count == 2, what: "history trimmed to 1");
        Assert.DoesNotContain(await ReplicaSets(h), r => r.Metadata.Annotations[DeploymentController.RevisionAnnotation] == "1");
    }

    [Fact]
    public async Task Scaling_changes_the_current_replicaset()
    {
        await using var h = await Start();
        await h.Client.CreateAsync(Deploy("web", 2));
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), RolledOut, what: "rollout");
        await Mutate(h, "web", d => d.Spec.Replicas = 5);
        await Eventually(() => h.Client.GetAsync<V1Deployment>("default", "web").AsTask(), x => RolledOut(x) && x.Status.Replicas == 5, what: "scaled to 5");
        Assert.Single(await ReplicaSets(h));
        Assert.Equal(5, (await h.PodsAsync()).Count);
    }
}
