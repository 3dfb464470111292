using System.Threading.Channels;
using Berth.Cluster.Client;
using k8s.Models;

namespace Berth.Cluster.Scheduling;

/// <summary>
/// Writes core/v1 Events and the pods' PodScheduled condition off the scheduling thread. Repeats of
/// the same (object, reason, message) update the existing Event's count and lastTimestamp, as
/// client-go's event correlator does. A full buffer drops events rather than slow scheduling.
/// </summary>
internal sealed class EventRecorder(IClusterClient client, string component)
{
    readonly Channel<Item> _ch = Channel.CreateBounded<Item>(new BoundedChannelOptions(20_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    readonly Dictionary<(string, string, string), (string Name, int Count)> _seen = [];
    readonly SemaphoreSlim _inflight = new(4); // batches of Scheduled Events in flight

    readonly record struct Item(PodInfo Pod, string Type, string Reason, string Message, bool SetCondition, string? Nominated, DateTime At);

    public void Normal(PodInfo p, string reason, string msg) => _ch.Writer.TryWrite(new(p, "Normal", reason, msg, false, null, DateTime.UtcNow));
    public void Warning(PodInfo p, string reason, string msg) => _ch.Writer.TryWrite(new(p, "Warning", reason, msg, false, null, DateTime.UtcNow));
    public void Unschedulable(PodInfo p, string msg, string? nominated) => _ch.Writer.TryWrite(new(p, "Warning", "FailedScheduling", msg, true, nominated, DateTime.UtcNow));

    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            var reader = _ch.Reader;
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                List<Corev1Event>? batch = null;
                while (reader.TryRead(out var it))
                {
                    if (it.Reason == "Scheduled" && !it.SetCondition)
                    {
                        // One new Event per bound pod, never correlated: written in batches that share
                        // the store's commits, without waiting for them (a few batches in flight).
                        (batch ??= []).Add(Build(it));
                        if (batch.Count < MaxBatch) continue;
                    }
                    if (batch is not null) { await WriteBatchAsync(batch, ct).ConfigureAwait(false); batch = null; }
                    if (it.Reason == "Scheduled" && !it.SetCondition) continue;
                    try
                    {
                        if (it.SetCondition) await SetConditionAsync(it, ct).ConfigureAwait(false);
                        await WriteEventAsync(it, ct).ConfigureAwait(false);
                    }
                    catch (ClusterException) { /* the pod is gone or changed: the next attempt reports again */ }
                }
                if (batch is not null) await WriteBatchAsync(batch, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
    }

    const int MaxBatch = 256;

    async Task WriteBatchAsync(List<Corev1Event> batch, CancellationToken ct)
    {
        await _inflight.WaitAsync(ct).ConfigureAwait(false);
        _ = CreateDetachedAsync(batch, ct);
    }

    async Task CreateDetachedAsync(List<Corev1Event> batch, CancellationToken ct)
    {
        try { await client.CreateManyOnlyAsync(batch, ct).ConfigureAwait(false); }
        catch (Exception e) when (e is ClusterException or OperationCanceledException) { }
        finally { _inflight.Release(); }
    }

    async Task SetConditionAsync(Item it, CancellationToken ct)
    {
        var cur = await client.GetAsync<V1Pod>(it.Pod.Namespace, it.Pod.Name, ct).ConfigureAwait(false);
        if (cur is null || cur.Metadata.Uid != it.Pod.Uid || !string.IsNullOrEmpty(cur.Spec?.NodeName)) return;
        cur.Status ??= new V1PodStatus();
        bool changed = PodConditions.Set(cur.Status, "PodScheduled", "False", "Unschedulable", it.Message, it.At);
        if (it.Nominated is not null && cur.Status.NominatedNodeName != it.Nominated) { cur.Status.NominatedNodeName = it.Nominated; changed = true; }
        if (!changed) return;
        cur.Metadata.ResourceVersion = null;
        await client.UpdateStatusAsync(cur, ct).ConfigureAwait(false);
    }

    async Task WriteEventAsync(Item it, CancellationToken ct)
    {
        var key = (it.Pod.Uid, it.Reason, it.Message);
        if (_seen.TryGetValue(key, out var prev))
        {
            var ev = await client.GetAsync<Corev1Event>(it.Pod.Namespace, prev.Name, ct).ConfigureAwait(false);
            if (ev is not null)
            {
                ev.Count = prev.Count + 1;
                ev.LastTimestamp = it.At;
                ev.Metadata.ResourceVersion = null;
                await client.UpdateAsync(ev, ct).ConfigureAwait(false);
                _seen[key] = (prev.Name, prev.Count + 1);
                return;
            }
        }
        var name = await CreateEventAsync(it, ct).ConfigureAwait(false);
        if (_seen.Count > 50_000) _seen.Clear();
        if (it.Reason != "Scheduled") _seen[key] = (name, 1);
    }

    async Task<string> CreateEventAsync(Item it, CancellationToken ct)
    {
        var e = Build(it);
        await client.CreateOnlyAsync(e, ct).ConfigureAwait(false);
        return e.Metadata.Name;
    }

    Corev1Event Build(Item it) => new()
    {
        Metadata = new V1ObjectMeta { Name = $"{it.Pod.Name}.{(it.At - DateTime.UnixEpoch).Ticks * 100:x}", NamespaceProperty = it.Pod.Namespace },
        InvolvedObject = new V1ObjectReference { Kind = "Pod", ApiVersion = "v1", NamespaceProperty = it.Pod.Namespace, Name = it.Pod.Name, Uid = it.Pod.Uid, ResourceVersion = it.Pod.Pod.Metadata?.ResourceVersion },
        Reason = it.Reason, Message = it.Message, Type = it.Type,
        Source = new V1EventSource { Component = component }, ReportingComponent = component, ReportingInstance = component,
        FirstTimestamp = it.At, LastTimestamp = it.At, Count = 1,
    };
}
