using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using k8s.Models;

namespace Berth.Cluster.Client;

/// <summary>
/// What the client seam needs to know about one resource type: its API coordinates, whether it is
/// namespaced, how to deep-copy it (source-generated JSON, AOT-safe) and how to reach its spec and
/// status (so an update keeps status and an updateStatus keeps spec, as the API server does).
/// </summary>
public sealed class ResourceKind
{
    public required string Group { get; init; }
    public required string Version { get; init; }
    public required string Kind { get; init; }
    public required string Plural { get; init; }
    public required bool Namespaced { get; init; }
    public required Type Type { get; init; }
    internal JsonTypeInfo TypeInfo { get; init; } = null!;
    internal Func<object, object?>? GetSpec { get; init; }
    internal Func<object, object?>? GetStatus { get; init; }
    internal Action<object, object?>? SetStatus { get; init; }
    internal JsonTypeInfo? SpecInfo { get; init; }

    public string ApiVersion => Group.Length == 0 ? Version : Group + "/" + Version;
    internal string GroupSuffix => Group.Length == 0 ? "" : "." + Group;
    public bool HasStatus => GetStatus is not null;

    public override string ToString() => Plural + GroupSuffix;
}

/// <summary>Deep copies and kind lookups for the typed models (k8s.Models).</summary>
public static class Kinds
{
    static readonly Dictionary<Type, ResourceKind> ByType = Build();

    public static ResourceKind Of<T>() => Cache<T>.Kind;
    public static ResourceKind Of(Type t) =>
        ByType.TryGetValue(t, out var k) ? k : throw new NotSupportedException($"resource type {t.Name} is not registered in Kinds");
    public static IEnumerable<ResourceKind> All => ByType.Values;

    /// <summary>A deep copy of any model type (what a controller must do before changing an object it got from a cache).</summary>
    public static T Clone<T>(T obj) where T : class
    {
        return (T)ObjectCopier.DeepCopy(obj, ClusterJsonContext.Default.Options);
    }

    internal static object CloneObject(ResourceKind k, object obj) => ObjectCopier.DeepCopy(obj, ClusterJsonContext.Default.Options);

    /// <summary>The JSON form (source-generated; for tests, diffs and the API adapter).</summary>
    public static byte[] ToJson<T>(T obj) where T : class => JsonSerializer.SerializeToUtf8Bytes(obj, ClusterJsonContext.Default.Options.GetTypeInfo(typeof(T)));

    /// <summary>True when two specs serialize differently (drives metadata.generation).</summary>
    internal static bool SpecChanged(ResourceKind k, object a, object b)
    {
        if (k.GetSpec is null || k.SpecInfo is null) return false;
        var sa = k.GetSpec(a); var sb = k.GetSpec(b);
        if (sa is null || sb is null) return !ReferenceEquals(sa, sb);
        return !JsonSerializer.SerializeToUtf8Bytes(sa, k.SpecInfo).AsSpan().SequenceEqual(JsonSerializer.SerializeToUtf8Bytes(sb, k.SpecInfo));
    }

    public static string Key(V1ObjectMeta m) => string.IsNullOrEmpty(m.NamespaceProperty) ? m.Name : m.NamespaceProperty + "/" + m.Name;
    public static (string? Ns, string Name) SplitKey(string key)
    {
        var i = key.IndexOf('/');
        return i < 0 ? (null, key) : (key[..i], key[(i + 1)..]);
    }

    static class Cache<T> { public static readonly ResourceKind Kind = Of(typeof(T)); }

