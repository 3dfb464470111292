using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Cluster.Api;
using static Berth.Cluster.Tests.Kubectl.KubectlChecks;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// ResourceQuota and LimitRange with kubectl 1.32 against `berth server`: the objects, their printers and
/// describers, LimitRanger's defaults and refusals, quota refusals, concurrent creates, releases by the
/// quota controller, and bad input. Each namespace is the test's own; messages are kube-apiserver's.
/// </summary>
public sealed partial class QuotaTests(BerthServer s) : IClassFixture<BerthServer>
{
    async Task NamespaceAsync(string ns) => Ok(await s.Kubectl($"create namespace {ns}"));

    /// <summary>Waits until the quota controller has synced the quota (status.hard = spec.hard) and the check holds.</summary>
    Task<JsonObject> QuotaUntil(string ns, string name, Func<JsonObject, bool> ok, string what) =>
        Until(s, $"-n {ns} get quota {name}", q => JsonNode.DeepEquals(q["spec"]?["hard"], q["status"]?["hard"]) && ok(q), what);

    [GeneratedRegex(@"\s{2,}")] private static partial Regex Spaces();
    static string[] Cols(string line) => Spaces().Split(line.Trim());

    [Fact]
    public async Task Pod_count_quota_refuses_over_hard_and_deletes_and_finished_pods_release()
    {
        const string ns = "quota-pods";
        await NamespaceAsync(ns);
        Lines(await s.Kubectl($"-n {ns} create quota q --hard=pods=2,count/configmaps=20"), "resourcequota/q created");
        await QuotaUntil(ns, "q", q => q.Str("status.used.pods") == "0", "the quota's first sync");
        Lines(await s.Kubectl($"-n {ns} run p1 --image=nginx:1.25 --restart=Never"), "pod/p1 created");
        Lines(await s.Kubectl($"-n {ns} run p2 --image=nginx:1.25 --restart=Never"), "pod/p2 created");
        FailsWith(await s.Kubectl($"-n {ns} run p3 --image=nginx:1.25 --restart=Never"),
            "Error from server (Forbidden): pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2");
        Assert.Equal(2, Live(await Json(s, $"-n {ns} get pods")).Count);

        // the printer: REQUEST and LIMIT from status, names in order
        var get = await s.Kubectl($"-n {ns} get quota");
        Ok(get);
        var rows = Rows(get.Stdout);
        Assert.Equal(["NAME", "AGE", "REQUEST", "LIMIT"], Cols(rows[0]));
        var row = Cols(rows[1]);
        Assert.Equal("q", row[0]);
        Assert.Matches("^[0-9]+s$", row[1]);
        Assert.Matches(@"^count/configmaps: [0-9]+/20, pods: 2/2$", row[2]);

        // describe: kubectl's layout (Resource / Used / Hard)
        var describe = await s.Kubectl($"-n {ns} describe quota q");
        Ok(describe);
        var lines = Rows(describe.Stdout).Select(l => Spaces().Replace(l.TrimEnd(), " ")).ToList();
        Assert.Contains("Name: q", lines);
        Assert.Contains($"Namespace: {ns}", lines);
        Assert.Contains("Resource Used Hard", lines);
        Assert.Contains("pods 2 2", lines);

        // a delete gives back (the controller recounts), then a finished pod does too
        Ok(await s.Kubectl($"-n {ns} delete pod p1 --wait=false"));
        await QuotaUntil(ns, "q", q => q.Str("status.used.pods") == "1", "the delete's release");
        Lines(await s.Kubectl($"-n {ns} run p3 --image=nginx:1.25 --restart=Never"), "pod/p3 created");
        FailsWith(await s.Kubectl($"-n {ns} run p4 --image=nginx:1.25 --restart=Never"),
            "Error from server (Forbidden): pods \"p4\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2");
        Ok(await s.Kubectl($"-n {ns} patch pod p2 --subresource=status --type=merge -p {{\"status\":{{\"phase\":\"Succeeded\"}}}}"));
        await QuotaUntil(ns, "q", q => q.Str("status.used.pods") == "1", "the finished pod's release");
        Lines(await s.Kubectl($"-n {ns} run p4 --image=nginx:1.25 --restart=Never"), "pod/p4 created");

        // object counts of other kinds
        await QuotaUntil(ns, "q", q => q.Str("status.used.count/configmaps") is not null, "configmaps counted");
        Lines(await s.Kubectl($"-n {ns} create quota cm --hard=configmaps=2"), "resourcequota/cm created");
        var cms = Live(await Json(s, $"-n {ns} get configmaps")).Count; // kube-root-ca.crt
        for (var i = cms; i < 2; i++) Ok(await s.Kubectl($"-n {ns} create configmap c{i}"));
        FailsWith(await s.Kubectl($"-n {ns} create configmap extra"),
            "error: failed to create configmap: configmaps \"extra\" is forbidden: exceeded quota: cm, requested: configmaps=1, used: configmaps=2, limited: configmaps=2");

        // deleting the quota lifts its limit
        Lines(await s.Kubectl($"-n {ns} delete quota q"), "resourcequota \"q\" deleted");
        Lines(await s.Kubectl($"-n {ns} run p5 --image=nginx:1.25 --restart=Never"), "pod/p5 created");
        Lines(await s.Kubectl($"-n {ns} run p6 --image=nginx:1.25 --restart=Never"), "pod/p6 created");
    }

