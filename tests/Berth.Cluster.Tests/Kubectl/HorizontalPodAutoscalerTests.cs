using System.Text.Json.Nodes;
using Berth.Cluster.Api;
using static Berth.Cluster.Tests.Kubectl.KubectlChecks;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// HorizontalPodAutoscalers with kubectl 1.32: served at autoscaling/v2 (stored, preferred) and
/// autoscaling/v1 (converted on every read and write), the printer's columns, describe, and the
/// horizontal-pod-autoscaler controller keeping a Deployment within min/max with no metrics API
/// (its conditions and events say the metrics cannot be fetched, as kube's do in that state).
/// </summary>
public sealed class HorizontalPodAutoscalerTests(BerthServer s) : IClassFixture<BerthServer>
{
    Task<BerthServer.Result> K(string args, string? stdin = null, IDictionary<string, string>? env = null) => s.Kubectl(args, stdin, env);
    Task<JsonObject> Json(string args) => KubectlChecks.Json(s, args);
    Task<JsonObject> Until(string args, Func<JsonObject, bool> ok, string what) => KubectlChecks.Until(s, args, ok, what);

    const string NoMetrics = "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: " +
        "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)";

    static JsonObject? Condition(JsonObject hpa, string type) => hpa.Objects("status.conditions").FirstOrDefault(c => c.Str("type") == type);

    async Task NamespaceWithDeploymentAsync(string ns, string deploy, int replicas)
    {
        Lines(await K($"create namespace {ns}"), $"namespace/{ns} created");
        Lines(await K($"-n {ns} create deployment {deploy} --image=nginx:1.25 --replicas={replicas}"), $"deployment.apps/{deploy} created");
    }

    [Fact]
    public async Task Autoscale_get_columns_describe_and_the_controller_without_metrics()
    {
        await NamespaceWithDeploymentAsync("hpa-a", "web", 3);
        Lines(await K("-n hpa-a autoscale deployment web --min=2 --max=5 --cpu-percent=80"), "horizontalpodautoscaler.autoscaling/web autoscaled");

        // the controller: scale read (3, within bounds), metrics cannot be fetched → ScalingActive False, replicas kept
        var hpa = await Until("-n hpa-a get hpa web", o => o.Long("status.currentReplicas") == 3 && Condition(o, "ScalingActive") is not null, "the controller's status");
        Assert.Equal("autoscaling/v2", hpa.Str("apiVersion"));
        var active = Condition(hpa, "ScalingActive")!;
        Assert.Equal(("False", "FailedGetResourceMetric", NoMetrics), (active.Str("status"), active.Str("reason"), active.Str("message")));
        var able = Condition(hpa, "AbleToScale")!;
        Assert.Equal(("True", "SucceededGetScale", "the HPA controller was able to get the target's current scale"), (able.Str("status"), able.Str("reason"), able.Str("message")));
        Assert.Equal(3, (await Json("-n hpa-a get deployment web")).Long("spec.replicas"));

        var table = await K("-n hpa-a get hpa");
        Ok(table);
        var rows = Rows(table.Stdout);
        Assert.Matches(@"^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE$", rows[0]);
        Assert.Matches(@"^web\s+Deployment/web\s+cpu: <unknown>/80%\s+2\s+5\s+3\s+\d+s$", rows[1]);
        // the same columns at v1 (the server prints from the stored object)
        Assert.Matches(@"^web\s+Deployment/web\s+cpu: <unknown>/80%\s+2\s+5\s+3\s+\d+s$", Rows((await K("-n hpa-a get horizontalpodautoscalers.v1.autoscaling")).Stdout)[1]);

        var describe = await K("-n hpa-a describe hpa web");
        Ok(describe);
        Assert.Matches(@"(?m)^Reference:\s+Deployment/web$", describe.Stdout);
        Assert.Matches(@"(?m)^\s+resource cpu on pods\s+\(as a percentage of request\):\s+<unknown> / 80%$", describe.Stdout);
        Assert.Matches(@"(?m)^Min replicas:\s+2$", describe.Stdout);
        Assert.Matches(@"(?m)^Max replicas:\s+5$", describe.Stdout);
        Assert.Matches(@"(?m)^Deployment pods:\s+3 current / 0 desired$", describe.Stdout);
        Assert.Matches(@"(?m)^\s+ScalingActive\s+False\s+FailedGetResourceMetric\s+the HPA was unable to compute the replica count", describe.Stdout);

        // the Warning events kube's controller records in that state
        var events = await Until("-n hpa-a get events --field-selector involvedObject.kind=HorizontalPodAutoscaler",
            o => o.Objects("items").Any(e => e.Str("reason") == "FailedComputeMetricsReplicas"), "the controller's events");
        var failed = events.Objects("items").First(e => e.Str("reason") == "FailedGetResourceMetric");
        Assert.Equal(("Warning", "horizontal-pod-autoscaler", "web"), (failed.Str("type"), failed.Str("source.component"), failed.Str("involvedObject.name")));
        Assert.StartsWith("failed to get cpu utilization: unable to get metrics for resource cpu", failed.Str("message"));

        Lines(await K("-n hpa-a delete hpa web"), "horizontalpodautoscaler.autoscaling \"web\" deleted");
        FailsWith(await K("-n hpa-a get hpa web"), "Error from server (NotFound): horizontalpodautoscalers.autoscaling \"web\" not found");
    }

