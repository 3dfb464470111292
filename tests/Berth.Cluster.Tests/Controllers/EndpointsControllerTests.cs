using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class EndpointsControllerTests
{
    static V1Pod WebPod(string name, string ip, bool ready)
    {
        var p = Pod(name, labels: new() { ["app"] = "web" }, nodeName: "n1");
        p.Spec.Containers[0].Ports = [new V1ContainerPort { Name = "http", ContainerPort = 8080 }];
        p.Status = new V1PodStatus { Phase = "Running", PodIP = ip, Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False" }] };
        return p;
    }

    [Fact]
    public async Task Ready_and_unready_pods_become_addresses_and_slice_endpoints()
    {
        await using var h = new Harness { Kubelet = false };
        h.Add(new EndpointsController(h.Factory));
        await h.StartAsync();
        await h.Client.CreateAsync(new V1Service
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default" },
            Spec = new V1ServiceSpec { Selector = new Dictionary<string, string> { ["app"] = "web" }, Ports = [new V1ServicePort { Name = "http", Port = 80, TargetPort = "http" }] },
        });
        var a = await h.Client.CreateAsync(WebPod("a", "10.0.0.1", ready: true));
        await h.Client.CreateAsync(WebPod("b", "10.0.0.2", ready: false));
        await h.Client.CreateAsync(Pod("other", labels: new() { ["app"] = "db" }));

        var ep = await Eventually(() => h.Client.GetAsync<V1Endpoints>("default", "web").AsTask(),
            e => e.Subsets is { Count: 1 } s && s[0].Addresses?.Count == 1 && s[0].NotReadyAddresses?.Count == 1, what: "endpoints");
        var subset = ep.Subsets[0];
        Assert.Equal("10.0.0.1", subset.Addresses[0].Ip);
        Assert.Equal("a", subset.Addresses[0].TargetRef.Name);
        Assert.Equal("10.0.0.2", subset.NotReadyAddresses[0].Ip);
        Assert.Equal(8080, subset.Ports.Single().Port);
        Assert.Equal("http", subset.Ports.Single().Name);

        var slice = await Eventually(async () => (await h.Client.ListAsync<V1EndpointSlice>("default")).Items.ToList(), l => l.Count == 1 && l[0].Endpoints?.Count == 2, what: "slice");
        Assert.Equal("web", slice[0].Metadata.Labels[EndpointsController.ServiceNameLabel]);
        Assert.Equal("IPv4", slice[0].AddressType);
        Assert.True(slice[0].Endpoints.Single(e => e.Addresses[0] == "10.0.0.1").Conditions.Ready);
        Assert.False(slice[0].Endpoints.Single(e => e.Addresses[0] == "10.0.0.2").Conditions.Ready);

        // The ready pod goes away: only the unready one is left.
        await h.Client.DeleteAsync<V1Pod>("default", "a");
        await Eventually(() => h.Client.GetAsync<V1Endpoints>("default", "web").AsTask(),
            e => e.Subsets is { Count: 1 } s && (s[0].Addresses?.Count ?? 0) == 0 && s[0].NotReadyAddresses?.Count == 1, what: "endpoints after delete");

        // Deleting the service removes its Endpoints and slice.
        await h.Client.DeleteAsync<V1Service>("default", "web");
        await Eventually(async () => (await h.Client.ListAsync<V1Endpoints>("default")).Items.ToList(), l => l.Count == 0, what: "endpoints removed");
        await Eventually(async () => (await h.Client.ListAsync<V1EndpointSlice>("default")).Items.ToList(), l => l.Count == 0, what: "slice removed");
    }
}
