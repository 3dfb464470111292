using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's horizontal-pod-autoscaler controller, for a cluster without a metrics API
/// (Berth serves no metrics.k8s.io, custom.metrics.k8s.io or external.metrics.k8s.io): every sync
/// (each HPA every 15 s, kube's --horizontal-pod-autoscaler-sync-period, and when the HPA or its target
/// changes) it reads the target's scale (spec.replicas of a Deployment, ReplicaSet or StatefulSet) and
///  - with the target at 0 replicas and minReplicas ≠ 0: ScalingActive=False ScalingDisabled, no change;
///  - above maxReplicas: scales to maxReplicas; below minReplicas: scales to minReplicas
///    (AbleToScale=True SucceededRescale, a SuccessfulRescale event, status.lastScaleTime);
///  - otherwise it would compute from metrics, which cannot be fetched: ScalingActive=False
///    FailedGet…Metric with kube's message and Warning events, and the replicas stay as they are.
/// Status (currentReplicas, desiredReplicas, conditions) is written through the status subresource
/// only when it changes. No metric value is ever invented.
/// </summary>
public sealed class HorizontalPodAutoscalerController : Controller
{
    static readonly TimeSpan SyncPeriod = TimeSpan.FromSeconds(15);
    readonly IClusterClient _client;
    readonly Informer<V2HorizontalPodAutoscaler> _hpas;
    readonly Informer<V1Deployment> _deploys;
    readonly Informer<V1ReplicaSet> _rs;
    readonly Informer<V1StatefulSet> _sts;
    readonly ObjectEvents _events;
    readonly TimeProvider _time;
    public override string Name => "horizontal-pod-autoscaler";

    public HorizontalPodAutoscalerController(InformerFactory f, TimeProvider? time = null)
    {
        _client = f.Client;
        _time = time ?? TimeProvider.System;
        _events = new ObjectEvents(_client, Name, _time);
        _hpas = f.For<V2HorizontalPodAutoscaler>();
        _deploys = f.For<V1Deployment>();
        _rs = f.For<V1ReplicaSet>();
        _sts = f.For<V1StatefulSet>();
        _hpas.AddHandler(new InformerHandler<V2HorizontalPodAutoscaler>(h => Enqueue(h.Metadata), (o, h) => { if (SpecChanged(o, h)) Enqueue(h.Metadata); }));
        _deploys.AddHandler(new InformerHandler<V1Deployment>(update: (o, d) => TargetChanged("Deployment", o.Spec?.Replicas, d.Spec?.Replicas, d.Metadata)));
        _rs.AddHandler(new InformerHandler<V1ReplicaSet>(update: (o, r) => TargetChanged("ReplicaSet", o.Spec?.Replicas, r.Spec?.Replicas, r.Metadata)));
        _sts.AddHandler(new InformerHandler<V1StatefulSet>(update: (o, s) => TargetChanged("StatefulSet", o.Spec?.Replicas, s.Spec?.Replicas, s.Metadata)));
    }

    /// <summary>The controller's own status writes do not need another sync; a spec or metadata change does.</summary>
    static bool SpecChanged(V2HorizontalPodAutoscaler o, V2HorizontalPodAutoscaler h) => Kinds.SpecChanged(Kinds.Of<V2HorizontalPodAutoscaler>(), o, h);

    void TargetChanged(string kind, int? before, int? after, V1ObjectMeta m)
    {
        if (before == after) return;
        foreach (var h in _hpas.List(m.NamespaceProperty))
            if (h.Spec?.ScaleTargetRef?.Kind == kind && h.Spec.ScaleTargetRef.Name == m.Name) Enqueue(h.Metadata);
    }

