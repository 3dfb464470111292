using Berth.Cluster.Client;
using Berth.Cluster.ControlPlane;
using Berth.Cluster.Tests.Client;
using k8s.Models;

namespace Berth.Cluster.Tests.ControlPlane;

public class LeaderElectorTests
{
    static readonly LeaderElectionConfig Fast = new()
    {
        LeaseDuration = TimeSpan.FromSeconds(2), RenewDeadline = TimeSpan.FromSeconds(1.5), RetryPeriod = TimeSpan.FromMilliseconds(200),
    };

    // The take-over test measures a lease running out on the wall clock: a 5 s lease leaves the leader
    // ample room to renew (every 250 ms) even when CI's parallel test projects stall it for seconds.
    static readonly LeaderElectionConfig Patient = new()
    {
        LeaseDuration = TimeSpan.FromSeconds(5), RenewDeadline = TimeSpan.FromSeconds(4), RetryPeriod = TimeSpan.FromMilliseconds(250),
    };

    /// <summary>Two candidates on one cluster: exactly one leads; when the leader stops renewing (its process "hangs"), the other takes over after the lease duration.</summary>
    [Fact]
    public async Task One_of_two_leads_and_the_other_takes_over_when_renewals_stop()
    {
        await using var cluster = await LocalCluster.StartAsync();
        var a = new LeaderElector(cluster.Client, "kube-system", "kube-scheduler", "a", Patient with { ReleaseOnCancel = false });
        var b = new LeaderElector(cluster.Client, "kube-system", "kube-scheduler", "b", Patient with { ReleaseOnCancel = false });
        var leading = 0;
        var maxLeading = 0;
        var ledBy = new List<string>();
        async Task Work(string who, CancellationToken t)
        {
            lock (ledBy) { ledBy.Add(who); maxLeading = Math.Max(maxLeading, ++leading); }
            try { await Task.Delay(Timeout.Infinite, t); }
            catch (OperationCanceledException) { }
            finally { lock (ledBy) leading--; }
        }
        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = a.RunAsync(t => Work("a", t), stopA.Token);
        await Build.Eventually(() => Task.FromResult<object?>(a.IsLeader ? "" : null), _ => true, what: "a leads");
        var runB = b.RunAsync(t => Work("b", t), stopB.Token);
        await Task.Delay(6000);                                  // longer than a lease: a keeps renewing, b must not win
        Assert.True(a.IsLeader);
        Assert.False(b.IsLeader);
        Assert.Equal("a", b.ObservedHolder);
        var lease = await cluster.Client.GetAsync<V1Lease>("kube-system", "kube-scheduler");
        Assert.Equal("a", lease!.Spec.HolderIdentity);
        Assert.Equal(5, lease.Spec.LeaseDurationSeconds);

        var t0 = Environment.TickCount64;
        stopA.Cancel();                                           // a stops renewing without releasing
        await runA;
        await Build.Eventually(() => Task.FromResult<object?>(b.IsLeader ? "" : null), _ => true, timeoutMs: 20_000, what: "b takes over");
        var took = Environment.TickCount64 - t0;
        Assert.True(took >= 3500, $"b took over after {took} ms, before a's lease ran out");
        lease = await cluster.Client.GetAsync<V1Lease>("kube-system", "kube-scheduler");
        Assert.Equal("b", lease!.Spec.HolderIdentity);
        Assert.Equal(1, lease.Spec.LeaseTransitions);
        Assert.Equal(1, maxLeading);
        Assert.Equal(["a", "b"], ledBy);
        stopB.Cancel();
        await runB;
    }

    [Fact]
    public async Task A_released_lease_is_taken_at_once_and_a_lost_lease_stops_the_work()
    {
        await using var cluster = await LocalCluster.StartAsync();
        var a = new LeaderElector(cluster.Client, "kube-system", "kube-controller-manager", "a", Fast);
        using var stopA = new CancellationTokenSource();
        var runA = a.RunAsync(t => Task.Delay(Timeout.Infinite, t), stopA.Token);
        await Build.Eventually(() => Task.FromResult<object?>(a.IsLeader ? "" : null), _ => true, what: "a leads");
        stopA.Cancel();
        await runA;
        var released = await cluster.Client.GetAsync<V1Lease>("kube-system", "kube-controller-manager");
        Assert.Null(released!.Spec.HolderIdentity);

        var b = new LeaderElector(cluster.Client, "kube-system", "kube-controller-manager", "b", Fast);
        Assert.True(await b.TryAcquireOrRenewAsync(default));     // no wait for an empty holder

        // Someone else overwrites the lease (b's renewals now conflict or see another holder): b's work is cancelled.
        using var stopB = new CancellationTokenSource();
        var workStopped = new TaskCompletionSource();
        var runB = b.RunAsync(async t => { try { await Task.Delay(Timeout.Infinite, t); } catch (OperationCanceledException) { workStopped.TrySetResult(); } }, stopB.Token);
        await Build.Eventually(() => Task.FromResult<object?>(b.IsLeader ? "" : null), _ => true, what: "b leads");
        var lease = await cluster.Client.GetAsync<V1Lease>("kube-system", "kube-controller-manager");
        lease!.Spec.HolderIdentity = "intruder";
        lease.Spec.RenewTime = DateTime.UtcNow;
        await cluster.Client.UpdateAsync(lease);
        await workStopped.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(b.IsLeader);
        stopB.Cancel();
        await runB;
    }
}
