using System.Text;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// Deployments as kube-controller-manager runs them: one ReplicaSet per pod template (named
/// deployment-hash, labelled pod-template-hash), revisions in deployment.kubernetes.io/revision,
/// rolling updates bounded by maxSurge/maxUnavailable, Recreate, pause, history limit, and the
/// Progressing/Available conditions and counters that `kubectl rollout status` reads. Rollback
/// (`kubectl rollout undo`) and restart need nothing here: kubectl rewrites the template and the
/// matching old ReplicaSet becomes the new one again, with the next revision number.
/// </summary>
public sealed class DeploymentController : Controller
{
    public const string RevisionAnnotation = "deployment.kubernetes.io/revision";
    public const string RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history";
    public const string DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas";
    public const string MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";
    public const string HashLabel = "pod-template-hash";

    readonly IClusterClient _client;
    readonly Informer<V1Deployment> _deploys;
    readonly Informer<V1ReplicaSet> _rs;
    readonly Informer<V1Pod> _pods;
    readonly TimeProvider _time;
    readonly ObjectEvents _events;
    public override string Name => "deployment-controller";

    public DeploymentController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _events = new ObjectEvents(_client, Name, _time);
        _deploys = f.For<V1Deployment>();
        _rs = f.For<V1ReplicaSet>();
        _pods = f.For<V1Pod>();
        _deploys.AddHandler(new InformerHandler<V1Deployment>(d => Enqueue(d.Metadata), (_, d) => Enqueue(d.Metadata), d => Enqueue(d.Metadata)));
        _rs.AddHandler(new InformerHandler<V1ReplicaSet>(RsChanged, (o, n) => { RsChanged(o); RsChanged(n); }, RsChanged));
        _pods.AddHandler(new InformerHandler<V1Pod>(delete: p =>
        {
            // Recreate waits for old pods to be gone.
            if (Owners.ControllerOf(p.Metadata) is { Kind: "ReplicaSet" } r && _rs.Get(p.Metadata.NamespaceProperty, r.Name) is { } rs) RsChanged(rs);
        }));
    }

    void RsChanged(V1ReplicaSet rs)
    {
        if (Owners.ControllerOf(rs.Metadata) is { Kind: "Deployment" } r) Enqueue(rs.Metadata.NamespaceProperty + "/" + r.Name);
        else
            foreach (var d in _deploys.ByIndex(InformerFactory.NamespaceIndex, rs.Metadata.NamespaceProperty ?? ""))
                if (LabelSelectorMatcher.From(d.Spec?.Selector).Matches(rs.Metadata.Labels)) Enqueue(d.Metadata);
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var cached = _deploys.Get(key);
        if (cached is null) return;
        var d = Kinds.Clone(cached);
        var selector = LabelSelectorMatcher.From(d.Spec.Selector);
        if (selector.Everything)
            throw new InvalidOperationException($"deployment \"{d.Metadata.Name}\" in namespace \"{d.Metadata.NamespaceProperty}\" has an empty selector");
        var all = await ClaimReplicaSetsAsync(d, selector, ct).ConfigureAwait(false);
        if (d.Metadata.DeletionTimestamp is not null) { await SyncStatusAsync(d, all, FindNew(d, all), ct).ConfigureAwait(false); return; }

        if (d.Spec.Paused == true)
        {
            // Paused: scale only, no rollout.
            var cur = FindNew(d, all);
            if (cur is not null && all.Count(r => (r.Spec.Replicas ?? 0) > 0) <= 1 && (cur.Spec.Replicas ?? 0) != Replicas(d))
                await ScaleAsync(cur, Replicas(d), d, ct).ConfigureAwait(false);
            await SyncStatusAsync(d, await ReListAsync(d, selector, ct), cur, ct).ConfigureAwait(false);
            return;
        }

        var newRs = await GetOrCreateNewAsync(d, all, ct).ConfigureAwait(false);
        all = await ReListAsync(d, selector, ct);
        newRs = all.First(r => r.Metadata.Uid == newRs.Metadata.Uid);
        var old = all.Where(r => r.Metadata.Uid != newRs.Metadata.Uid).ToList();

        if (d.Spec.Strategy?.Type == "Recreate") await RecreateAsync(d, newRs, old, ct).ConfigureAwait(false);
        else await RollingAsync(d, newRs, old, ct).ConfigureAwait(false);

        all = await ReListAsync(d, selector, ct);
        newRs = all.First(r => r.Metadata.Uid == newRs.Metadata.Uid);
        await CleanupAsync(d, all, newRs, ct).ConfigureAwait(false);
        await SyncStatusAsync(d, all, newRs, ct).ConfigureAwait(false);
    }

    static int Replicas(V1Deployment d) => d.Spec.Replicas ?? 1;

    Task<List<V1ReplicaSet>> ReListAsync(V1Deployment d, LabelSelectorMatcher selector, CancellationToken ct) => ClaimReplicaSetsAsync(d, selector, ct);

    /// <summary>ReplicaSets the deployment controls (adopting matching orphans), from the cache plus our own fresh writes.</summary>
    async Task<List<V1ReplicaSet>> ClaimReplicaSetsAsync(V1Deployment d, LabelSelectorMatcher selector, CancellationToken ct)
    {
        var list = new List<V1ReplicaSet>();
        foreach (var rs in _rs.ByIndex(InformerFactory.NamespaceIndex, d.Metadata.NamespaceProperty))
        {
            var cref = Owners.ControllerOf(rs.Metadata);
            // A private copy: the sync below changes it as it scales (the cache is never touched).
            var mine = Kinds.Clone(_written.TryGetValue(rs.Metadata.Uid, out var w) && RvNewer(w, rs) ? w : rs);
            if (cref is not null) { if (cref.Uid == d.Metadata.Uid) list.Add(mine); continue; }
            if (!selector.Matches(rs.Metadata.Labels) || d.Metadata.DeletionTimestamp is not null) continue;
            var adopt = Kinds.Clone(rs);
            adopt.Metadata.OwnerReferences ??= [];
            adopt.Metadata.OwnerReferences.Add(Owners.ControllerRef("apps/v1", "Deployment", d.Metadata));
            list.Add(Remember(await _client.UpdateAsync(adopt, ct).ConfigureAwait(false)));
        }
        foreach (var w in _written.Values)
            if (w.Metadata.NamespaceProperty == d.Metadata.NamespaceProperty && Owners.ControllerOf(w.Metadata)?.Uid == d.Metadata.Uid && !list.Any(r => r.Metadata.Uid == w.Metadata.Uid) && _rs.Get(Kinds.Key(w.Metadata)) is null && !_deleted.Contains(w.Metadata.Uid))
                list.Add(Kinds.Clone(w));
        return list;
    }

    // Our own latest writes, so one sync does not act on a cache that has not caught up yet.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, V1ReplicaSet> _written = new();
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _deletedSet = new();
    ICollection<string> _deleted => _deletedSet.Keys;

    static bool RvNewer(V1ReplicaSet a, V1ReplicaSet b) =>
        long.TryParse(a.Metadata.ResourceVersion, out var x) && long.TryParse(b.Metadata.ResourceVersion, out var y) && x > y;

    V1ReplicaSet Remember(V1ReplicaSet rs)
    {
        _written[rs.Metadata.Uid] = rs;
        if (_written.Count > 10_000) _written.Clear();
        return rs;
    }

    /// <summary>The template without the pod-template-hash label, as JSON bytes (template equality).</summary>
    static string TemplateKey(V1PodTemplateSpec? t)
    {
        var c = Kinds.Clone(t ?? new V1PodTemplateSpec());
        c.Metadata?.Labels?.Remove(HashLabel);
        if (c.Metadata?.Labels is { Count: 0 }) c.Metadata.Labels = null;
        return Encoding.UTF8.GetString(Kinds.ToJson(c));
    }

    static V1ReplicaSet? FindNew(V1Deployment d, List<V1ReplicaSet> all)
    {
        var want = TemplateKey(d.Spec.Template);
        return all.Where(r => TemplateKey(r.Spec.Template) == want).OrderBy(r => r.Metadata.CreationTimestamp).FirstOrDefault();
    }

    static long RevisionOf(V1ReplicaSet r) =>
        r.Metadata.Annotations is { } a && a.TryGetValue(RevisionAnnotation, out var v) && long.TryParse(v, out var n) ? n : 0;

    /// <summary>FNV-1a of the template and collision count, encoded with Kubernetes' safe alphabet.</summary>
    public static string TemplateHash(V1PodTemplateSpec t, int? collisionCount)
    {
        uint h = 2166136261;
        foreach (var b in Encoding.UTF8.GetBytes(TemplateKey(t) + (collisionCount is { } c ? "#" + c : ""))) { h ^= b; h *= 16777619; }
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        var s = h.ToString();
        var sb = new StringBuilder(s.Length);
        foreach (var ch in s) sb.Append(alphabet[(ch - '0' + (int)(h % 7)) % alphabet.Length]);
        return sb.ToString();
    }

    static readonly HashSet<string> SkipAnnotations = ["kubectl.kubernetes.io/last-applied-configuration", RevisionAnnotation, RevisionHistoryAnnotation, DesiredReplicasAnnotation, MaxReplicasAnnotation, "deprecated.deployment.rollback.to"];

    async Task<V1ReplicaSet> GetOrCreateNewAsync(V1Deployment d, List<V1ReplicaSet> all, CancellationToken ct)
    {
        var existing = FindNew(d, all);
        long maxOld = all.Where(r => existing is null || r.Metadata.Uid != existing.Metadata.Uid).Select(RevisionOf).DefaultIfEmpty(0).Max();
        var revision = (maxOld + 1).ToString();
        if (existing is not null)
        {
            long cur = RevisionOf(existing);
            if (cur > maxOld && AnnotationsSynced(d, existing)) return existing;
            var u = Kinds.Clone(existing);
            u.Metadata.Annotations ??= new Dictionary<string, string>();
            CopyAnnotations(d, u);
            if (cur <= maxOld)
            {
                // A rollback to this template: it takes the next revision, remembering the old one.
                if (cur > 0)
                    u.Metadata.Annotations[RevisionHistoryAnnotation] = u.Metadata.Annotations.TryGetValue(RevisionHistoryAnnotation, out var hist) && hist.Length > 0 ? hist + "," + cur : cur.ToString();
                u.Metadata.Annotations[RevisionAnnotation] = revision;
            }
            u.Metadata.ResourceVersion = null;
            var updated = Remember(await _client.UpdateAsync(u, ct).ConfigureAwait(false));
            await SetDeploymentRevisionAsync(d, RevisionOf(updated).ToString(), ct).ConfigureAwait(false);
            return updated;
        }
        int? collisions = d.Status?.CollisionCount;
        for (int attempt = 0; ; attempt++)
        {
            var hash = TemplateHash(d.Spec.Template, collisions);
            var template = Kinds.Clone(d.Spec.Template);
            template.Metadata ??= new V1ObjectMeta();
            template.Metadata.Labels = new Dictionary<string, string>(template.Metadata.Labels ?? new Dictionary<string, string>()) { [HashLabel] = hash };
            var sel = Kinds.Clone(d.Spec.Selector);
            sel.MatchLabels = new Dictionary<string, string>(sel.MatchLabels ?? new Dictionary<string, string>()) { [HashLabel] = hash };
            bool rolling = d.Spec.Strategy?.Type != "Recreate";
            int initial = all.Count == 0 || !rolling ? (all.Count == 0 ? Replicas(d) : 0) : NewReplicasForRolling(d, all, 0);
            var rs = new V1ReplicaSet
            {
                Metadata = new V1ObjectMeta
                {
                    Name = d.Metadata.Name + "-" + hash, NamespaceProperty = d.Metadata.NamespaceProperty,
                    Labels = new Dictionary<string, string>(template.Metadata.Labels),
                    Annotations = new Dictionary<string, string> { [RevisionAnnotation] = revision },
                    OwnerReferences = [Owners.ControllerRef("apps/v1", "Deployment", d.Metadata)],
                },
                Spec = new V1ReplicaSetSpec { Replicas = initial, MinReadySeconds = d.Spec.MinReadySeconds, Selector = sel, Template = template },
            };
            CopyAnnotations(d, rs);
            try
            {
                var created = Remember(await _client.CreateAsync(rs, ct).ConfigureAwait(false));
                if (initial > 0) _events.Record(d, "Normal", "ScalingReplicaSet", $"Scaled up replica set {created.Metadata.Name} from 0 to {initial}");
                await SetDeploymentRevisionAsync(d, revision, ct, $"Created new replica set \"{created.Metadata.Name}\"").ConfigureAwait(false);
                return created;
            }
            catch (ClusterException e) when (e.Kind == ClusterErrorKind.AlreadyExists && attempt < 5)
            {
                // Same name, different template: a hash collision. Count it and try the next name.
                collisions = (collisions ?? 0) + 1;
                var dc = Kinds.Clone(d);
                dc.Status ??= new V1DeploymentStatus();
                dc.Status.CollisionCount = collisions;
                dc.Metadata.ResourceVersion = null;
                await _client.UpdateStatusAsync(dc, ct).ConfigureAwait(false);
            }
        }
    }

    static bool AnnotationsSynced(V1Deployment d, V1ReplicaSet rs)
    {
        if (d.Metadata.Annotations is null) return true;
        foreach (var (k, v) in d.Metadata.Annotations)
            if (!SkipAnnotations.Contains(k) && (rs.Metadata.Annotations is null || !rs.Metadata.Annotations.TryGetValue(k, out var x) || x != v)) return false;
        return true;
    }

    static void CopyAnnotations(V1Deployment d, V1ReplicaSet rs)
    {
        rs.Metadata.Annotations ??= new Dictionary<string, string>();
        if (d.Metadata.Annotations is not null)
            foreach (var (k, v) in d.Metadata.Annotations) if (!SkipAnnotations.Contains(k)) rs.Metadata.Annotations[k] = v;
        rs.Metadata.Annotations[DesiredReplicasAnnotation] = Replicas(d).ToString();
        rs.Metadata.Annotations[MaxReplicasAnnotation] = (Replicas(d) + MaxSurge(d)).ToString();
    }

    async Task SetDeploymentRevisionAsync(V1Deployment d, string revision, CancellationToken ct, string? createdMessage = null)
    {
        if (Annotation(d.Metadata, RevisionAnnotation) == revision && createdMessage is null) return;
        var fresh = await _client.GetAsync<V1Deployment>(d.Metadata.NamespaceProperty, d.Metadata.Name, ct).ConfigureAwait(false);
        if (fresh is null) return;
        if (Annotation(fresh.Metadata, RevisionAnnotation) != revision)
        {
            fresh.Metadata.Annotations ??= new Dictionary<string, string>();
            fresh.Metadata.Annotations[RevisionAnnotation] = revision;
            fresh = await _client.UpdateAsync(fresh, ct).ConfigureAwait(false);
            d.Metadata.Annotations = fresh.Metadata.Annotations;
        }
        if (createdMessage is not null)
        {
            fresh.Status ??= new V1DeploymentStatus();
            SetCondition(fresh.Status, "Progressing", "True", "NewReplicaSetCreated", createdMessage, _time.GetUtcNow().UtcDateTime);
            fresh.Metadata.ResourceVersion = null;
            await _client.UpdateStatusAsync(fresh, ct).ConfigureAwait(false);
        }
    }

    static string? Annotation(V1ObjectMeta m, string key) => m.Annotations is { } a && a.TryGetValue(key, out var v) ? v : null;

    static int Resolve(IntOrString? v, int total, bool roundUp, int dflt)
    {
        if (v?.Value is null) return dflt;
        var s = v.Value;
        if (s.EndsWith('%') && int.TryParse(s[..^1], out var pct))
        {
            var x = total * pct / 100.0;
            return roundUp ? (int)Math.Ceiling(x) : (int)Math.Floor(x);
        }
        return int.TryParse(s, out var n) ? n : dflt;
    }

    static int MaxSurge(V1Deployment d)
    {
        if (d.Spec.Strategy?.Type == "Recreate") return 0;
        return Resolve(d.Spec.Strategy?.RollingUpdate?.MaxSurge, Replicas(d), true, (int)Math.Ceiling(Replicas(d) * 0.25));
    }

    static int MaxUnavailable(V1Deployment d)
    {
        if (d.Spec.Strategy?.Type == "Recreate") return 0;
        int surge = MaxSurge(d);
        int u = Resolve(d.Spec.Strategy?.RollingUpdate?.MaxUnavailable, Replicas(d), false, (int)Math.Floor(Replicas(d) * 0.25));
        if (surge == 0 && u == 0) u = 1;
        return Math.Min(u, Replicas(d));
    }

    static int NewReplicasForRolling(V1Deployment d, List<V1ReplicaSet> all, int newCurrent)
    {
        int total = all.Sum(r => r.Spec.Replicas ?? 0);
        int maxTotal = Replicas(d) + MaxSurge(d);
        if (total >= maxTotal) return newCurrent;
        return Math.Min(newCurrent + (maxTotal - total), Replicas(d));
    }

    async Task ScaleAsync(V1ReplicaSet rs, int replicas, V1Deployment d, CancellationToken ct)
    {
        if ((rs.Spec.Replicas ?? 0) == replicas && AnnotationsSynced(d, rs)) return;
        int from = rs.Spec.Replicas ?? 0;
        var u = Kinds.Clone(rs);
        u.Spec.Replicas = replicas;
        CopyAnnotations(d, u);
        u.Metadata.ResourceVersion = null;
        Remember(await _client.UpdateAsync(u, ct).ConfigureAwait(false));
        rs.Spec.Replicas = replicas;
        if (from != replicas)
            _events.Record(d, "Normal", "ScalingReplicaSet", $"Scaled {(from < replicas ? "up" : "down")} replica set {rs.Metadata.Name} from {from} to {replicas}");
    }

    async Task RollingAsync(V1Deployment d, V1ReplicaSet newRs, List<V1ReplicaSet> old, CancellationToken ct)
    {
        var all = old.Append(newRs).ToList();
        int want = Replicas(d);
        // Scale up the new ReplicaSet within maxSurge (or down if the deployment shrank).
        int cur = newRs.Spec.Replicas ?? 0;
        int target = cur > want ? want : NewReplicasForRolling(d, all, cur);
        if (target != cur) await ScaleAsync(newRs, target, d, ct).ConfigureAwait(false);

        // Scale down old ReplicaSets within maxUnavailable.
        int allPods = all.Sum(r => r.Spec.Replicas ?? 0);
        int minAvailable = want - MaxUnavailable(d);
        int newUnavailable = (newRs.Spec.Replicas ?? 0) - (newRs.Status?.AvailableReplicas ?? 0);
        int maxScaledDown = allPods - minAvailable - Math.Max(0, newUnavailable);
        if (maxScaledDown <= 0) return;
        var oldest = old.Where(r => (r.Spec.Replicas ?? 0) > 0).OrderBy(r => r.Metadata.CreationTimestamp).ToList();
        // First the old pods that are not available anyway.
        int cleaned = 0;
        foreach (var r in oldest)
        {
            if (cleaned >= maxScaledDown) break;
            int unhealthy = (r.Spec.Replicas ?? 0) - (r.Status?.AvailableReplicas ?? 0);
            if (unhealthy <= 0) continue;
            int n = Math.Min(unhealthy, maxScaledDown - cleaned);
            await ScaleAsync(r, (r.Spec.Replicas ?? 0) - n, d, ct).ConfigureAwait(false);
            cleaned += n;
        }
        maxScaledDown -= cleaned;
        if (maxScaledDown <= 0) return;
        int available = all.Sum(r => r.Status?.AvailableReplicas ?? 0);
        int canDown = Math.Min(available - minAvailable, maxScaledDown);
        foreach (var r in oldest)
        {
            if (canDown <= 0) break;
            int n = Math.Min(r.Spec.Replicas ?? 0, canDown);
            if (n == 0) continue;
            await ScaleAsync(r, (r.Spec.Replicas ?? 0) - n, d, ct).ConfigureAwait(false);
            canDown -= n;
        }
    }

    async Task RecreateAsync(V1Deployment d, V1ReplicaSet newRs, List<V1ReplicaSet> old, CancellationToken ct)
    {
        foreach (var r in old) if ((r.Spec.Replicas ?? 0) > 0) await ScaleAsync(r, 0, d, ct).ConfigureAwait(false);
        // Wait until no pod of an old ReplicaSet is left running.
        foreach (var r in old)
            foreach (var p in _pods.ByIndex(InformerFactory.NamespaceIndex, d.Metadata.NamespaceProperty))
                if (Owners.ControllerOf(p.Metadata)?.Uid == r.Metadata.Uid && p.Status?.Phase is not ("Succeeded" or "Failed")) return;
        await ScaleAsync(newRs, Replicas(d), d, ct).ConfigureAwait(false);
    }

    async Task CleanupAsync(V1Deployment d, List<V1ReplicaSet> all, V1ReplicaSet newRs, CancellationToken ct)
    {
        int limit = d.Spec.RevisionHistoryLimit ?? 10;
        var dead = all.Where(r => r.Metadata.Uid != newRs.Metadata.Uid && (r.Spec.Replicas ?? 0) == 0 && (r.Status?.Replicas ?? 0) == 0 && r.Metadata.DeletionTimestamp is null)
            .OrderBy(RevisionOf).ToList();
        for (int i = 0; i < dead.Count - limit; i++)
        {
            try
            {
                await _client.DeleteAsync<V1ReplicaSet>(dead[i].Metadata.NamespaceProperty, dead[i].Metadata.Name, new DeleteOptions(Uid: dead[i].Metadata.Uid), ct).ConfigureAwait(false);
                _deletedSet[dead[i].Metadata.Uid] = true;
                _written.TryRemove(dead[i].Metadata.Uid, out _);
            }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
        }
    }

    /// <summary>
    /// Kubernetes' SetDeploymentCondition: the same status and reason leave the condition alone (unless
    /// <paramref name="progress"/>: a Progressing=True ReplicaSetUpdated that saw progress gets a new
    /// lastUpdateTime); a changed one is moved to the end of the list (so `kubectl describe` lists the
    /// condition that changed last, last), keeping lastTransitionTime while its status stays.
    /// </summary>
    static void SetCondition(V1DeploymentStatus st, string type, string status, string reason, string message, DateTime now, bool progress = false)
    {
        st.Conditions ??= [];
        now = KubeTime.Seconds(now);
        var c = st.Conditions.FirstOrDefault(x => x.Type == type);
        if (c is not null && c.Status == status && c.Reason == reason && !progress) return;
        var transition = c is not null && c.Status == status ? c.LastTransitionTime : now;
        if (c is not null) st.Conditions.Remove(c);
        st.Conditions.Add(new V1DeploymentCondition { Type = type, Status = status, Reason = reason, Message = message, LastUpdateTime = now, LastTransitionTime = transition });
    }

    async Task SyncStatusAsync(V1Deployment d, List<V1ReplicaSet> all, V1ReplicaSet? newRs, CancellationToken ct)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var fresh = await _client.GetAsync<V1Deployment>(d.Metadata.NamespaceProperty, d.Metadata.Name, ct).ConfigureAwait(false);
        if (fresh is null) return;
        var st = fresh.Status ?? new V1DeploymentStatus();
        var before = Encoding.UTF8.GetString(Kinds.ToJson(new V1Deployment { Status = st }));
        (int? Replicas, int? Updated, int? Available, int? Ready)? before0 = fresh.Status is null ? null : (st.Replicas, st.UpdatedReplicas, st.AvailableReplicas, st.ReadyReplicas);
        int want = Replicas(d);
        st.Replicas = all.Sum(r => r.Status?.Replicas ?? 0);
        st.UpdatedReplicas = newRs?.Status?.Replicas ?? 0;
        st.ReadyReplicas = all.Sum(r => r.Status?.ReadyReplicas ?? 0);
        st.AvailableReplicas = all.Sum(r => r.Status?.AvailableReplicas ?? 0);
        st.UnavailableReplicas = Math.Max(0, st.Replicas.Value - st.AvailableReplicas.Value) is var u && u > 0 ? u : (want - st.AvailableReplicas > 0 ? want - st.AvailableReplicas : null);
        st.ObservedGeneration = d.Metadata.Generation;

        if (st.AvailableReplicas >= want - MaxUnavailable(d))
            SetCondition(st, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now);
        else
            SetCondition(st, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now);

        if (d.Spec.Paused == true)
            SetCondition(st, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now);
        else if (newRs is not null)
        {
            var name = newRs.Metadata.Name;
            var prog = st.Conditions?.FirstOrDefault(c => c.Type == "Progressing");
            bool complete = st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want && (newRs.Spec.Replicas ?? 0) == want;
            bool moved = before0 is null || before0.Value.Replicas != st.Replicas || before0.Value.Updated != st.UpdatedReplicas ||
                         before0.Value.Available != st.AvailableReplicas || before0.Value.Ready != st.ReadyReplicas;
            if (complete)
                SetCondition(st, "Progressing", "True", "NewReplicaSetAvailable", $"ReplicaSet \"{name}\" has successfully progressed.", now);
            else if (prog?.Reason == "DeploymentPaused")
                SetCondition(st, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now);
            else if (prog is { Reason: "ReplicaSetUpdated" or "NewReplicaSetCreated" or "DeploymentResumed" } && !moved &&
                     d.Spec.ProgressDeadlineSeconds is { } deadline && deadline < int.MaxValue &&
                     prog.LastUpdateTime is { } since && now - since > TimeSpan.FromSeconds(deadline))
                SetCondition(st, "Progressing", "False", "ProgressDeadlineExceeded", $"ReplicaSet \"{name}\" has timed out progressing.", now);
            else if (moved || prog is null || prog.Reason == "NewReplicaSetAvailable")
                SetCondition(st, "Progressing", "True", "ReplicaSetUpdated", $"ReplicaSet \"{name}\" is progressing.", now, progress: moved);
            if (!complete && d.Spec.ProgressDeadlineSeconds is { } dl && dl < int.MaxValue) EnqueueAfter(Kinds.Key(d.Metadata), TimeSpan.FromSeconds(Math.Min(dl, 30)));
        }
        var after = Encoding.UTF8.GetString(Kinds.ToJson(new V1Deployment { Status = st }));
        if (before == after) return;
        fresh.Status = st;
        fresh.Metadata.ResourceVersion = null;
        await _client.UpdateStatusAsync(fresh, ct).ConfigureAwait(false);
    }

}
