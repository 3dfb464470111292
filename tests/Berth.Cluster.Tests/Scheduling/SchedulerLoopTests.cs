using Berth.Cluster.Client;
using Berth.Cluster.Scheduling;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Scheduling;

/// <summary>The whole scheduler over the in-memory seam: informers, queue, binding, events, retries.</summary>
public class SchedulerLoopTests
{
    static SchedulerOptions Fast => new() { Parallelism = 1, Seed = 3, InitialBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromMilliseconds(200) };

    [Fact]
    public async Task Binds_pending_pods_and_records_scheduled_events()
    {
        var c = new InMemoryClusterClient();
        await c.CreateAsync(Node("n1"));
        await c.CreateAsync(Node("n2"));
        await using var s = new Scheduler(c, Fast);
        await s.StartAsync();
        for (int i = 0; i < 20; i++) await c.CreateAsync(Pod("p" + i));
        await Eventually(async () => (await c.ListAsync<V1Pod>("default")).Items.ToList(), l => l.Count == 20 && l.All(p => p.Spec.NodeName is "n1" or "n2"), what: "all pods bound");
        var pod = (await c.GetAsync<V1Pod>("default", "p0"))!;
        Assert.Equal("True", PodConditions.Get(pod.Status, "PodScheduled")!.Status);
        var events = await Eventually(async () => (await c.ListAsync<Corev1Event>("default")).Items.ToList(), l => l.Count(e => e.Reason == "Scheduled") == 20, what: "Scheduled events");
        var ev = events.First(e => e.InvolvedObject.Name == "p0");
        Assert.Equal($"Successfully assigned default/p0 to {pod.Spec.NodeName}", ev.Message);
        Assert.Equal("default-scheduler", ev.Source.Component);
    }

    [Fact]
    public async Task Unschedulable_pod_gets_condition_and_event_then_schedules_when_a_node_appears()
    {
        var c = new InMemoryClusterClient();
        await c.CreateAsync(Node("small", memory: "1Gi"));
        await using var s = new Scheduler(c, Fast);
        await s.StartAsync();
        await c.CreateAsync(Pod("big", memory: "4Gi"));
        var pod = await Eventually(() => c.GetAsync<V1Pod>("default", "big").AsTask(), p => PodConditions.Get(p.Status, "PodScheduled") is not null, what: "PodScheduled condition");
        var cond = PodConditions.Get(pod.Status, "PodScheduled")!;
        Assert.Equal("False", cond.Status);
        Assert.Equal("Unschedulable", cond.Reason);
        Assert.Equal("0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..", cond.Message);
        var events = await Eventually(async () => (await c.ListAsync<Corev1Event>("default")).Items.ToList(), l => l.Any(e => e.Reason == "FailedScheduling"), what: "FailedScheduling event");
        var fe = events.Single(e => e.Reason == "FailedScheduling");
        Assert.Equal("Warning", fe.Type);
        Assert.Equal(cond.Message, fe.Message);
        Assert.Equal("big", fe.InvolvedObject.Name);

        await c.CreateAsync(Node("large", memory: "8Gi"));
        await Eventually(() => c.GetAsync<V1Pod>("default", "big").AsTask(), p => p.Spec.NodeName == "large", what: "pod bound to the new node");
    }

    [Fact]
    public async Task Deleting_a_bound_pod_frees_room_for_a_waiting_one()
    {
        var c = new InMemoryClusterClient();
        await c.CreateAsync(Node("n", cpu: "1"));
        await using var s = new Scheduler(c, Fast);
        await s.StartAsync();
        await c.CreateAsync(Pod("first", cpu: "800m"));
        await Eventually(() => c.GetAsync<V1Pod>("default", "first").AsTask(), p => p.Spec.NodeName == "n", what: "first bound");
        await c.CreateAsync(Pod("second", cpu: "800m"));
        await Eventually(() => c.GetAsync<V1Pod>("default", "second").AsTask(), p => PodConditions.Get(p.Status, "PodScheduled")?.Reason == "Unschedulable", what: "second unschedulable");
        await c.DeleteAsync<V1Pod>("default", "first");
        await Eventually(() => c.GetAsync<V1Pod>("default", "second").AsTask(), p => p.Spec.NodeName == "n", what: "second bound after the delete");
    }

    [Fact]
    public async Task Pods_for_other_schedulers_and_bound_pods_are_left_alone()
    {
        var c = new InMemoryClusterClient();
        await c.CreateAsync(Node("n1"));
        await c.CreateAsync(Node("n2"));
        await using var s = new Scheduler(c, Fast);
        await s.StartAsync();
        var other = Pod("other"); other.Spec.SchedulerName = "my-scheduler";
        await c.CreateAsync(other);
        await c.CreateAsync(Pod("pinned", nodeName: "n2"));
        await c.CreateAsync(Pod("mine"));
        await Eventually(() => c.GetAsync<V1Pod>("default", "mine").AsTask(), p => p.Spec.NodeName is not null, what: "mine bound");
        Assert.Null((await c.GetAsync<V1Pod>("default", "other"))!.Spec.NodeName);
        Assert.Equal("n2", (await c.GetAsync<V1Pod>("default", "pinned"))!.Spec.NodeName);
        Assert.Equal(1, s.Scheduled);
    }

    [Fact]
    public async Task Preemption_evicts_the_lower_priority_pod_and_the_preemptor_then_binds()
    {
        var c = new InMemoryClusterClient();
        await c.CreateAsync(Node("n", cpu: "1"));
        await using var s = new Scheduler(c, Fast);
        await s.StartAsync();
        await c.CreateAsync(Pod("low", cpu: "800m", priority: 1));
        await Eventually(() => c.GetAsync<V1Pod>("default", "low").AsTask(), p => p.Spec.NodeName == "n", what: "low bound");
        await c.CreateAsync(Pod("high", cpu: "800m", priority: 1000));
        await Eventually(() => c.GetAsync<V1Pod>("default", "high").AsTask(), p => p.Spec.NodeName == "n", what: "high bound after preemption");
        Assert.Null(await c.GetAsync<V1Pod>("default", "low"));
    }
}
