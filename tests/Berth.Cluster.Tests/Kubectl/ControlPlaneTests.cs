using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cluster.Api;
using Berth.Cluster.Tests.Api;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// The test plays the nodes' kubelets through the API: it registers Nodes (capacity, allocatable,
/// Ready), marks the pods the server's scheduler bound to them Running and Ready (with a pod IP)
/// through the status subresource, and removes pods that are being deleted (grace period 0).
/// </summary>
public sealed class FakeKubelets : IAsyncDisposable
{
    readonly HttpClient _http;
    readonly CancellationTokenSource _stop = new();
    readonly Task _loop;
    int _ip;
    public volatile bool Paused;

    public FakeKubelets(BerthServer s)
    {
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(s.DataDir, "ca.crt")));
        var h = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert is not null && cert.Issuer == ca.Subject };
        _http = new HttpClient(h) { BaseAddress = new Uri($"https://127.0.0.1:{s.Port}"), Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(s.DataDir, "token")).Trim());
        _loop = Task.Run(LoopAsync);
    }

    public async Task<(int Code, JsonObject Body)> SendAsync(HttpMethod m, string path, JsonNode? body = null, string type = "application/json")
    {
        using var req = new HttpRequestMessage(m, path);
        if (body is not null) req.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, MediaTypeHeaderValue.Parse(type));
        using var resp = await _http.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        return ((int)resp.StatusCode, text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!.AsObject());
    }

    public async Task RegisterNodeAsync(string name, string cpu = "4", string memory = "32Gi")
    {
        var resources = new JsonObject { ["cpu"] = cpu, ["memory"] = memory, ["pods"] = "110" };
        var (code, body) = await SendAsync(HttpMethod.Post, "/api/v1/nodes", new JsonObject
        {
            ["apiVersion"] = "v1", ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = new JsonObject { ["kubernetes.io/hostname"] = name } },
            ["status"] = new JsonObject
            {
                ["capacity"] = resources.DeepClone(), ["allocatable"] = resources,
                ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "True", ["reason"] = "KubeletReady", ["message"] = "kubelet is posting ready status", ["lastHeartbeatTime"] = Json.Now(), ["lastTransitionTime"] = Json.Now() }),
                ["addresses"] = new JsonArray(new JsonObject { ["type"] = "InternalIP", ["address"] = "127.0.0.1" }),
            },
        });
        Assert.True(code is 201 or 409, $"register node {name}: {code} {body}");
    }

    async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                if (!Paused) await SyncAsync();
                await Task.Delay(100, _stop.Token);
            }
            catch (OperationCanceledException) { return; }
            catch (HttpRequestException) { }
        }
    }

    async Task SyncAsync()
    {
        var (code, list) = await SendAsync(HttpMethod.Get, "/api/v1/pods");
        if (code != 200) return;
        foreach (var pod in list.Objects("items"))
        {
            var ns = pod.Str("metadata.namespace"); var name = pod.Str("metadata.name");
            if (string.IsNullOrEmpty(pod.Str("spec.nodeName"))) continue;
            if (pod.Str("metadata.deletionTimestamp") is not null)
            {
                await SendAsync(HttpMethod.Delete, $"/api/v1/namespaces/{ns}/pods/{name}?gracePeriodSeconds=0");
                continue;
            }
            if (pod.Str("status.phase") == "Running") continue;
            var n = Interlocked.Increment(ref _ip);
            var now = Json.Now();
            JsonObject Cond(string t) => new() { ["type"] = t, ["status"] = "True", ["lastTransitionTime"] = now };
            var containers = new JsonArray(pod.Objects("spec.containers").Select(c => (JsonNode?)new JsonObject
            {
                ["name"] = c.Str("name"), ["image"] = c.Str("image"), ["imageID"] = "", ["ready"] = true, ["restartCount"] = 0, ["started"] = true,
                ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = now } },
            }).ToArray());
            await SendAsync(HttpMethod.Patch, $"/api/v1/namespaces/{ns}/pods/{name}/status", new JsonObject
            {
                ["status"] = new JsonObject
                {
                    ["phase"] = "Running", ["podIP"] = $"10.244.{n / 250}.{n % 250 + 1}", ["hostIP"] = "127.0.0.1", ["startTime"] = now,
                    ["conditions"] = new JsonArray(Cond("PodScheduled"), Cond("Initialized"), Cond("ContainersReady"), Cond("Ready")),
                    ["containerStatuses"] = containers,
                },
            }, "application/merge-patch+json");
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop;
        _http.Dispose();
    }
}

