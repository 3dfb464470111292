using System.Text;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Client;

public class InMemoryClusterClientTests
{
    [Fact]
    public async Task Create_assigns_identity_and_rejects_duplicates()
    {
        var c = new InMemoryClusterClient();
        var made = await c.CreateAsync(Pod("a"));
        Assert.False(string.IsNullOrEmpty(made.Metadata.Uid));
        Assert.Equal("1", made.Metadata.ResourceVersion);
        Assert.Equal("v1", made.ApiVersion);
        Assert.Equal("Pod", made.Kind);
        var ex = await Assert.ThrowsAsync<ClusterException>(() => c.CreateAsync(Pod("a")).AsTask());
        Assert.Equal(ClusterErrorKind.AlreadyExists, ex.Kind);
        Assert.Equal("pods \"a\" already exists in namespace \"default\"", ex.Message);
        var gen = await c.CreateAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "cm-", NamespaceProperty = "default" } });
        Assert.StartsWith("cm-", gen.Metadata.Name);
        Assert.Equal(8, gen.Metadata.Name.Length);
        await Assert.ThrowsAsync<ClusterException>(() => c.CreateAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "x" } }).AsTask());
    }

    [Fact]
    public async Task Update_is_optimistic_keeps_status_and_bumps_generation_on_spec_change()
    {
        var c = new InMemoryClusterClient();
        var d = await c.CreateAsync(new V1Deployment { Metadata = new V1ObjectMeta { Name = "d", NamespaceProperty = "default" }, Spec = new V1DeploymentSpec { Replicas = 1, Template = new V1PodTemplateSpec() } });
        Assert.Equal(1, d.Metadata.Generation);
        d.Status = new V1DeploymentStatus { Replicas = 99 };
        d.Spec.Replicas = 3;
        var u = await c.UpdateAsync(d);
        Assert.Equal(2, u.Metadata.Generation);
        Assert.Null(u.Status);                       // status ignored by update
        var stale = Kinds.Clone(d);
        var ex = await Assert.ThrowsAsync<ClusterException>(() => c.UpdateAsync(stale).AsTask());
        Assert.Equal(ClusterErrorKind.Conflict, ex.Kind);
        u.Status = new V1DeploymentStatus { Replicas = 3 };
        u.Spec.Replicas = 7;
        var s = await c.UpdateStatusAsync(u);
        Assert.Equal(3, s.Status.Replicas);
        Assert.Equal(3, s.Spec.Replicas);            // spec ignored by updateStatus
        Assert.Equal(2, s.Metadata.Generation);
    }

    [Fact]
    public async Task Watch_replays_from_a_version_in_order_and_says_gone_after_compaction()
    {
        var c = new InMemoryClusterClient();
        await c.CreateAsync(Pod("a"));
        var list = await c.ListAsync<V1Pod>();
        await c.CreateAsync(Pod("b"));
        await c.DeleteAsync<V1Pod>("default", "a");
        using var cts = new CancellationTokenSource(5000);
        var seen = new List<string>();
        await foreach (var e in c.WatchAsync<V1Pod>(null, list.ResourceVersion, cts.Token))
        {
            seen.Add($"{e.Type} {e.Object.Metadata.Name} {e.Object.Metadata.ResourceVersion}");
            if (seen.Count == 2) break;
        }
        Assert.Equal(["Added b 2", "Deleted a 3"], seen);
        c.Compact(2);
        var ex = await Assert.ThrowsAsync<ClusterException>(async () => { await foreach (var _ in c.WatchAsync<V1Pod>(null, "1", cts.Token)) { } });
        Assert.Equal(ClusterErrorKind.Gone, ex.Kind);
    }

    [Fact]
    public async Task Finalizers_and_propagation_policies_defer_deletion()
    {
        var c = new InMemoryClusterClient();
        var rs = new V1ReplicaSet { Metadata = new V1ObjectMeta { Name = "r", NamespaceProperty = "default" }, Spec = new V1ReplicaSetSpec { Selector = new V1LabelSelector() } };
        await c.CreateAsync(rs);
        await c.DeleteAsync<V1ReplicaSet>("default", "r", new DeleteOptions(PropagationPolicy.Foreground));
        var r = (await c.GetAsync<V1ReplicaSet>("default", "r"))!;
        Assert.NotNull(r.Metadata.DeletionTimestamp);
        Assert.Contains("foregroundDeletion", r.Metadata.Finalizers);
        r.Metadata.Finalizers.Clear();
        await c.UpdateAsync(r);
        Assert.Null(await c.GetAsync<V1ReplicaSet>("default", "r"));
    }

    [Fact]
    public async Task Binding_sets_the_node_once()
    {
        var c = new InMemoryClusterClient();
        var p = await c.CreateAsync(Pod("a"));
        await c.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "a", NamespaceProperty = "default", Uid = p.Metadata.Uid }, Target = new V1ObjectReference { Name = "n1" } });
        var bound = (await c.GetAsync<V1Pod>("default", "a"))!;
        Assert.Equal("n1", bound.Spec.NodeName);
        Assert.Equal("True", PodConditions.Get(bound.Status, "PodScheduled")!.Status);
        var ex = await Assert.ThrowsAsync<ClusterException>(() => c.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "a", NamespaceProperty = "default" }, Target = new V1ObjectReference { Name = "n2" } }).AsTask());
        Assert.Equal(ClusterErrorKind.Conflict, ex.Kind);
        Assert.Contains("already assigned to node \"n1\"", ex.Message);
    }

    [Fact]
    public void Deep_copy_equals_the_json_round_trip_and_shares_nothing_mutable()
    {
        var p = Pod("a", labels: new() { ["x"] = "y" });
        p.Spec.Tolerations = [new V1Toleration { Key = "k", OperatorProperty = "Exists" }];
        p.Spec.Affinity = new V1Affinity { NodeAffinity = new V1NodeAffinity { RequiredDuringSchedulingIgnoredDuringExecution = Sel([new V1NodeSelectorTerm { MatchExpressions = [Req("a", "In", ["b"])] }]) } };
        p.Metadata.CreationTimestamp = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        var d = new V1Deployment { Metadata = new V1ObjectMeta { Name = "d" }, Spec = new V1DeploymentSpec { Strategy = new V1DeploymentStrategy { RollingUpdate = new V1RollingUpdateDeployment { MaxSurge = "25%", MaxUnavailable = 1 } }, Template = new V1PodTemplateSpec { Spec = p.Spec } } };
        var pc = Kinds.Clone(p);
        var dc = Kinds.Clone(d);
        Assert.Equal(Encoding.UTF8.GetString(Kinds.ToJson(p)), Encoding.UTF8.GetString(Kinds.ToJson(pc)));
        Assert.Equal(Encoding.UTF8.GetString(Kinds.ToJson(d)), Encoding.UTF8.GetString(Kinds.ToJson(dc)));
        Assert.NotSame(p.Metadata.Labels, pc.Metadata.Labels);
        Assert.NotSame(p.Spec.Containers[0], pc.Spec.Containers[0]);
        pc.Metadata.Labels["x"] = "changed";
        Assert.Equal("y", p.Metadata.Labels["x"]);
        Assert.Contains("\"maxSurge\":\"25%\"", Encoding.UTF8.GetString(Kinds.ToJson(dc)));
    }

    [Fact]
    public async Task Informer_lists_watches_indexes_and_relists_after_gone()
    {
        var c = new InMemoryClusterClient();
        await c.CreateAsync(Pod("a", nodeName: "n1"));
        var inf = new Informer<V1Pod>(c);
        inf.AddIndex("node", p => p.Spec?.NodeName);
        var log = new List<string>();
        inf.AddHandler(new InformerHandler<V1Pod>(p => { lock (log) log.Add("add " + p.Metadata.Name); }, (o, n) => { lock (log) log.Add("update " + n.Metadata.Name); }, p => { lock (log) log.Add("delete " + p.Metadata.Name); }));
        using var cts = new CancellationTokenSource();
        var run = inf.RunAsync(cts.Token);
        await inf.WaitForSyncAsync(cts.Token);
        await c.CreateAsync(Pod("b", nodeName: "n1"));
        var a = (await c.GetAsync<V1Pod>("default", "a"))!;
        a.Metadata.Labels = new Dictionary<string, string> { ["v"] = "2" };
        await c.UpdateAsync(a);
        await c.DeleteAsync<V1Pod>("default", "a");
        await Eventually(async () => { await Task.Yield(); lock (log) return log.ToList(); }, l => l.Count == 4, what: "4 informer events");
        Assert.Equal(["add a", "add b", "update a", "delete a"], log);
        Assert.Single(inf.ByIndex("node", "n1"));
        Assert.Equal("b", inf.Get("default/b")!.Metadata.Name);
        cts.Cancel();
        await run;
    }
}

