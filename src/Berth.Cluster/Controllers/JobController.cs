using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// batch/v1 Jobs as kube-controller-manager's job controller runs them: up to spec.parallelism pods
/// until spec.completions succeed (NonIndexed), or one success per index 0..completions-1 (Indexed:
/// pods named JOB-INDEX-xxxxx, hostname JOB-INDEX, the batch.kubernetes.io/job-completion-index
/// annotation and label and a JOB_COMPLETION_INDEX env var from that annotation). Pods carry the
/// batch.kubernetes.io/job-tracking finalizer: a finished pod is first recorded in
/// status.uncountedTerminatedPods (or completedIndexes), then its finalizer is removed, then it moves
/// into status.succeeded/failed, so no pod is counted twice or lost. Failures restart pods with
/// exponential back-off (10 s·2ⁿ, at most 6 min) until spec.backoffLimit is exceeded
/// (FailureTarget/Failed, reason BackoffLimitExceeded); activeDeadlineSeconds fails the job with
/// DeadlineExceeded; success sets SuccessCriteriaMet then Complete (reason CompletionsReached) and
/// completionTime; spec.suspend deletes the active pods and sets the Suspended condition.
/// </summary>
public sealed class JobController : Controller
{
    public const string JobNameLabel = "batch.kubernetes.io/job-name";
    public const string LegacyJobNameLabel = "job-name";
    public const string ControllerUidLabel = "batch.kubernetes.io/controller-uid";
    public const string LegacyControllerUidLabel = "controller-uid";
    public const string CompletionIndexAnnotation = "batch.kubernetes.io/job-completion-index";
    public const string TrackingFinalizer = "batch.kubernetes.io/job-tracking";
    public const string CompletionIndexEnv = "JOB_COMPLETION_INDEX";
    static readonly TimeSpan BackoffBase = TimeSpan.FromSeconds(10), BackoffMax = TimeSpan.FromMinutes(6);

    readonly IClusterClient _client;
    readonly Informer<V1Job> _jobs;
    readonly Informer<V1Pod> _pods;
    readonly TimeProvider _time;
    readonly Expectations _exp = new();
    readonly ObjectEvents _events;
    readonly Lock _lock = new();
    readonly Dictionary<string, (int Count, DateTime Last)> _backoff = [];   // by job uid
    readonly Wakeups _wake;
    public override string Name => "job-controller";