/// <summary>`berth server` runs the scheduler and the controllers: the usual kubectl workflow, end to end.</summary>
public class ControlPlaneTests(BerthServer s) : IClassFixture<BerthServer>
{
    const string Manifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: NS
        spec:
          replicas: 3
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
              - name: web
                image: nginx:1.25
                ports: [{containerPort: 80}]
                resources:
                  requests: {cpu: 100m, memory: 64Mi}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: NS
        spec:
          selector: {app: web}
          ports: [{port: 80, targetPort: 80}]
        """;

    static void Ok(BerthServer.Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    async Task<JsonObject> Json(string args)
    {
        var r = await s.Kubectl(args + " -o json");
        Ok(r);
        return JsonNode.Parse(r.Stdout)!.AsObject();
    }

    async Task<JsonObject> Until(string args, Func<JsonObject, bool> ok, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonObject? last = null;
        while (DateTime.UtcNow < deadline)
        {
            var r = await s.Kubectl(args + " -o json");
            if (r.ExitCode == 0)
            {
                last = JsonNode.Parse(r.Stdout)!.AsObject();
                if (ok(last)) return last;
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"timed out waiting for {what}; last: {last}");
    }

    static List<JsonObject> Live(JsonObject list) => list.Objects("items").Where(p => p.Str("metadata.deletionTimestamp") is null).ToList();

    async Task RegisterNodesAsync(FakeKubelets k)
    {
        foreach (var n in new[] { "node-a", "node-b", "node-c" }) await k.RegisterNodeAsync(n);
    }

    [Fact]
    public async Task Deployment_and_service_roll_out_scale_update_undo_and_cascade()
    {
        await using var kubelets = new FakeKubelets(s);
        await RegisterNodesAsync(kubelets);
        Ok(await s.Kubectl("create namespace rollout"));
        var apply = await s.Kubectl("apply -f -", Manifest.Replace("NS", "rollout"));
        Ok(apply);
        Assert.Contains("deployment.apps/web created", apply.Stdout);

        // ReplicaSet and pods made by the controllers, bound by the scheduler.
        var pods = await Until("-n rollout get pods -l app=web", l => Live(l).Count == 3 && Live(l).All(p => p.Str("spec.nodeName") is { Length: > 0 }), "3 bound pods");
        Assert.All(Live(pods), p => Assert.StartsWith("node-", p.Str("spec.nodeName")));
        var rs = await Json("-n rollout get rs -l app=web");
        Assert.Single(rs.Objects("items"));
        Assert.Equal("Deployment", rs.Objects("items").First().Objects("metadata.ownerReferences").First().Str("kind"));

        var status = await s.Kubectl("-n rollout rollout status deployment/web --timeout=90s", timeoutSeconds: 120);
        Ok(status);
        Assert.Contains("successfully rolled out", status.Stdout);

        // Endpoints and the EndpointSlice list the ready pods' IPs.
        pods = await Json("-n rollout get pods -l app=web");
        var ips = Live(pods).Select(p => p.Str("status.podIP")!).Order().ToList();
        Assert.Equal(3, ips.Count);
        var ep = await Until("-n rollout get endpoints web", e => e.Objects("subsets").SelectMany(x => x.Objects("addresses")).Count() == 3, "3 endpoint addresses");
        Assert.Equal(ips, ep.Objects("subsets").SelectMany(x => x.Objects("addresses")).Select(a => a.Str("ip")!).Order().ToList());
        var slices = await Json("-n rollout get endpointslices -l kubernetes.io/service-name=web");
        var sliceIps = slices.Objects("items").SelectMany(x => x.Objects("endpoints")).Where(e => e["conditions"]?["ready"]?.GetValue<bool>() == true)
            .SelectMany(e => e.Arr("addresses").Select(a => a!.GetValue<string>())).Order().ToList();
        Assert.Equal(ips, sliceIps);

        // Scale.
        Ok(await s.Kubectl("-n rollout scale deployment/web --replicas=5"));
        Ok(await s.Kubectl("-n rollout rollout status deployment/web --timeout=90s", timeoutSeconds: 120));
        await Until("-n rollout get pods -l app=web", l => Live(l).Count == 5, "5 pods");

        // Image change: a new ReplicaSet takes over; undo goes back.
        Ok(await s.Kubectl("-n rollout set image deployment/web web=nginx:1.26"));
        Ok(await s.Kubectl("-n rollout rollout status deployment/web --timeout=90s", timeoutSeconds: 120));
        pods = await Until("-n rollout get pods -l app=web", l => Live(l).Count == 5 && Live(l).All(p => p.At("spec.containers")![0]!.Str("image") == "nginx:1.26"), "5 pods on nginx:1.26");
        rs = await Json("-n rollout get rs -l app=web");
        Assert.Equal(2, rs.Objects("items").Count());
        Assert.Equal([0L, 5L], rs.Objects("items").Select(r => r.Long("spec.replicas") ?? 0).Order().ToList());
        var history = await s.Kubectl("-n rollout rollout history deployment/web");
        Ok(history);
        Assert.Matches(@"(?m)^1\s", history.Stdout);
        Assert.Matches(@"(?m)^2\s", history.Stdout);
        Ok(await s.Kubectl("-n rollout rollout undo deployment/web"));
        Ok(await s.Kubectl("-n rollout rollout status deployment/web --timeout=90s", timeoutSeconds: 120));
        await Until("-n rollout get pods -l app=web", l => Live(l).Count == 5 && Live(l).All(p => p.At("spec.containers")![0]!.Str("image") == "nginx:1.25"), "5 pods back on nginx:1.25");

        // Cascading delete: the ReplicaSets and the pods go with the Deployment.
        Ok(await s.Kubectl("-n rollout delete deployment web"));
        await Until("-n rollout get rs", l => !l.Objects("items").Any(), "no replicasets");
        await Until("-n rollout get pods", l => !l.Objects("items").Any(), "no pods");
    }

    const string Sets = """
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent, namespace: sets}
        spec:
          selector: {matchLabels: {app: agent}}
          template:
            metadata: {labels: {app: agent}}
            spec:
              containers: [{name: agent, image: "busybox:1"}]
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db, namespace: sets}
        spec:
          replicas: 2
          serviceName: db
          selector: {matchLabels: {app: db}}
          template:
            metadata: {labels: {app: db}}
            spec:
              containers: [{name: db, image: "busybox:1"}]
          volumeClaimTemplates:
          - metadata: {name: data}
            spec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 1Gi}}
        """;

    [Fact]
    public async Task DaemonSet_and_StatefulSet_rollout_status_history_undo_and_claims()
    {
        await using var kubelets = new FakeKubelets(s);
        await RegisterNodesAsync(kubelets);
        Ok(await s.Kubectl("create namespace sets"));
        Ok(await s.Kubectl("apply -f -", Sets));
        foreach (var w in new[] { "daemonset/agent", "statefulset/db" })
        {
            var st = await s.Kubectl($"-n sets rollout status {w} --timeout=90s", timeoutSeconds: 120);
            Ok(st);
            Assert.Contains(w.StartsWith("daemon") ? "daemon set \"agent\" successfully rolled out" : "partitioned roll out complete: 2 new pods have been updated", st.Stdout);
        }
        // the StatefulSet's claims, one per pod
        var claims = await Until("-n sets get pvc", l => l.Objects("items").Count() == 2, "2 claims");
        Assert.Equal(["data-db-0", "data-db-1"], claims.Objects("items").Select(c => c.Str("metadata.name")!).Order());
        Assert.All(claims.Objects("items"), c => Assert.Equal("Pending", c.Str("status.phase")));
        var pvcTable = await s.Kubectl("-n sets get pvc");
        Ok(pvcTable);
        Assert.Matches(@"data-db-0\s+Pending", pvcTable.Stdout);
        Assert.Contains(claims.Objects("items"), c => c.Str("metadata.labels.app") == "db");

        // a new template, then back to the first with rollout undo: each step is a ControllerRevision
        foreach (var w in new[] { "daemonset/agent", "statefulset/db" })
        {
            var kind = w.Split('/')[0];
            Ok(await s.Kubectl($"-n sets set image {w} *=busybox:2"));
            Ok(await s.Kubectl($"-n sets rollout status {w} --timeout=90s", timeoutSeconds: 120));
            var history = await s.Kubectl($"-n sets rollout history {w}");
            Ok(history);
            Assert.Matches(@"REVISION\s+CHANGE-CAUSE", history.Stdout);
            Assert.Matches(@"(?m)^1\s+<none>", history.Stdout);
            Assert.Matches(@"(?m)^2\s+<none>", history.Stdout);
            var rev1 = await s.Kubectl($"-n sets rollout history {w} --revision=1");
            Ok(rev1);
            Assert.Contains("busybox:1", rev1.Stdout);
            var undo = await s.Kubectl($"-n sets rollout undo {w}");
            Ok(undo);
            Assert.Contains("rolled back", undo.Stdout);
            var obj = await Json($"-n sets get {w}");
            Assert.Equal("busybox:1", obj.Objects("spec.template.spec.containers").First().Str("image"));
            Ok(await s.Kubectl($"-n sets rollout status {w} --timeout=90s", timeoutSeconds: 120));
            // undo renumbers the first template as revision 3
            history = await s.Kubectl($"-n sets rollout history {w}");
            Assert.Matches(@"(?m)^2\s+<none>", history.Stdout);
            Assert.Matches(@"(?m)^3\s+<none>", history.Stdout);
            Assert.DoesNotMatch(@"(?m)^1\s+<none>", history.Stdout);
            var revisions = await Json($"-n sets get controllerrevisions -l controller-revision-hash");
            Assert.Contains(revisions.Objects("items"), r => r.Objects("metadata.ownerReferences").Any(o => o.Str("kind")!.Equals(kind, StringComparison.OrdinalIgnoreCase)));
        }
        var crTable = await s.Kubectl("-n sets get controllerrevisions");
        Ok(crTable);
        Assert.Matches(@"NAME\s+CONTROLLER\s+REVISION\s+AGE", crTable.Stdout);
        Assert.Matches(@"agent-\w+\s+daemonset.apps/agent\s+3", crTable.Stdout);
    }

    [Fact]
    public async Task Deleting_a_namespace_empties_it_and_refuses_new_content_meanwhile()
    {
        await using var kubelets = new FakeKubelets(s);
        await RegisterNodesAsync(kubelets);
        Ok(await s.Kubectl("create namespace doomed"));
        Ok(await s.Kubectl("apply -f -", Manifest.Replace("NS", "doomed")));
        Ok(await s.Kubectl("-n doomed create configmap settings --from-literal=a=b"));
        // A pod with a finalizer keeps the namespace in Terminating until the test lets it go.
        Ok(await s.Kubectl("apply -f -", "apiVersion: v1\nkind: Pod\nmetadata: {name: held, namespace: doomed, finalizers: [test.berth.dev/hold]}\nspec:\n  containers: [{name: c, image: busybox}]\n"));
        await Until("-n doomed get pods", l => Live(l).Count == 4 && Live(l).All(p => p.Str("status.phase") == "Running"), "4 running pods");

        Ok(await s.Kubectl("delete namespace doomed --wait=false"));
        var ns = await Until("get namespace doomed", n => n.Str("status.phase") == "Terminating", "Terminating");
        Assert.Contains("kubernetes", ns.Arr("spec.finalizers").Select(f => f!.GetValue<string>()));
        await Until("-n doomed get deploy,rs,svc,configmap", l => !l.Objects("items").Any(), "namespace content gone");
        var refused = await s.Kubectl("-n doomed create configmap late --from-literal=a=b");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("forbidden", refused.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("unable to create new content in namespace doomed because it is being terminated", refused.Stderr);
        Assert.Equal(0, (await s.Kubectl("get namespace doomed")).ExitCode);

        Ok(await s.Kubectl("-n doomed patch pod held --type=json -p '[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]'"));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        BerthServer.Result r;
        while ((r = await s.Kubectl("get namespace doomed")).ExitCode == 0 && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.Contains("NotFound", r.Stderr);
    }

    [Fact]
    public async Task A_pod_that_fits_nowhere_says_why_and_leases_show_the_leaders()
    {
        await using var kubelets = new FakeKubelets(s);
        await RegisterNodesAsync(kubelets);
        Ok(await s.Kubectl("create namespace big"));
        Ok(await s.Kubectl("apply -f -", "apiVersion: v1\nkind: Pod\nmetadata: {name: huge, namespace: big}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources: {requests: {cpu: \"64\"}}\n"));
        var nodes = (await Json("get nodes")).Objects("items").Count();
        var pod = await Until("-n big get pod huge", p => p.Objects("status.conditions").Any(c => c.Str("type") == "PodScheduled" && c.Str("status") == "False"), "PodScheduled=False");
        var cond = pod.Objects("status.conditions").First(c => c.Str("type") == "PodScheduled");
        Assert.Equal("Unschedulable", cond.Str("reason"));
        Assert.StartsWith($"0/{nodes} nodes are available: {nodes} Insufficient cpu.", cond.Str("message"));
        Assert.True(string.IsNullOrEmpty(pod.Str("spec.nodeName")));
        var events = await Until("-n big get events", l => l.Objects("items").Any(e => e.Str("reason") == "FailedScheduling"), "FailedScheduling event");
        var ev = events.Objects("items").First(e => e.Str("reason") == "FailedScheduling");
        Assert.Equal("huge", ev.Str("involvedObject.name"));
        Assert.Equal("Warning", ev.Str("type"));
        Assert.StartsWith($"0/{nodes} nodes are available", ev.Str("message"));
        var describe = await s.Kubectl("-n big describe pod huge");
        Ok(describe);
        Assert.Contains("FailedScheduling", describe.Stdout);

        var leases = await s.Kubectl("-n kube-system get lease");
        Ok(leases);
        Assert.Matches(@"(?m)^kube-scheduler\s+\S+", leases.Stdout);
        Assert.Matches(@"(?m)^kube-controller-manager\s+\S+", leases.Stdout);
        var lease = await Json("-n kube-system get lease kube-scheduler");
        Assert.False(string.IsNullOrEmpty(lease.Str("spec.holderIdentity")));
        Assert.Equal(15L, lease.Long("spec.leaseDurationSeconds"));
    }

    [Fact]
    public async Task Disabled_scheduler_and_controllers_leave_pods_alone_and_take_no_lease()
    {
        var off = new BerthServer { ExtraArgs = ["--disable-scheduler", "--disable-controllers"] };
        await off.StartAsync();
        try
        {
            await using var kubelets = new FakeKubelets(off);
            await kubelets.RegisterNodeAsync("node-a");
            Ok(await off.Kubectl("apply -f -", Manifest.Replace("NS", "default")));
            Ok(await off.Kubectl("run lone --image=busybox --restart=Never"));
            await Task.Delay(3000);
            var pods = await off.Kubectl("get pods -o json");
            Ok(pods);
            var items = JsonNode.Parse(pods.Stdout)!.AsObject().Objects("items").ToList();
            Assert.Equal(["lone"], items.Select(p => p.Str("metadata.name")));       // no ReplicaSet made pods for the Deployment
            Assert.True(string.IsNullOrEmpty(items[0].Str("spec.nodeName")));           // nobody bound it
            Assert.Equal("No resources found in kube-system namespace.", (await off.Kubectl("-n kube-system get lease")).Stderr.Trim());
        }
        finally { await off.DisposeAsync(); }
    }

    [Fact]
    public async Task An_unknown_controller_name_is_one_line_and_leaves_nothing_behind()
    {
        var dir = Path.Combine(Path.GetTempPath(), "berth-bad-" + Guid.NewGuid().ToString("N"));
        var psi = new System.Diagnostics.ProcessStartInfo(BerthServer.Binary(), ["server", "--listen", $"127.0.0.1:{ApiFixture.FreePort()}", "--data-dir", dir, "--controllers", "replicaset,nope"])
        { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(1, p.ExitCode);
        Assert.Equal("berth server: --controllers: unknown controller \"nope\" (known: " + string.Join(", ", Berth.Cluster.ControlPlane.ControllerManager.All.Select(c => c.Name)) + ")", err.Trim());
        Assert.False(Directory.Exists(dir));
    }
}

