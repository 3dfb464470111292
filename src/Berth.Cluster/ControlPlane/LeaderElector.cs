using Berth.Cluster.Client;
using k8s.Models;

namespace Berth.Cluster.ControlPlane;

/// <summary>client-go's leader election timings; the defaults are kube-scheduler's and kube-controller-manager's.</summary>
public sealed record LeaderElectionConfig
{
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Give the lease up when stopped, so another candidate takes over at once.</summary>
    public bool ReleaseOnCancel { get; init; } = true;
}

/// <summary>
/// Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does:
/// a candidate takes the lease when it is free or when its holder has not renewed it for
/// leaseDuration (measured on this candidate's clock, from the moment it last saw the lease change,
/// so clocks need not agree); the leader renews every retryPeriod and steps down when it could not
/// renew for renewDeadline. Every write is an optimistic-concurrency update, so two candidates
/// never both win. <see cref="RunAsync"/> runs the leader's work while leading and tries again
/// after losing the lease, until cancelled.
/// </summary>
public sealed class LeaderElector(IClusterClient client, string ns, string name, string identity, LeaderElectionConfig? config = null, TimeProvider? time = null)
{
    readonly LeaderElectionConfig _cfg = config ?? new LeaderElectionConfig();
    readonly TimeProvider _time = time ?? TimeProvider.System;
    string? _observedHolder;
    string? _observedRv;
    DateTimeOffset _observedAt;
    volatile bool _leading;

    public string Identity => identity;
    public string LeaseName => name;
    public bool IsLeader => _leading;
    /// <summary>The last holder this candidate saw (itself when leading).</summary>
    public string? ObservedHolder => _observedHolder;

    /// <summary>Campaigns, then runs <paramref name="lead"/> with a token that is cancelled when the lease is lost or <paramref name="ct"/> is; repeats until <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(Func<CancellationToken, Task> lead, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (!await AcquireAsync(ct).ConfigureAwait(false)) return;
            using var leading = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _leading = true;
            var work = Task.Run(() => lead(leading.Token), CancellationToken.None);
            try { await RenewUntilLostAsync(work, ct).ConfigureAwait(false); }
            finally
            {
                _leading = false;
                leading.Cancel();
                try { await work.ConfigureAwait(false); } catch (Exception) when (leading.IsCancellationRequested) { }
            }
            if (ct.IsCancellationRequested && _cfg.ReleaseOnCancel) await ReleaseAsync().ConfigureAwait(false);
        }
    }

    async Task<bool> AcquireAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (await TryAcquireOrRenewAsync(ct).ConfigureAwait(false)) return true;
            try { await Task.Delay(Jitter(_cfg.RetryPeriod), _time, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return false; }
        }
        return false;
    }

    /// <summary>Renews every retryPeriod; returns when renewal failed for renewDeadline, the work ended, or ct was cancelled.</summary>
    async Task RenewUntilLostAsync(Task work, CancellationToken ct)
    {
        var lastRenew = _time.GetUtcNow();
        while (!ct.IsCancellationRequested && !work.IsCompleted)
        {
            try { await Task.WhenAny(work, Task.Delay(_cfg.RetryPeriod, _time, ct)).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            if (ct.IsCancellationRequested || work.IsCompleted) return;
            bool renewed;
            try
            {
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
                attempt.CancelAfter(_cfg.RenewDeadline);
                renewed = await TryAcquireOrRenewAsync(attempt.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { renewed = false; }
            if (renewed) lastRenew = _time.GetUtcNow();
            else if (_time.GetUtcNow() - lastRenew >= _cfg.RenewDeadline || _observedHolder != identity) return;
        }
    }

    /// <summary>One attempt (client-go's tryAcquireOrRenew): true when this candidate holds the lease afterwards.</summary>
    public async Task<bool> TryAcquireOrRenewAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var nowTime = now.UtcDateTime;
        try
        {
            var lease = await client.GetAsync<V1Lease>(ns, name, ct).ConfigureAwait(false);
            if (lease is null)
            {
                var created = await client.CreateAsync(new V1Lease
                {
                    Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
                    Spec = new V1LeaseSpec
                    {
                        HolderIdentity = identity, LeaseDurationSeconds = (int)_cfg.LeaseDuration.TotalSeconds,
                        AcquireTime = nowTime, RenewTime = nowTime, LeaseTransitions = 0,
                    },
                }, ct).ConfigureAwait(false);
                Observe(created, now);
                return true;
            }
            var spec = lease.Spec ??= new V1LeaseSpec();
            if (lease.Metadata.ResourceVersion != _observedRv) Observe(lease, now);
            var holder = spec.HolderIdentity;
            var duration = TimeSpan.FromSeconds(spec.LeaseDurationSeconds ?? (int)_cfg.LeaseDuration.TotalSeconds);
            var iHold = holder == identity;
            if (!string.IsNullOrEmpty(holder) && !iHold && _observedAt + duration > now) return false;
            if (!iHold)
            {
                spec.LeaseTransitions = (spec.LeaseTransitions ?? 0) + 1;
                spec.AcquireTime = nowTime;
                spec.HolderIdentity = identity;
            }
            spec.RenewTime = nowTime;
            spec.LeaseDurationSeconds = (int)_cfg.LeaseDuration.TotalSeconds;
            var updated = await client.UpdateAsync(lease, ct).ConfigureAwait(false);
            Observe(updated, now);
            return true;
        }
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.Conflict or ClusterErrorKind.AlreadyExists or ClusterErrorKind.NotFound)
        {
            return false; // another candidate wrote first: look again next round
        }
    }

    void Observe(V1Lease lease, DateTimeOffset now)
    {
        _observedHolder = lease.Spec?.HolderIdentity;
        _observedRv = lease.Metadata.ResourceVersion;
        _observedAt = now;
    }

    /// <summary>Gives the lease up (empty holder, 1 s duration), as client-go does on a clean stop.</summary>
    async Task ReleaseAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var lease = await client.GetAsync<V1Lease>(ns, name, cts.Token).ConfigureAwait(false);
            if (lease?.Spec?.HolderIdentity != identity) return;
            lease.Spec.HolderIdentity = null;
            lease.Spec.LeaseDurationSeconds = 1;
            lease.Spec.RenewTime = _time.GetUtcNow().UtcDateTime;
            await client.UpdateAsync(lease, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ClusterException or OperationCanceledException or ObjectDisposedException) { }
    }

    static TimeSpan Jitter(TimeSpan d) => d + TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * 0.2 * d.TotalMilliseconds);
}
