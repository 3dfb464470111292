using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// apps/v1 DaemonSets as kube-controller-manager runs them: one pod per node that passes the
/// template's nodeSelector, required node affinity and NoSchedule/NoExecute taints (with the
/// tolerations Kubernetes adds to every daemon pod: not-ready and unreachable NoExecute, disk-,
/// memory- and pid-pressure and unschedulable NoSchedule, network-unavailable for hostNetwork). Each
/// pod is pinned by a required node affinity on matchFields metadata.name, so the scheduler binds
/// it to its node. Pods carry controller-revision-hash (a hash of the template), and each template is
/// kept as a ControllerRevision NAME-HASH (<see cref="ControllerHistory"/>: `kubectl rollout history|undo`
/// read and patch those back), within revisionHistoryLimit. RollingUpdate replaces pods
/// within maxUnavailable, or with maxSurge starts the new pod first; OnDelete replaces only pods the
/// user deleted. Failed pods are deleted and recreated. Status counts as `kubectl rollout status` reads them.
/// </summary>
public sealed class DaemonSetController : Controller
{
    public const string RevisionLabel = "controller-revision-hash";
    public const string TemplateGenerationLabel = "pod-template-generation";

    readonly IClusterClient _client;
    readonly Informer<V1DaemonSet> _sets;
    readonly Informer<V1Pod> _pods;
    readonly Informer<V1Node> _nodes;
    readonly TimeProvider _time;
    readonly Expectations _exp = new();
    readonly ObjectEvents _events;
    readonly Wakeups _wake;
    readonly ControllerHistory _history;
    public override string Name => "daemonset-controller";

