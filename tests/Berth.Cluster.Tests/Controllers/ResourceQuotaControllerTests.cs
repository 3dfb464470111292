using Berth.Cluster.Api.Admission;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using k8s.Models;

namespace Berth.Cluster.Tests.Controllers;

public sealed class ResourceQuotaControllerTests
{
    static V1ResourceQuota Quota(string name, Dictionary<string, string> hard, List<string>? scopes = null) => new()
    {
        ApiVersion = "v1", Kind = "ResourceQuota",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1ResourceQuotaSpec { Hard = hard.ToDictionary(kv => kv.Key, kv => new ResourceQuantity(kv.Value)), Scopes = scopes },
    };

    static V1Pod Pod(string name, string? cpu = null, string? memory = null, string? limitCpu = null) => new()
    {
        ApiVersion = "v1", Kind = "Pod",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1PodSpec
        {
            Containers =
            [
                new V1Container
                {
                    Name = "c", Image = "nginx:1",
                    Resources = new V1ResourceRequirements
                    {
                        Requests = new Dictionary<string, ResourceQuantity>(
                            new[] { ("cpu", cpu), ("memory", memory) }.Where(x => x.Item2 is not null).Select(x => KeyValuePair.Create(x.Item1, new ResourceQuantity(x.Item2!)))),
                        Limits = limitCpu is null ? null : new Dictionary<string, ResourceQuantity> { ["cpu"] = new ResourceQuantity(limitCpu) },
                    },
                },
            ],
        },
    };

    static async Task<V1ResourceQuota> UntilAsync(Harness h, string name, Func<V1ResourceQuota, bool> ok, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        V1ResourceQuota? q = null;
        while (DateTime.UtcNow < deadline)
        {
            q = await h.Client.GetAsync<V1ResourceQuota>("default", name);
            if (q is not null && ok(q)) return q;
            await Task.Delay(50);
        }
        throw new TimeoutException($"{what}: {(q is null ? "no quota" : System.Text.Encoding.UTF8.GetString(Kinds.ToJson(q)))}");
    }

    static string? Used(V1ResourceQuota q, string r) => q.Status?.Used is { } u && u.TryGetValue(r, out var v) ? Quantity.Parse(v.ToString()).ToString() : null;

