using Berth.Cluster.Api;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Storage.Sqlite;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Client;

/// <summary>The API handler's verbs over a temporary SQLite store, without HTTP, and a client over them.</summary>
internal sealed class LocalCluster : IAsyncDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("berth-local-").FullName;
    public readonly SqliteStore Store;
    public readonly ApiHandler Api;
    public readonly LocalClusterClient Client;

    public LocalCluster()
    {
        Store = SqliteStore.Open(Path.Combine(_dir, "state.db"));
        var registry = BuiltinResources.Create();
        Api = new ApiHandler(Store, registry, new Discovery(registry, "127.0.0.1:0"), new ApiLimits());
        Client = new LocalClusterClient(Api);
    }

    public static async Task<LocalCluster> StartAsync(params string[] namespaces)
    {
        var c = new LocalCluster();
        foreach (var ns in new[] { "default", "kube-system" }.Concat(namespaces))
            await c.Client.CreateAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } });
        return c;
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        Directory.Delete(_dir, true);
    }
}

public class LocalClusterClientTests
{
    [Fact]
    public async Task Create_goes_through_defaulting_and_validation()
    {
        await using var c = await LocalCluster.StartAsync();
        var made = await c.Client.CreateAsync(Pod("a"));
        Assert.False(string.IsNullOrEmpty(made.Metadata.Uid));
        Assert.NotEqual("uid-a", made.Metadata.Uid[..5]);               // the server's uid, not the client's
        Assert.NotNull(made.Metadata.CreationTimestamp);
        Assert.True(long.Parse(made.Metadata.ResourceVersion) > 0);
        Assert.Equal("Pod", made.Kind);
        Assert.Null(made.Status?.Phase is "Running" ? made.Status : null);
        var again = await c.Client.GetAsync<V1Pod>("default", "a");
        Assert.Equal(made.Metadata.ResourceVersion, again!.Metadata.ResourceVersion);

        var dup = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateAsync(Pod("a")).AsTask());
        Assert.Equal(ClusterErrorKind.AlreadyExists, dup.Kind);
        var bad = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateAsync(Pod("Not_A_Name")).AsTask());
        Assert.Equal(ClusterErrorKind.Invalid, bad.Kind);
        Assert.Contains("metadata.name", bad.Message);
        var noNs = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateAsync(Pod("b", ns: "nowhere")).AsTask());
        Assert.Equal(ClusterErrorKind.NotFound, noNs.Kind);
        Assert.Contains("namespaces \"nowhere\" not found", noNs.Message);
        var gen = await c.Client.CreateAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "cm-", NamespaceProperty = "default" } });
        Assert.StartsWith("cm-", gen.Metadata.Name);
        var ns = await c.Client.GetAsync<V1Namespace>(null, "default");
        Assert.Equal(["kubernetes"], ns!.Spec.Finalizers);                // the namespace's defaulting ran
        Assert.Equal("Active", ns.Status.Phase);
    }

    [Fact]
    public async Task Update_is_optimistic_keeps_status_and_bumps_generation_on_spec_change()
    {
        await using var c = await LocalCluster.StartAsync();
        var d = await c.Client.CreateAsync(new V1Deployment
        {
            Metadata = new V1ObjectMeta { Name = "d", NamespaceProperty = "default" },
            Spec = new V1DeploymentSpec { Replicas = 1, Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "d" } },
                Template = new V1PodTemplateSpec { Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = "d" } },
                    Spec = new V1PodSpec { Containers = [new V1Container { Name = "c", Image = "nginx" }] } } },
        });
        Assert.Equal(1, d.Metadata.Generation);
        d.Status = new V1DeploymentStatus { Replicas = 99 };
        d.Spec.Replicas = 3;
        var u = await c.Client.UpdateAsync(d);
        Assert.Equal(2, u.Metadata.Generation);
        Assert.NotEqual(99, u.Status?.Replicas);                         // status ignored by update
        var ex = await Assert.ThrowsAsync<ClusterException>(() => c.Client.UpdateAsync(Kinds.Clone(d)).AsTask());
        Assert.Equal(ClusterErrorKind.Conflict, ex.Kind);
        u.Status = new V1DeploymentStatus { Replicas = 3 };
        u.Spec.Replicas = 7;
        var s = await c.Client.UpdateStatusAsync(u);
        Assert.Equal(3, s.Status.Replicas);
        Assert.Equal(3, s.Spec.Replicas);                                // spec ignored by updateStatus
        Assert.Equal(2, s.Metadata.Generation);
        Assert.Equal(d.Metadata.Uid, s.Metadata.Uid);
    }

    [Fact]
    public async Task Binding_replaces_an_unschedulable_condition_and_checks_the_uid()
    {
        await using var c = await LocalCluster.StartAsync();
        var p = await c.Client.CreateAsync(Pod("a"));
        p.Status ??= new V1PodStatus();
        PodConditions.Set(p.Status, "PodScheduled", "False", "Unschedulable", "0/1 nodes are available", DateTime.UtcNow);
        p = await c.Client.UpdateStatusAsync(p);
        var wrongUid = await Assert.ThrowsAsync<ClusterException>(() => c.Client.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "a", NamespaceProperty = "default", Uid = "other" }, Target = new V1ObjectReference { Name = "n1" } }).AsTask());
        Assert.Equal(ClusterErrorKind.Conflict, wrongUid.Kind);
        await c.Client.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "a", NamespaceProperty = "default", Uid = p.Metadata.Uid }, Target = new V1ObjectReference { Name = "n1" } });
        var bound = await c.Client.GetAsync<V1Pod>("default", "a");
        Assert.Equal("n1", bound!.Spec.NodeName);
        var cond = Assert.Single(bound.Status.Conditions, x => x.Type == "PodScheduled");
        Assert.Equal("True", cond.Status);
        Assert.Null(cond.Reason);

        var fresh = await c.Client.CreateAsync(Pod("b"));
        var other = await Assert.ThrowsAsync<ClusterException>(() => c.Client.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "b", NamespaceProperty = "default", Uid = "other" }, Target = new V1ObjectReference { Name = "n1" } }).AsTask());
        Assert.Equal(ClusterErrorKind.Conflict, other.Kind);
        Assert.Contains("UID in object meta: " + fresh.Metadata.Uid, other.Message);
        Assert.Null((await c.Client.GetAsync<V1Pod>("default", "b"))!.Spec.NodeName);
    }

    [Fact]
    public async Task Lists_share_decoded_objects_until_they_change()
    {
        await using var c = await LocalCluster.StartAsync();
        await c.Client.CreateAsync(Pod("a"));
        await c.Client.CreateAsync(Pod("b"));
        var first = await c.Client.ListAsync<V1Pod>("default");
        var second = await c.Client.ListAsync<V1Pod>("default");
        Assert.Equal(2, second.Items.Count);
        Assert.Same(first.Items[0], second.Items[0]);                      // the informers of one server hold one copy
        Assert.Same(first.Items[1], second.Items[1]);
        var b = Kinds.Clone(first.Items.Single(p => p.Metadata.Name == "b"));
        b.Metadata.Labels = new Dictionary<string, string> { ["x"] = "y" };
        await c.Client.UpdateAsync(b);
        var third = await c.Client.ListAsync<V1Pod>("default");
        Assert.Same(first.Items.Single(p => p.Metadata.Name == "a"), third.Items.Single(p => p.Metadata.Name == "a"));
        var b3 = third.Items.Single(p => p.Metadata.Name == "b");
        Assert.NotSame(first.Items.Single(p => p.Metadata.Name == "b"), b3);   // a new revision is a new object
        Assert.Equal("y", b3.Metadata.Labels["x"]);
    }

    [Fact]
    public async Task Events_created_together_are_stamped_stored_and_listed()
    {
        await using var c = await LocalCluster.StartAsync("gone");
        Corev1Event Ev(string name, string ns = "default") => new()
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Uid = "client-uid", ResourceVersion = "5" },
            InvolvedObject = new V1ObjectReference { Kind = "Pod", Name = "p", NamespaceProperty = ns },
            Reason = "Scheduled", Message = "Successfully assigned", Type = "Normal", Count = 1,
            FirstTimestamp = new DateTime(2026, 11, 29, 7, 0, 0, 500, DateTimeKind.Utc),
        };
        var before = DateTime.UtcNow.AddSeconds(-1);
        await c.Client.CreateManyOnlyAsync([Ev("e1"), Ev("e2"), Ev("e3")]);
        var list = await c.Client.ListAsync<Corev1Event>("default");
        Assert.Equal(["e1", "e2", "e3"], list.Items.Select(e => e.Metadata.Name).Order());
        var e1 = list.Items.Single(e => e.Metadata.Name == "e1");
        Assert.NotEqual("client-uid", e1.Metadata.Uid);
        Assert.Equal(36, e1.Metadata.Uid.Length);
        Assert.NotEqual(list.Items[0].Metadata.Uid, list.Items[1].Metadata.Uid);
        Assert.True(e1.Metadata.CreationTimestamp >= before && e1.Metadata.CreationTimestamp <= DateTime.UtcNow);
        Assert.NotEqual("5", e1.Metadata.ResourceVersion);
        Assert.Equal("Successfully assigned", e1.Message);
        // the stored form: kind and apiVersion, creationTimestamp in whole seconds as every other object's
        var raw = System.Text.Encoding.UTF8.GetString((await c.Store.GetAsync("/registry/events/default/e1"))!.Value);
        Assert.Contains("\"kind\":\"Event\"", raw);
        Assert.Contains("\"apiVersion\":\"v1\"", raw);
        Assert.Matches("\"creationTimestamp\":\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\"", raw);
        Assert.DoesNotContain("resourceVersion", raw);

        // one refused (exists, missing namespace, terminating namespace) does not stop the others; the first failure is thrown
        var dup = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateManyOnlyAsync([Ev("e1"), Ev("e4")]).AsTask());
        Assert.Equal(ClusterErrorKind.AlreadyExists, dup.Kind);
        Assert.NotNull(await c.Client.GetAsync<Corev1Event>("default", "e4"));
        var missing = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateManyOnlyAsync([Ev("x", "nowhere")]).AsTask());
        Assert.Equal(ClusterErrorKind.NotFound, missing.Kind);
        await c.Client.DeleteAsync<V1Namespace>(null, "gone");
        var terminating = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateManyOnlyAsync([Ev("x", "gone")]).AsTask());
        Assert.Equal(ClusterErrorKind.Forbidden, terminating.Kind);
        Assert.False(ApiHandler.CanCreateBuilt(c.Api.Registry.Find("", "v1", "pods")!));
    }

    [Fact]
    public async Task Binding_sets_the_node_once_with_PodScheduled_and_bound_pods_delete_gracefully()
    {
        await using var c = await LocalCluster.StartAsync();
        var p = await c.Client.CreateAsync(Pod("a"));
        await c.Client.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "a", NamespaceProperty = "default", Uid = p.Metadata.Uid }, Target = new V1ObjectReference { Kind = "Node", Name = "n1" } });
        var bound = await c.Client.GetAsync<V1Pod>("default", "a");
        Assert.Equal("n1", bound!.Spec.NodeName);
        Assert.Equal("True", PodConditions.Get(bound.Status, "PodScheduled")?.Status);
        var twice = await Assert.ThrowsAsync<ClusterException>(() => c.Client.BindAsync(new V1Binding { Metadata = new V1ObjectMeta { Name = "a", NamespaceProperty = "default" }, Target = new V1ObjectReference { Name = "n2" } }).AsTask());
        Assert.Equal(ClusterErrorKind.Conflict, twice.Kind);
        Assert.Contains("already assigned to node \"n1\"", twice.Message);

        await c.Client.DeleteAsync<V1Pod>("default", "a");
        var terminating = await c.Client.GetAsync<V1Pod>("default", "a");
        Assert.NotNull(terminating!.Metadata.DeletionTimestamp);           // its kubelet removes it
        Assert.Equal(30, terminating.Metadata.DeletionGracePeriodSeconds);

        var cm = await c.Client.CreateAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "f", NamespaceProperty = "default", Finalizers = ["x/y"] } });
        await c.Client.DeleteAsync<V1ConfigMap>("default", "f", new DeleteOptions(PropagationPolicy.Foreground));
        var held = await c.Client.GetAsync<V1ConfigMap>("default", "f");
        Assert.Equal(["x/y", "foregroundDeletion"], held!.Metadata.Finalizers);
        held.Metadata.Finalizers = [];
        await c.Client.UpdateAsync(held);
        Assert.Null(await c.Client.GetAsync<V1ConfigMap>("default", "f"));
        var stale = await Assert.ThrowsAsync<ClusterException>(() => c.Client.DeleteAsync<V1Pod>("default", "a", new DeleteOptions(Uid: "other")).AsTask());
        Assert.Equal(ClusterErrorKind.Conflict, stale.Kind);
    }

    [Fact]
    public async Task Watch_replays_from_a_version_and_says_gone_after_compaction()
    {
        await using var c = await LocalCluster.StartAsync();
        await c.Client.CreateAsync(Pod("a"));
        var list = await c.Client.ListAsync<V1Pod>("default");
        Assert.Single(list.Items);
        await c.Client.CreateAsync(Pod("b"));
        var b = await c.Client.GetAsync<V1Pod>("default", "b");
        b!.Metadata.Labels = new Dictionary<string, string> { ["x"] = "1" };
        await c.Client.UpdateAsync(b);
        await c.Client.DeleteAsync<V1Pod>("default", "a");
        using var cts = new CancellationTokenSource(5000);
        var seen = new List<string>();
        await foreach (var e in c.Client.WatchAsync<V1Pod>("default", list.ResourceVersion, cts.Token))
        {
            seen.Add($"{e.Type} {e.Object.Metadata.Name}");
            Assert.True(long.Parse(e.Object.Metadata.ResourceVersion) > long.Parse(list.ResourceVersion));
            if (seen.Count == 3) break;
        }
        Assert.Equal(["Added b", "Modified b", "Deleted a"], seen);
        await c.Store.CompactAsync(c.Store.CurrentRevision - 1);
        var gone = await Assert.ThrowsAsync<ClusterException>(async () => { await foreach (var _ in c.Client.WatchAsync<V1Pod>("default", list.ResourceVersion)) { } });
        Assert.Equal(ClusterErrorKind.Gone, gone.Kind);
    }

    [Fact]
    public async Task A_terminating_namespace_refuses_new_content()
    {
        await using var c = await LocalCluster.StartAsync("shop");
        await c.Client.DeleteAsync<V1Namespace>(null, "shop");
        var ns = await c.Client.GetAsync<V1Namespace>(null, "shop");
        Assert.Equal("Terminating", ns!.Status.Phase);
        var ex = await Assert.ThrowsAsync<ClusterException>(() => c.Client.CreateAsync(Pod("a", ns: "shop")).AsTask());
        Assert.Equal(ClusterErrorKind.Forbidden, ex.Kind);
        Assert.Contains("because it is being terminated", ex.Message);
        ns.Spec.Finalizers = [];
        await c.Client.FinalizeNamespaceAsync(ns);
        Assert.Null(await c.Client.GetAsync<V1Namespace>(null, "shop"));
    }

    [Fact]
    public async Task ReplicaSet_controller_runs_over_the_api()
    {
        await using var c = await LocalCluster.StartAsync();
        var f = new InformerFactory(c.Client);
        var rsc = new ReplicaSetController(f);
        using var cts = new CancellationTokenSource();
        await f.StartAsync(cts.Token);
        var run = rsc.RunAsync(cts.Token);
        await c.Client.CreateAsync(new V1ReplicaSet
        {
            Metadata = new V1ObjectMeta { Name = "r", NamespaceProperty = "default" },
            Spec = new V1ReplicaSetSpec { Replicas = 3, Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "r" } },
                Template = new V1PodTemplateSpec { Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = "r" } },
                    Spec = new V1PodSpec { Containers = [new V1Container { Name = "c", Image = "nginx" }] } } },
        });
        var pods = await Eventually(async () => (await c.Client.ListAsync<V1Pod>("default")).Items.ToList(), l => l.Count == 3, what: "3 pods");
        Assert.All(pods, p => Assert.Equal("r", Owners.ControllerOf(p.Metadata)?.Name));
        Assert.All(pods, p => Assert.Equal("Always", p.Spec.RestartPolicy));  // pod defaulting ran
        await Eventually(async () => await c.Client.GetAsync<V1ReplicaSet>("default", "r"), r => r.Status?.Replicas == 3, what: "status.replicas 3");
        cts.Cancel();
        await run.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
