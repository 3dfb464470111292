using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// apps/v1 StatefulSets as kube-controller-manager runs them: pods NAME-0…NAME-(replicas-1) with
/// hostname NAME-i and subdomain spec.serviceName, labelled statefulset.kubernetes.io/pod-name,
/// apps.kubernetes.io/pod-index and controller-revision-hash (NAME-hash of the template).
/// OrderedReady creates one pod at a time in ordinal order, each only once its predecessors are
/// Running and Ready, and removes surplus pods from the highest ordinal down, one at a time;
/// Parallel does both at once. RollingUpdate replaces pods whose revision is stale from the highest
/// ordinal down to spec.updateStrategy.rollingUpdate.partition, one at a time, each after the set is
/// Ready; OnDelete replaces only pods the user deletes. Each template is kept as a ControllerRevision
/// named by the revision (<see cref="ControllerHistory"/>), which is where the current revision's template
/// comes from (`kubectl rollout history|undo` read and patch those back). volumeClaimTemplates become one
/// PersistentVolumeClaim per pod (CLAIM-NAME-i, labelled with the selector's matchLabels, owned by the set
/// when persistentVolumeClaimRetentionPolicy.whenDeleted is Delete), mounted as persistentVolumeClaim volumes.
/// </summary>
public sealed class StatefulSetController : Controller
{
    public const string PodNameLabel = "statefulset.kubernetes.io/pod-name";
    public const string PodIndexLabel = "apps.kubernetes.io/pod-index";
    public const string RevisionLabel = "controller-revision-hash";

    readonly IClusterClient _client;
    readonly Informer<V1StatefulSet> _sets;
    readonly Informer<V1Pod> _pods;
    readonly TimeProvider _time;
    readonly ObjectEvents _events;
    readonly Wakeups _wake;
    readonly ControllerHistory _history;
    public override string Name => "statefulset-controller";