public class WorkQueueTests
{
    [Fact]
    public async Task Keys_are_deduplicated_and_never_processed_twice_at_once()
    {
        using var q = new WorkQueue<string>();
        q.Add("a"); q.Add("a"); q.Add("b");
        Assert.Equal(2, q.Length);
        var (first, _) = await q.GetAsync(default);
        Assert.Equal("a", first);
        q.Add("a");                                  // while processing: held back
        var (second, _) = await q.GetAsync(default);
        Assert.Equal("b", second);
        Assert.Equal(0, q.Length);
        q.Done("a");                                 // now re-queued
        Assert.Equal(1, q.Length);
        q.Done("b");
    }

    [Fact]
    public async Task Rate_limited_adds_back_off_exponentially_until_forgotten()
    {
        using var q = new WorkQueue<string>(baseDelay: TimeSpan.FromMilliseconds(10));
        Assert.Equal(TimeSpan.FromMilliseconds(10), q.When("x"));
        Assert.Equal(TimeSpan.FromMilliseconds(20), q.When("x"));
        Assert.Equal(TimeSpan.FromMilliseconds(40), q.When("x"));
        Assert.Equal(3, q.NumRequeues("x"));
        q.Forget("x");
        Assert.Equal(0, q.NumRequeues("x"));
        q.AddRateLimited("y");
        using var cts = new CancellationTokenSource(2000);
        var (item, ok) = await q.GetAsync(cts.Token);
        Assert.True(ok);
        Assert.Equal("y", item);
    }

    [Fact]
    public async Task Shutdown_releases_waiters()
    {
        var q = new WorkQueue<string>();
        var wait = q.GetAsync(default).AsTask();
        q.ShutDown();
        var (_, ok) = await wait;
        Assert.False(ok);
    }
}
