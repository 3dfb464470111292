using System.Diagnostics;
using Berth.Cluster.Tests.Kubectl;

namespace Berth.Cluster.Clients.Tests;

/// <summary>
/// Debian's python3-kubernetes (the official Python client) against `out/berth server`: a script the
/// test writes to a temporary directory, run by the system python3 with the server's kubeconfig.
/// </summary>
public sealed class PythonClientTests(BerthServer s) : IClassFixture<BerthServer>
{
    const string Script = """
        import sys, time
        from kubernetes import client, config, watch
        from kubernetes.client.rest import ApiException

        config.load_kube_config(sys.argv[1])
        ns = sys.argv[2]
        core = client.CoreV1Api()
        apps = client.AppsV1Api()

        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        print("namespace", ns in [n.metadata.name for n in core.list_namespace().items])

        dep = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="py", labels={"app": "py"}),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels={"app": "py"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "py"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1", ports=[client.V1ContainerPort(container_port=80)])]))))
        created = apps.create_namespaced_deployment(ns, dep)
        print("created", created.metadata.name, created.metadata.creation_timestamp.year > 2000, created.spec.strategy.type)

        w = watch.Watch()
        seen = set()
        for ev in w.stream(core.list_namespaced_pod, ns, label_selector="app=py", timeout_seconds=30):
            if ev["type"] == "ADDED":
                seen.add(ev["object"].metadata.name)
            if len(seen) >= 2:
                w.stop()
        print("watched", len(seen))

        pods = core.list_namespaced_pod(ns, label_selector="app=py")
        print("pods", len(pods.items), all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods.items))
        print("other", len(core.list_namespaced_pod(ns, label_selector="app=other").items))
        page = core.list_namespaced_pod(ns, limit=1)
        print("page", len(page.items), page.metadata._continue is not None)

        patched = apps.patch_namespaced_deployment("py", ns, {"metadata": {"labels": {"tier": "web"}}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}})
        print("patched", patched.metadata.labels["tier"], patched.spec.template.spec.containers[0].image, len(patched.spec.template.spec.containers), patched.spec.template.spec.containers[0].ports[0].container_port)

        scaled = apps.patch_namespaced_deployment_scale("py", ns, {"spec": {"replicas": 3}})
        print("scaled", scaled.spec.replicas)
        sc = apps.read_namespaced_deployment_scale("py", ns)
        print("scale", sc.spec.replicas, sc.status.selector)
        rv = apps.read_namespaced_deployment("py", ns).metadata.resource_version

        for ev in w.stream(apps.list_namespaced_deployment, ns, timeout_seconds=5):
            print("deployment", ev["type"], ev["object"].metadata.name, ev["object"].spec.replicas)
            break

        start = time.time()
        n = sum(1 for _ in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=2))
        print("quiet watch", n, time.time() - start < 15)

        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"}))
        try:
            core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"}))
        except ApiException as e:
            print("conflict", e.status, e.reason)
        try:
            core.read_namespaced_config_map("missing", ns)
        except ApiException as e:
            print("notfound", e.status)

        svc = core.create_namespaced_service(ns, client.V1Service(metadata=client.V1ObjectMeta(name="py"), spec=client.V1ServiceSpec(selector={"app": "py"}, ports=[client.V1ServicePort(port=80, target_port=8080)])))
        print("service", svc.spec.cluster_ip.startswith("10.43."), svc.spec.ports[0].target_port)

        deadline = time.time() + 30
        while time.time() < deadline and len(core.list_namespaced_pod(ns, label_selector="app=py").items) < 3:
            time.sleep(0.2)
        evs = core.list_namespaced_event(ns)
        print("events", len(evs.items) > 0, all(e.involved_object.name for e in evs.items))

        st = apps.delete_namespaced_deployment("py", ns, propagation_policy="Foreground")
        deadline = time.time() + 60
        gone = False
        while time.time() < deadline and not gone:
            try:
                apps.read_namespaced_deployment("py", ns)
                time.sleep(0.2)
            except ApiException as e:
                gone = e.status == 404
        print("deleted", gone, len(core.list_namespaced_pod(ns, label_selector="app=py").items), len(apps.list_namespaced_replica_set(ns).items))
        core.delete_namespace(ns)
        print("done")
        """;

    /// <summary>List at a resourceVersion, watch from one with a timeout, and delete a collection by label.</summary>
    const string CollectionScript = """
        import sys, time
        from kubernetes import client, config, watch

        config.load_kube_config(sys.argv[1])
        ns = sys.argv[2]
        core = client.CoreV1Api()
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

        def pod(name, app):
            return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels={"app": app}),
                                spec=client.V1PodSpec(node_selector={"none": "x"}, containers=[client.V1Container(name="c", image="busybox:1")]))

        for i in range(3):
            core.create_namespaced_pod(ns, pod("bulk-%d" % i, "bulk"))
        core.create_namespaced_pod(ns, pod("keep", "keep"))
        listed = core.list_namespaced_pod(ns, resource_version="0")
        print("listed", len(listed.items), int(listed.metadata.resource_version) > 0)
        rv = core.list_namespaced_pod(ns).metadata.resource_version

        st = core.delete_collection_namespaced_pod(ns, label_selector="app=bulk")
        print("deleted collection", st.kind)
        print("left", sorted(p.metadata.name for p in core.list_namespaced_pod(ns).items))

        w = watch.Watch()
        events = []
        start = time.time()
        for ev in w.stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=3):
            events.append((ev["type"], ev["object"].metadata.name))
        # (the scheduler may also mark the unschedulable pods: MODIFIED events are not counted)
        print("watched from rv", sorted(e for e in events if e[0] != "MODIFIED"))
        print("timed out", time.time() - start < 20)
        core.delete_namespace(ns)
        print("done")
        """;

    [Fact]
    public async Task List_at_a_version_watch_from_one_and_delete_a_collection_by_label()
    {
        var lines = await RunAsync(CollectionScript, "py-coll");
        Assert.Equal([
            "listed 4 True",
            "deleted collection PodList",
            "left ['keep']",
            "watched from rv [('DELETED', 'bulk-0'), ('DELETED', 'bulk-1'), ('DELETED', 'bulk-2')]",
            "timed out True",
            "done",
        ], lines);
    }

    async Task<string[]> RunAsync(string scriptText, string ns)
    {
        var dir = Directory.CreateTempSubdirectory("berth-py-");
        try
        {
            var script = Path.Combine(dir.FullName, "client.py");
            await File.WriteAllTextAsync(script, scriptText);
            var psi = new ProcessStartInfo("/usr/bin/python3", [script, s.Kubeconfig, ns]) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.Environment["HOME"] = dir.FullName;
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(180));
            try { await p.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { p.Kill(); throw new TimeoutException($"the python client did not finish: {await stdout}"); }
            var output = await stdout;
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}\n{output}\n{await stderr}");
            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public async Task Deployment_pods_watch_patch_scale_and_foreground_delete()
    {
        var lines = await RunAsync(Script, "py-e2e");
        Assert.Equal([
            "namespace True",
            "created py True RollingUpdate",
            "watched 2",
            "pods 2 True",
            "other 0",
            "page 1 True",
            "patched web busybox:2 1 80",
            "scaled 3",
            "scale 3 app=py",
            "deployment ADDED py 3",
            "quiet watch 0 True",
            "conflict 409 Conflict",
            "notfound 404",
            "service True 8080",
            "events True True",
            "deleted True 0 0",
            "done",
        ], lines);
    }
}
