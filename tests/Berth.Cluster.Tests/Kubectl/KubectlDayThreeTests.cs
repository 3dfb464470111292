using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Cluster.Api;
using static Berth.Cluster.Tests.Kubectl.KubectlChecks;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// The third round of a kubectl user's day (after <see cref="KubectlDayTests"/> and
/// <see cref="KubectlDayTwoTests"/>): what kubectl's describers and printers read that the API server
/// itself fills in (a pod's QoS class and defaulted requests, the endpoints' order, events' wide columns,
/// counts and sources), and what a pod's kubelet streams answer while no kubelet listens. Each expected
/// line is what kubectl 1.32 prints against kube-apiserver + kube-controller-manager; the test plays the
/// kubelets through the API.
/// </summary>
public sealed class KubectlDayThreeTests(BerthServer s) : IClassFixture<BerthServer>
{
    const string Manifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: shop
          labels: {app: shop}
        spec:
          replicas: 3
          selector:
            matchLabels: {app: shop}
          template:
            metadata:
              labels: {app: shop}
            spec:
              containers:
              - name: app
                image: nginx:1.25
                ports:
                - containerPort: 8080
                resources:
                  requests: {cpu: 100m, memory: 64Mi}
                  limits: {memory: 128Mi}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: shop
        spec:
          selector: {app: shop}
          ports:
          - port: 80
            targetPort: 8080
        """;

    Task<BerthServer.Result> K(string args, string? stdin = null) => s.Kubectl(args, stdin);
    Task<JsonObject> Json(string args) => KubectlChecks.Json(s, args);
    Task<JsonObject> Until(string args, Func<JsonObject, bool> ok, string what) => KubectlChecks.Until(s, args, ok, what);

    /// <summary>The same two nodes in every test (a live <see cref="FakeKubelets"/> runs the pods of any node).</summary>
    async Task<FakeKubelets> KubeletsAsync()
    {
        var k = new FakeKubelets(s);
        foreach (var n in new[] { "d3-a", "d3-b" }) await k.RegisterNodeAsync(n);
        return k;
    }

    async Task DeployAsync(string ns)
    {
        Lines(await K($"create namespace {ns}"), $"namespace/{ns} created");
        Lines(await K($"-n {ns} apply -f -", Manifest), "deployment.apps/shop created", "service/shop created");
        Ok(await K($"-n {ns} rollout status deployment/shop --timeout=90s"));
        await Until($"-n {ns} get pods -l app=shop", l => Live(l).Count == 3 && Live(l).All(p => p.Str("status.phase") == "Running"), "3 running pods");
    }

    [Fact]
    public async Task Describe_pod_and_service_show_the_qos_class_defaulted_requests_and_sorted_endpoints()
    {
        await using var kubelets = await KubeletsAsync();
        await DeployAsync("d3-qos");

        // requests below limits: Burstable, as the API server classifies the pod when it is created
        var pod = Live(await Json("-n d3-qos get pods -l app=shop")).First();
        Assert.Equal("Burstable", pod.Str("status.qosClass"));
        var dp = await K($"-n d3-qos describe pod {pod.Str("metadata.name")}");
        Ok(dp);
        Assert.Equal("Burstable", Field(dp.Stdout, "QoS Class"));
        Assert.Contains("    Limits:\n      memory:  128Mi\n    Requests:\n      cpu:        100m\n      memory:     64Mi\n", dp.Stdout);

        // limits only: the requests default to them (on pods, not on templates) and the pod is Guaranteed
        Lines(await K("-n d3-qos run fixed --image=busybox --restart=Never --overrides={\"spec\":{\"containers\":[{\"name\":\"fixed\",\"image\":\"busybox\",\"resources\":{\"limits\":{\"cpu\":\"250m\",\"memory\":\"32Mi\"}}}]}}"), "pod/fixed created");
        Lines(await K("-n d3-qos get pod fixed -o jsonpath={.spec.containers[0].resources.requests.cpu}/{.spec.containers[0].resources.requests.memory}/{.status.qosClass}"), "250m/32Mi/Guaranteed");
        // a cpu limit only: requests defaulted, but no memory limit, so Burstable
        Lines(await K("-n d3-qos run half --image=busybox --restart=Never --overrides={\"spec\":{\"containers\":[{\"name\":\"half\",\"image\":\"busybox\",\"resources\":{\"limits\":{\"cpu\":\"1\"}}}]}}"), "pod/half created");
        Lines(await K("-n d3-qos get pod half -o jsonpath={.spec.containers[0].resources.requests.cpu}/{.status.qosClass}"), "1/Burstable");
        Lines(await K("-n d3-qos run bare --image=busybox --restart=Never"), "pod/bare created");
        Lines(await K("-n d3-qos get pod bare -o jsonpath={.status.qosClass}"), "BestEffort");

        // the endpoints as kube's endpoints controller stores them: addresses ordered by IP
        var ips = Live(await Json("-n d3-qos get pods -l app=shop")).Select(p => p.Str("status.podIP")!).Order(StringComparer.Ordinal).ToList();
        var ep = await Until("-n d3-qos get endpoints shop", o => o.Objects("subsets").SelectMany(x => x.Objects("addresses")).Count() == 3, "3 endpoint addresses");
        Assert.Equal(ips, ep.Objects("subsets").Single().Objects("addresses").Select(a => a.Str("ip")!).ToList());
        var ds = await K("-n d3-qos describe service shop");
        Ok(ds);
        Assert.Equal(string.Join(",", ips.Select(ip => ip + ":8080")), Field(ds.Stdout, "Endpoints"));
        Assert.Equal("8080/TCP", Field(ds.Stdout, "TargetPort"));
        var de = await K("-n d3-qos describe endpoints shop");
        Ok(de);
        Assert.Equal(string.Join(",", ips), Field(de.Stdout, "  Addresses"));
        Lines(await K("delete namespace d3-qos"), "namespace \"d3-qos\" deleted");
    }

    [Fact]
    public async Task Events_print_wide_columns_sources_and_repeat_counts()
    {
        await using var kubelets = await KubeletsAsync();
        await DeployAsync("d3-ev");

        // -o wide: kube's printEvent columns; the controllers' events name their component only
        var wide = await K("-n d3-ev get events -o wide --field-selector involvedObject.kind=Deployment");
        Ok(wide);
        Assert.Matches(@"^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+SUBOBJECT\s+SOURCE\s+MESSAGE\s+FIRST SEEN\s+COUNT\s+NAME$", Rows(wide.Stdout)[0]);
        var row = Assert.Single(Rows(wide.Stdout).Skip(1));
        Assert.Matches(@"^\d+s\s+Normal\s+ScalingReplicaSet\s+deployment/shop\s+deployment-controller\s+Scaled up replica set shop-\w+ from 0 to 3\s+\d+s\s+1\s+shop\.[0-9a-f]+$", row);
        // first/lastTimestamp are metav1.Time: whole seconds (the controllers' events and conditions)
        var times = await K("-n d3-ev get events --field-selector reason!=Scheduled -o jsonpath={range.items[*]}{.firstTimestamp}{\"\\n\"}{end}");
        Ok(times);
        Assert.All(Rows(times.Stdout), t => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", t));
        var conditionTimes = await K("-n d3-ev get deploy shop -o jsonpath={range.status.conditions[*]}{.lastUpdateTime}{\"\\n\"}{.lastTransitionTime}{\"\\n\"}{end}");
        Ok(conditionTimes);
        Assert.Equal(4, Rows(conditionTimes.Stdout).Length);
        Assert.All(Rows(conditionTimes.Stdout), t => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", t));

        // a pod that fits nowhere: each scheduling attempt repeats the same event, counted, not duplicated
        Lines(await K("-n d3-ev run huge --image=busybox --restart=Never --overrides={\"spec\":{\"containers\":[{\"name\":\"huge\",\"image\":\"busybox\",\"resources\":{\"requests\":{\"cpu\":\"64\"}}}]}}"), "pod/huge created");
        await Until("-n d3-ev get events --field-selector involvedObject.name=huge,reason=FailedScheduling", l => l.Objects("items").Any(), "the first FailedScheduling event");
        // a node update makes the scheduler try the pod again
        Ok(await K($"label node d3-a retry={DateTime.UtcNow.Ticks} --overwrite"));
        var ev = await Until("-n d3-ev get events --field-selector involvedObject.name=huge,reason=FailedScheduling", l => l.Objects("items").Any(e => e.Long("count") >= 2), "a repeated FailedScheduling event");
        Assert.Single(ev.Objects("items"));
        const string why = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod..";
        var dp = await K("-n d3-ev describe pod huge");
        Ok(dp);
        Assert.Matches($@"(?m)^  Warning  FailedScheduling  \d+s \(x\d+ over \d+s\)\s+default-scheduler  {Regex.Escape(why)}$", dp.Stdout);
        var forPod = await K("-n d3-ev events --for pod/huge");
        Ok(forPod);
        Assert.Matches(@"^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$", Rows(forPod.Stdout)[0]);
        Assert.Matches($@"^\d+s \(x\d+ over \d+s\)\s+Warning\s+FailedScheduling\s+Pod/huge\s+{Regex.Escape(why)}$", Assert.Single(Rows(forPod.Stdout).Skip(1)));
        var warnings = await K("-n d3-ev events --types=Warning");
        Ok(warnings);
        Assert.All(Rows(warnings.Stdout).Skip(1), l => Assert.Matches(@"\s+Warning\s+FailedScheduling\s+Pod/huge\s+", l));
        var count = await K("-n d3-ev get events --field-selector involvedObject.name=huge -o wide --no-headers");
        Ok(count);
        Assert.Matches(@"^\d+s\s+Warning\s+FailedScheduling\s+pod/huge\s+default-scheduler, default-scheduler\s+0/2 nodes .*\s+\d+s\s+[2-9]\s+huge\.[0-9a-f]+$", Assert.Single(Rows(count.Stdout)));
        Lines(await K("delete namespace d3-ev"), "namespace \"d3-ev\" deleted");
    }

    static int ClosedPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Kubelet_streams_dial_the_nodes_kubelet_and_say_what_kube_apiserver_says()
    {
        await using var kubelets = await KubeletsAsync();
        Lines(await K("create namespace d3-kl"), "namespace/d3-kl created");
        // the node's kubelet port (daemonEndpoints), where nothing listens
        var port = ClosedPort();
        Ok(await K($"patch node d3-a --subresource=status --type=merge -p {{\"status\":{{\"daemonEndpoints\":{{\"kubeletEndpoint\":{{\"Port\":{port}}}}}}}}}"));
        Lines(await K("-n d3-kl run one --image=busybox --restart=Never --overrides={\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"d3-a\"}}}"), "pod/one created");
        await Until("-n d3-kl get pod one", p => p.Str("status.phase") == "Running", "pod one running");

        FailsWith(await K("-n d3-kl logs one"),
            $"Error from server: Get \"https://127.0.0.1:{port}/containerLogs/d3-kl/one/one\": dial tcp 127.0.0.1:{port}: connect: connection refused");
        FailsWith(await K("-n d3-kl logs one --tail=5 --timestamps"),
            $"Error from server: Get \"https://127.0.0.1:{port}/containerLogs/d3-kl/one/one?tailLines=5&timestamps=true\": dial tcp 127.0.0.1:{port}: connect: connection refused");
        FailsWith(await K("-n d3-kl logs one -c nope"), "error: container nope is not valid for pod one");
        var exec = await K("-n d3-kl exec one -- ls");
        Assert.Equal(1, exec.ExitCode);
        Assert.Equal($"Error from server: error dialing backend: dial tcp 127.0.0.1:{port}: connect: connection refused\n", exec.Stderr);
        var pf = await K("-n d3-kl port-forward pod/one 0:80");
        Assert.Equal(1, pf.ExitCode);
        Assert.EndsWith($"error: error upgrading connection: error dialing backend: dial tcp 127.0.0.1:{port}: connect: connection refused\n", pf.Stderr);

        // something answers on that port (not a kubelet Berth can speak to): one line, 503
        using var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        FailsWith(await K("-n d3-kl logs one"),
            $"Error from server (ServiceUnavailable): cannot reach the kubelet of node \"d3-a\" at 127.0.0.1:{port} for pod \"d3-kl/one\": Berth has no node agent serving logs yet");
        listener.Stop();
        Lines(await K("delete namespace d3-kl"), "namespace \"d3-kl\" deleted");
    }
}