    [Fact]
    public async Task Status_mirrors_hard_and_counts_pods_compute_and_releases_deletes_and_finished_pods()
    {
        await using var h = new Harness { Kubelet = false };
        h.Add(new ResourceQuotaController(h.Factory));
        await h.StartAsync();
        await h.Client.CreateAsync(Pod("a", cpu: "100m", memory: "64Mi", limitCpu: "500m"));
        await h.Client.CreateAsync(Pod("b", cpu: "250m", memory: "64Mi"));
        await h.Client.CreateAsync(new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = "cm", NamespaceProperty = "default" } });
        await h.Client.CreateAsync(Quota("q", new() { ["pods"] = "10", ["requests.cpu"] = "2", ["requests.memory"] = "1Gi", ["limits.cpu"] = "4", ["count/configmaps"] = "5", ["secrets"] = "3" }));

        var q = await UntilAsync(h, "q", q => Used(q, "pods") == "2", "first sync");
        Assert.Equal("350m", Used(q, "requests.cpu"));
        Assert.Equal("128Mi", Used(q, "requests.memory"));
        Assert.Equal("500m", Used(q, "limits.cpu"));
        Assert.Equal("1", Used(q, "count/configmaps"));
        Assert.Equal("0", Used(q, "secrets"));
        Assert.Equal(6, q.Status!.Hard.Count);
        Assert.Equal("2", q.Status.Hard["requests.cpu"].ToString());

        // a finished pod gives back its compute and pod count; a delete gives back everything
        var b = await h.Client.GetAsync<V1Pod>("default", "b");
        b!.Status = new V1PodStatus { Phase = "Failed" };
        await h.Client.UpdateStatusAsync(b);
        q = await UntilAsync(h, "q", q => Used(q, "pods") == "1", "finished pod released");
        Assert.Equal("100m", Used(q, "requests.cpu"));
        await h.Client.DeleteAsync<V1Pod>("default", "a");
        await h.Client.DeleteAsync<V1ConfigMap>("default", "cm");
        q = await UntilAsync(h, "q", q => Used(q, "pods") == "0" && Used(q, "count/configmaps") == "0", "deletes released");
        Assert.Equal("0", Used(q, "requests.cpu"));

        // a change of spec.hard is mirrored into status.hard
        var latest = (await h.Client.GetAsync<V1ResourceQuota>("default", "q"))!;
        latest.Spec.Hard["pods"] = new ResourceQuantity("3");
        latest.Spec.Hard.Remove("secrets");
        await h.Client.UpdateAsync(latest);
        q = await UntilAsync(h, "q", q => q.Status?.Hard?["pods"].ToString() == "3", "hard mirrored");
        Assert.False(q.Status!.Hard.ContainsKey("secrets"));
        Assert.False(q.Status.Used.ContainsKey("secrets"));
    }

    [Fact]
    public async Task Scoped_quota_counts_only_the_pods_its_scopes_select()
    {
        await using var h = new Harness { Kubelet = false };
        h.Add(new ResourceQuotaController(h.Factory));
        await h.StartAsync();
        await h.Client.CreateAsync(Pod("besteffort"));
        await h.Client.CreateAsync(Pod("burstable", cpu: "100m"));
        // the controller counts from its informers, as kube's (whose workers start once caches synced): pods
        // created before the quota are counted once the pod informer has them
        var pods = h.Factory.For<V1Pod>();
        await Build.Eventually(() => Task.FromResult(pods.Get("default", "burstable") is { } && pods.Get("default", "besteffort") is { } ? "" : null), _ => true, what: "pods in the informer");
        await h.Client.CreateAsync(Quota("be", new() { ["pods"] = "5" }, ["BestEffort"]));
        await h.Client.CreateAsync(Quota("nbe", new() { ["pods"] = "5", ["requests.cpu"] = "1" }, ["NotBestEffort"]));
        await UntilAsync(h, "be", q => Used(q, "pods") == "1", "BestEffort pods counted");
        var nbe = await UntilAsync(h, "nbe", q => Used(q, "pods") == "1", "NotBestEffort pods counted");
        Assert.Equal("100m", Used(nbe, "requests.cpu"));
    }

    [Fact]
    public async Task Resync_recounts_kinds_without_an_informer()
    {
        await using var h = new Harness { Kubelet = false };
        h.Add(new ResourceQuotaController(h.Factory, resync: TimeSpan.FromMilliseconds(200)));
        await h.StartAsync();
        await h.Client.CreateAsync(Quota("s", new() { ["secrets"] = "5" }));
        await UntilAsync(h, "s", q => Used(q, "secrets") == "0", "first sync");
        await h.Client.CreateAsync(new V1Secret { ApiVersion = "v1", Kind = "Secret", Metadata = new V1ObjectMeta { Name = "x", NamespaceProperty = "default" } });
        await UntilAsync(h, "s", q => Used(q, "secrets") == "1", "the periodic recount");
    }
}

public sealed class QuantityTests
{
    [Theory]
    [InlineData("100m", "100m")]
    [InlineData("0.5", "500m")]
    [InlineData("1.5", "1500m")]
    [InlineData("2048Mi", "2Gi")]
    [InlineData("1536Mi", "1536Mi")]
    [InlineData("1.5Gi", "1536Mi")]
    [InlineData("1000", "1k")]
    [InlineData("1e3", "1e3")]
    [InlineData("512Ki", "512Ki")]
    [InlineData("0", "0")]
    [InlineData("1", "1")]
    public void Canonical_form_is_apimachinery_s(string text, string canonical) => Assert.Equal(canonical, Quantity.Parse(text).ToString());

    [Theory]
    [InlineData("abc")]
    [InlineData("1Q")]
    [InlineData("")]
    [InlineData("1e")]
    public void Malformed_quantities_do_not_parse(string text) => Assert.Null(Quantity.TryParse(text));

    [Fact]
    public void Sums_keep_the_first_format()
    {
        Assert.Equal("256Mi", Quantity.Parse("128Mi").Add(Quantity.Parse("128Mi")).ToString());
        Assert.Equal("300m", Quantity.Zero.Add(Quantity.Parse("100m")).Add(Quantity.Parse("200m")).ToString());
        Assert.Equal("2", Quantity.Parse("1").Add(Quantity.Parse("1")).ToString());
    }
}
