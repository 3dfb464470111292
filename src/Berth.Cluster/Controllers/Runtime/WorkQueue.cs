namespace Berth.Cluster.Controllers.Runtime;

/// <summary>
/// A de-duplicating, rate-limited queue of keys (client-go's workqueue): an item added while queued is
/// not queued twice; an item added while being processed is queued again once <see cref="Done"/> is
/// called, so one key is never worked on by two workers at once. <see cref="AddRateLimited"/> delays by
/// per-item exponential backoff (baseDelay·2^n, capped) and an overall token bucket.
/// </summary>
public sealed class WorkQueue<T> : IDisposable where T : notnull
{
    readonly Lock _lock = new();
    readonly Queue<T> _queue = new();
    readonly HashSet<T> _dirty = [];
    readonly HashSet<T> _processing = [];
    readonly Dictionary<T, int> _failures = [];
    readonly SemaphoreSlim _signal = new(0);
    readonly TimeSpan _baseDelay, _maxDelay;
    readonly double _qps; readonly int _burst;
    double _tokens; long _lastRefill;
    bool _shutdown;
    readonly CancellationTokenSource _stop = new();

    public WorkQueue(TimeSpan? baseDelay = null, TimeSpan? maxDelay = null, double qps = 10, int burst = 100)
    {
        _baseDelay = baseDelay ?? TimeSpan.FromMilliseconds(5);
        _maxDelay = maxDelay ?? TimeSpan.FromSeconds(1000);
        _qps = qps; _burst = burst; _tokens = burst;
        _lastRefill = Environment.TickCount64;
    }

    public int Length { get { lock (_lock) return _queue.Count; } }
    public bool ShuttingDown { get { lock (_lock) return _shutdown; } }

    public void Add(T item)
    {
        lock (_lock)
        {
            if (_shutdown || !_dirty.Add(item)) return;
            if (_processing.Contains(item)) return;
            _queue.Enqueue(item);
        }
        _signal.Release();
    }

    public void AddAfter(T item, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero) { Add(item); return; }
        _ = Task.Delay(delay, _stop.Token).ContinueWith(_ => Add(item), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }

    /// <summary>Re-adds after the item's backoff; call <see cref="Forget"/> once it succeeds.</summary>
    public void AddRateLimited(T item) => AddAfter(item, When(item));

    public TimeSpan When(T item)
    {
        lock (_lock)
        {
            _failures.TryGetValue(item, out var n);
            _failures[item] = n + 1;
            var exp = _baseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(n, 40));
            var itemDelay = TimeSpan.FromMilliseconds(Math.Min(exp, _maxDelay.TotalMilliseconds));
            // Token bucket shared by all items.
            var now = Environment.TickCount64;
            _tokens = Math.Min(_burst, _tokens + (now - _lastRefill) / 1000.0 * _qps);
            _lastRefill = now;
            _tokens -= 1;
            var bucketDelay = _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / _qps);
            return itemDelay > bucketDelay ? itemDelay : bucketDelay;
        }
    }

    public void Forget(T item) { lock (_lock) _failures.Remove(item); }
    public int NumRequeues(T item) { lock (_lock) return _failures.GetValueOrDefault(item); }

    /// <summary>The next key, or (default, false) once shut down. The caller must call <see cref="Done"/>.</summary>
    public async ValueTask<(T Item, bool Ok)> GetAsync(CancellationToken ct)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_queue.Count > 0)
                {
                    var item = _queue.Dequeue();
                    _dirty.Remove(item);
                    _processing.Add(item);
                    return (item, true);
                }
                if (_shutdown) return (default!, false);
            }
            try { await _signal.WaitAsync(ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return (default!, false); }
        }
    }

    public void Done(T item)
    {
        bool requeue;
        lock (_lock)
        {
            _processing.Remove(item);
            requeue = _dirty.Contains(item);
            if (requeue) _queue.Enqueue(item);
        }
        if (requeue) _signal.Release();
    }

    public void ShutDown()
    {
        lock (_lock) _shutdown = true;
        _stop.Cancel();
        _signal.Release(1000);
    }

    public void Dispose() { ShutDown(); _stop.Dispose(); _signal.Dispose(); }
}