    /// <summary>The target's scale: its spec.replicas (1 when unset, as the API defaults it) and how to set it.</summary>
    (int Replicas, Func<int, CancellationToken, ValueTask>? Set, string? Error) Scale(string? ns, V2CrossVersionObjectReference r)
    {
        static string NotFound(string plural, string name) => $"{plural}.apps \"{name}\" not found";
        switch (r.Kind)
        {
            case "Deployment":
                if (_deploys.Get(ns, r.Name) is not { } d) return (0, null, NotFound("deployments", r.Name));
                return (d.Spec?.Replicas ?? 1, (n, ct) => SetAsync(d, x => x.Spec.Replicas = n, ct), null);
            case "ReplicaSet":
                if (_rs.Get(ns, r.Name) is not { } rs) return (0, null, NotFound("replicasets", r.Name));
                return (rs.Spec?.Replicas ?? 1, (n, ct) => SetAsync(rs, x => x.Spec.Replicas = n, ct), null);
            case "StatefulSet":
                if (_sts.Get(ns, r.Name) is not { } s) return (0, null, NotFound("statefulsets", r.Name));
                return (s.Spec?.Replicas ?? 1, (n, ct) => SetAsync(s, x => x.Spec.Replicas = n, ct), null);
            default:
                var group = r.ApiVersion is { } av && av.Contains('/') ? av[..av.IndexOf('/')] : "";
                return (0, null, $"unable to determine resource for scale target reference: no matches for kind \"{r.Kind}\" in group \"{group}\"");
        }
    }