    [Fact]
    public async Task Both_versions_convert_both_ways_and_round_trip()
    {
        Lines(await K("create namespace hpa-v"), "namespace/hpa-v created");
        // v2 with a second metric and a behavior: v1 says cpu as targetCPUUtilizationPercentage, the rest in annotations
        Lines(await K("-n hpa-v apply -f -", """
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: two, labels: {tier: web}}
            spec:
              scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
              minReplicas: 2
              maxReplicas: 6
              metrics:
              - type: Resource
                resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
              - type: Resource
                resource: {name: memory, target: {type: AverageValue, averageValue: 500Mi}}
              behavior:
                scaleDown: {stabilizationWindowSeconds: 60}
            """), "horizontalpodautoscaler.autoscaling/two created");
        var v2 = await Json("-n hpa-v get hpa two");
        Assert.Equal(2, v2.Arr("spec.metrics").Count);
        // kube's behavior defaults fill what was not given
        Assert.Equal((60L, "Max", 0L, "Max"), (v2.Long("spec.behavior.scaleDown.stabilizationWindowSeconds"), v2.Str("spec.behavior.scaleDown.selectPolicy"),
            v2.Long("spec.behavior.scaleUp.stabilizationWindowSeconds"), v2.Str("spec.behavior.scaleUp.selectPolicy")));
        Assert.Equal(2, v2.Arr("spec.behavior.scaleUp.policies").Count);
        Assert.Null(v2["metadata"]!["annotations"]?[Autoscaling.MetricsAnnotation]);

        var v1 = await Json("-n hpa-v get horizontalpodautoscalers.v1.autoscaling two");
        Assert.Equal("autoscaling/v1", v1.Str("apiVersion"));
        Assert.Equal(70, v1.Long("spec.targetCPUUtilizationPercentage"));
        Assert.Null(v1["spec"]!["metrics"]);
        Assert.Null(v1["spec"]!["behavior"]);
        var other = JsonNode.Parse(v1["metadata"]!["annotations"]![Autoscaling.MetricsAnnotation]!.GetValue<string>())!.AsArray();
        var memory = Assert.Single(other)!.AsObject();
        Assert.Equal(("Resource", "memory", "500Mi"), (memory.Str("type"), memory.Str("resource.name"), memory.Str("resource.targetAverageValue")));
        Assert.Contains("\"stabilizationWindowSeconds\":60", v1["metadata"]!["annotations"]![Autoscaling.BehaviorAnnotation]!.GetValue<string>());

        // patches at v1 keep what only v2 can say (the cpu metric goes last, as kube's conversion orders it)
        Lines(await K("-n hpa-v patch horizontalpodautoscalers.v1.autoscaling two --type=merge -p {\"spec\":{\"targetCPUUtilizationPercentage\":50}}"), "horizontalpodautoscaler.autoscaling/two patched");
        v2 = await Json("-n hpa-v get hpa two");
        var metrics = v2.Objects("spec.metrics").ToList();
        Assert.Equal(["memory", "cpu"], metrics.Select(m => m.Str("resource.name")));
        Assert.Equal(50, metrics[1].Long("resource.target.averageUtilization"));
        Assert.Equal("500Mi", metrics[0].Str("resource.target.averageValue"));
        Assert.Equal(60, v2.Long("spec.behavior.scaleDown.stabilizationWindowSeconds"));
        Assert.Null(v2["metadata"]!["annotations"]?[Autoscaling.BehaviorAnnotation]);
        Assert.Equal("web", v2.Str("metadata.labels.tier"));

        // a JSON patch at v2, seen at v1; edit at v1
        Lines(await K("-n hpa-v patch hpa two --type=json -p [{\"op\":\"replace\",\"path\":\"/spec/maxReplicas\",\"value\":7}]"), "horizontalpodautoscaler.autoscaling/two patched");
        Assert.Equal(7, (await Json("-n hpa-v get horizontalpodautoscalers.v1.autoscaling two")).Long("spec.maxReplicas"));
        var edited = await K("-n hpa-v edit horizontalpodautoscalers.v1.autoscaling two", env: new Dictionary<string, string> { ["KUBE_EDITOR"] = "sed -i s/maxReplicas:\\ 7/maxReplicas:\\ 8/" });
        Lines(edited, "horizontalpodautoscaler.autoscaling/two edited");
        v2 = await Json("-n hpa-v get hpa two");
        Assert.Equal(8, v2.Long("spec.maxReplicas"));
        Assert.Equal(2, v2.Arr("spec.metrics").Count);

        // v1 created: targetCPUUtilizationPercentage is v2's cpu Utilization metric, the default 80% when absent
        Lines(await K("-n hpa-v apply -f -", """
            apiVersion: autoscaling/v1
            kind: HorizontalPodAutoscaler
            metadata: {name: one}
            spec:
              scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
              maxReplicas: 4
              targetCPUUtilizationPercentage: 65
            ---
            apiVersion: autoscaling/v1
            kind: HorizontalPodAutoscaler
            metadata: {name: plain}
            spec:
              scaleTargetRef: {kind: Deployment, name: web}
              maxReplicas: 3
            """), "horizontalpodautoscaler.autoscaling/one created", "horizontalpodautoscaler.autoscaling/plain created");
        var one = await Json("-n hpa-v get hpa one");
        Assert.Equal((1L, 65L, "Utilization"), (one.Long("spec.minReplicas"), Assert.Single(one.Objects("spec.metrics")).Long("resource.target.averageUtilization"),
            one.Objects("spec.metrics").Single().Str("resource.target.type")));
        Assert.Equal(80, (await Json("-n hpa-v get horizontalpodautoscalers.v1.autoscaling plain")).Long("spec.targetCPUUtilizationPercentage"));
        // re-applying the same v1 manifest changes nothing
        Lines(await K("-n hpa-v apply -f -", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: one}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 4\n  targetCPUUtilizationPercentage: 65\n"),
            "horizontalpodautoscaler.autoscaling/one unchanged");

        // lists and watches at v1 are v1 objects
        var list = JsonNode.Parse((await K("get --raw /apis/autoscaling/v1/namespaces/hpa-v/horizontalpodautoscalers")).Stdout)!.AsObject();
        Assert.Equal(("HorizontalPodAutoscalerList", "autoscaling/v1"), (list.Str("kind"), list.Str("apiVersion")));
        Assert.All(list.Objects("items"), i => Assert.NotNull(i.Long("spec.targetCPUUtilizationPercentage")));
        Assert.All(list.Objects("items"), i => Assert.Null(i["spec"]!["metrics"]));
        var watch = await K("get --raw /apis/autoscaling/v1/namespaces/hpa-v/horizontalpodautoscalers?watch=true&timeoutSeconds=1");
        var watched = watch.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(3, watched.Count);
        Assert.All(watched, e => Assert.Equal("autoscaling/v1", e.Str("object.apiVersion")));
        Assert.All(watched, e => Assert.Null(e["object"]!["spec"]!["metrics"]));

        // server-side apply at v1 onto an object stored at v2
        Lines(await K("-n hpa-v apply --server-side -f -", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: one}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 9\n  targetCPUUtilizationPercentage: 65\n"),
            "horizontalpodautoscaler.autoscaling/one serverside-applied");
        Assert.Equal(9, (await Json("-n hpa-v get hpa one")).Long("spec.maxReplicas"));
    }