    static Dictionary<Type, ResourceKind> Build()
    {
        var c = ClusterJsonContext.Default;
        var d = new Dictionary<Type, ResourceKind>();
        void Add(ResourceKind k) => d[k.Type] = k;
        Add(new() { Group = "", Version = "v1", Kind = "Pod", Plural = "pods", Namespaced = true, Type = typeof(V1Pod), TypeInfo = c.V1Pod,
            GetSpec = o => ((V1Pod)o).Spec, SpecInfo = c.V1PodSpec, GetStatus = o => ((V1Pod)o).Status, SetStatus = (o, s) => ((V1Pod)o).Status = (V1PodStatus?)s });
        Add(new() { Group = "", Version = "v1", Kind = "Node", Plural = "nodes", Namespaced = false, Type = typeof(V1Node), TypeInfo = c.V1Node,
            GetSpec = o => ((V1Node)o).Spec, SpecInfo = c.V1NodeSpec, GetStatus = o => ((V1Node)o).Status, SetStatus = (o, s) => ((V1Node)o).Status = (V1NodeStatus?)s });
        Add(new() { Group = "", Version = "v1", Kind = "Namespace", Plural = "namespaces", Namespaced = false, Type = typeof(V1Namespace), TypeInfo = c.V1Namespace,
            GetSpec = o => ((V1Namespace)o).Spec, SpecInfo = c.V1NamespaceSpec, GetStatus = o => ((V1Namespace)o).Status, SetStatus = (o, s) => ((V1Namespace)o).Status = (V1NamespaceStatus?)s });
        Add(new() { Group = "", Version = "v1", Kind = "Service", Plural = "services", Namespaced = true, Type = typeof(V1Service), TypeInfo = c.V1Service,
            GetSpec = o => ((V1Service)o).Spec, SpecInfo = c.V1ServiceSpec, GetStatus = o => ((V1Service)o).Status, SetStatus = (o, s) => ((V1Service)o).Status = (V1ServiceStatus?)s });
        Add(new() { Group = "", Version = "v1", Kind = "Endpoints", Plural = "endpoints", Namespaced = true, Type = typeof(V1Endpoints), TypeInfo = c.V1Endpoints });
        Add(new() { Group = "", Version = "v1", Kind = "Event", Plural = "events", Namespaced = true, Type = typeof(Corev1Event), TypeInfo = c.Corev1Event });
        Add(new() { Group = "", Version = "v1", Kind = "ConfigMap", Plural = "configmaps", Namespaced = true, Type = typeof(V1ConfigMap), TypeInfo = c.V1ConfigMap });
        Add(new() { Group = "", Version = "v1", Kind = "Secret", Plural = "secrets", Namespaced = true, Type = typeof(V1Secret), TypeInfo = c.V1Secret });
        Add(new() { Group = "", Version = "v1", Kind = "ServiceAccount", Plural = "serviceaccounts", Namespaced = true, Type = typeof(V1ServiceAccount), TypeInfo = c.V1ServiceAccount });
        Add(new() { Group = "apps", Version = "v1", Kind = "Deployment", Plural = "deployments", Namespaced = true, Type = typeof(V1Deployment), TypeInfo = c.V1Deployment,
            GetSpec = o => ((V1Deployment)o).Spec, SpecInfo = c.V1DeploymentSpec, GetStatus = o => ((V1Deployment)o).Status, SetStatus = (o, s) => ((V1Deployment)o).Status = (V1DeploymentStatus?)s });
        Add(new() { Group = "apps", Version = "v1", Kind = "ReplicaSet", Plural = "replicasets", Namespaced = true, Type = typeof(V1ReplicaSet), TypeInfo = c.V1ReplicaSet,
            GetSpec = o => ((V1ReplicaSet)o).Spec, SpecInfo = c.V1ReplicaSetSpec, GetStatus = o => ((V1ReplicaSet)o).Status, SetStatus = (o, s) => ((V1ReplicaSet)o).Status = (V1ReplicaSetStatus?)s });
        Add(new() { Group = "apps", Version = "v1", Kind = "DaemonSet", Plural = "daemonsets", Namespaced = true, Type = typeof(V1DaemonSet), TypeInfo = c.V1DaemonSet,
            GetSpec = o => ((V1DaemonSet)o).Spec, SpecInfo = c.V1DaemonSetSpec, GetStatus = o => ((V1DaemonSet)o).Status, SetStatus = (o, s) => ((V1DaemonSet)o).Status = (V1DaemonSetStatus?)s });
        Add(new() { Group = "apps", Version = "v1", Kind = "StatefulSet", Plural = "statefulsets", Namespaced = true, Type = typeof(V1StatefulSet), TypeInfo = c.V1StatefulSet,
            GetSpec = o => ((V1StatefulSet)o).Spec, SpecInfo = c.V1StatefulSetSpec, GetStatus = o => ((V1StatefulSet)o).Status, SetStatus = (o, s) => ((V1StatefulSet)o).Status = (V1StatefulSetStatus?)s });
        Add(new() { Group = "batch", Version = "v1", Kind = "Job", Plural = "jobs", Namespaced = true, Type = typeof(V1Job), TypeInfo = c.V1Job,
            GetSpec = o => ((V1Job)o).Spec, SpecInfo = c.V1JobSpec, GetStatus = o => ((V1Job)o).Status, SetStatus = (o, s) => ((V1Job)o).Status = (V1JobStatus?)s });
        Add(new() { Group = "batch", Version = "v1", Kind = "CronJob", Plural = "cronjobs", Namespaced = true, Type = typeof(V1CronJob), TypeInfo = c.V1CronJob,
            GetSpec = o => ((V1CronJob)o).Spec, SpecInfo = c.V1CronJobSpec, GetStatus = o => ((V1CronJob)o).Status, SetStatus = (o, s) => ((V1CronJob)o).Status = (V1CronJobStatus?)s });
        Add(new() { Group = "apps", Version = "v1", Kind = "ControllerRevision", Plural = "controllerrevisions", Namespaced = true, Type = typeof(V1ControllerRevision), TypeInfo = c.V1ControllerRevision });
        Add(new() { Group = "", Version = "v1", Kind = "PersistentVolumeClaim", Plural = "persistentvolumeclaims", Namespaced = true, Type = typeof(V1PersistentVolumeClaim), TypeInfo = c.V1PersistentVolumeClaim,
            GetSpec = o => ((V1PersistentVolumeClaim)o).Spec, SpecInfo = c.V1PersistentVolumeClaimSpec, GetStatus = o => ((V1PersistentVolumeClaim)o).Status, SetStatus = (o, s) => ((V1PersistentVolumeClaim)o).Status = (V1PersistentVolumeClaimStatus?)s });
        Add(new() { Group = "discovery.k8s.io", Version = "v1", Kind = "EndpointSlice", Plural = "endpointslices", Namespaced = true, Type = typeof(V1EndpointSlice), TypeInfo = c.V1EndpointSlice });
        Add(new() { Group = "rbac.authorization.k8s.io", Version = "v1", Kind = "ClusterRole", Plural = "clusterroles", Namespaced = false, Type = typeof(V1ClusterRole), TypeInfo = c.V1ClusterRole });
        Add(new() { Group = "coordination.k8s.io", Version = "v1", Kind = "Lease", Plural = "leases", Namespaced = true, Type = typeof(V1Lease), TypeInfo = c.V1Lease,
            GetSpec = null });
        Add(new() { Group = "policy", Version = "v1", Kind = "PodDisruptionBudget", Plural = "poddisruptionbudgets", Namespaced = true, Type = typeof(V1PodDisruptionBudget), TypeInfo = c.V1PodDisruptionBudget,
            GetSpec = o => ((V1PodDisruptionBudget)o).Spec, SpecInfo = c.V1PodDisruptionBudgetSpec, GetStatus = o => ((V1PodDisruptionBudget)o).Status, SetStatus = (o, s) => ((V1PodDisruptionBudget)o).Status = (V1PodDisruptionBudgetStatus?)s });
        Add(new() { Group = "", Version = "v1", Kind = "ResourceQuota", Plural = "resourcequotas", Namespaced = true, Type = typeof(V1ResourceQuota), TypeInfo = c.V1ResourceQuota,
            GetSpec = o => ((V1ResourceQuota)o).Spec, SpecInfo = c.V1ResourceQuotaSpec, GetStatus = o => ((V1ResourceQuota)o).Status, SetStatus = (o, s) => ((V1ResourceQuota)o).Status = (V1ResourceQuotaStatus?)s });
        Add(new() { Group = "", Version = "v1", Kind = "LimitRange", Plural = "limitranges", Namespaced = true, Type = typeof(V1LimitRange), TypeInfo = c.V1LimitRange });
        Add(new() { Group = "autoscaling", Version = "v2", Kind = "HorizontalPodAutoscaler", Plural = "horizontalpodautoscalers", Namespaced = true, Type = typeof(V2HorizontalPodAutoscaler), TypeInfo = c.V2HorizontalPodAutoscaler,
            GetSpec = o => ((V2HorizontalPodAutoscaler)o).Spec, SpecInfo = c.V2HorizontalPodAutoscalerSpec, GetStatus = o => ((V2HorizontalPodAutoscaler)o).Status, SetStatus = (o, s) => ((V2HorizontalPodAutoscaler)o).Status = (V2HorizontalPodAutoscalerStatus?)s });
        return d;
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(V1Pod))]
[JsonSerializable(typeof(V1PodSpec))]
[JsonSerializable(typeof(V1Node))]
[JsonSerializable(typeof(V1NodeSpec))]
[JsonSerializable(typeof(V1Namespace))]
[JsonSerializable(typeof(V1NamespaceSpec))]
[JsonSerializable(typeof(V1Service))]
[JsonSerializable(typeof(V1ServiceSpec))]
[JsonSerializable(typeof(V1Endpoints))]
[JsonSerializable(typeof(Corev1Event))]
[JsonSerializable(typeof(V1ConfigMap))]
[JsonSerializable(typeof(V1Secret))]
[JsonSerializable(typeof(V1ServiceAccount))]
[JsonSerializable(typeof(V1Deployment))]
[JsonSerializable(typeof(V1DeploymentSpec))]
[JsonSerializable(typeof(V1ReplicaSet))]
[JsonSerializable(typeof(V1ReplicaSetSpec))]
[JsonSerializable(typeof(V1DaemonSet))]
[JsonSerializable(typeof(V1DaemonSetSpec))]
[JsonSerializable(typeof(V1StatefulSet))]
[JsonSerializable(typeof(V1StatefulSetSpec))]
[JsonSerializable(typeof(V1Job))]
[JsonSerializable(typeof(V1JobSpec))]
[JsonSerializable(typeof(V1CronJob))]
[JsonSerializable(typeof(V1CronJobSpec))]
[JsonSerializable(typeof(V1EndpointSlice))]
[JsonSerializable(typeof(V1Lease))]
[JsonSerializable(typeof(V1ClusterRole))]
[JsonSerializable(typeof(V1PolicyRule))]
[JsonSerializable(typeof(V1PodDisruptionBudget))]
[JsonSerializable(typeof(V1PodDisruptionBudgetSpec))]
[JsonSerializable(typeof(V1ResourceQuota))]
[JsonSerializable(typeof(V1ResourceQuotaSpec))]
[JsonSerializable(typeof(V1LimitRange))]
[JsonSerializable(typeof(V1ControllerRevision))]
[JsonSerializable(typeof(V1PersistentVolumeClaim))]
[JsonSerializable(typeof(V1PersistentVolumeClaimSpec))]
[JsonSerializable(typeof(V2HorizontalPodAutoscaler))]
[JsonSerializable(typeof(V2HorizontalPodAutoscalerSpec))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(V1PodTemplateSpec))]
[JsonSerializable(typeof(List<V1EndpointSubset>))]
[JsonSerializable(typeof(List<V1Endpoint>))]
[JsonSerializable(typeof(List<Discoveryv1EndpointPort>))]
internal sealed partial class ClusterJsonContext : JsonSerializerContext;
