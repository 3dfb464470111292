using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Cluster.Api;
using static Berth.Cluster.Tests.Kubectl.KubectlChecks;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// The second round of a kubectl user's day (after <see cref="KubectlDayTests"/>): server-side apply and
/// its conflicts, diff, prune, replace, directories and multi-document files; get's printers and
/// discovery listings; disruption budgets with eviction and drain. Each expected line is what kubectl 1.32
/// prints against kube-apiserver (its printers, kube's messages), the test playing the kubelets.
/// </summary>
public sealed class KubectlDayTwoTests(BerthServer s) : IClassFixture<BerthServer>
{
    const string Manifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: api
          labels: {app: api}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: api}
          template:
            metadata:
              labels: {app: api}
            spec:
              containers:
              - name: nginx
                image: nginx:1.25
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          labels: {app: api}
        data:
          a: "1"
          b: "1"
        """;

    Task<BerthServer.Result> K(string args, string? stdin = null) => s.Kubectl(args, stdin);
    Task<JsonObject> Json(string args) => KubectlChecks.Json(s, args);
    Task<JsonObject> Until(string args, Func<JsonObject, bool> ok, string what) => KubectlChecks.Until(s, args, ok, what);

    async Task<FakeKubelets> KubeletsAsync(params string[] nodes)
    {
        var k = new FakeKubelets(s);
        foreach (var n in nodes.Length == 0 ? ["node-a", "node-b", "node-c"] : nodes) await k.RegisterNodeAsync(n);
        return k;
    }

    [Fact]
    public async Task Server_side_apply_owns_fields_and_reports_conflicts_as_kube_does()
    {
        await using var kubelets = await KubeletsAsync();
        Lines(await K("create namespace ssa"), "namespace/ssa created");
        Lines(await K("-n ssa apply --server-side -f -", Manifest), "deployment.apps/api serverside-applied", "configmap/settings serverside-applied");
        Lines(await K("-n ssa apply --server-side -f -", Manifest), "deployment.apps/api serverside-applied", "configmap/settings serverside-applied");
        var cm = await Json("-n ssa get configmap settings --show-managed-fields");
        var owner = Assert.Single(cm.Objects("metadata.managedFields"));
        Assert.Equal(("kubectl", "Apply", "v1", "FieldsV1"), (owner.Str("manager"), owner.Str("operation"), owner.Str("apiVersion"), owner.Str("fieldsType")));
        Assert.NotNull(owner["fieldsV1"]?["f:data"]?["f:a"]);

        // another manager changing a field kubectl owns: kube's one-line message, then kubectl's advice
        var one = await K("-n ssa apply --server-side --field-manager=other -f -", Manifest.Replace("a: \"1\"", "a: \"2\""));
        Assert.Equal(1, one.ExitCode);
        Assert.StartsWith("error: Apply failed with 1 conflict: conflict with \"kubectl\": .data.a\nPlease review the fields above--they currently have other managers. Here\nare the ways you can resolve this warning:\n", one.Stderr);
        // a keyed list item is named by its key, as structured-merge-diff prints paths
        var image = await K("-n ssa apply --server-side --field-manager=other -f -", Manifest.Replace("nginx:1.25", "nginx:1.26"));
        Assert.Equal(1, image.ExitCode);
        Assert.StartsWith("error: Apply failed with 1 conflict: conflict with \"kubectl\": .spec.template.spec.containers[name=\"nginx\"].image\n", image.Stderr);
        var two = await K("-n ssa apply --server-side --field-manager=other -f -", Manifest.Replace("a: \"1\"", "a: \"2\"").Replace("b: \"1\"", "b: \"2\""));
        Assert.Equal(1, two.ExitCode);
        Assert.StartsWith("error: Apply failed with 2 conflicts: conflicts with \"kubectl\":\n- .data.a\n- .data.b\nPlease review the fields above", two.Stderr);
        Assert.Equal("1", (await Json("-n ssa get configmap settings")).Str("data.a"));

        // --force-conflicts takes the field over: the other manager owns data.a, kubectl no longer does
        var forced = await K("-n ssa apply --server-side --field-manager=other --force-conflicts -f -", Manifest.Replace("a: \"1\"", "a: \"2\""));
        Lines(forced, "deployment.apps/api serverside-applied", "configmap/settings serverside-applied");
        cm = await Json("-n ssa get configmap settings --show-managed-fields");
        Assert.Equal("2", cm.Str("data.a"));
        var managers = cm.Objects("metadata.managedFields").ToDictionary(m => m.Str("manager")!);
        Assert.NotNull(managers["other"]["fieldsV1"]?["f:data"]?["f:a"]);
        Assert.Null(managers["kubectl"]["fieldsV1"]?["f:data"]?["f:a"]);
        Assert.NotNull(managers["kubectl"]["fieldsV1"]?["f:data"]?["f:b"]);
    }

    [Fact]
    public async Task Diff_replace_create_directories_and_prune()
    {
        await using var kubelets = await KubeletsAsync();
        Lines(await K("create namespace files"), "namespace/files created");
        Lines(await K("-n files apply -f -", Manifest), "deployment.apps/api created", "configmap/settings created");
        Ok(await K("-n files rollout status deployment/api --timeout=90s"));

        // diff: exit 0 and nothing printed when the manifest matches, 1 and a unified diff when it does not
        var same = await K("-n files diff -f -", Manifest);
        Assert.True(same.ExitCode == 0, same.ToString());
        Assert.Equal("", same.Stdout);
        var changed = await K("-n files diff -f -", Manifest.Replace("nginx:1.25", "nginx:1.26"));
        Assert.True(changed.ExitCode == 1, changed.ToString());
        Assert.Matches(@"(?m)^diff -u -N /tmp/LIVE-\d+/apps\.v1\.Deployment\.files\.api /tmp/MERGED-\d+/apps\.v1\.Deployment\.files\.api$", changed.Stdout);
        Assert.Contains("\n-      - image: nginx:1.25\n+      - image: nginx:1.26\n", changed.Stdout);
        Assert.Matches(@"\n-  generation: 1\n\+  generation: 2\n", changed.Stdout);
        Assert.DoesNotContain("ConfigMap", changed.Stdout);
        Assert.Equal("nginx:1.25", (await Json("-n files get deploy api")).Objects("spec.template.spec.containers").Single().Str("image"));

        // create of what exists: one AlreadyExists line per object, naming the source
        FailsWith(await K("-n files create -f -", Manifest),
            "Error from server (AlreadyExists): error when creating \"STDIN\": deployments.apps \"api\" already exists\n" +
            "Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"settings\" already exists");
        Lines(await K("-n files replace -f -", Manifest.Replace("b: \"1\"", "b: \"3\"")), "deployment.apps/api replaced", "configmap/settings replaced");
        Assert.Equal("3", (await Json("-n files get cm settings")).Str("data.b"));

        // a directory: its files in name order, a multi-document file in document order
        var dir = Directory.CreateDirectory(Path.Combine(s.DataDir, "manifests")).FullName;
        File.WriteAllText(Path.Combine(dir, "a.yaml"), Manifest);
        File.WriteAllText(Path.Combine(dir, "b.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  labels: {app: api}\ndata: {c: \"1\"}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  labels: {app: api}\nstringData: {t: x}\n");
        // (replace dropped the last-applied annotation: apply warns and writes it back, so both objects are "configured")
        var applied = await K($"-n files apply -f {dir}");
        Lines(applied, "deployment.apps/api configured", "configmap/settings configured", "configmap/extra created", "secret/token created");
        Assert.StartsWith("Warning: resource deployments/api is missing the kubectl.kubernetes.io/last-applied-configuration annotation which is required by kubectl apply.", applied.Stderr);

        // --prune -l: what was applied with the label but is no longer in the files goes (the default allow-list)
        var pruned = await K($"-n files apply --prune -l app=api -f {Path.Combine(dir, "a.yaml")}");
        Lines(pruned, "deployment.apps/api unchanged", "configmap/settings unchanged", "configmap/extra pruned", "secret/token pruned");
        FailsWith(await K("-n files get configmap extra"), "Error from server (NotFound): configmaps \"extra\" not found");
        Assert.Equal(2, Live(await Json("-n files get pods -l app=api")).Count);
    }

    [Fact]
    public async Task Get_printers_and_discovery_listings()
    {
        await using var kubelets = await KubeletsAsync();
        Lines(await K("create namespace show"), "namespace/show created");
        Lines(await K("-n show apply -f -", Manifest), "deployment.apps/api created", "configmap/settings created");
        Ok(await K("-n show rollout status deployment/api --timeout=90s"));
        Lines(await K("-n show create deployment zeta --image=busybox --replicas=0"), "deployment.apps/zeta created");

        var all = await K("get deploy -A -o wide");
        Ok(all);
        Assert.Matches(@"^NAMESPACE\s+NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR$", Rows(all.Stdout)[0]);
        Assert.Contains(Rows(all.Stdout), l => Regex.IsMatch(l, @"^show\s+api\s+2/2\s+2\s+2\s+\d+s\s+nginx\s+nginx:1\.25\s+app=api$"));
        Lines(await K("-n show get deploy --sort-by=.spec.replicas -o name"), "deployment.apps/zeta", "deployment.apps/api");
        Lines(await K("-n show get deploy --sort-by=.metadata.name -o custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas"), "NAME   REPLICAS", "api    2", "zeta   0");
        Lines(await K("-n show get cm settings -o jsonpath={.data.a}"), "1");
        var events = await K("-n show get events --field-selector involvedObject.kind=Deployment,involvedObject.name=api");
        Ok(events);
        Assert.Matches(@"^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$", Rows(events.Stdout)[0]);
        Assert.All(Rows(events.Stdout).Skip(1), l => Assert.Matches(@"^\S+\s+Normal\s+ScalingReplicaSet\s+deployment/api\s+Scaled up replica set api-\w+ from 0 to 2$", l));

        // api-resources: verbs as kube lists them (namespaces have no deletecollection), the kinds kubectl's defaults need
        var resources = await K("api-resources -o wide");
        Ok(resources);
        Assert.Matches(@"(?m)^NAME\s+SHORTNAMES\s+APIVERSION\s+NAMESPACED\s+KIND\s+VERBS\s+CATEGORIES$", resources.Stdout);
        Assert.Matches(@"(?m)^namespaces\s+ns\s+v1\s+false\s+Namespace\s+create,delete,get,list,patch,update,watch\s*$", resources.Stdout);
        Assert.Matches(@"(?m)^deployments\s+deploy\s+apps/v1\s+true\s+Deployment\s+create,delete,deletecollection,get,list,patch,update,watch\s+all$", resources.Stdout);
        Assert.Matches(@"(?m)^replicationcontrollers\s+rc\s+v1\s+true\s+ReplicationController\s+create,delete,deletecollection,get,list,patch,update,watch\s+all$", resources.Stdout);
        Assert.Matches(@"(?m)^ingresses\s+ing\s+networking\.k8s\.io/v1\s+true\s+Ingress\s+", resources.Stdout);
        Assert.Matches(@"(?m)^poddisruptionbudgets\s+pdb\s+policy/v1\s+true\s+PodDisruptionBudget\s+", resources.Stdout);
        var versions = await K("api-versions");
        Ok(versions);
        Assert.Contains("networking.k8s.io/v1", Rows(versions.Stdout));
        Assert.Contains("policy/v1", Rows(versions.Stdout));
        Assert.Equal(Rows(versions.Stdout).Order(StringComparer.Ordinal), Rows(versions.Stdout));
    }

    [Fact]
    public async Task Disruption_budget_refuses_evictions_and_drain_retries_until_it_allows()
    {
        await using var kubelets = await KubeletsAsync("drain-1", "drain-2");
        Lines(await K("create namespace pdb"), "namespace/pdb created");
        // every pod starts on drain-1: the other node is cordoned while they are placed
        Lines(await K("cordon drain-2"), "node/drain-2 cordoned");
        var manifest = Manifest.Replace("name: api\n", "name: web\n").Replace("app: api", "app: web").Replace("      containers:", "      nodeSelector: {pool: drain}\n      containers:");
        Ok(await K("label node drain-1 drain-2 pool=drain --overwrite"));
        Lines(await K("-n pdb apply -f -", manifest), "deployment.apps/web created", "configmap/settings created");
        Ok(await K("-n pdb rollout status deployment/web --timeout=90s"));
        Lines(await K("uncordon drain-2"), "node/drain-2 uncordoned");
        var pods = Live(await Json("-n pdb get pods -l app=web"));
        Assert.All(pods, p => Assert.Equal("drain-1", p.Str("spec.nodeName")));

        Lines(await K("-n pdb create poddisruptionbudget web --selector=app=web --min-available=2"), "poddisruptionbudget.policy/web created");
        var pdb = await Until("-n pdb get pdb web", o => o.Long("status.observedGeneration") == 1, "the disruption controller's status");
        Assert.Equal((2L, 2L, 2L, 0L), (pdb.Long("status.currentHealthy"), pdb.Long("status.desiredHealthy"), pdb.Long("status.expectedPods"), pdb.Long("status.disruptionsAllowed")));
        var cond = pdb.Objects("status.conditions").Single();
        Assert.Equal(("DisruptionAllowed", "False", "InsufficientPods"), (cond.Str("type"), cond.Str("status"), cond.Str("reason")));
        var table = await K("-n pdb get pdb");
        Ok(table);
        Assert.Matches(@"^NAME\s+MIN AVAILABLE\s+MAX UNAVAILABLE\s+ALLOWED DISRUPTIONS\s+AGE\nweb\s+2\s+N/A\s+0\s+\d+s\n$", table.Stdout);

        // the eviction API itself: 429 with the budget named in the cause
        var victim = pods[0].Str("metadata.name")!;
        var (code, status) = await kubelets.SendAsync(HttpMethod.Post, $"/api/v1/namespaces/pdb/pods/{victim}/eviction",
            new JsonObject { ["apiVersion"] = "policy/v1", ["kind"] = "Eviction", ["metadata"] = new JsonObject { ["name"] = victim, ["namespace"] = "pdb" } });
        Assert.Equal(429, code);
        Assert.Equal(("TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget."), (status.Str("reason"), status.Str("message")));
        var cause = status.Objects("details.causes").Single();
        Assert.Equal(("DisruptionBudget", "The disruption budget web needs 2 healthy pods and has 2 currently"), (cause.Str("reason"), cause.Str("message")));

        // drain retries every 5 s; a third replica (on drain-2) lets the budget allow one eviction at a time
        var drain = s.Kubectl("drain drain-1 --ignore-daemonsets --timeout=120s", timeoutSeconds: 150);
        await Task.Delay(2000);
        Lines(await K("-n pdb scale deployment web --replicas=3"), "deployment.apps/web scaled");
        var drained = await drain;
        Ok(drained);
        Assert.Equal("node/drain-1 cordoned", Rows(drained.Stdout)[0]);
        Assert.Equal("node/drain-1 drained", Rows(drained.Stdout)[^1]);
        foreach (var p in pods)
        {
            Assert.Contains($"evicting pod pdb/{p.Str("metadata.name")}", Rows(drained.Stdout));
            Assert.Contains($"pod/{p.Str("metadata.name")} evicted", Rows(drained.Stdout));
        }
        Assert.Contains("error when evicting pods/\"", drained.Stderr);
        Assert.Contains("\" -n \"pdb\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.\n", drained.Stderr);
        var after = await Until("-n pdb get pods -l app=web", l => Live(l).Count == 3 && Live(l).All(p => p.Str("status.phase") == "Running"), "3 running pods on drain-2");
        Assert.All(Live(after), p => Assert.Equal("drain-2", p.Str("spec.nodeName")));
        pdb = await Until("-n pdb get pdb web", o => o.Long("status.currentHealthy") == 3, "3 healthy pods in the budget");
        Assert.Equal(1L, pdb.Long("status.disruptionsAllowed"));
        Assert.Equal("True", pdb.Objects("status.conditions").Single().Str("status"));
        Lines(await K("uncordon drain-1"), "node/drain-1 uncordoned");
        Lines(await K("delete namespace pdb"), "namespace \"pdb\" deleted");
    }
}