    [Fact]
    public async Task The_controller_keeps_a_deployment_within_min_and_max()
    {
        await NamespaceWithDeploymentAsync("hpa-m", "app", 3);
        Lines(await K("-n hpa-m autoscale deployment app --min=2 --max=5"), "horizontalpodautoscaler.autoscaling/app autoscaled");
        await Until("-n hpa-m get hpa app", o => o.Long("status.currentReplicas") == 3, "the first sync");

        Lines(await K("-n hpa-m scale deployment app --replicas=1"), "deployment.apps/app scaled");
        await Until("-n hpa-m get deployment app", o => o.Long("spec.replicas") == 2, "the scale up to minReplicas");
        var hpa = await Until("-n hpa-m get hpa app", o => o.Long("status.desiredReplicas") == 2 && o.Str("status.lastScaleTime") is not null, "the status after the rescale");
        // SucceededRescale until the next sync reads the new scale (then SucceededGetScale, as kube's)
        var able = Condition(hpa, "AbleToScale")!;
        Assert.Equal("True", able.Str("status"));
        Assert.Contains(able.Str("reason"), new[] { "SucceededRescale", "SucceededGetScale" });
        // at v1 too: conditions travel in kube's annotation
        var v1 = await Json("-n hpa-m get horizontalpodautoscalers.v1.autoscaling app");
        Assert.Equal(2, v1.Long("status.desiredReplicas"));
        Assert.Contains("\"AbleToScale\"", v1["metadata"]!["annotations"]![Autoscaling.ConditionsAnnotation]!.GetValue<string>());

        Lines(await K("-n hpa-m scale deployment app --replicas=9"), "deployment.apps/app scaled");
        await Until("-n hpa-m get deployment app", o => o.Long("spec.replicas") == 5, "the scale down to maxReplicas");
        var events = await Until("-n hpa-m get events --field-selector involvedObject.kind=HorizontalPodAutoscaler",
            o => o.Objects("items").Count(e => e.Str("reason") == "SuccessfulRescale") == 2, "two rescale events");
        Assert.Equal(["New size: 2; reason: Current number of replicas below Spec.MinReplicas", "New size: 5; reason: Current number of replicas above Spec.MaxReplicas"],
            events.Objects("items").Where(e => e.Str("reason") == "SuccessfulRescale").Select(e => e.Str("message")).Order());

        // a target at zero replicas: autoscaling is disabled, nothing is scaled
        Lines(await K("-n hpa-m scale deployment app --replicas=0"), "deployment.apps/app scaled");
        hpa = await Until("-n hpa-m get hpa app", o => Condition(o, "ScalingActive")?.Str("reason") == "ScalingDisabled", "ScalingDisabled");
        Assert.Equal("scaling is disabled since the replica count of the target is zero", Condition(hpa, "ScalingActive")!.Str("message"));
        Assert.Equal(0, (await Json("-n hpa-m get deployment app")).Long("spec.replicas"));

        // deleted: the deployment is left as it is scaled
        Lines(await K("-n hpa-m delete hpa app"), "horizontalpodautoscaler.autoscaling \"app\" deleted");
        Lines(await K("-n hpa-m scale deployment app --replicas=9"), "deployment.apps/app scaled");
        await Task.Delay(2000);
        Assert.Equal(9, (await Json("-n hpa-m get deployment app")).Long("spec.replicas"));
    }

