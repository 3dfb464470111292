using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's ttl-after-finished controller: a Job with spec.ttlSecondsAfterFinished
/// is deleted (foreground cascade, so its pods go first) that many seconds after it finished
/// (status.completionTime, or the Complete/Failed condition's lastTransitionTime). The job is read
/// live before deletion and deleted with its uid as precondition, so a recreated job of the same
/// name, or a TTL raised meanwhile, is respected.
/// </summary>
public sealed class TtlAfterFinishedController : Controller
{
    readonly IClusterClient _client;
    readonly Informer<V1Job> _jobs;
    readonly TimeProvider _time;
    public override string Name => "ttl-after-finished-controller";

    public TtlAfterFinishedController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _jobs = f.For<V1Job>();
        _jobs.AddHandler(new InformerHandler<V1Job>(Changed, (_, j) => Changed(j)));
    }

    void Changed(V1Job j)
    {
        if (j.Metadata.DeletionTimestamp is null && j.Spec?.TtlSecondsAfterFinished is not null && JobController.IsFinished(j)) Enqueue(j.Metadata);
    }

    static DateTime? FinishedAt(V1Job j) =>
        j.Status?.CompletionTime ?? j.Status?.Conditions?.FirstOrDefault(c => c.Type is "Complete" or "Failed" && c.Status == "True")?.LastTransitionTime;

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var (ns, name) = Kinds.SplitKey(key);
        var cached = _jobs.Get(key);
        if (cached is null) return;
        if (!Expired(cached, out var wait))
        {
            if (wait is { } w) Later.Run(_time, w, () => Enqueue(key));
            return;
        }
        var live = await _client.GetAsync<V1Job>(ns, name, ct).ConfigureAwait(false);
        if (live is null || !Expired(live, out wait))
        {
            if (live is not null && wait is { } w) Later.Run(_time, w, () => Enqueue(key));
            return;
        }
        try
        {
            await _client.DeleteAsync<V1Job>(ns, name, new DeleteOptions(PropagationPolicy.Foreground, Uid: live.Metadata.Uid), ct).ConfigureAwait(false);
        }
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
    }

    /// <summary>True when the job's TTL ran out; otherwise <paramref name="wait"/> says how long is left (null: no TTL applies).</summary>
    bool Expired(V1Job j, out TimeSpan? wait)
    {
        wait = null;
        if (j.Metadata.DeletionTimestamp is not null || j.Spec?.TtlSecondsAfterFinished is not { } ttl || !JobController.IsFinished(j) || FinishedAt(j) is not { } at) return false;
        var left = at.AddSeconds(ttl) - _time.GetUtcNow().UtcDateTime;
        if (left <= TimeSpan.Zero) return true;
        wait = left;
        return false;
    }
}