    public StatefulSetController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _wake = new Wakeups(_time, Enqueue);
        _events = new ObjectEvents(_client, "statefulset-controller", _time);
        _sets = f.For<V1StatefulSet>();
        _pods = f.For<V1Pod>();
        _history = new ControllerHistory(_client, f.For<V1ControllerRevision>());
        _sets.AddHandler(new InformerHandler<V1StatefulSet>(s => Enqueue(s.Metadata), (_, s) => Enqueue(s.Metadata), s => Enqueue(s.Metadata)));
        _pods.AddHandler(new InformerHandler<V1Pod>(PodChanged, (_, p) => PodChanged(p), PodChanged));
    }

    void PodChanged(V1Pod p)
    {
        if (Owners.ControllerOf(p.Metadata) is { Kind: "StatefulSet" } r) Enqueue(p.Metadata.NamespaceProperty + "/" + r.Name);
    }

    public static string Revision(V1StatefulSet s) => s.Metadata.Name + "-" + DeploymentController.TemplateHash(s.Spec.Template, s.Status?.CollisionCount is > 0 and var c ? c : null);

    static int? Ordinal(V1StatefulSet s, V1Pod p)
    {
        var prefix = s.Metadata.Name + "-";
        return p.Metadata.Name.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(p.Metadata.Name.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, null, out var i) ? i : null;
    }

    static bool RunningAndReady(V1Pod p) => p.Status?.Phase == "Running" && PodConditions.IsReady(p);

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var cached = _sets.Get(key);
        if (cached is null) return;
        var set = Kinds.Clone(cached);
        var now = _time.GetUtcNow().UtcDateTime;
        var updateRev = Revision(set);
        var currentRev = set.Status?.CurrentRevision ?? updateRev;
        int replicas = set.Spec.Replicas ?? 1;
        var pods = _pods.ByIndex(InformerFactory.NamespaceIndex, set.Metadata.NamespaceProperty ?? "")
            .Where(p => Owners.ControllerOf(p.Metadata)?.Uid == set.Metadata.Uid && Ordinal(set, p) is not null)
            .ToDictionary(p => Ordinal(set, p)!.Value);
        if (set.Metadata.DeletionTimestamp is null)
        {
            await _history.EnsureAsync("StatefulSet", set.Metadata, updateRev, updateRev[(set.Metadata.Name.Length + 1)..], set.Spec.Template, ct).ConfigureAwait(false);
            var live = pods.Values.Select(p => PodFacts.Label(p.Metadata, RevisionLabel) ?? "").Append(currentRev).Append(updateRev).ToHashSet();
            await _history.TrimAsync(set.Metadata, set.Spec.RevisionHistoryLimit ?? 10, live, ct).ConfigureAwait(false);
        }
        // The current revision's template: its ControllerRevision, else a pod that runs it.
        var currentTemplate = set.Spec.Template;
        if (currentRev != updateRev)
        {
            if (_history.Owned(set.Metadata).FirstOrDefault(r => r.Metadata.Name == currentRev) is { } rev && ControllerHistory.Template(rev) is { } kept)
                currentTemplate = kept;
            else if (pods.Values.FirstOrDefault(p => PodFacts.Label(p.Metadata, RevisionLabel) == currentRev) is { } cp)
                currentTemplate = TemplateFromPod(cp);
        }
        bool parallel = set.Spec.PodManagementPolicy == "Parallel";
        bool onDelete = set.Spec.UpdateStrategy?.Type == "OnDelete";
        int partition = onDelete ? 0 : set.Spec.UpdateStrategy?.RollingUpdate?.Partition ?? 0;

        if (set.Metadata.DeletionTimestamp is null)
            await SyncPodsAsync(set, pods, replicas, parallel, onDelete, partition, updateRev, currentRev, currentTemplate, ct).ConfigureAwait(false);
        await StatusAsync(set, pods, updateRev, currentRev, now, ct).ConfigureAwait(false);
    }

    async Task SyncPodsAsync(V1StatefulSet set, Dictionary<int, V1Pod> pods, int replicas, bool parallel, bool onDelete, int partition,
        string updateRev, string currentRev, V1PodTemplateSpec currentTemplate, CancellationToken ct)
    {
        // Failed pods are deleted (and recreated on a later pass).
        foreach (var (i, p) in pods.ToList())
            if (p.Status?.Phase == "Failed" && p.Metadata.DeletionTimestamp is null)
            {
                await DeleteAsync(set, p, ct).ConfigureAwait(false);
                if (!parallel) return;
            }
        // Create missing pods in order (OrderedReady waits for each predecessor to be Running and Ready).
        for (int i = 0; i < replicas; i++)
        {
            if (pods.TryGetValue(i, out var p))
            {
                if (!parallel && (p.Metadata.DeletionTimestamp is not null || !RunningAndReady(p))) return;
                continue;
            }
            bool useCurrent = !onDelete && i < partition && currentRev != updateRev;
            var template = useCurrent && currentRev != updateRev ? currentTemplate : set.Spec.Template;
            await CreateAsync(set, i, template, useCurrent ? currentRev : updateRev, ct).ConfigureAwait(false);
            if (!parallel) return;
        }
        // Remove surplus pods from the highest ordinal down.
        var condemned = pods.Keys.Where(i => i >= replicas).OrderDescending().ToList();
        foreach (var i in condemned)
        {
            var p = pods[i];
            if (p.Metadata.DeletionTimestamp is not null) { if (!parallel) return; continue; }
            if (!parallel && pods.Where(kv => kv.Key < i).Any(kv => !RunningAndReady(kv.Value))) return;
            await DeleteAsync(set, p, ct).ConfigureAwait(false);
            if (!parallel) return;
        }
        if (onDelete) return;
        // RollingUpdate: once every pod is Running and Ready, replace the highest stale one at or above the partition.
        for (int i = 0; i < replicas; i++)
            if (!pods.TryGetValue(i, out var p) || p.Metadata.DeletionTimestamp is not null || !RunningAndReady(p)) return;
        for (int i = replicas - 1; i >= partition; i--)
            if (PodFacts.Label(pods[i].Metadata, RevisionLabel) != updateRev)
            {
                await DeleteAsync(set, pods[i], ct).ConfigureAwait(false);
                return;
            }
    }

    async Task CreateAsync(V1StatefulSet set, int i, V1PodTemplateSpec template, string revision, CancellationToken ct)
    {
        var name = $"{set.Metadata.Name}-{i}";
        var pod = ReplicaSetController.PodFromTemplate(template, set.Metadata, "", Owners.ControllerRef("apps/v1", "StatefulSet", set.Metadata));
        pod.Metadata.GenerateName = null;
        pod.Metadata.Name = name;
        pod.Metadata.Labels = new Dictionary<string, string>(pod.Metadata.Labels ?? new Dictionary<string, string>())
        {
            [PodNameLabel] = name, [PodIndexLabel] = i.ToString(), [RevisionLabel] = revision,
        };
        pod.Spec ??= new V1PodSpec();
        pod.Spec.Hostname = name;
        if (!string.IsNullOrEmpty(set.Spec.ServiceName)) pod.Spec.Subdomain = set.Spec.ServiceName;
        if (set.Spec.VolumeClaimTemplates is { Count: > 0 } claims)
        {
            pod.Spec.Volumes ??= [];
            foreach (var c in claims)
            {
                pod.Spec.Volumes = pod.Spec.Volumes.Where(v => v.Name != c.Metadata.Name).ToList();
                pod.Spec.Volumes.Add(new V1Volume { Name = c.Metadata.Name, PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = $"{c.Metadata.Name}-{name}" } });
            }
            foreach (var c in claims) await CreateClaimAsync(set, c, name, ct).ConfigureAwait(false);
        }
        try
        {
            await _client.CreateAsync(pod, ct).ConfigureAwait(false);
            _events.Record(set, "Normal", "SuccessfulCreate", $"create Pod {name} in StatefulSet {set.Metadata.Name} successful");
        }
        catch (ClusterException e) when (e.Kind == ClusterErrorKind.AlreadyExists) { /* the cache is behind, or a foreign pod holds the name */ }
        catch (ClusterException e)
        {
            _events.Record(set, "Warning", "FailedCreate", $"create Pod {name} in StatefulSet {set.Metadata.Name} failed error: {e.Message}");
            throw;
        }
    }

    /// <summary>The claim CLAIM-POD of a volumeClaimTemplate, unless it exists (kept across pod restarts and scale-down).</summary>
    async Task CreateClaimAsync(V1StatefulSet set, V1PersistentVolumeClaim template, string podName, CancellationToken ct)
    {
        var name = $"{template.Metadata.Name}-{podName}";
        if (await _client.GetAsync<V1PersistentVolumeClaim>(set.Metadata.NamespaceProperty, name, ct).ConfigureAwait(false) is not null) return;
        var labels = new Dictionary<string, string>(template.Metadata.Labels ?? new Dictionary<string, string>());
        foreach (var (k, v) in set.Spec.Selector?.MatchLabels ?? new Dictionary<string, string>()) labels[k] = v;
        var claim = new V1PersistentVolumeClaim
        {
            ApiVersion = "v1", Kind = "PersistentVolumeClaim",
            Metadata = new V1ObjectMeta
            {
                Name = name, NamespaceProperty = set.Metadata.NamespaceProperty, Labels = labels, Annotations = template.Metadata.Annotations,
                OwnerReferences = set.Spec.PersistentVolumeClaimRetentionPolicy?.WhenDeleted == "Delete" ? [Owners.ControllerRef("apps/v1", "StatefulSet", set.Metadata)] : null,
            },
            Spec = template.Spec is null ? new V1PersistentVolumeClaimSpec() : Kinds.Clone(template.Spec),
        };
        try
        {
            await _client.CreateAsync(claim, ct).ConfigureAwait(false);
            _events.Record(set, "Normal", "SuccessfulCreate", $"create Claim {name} Pod {podName} in StatefulSet {set.Metadata.Name} success");
        }
        catch (ClusterException e) when (e.Kind == ClusterErrorKind.AlreadyExists) { }
        catch (ClusterException e)
        {
            _events.Record(set, "Warning", "FailedCreate", $"create Claim {name} for Pod {podName} in StatefulSet {set.Metadata.Name} failed error: {e.Message}");
            throw;
        }
    }

    async Task DeleteAsync(V1StatefulSet set, V1Pod p, CancellationToken ct)
    {
        try
        {
            await _client.DeleteAsync<V1Pod>(p.Metadata.NamespaceProperty, p.Metadata.Name, new DeleteOptions(Uid: p.Metadata.Uid), ct).ConfigureAwait(false);
            _events.Record(set, "Normal", "SuccessfulDelete", $"delete Pod {p.Metadata.Name} in StatefulSet {set.Metadata.Name} successful");
        }
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
    }

    /// <summary>A template rebuilt from a pod this controller made (what a ControllerRevision would have kept).</summary>
    static V1PodTemplateSpec TemplateFromPod(V1Pod p)
    {
        var c = Kinds.Clone(p);
        var labels = new Dictionary<string, string>(c.Metadata.Labels ?? new Dictionary<string, string>());
        labels.Remove(PodNameLabel); labels.Remove(PodIndexLabel); labels.Remove(RevisionLabel);
        c.Spec.NodeName = null; c.Spec.Hostname = null; c.Spec.Subdomain = null;
        return new V1PodTemplateSpec { Metadata = new V1ObjectMeta { Labels = labels, Annotations = c.Metadata.Annotations }, Spec = c.Spec };
    }

    async Task StatusAsync(V1StatefulSet set, Dictionary<int, V1Pod> pods, string updateRev, string currentRev, DateTime now, CancellationToken ct)
    {
        int minReady = set.Spec.MinReadySeconds ?? 0;
        var live = pods.Values.Where(p => p.Metadata.DeletionTimestamp is null).ToList();
        int ready = live.Count(PodConditions.IsReady);
        int available = live.Count(p => PodFacts.IsAvailable(p, minReady, now));
        int updated = live.Count(p => PodFacts.Label(p.Metadata, RevisionLabel) == updateRev);
        int current = live.Count(p => PodFacts.Label(p.Metadata, RevisionLabel) == currentRev);
        int replicas = set.Spec.Replicas ?? 1;
        // The update is complete once every wanted pod runs the update revision and is ready.
        if (currentRev != updateRev && updated == replicas && live.Count == replicas && ready == replicas)
        {
            currentRev = updateRev;
            current = updated;
        }
        if (minReady > 0 && available < ready)
            foreach (var p in live)
                if (PodConditions.Get(p.Status, "Ready") is { Status: "True", LastTransitionTime: { } since } && since.AddSeconds(minReady) > now)
                    _wake.At(Kinds.Key(set.Metadata), since.AddSeconds(minReady), now);
        var st = new V1StatefulSetStatus
        {
            Replicas = live.Count, ReadyReplicas = ready, AvailableReplicas = available, CurrentReplicas = current, UpdatedReplicas = updated,
            CurrentRevision = currentRev, UpdateRevision = updateRev, ObservedGeneration = set.Metadata.Generation,
            CollisionCount = set.Status?.CollisionCount ?? 0, Conditions = set.Status?.Conditions,
        };
        if (Json(st) == Json(set.Status)) return;
        var u = Kinds.Clone(set);
        u.Status = st;
        await _client.UpdateStatusAsync(u, ct).ConfigureAwait(false);
    }

    static string Json(V1StatefulSetStatus? st) => st is null ? "" : System.Text.Encoding.UTF8.GetString(Kinds.ToJson(new V1StatefulSet { Status = st }));
}
