using Berth.Cluster.Scheduling;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Scheduling;

public class QueueAndQuantityTests
{
    [Theory]
    [InlineData("100m", true, 100)]
    [InlineData("1", true, 1000)]
    [InlineData("1.5", true, 1500)]
    [InlineData("128Mi", false, 134217728)]
    [InlineData("1G", false, 1000000000)]
    [InlineData("2e3", false, 2000)]
    [InlineData("1Ki", false, 1024)]
    [InlineData("0.5m", true, 1)]
    public void Quantities_parse(string s, bool milli, long expect) => Assert.Equal(expect, Quantities.Parse(s, milli));

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("12Zi")]
    public void Bad_quantities_are_rejected(string s) => Assert.False(Quantities.TryParse(s, false, out _));

    [Fact]
    public void Active_queue_orders_by_priority_then_arrival()
    {
        var q = new SchedulingQueue();
        q.Add(new PodInfo(Pod("a", priority: 1)), 1);
        q.Add(new PodInfo(Pod("b", priority: 5)), 2);
        q.Add(new PodInfo(Pod("c", priority: 1)), 3);
        Assert.Equal("b", q.Pop()!.Info.Name);
        Assert.Equal("a", q.Pop()!.Info.Name);
        Assert.Equal("c", q.Pop()!.Info.Name);
        Assert.Null(q.Pop());
    }

    [Fact]
    public void Unschedulable_pods_wait_for_an_event_then_back_off()
    {
        var q = new SchedulingQueue(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        q.Add(new PodInfo(Pod("a")), 0);
        var p = q.Pop()!;
        q.AddUnschedulable(p, 100);
        Assert.Equal(1, q.UnschedulableCount);
        q.Flush(5000);
        Assert.Null(q.Pop());                    // no event: stays parked
        q.MoveAllToActiveOrBackoff(600);         // backoff (1 s from t=100) not over yet
        Assert.Equal(1, q.BackoffCount);
        Assert.Null(q.Pop());
        Assert.Equal(1100, q.Flush(1000));
        q.Flush(1100);
        var again = q.Pop()!;
        Assert.Equal(2, again.Attempts);
        q.AddUnschedulable(again, 2000);
        q.MoveAllToActiveOrBackoff(2000);
        Assert.Equal(4000, q.Flush(2000));       // second failure: 2 s
    }

    [Fact]
    public void A_move_request_during_the_cycle_sends_the_pod_to_backoff_not_parking()
    {
        var q = new SchedulingQueue();
        q.Add(new PodInfo(Pod("a")), 0);
        var p = q.Pop()!;
        q.MoveAllToActiveOrBackoff(10);          // e.g. a node was added while the pod was being scheduled
        q.AddUnschedulable(p, 20);
        Assert.Equal(0, q.UnschedulableCount);
        Assert.Equal(1, q.BackoffCount);
    }

    [Fact]
    public void Deleted_pods_leave_every_queue()
    {
        var q = new SchedulingQueue();
        var a = new PodInfo(Pod("a"));
        q.Add(a, 0);
        q.Delete(a.Uid);
        Assert.Null(q.Pop());
        Assert.Equal(0, q.Count);
    }
}