    [Fact]
    public async Task Bad_input_gets_one_Status_error_each()
    {
        Lines(await K("create namespace hpa-bad"), "namespace/hpa-bad created");
        const string head = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: bad}\nspec:\n";
        FailsWith(await K("-n hpa-bad create -f -", head + "  scaleTargetRef: {kind: Deployment, name: web}\n  minReplicas: 5\n  maxReplicas: 2\n"),
            "The HorizontalPodAutoscaler \"bad\" is invalid: spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`");
        FailsWith(await K("-n hpa-bad create -f -", head + "  maxReplicas: 2\n"),
            "The HorizontalPodAutoscaler \"bad\" is invalid: \n* spec.scaleTargetRef.kind: Required value\n* spec.scaleTargetRef.name: Required value");
        FailsWith(await K("-n hpa-bad create -f -", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: bad}\nspec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 0\n"),
            "The HorizontalPodAutoscaler \"bad\" is invalid: \n* spec.maxReplicas: Invalid value: 0: must be greater than 0\n" +
            "* spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`");
        FailsWith(await K("-n hpa-bad create --validate=strict -f -", head + "  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n  bogus: 1\n"),
            "Error from server (BadRequest): error when creating \"STDIN\": HorizontalPodAutoscaler in version \"v2\" cannot be handled as a HorizontalPodAutoscaler: strict decoding error: unknown field \"spec.bogus\"");
        // a v2-only field is unknown at v1
        FailsWith(await K("-n hpa-bad create --validate=strict -f -", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: bad}\nspec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n  metrics: []\n"),
            "Error from server (BadRequest): error when creating \"STDIN\": HorizontalPodAutoscaler in version \"v1\" cannot be handled as a HorizontalPodAutoscaler: strict decoding error: unknown field \"spec.metrics\"");
        Assert.Empty((await Json("-n hpa-bad get hpa")).Arr("items"));
    }

    [Fact]
    public async Task Discovery_lists_both_versions_with_v2_preferred()
    {
        var versions = await K("api-versions");
        Ok(versions);
        Assert.Contains("autoscaling/v1", Rows(versions.Stdout));
        Assert.Contains("autoscaling/v2", Rows(versions.Stdout));
        var resources = await K("api-resources --api-group=autoscaling");
        Ok(resources);
        Assert.Matches(@"(?m)^horizontalpodautoscalers\s+hpa\s+autoscaling/v2\s+true\s+HorizontalPodAutoscaler\s*$", resources.Stdout);
        var group = JsonNode.Parse((await K("get --raw /apis/autoscaling")).Stdout)!.AsObject();
        Assert.Equal("autoscaling/v2", group.Str("preferredVersion.groupVersion"));
        Assert.Equal(["autoscaling/v2", "autoscaling/v1"], group.Objects("versions").Select(v => v.Str("groupVersion")));
        var v1 = JsonNode.Parse((await K("get --raw /apis/autoscaling/v1")).Stdout)!.AsObject();
        Assert.Contains(v1.Objects("resources"), r => r.Str("name") == "horizontalpodautoscalers/status");
        var explain = await K("explain hpa.spec.targetCPUUtilizationPercentage --api-version=autoscaling/v1");
        Ok(explain);
        Assert.Contains("targetCPUUtilizationPercentage", explain.Stdout);
        var explain2 = await K("explain hpa.spec.metrics.resource.target");
        Ok(explain2);
        Assert.Contains("averageUtilization", explain2.Stdout);
    }
}
