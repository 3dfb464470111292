using System.Text.Json.Nodes;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>OpenAPI v2/v3 documents with real schemas: kubectl explain, client- and server-side field validation.</summary>
public sealed class OpenApiTests(BerthServer s) : IClassFixture<BerthServer>
{
    static void Ok(BerthServer.Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    static string Deployment(string name, string extraContainerField = "", string extraSpecField = "") => $$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{name}}
        spec:
          replicas: 1
          {{extraSpecField}}
          selector:
            matchLabels: {app: {{name}}}
          template:
            metadata:
              labels: {app: {{name}}}
            spec:
              containers:
              - name: c
                image: busybox
                {{extraContainerField}}
        """;

    [Fact]
    public async Task Explain_a_field_and_a_kind_recursively()
    {
        var r = await s.Kubectl("explain deployment.spec.replicas");
        Ok(r);
        Assert.Contains("KIND:       Deployment", r.Stdout);
        Assert.Contains("VERSION:    v1", r.Stdout);
        Assert.Contains("FIELD: replicas <integer>", r.Stdout);
        Assert.Contains("Number of desired pods.", r.Stdout);

        var pods = await s.Kubectl("explain pods --recursive");
        Ok(pods);
        foreach (var f in new[] { "containers\t<[]Container>", "image\t<string>", "nodeSelector\t<map[string]string>", "ownerReferences\t<[]OwnerReference>", "resources\t<ResourceRequirements>" })
            Assert.Contains(f, pods.Stdout);

        var svc = await s.Kubectl("explain svc.spec.ports.targetPort");
        Ok(svc);
        Assert.Contains("targetPort <IntOrString>", svc.Stdout);

        var bad = await s.Kubectl("explain deployment.spec.nosuchfield");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("field \"nosuchfield\" does not exist", bad.Stderr);
    }

    [Fact]
    public async Task Unknown_nested_fields_are_refused_with_strict_validation()
    {
        var create = await s.Kubectl("create --validate=true -f -", Deployment("strict1", extraContainerField: "imagee: typo"));
        Assert.NotEqual(0, create.ExitCode);
        Assert.Contains("Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.template.spec.containers[0].imagee\"", create.Stderr);

        var apply = await s.Kubectl("apply --validate=strict -f -", Deployment("strict2", extraSpecField: "replicass: 3"));
        Assert.NotEqual(0, apply.ExitCode);
        Assert.Contains("unknown field \"spec.replicass\"", apply.Stderr);
        Assert.NotEqual(0, (await s.Kubectl("get deploy strict1")).ExitCode);
        Assert.NotEqual(0, (await s.Kubectl("get deploy strict2")).ExitCode);
    }

    [Fact]
    public async Task Warn_creates_and_warns_and_ignore_is_silent()
    {
        var warn = await s.Kubectl("create --validate=warn -f -", Deployment("warned", extraSpecField: "replicass: 3"));
        Ok(warn);
        Assert.Contains("Warning: unknown field \"spec.replicass\"", warn.Stderr);
        var ignore = await s.Kubectl("create --validate=false -f -", Deployment("ignored", extraSpecField: "replicass: 3"));
        Ok(ignore);
        Assert.DoesNotContain("unknown field", ignore.Stderr);
        var good = await s.Kubectl("create --validate=strict -f -", Deployment("fine"));
        Ok(good);
        Assert.DoesNotContain("Warning", good.Stderr);
    }

    [Fact]
    public async Task Documents_carry_schemas_for_every_served_kind()
    {
        var v2 = JsonNode.Parse((await s.Kubectl("get --raw /openapi/v2")).Stdout)!;
        var defs = v2["definitions"]!.AsObject();
        foreach (var d in new[] { "io.k8s.api.core.v1.Pod", "io.k8s.api.apps.v1.Deployment", "io.k8s.api.batch.v1.CronJob", "io.k8s.api.discovery.v1.EndpointSlice",
                                  "io.k8s.api.coordination.v1.Lease", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.apimachinery.pkg.api.resource.Quantity" })
            Assert.True(defs.ContainsKey(d), d);
        Assert.Equal("integer", v2["definitions"]!["io.k8s.api.apps.v1.DeploymentSpec"]!["properties"]!["replicas"]!["type"]!.GetValue<string>());

        var index = JsonNode.Parse((await s.Kubectl("get --raw /openapi/v3")).Stdout)!["paths"]!.AsObject();
        foreach (var gv in new[] { "api/v1", "apis/apps/v1", "apis/batch/v1", "apis/discovery.k8s.io/v1", "apis/coordination.k8s.io/v1" })
            Assert.True(index.ContainsKey(gv), gv);
        var url = index["apis/apps/v1"]!["serverRelativeURL"]!.GetValue<string>();
        var apps = JsonNode.Parse((await s.Kubectl($"get --raw {url}")).Stdout)!;
        var schemas = apps["components"]!["schemas"]!.AsObject();
        Assert.True(schemas.ContainsKey("io.k8s.api.apps.v1.StatefulSet"));
        Assert.False(schemas.ContainsKey("io.k8s.api.batch.v1.Job"));
        Assert.Equal("#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec", schemas["io.k8s.api.apps.v1.Deployment"]!["properties"]!["spec"]!["allOf"]![0]!["$ref"]!.GetValue<string>());
        Assert.NotEqual(0, (await s.Kubectl("get --raw /openapi/v3/apis/nosuch/v1")).ExitCode);
    }
}

/// <summary>Server-side fieldValidation with repeated keys, straight over HTTP (kubectl never sends them).</summary>
public sealed class FieldValidationApiTests(Api.ApiFixture f) : IClassFixture<Api.ApiFixture>
{
    const string Body = """
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME","name":"NAME","unknownMeta":1},
         "data":{"a":"1"},"dta":{"x":"y"},"data":{"a":"2"}}
        """;

    async Task<HttpResponseMessage> Post(string name, string mode)
    {
        var content = new StringContent(Body.Replace("NAME", name), System.Text.Encoding.UTF8, "application/json");
        return await f.Client.PostAsync($"/api/v1/namespaces/default/configmaps?fieldValidation={mode}", content);
    }

    [Fact]
    public async Task Strict_names_duplicate_and_unknown_fields_in_document_order()
    {
        var r = await Post("dup1", "Strict");
        Assert.Equal(400, (int)r.StatusCode);
        var status = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        Assert.Equal("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"metadata.name\", unknown field \"metadata.unknownMeta\", unknown field \"dta\", duplicate field \"data\"",
            status["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Warn_keeps_the_last_value_and_says_why_and_ignore_is_silent()
    {
        var r = await Post("dup2", "Warn");
        Assert.Equal(201, (int)r.StatusCode);
        Assert.Equal(["299 - \"duplicate field \\\"metadata.name\\\"\"", "299 - \"unknown field \\\"metadata.unknownMeta\\\"\"", "299 - \"unknown field \\\"dta\\\"\"", "299 - \"duplicate field \\\"data\\\"\""],
            r.Headers.GetValues("Warning"));
        var obj = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        Assert.Equal("2", obj["data"]!["a"]!.GetValue<string>());
        var i = await Post("dup3", "Ignore");
        Assert.Equal(201, (int)i.StatusCode);
        Assert.False(i.Headers.Contains("Warning"));
        var bad = await Post("dup4", "Sometimes");
        Assert.Equal(400, (int)bad.StatusCode);
    }
}

/// <summary>The documents' size and cost: built once, then served from cached bytes.</summary>
public sealed class OpenApiCostTests(Api.ApiFixture f, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<Api.ApiFixture>
{
    [Fact]
    public async Task Documents_are_bounded_and_cached()
    {
        foreach (var path in new[] { "/openapi/v2", "/openapi/v3/api/v1", "/openapi/v3/apis/apps/v1" })
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var first = await f.Client.GetByteArrayAsync(path);
            var cold = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            var second = await f.Client.GetByteArrayAsync(path);
            var warm = sw.Elapsed.TotalMilliseconds;
            output.WriteLine($"{path}: {first.Length} bytes, first {cold:F1} ms, cached {warm:F1} ms");
            Assert.Equal(first, second);
            Assert.InRange(first.Length, 10_000, 4 << 20);
        }
    }
}
