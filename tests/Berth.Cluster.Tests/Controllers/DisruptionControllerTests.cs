using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class DisruptionControllerTests
{
    static V1PodDisruptionBudget Budget(string name, IntOrString? minAvailable = null, IntOrString? maxUnavailable = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1PodDisruptionBudgetSpec { Selector = Harness.Selector("web"), MinAvailable = minAvailable, MaxUnavailable = maxUnavailable },
    };

    [Fact]
    public async Task Budgets_count_ready_pods_against_the_deployment_scale()
    {
        await using var h = new Harness();
        h.Add(new DeploymentController(h.Factory));
        h.Add(new ReplicaSetController(h.Factory));
        h.Add(new DisruptionController(h.Factory));
        await h.StartAsync();
        await h.Client.CreateAsync(new V1Deployment
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default" },
            Spec = new V1DeploymentSpec { Replicas = 4, Selector = Harness.Selector("web"), Template = Harness.Template("web") },
        });
        await h.Client.CreateAsync(Budget("half", minAvailable: "50%"));
        await h.Client.CreateAsync(Budget("one-down", maxUnavailable: 1));
        await h.Client.CreateAsync(Budget("three", minAvailable: 3));

        async Task<V1PodDisruptionBudgetStatus> Status(string name, Func<V1PodDisruptionBudgetStatus, bool> ok) =>
            (await Eventually(() => h.Client.GetAsync<V1PodDisruptionBudget>("default", name).AsTask(), b => b.Status is { } s && ok(s), what: name)).Status;

        // 4 ready pods of a 4-replica deployment: 50% → 2 needed (2 allowed), maxUnavailable 1 → 3 needed, minAvailable 3
        var half = await Status("half", s => s.CurrentHealthy == 4);
        Assert.Equal((4, 2, 4, 2), (half.CurrentHealthy, half.DesiredHealthy, half.ExpectedPods, half.DisruptionsAllowed));
        Assert.Equal(("True", "SufficientPods"), (half.Conditions.Single().Status, half.Conditions.Single().Reason));
        var oneDown = await Status("one-down", s => s.CurrentHealthy == 4);
        Assert.Equal((3, 4, 1), (oneDown.DesiredHealthy, oneDown.ExpectedPods, oneDown.DisruptionsAllowed));
        var three = await Status("three", s => s.CurrentHealthy == 4);
        Assert.Equal((3, 4, 1), (three.DesiredHealthy, three.ExpectedPods, three.DisruptionsAllowed));

        // two pods turn unready: nothing may be disrupted under "three" and "one-down"
        foreach (var p in (await h.PodsAsync()).Take(2))
        {
            var u = Kinds.Clone(p);
            u.Status.Conditions = [new V1PodCondition { Type = "Ready", Status = "False" }];
            u.Metadata.ResourceVersion = null;
            var (prev, name) = (h.MakeReady, p.Metadata.Name);
            h.MakeReady = x => x.Metadata.Name != name && prev(x);
            await h.Client.UpdateStatusAsync(u);
        }
        three = await Status("three", s => s.CurrentHealthy == 2);
        Assert.Equal((0, "False", "InsufficientPods"), (three.DisruptionsAllowed, three.Conditions.Single().Status, three.Conditions.Single().Reason));
        Assert.Equal(0, (await Status("one-down", s => s.CurrentHealthy == 2)).DisruptionsAllowed);
        Assert.Equal(0, (await Status("half", s => s.CurrentHealthy == 2)).DisruptionsAllowed);
    }
}
