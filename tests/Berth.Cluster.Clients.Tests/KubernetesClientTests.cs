using System.Net;
using System.Text.Json;
using Berth.Cluster.Tests.Kubectl;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Berth.Cluster.Clients.Tests;

/// <summary>The official C# KubernetesClient (21.0.8) against `out/berth server`, through the kubeconfig the server writes.</summary>
public sealed class KubernetesClientTests(BerthServer s) : IClassFixture<BerthServer>
{
    Kubernetes Client() => new(KubernetesClientConfiguration.BuildConfigFromConfigFile(s.Kubeconfig));

    static async Task<string> NewNamespaceAsync(Kubernetes k, string name)
    {
        await k.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["test"] = "csharp" } } });
        return name;
    }

    static V1Deployment Deployment(string name, int replicas) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["app"] = name } },
        Spec = new V1DeploymentSpec
        {
            Replicas = replicas,
            Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = name } },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = name } },
                Spec = new V1PodSpec { Containers = [new V1Container { Name = "c", Image = "busybox:1", Ports = [new V1ContainerPort { ContainerPort = 80 }] }] },
            },
        },
    };

    static async Task<T> Eventually<T>(Func<Task<T>> probe, Func<T, bool> ok, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        T last = await probe();
        while (!ok(last))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(100);
            last = await probe();
        }
        return last;
    }

    static async Task<V1Status> StatusOf(Func<Task> call, HttpStatusCode code)
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(call);
        Assert.Equal(code, e.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        Assert.Equal("Status", status.Kind);
        Assert.Equal("Failure", status.Status);
        Assert.Equal((int)code, status.Code);
        return status;
    }

    [Fact]
    public async Task Namespaces_configmaps_crud_patches_and_errors()
    {
        using var k = Client();
        var ns = await NewNamespaceAsync(k, "cs-crud");
        var list = await k.CoreV1.ListNamespaceAsync(labelSelector: "test=csharp");
        Assert.Contains(list.Items, n => n.Name() == ns);
        Assert.Equal("Active", (await k.CoreV1.ReadNamespaceAsync(ns)).Status.Phase);

        var cm = await k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = "settings", Labels = new Dictionary<string, string> { ["tier"] = "back" } },
            Data = new Dictionary<string, string> { ["a"] = "1" },
        }, ns);
        Assert.NotNull(cm.Metadata.Uid);
        Assert.NotNull(cm.Metadata.CreationTimestamp);

        // replace with the current resourceVersion, then a stale one is a 409 Conflict
        cm.Data["b"] = "2";
        var replaced = await k.CoreV1.ReplaceNamespacedConfigMapAsync(cm, "settings", ns);
        Assert.NotEqual(cm.ResourceVersion(), replaced.ResourceVersion());
        cm.Data["c"] = "3";
        var stale = await StatusOf(() => k.CoreV1.ReplaceNamespacedConfigMapAsync(cm, "settings", ns), HttpStatusCode.Conflict);
        Assert.Equal("Conflict", stale.Reason);

        var merged = await k.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"data\":{\"m\":\"merge\",\"a\":null}}", V1Patch.PatchType.MergePatch), "settings", ns);
        Assert.Equal("merge", merged.Data["m"]);
        Assert.False(merged.Data.ContainsKey("a"));
        var strategic = await k.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"metadata\":{\"labels\":{\"s\":\"yes\"}}}", V1Patch.PatchType.StrategicMergePatch), "settings", ns);
        Assert.Equal("yes", strategic.Labels()["s"]);
        Assert.Equal("back", strategic.Labels()["tier"]);
        var json = await k.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("[{\"op\":\"replace\",\"path\":\"/data/b\",\"value\":\"json\"}]", V1Patch.PatchType.JsonPatch), "settings", ns);
        Assert.Equal("json", json.Data["b"]);

        // server-side apply: a new object, then a second manager's conflicting field
        var applied = await k.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch(
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\"},\"data\":{\"x\":\"1\"}}", V1Patch.PatchType.ApplyPatch), "applied", ns, fieldManager: "cs-test");
        Assert.Equal("1", applied.Data["x"]);
        Assert.Contains(applied.Metadata.ManagedFields, f => f.Manager == "cs-test" && f.Operation == "Apply");
        var conflict = await StatusOf(() => k.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch(
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\"},\"data\":{\"x\":\"2\"}}", V1Patch.PatchType.ApplyPatch), "applied", ns, fieldManager: "other"), HttpStatusCode.Conflict);
        Assert.Contains("conflict", conflict.Message, StringComparison.OrdinalIgnoreCase);
        var forced = await k.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch(
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\"},\"data\":{\"x\":\"2\"}}", V1Patch.PatchType.ApplyPatch), "applied", ns, fieldManager: "other", force: true);
        Assert.Equal("2", forced.Data["x"]);

        var missing = await StatusOf(() => k.CoreV1.ReadNamespacedConfigMapAsync("missing", ns), HttpStatusCode.NotFound);
        Assert.Equal("NotFound", missing.Reason);
        Assert.Equal("configmaps", missing.Details.Kind);
        Assert.Equal("missing", missing.Details.Name);
        var exists = await StatusOf(() => k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "settings" } }, ns), HttpStatusCode.Conflict);
        Assert.Equal("AlreadyExists", exists.Reason);
        var invalid = await StatusOf(() => k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "Bad_Name" } }, ns), HttpStatusCode.UnprocessableEntity);
        Assert.Equal("Invalid", invalid.Reason);
        Assert.Contains(invalid.Details.Causes, c => c.Field == "metadata.name");

        var deleted = await k.CoreV1.DeleteNamespacedConfigMapAsync("settings", ns);
        Assert.Equal("Success", deleted.Status);
        await StatusOf(() => k.CoreV1.ReadNamespacedConfigMapAsync("settings", ns), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Pagination_and_label_selectors()
    {
        using var k = Client();
        var ns = await NewNamespaceAsync(k, "cs-pages");
        for (var i = 0; i < 7; i++)
            await k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap
            {
                Metadata = new V1ObjectMeta { Name = $"cm-{i}", Labels = new Dictionary<string, string> { ["parity"] = i % 2 == 0 ? "even" : "odd" } },
            }, ns);
        var names = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var page = await k.CoreV1.ListNamespacedConfigMapAsync(ns, limit: 3, continueParameter: token);
            Assert.True(page.Items.Count <= 3);
            names.AddRange(page.Items.Select(c => c.Name()));
            token = page.Metadata.ContinueProperty;
            pages++;
        } while (!string.IsNullOrEmpty(token));
        Assert.Equal(3, pages);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"cm-{i}"), names.Where(n => n.StartsWith("cm-")));

        var even = await k.CoreV1.ListNamespacedConfigMapAsync(ns, labelSelector: "parity=even");
        Assert.Equal(4, even.Items.Count);
        var notEven = await k.CoreV1.ListNamespacedConfigMapAsync(ns, labelSelector: "parity,parity notin (even)");
        Assert.Equal(3, notEven.Items.Count);
        var byName = await k.CoreV1.ListNamespacedConfigMapAsync(ns, fieldSelector: "metadata.name=cm-3");
        Assert.Equal("cm-3", Assert.Single(byName.Items).Name());

        var bad = await StatusOf(() => k.CoreV1.ListNamespacedConfigMapAsync(ns, labelSelector: "a in (b"), HttpStatusCode.BadRequest);
        Assert.Equal("BadRequest", bad.Reason);
        await k.CoreV1.DeleteCollectionNamespacedConfigMapAsync(ns, labelSelector: "parity=odd");
        Assert.Equal(4, (await k.CoreV1.ListNamespacedConfigMapAsync(ns, labelSelector: "parity")).Items.Count);
    }

    [Fact]
    public async Task Watch_from_a_resource_version_with_bookmarks()
    {
        using var k = Client();
        var ns = await NewNamespaceAsync(k, "cs-watch");
        await k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "before" } }, ns);
        var list = await k.CoreV1.ListNamespacedConfigMapAsync(ns);
        var rv = list.Metadata.ResourceVersion;

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var events = new List<(WatchEventType, string)>();
        var watch = k.CoreV1.WatchListNamespacedConfigMapAsync(ns, resourceVersion: rv, allowWatchBookmarks: true, cancellationToken: cts.Token);
        var writer = Task.Run(async () =>
        {
            await Task.Delay(500);
            await k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "after" } }, ns);
            await k.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch("{\"data\":{\"k\":\"v\"}}", V1Patch.PatchType.MergePatch), "after", ns);
            await k.CoreV1.DeleteNamespacedConfigMapAsync("after", ns);
        });
        await foreach (var (type, cm) in watch)
        {
            events.Add((type, cm.Name()));
            if (events.Count == 3) break;
        }
        await writer;
        // "before" is older than rv: only the changes after it come
        Assert.Equal([(WatchEventType.Added, "after"), (WatchEventType.Modified, "after"), (WatchEventType.Deleted, "after")], events);

        // sendInitialEvents: the current state, then a BOOKMARK marking its end
        var initial = k.CoreV1.WatchListNamespacedConfigMapAsync(ns, allowWatchBookmarks: true, sendInitialEvents: true,
            resourceVersionMatch: "NotOlderThan", cancellationToken: cts.Token);
        var seen = new List<string>();
        await foreach (var (type, cm) in initial)
        {
            if (type == WatchEventType.Bookmark)
            {
                Assert.Equal("true", cm.Metadata.Annotations["k8s.io/initial-events-end"]);
                Assert.False(string.IsNullOrEmpty(cm.ResourceVersion()));
                break;
            }
            Assert.Equal(WatchEventType.Added, type);
            seen.Add(cm.Name());
        }
        Assert.Contains("before", seen);
        Assert.DoesNotContain("after", seen);

        // timeoutSeconds: the server ends the stream after replaying the changes since rv
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var count = 0;
        await foreach (var _ in k.CoreV1.WatchListNamespacedConfigMapAsync(ns, resourceVersion: rv, timeoutSeconds: 1, cancellationToken: timeout.Token)) count++;
        Assert.Equal(3, count); // the same three changes, then the server ends the stream at timeoutSeconds
    }

    [Fact]
    public async Task Deployments_scale_and_status_subresources_pods_and_cascading_delete()
    {
        using var k = Client();
        var ns = await NewNamespaceAsync(k, "cs-apps");
        var d = await k.AppsV1.CreateNamespacedDeploymentAsync(Deployment("web", 2), ns);
        Assert.Equal("RollingUpdate", d.Spec.Strategy.Type);
        Assert.Equal(1L, d.Metadata.Generation);

        var pods = await Eventually(() => k.CoreV1.ListNamespacedPodAsync(ns, labelSelector: "app=web"), p => p.Items.Count == 2, "2 pods");
        Assert.All(pods.Items, p => Assert.Equal("ReplicaSet", p.OwnerReferences().Single().Kind));

        // the controllers settle the deployment's status first: a replace with a resourceVersion read meanwhile would conflict
        await Eventually(() => k.AppsV1.ReadNamespacedDeploymentAsync("web", ns), x => x.Status?.Replicas == 2 && x.Status.UpdatedReplicas == 2 && x.Status.Conditions?.Count == 2, "the deployment's status");
        await Task.Delay(500);
        var scale = await k.AppsV1.ReadNamespacedDeploymentScaleAsync("web", ns);
        Assert.Equal(2, scale.Spec.Replicas);
        scale.Spec.Replicas = 3;
        var rescaled = await k.AppsV1.ReplaceNamespacedDeploymentScaleAsync(scale, "web", ns);
        Assert.Equal(3, rescaled.Spec.Replicas);
        var patchedScale = await k.AppsV1.PatchNamespacedDeploymentScaleAsync(new V1Patch("{\"spec\":{\"replicas\":4}}", V1Patch.PatchType.MergePatch), "web", ns);
        Assert.Equal(4, patchedScale.Spec.Replicas);
        await Eventually(() => k.CoreV1.ListNamespacedPodAsync(ns, labelSelector: "app=web"), p => p.Items.Count == 4, "4 pods");
        Assert.Equal(4, (await k.AppsV1.ReadNamespacedDeploymentAsync("web", ns)).Spec.Replicas);

        // a watch of deployments from the create's resourceVersion sees both scalings
        using (var wcts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            var seen = new List<int?>();
            await foreach (var (type, wd) in k.AppsV1.WatchListNamespacedDeploymentAsync(ns, resourceVersion: d.Metadata.ResourceVersion, cancellationToken: wcts.Token))
            {
                Assert.Equal(WatchEventType.Modified, type);
                if (seen.LastOrDefault() != wd.Spec.Replicas) seen.Add(wd.Spec.Replicas);
                if (wd.Spec.Replicas == 4) break;
            }
            Assert.Equal([3, 4], seen.Where(r => r != 2));
        }

        // the status subresource: a pod's status written as a kubelet would; the main resource keeps it
        var pod = (await k.CoreV1.ListNamespacedPodAsync(ns, labelSelector: "app=web")).Items[0];
        pod.Status ??= new V1PodStatus();
        pod.Status.Phase = "Running";
        pod.Status.Conditions = [new V1PodCondition { Type = "Ready", Status = "True", LastTransitionTime = DateTime.UtcNow }];
        var running = await k.CoreV1.ReplaceNamespacedPodStatusAsync(pod, pod.Name(), ns);
        Assert.Equal("Running", running.Status.Phase);
        var patchedStatus = await k.CoreV1.PatchNamespacedPodStatusAsync(new V1Patch("{\"status\":{\"podIP\":\"10.42.0.9\"}}", V1Patch.PatchType.MergePatch), pod.Name(), ns);
        Assert.Equal("10.42.0.9", patchedStatus.Status.PodIP);
        Assert.Equal("Running", patchedStatus.Status.Phase);
        var labelled = await k.CoreV1.PatchNamespacedPodAsync(new V1Patch("{\"metadata\":{\"labels\":{\"x\":\"y\"}},\"status\":{\"phase\":\"Failed\"}}", V1Patch.PatchType.MergePatch), pod.Name(), ns);
        Assert.Equal("Running", labelled.Status.Phase); // status is written only through /status
        var status = await k.AppsV1.ReadNamespacedDeploymentStatusAsync("web", ns);
        Assert.Equal(4, status.Spec.Replicas);

        // a strategic merge patch of the template merges containers by name: a new ReplicaSet
        var rolled = await k.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(
            "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox:2\"}]}}}}", V1Patch.PatchType.StrategicMergePatch), "web", ns);
        Assert.Equal("busybox:2", Assert.Single(rolled.Spec.Template.Spec.Containers).Image);
        Assert.Equal(80, rolled.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort);
        await Eventually(() => k.AppsV1.ListNamespacedReplicaSetAsync(ns, labelSelector: "app=web"), r => r.Items.Count == 2, "a second ReplicaSet");

        // the same deployment applied server-side by a manager
        var ssa = await k.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(
            "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"api\",\"labels\":{\"app\":\"api\"}},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"api\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"api\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1\"}]}}}}",
            V1Patch.PatchType.ApplyPatch), "api", ns, fieldManager: "cs-apply");
        Assert.Equal(1, ssa.Spec.Replicas);
        var invalid = await StatusOf(() => k.AppsV1.CreateNamespacedDeploymentAsync(new V1Deployment { Metadata = new V1ObjectMeta { Name = "nospec" }, Spec = new V1DeploymentSpec { Template = new V1PodTemplateSpec() } }, ns), HttpStatusCode.UnprocessableEntity);
        Assert.Equal("Invalid", invalid.Reason);
        Assert.NotEmpty(invalid.Details.Causes);

        // services get a cluster IP
        var svc = await k.CoreV1.CreateNamespacedServiceAsync(new V1Service
        {
            Metadata = new V1ObjectMeta { Name = "web" },
            Spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = "web" }, Ports = [new V1ServicePort { Port = 80, TargetPort = 8080 }] },
        }, ns);
        Assert.StartsWith("10.43.", svc.Spec.ClusterIP);
        Assert.Equal("8080", svc.Spec.Ports[0].TargetPort.Value);
        Assert.Single((await k.CoreV1.ListNamespacedServiceAsync(ns)).Items);

        // foreground deletion: the deployment stays (with its finalizer) until its ReplicaSets and pods are gone
        var deleting = await k.AppsV1.DeleteNamespacedDeploymentAsync("web", ns, propagationPolicy: "Foreground");
        Assert.NotNull(deleting);
        await Eventually(async () =>
        {
            try { await k.AppsV1.ReadNamespacedDeploymentAsync("web", ns); return false; }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound) { return true; }
        }, gone => gone, "the deployment to go");
        Assert.Empty((await k.CoreV1.ListNamespacedPodAsync(ns, labelSelector: "app=web")).Items);
        Assert.Empty((await k.AppsV1.ListNamespacedReplicaSetAsync(ns, labelSelector: "app=web")).Items);

        await k.CoreV1.DeleteNamespaceAsync(ns);
        await Eventually(async () =>
        {
            try { await k.CoreV1.ReadNamespaceAsync(ns); return false; }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound) { return true; }
        }, gone => gone, "the namespace to go");
    }

    [Fact]
    public async Task Version_and_discovery()
    {
        using var k = Client();
        var v = await k.Version.GetCodeAsync();
        Assert.Equal("1", v.Major);
        var groups = await k.Apis.GetAPIVersionsAsync();
        Assert.Contains(groups.Groups, g => g.Name == "apps");
        var core = await k.CoreV1.GetAPIResourcesAsync();
        Assert.Contains(core.Resources, r => r.Name == "pods" && r.Namespaced);
        var nodes = await k.CoreV1.ListNodeAsync();
        Assert.NotNull(nodes.Items);
        _ = JsonSerializer.Serialize(v);
    }

    static long RssKiB(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    /// <summary>
    /// 2,000 watches from one client (HTTP/2 streams over a few connections, as this client opens them).
    /// The client's List…WithHttpMessagesAsync(watch: true) completes only when the first event line
    /// arrives (its LineSeparatedHttpContent peeks that line), not when the headers do, so a watch on an
    /// empty namespace never "opens" (against Kubernetes too): the namespace holds one object, whose ADDED
    /// event (watch without resourceVersion: the current state first) is every watch's first line.
    /// </summary>
    [Fact]
    public async Task Two_thousand_watches_from_one_client_bounded_memory_server_responsive()
    {
        using var k = Client();
        var ns = await NewNamespaceAsync(k, "cs-many-watches");
        await k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "seed" } }, ns);
        var pid = s.Pid ?? throw new InvalidOperationException("the server is not running");
        var before = RssKiB(pid);
        using var cts = new CancellationTokenSource();
        var watches = new List<Task<HttpOperationResponse<V1ConfigMapList>>>();
        for (var i = 0; i < 2000; i++)
            watches.Add(k.CoreV1.ListNamespacedConfigMapWithHttpMessagesAsync(ns, watch: true, cancellationToken: cts.Token));
        var opened = await Task.WhenAll(watches).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.All(opened, r => Assert.Equal(HttpStatusCode.OK, r.Response.StatusCode));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await k.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "while-watched" } }, ns);
        Assert.Equal("while-watched", (await k.CoreV1.ReadNamespacedConfigMapAsync("while-watched", ns)).Name());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"a write and a read with 2,000 watches open took {sw.Elapsed}");
        var during = RssKiB(pid);
        Assert.True(during - before < 300 * 1024, $"2,000 watches grew the server from {before} KiB to {during} KiB");
        // the new object reaches the watches (21 of them, spread over all 2,000): seed, then while-watched
        using var read = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        for (var i = 0; i < opened.Length; i += opened.Length / 20 - 1)
        {
            var names = new List<(WatchEventType, string)>();
            await foreach (var (type, cm) in Task.FromResult(opened[i]).WatchAsync<V1ConfigMap, V1ConfigMapList>(cancellationToken: read.Token))
            {
                if (cm.Name() == "kube-root-ca.crt") continue; // every namespace's CA bundle, published by the server
                names.Add((type, cm.Name()));
                if (names.Count == 2) break;
            }
            Assert.Equal([(WatchEventType.Added, "seed"), (WatchEventType.Added, "while-watched")], names);
        }
        cts.Cancel();
        foreach (var r in opened) r.Dispose();
        // the server stays up and serves after the client went away
        Assert.True(s.Running);
        await Task.Delay(500);
        Assert.Contains((await k.CoreV1.ListNamespacedConfigMapAsync(ns)).Items, c => c.Name() == "while-watched");
    }
}