    [Fact]
    public async Task Twenty_parallel_creates_against_pods_5_leave_exactly_5()
    {
        const string ns = "quota-race";
        await NamespaceAsync(ns);
        Ok(await s.Kubectl($"-n {ns} create quota five --hard=pods=5"));
        await QuotaUntil(ns, "five", q => q.Str("status.used.pods") == "0", "the quota's first sync");
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => s.Kubectl($"-n {ns} run r{i} --image=nginx:1.25 --restart=Never")));
        Assert.Equal(5, results.Count(r => r.ExitCode == 0));
        foreach (var r in results.Where(r => r.ExitCode != 0))
            Assert.Matches("^Error from server \\(Forbidden\\): pods \"r[0-9]+\" is forbidden: exceeded quota: five, requested: pods=1, used: pods=5, limited: pods=5\n$", r.Stderr);
        Assert.Equal(5, Live(await Json(s, $"-n {ns} get pods")).Count);
        Assert.Equal("5", (await Json(s, $"-n {ns} get quota five")).Str("status.used.pods"));
        // the controller's recount agrees with what admission charged
        Ok(await s.Kubectl($"-n {ns} patch quota five --type=merge -p {{\"spec\":{{\"hard\":{{\"pods\":\"6\"}}}}}}"));
        await QuotaUntil(ns, "five", q => q.Str("status.hard.pods") == "6" && q.Str("status.used.pods") == "5", "the recount after the spec change");
    }

    const string Defaults = """
        apiVersion: v1
        kind: LimitRange
        metadata:
          name: defaults
        spec:
          limits:
          - type: Container
            min: {cpu: 100m}
            max: {cpu: "1", memory: 1Gi}
            defaultRequest: {cpu: 200m, memory: 128Mi}
            default: {cpu: 500m, memory: 256Mi}
          - type: Pod
            max: {cpu: "2"}
        """;

    [Fact]
    public async Task LimitRange_fills_defaults_and_refuses_below_min_and_above_max()
    {
        const string ns = "quota-limits";
        await NamespaceAsync(ns);
        Lines(await s.Kubectl($"-n {ns} apply -f -", Defaults), "limitrange/defaults created");
        var get = await s.Kubectl($"-n {ns} get limits");
        Ok(get);
        Assert.Equal(["NAME", "CREATED AT"], Cols(Rows(get.Stdout)[0]));
        Assert.Matches("^defaults +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$", Rows(get.Stdout)[1]);

        Lines(await s.Kubectl($"-n {ns} run web --image=nginx:1.25 --restart=Never"), "pod/web created");
        var pod = await Json(s, $"-n {ns} get pod web");
        Assert.Equal("LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web",
            pod.Str("metadata.annotations.kubernetes\\.io/limit-ranger") ?? pod["metadata"]?["annotations"]?["kubernetes.io/limit-ranger"]?.GetValue<string>());
        Assert.Equal("200m", pod["spec"]!["containers"]![0]!["resources"]!["requests"]!["cpu"]!.GetValue<string>());
        Assert.Equal("128Mi", pod["spec"]!["containers"]![0]!["resources"]!["requests"]!["memory"]!.GetValue<string>());
        Assert.Equal("500m", pod["spec"]!["containers"]![0]!["resources"]!["limits"]!["cpu"]!.GetValue<string>());
        var yaml = await s.Kubectl($"-n {ns} get pod web -o yaml");
        Assert.Contains("  annotations:\n    kubernetes.io/limit-ranger: 'LimitRanger plugin set: cpu, memory request for container\n      web; cpu, memory limit for container web'\n", yaml.Stdout);

        FailsWith(await s.Kubectl($"-n {ns} run small --image=nginx:1.25 --restart=Never --overrides={{\"spec\":{{\"containers\":[{{\"name\":\"small\",\"image\":\"nginx:1.25\",\"resources\":{{\"requests\":{{\"cpu\":\"50m\"}}}}}}]}}}}"),
            "Error from server (Forbidden): pods \"small\" is forbidden: minimum cpu usage per Container is 100m, but request is 50m");
        FailsWith(await s.Kubectl($"-n {ns} run big --image=nginx:1.25 --restart=Never --overrides={{\"spec\":{{\"containers\":[{{\"name\":\"big\",\"image\":\"nginx:1.25\",\"resources\":{{\"limits\":{{\"cpu\":\"2\"}}}}}}]}}}}"),
            "Error from server (Forbidden): pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2");
        Assert.Single(Live(await Json(s, $"-n {ns} get pods")));

        // the stored LimitRange carries the API server's defaulting; describe prints kubectl's table
        var maxOnly = await s.Kubectl($"-n {ns} create --dry-run=server -o json -f -", """
            apiVersion: v1
            kind: LimitRange
            metadata: {name: maxonly}
            spec:
              limits:
              - type: Container
                max: {cpu: "1.5", memory: 1Gi}
                min: {memory: 64Mi}
            """);
        Ok(maxOnly);
        var item = JsonNode.Parse(maxOnly.Stdout)!["spec"]!["limits"]![0]!;
        Assert.Equal("""{"cpu":"1500m","memory":"1Gi"}""", item["default"]!.ToJsonString());
        Assert.Equal("""{"cpu":"1500m","memory":"1Gi"}""", item["defaultRequest"]!.ToJsonString());
        Assert.Equal("""{"cpu":"1500m","memory":"1Gi"}""", item["max"]!.ToJsonString());
        var describe = await s.Kubectl($"-n {ns} describe limitrange defaults");
        Ok(describe);
        var lines = Rows(describe.Stdout).Select(l => Spaces().Replace(l.TrimEnd(), " ")).ToList();
        Assert.Contains("Type Resource Min Max Default Request Default Limit Max Limit/Request Ratio", lines);
        Assert.Contains("Container cpu 100m 1 200m 500m -", lines);
        Assert.Contains("Name: defaults", lines);
        Assert.Contains("Container memory - 1Gi 128Mi 256Mi -", lines);
        Assert.Contains("Pod cpu - 2 - - -", lines);
    }

    [Fact]
    public async Task Compute_quota_requires_requests_and_counts_LimitRange_defaults()
    {
        const string ns = "quota-compute";
        await NamespaceAsync(ns);
        Ok(await s.Kubectl($"-n {ns} create quota compute --hard=requests.cpu=1,requests.memory=1Gi,limits.cpu=2"));
        await QuotaUntil(ns, "compute", q => q.Str("status.used.requests\\.cpu") is not null || q["status"]?["used"]?["requests.cpu"] is not null, "the quota's first sync");
        FailsWith(await s.Kubectl($"-n {ns} run bare --image=nginx:1.25 --restart=Never"),
            "Error from server (Forbidden): pods \"bare\" is forbidden: failed quota: compute: must specify limits.cpu for: bare; requests.cpu for: bare; requests.memory for: bare");
        Lines(await s.Kubectl($"-n {ns} apply -f -", Defaults), "limitrange/defaults created");
        Lines(await s.Kubectl($"-n {ns} run a --image=nginx:1.25 --restart=Never"), "pod/a created");
        var q = await Json(s, $"-n {ns} get quota compute");
        Assert.Equal("200m", q["status"]!["used"]!["requests.cpu"]!.GetValue<string>());
        Assert.Equal("128Mi", q["status"]!["used"]!["requests.memory"]!.GetValue<string>());
        Assert.Equal("500m", q["status"]!["used"]!["limits.cpu"]!.GetValue<string>());
        FailsWith(await s.Kubectl($"-n {ns} run b --image=nginx:1.25 --restart=Never --overrides={{\"spec\":{{\"containers\":[{{\"name\":\"b\",\"image\":\"nginx:1.25\",\"resources\":{{\"requests\":{{\"cpu\":\"900m\"}}}}}}]}}}}"),
            "Error from server (Forbidden): pods \"b\" is forbidden: exceeded quota: compute, requested: requests.cpu=900m, used: requests.cpu=200m, limited: requests.cpu=1");
        var get = await s.Kubectl($"-n {ns} get quota compute");
        Ok(get);
        var row = Cols(Rows(get.Stdout)[1]);
        Assert.Equal("requests.cpu: 200m/1, requests.memory: 128Mi/1Gi", row[2]);
        Assert.Equal("limits.cpu: 500m/2", row[3]);
    }

    [Fact]
    public async Task Bad_quota_and_limit_range_input_is_refused_with_kube_messages()
    {
        const string ns = "quota-bad";
        await NamespaceAsync(ns);
        var bad = await s.Kubectl($"-n {ns} apply -f -", """
            apiVersion: v1
            kind: ResourceQuota
            metadata: {name: q}
            spec:
              hard: {pods: abc}
            """);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'", bad.Stderr);
        var negative = await s.Kubectl($"-n {ns} apply -f -", """
            apiVersion: v1
            kind: ResourceQuota
            metadata: {name: q}
            spec:
              hard: {pods: "-1", cpu: "1.5", count/deployments.apps: "1.5"}
            """);
        FailsWith(negative, "The ResourceQuota \"q\" is invalid: \n* spec.hard[count/deployments.apps]: Invalid value: \"1500m\": must be an integer\n* spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0");
        var inverted = await s.Kubectl($"-n {ns} apply -f -", """
            apiVersion: v1
            kind: LimitRange
            metadata: {name: lr}
            spec:
              limits:
              - type: Container
                max: {cpu: "1"}
                default: {cpu: "2"}
            """);
        Assert.Equal(1, inverted.ExitCode);
        Assert.Contains("The LimitRange \"lr\" is invalid: ", inverted.Stderr);
        Assert.Contains("spec.limits[0].default[cpu]: Invalid value: \"1\": default value 2 is greater than max value 1", inverted.Stderr);
        Assert.Contains("spec.limits[0].defaultRequest[cpu]: Invalid value: \"2\": default request value 2 is greater than max value 1", inverted.Stderr);
        var podDefault = await s.Kubectl($"-n {ns} apply -f -", """
            apiVersion: v1
            kind: LimitRange
            metadata: {name: lr}
            spec:
              limits:
              - type: Pod
                default: {cpu: "1"}
            """);
        FailsWith(podDefault, "The LimitRange \"lr\" is invalid: spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'");
        Assert.Empty((await Json(s, $"-n {ns} get quota,limits")).Arr("items"));
    }

    [Fact]
    public async Task Discovery_explain_and_rbac_know_the_kinds()
    {
        var res = await s.Kubectl("api-resources --api-group= -o wide");
        Ok(res);
        var quota = Rows(res.Stdout).Select(Cols).Single(c => c[0] == "resourcequotas");
        Assert.Equal(["resourcequotas", "quota", "v1", "true", "ResourceQuota", "create,delete,deletecollection,get,list,patch,update,watch"], quota[..6]);
        var limits = Rows(res.Stdout).Select(Cols).Single(c => c[0] == "limitranges");
        Assert.Equal(["limitranges", "limits", "v1", "true", "LimitRange"], limits[..5]);
        var explain = await s.Kubectl("explain resourcequota.spec.hard");
        Ok(explain);
        Assert.Contains("KIND:       ResourceQuota", explain.Stdout);
        Assert.Contains("FIELD: hard <map[string]", explain.Stdout);
        Assert.Contains("hard is the set of desired hard limits for each named resource.", explain.Stdout);
        var lr = await s.Kubectl("explain limitrange.spec.limits.maxLimitRequestRatio");
        Ok(lr);
        Assert.Contains("FIELD: maxLimitRequestRatio <map[string]", lr.Stdout);
    }
}
