using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// Small pieces the workload controllers share: core/v1 Events about
/// an object (written in the background; a failed write is dropped, as client-go's recorder does) and
/// requeues after a delay measured on the controller's <see cref="TimeProvider"/>, so tests can drive
/// deadlines and schedules with a fake clock.
/// </summary>
internal sealed class ObjectEvents(IClusterClient client, string component, TimeProvider time)
{
    /// <summary>Records an Event about <paramref name="obj"/> (type Normal or Warning).</summary>
    public void Record<T>(T obj, string type, string reason, string message) where T : IKubernetesObject<V1ObjectMeta>
    {
        var now = time.GetUtcNow().UtcDateTime;
        var at = KubeTime.Seconds(now);
        var m = obj.Metadata;
        var e = new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = $"{m.Name}.{(now - DateTime.UnixEpoch).Ticks * 100:x}{Random.Shared.Next(0x1000):x3}", NamespaceProperty = m.NamespaceProperty ?? "default" },
            InvolvedObject = new V1ObjectReference { Kind = obj.Kind ?? Kinds.Of<T>().Kind, ApiVersion = obj.ApiVersion ?? Kinds.Of<T>().ApiVersion, NamespaceProperty = m.NamespaceProperty, Name = m.Name, Uid = m.Uid, ResourceVersion = m.ResourceVersion },
            Reason = reason, Message = message, Type = type,
            // client-go's recorder: reportingInstance is the source's host, which kube-controller-manager leaves empty
            Source = new V1EventSource { Component = component }, ReportingComponent = component,
            FirstTimestamp = at, LastTimestamp = at, Count = 1,
        };
        _ = WriteAsync(e);
    }

    async Task WriteAsync(Corev1Event e)
    {
        try { await client.CreateAsync(e).ConfigureAwait(false); }
        catch (ClusterException) { }
    }
}

/// <summary>metav1.Time fields (conditions' times, first/lastTimestamp, startTime) hold whole seconds, as kube serializes them.</summary>
internal static class KubeTime
{
    public static DateTime Seconds(DateTime t) => new(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
}

internal static class Later
{
    /// <summary>Calls <paramref name="action"/> once after <paramref name="delay"/> on <paramref name="time"/>'s clock.</summary>
    public static void Run(TimeProvider time, TimeSpan delay, Action action)
    {
        if (delay <= TimeSpan.Zero) { action(); return; }
        var box = new ITimer?[1];
        // Pending timers are rooted here: an unreferenced system timer may be collected before it fires.
        var timer = time.CreateTimer(_ =>
        {
            lock (Pending) { if (box[0] is { } t) { Pending.Remove(t); t.Dispose(); } }
            action();
        }, null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        lock (Pending) { box[0] = timer; Pending.Add(timer); }
        timer.Change(delay, Timeout.InfiniteTimeSpan);
    }

    static readonly HashSet<ITimer> Pending = [];
}

/// <summary>Per-key wake-ups on a controller's clock: one timer per key and instant, however often it is asked.</summary>
internal sealed class Wakeups(TimeProvider time, Action<string> enqueue)
{
    readonly Lock _lock = new();
    readonly Dictionary<string, DateTime> _at = [];

    public void At(string key, DateTime at, DateTime now)
    {
        lock (_lock)
        {
            if (_at.TryGetValue(key, out var t) && t == at) return;
            _at[key] = at;
        }
        Later.Run(time, at - now, () =>
        {
            lock (_lock) if (_at.TryGetValue(key, out var t) && t == at) _at.Remove(key);
            enqueue(key);
        });
    }
}

/// <summary>Helpers over pods the workload controllers share.</summary>
internal static class PodFacts
{
    public static bool IsTerminal(V1Pod p) => p.Status?.Phase is "Succeeded" or "Failed";

    public static bool HasFinalizer(V1Pod p, string f) => p.Metadata.Finalizers?.Contains(f) == true;

    public static int Restarts(V1Pod p) =>
        (p.Status?.ContainerStatuses?.Sum(c => c.RestartCount) ?? 0) + (p.Status?.InitContainerStatuses?.Sum(c => c.RestartCount) ?? 0);

    /// <summary>Ready for at least <paramref name="minReadySeconds"/> at <paramref name="now"/>.</summary>
    public static bool IsAvailable(V1Pod p, int minReadySeconds, DateTime now)
    {
        var c = PodConditions.Get(p.Status, "Ready");
        if (c?.Status != "True") return false;
        if (minReadySeconds <= 0) return true;
        return c.LastTransitionTime is { } t && t.AddSeconds(minReadySeconds) <= now;
    }

    public static string? Label(V1ObjectMeta m, string key) => m.Labels is { } l && l.TryGetValue(key, out var v) ? v : null;
    public static string? Annotation(V1ObjectMeta m, string key) => m.Annotations is { } a && a.TryGetValue(key, out var v) ? v : null;
}
