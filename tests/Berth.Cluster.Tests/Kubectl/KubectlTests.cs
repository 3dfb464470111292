using System.Text.Json.Nodes;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>The real kubectl (1.32) against `out/berth server` on SQLite (the default store).</summary>
public sealed class KubectlTests(BerthServer s) : KubectlContract(s), IClassFixture<BerthServer>;

/// <summary>The same kubectl transcripts against `berth server --datastore-endpoint etcd://…`.</summary>
public sealed class EtcdKubectlTests(EtcdBerthServer s) : KubectlContract(s), IClassFixture<EtcdBerthServer>;

/// <summary>What the real kubectl (1.32) does against `out/berth server`, whatever its store.</summary>
public abstract class KubectlContract(BerthServer s)
{
    const string Manifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: shop
          labels: {app: web}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
              - name: web
                image: nginx:1.25
                ports:
                - containerPort: 80
                env:
                - {name: MODE, value: "one"}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: shop
        spec:
          selector: {app: web}
          ports:
          - port: 80
            targetPort: 80
        """;

    static void Ok(BerthServer.Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    async Task<JsonObject> GetJson(string args)
    {
        var r = await s.Kubectl(args + " -o json");
        Ok(r);
        return JsonNode.Parse(r.Stdout)!.AsObject();
    }

    async Task EnsureShopAsync()
    {
        var r = await s.Kubectl("get ns shop");
        if (r.ExitCode != 0) Ok(await s.Kubectl("apply -f -", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"));
    }

    [Fact]
    public async Task Apply_twice_get_and_output_formats()
    {
        await EnsureShopAsync();
        var first = await s.Kubectl("apply -f -", Manifest);
        Ok(first);
        Assert.Contains("deployment.apps/web created", first.Stdout);
        Assert.Contains("service/web created", first.Stdout);
        var second = await s.Kubectl("apply -f -", Manifest.Replace("replicas: 2", "replicas: 3").Replace("value: \"one\"", "value: \"two\""));
        Ok(second);
        Assert.Contains("deployment.apps/web configured", second.Stdout);
        Assert.Contains("service/web unchanged", second.Stdout);
        var d = await GetJson("-n shop get deploy web");
        Assert.Equal(3L, d.Long("spec.replicas"));
        Assert.Equal("two", d.At("spec.template.spec.containers")![0]!["env"]![0].Str("value"));
        Assert.Equal(1, d.Arr("spec.template.spec.containers").Count);
        Assert.Equal(2L, d.Long("metadata.generation"));

        var table = await s.Kubectl("-n shop get deploy,svc");
        Ok(table);
        Assert.Matches(@"NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE", table.Stdout);
        // The in-server controllers may have created the pods by now (UP-TO-DATE); no kubelet makes them ready.
        Assert.Matches(@"deployment.apps/web\s+0/3\s+[0-3]\s+0\s+\d+s", table.Stdout);
        Assert.Matches(@"NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE", table.Stdout);
        Assert.Matches(@"service/web\s+ClusterIP\s+10\.43\.\d+\.\d+\s+<none>\s+80/TCP", table.Stdout);
        var yaml = await s.Kubectl("-n shop get svc web -o yaml");
        Ok(yaml);
        Assert.Contains("kind: Service", yaml.Stdout);
        Assert.Contains("targetPort: 80", yaml.Stdout);
    }

    [Fact]
    public async Task Label_annotate_patch_edit_scale_and_selectors()
    {
        await EnsureShopAsync();
        Ok(await s.Kubectl("-n shop create -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n"));
        Ok(await s.Kubectl("-n shop label cm settings tier=back"));
        Ok(await s.Kubectl("-n shop annotate cm settings owner=team-a"));
        Ok(await s.Kubectl("-n shop patch cm settings --type merge -p '{\"data\":{\"b\":\"2\"}}'"));
        Ok(await s.Kubectl("-n shop patch cm settings --type json -p '[{\"op\":\"remove\",\"path\":\"/data/a\"}]'"));
        Ok(await s.Kubectl("-n shop patch cm settings --type strategic -p '{\"data\":{\"c\":\"3\"}}'"));
        var editor = Path.Combine(s.DataDir, "editor.sh");
        File.WriteAllText(editor, "#!/bin/sh\nsed -i 's/c: \"3\"/c: \"edited\"/' \"$1\"\n");
        File.SetUnixFileMode(editor, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var edit = await s.Kubectl("-n shop edit cm settings", env: new Dictionary<string, string> { ["KUBE_EDITOR"] = editor });
        Ok(edit);
        Assert.Contains("edited", edit.Stdout);
        var cm = await GetJson("-n shop get cm settings");
        Assert.Equal("back", cm.Str("metadata.labels.tier"));
        Assert.Equal("team-a", cm.Str("metadata.annotations.owner"));
        Assert.Null(cm.Str("data.a"));
        Assert.Equal("2", cm.Str("data.b"));
        Assert.Equal("edited", cm.Str("data.c"));

        var sel = await s.Kubectl("-n shop get cm -l tier=back -o name");
        Ok(sel);
        Assert.Equal("configmap/settings", sel.Stdout.Trim());
        var none = await s.Kubectl("-n shop get cm -l 'tier notin (back)' -o name");
        Ok(none);
        Assert.DoesNotContain("settings", none.Stdout);

        Ok(await s.Kubectl("-n shop apply -f -", Manifest.Replace("namespace: shop\n", "namespace: shop\n").Split("---")[0]));
        Ok(await s.Kubectl("-n shop scale deploy web --replicas=5"));
        Assert.Equal(5L, (await GetJson("-n shop get deploy web")).Long("spec.replicas"));
    }

    [Fact]
    public async Task Pagination_with_chunk_size_and_api_resources()
    {
        Ok(await s.Kubectl("apply -f -", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: paged\n"));
        var docs = string.Join("---\n", Enumerable.Range(0, 7).Select(i => $"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p{i}\n  namespace: paged\n"));
        Ok(await s.Kubectl("apply -f -", docs));
        var r = await s.Kubectl("-n paged get cm --chunk-size=3 -o name -v=6");
        Ok(r);
        // every namespace also holds kube-root-ca.crt (the root-ca-cert-publisher's, possibly not there yet)
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"configmap/p{i}"), r.Stdout.Trim().Split('\n').Where(l => l != "configmap/kube-root-ca.crt"));
        Assert.Equal(3, r.Stderr.Split('\n').Count(l => l.Contains("limit=3", StringComparison.Ordinal) && l.Contains(" 200 OK", StringComparison.Ordinal)));
        var ar = await s.Kubectl("api-resources");
        Ok(ar);
        foreach (var kind in new[] { "Pod", "Deployment", "StatefulSet", "CronJob", "EndpointSlice", "Lease", "Namespace" })
            Assert.Contains(kind, ar.Stdout);
    }

    [Fact]
    public async Task Get_watch_receives_events()
    {
        Ok(await s.Kubectl("apply -f -", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: watched\n"));
        var events = await s.WatchEvents("watched", "cm", "seen", 3, async () =>
        {
            Ok(await s.Kubectl("-n watched create -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seen\n"));
            Ok(await s.Kubectl("-n watched label cm seen x=y"));
            Ok(await s.Kubectl("-n watched delete cm seen"));
        });
        Assert.Equal(["ADDED seen", "MODIFIED seen", "DELETED seen"], events);
    }

    [Fact]
    public async Task Bad_input_gets_kubernetes_errors_and_the_server_stays_up()
    {
        var yaml = await s.Kubectl("apply -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n");
        Assert.NotEqual(0, yaml.ExitCode);
        Assert.Contains("error", yaml.Stderr);
        var kind = await s.Kubectl("apply -f -", "apiVersion: v1\nkind: Gizmo\nmetadata:\n  name: g\n");
        Assert.NotEqual(0, kind.ExitCode);
        Assert.Contains("no matches for kind \"Gizmo\"", kind.Stderr);
        var name = await s.Kubectl("apply -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
        Assert.NotEqual(0, name.ExitCode);
        Assert.Contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain", name.Stderr);
        var typo = await s.Kubectl("create -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndata: {a: b}\ndatta: {c: d}\n");
        Assert.NotEqual(0, typo.ExitCode);
        Assert.Contains("unknown field \"datta\"", typo.Stderr);
        var label = await s.Kubectl("create -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: badlabel\n  labels: {a: \"-x-\"}\n");
        Assert.NotEqual(0, label.ExitCode);
        Assert.Contains("is invalid", label.Stderr);

        Ok(await s.Kubectl("create -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stale\ndata: {v: \"1\"}\n"));
        var cm = await GetJson("get cm stale");
        Ok(await s.Kubectl("patch cm stale --type merge -p '{\"data\":{\"v\":\"2\"}}'"));
        cm["data"]!["v"] = "3";
        var stale = await s.Kubectl("replace -f -", cm.ToJsonString());
        Assert.NotEqual(0, stale.ExitCode);
        Assert.Contains("Operation cannot be fulfilled on configmaps \"stale\": the object has been modified", stale.Stderr);
        var missing = await s.Kubectl("get cm does-not-exist");
        Assert.Contains("configmaps \"does-not-exist\" not found", missing.Stderr);

        Assert.True(s.Running);
        Ok(await s.Kubectl("get --raw /readyz"));
    }

    [Fact]
    public async Task Acknowledged_create_survives_kill_9()
    {
        Ok(await s.Kubectl("create -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: durable\ndata: {k: v}\n"));
        s.Kill();
        await s.StartAsync();
        var cm = await GetJson("get cm durable");
        Assert.Equal("v", cm.Str("data.k"));
    }

    [Fact]
    public async Task Delete_removes_and_anonymous_access_is_refused()
    {
        Ok(await s.Kubectl("create -f -", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: doomed\n"));
        var del = await s.Kubectl("delete cm doomed");
        Ok(del);
        Assert.Contains("configmap \"doomed\" deleted", del.Stdout);
        Assert.NotEqual(0, (await s.Kubectl("get cm doomed")).ExitCode);
        var anon = await s.Kubectl($"--kubeconfig=/dev/null --server=https://127.0.0.1:{s.Port} --insecure-skip-tls-verify --token=not-the-token get ns");
        Assert.NotEqual(0, anon.ExitCode);
        Assert.Contains("Unauthorized", anon.Stderr);
    }

    [Fact]
    public async Task Create_subcommands_sending_protobuf_bodies()
    {
        Ok(await s.Kubectl("create namespace proto"));
        Ok(await s.Kubectl("-n proto create deployment api --image=nginx:1.25 --replicas=2 --port=8080"));
        Ok(await s.Kubectl("-n proto create service clusterip api --tcp=80:8080"));
        Ok(await s.Kubectl("-n proto create configmap conf --from-literal=k=v"));
        Ok(await s.Kubectl("-n proto create secret generic pw --from-literal=password=s3cret"));
        Ok(await s.Kubectl("-n proto create serviceaccount robot"));
        Ok(await s.Kubectl("-n proto create job once --image=busybox -- echo hi"));
        Ok(await s.Kubectl("-n proto create cronjob tick --image=busybox '--schedule=*/5 * * * *' -- date"));
        var d = await GetJson("-n proto get deploy api");
        Assert.Equal(2L, d.Long("spec.replicas"));
        Assert.Equal("api", d.Str("spec.selector.matchLabels.app"));
        Assert.Equal("nginx:1.25", d.At("spec.template.spec.containers")![0].Str("image"));
        Assert.Equal(8080L, d.At("spec.template.spec.containers")![0]!["ports"]![0].Long("containerPort"));
        var svc = await GetJson("-n proto get svc api");
        Assert.Equal(8080L, svc.At("spec.ports")![0].Long("targetPort"));
        Assert.Equal("80-8080", svc.At("spec.ports")![0].Str("name"));
        Assert.Equal("v", (await GetJson("-n proto get cm conf")).Str("data.k"));
        Assert.Equal(Convert.ToBase64String("s3cret"u8.ToArray()), (await GetJson("-n proto get secret pw")).Str("data.password"));
        var job = await GetJson("-n proto get job once");
        Assert.Equal(["echo", "hi"], job.At("spec.template.spec.containers")![0]!["command"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal("Never", job.Str("spec.template.spec.restartPolicy"));
        Assert.Equal("*/5 * * * *", (await GetJson("-n proto get cronjob tick")).Str("spec.schedule"));
        var ns = await s.Kubectl("get ns proto");
        Ok(ns);
        Assert.Matches(@"proto\s+Active", ns.Stdout);
    }
}