    async ValueTask SetAsync<T>(T cached, Action<T> set, CancellationToken ct) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var copy = Kinds.Clone(cached);
        set(copy);
        await _client.UpdateAsync(copy, ct).ConfigureAwait(false);
    }

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var (ns, name) = Kinds.SplitKey(key);
        var hpa = _hpas.Get(ns, name);
        if (hpa is null || hpa.Metadata.DeletionTimestamp is not null) return;
        EnqueueAfter(key, SyncPeriod); // level-triggered: every HPA is looked at again each period
        var copy = Kinds.Clone(hpa);
        var status = copy.Status ??= new V2HorizontalPodAutoscalerStatus();
        var spec = copy.Spec;
        var now = _time.GetUtcNow().UtcDateTime;
        var reference = $"{spec.ScaleTargetRef.Kind}/{spec.ScaleTargetRef.Name}";

        var (current, set, error) = Scale(ns, spec.ScaleTargetRef);
        if (error is not null)
        {
            if (SetCondition(status, "AbleToScale", "False", "FailedGetScale", $"the HPA controller was unable to get the target's current scale: {error}", now))
                _events.Record(copy, "Warning", "FailedGetScale", error);
            await WriteStatusAsync(hpa, copy, ct).ConfigureAwait(false);
            return;
        }
        SetCondition(status, "AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale", now);

        var min = spec.MinReplicas ?? 1;
        int desired;
        string reason;
        if (current == 0 && min != 0)
        {
            SetCondition(status, "ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica count of the target is zero", now);
            status.CurrentReplicas = current;
            status.DesiredReplicas = 0;
            await WriteStatusAsync(hpa, copy, ct).ConfigureAwait(false);
            return;
        }
        if (current > spec.MaxReplicas) (desired, reason) = (spec.MaxReplicas, "Current number of replicas above Spec.MaxReplicas");
        else if (current < min) (desired, reason) = (min, "Current number of replicas below Spec.MinReplicas");
        else
        {
            // the metrics: none can be fetched here, so the replica count cannot be computed (kube's
            // computeReplicasForMetrics with every metric failing): the target keeps its size
            var failures = (spec.Metrics ?? []).Select(MetricFailure).ToList();
            if (failures.Count > 0)
            {
                var (condReason, first) = failures[0];
                if (SetCondition(status, "ScalingActive", "False", condReason, $"the HPA was unable to compute the replica count: {first}", now))
                {
                    foreach (var (r, m) in failures) _events.Record(copy, "Warning", r, m);
                    _events.Record(copy, "Warning", "FailedComputeMetricsReplicas", $"invalid metrics ({failures.Count} invalid out of {failures.Count}), first error is: {first}");
                }
            }
            status.CurrentReplicas = current;
            status.CurrentMetrics = null;
            await WriteStatusAsync(hpa, copy, ct).ConfigureAwait(false);
            return;
        }

        try
        {
            await set!(desired, ct).ConfigureAwait(false);
        }
        catch (ClusterException e) when (e.Kind is not (ClusterErrorKind.NotFound or ClusterErrorKind.Conflict)) // a conflict is retried (the cache was behind)
        {
            SetCondition(status, "AbleToScale", "False", "FailedUpdateScale", $"the HPA controller was unable to update the target scale: {e.Message}", now);
            _events.Record(copy, "Warning", "FailedRescale", $"New size: {desired}; reason: {reason}; error: {e.Message}");
            await WriteStatusAsync(hpa, copy, ct).ConfigureAwait(false);
            return;
        }
        SetCondition(status, "AbleToScale", "True", "SucceededRescale", $"the HPA controller was able to update the target scale to {desired}", now);
        _events.Record(copy, "Normal", "SuccessfulRescale", $"New size: {desired}; reason: {reason}");
        status.CurrentReplicas = current;
        status.DesiredReplicas = desired;
        status.LastScaleTime = now;
        await WriteStatusAsync(hpa, copy, ct).ConfigureAwait(false);
    }

    /// <summary>The condition reason and the error kube reports for a metric it cannot fetch (no metrics APIs are served).</summary>
    static (string Reason, string Message) MetricFailure(V2MetricSpec m) => m.Type switch
    {
        "Resource" => ("FailedGetResourceMetric",
            $"failed to get {m.Resource?.Name} utilization: unable to get metrics for resource {m.Resource?.Name}: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"),
        "ContainerResource" => ("FailedGetContainerResourceMetric",
            $"failed to get {m.ContainerResource?.Name} utilization: unable to get metrics for resource {m.ContainerResource?.Name}: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"),
        "Pods" => ("FailedGetPodsMetric",
            $"unable to get metric {m.Pods?.Metric?.Name}: unable to fetch metrics from custom metrics API: the server could not find the requested resource (get pods.custom.metrics.k8s.io)"),
        "Object" => ("FailedGetObjectMetric",
            $"unable to get metric {m.ObjectProperty?.Metric?.Name}: unable to fetch metrics from custom metrics API: the server could not find the requested resource"),
        "External" => ("FailedGetExternalMetric",
            $"unable to get external metric {m.External?.Metric?.Name}: unable to fetch metrics from external metrics API: the server could not find the requested resource"),
        _ => ("InvalidMetricSourceType", $"unknown metric source type \"{m.Type}\""),
    };

    /// <summary>Sets a condition (its transition time moves only when its status does); true when anything about it changed.</summary>
    static bool SetCondition(V2HorizontalPodAutoscalerStatus st, string type, string status, string reason, string message, DateTime now)
    {
        var list = st.Conditions ??= new List<V2HorizontalPodAutoscalerCondition>();
        var c = list.FirstOrDefault(x => x.Type == type);
        if (c is null)
        {
            list.Add(new V2HorizontalPodAutoscalerCondition { Type = type, Status = status, Reason = reason, Message = message, LastTransitionTime = now });
            return true;
        }
        var changed = c.Status != status || c.Reason != reason || c.Message != message;
        if (c.Status != status) c.LastTransitionTime = now;
        (c.Status, c.Reason, c.Message) = (status, reason, message);
        return changed;
    }

    async Task WriteStatusAsync(V2HorizontalPodAutoscaler old, V2HorizontalPodAutoscaler updated, CancellationToken ct)
    {
        if (Kinds.ToJson(old).AsSpan().SequenceEqual(Kinds.ToJson(updated))) return;
        try { await _client.UpdateStatusAsync(updated, ct).ConfigureAwait(false); }
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound) { }
    }
}