    public JobController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _wake = new Wakeups(_time, Enqueue);
        _events = new ObjectEvents(_client, "job-controller", _time);
        _jobs = f.For<V1Job>();
        _pods = f.For<V1Pod>();
        _jobs.AddHandler(new InformerHandler<V1Job>(j => Enqueue(j.Metadata), (_, j) => Enqueue(j.Metadata), j => { _exp.Delete(Kinds.Key(j.Metadata)); Enqueue(j.Metadata); }));
        _pods.AddHandler(new InformerHandler<V1Pod>(PodAdded, PodUpdated, PodDeleted));
    }

    static string? OwnerKey(V1Pod p) =>
        Owners.ControllerOf(p.Metadata) is { Kind: "Job" } r ? p.Metadata.NamespaceProperty + "/" + r.Name : null;

    // Pods whose tracking finalizer this controller removed, until its informer shows that (client-go's
    // expectedRmFinalizers): a pod still showing the finalizer in a stale cache must not be counted twice.
    readonly HashSet<string> _finalizerRemoved = [];

    void Observe(V1Pod p)
    {
        if (!PodFacts.HasFinalizer(p, TrackingFinalizer)) lock (_lock) _finalizerRemoved.Remove(p.Metadata.Uid);
    }

    bool FinalizerRemovalPending(V1Pod p) { lock (_lock) return _finalizerRemoved.Contains(p.Metadata.Uid); }

    void PodAdded(V1Pod p)
    {
        Observe(p);
        if (OwnerKey(p) is { } k) { _exp.CreationObserved(k); Enqueue(k); }
    }

    void PodUpdated(V1Pod old, V1Pod p)
    {
        Observe(p);
        if (OwnerKey(old) is { } ok && ok != OwnerKey(p)) Enqueue(ok);
        if (OwnerKey(p) is { } k)
        {
            if (old.Metadata.DeletionTimestamp is null && p.Metadata.DeletionTimestamp is not null) _exp.DeletionObserved(k);
            Enqueue(k);
        }
    }

    void PodDeleted(V1Pod p)
    {
        lock (_lock) _finalizerRemoved.Remove(p.Metadata.Uid);
        if (OwnerKey(p) is not { } k) return;
        if (p.Metadata.DeletionTimestamp is null) _exp.DeletionObserved(k);
        Enqueue(k);
    }

    static bool HasCondition(V1JobStatus? st, string type) => st?.Conditions?.Any(c => c.Type == type && c.Status == "True") == true;

    /// <summary>True when the job has its terminal Complete or Failed condition.</summary>
    public static bool IsFinished(V1Job j) => HasCondition(j.Status, "Complete") || HasCondition(j.Status, "Failed");

    /// <summary>The selector the job's pods carry: spec.selector, or controller-uid when the API did not default one.</summary>
    static LabelSelectorMatcher SelectorOf(V1Job j) =>
        j.Spec.Selector is { } s ? LabelSelectorMatcher.From(s)
            : LabelSelectorMatcher.From(new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [ControllerUidLabel] = j.Metadata.Uid } });

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var cached = _jobs.Get(key);
        if (cached is null)
        {
            // The job is gone: its pods must not keep the tracking finalizer.
            var (ns, name) = Kinds.SplitKey(key);
            foreach (var p in _pods.ByIndex(InformerFactory.NamespaceIndex, ns ?? ""))
                if (Owners.ControllerOf(p.Metadata) is { Kind: "Job" } r && r.Name == name && PodFacts.HasFinalizer(p, TrackingFinalizer))
                    await RemoveFinalizerAsync(p, ct).ConfigureAwait(false);
            _exp.Delete(key);
            return;
        }
        var job = Kinds.Clone(cached);
        var pods = await ClaimPodsAsync(job, ct).ConfigureAwait(false);
        if (job.Metadata.DeletionTimestamp is not null || IsFinished(job))
        {
            foreach (var p in pods) if (PodFacts.HasFinalizer(p, TrackingFinalizer)) await RemoveFinalizerAsync(p, ct).ConfigureAwait(false);
            return;
        }
        var now = _time.GetUtcNow().UtcDateTime;
        var baseline = StatusJson(job.Status);
        var st = Kinds.Clone(job.Status ?? new V1JobStatus());
        st.UncountedTerminatedPods ??= new V1UncountedTerminatedPods();
        var uSucceeded = new List<string>(st.UncountedTerminatedPods.Succeeded ?? []);
        var uFailed = new List<string>(st.UncountedTerminatedPods.Failed ?? []);
        bool indexed = job.Spec.CompletionMode == "Indexed";
        int completions = job.Spec.Completions ?? (indexed ? 1 : -1);
        var completed = IndexSet.Parse(st.CompletedIndexes);

        // 1. Record pods that finished (or are being deleted before finishing) and still hold the finalizer.
        bool recorded = false;
        int newFailures = 0;
        foreach (var p in pods)
        {
            if (!PodFacts.HasFinalizer(p, TrackingFinalizer) || FinalizerRemovalPending(p)) continue;
            bool succeeded = p.Status?.Phase == "Succeeded";
            bool failed = p.Status?.Phase == "Failed" || (p.Metadata.DeletionTimestamp is not null && !succeeded);
            if (!succeeded && !failed) continue;
            var uid = p.Metadata.Uid;
            if (uSucceeded.Contains(uid) || uFailed.Contains(uid)) continue;
            if (succeeded && indexed)
            {
                if (IndexOf(p) is { } ix && ix < completions && completed.Add(ix)) recorded = true;
                uSucceeded.Add(uid);   // removed again below once its finalizer is gone
                recorded = true;
            }
            else if (succeeded) { uSucceeded.Add(uid); recorded = true; }
            else { uFailed.Add(uid); recorded = true; newFailures++; }
        }
        if (recorded)
        {
            st.UncountedTerminatedPods = new V1UncountedTerminatedPods { Succeeded = indexed ? [] : [.. uSucceeded], Failed = [.. uFailed] };
            if (indexed) { st.CompletedIndexes = completed.ToString(); st.Succeeded = completed.Count; }
            job = await WriteStatusAsync(job, baseline, st, ct).ConfigureAwait(false);
            baseline = StatusJson(job.Status);
            st = Kinds.Clone(job.Status);
        }
        // The back-off counts a failure once it is recorded in the status (kube updates its backoff
        // record after the status write): a pass whose write conflicted counts nothing, its retry does.
        if (newFailures > 0)
            lock (_lock)
            {
                _backoff.TryGetValue(job.Metadata.Uid, out var b);
                _backoff[job.Metadata.Uid] = (b.Count + newFailures, now);
            }
        // 2. Remove the finalizer from every recorded pod; 3. count them.
        foreach (var p in pods)
            if (PodFacts.HasFinalizer(p, TrackingFinalizer) && !FinalizerRemovalPending(p) && (uSucceeded.Contains(p.Metadata.Uid) || uFailed.Contains(p.Metadata.Uid)))
                await RemoveFinalizerAsync(p, ct).ConfigureAwait(false);
        if (!indexed) st.Succeeded = (st.Succeeded ?? 0) + (st.UncountedTerminatedPods?.Succeeded?.Count ?? 0);
        st.Failed = (st.Failed ?? 0) + uFailed.Count;
        st.UncountedTerminatedPods = new V1UncountedTerminatedPods { Succeeded = [], Failed = [] };
        int succeededCount = st.Succeeded ?? 0, failedCount = st.Failed ?? 0;
        if (uSucceeded.Count > 0 && newFailures == 0) lock (_lock) _backoff.Remove(job.Metadata.Uid);

        var active = pods.Where(p => !PodFacts.IsTerminal(p) && p.Metadata.DeletionTimestamp is null).ToList();
        var terminating = pods.Count(p => !PodFacts.IsTerminal(p) && p.Metadata.DeletionTimestamp is not null);
        bool suspended = job.Spec.Suspend == true;

        // Terminal states first: a failure or success target, then the final condition once no pod runs.
        string? failReason = null, failMessage = null;
        if (HasCondition(st, "FailureTarget"))
        {
            var c = st.Conditions!.First(c => c.Type == "FailureTarget");
            failReason = c.Reason; failMessage = c.Message;
        }
        else if (!suspended && !HasCondition(st, "SuccessCriteriaMet"))
        {
            int backoffLimit = job.Spec.BackoffLimit ?? 6;
            if (failedCount > backoffLimit || PastBackoffLimitOnFailure(job, active))
                (failReason, failMessage) = ("BackoffLimitExceeded", "Job has reached the specified backoff limit");
            else if (job.Spec.ActiveDeadlineSeconds is { } ads && st.StartTime is { } start)
            {
                var left = start.AddSeconds(ads) - now;
                if (left <= TimeSpan.Zero) (failReason, failMessage) = ("DeadlineExceeded", "Job was active longer than specified deadline");
            }
            if (failReason is not null) SetCondition(st, "FailureTarget", "True", failReason, failMessage!, now);
        }
        bool successMet = HasCondition(st, "SuccessCriteriaMet");
        if (failReason is null && !successMet && !suspended)
        {
            successMet = indexed ? completed.Count >= completions
                : completions >= 0 ? succeededCount >= completions
                : succeededCount > 0 && active.Count == 0;
            if (successMet) SetCondition(st, "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods", now);
        }

        if (failReason is not null || successMet)
        {
            if (active.Count > 0) { await DeletePodsAsync(key, active, ct).ConfigureAwait(false); terminating += active.Count; active.Clear(); }
            if (terminating == 0)
            {
                if (failReason is not null)
                {
                    SetCondition(st, "Failed", "True", failReason, failMessage!, now);
                    _events.Record(job, "Warning", failReason, failMessage!);
                }
                else
                {
                    SetCondition(st, "Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods", now);
                    st.CompletionTime = KubeTime.Seconds(now);
                    _events.Record(job, "Normal", "Completed", "Job completed");
                }
                lock (_lock) _backoff.Remove(job.Metadata.Uid);
            }
        }
        else if (suspended)
        {
            if (active.Count > 0) { await DeletePodsAsync(key, active, ct).ConfigureAwait(false); terminating += active.Count; active.Clear(); }
            if (!HasCondition(st, "Suspended"))
            {
                SetCondition(st, "Suspended", "True", "JobSuspended", "Job suspended", now);
                _events.Record(job, "Normal", "Suspended", "Job suspended");
            }
        }
        else
        {
            if (HasCondition(st, "Suspended"))
            {
                SetCondition(st, "Suspended", "False", "JobResumed", "Job resumed", now);
                st.StartTime = KubeTime.Seconds(now);       // activeDeadlineSeconds counts from the resume
                _events.Record(job, "Normal", "Resumed", "Job resumed");
            }
            st.StartTime ??= KubeTime.Seconds(now);
            if (job.Spec.ActiveDeadlineSeconds is { } ads && st.StartTime is { } s0) _wake.At(key, s0.AddSeconds(ads), now);
            if (_exp.Satisfied(key)) active = await ManagePodsAsync(job, key, active, completed, completions, succeededCount, now, ct).ConfigureAwait(false);
        }

        st.Active = active.Count > 0 ? active.Count : null;
        st.Ready = active.Count(PodConditions.IsReady);
        st.Terminating = terminating;
        st.Succeeded = succeededCount > 0 ? succeededCount : null;
        st.Failed = failedCount > 0 ? failedCount : null;
        if (indexed) st.CompletedIndexes = completed.ToString();
        await WriteStatusAsync(job, baseline, st, ct).ConfigureAwait(false);
    }



    static bool PastBackoffLimitOnFailure(V1Job job, List<V1Pod> active)
    {
        if (job.Spec.Template?.Spec?.RestartPolicy != "OnFailure") return false;
        int restarts = active.Where(p => p.Status?.Phase is "Running" or "Pending").Sum(PodFacts.Restarts);
        int limit = job.Spec.BackoffLimit ?? 6;
        return limit == 0 ? restarts > 0 : restarts >= limit;
    }

    static int? IndexOf(V1Pod p) =>
        int.TryParse(PodFacts.Annotation(p.Metadata, CompletionIndexAnnotation) ?? PodFacts.Label(p.Metadata, CompletionIndexAnnotation), out var i) && i >= 0 ? i : null;

    async Task<List<V1Pod>> ManagePodsAsync(V1Job job, string key, List<V1Pod> active, IndexSet completed, int completions, int succeeded, DateTime now, CancellationToken ct)
    {
        int parallelism = job.Spec.Parallelism ?? 1;
        bool indexed = job.Spec.CompletionMode == "Indexed";
        List<int> pending = [];
        int want;
        if (indexed)
        {
            // Duplicates and out-of-range or already completed indexes go first.
            var seen = new HashSet<int>();
            var surplus = new List<V1Pod>();
            foreach (var p in active.OrderByDescending(PodConditions.IsReady).ThenBy(p => p.Metadata.CreationTimestamp))
                if (IndexOf(p) is not { } ix || ix >= completions || completed.Contains(ix) || !seen.Add(ix)) surplus.Add(p);
            if (surplus.Count > 0)
            {
                await DeletePodsAsync(key, surplus, ct).ConfigureAwait(false);
                active = active.Except(surplus).ToList();
            }
            for (int i = 0; i < completions; i++) if (!completed.Contains(i) && !seen.Contains(i)) pending.Add(i);
            want = Math.Min(parallelism, active.Count + pending.Count);
        }
        else if (completions >= 0) want = Math.Min(parallelism, Math.Max(0, completions - succeeded));
        else want = succeeded > 0 ? active.Count : parallelism;

        if (active.Count > want)
        {
            var victims = active.OrderBy(p => string.IsNullOrEmpty(p.Spec?.NodeName) ? 0 : 1)
                .ThenBy(p => p.Status?.Phase == "Running" ? 1 : 0).ThenBy(p => PodConditions.IsReady(p) ? 1 : 0)
                .ThenByDescending(p => p.Metadata.CreationTimestamp ?? DateTime.MinValue)
                .Take(active.Count - want).ToList();
            await DeletePodsAsync(key, victims, ct).ConfigureAwait(false);
            return active.Except(victims).ToList();
        }
        int diff = want - active.Count;
        if (diff <= 0) return active;
        // Back-off after failures before creating replacements.
        (int Count, DateTime Last) b;
        lock (_lock) _backoff.TryGetValue(job.Metadata.Uid, out b);
        if (b.Count > 0)
        {
            var delay = TimeSpan.FromTicks(Math.Min(BackoffMax.Ticks, BackoffBase.Ticks * (1L << Math.Min(b.Count - 1, 20))));
            var left = b.Last + delay - now;
            if (left > TimeSpan.Zero) { _wake.At(key, now + left, now); return active; }
        }
        _exp.Expect(key, diff, 0);
        var created = new List<V1Pod>();
        for (int i = 0; i < diff; i++)
        {
            int? index = indexed ? pending[i] : null;
            try
            {
                var pod = await _client.CreateAsync(PodFor(job, index), ct).ConfigureAwait(false);
                created.Add(pod);
                _events.Record(job, "Normal", "SuccessfulCreate", $"Created pod: {pod.Metadata.Name}");
            }
            catch (ClusterException e)
            {
                _exp.Lower(key, diff - i, 0);
                _events.Record(job, "Warning", "FailedCreate", $"Error creating: {e.Message}");
                throw new InvalidOperationException($"creating pods for job \"{job.Metadata.Name}\" in namespace \"{job.Metadata.NamespaceProperty}\" failed: {e.Message}");
            }
        }
        return [.. active, .. created];
    }

    /// <summary>The pod for one completion (index null for NonIndexed jobs).</summary>
    public static V1Pod PodFor(V1Job job, int? index)
    {
        var name = job.Metadata.Name;
        var pod = ReplicaSetController.PodFromTemplate(job.Spec.Template, job.Metadata, index is { } i0 ? $"{name}-{i0}-" : name + "-",
            Owners.ControllerRef("batch/v1", "Job", job.Metadata));
        var labels = pod.Metadata.Labels = new Dictionary<string, string>(pod.Metadata.Labels ?? new Dictionary<string, string>());
        if (job.Spec.ManualSelector != true)
        {
            labels.TryAdd(ControllerUidLabel, job.Metadata.Uid);
            labels.TryAdd(LegacyControllerUidLabel, job.Metadata.Uid);
            labels.TryAdd(JobNameLabel, name);
            labels.TryAdd(LegacyJobNameLabel, name);
        }
        pod.Metadata.Finalizers = [.. pod.Metadata.Finalizers ?? [], TrackingFinalizer];
        pod.Spec ??= new V1PodSpec();
        if (index is { } ix)
        {
            var s = ix.ToString();
            pod.Metadata.Annotations = new Dictionary<string, string>(pod.Metadata.Annotations ?? new Dictionary<string, string>()) { [CompletionIndexAnnotation] = s };
            labels[CompletionIndexAnnotation] = s;
            pod.Spec.Hostname = $"{name}-{s}";
            var env = new V1EnvVar
            {
                Name = CompletionIndexEnv,
                ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = $"metadata.annotations['{CompletionIndexAnnotation}']" } },
            };
            foreach (var c in (pod.Spec.InitContainers ?? []).Concat(pod.Spec.Containers ?? []))
            {
                c.Env ??= [];
                if (!c.Env.Any(e => e.Name == CompletionIndexEnv)) c.Env.Add(Kinds.Clone(env));
            }
        }
        return pod;
    }

    async Task<List<V1Pod>> ClaimPodsAsync(V1Job job, CancellationToken ct)
    {
        var selector = SelectorOf(job);
        var result = new List<V1Pod>();
        foreach (var p in _pods.ByIndex(InformerFactory.NamespaceIndex, job.Metadata.NamespaceProperty))
        {
            var cref = Owners.ControllerOf(p.Metadata);
            if (cref is not null) { if (cref.Uid == job.Metadata.Uid) result.Add(p); continue; }
            if (selector.Everything || !selector.Matches(p.Metadata.Labels) || job.Metadata.DeletionTimestamp is not null || p.Metadata.DeletionTimestamp is not null || IsFinished(job)) continue;
            var adopt = Kinds.Clone(p);
            adopt.Metadata.OwnerReferences ??= [];
            adopt.Metadata.OwnerReferences.Add(Owners.ControllerRef("batch/v1", "Job", job.Metadata));
            try { result.Add(await _client.UpdateAsync(adopt, ct).ConfigureAwait(false)); }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
        }
        return result;
    }

    async Task RemoveFinalizerAsync(V1Pod p, CancellationToken ct)
    {
        for (int attempt = 0; attempt < 5; attempt++)
        {
            var cur = attempt == 0 ? Kinds.Clone(p) : await _client.GetAsync<V1Pod>(p.Metadata.NamespaceProperty, p.Metadata.Name, ct).ConfigureAwait(false);
            if (cur is null || cur.Metadata.Uid != p.Metadata.Uid || !PodFacts.HasFinalizer(cur, TrackingFinalizer)) return;
            cur.Metadata.Finalizers = cur.Metadata.Finalizers.Where(f => f != TrackingFinalizer).ToList();
            lock (_lock) _finalizerRemoved.Add(p.Metadata.Uid);
            try { await _client.UpdateAsync(cur, ct).ConfigureAwait(false); return; }
            catch (ClusterException e) when (e.Kind == ClusterErrorKind.NotFound) { return; }
            catch (ClusterException e) when (e.Kind == ClusterErrorKind.Conflict) { }
        }
        lock (_lock) _finalizerRemoved.Remove(p.Metadata.Uid);
        throw new InvalidOperationException($"removing finalizer {TrackingFinalizer} from pod \"{p.Metadata.Name}\" in namespace \"{p.Metadata.NamespaceProperty}\" kept conflicting");
    }

    async Task DeletePodsAsync(string key, List<V1Pod> pods, CancellationToken ct)
    {
        _exp.Expect(key, 0, pods.Count);
        foreach (var p in pods)
        {
            try { await _client.DeleteAsync<V1Pod>(p.Metadata.NamespaceProperty, p.Metadata.Name, new DeleteOptions(Uid: p.Metadata.Uid), ct).ConfigureAwait(false); }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { _exp.Lower(key, 0, 1); }
        }
    }

    static string StatusJson(V1JobStatus? st) => st is null ? "" : System.Text.Encoding.UTF8.GetString(Kinds.ToJson(new V1Job { Status = st }));

    async Task<V1Job> WriteStatusAsync(V1Job job, string baseline, V1JobStatus st, CancellationToken ct)
    {
        if (StatusJson(st) == baseline) return job;
        var u = Kinds.Clone(job);
        u.Status = st;
        // Optimistic: a stale copy conflicts and the whole reconcile runs again on fresh state.
        return await _client.UpdateStatusAsync(u, ct).ConfigureAwait(false);
    }

    static void SetCondition(V1JobStatus st, string type, string status, string reason, string message, DateTime now)
    {
        st.Conditions ??= [];
        now = KubeTime.Seconds(now);
        var c = st.Conditions.FirstOrDefault(x => x.Type == type);
        if (c is null) { st.Conditions.Add(new V1JobCondition { Type = type, Status = status, Reason = reason, Message = message, LastProbeTime = now, LastTransitionTime = now }); return; }
        if (c.Status != status) c.LastTransitionTime = now;
        c.Status = status; c.Reason = reason; c.Message = message; c.LastProbeTime = now;
    }
}