    public DaemonSetController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _wake = new Wakeups(_time, Enqueue);
        _events = new ObjectEvents(_client, "daemonset-controller", _time);
        _sets = f.For<V1DaemonSet>();
        _pods = f.For<V1Pod>();
        _nodes = f.For<V1Node>();
        var revisions = f.For<V1ControllerRevision>();
        _history = new ControllerHistory(_client, revisions);
        _sets.AddHandler(new InformerHandler<V1DaemonSet>(d => Enqueue(d.Metadata), (_, d) => Enqueue(d.Metadata), d => { _exp.Delete(Kinds.Key(d.Metadata)); }));
        _pods.AddHandler(new InformerHandler<V1Pod>(p => PodChanged(p, created: true), (_, p) => PodChanged(p), p => PodChanged(p, deleted: true)));
        _nodes.AddHandler(new InformerHandler<V1Node>(_ => EnqueueAll(), (_, _) => EnqueueAll(), _ => EnqueueAll()));
    }

    void EnqueueAll() { foreach (var d in _sets.List()) Enqueue(d.Metadata); }

    void PodChanged(V1Pod p, bool created = false, bool deleted = false)
    {
        if (Owners.ControllerOf(p.Metadata) is not { Kind: "DaemonSet" } r) return;
        var key = p.Metadata.NamespaceProperty + "/" + r.Name;
        if (created) _exp.CreationObserved(key);
        if (deleted) _exp.DeletionObserved(key);
        Enqueue(key);
    }

    /// <summary>The revision hash of a pod template (the Deployment controller's pod-template-hash function).</summary>
    public static string TemplateHash(V1PodTemplateSpec t, int? collisionCount = null) => DeploymentController.TemplateHash(t, collisionCount);

    /// <summary>The tolerations Kubernetes adds to every daemon pod.</summary>
    public static List<V1Toleration> DaemonTolerations(bool hostNetwork)
    {
        var l = new List<V1Toleration>
        {
            new() { Key = "node.kubernetes.io/not-ready", OperatorProperty = "Exists", Effect = "NoExecute" },
            new() { Key = "node.kubernetes.io/unreachable", OperatorProperty = "Exists", Effect = "NoExecute" },
            new() { Key = "node.kubernetes.io/disk-pressure", OperatorProperty = "Exists", Effect = "NoSchedule" },
            new() { Key = "node.kubernetes.io/memory-pressure", OperatorProperty = "Exists", Effect = "NoSchedule" },
            new() { Key = "node.kubernetes.io/pid-pressure", OperatorProperty = "Exists", Effect = "NoSchedule" },
            new() { Key = "node.kubernetes.io/unschedulable", OperatorProperty = "Exists", Effect = "NoSchedule" },
        };
        if (hostNetwork) l.Add(new() { Key = "node.kubernetes.io/network-unavailable", OperatorProperty = "Exists", Effect = "NoSchedule" });
        return l;
    }

    static List<V1Toleration> TolerationsFor(V1PodSpec spec)
    {
        var l = new List<V1Toleration>(spec.Tolerations ?? []);
        foreach (var t in DaemonTolerations(spec.HostNetwork == true))
            if (!l.Any(x => x.Key == t.Key && x.Effect == t.Effect)) l.Add(t);
        return l;
    }

    /// <summary>Whether a daemon pod of this template belongs on the node (nodeSelector, required node affinity, taints).</summary>
    public static bool ShouldRun(V1PodSpec spec, V1Node node)
    {
        var labels = node.Metadata.Labels;
        if (spec.NodeSelector is { Count: > 0 } ns)
            foreach (var (k, v) in ns)
                if (labels is null || !labels.TryGetValue(k, out var x) || x != v) return false;
        if (spec.Affinity?.NodeAffinity?.RequiredDuringSchedulingIgnoredDuringExecution is { } req &&
            NodeSelectorMatcher.From(req) is { } m && !m.Matches(node.Metadata.Name, labels)) return false;
        var tolerations = TolerationsFor(spec).ToArray();
        return Taints.FindUntolerated([.. node.Spec?.Taints ?? []], tolerations) is null;
    }

    /// <summary>The node a daemon pod is for: spec.nodeName, else its matchFields metadata.name affinity.</summary>
    public static string? TargetNode(V1Pod p)
    {
        if (!string.IsNullOrEmpty(p.Spec?.NodeName)) return p.Spec.NodeName;
        var terms = p.Spec?.Affinity?.NodeAffinity?.RequiredDuringSchedulingIgnoredDuringExecution?.NodeSelectorTerms;
        if (terms is null) return null;
        foreach (var t in terms)
            foreach (var f in t.MatchFields ?? [])
                if (f.Key == "metadata.name" && f.OperatorProperty == "In" && f.Values is { Count: 1 }) return f.Values[0];
        return null;
    }

    V1Pod NewPod(V1DaemonSet ds, string node, string hash)
    {
        var pod = ReplicaSetController.PodFromTemplate(ds.Spec.Template, ds.Metadata, ds.Metadata.Name + "-", Owners.ControllerRef("apps/v1", "DaemonSet", ds.Metadata));
        pod.Metadata.Labels = new Dictionary<string, string>(pod.Metadata.Labels ?? new Dictionary<string, string>())
        {
            [RevisionLabel] = hash, [TemplateGenerationLabel] = (ds.Metadata.Generation ?? 1).ToString(),
        };
        pod.Spec ??= new V1PodSpec();
        pod.Spec.Tolerations = TolerationsFor(pod.Spec);
        pod.Spec.Affinity ??= new V1Affinity();
        pod.Spec.Affinity.NodeAffinity ??= new V1NodeAffinity();
        pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = new V1NodeSelector
        {
            NodeSelectorTerms = [new V1NodeSelectorTerm { MatchFields = [new V1NodeSelectorRequirement { Key = "metadata.name", OperatorProperty = "In", Values = [node] }] }],
        };
        return pod;
    }

    static int Resolve(IntOrString? v, int total, bool roundUp, int dflt)
    {
        if (v?.Value is not { } s) return dflt;
        if (s.EndsWith('%') && int.TryParse(s[..^1], out var pct))
            return roundUp ? (int)Math.Ceiling(total * pct / 100.0) : (int)Math.Floor(total * pct / 100.0);
        return int.TryParse(s, out var n) ? n : dflt;
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var cached = _sets.Get(key);
        if (cached is null) return;
        var ds = Kinds.Clone(cached);
        var selector = LabelSelectorMatcher.From(ds.Spec.Selector);
        var hash = TemplateHash(ds.Spec.Template, ds.Status?.CollisionCount is > 0 and var c ? c : null);
        var now = _time.GetUtcNow().UtcDateTime;
        int minReady = ds.Spec.MinReadySeconds ?? 0;
        var owned = _pods.ByIndex(InformerFactory.NamespaceIndex, ds.Metadata.NamespaceProperty ?? "")
            .Where(p => Owners.ControllerOf(p.Metadata)?.Uid == ds.Metadata.Uid).ToList();
        var byNode = owned.Where(p => p.Metadata.DeletionTimestamp is null).GroupBy(p => TargetNode(p) ?? "").ToDictionary(g => g.Key, g => g.OrderBy(p => p.Metadata.CreationTimestamp).ToList());
        var nodes = _nodes.List();
        var eligible = nodes.Where(n => ShouldRun(ds.Spec.Template.Spec, n)).Select(n => n.Metadata.Name).ToHashSet();

        var create = new List<string>();
        var delete = new List<V1Pod>();
        if (ds.Metadata.DeletionTimestamp is null)
        {
            await _history.EnsureAsync("DaemonSet", ds.Metadata, $"{ds.Metadata.Name}-{hash}", hash, ds.Spec.Template, ct).ConfigureAwait(false);
            var live = owned.Select(p => $"{ds.Metadata.Name}-{PodFacts.Label(p.Metadata, RevisionLabel)}").Append($"{ds.Metadata.Name}-{hash}").ToHashSet();
            await _history.TrimAsync(ds.Metadata, ds.Spec.RevisionHistoryLimit ?? 10, live, ct).ConfigureAwait(false);
        }
        if (ds.Metadata.DeletionTimestamp is null && _exp.Satisfied(key))
        {
            foreach (var (node, pods) in byNode)
            {
                if (!eligible.Contains(node)) { delete.AddRange(pods); continue; }
                var failed = pods.Where(p => p.Status?.Phase == "Failed").ToList();
                delete.AddRange(failed);
                var live = pods.Except(failed).ToList();
                // More than one pod on a node: keep the newest revision's oldest pod (a surge in progress keeps both).
                var fresh = live.Where(p => PodFacts.Label(p.Metadata, RevisionLabel) == hash).ToList();
                var old = live.Except(fresh).ToList();
                if (fresh.Count > 1) delete.AddRange(fresh.Skip(1));
                if (old.Count > 1) delete.AddRange(old.Skip(1));
                if (live.Count == 0 && failed.Count > 0) create.Add(node);
            }
            foreach (var node in eligible) if (!byNode.ContainsKey(node)) create.Add(node);

            if (ds.Spec.UpdateStrategy?.Type != "OnDelete") Rolling(ds, hash, eligible, byNode, delete, create, minReady, now);
            if (delete.Count + create.Count > 0) await ApplyAsync(ds, key, hash, create.Distinct().ToList(), delete.DistinctBy(p => p.Metadata.Uid).ToList(), ct).ConfigureAwait(false);
        }
        await StatusAsync(ds, hash, eligible, byNode, minReady, now, ct).ConfigureAwait(false);
    }

    /// <summary>RollingUpdate: old pods go within maxUnavailable, or with maxSurge a new pod starts beside each old one first.</summary>
    void Rolling(V1DaemonSet ds, string hash, HashSet<string> eligible, Dictionary<string, List<V1Pod>> byNode, List<V1Pod> delete, List<string> create, int minReady, DateTime now)
    {
        int desired = eligible.Count;
        var ru = ds.Spec.UpdateStrategy?.RollingUpdate;
        int surge = Resolve(ru?.MaxSurge, desired, true, 0);
        int maxUnavailable = Resolve(ru?.MaxUnavailable, desired, true, surge == 0 ? 1 : 0);
        if (surge == 0 && maxUnavailable == 0) maxUnavailable = 1;
        bool IsNew(V1Pod p) => PodFacts.Label(p.Metadata, RevisionLabel) == hash;
        bool Avail(V1Pod p) => PodFacts.IsAvailable(p, minReady, now);
        int unavailable = 0, surging = 0;
        var oldNodes = new List<(string Node, V1Pod Old, V1Pod? New)>();
        foreach (var node in eligible)
        {
            var pods = byNode.GetValueOrDefault(node)?.Where(p => !delete.Contains(p)).ToList() ?? [];
            if (!pods.Any(Avail)) unavailable++;
            var oldPod = pods.FirstOrDefault(p => !IsNew(p));
            var newPod = pods.FirstOrDefault(IsNew);
            if (oldPod is not null) oldNodes.Add((node, oldPod, newPod));
            if (oldPod is not null && newPod is not null) surging++;
        }
        if (surge == 0)
        {
            int budget = maxUnavailable - unavailable;
            // Unavailable old pods can go at once; available ones within the budget.
            foreach (var (_, oldPod, _) in oldNodes.Where(x => !Avail(x.Old))) delete.Add(oldPod);
            foreach (var (_, oldPod, _) in oldNodes.Where(x => Avail(x.Old)))
            {
                if (budget <= 0) break;
                delete.Add(oldPod); budget--;
            }
            return;
        }
        foreach (var (node, oldPod, newPod) in oldNodes)
        {
            if (newPod is not null) { if (Avail(newPod)) delete.Add(oldPod); continue; }
            if (!Avail(oldPod)) { delete.Add(oldPod); continue; }
            if (surging < surge) { create.Add(node); surging++; }
        }
    }

    async Task ApplyAsync(V1DaemonSet ds, string key, string hash, List<string> create, List<V1Pod> delete, CancellationToken ct)
    {
        _exp.Expect(key, create.Count, delete.Count);
        foreach (var p in delete)
        {
            try
            {
                await _client.DeleteAsync<V1Pod>(p.Metadata.NamespaceProperty, p.Metadata.Name, new DeleteOptions(Uid: p.Metadata.Uid), ct).ConfigureAwait(false);
                _events.Record(ds, "Normal", "SuccessfulDelete", $"Deleted pod: {p.Metadata.Name}");
            }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { _exp.Lower(key, 0, 1); }
        }
        for (int i = 0; i < create.Count; i++)
        {
            try
            {
                var pod = await _client.CreateAsync(NewPod(ds, create[i], hash), ct).ConfigureAwait(false);
                _events.Record(ds, "Normal", "SuccessfulCreate", $"Created pod: {pod.Metadata.Name}");
            }
            catch (ClusterException e)
            {
                _exp.Lower(key, create.Count - i, 0);
                _events.Record(ds, "Warning", "FailedCreate", $"Error creating: {e.Message}");
                throw new InvalidOperationException($"creating pods for daemonset \"{ds.Metadata.Name}\" in namespace \"{ds.Metadata.NamespaceProperty}\" failed: {e.Message}");
            }
        }
    }

    async Task StatusAsync(V1DaemonSet ds, string hash, HashSet<string> eligible, Dictionary<string, List<V1Pod>> byNode, int minReady, DateTime now, CancellationToken ct)
    {
        int current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
        DateTime? recheck = null;
        foreach (var (node, pods) in byNode)
        {
            if (!eligible.Contains(node)) { misscheduled++; continue; }
            current++;
            if (pods.Any(p => PodFacts.Label(p.Metadata, RevisionLabel) == hash)) updated++;
            if (pods.Any(PodConditions.IsReady)) ready++;
            if (pods.Any(p => PodFacts.IsAvailable(p, minReady, now))) available++;
            else if (pods.FirstOrDefault(PodConditions.IsReady) is { } r && PodConditions.Get(r.Status, "Ready")?.LastTransitionTime is { } since)
                recheck = since.AddSeconds(minReady) is var at && (recheck is null || at < recheck) ? at : recheck;
        }
        if (recheck is { } rc) _wake.At(Kinds.Key(ds.Metadata), rc, now);
        var st = new V1DaemonSetStatus
        {
            DesiredNumberScheduled = eligible.Count, CurrentNumberScheduled = current, NumberMisscheduled = misscheduled,
            NumberReady = ready, NumberAvailable = available > 0 ? available : null, UpdatedNumberScheduled = updated > 0 ? updated : null,
            NumberUnavailable = eligible.Count - available > 0 ? eligible.Count - available : null,
            ObservedGeneration = ds.Metadata.Generation, CollisionCount = ds.Status?.CollisionCount, Conditions = ds.Status?.Conditions,
        };
        if (Json(st) == Json(ds.Status)) return;
        var u = Kinds.Clone(ds);
        u.Status = st;
        await _client.UpdateStatusAsync(u, ct).ConfigureAwait(false);
    }

    static string Json(V1DaemonSetStatus? st) => st is null ? "" : System.Text.Encoding.UTF8.GetString(Kinds.ToJson(new V1DaemonSet { Status = st }));
}
