namespace Berth.Cluster.Controllers.Runtime;

/// <summary>
/// kube-controller-manager's ControllerExpectations: after a controller asks for N creations or
/// deletions it waits until its informer has seen them (or a timeout passes) before it counts again,
/// so a slow cache never makes it create or delete twice.
/// </summary>
public sealed class Expectations(TimeSpan? ttl = null)
{
    readonly Lock _lock = new();
    readonly Dictionary<string, (int Adds, int Dels, long At)> _e = [];
    readonly long _ttlMs = (long)(ttl ?? TimeSpan.FromMinutes(5)).TotalMilliseconds;

    public void Expect(string key, int adds, int dels) { lock (_lock) _e[key] = (adds, dels, Environment.TickCount64); }
    public void CreationObserved(string key) => Lower(key, 1, 0);
    public void DeletionObserved(string key) => Lower(key, 0, 1);
    /// <summary>Lowers expectations by what could not be done (a failed create or delete).</summary>
    public void Lower(string key, int adds, int dels)
    {
        lock (_lock)
            if (_e.TryGetValue(key, out var v)) _e[key] = (v.Adds - adds, v.Dels - dels, v.At);
    }

    /// <summary>True when the controller may act on the cache: nothing pending, or the wait expired.</summary>
    public bool Satisfied(string key)
    {
        lock (_lock)
        {
            if (!_e.TryGetValue(key, out var v)) return true;
            if (v.Adds <= 0 && v.Dels <= 0) return true;
            return Environment.TickCount64 - v.At > _ttlMs;
        }
    }

    public void Delete(string key) { lock (_lock) _e.Remove(key); }
}