/// <summary>A set of completion indexes in the status.completedIndexes form ("1,3-5,7").</summary>
internal sealed class IndexSet
{
    readonly SortedSet<int> _set = [];
    public int Count => _set.Count;
    public bool Add(int i) => _set.Add(i);
    public bool Contains(int i) => _set.Contains(i);

    public static IndexSet Parse(string? s)
    {
        var r = new IndexSet();
        if (string.IsNullOrEmpty(s)) return r;
        foreach (var part in s.Split(','))
        {
            var dash = part.IndexOf('-');
            if (dash < 0) { if (int.TryParse(part, out var x)) r._set.Add(x); continue; }
            if (int.TryParse(part[..dash], out var a) && int.TryParse(part[(dash + 1)..], out var b))
                for (int i = a; i <= b && i - a < 1_000_000; i++) r._set.Add(i);
        }
        return r;
    }

    public override string ToString()
    {
        var parts = new List<string>();
        int? start = null, prev = null;
        foreach (var i in _set)
        {
            if (prev is { } p && i == p + 1) { prev = i; continue; }
            if (start is { } s0) parts.Add(s0 == prev ? s0.ToString() : $"{s0}-{prev}");
            start = prev = i;
        }
        if (start is { } s1) parts.Add(s1 == prev ? s1.ToString() : $"{s1}-{prev}");
        return string.Join(",", parts);
    }
}
