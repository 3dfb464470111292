namespace Berth.Cluster.Scheduling;

/// <summary>A pending pod in the queue, with its attempt history.</summary>
public sealed class QueuedPod(PodInfo info, long now)
{
    public PodInfo Info { get; internal set; } = info;
    public int Attempts { get; internal set; }
    public long Timestamp { get; internal set; } = now;
    public long InitialAttempt { get; } = now;
    internal long BackoffExpiry;
    internal long Version;            // bumps when the pod moves: stale heap entries are skipped
    internal QueueState State;
    internal long SchedulingCycle;     // cycle in which it was last popped
    internal bool ActiveQueued;
}

internal enum QueueState { Active, Backoff, Unschedulable, InFlight }

/// <summary>
/// kube-scheduler's three queues: activeQ (by priority, then arrival), backoffQ (by backoff expiry:
/// 1 s doubling to 10 s per failed attempt) and the unschedulable set. Cluster events that may make
/// pods schedulable (node added or changed, a bound pod deleted or changed) move unschedulable pods
/// back; pods left unschedulable for 5 minutes are retried anyway. Times are in milliseconds.
/// </summary>
public sealed class SchedulingQueue(TimeSpan? initialBackoff = null, TimeSpan? maxBackoff = null, TimeSpan? maxUnschedulable = null)
{
    readonly Dictionary<string, QueuedPod> _all = [];
    readonly PriorityQueue<(QueuedPod Pod, long Version), (int NegPriority, long Ts)> _active = new();
    readonly PriorityQueue<(QueuedPod Pod, long Version), long> _backoff = new();
    readonly Dictionary<string, QueuedPod> _unschedulable = [];
    readonly long _initialBackoff = (long)(initialBackoff ?? TimeSpan.FromSeconds(1)).TotalMilliseconds;
    readonly long _maxBackoff = (long)(maxBackoff ?? TimeSpan.FromSeconds(10)).TotalMilliseconds;
    readonly long _maxUnschedulable = (long)(maxUnschedulable ?? TimeSpan.FromMinutes(5)).TotalMilliseconds;
    long _cycle;
    long _moveRequestCycle = -1;
    int _activeCount;

    public int ActiveCount => _activeCount;
    public int BackoffCount => _backoff.Count;
    public int UnschedulableCount => _unschedulable.Count;
    public int Count => _all.Count;
    public long SchedulingCycle => _cycle;

    public bool Contains(string uid) => _all.ContainsKey(uid);

    public void Add(PodInfo pod, long now)
    {
        if (_all.TryGetValue(pod.Uid, out var q)) { Update(pod, now); return; }
        q = new QueuedPod(pod, now);
        _all[pod.Uid] = q;
        PushActive(q);
    }

    /// <summary>A pending pod changed: it gets another chance at once (or after its backoff).</summary>
    public void Update(PodInfo pod, long now)
    {
        if (!_all.TryGetValue(pod.Uid, out var q)) { Add(pod, now); return; }
        q.Info = pod;
        if (q.State == QueueState.Unschedulable)
        {
            _unschedulable.Remove(pod.Uid);
            MoveOut(q, now);
        }
        else if (q.State == QueueState.Active) PushActive(q);
    }

    public void Delete(string uid)
    {
        if (!_all.Remove(uid, out var q)) return;
        if (q.State == QueueState.Active) _activeCount--;
        q.Version++;
        _unschedulable.Remove(uid);
    }

    void PushActive(QueuedPod q)
    {
        if (q.State != QueueState.Active || !q.ActiveQueued) _activeCount++;
        q.State = QueueState.Active;
        q.Version++;
        _active.Enqueue((q, q.Version), (-q.Info.Priority, q.Timestamp));
        q.ActiveQueued = true;
    }

    void MoveOut(QueuedPod q, long now)
    {
        if (q.BackoffExpiry > now)
        {
            q.State = QueueState.Backoff;
            q.Version++;
            q.ActiveQueued = false;
            _backoff.Enqueue((q, q.Version), q.BackoffExpiry);
        }
        else { q.ActiveQueued = false; PushActive(q); }
    }

    /// <summary>Moves pods whose backoff expired to activeQ and retries long-unschedulable pods; returns the next expiry (ms) or long.MaxValue.</summary>
    public long Flush(long now)
    {
        while (_backoff.TryPeek(out var e, out var at) && at <= now)
        {
            _backoff.Dequeue();
            if (e.Version != e.Pod.Version || e.Pod.State != QueueState.Backoff) continue;
            e.Pod.ActiveQueued = false;
            PushActive(e.Pod);
        }
        if (_unschedulable.Count > 0)
        {
            List<QueuedPod>? old = null;
            foreach (var q in _unschedulable.Values) if (now - q.Timestamp > _maxUnschedulable) (old ??= []).Add(q);
            if (old is not null) foreach (var q in old) { _unschedulable.Remove(q.Info.Uid); MoveOut(q, now); }
        }
        return _backoff.TryPeek(out _, out var next) ? next : long.MaxValue;
    }

    /// <summary>The next pod to schedule, or null when activeQ is empty.</summary>
    public QueuedPod? Pop()
    {
        while (_active.TryDequeue(out var e, out _))
        {
            var q = e.Pod;
            if (e.Version != q.Version || q.State != QueueState.Active) continue;
            _activeCount--;
            q.ActiveQueued = false;
            q.State = QueueState.InFlight;
            q.Attempts++;
            q.SchedulingCycle = ++_cycle;
            return q;
        }
        return null;
    }

    /// <summary>The attempt failed: back off, or park as unschedulable unless a move request came in meanwhile.</summary>
    public void AddUnschedulable(QueuedPod q, long now)
    {
        if (!_all.ContainsKey(q.Info.Uid)) return; // deleted meanwhile
        q.Timestamp = now;
        var backoff = _initialBackoff;
        for (int i = 1; i < q.Attempts && backoff < _maxBackoff; i++) backoff *= 2;
        q.BackoffExpiry = now + Math.Min(backoff, _maxBackoff);
        if (_moveRequestCycle >= q.SchedulingCycle) { MoveOut(q, now); return; }
        q.State = QueueState.Unschedulable;
        q.Version++;
        _unschedulable[q.Info.Uid] = q;
    }

    /// <summary>An error that is not the pod's fault (bind failed): retry after backoff.</summary>
    public void Requeue(QueuedPod q, long now)
    {
        if (!_all.ContainsKey(q.Info.Uid)) return;
        q.BackoffExpiry = now + _initialBackoff;
        MoveOut(q, now);
    }

    /// <summary>Binding succeeded: the pod leaves the queue.</summary>
    public void Done(string uid) => _all.Remove(uid);

    /// <summary>A cluster event that may make unschedulable pods fit.</summary>
    public void MoveAllToActiveOrBackoff(long now)
    {
        _moveRequestCycle = _cycle;
        if (_unschedulable.Count == 0) return;
        foreach (var q in _unschedulable.Values) MoveOut(q, now);
        _unschedulable.Clear();
    }
}
