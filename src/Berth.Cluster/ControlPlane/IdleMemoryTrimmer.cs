namespace Berth.Cluster.ControlPlane;

/// <summary>
/// Gives the memory of a burst back once the server is quiet again. After a large run (50,000 pods
/// created and bound) the GC heap keeps the space the burst's garbage used: measured, about a third of
/// the server's RSS was live objects (informer caches, the scheduler's cache) and the rest free heap
/// space the workstation GC keeps committed. Every <see cref="Interval"/> this looks at how much was
/// allocated since the last look; when that is little (the server is idle) and the committed heap has
/// grown well past what the last trim left, it runs one blocking, compacting full collection in
/// aggressive mode, which also decommits the free space. A busy server is never paused by it.
/// </summary>
public sealed class IdleMemoryTrimmer
{
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>At most this many bytes allocated during one interval counts as idle.</summary>
    public long IdleAllocationBytes { get; init; } = 32L << 20;
    /// <summary>Trim when the committed heap exceeds the last trim's result by this much.</summary>
    public long GrowthBytes { get; init; } = 64L << 20;

    long _afterLastTrim;

    /// <summary>Trims taken so far.</summary>
    public int Trims { get; private set; }

    /// <summary>The decision, on the figures of one interval.</summary>
    public bool ShouldTrim(long allocatedInInterval, long committedBytes) =>
        allocatedInInterval <= IdleAllocationBytes && committedBytes > _afterLastTrim + GrowthBytes;

    /// <summary>One collection that compacts and returns the free heap space to the system; answers the committed bytes after it.</summary>
    public long Trim()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        _afterLastTrim = GC.GetGCMemoryInfo().TotalCommittedBytes;
        Trims++;
        return _afterLastTrim;
    }

    /// <summary>Runs until <paramref name="ct"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var allocated = GC.GetTotalAllocatedBytes();
        try
        {
            while (true)
            {
                await Task.Delay(Interval, ct).ConfigureAwait(false);
                var now = GC.GetTotalAllocatedBytes();
                if (ShouldTrim(now - allocated, GC.GetGCMemoryInfo().TotalCommittedBytes)) Trim();
                allocated = GC.GetTotalAllocatedBytes();
            }
        }
        catch (OperationCanceledException) { }
    }
}
