using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// batch/v1 CronJobs as kube-controller-manager's cronjob controller (v2) runs them: at each
/// scheduled time (spec.schedule in spec.timeZone, default UTC) a Job named NAME-&lt;scheduled time in
/// minutes since the epoch&gt; is created from spec.jobTemplate, owned by the CronJob and annotated with
/// batch.kubernetes.io/cronjob-scheduled-timestamp. Only the most recent missed time is run;
/// startingDeadlineSeconds bounds how late that may be (MissSchedule) and how far back missed times
/// are counted (more than 100 → TooManyMissedTimes). concurrencyPolicy Allow/Forbid/Replace, suspend,
/// status.active/lastScheduleTime/lastSuccessfulTime, and successful/failedJobsHistoryLimit pruning.
/// The clock is injectable; the controller wakes itself at the next scheduled time.
/// </summary>
public sealed class CronJobController : Controller
{
    public const string ScheduledTimestampAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp";
    const int MaxMissed = 100;

    readonly IClusterClient _client;
    readonly Informer<V1CronJob> _cronJobs;
    readonly Informer<V1Job> _jobs;
    readonly TimeProvider _time;
    readonly ObjectEvents _events;
    readonly Wakeups _wake;
    public override string Name => "cronjob-controller";

    public CronJobController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _wake = new Wakeups(_time, Enqueue);
        _events = new ObjectEvents(_client, "cronjob-controller", _time);
        _cronJobs = f.For<V1CronJob>();
        _jobs = f.For<V1Job>();
        _cronJobs.AddHandler(new InformerHandler<V1CronJob>(c => Enqueue(c.Metadata), (_, c) => Enqueue(c.Metadata), c => Enqueue(c.Metadata)));
        _jobs.AddHandler(new InformerHandler<V1Job>(JobChanged, (_, j) => JobChanged(j), JobChanged));
    }

    void JobChanged(V1Job j)
    {
        if (Owners.ControllerOf(j.Metadata) is { Kind: "CronJob" } r) Enqueue(j.Metadata.NamespaceProperty + "/" + r.Name);
    }

    /// <summary>The job name for a scheduled time: NAME-&lt;minutes since the Unix epoch&gt;.</summary>
    public static string JobName(string cronJob, DateTime scheduledUtc) =>
        $"{cronJob}-{(long)(DateTime.SpecifyKind(scheduledUtc, DateTimeKind.Utc) - DateTime.UnixEpoch).TotalMinutes}";

    static bool Finished(V1Job j, out string? type)
    {
        type = j.Status?.Conditions?.FirstOrDefault(c => c.Type is "Complete" or "Failed" && c.Status == "True")?.Type;
        return type is not null;
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var cached = _cronJobs.Get(key);
        if (cached is null) return;
        var cj = Kinds.Clone(cached);
        var before = Json(cj.Status);
        var now = _time.GetUtcNow().UtcDateTime;
        var st = cj.Status ??= new V1CronJobStatus();
        st.Active = new List<V1ObjectReference>(st.Active ?? []);
        var active = (List<V1ObjectReference>)st.Active;
        var owned = _jobs.ByIndex(InformerFactory.NamespaceIndex, cj.Metadata.NamespaceProperty ?? "")
            .Where(j => Owners.ControllerOf(j.Metadata)?.Uid == cj.Metadata.Uid).ToList();

        // Bring status.active in line with the jobs that exist.
        foreach (var j in owned)
        {
            bool listed = st.Active.Any(a => a.Uid == j.Metadata.Uid);
            if (Finished(j, out var type))
            {
                if (listed)
                {
                    active.RemoveAll(a => a.Uid == j.Metadata.Uid);
                    _events.Record(cj, "Normal", "SawCompletedJob", $"Saw completed job: {j.Metadata.Name}, condition: {type}");
                }
                if (type == "Complete" && j.Status?.CompletionTime is { } done && (st.LastSuccessfulTime is null || done > st.LastSuccessfulTime)) st.LastSuccessfulTime = done;
            }
            else if (!listed && j.Metadata.DeletionTimestamp is null) st.Active.Add(RefTo(j));
        }
        foreach (var a in st.Active.ToList())
        {
            if (owned.Any(j => j.Metadata.Uid == a.Uid)) continue;
            var live = await _client.GetAsync<V1Job>(a.NamespaceProperty, a.Name, ct).ConfigureAwait(false);
            if (live is not null && live.Metadata.Uid == a.Uid) continue;   // the cache is behind
            active.RemoveAll(x => x.Uid == a.Uid);
            _events.Record(cj, "Normal", "MissingJob", $"Active job went missing: {a.Name}");
        }

        if (cj.Metadata.DeletionTimestamp is null)
        {
            await CleanupHistoryAsync(cj, owned, ct).ConfigureAwait(false);
            await ScheduleAsync(key, cj, st, now, ct).ConfigureAwait(false);
        }
        if (st.Active.Count == 0) st.Active = null;
        if (Json(st) == before) return;
        cj.Status = st;
        await _client.UpdateStatusAsync(cj, ct).ConfigureAwait(false);
    }

    async Task ScheduleAsync(string key, V1CronJob cj, V1CronJobStatus st, DateTime now, CancellationToken ct)
    {
        TimeZoneInfo zone = TimeZoneInfo.Utc;
        if (!string.IsNullOrEmpty(cj.Spec.TimeZone))
        {
            try { zone = TimeZoneInfo.FindSystemTimeZoneById(cj.Spec.TimeZone); }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                _events.Record(cj, "Warning", "UnknownTimeZone", $"invalid timeZone: \"{cj.Spec.TimeZone}\": unknown time zone {cj.Spec.TimeZone}");
                return;
            }
        }
        CronSchedule sched;
        try { sched = CronSchedule.Parse(cj.Spec.Schedule); }
        catch (FormatException e)
        {
            _events.Record(cj, "Warning", "UnparseableSchedule", $"unparseable schedule: \"{cj.Spec.Schedule}\" : {e.Message}");
            return;
        }
        if (cj.Spec.Suspend == true) return;

        // The most recent scheduled time not yet run, counting how many were missed.
        var earliest = st.LastScheduleTime ?? cj.Metadata.CreationTimestamp ?? now;
        if (cj.Spec.StartingDeadlineSeconds is { } sds && now.AddSeconds(-sds) > earliest) earliest = now.AddSeconds(-sds);
        DateTime? scheduled = null;
        int missed = 0;
        for (var t = sched.Next(earliest, zone); t is { } tt && tt <= now; t = sched.Next(tt, zone))
        {
            scheduled = tt;
            if (++missed > 1_000_000) break;
        }
        var next = sched.Next(now, zone);
        if (next is { } n) _wake.At(key, n, now);
        if (scheduled is not { } when) return;
        if (missed > MaxMissed)
            _events.Record(cj, "Warning", "TooManyMissedTimes", $"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew");
        if (cj.Spec.StartingDeadlineSeconds is { } deadline && when.AddSeconds(deadline) < now)
        {
            _events.Record(cj, "Warning", "MissSchedule", $"Missed scheduled time to start a job: {TimeZoneInfo.ConvertTimeFromUtc(when, zone):ddd, dd MMM yyyy HH:mm:ss} {Offset(zone, when)}");
            return;
        }
        var name = JobName(cj.Metadata.Name, when);
        if (st.Active!.Any(a => a.Name == name))
        {
            // Created by an earlier pass whose status write was lost (it conflicted): that pass ran this time.
            if (st.LastScheduleTime is null || st.LastScheduleTime < when) st.LastScheduleTime = when;
            return;
        }
        if (st.LastScheduleTime == when) return;
        if (cj.Spec.ConcurrencyPolicy == "Forbid" && st.Active!.Count > 0)
        {
            _events.Record(cj, "Normal", "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid");
            return;
        }
        if (cj.Spec.ConcurrencyPolicy == "Replace")
            foreach (var a in st.Active!.ToList())
            {
                try
                {
                    await _client.DeleteAsync<V1Job>(a.NamespaceProperty, a.Name, new DeleteOptions(PropagationPolicy.Background, Uid: a.Uid), ct).ConfigureAwait(false);
                    _events.Record(cj, "Normal", "SuccessfulDelete", $"Deleted job {a.Name}");
                }
                catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
                ((List<V1ObjectReference>)st.Active!).RemoveAll(x => x.Uid == a.Uid);
            }

        V1Job job;
        try
        {
            job = await _client.CreateAsync(JobFor(cj, when, zone), ct).ConfigureAwait(false);
            _events.Record(cj, "Normal", "SuccessfulCreate", $"Created job {job.Metadata.Name}");
        }
        catch (ClusterException e) when (e.Kind == ClusterErrorKind.AlreadyExists)
        {
            // Created by an earlier pass whose status write was lost: take it if it is ours.
            var existing = await _client.GetAsync<V1Job>(cj.Metadata.NamespaceProperty, name, ct).ConfigureAwait(false);
            if (existing is null || Owners.ControllerOf(existing.Metadata)?.Uid != cj.Metadata.Uid) throw;
            job = existing;
        }
        catch (ClusterException e)
        {
            _events.Record(cj, "Warning", "FailedCreate", $"Error creating job: {e.Message}");
            throw;
        }
        if (!Finished(job, out _) && !st.Active!.Any(a => a.Uid == job.Metadata.Uid)) st.Active!.Add(RefTo(job));
        st.LastScheduleTime = when;
    }

    static string Offset(TimeZoneInfo zone, DateTime utc)
    {
        var o = zone.GetUtcOffset(utc);
        return (o < TimeSpan.Zero ? "-" : "+") + o.ToString("hhmm");
    }

    /// <summary>The Job for one scheduled time, from spec.jobTemplate.</summary>
    public static V1Job JobFor(V1CronJob cj, DateTime scheduledUtc, TimeZoneInfo zone)
    {
        var t = Kinds.Clone(cj.Spec.JobTemplate);
        var annotations = new Dictionary<string, string>(t.Metadata?.Annotations ?? new Dictionary<string, string>())
        {
            [ScheduledTimestampAnnotation] = new DateTimeOffset(TimeZoneInfo.ConvertTimeFromUtc(scheduledUtc, zone), zone.GetUtcOffset(scheduledUtc)).ToString("yyyy-MM-dd'T'HH:mm:ssK").Replace("+00:00", "Z"),
        };
        return new V1Job
        {
            Metadata = new V1ObjectMeta
            {
                Name = JobName(cj.Metadata.Name, scheduledUtc), NamespaceProperty = cj.Metadata.NamespaceProperty,
                Labels = t.Metadata?.Labels is { } l ? new Dictionary<string, string>(l) : null, Annotations = annotations,
                OwnerReferences = [Owners.ControllerRef("batch/v1", "CronJob", cj.Metadata)],
            },
            Spec = t.Spec,
        };
    }

    static V1ObjectReference RefTo(V1Job j) => new()
    {
        ApiVersion = "batch/v1", Kind = "Job", NamespaceProperty = j.Metadata.NamespaceProperty, Name = j.Metadata.Name,
        Uid = j.Metadata.Uid, ResourceVersion = j.Metadata.ResourceVersion,
    };

    async Task CleanupHistoryAsync(V1CronJob cj, List<V1Job> owned, CancellationToken ct)
    {
        foreach (var (type, limit) in new[] { ("Complete", cj.Spec.SuccessfulJobsHistoryLimit ?? 3), ("Failed", cj.Spec.FailedJobsHistoryLimit ?? 1) })
        {
            var done = owned.Where(j => j.Metadata.DeletionTimestamp is null && Finished(j, out var t) && t == type)
                .OrderBy(j => j.Status?.StartTime ?? j.Metadata.CreationTimestamp ?? DateTime.MinValue).ToList();
            for (int i = 0; i < done.Count - limit; i++)
            {
                try
                {
                    await _client.DeleteAsync<V1Job>(done[i].Metadata.NamespaceProperty, done[i].Metadata.Name, new DeleteOptions(PropagationPolicy.Background, Uid: done[i].Metadata.Uid), ct).ConfigureAwait(false);
                    _events.Record(cj, "Normal", "SuccessfulDelete", $"Deleted job {done[i].Metadata.Name}");
                }
                catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
            }
        }
    }


    static string Json(V1CronJobStatus? st) => st is null ? "" : System.Text.Encoding.UTF8.GetString(Kinds.ToJson(new V1CronJob { Status = st }));
}
