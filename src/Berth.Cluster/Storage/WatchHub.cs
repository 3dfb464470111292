using System.Threading.Channels;

namespace Berth.Cluster.Storage;

/// <summary>
/// Fans committed events out to the store's watches. Each watch has a bounded queue: a reader that
/// falls <see cref="Capacity"/> events behind is ended with <see cref="StoreWatchLaggedException"/>
/// (its client re-lists, as Kubernetes clients do), so one slow watcher cannot grow memory unbounded.
/// Publish is called by the single writer, in revision order; every write is published to every
/// matching watch, so a watch's progress is the store's current revision once that is set after publishing.
/// </summary>
internal sealed class WatchHub(Func<long> progress)
{
    public const int Capacity = 4096;
    readonly Func<long> progress = progress;
    readonly Lock gate = new();
    readonly List<Watcher> watchers = [];

    public int Count { get { lock (gate) return watchers.Count; } }

    /// <summary>Registers a watch pre-filled with <paramref name="history"/> (must be called under the writer's lock).</summary>
    public IStoreWatch Add(string prefix, IReadOnlyList<StoreEvent> history)
    {
        var w = new Watcher(this, prefix, Capacity + history.Count);
        foreach (var e in history) w.Channel.Writer.TryWrite(e);
        lock (gate) watchers.Add(w);
        return w;
    }

    public void Publish(StoreEvent e)
    {
        lock (gate)
        {
            for (var i = watchers.Count - 1; i >= 0; i--)
            {
                var w = watchers[i];
                if (!e.Entry.Key.StartsWith(w.Prefix, StringComparison.Ordinal)) continue;
                if (!w.Channel.Writer.TryWrite(e))
                {
                    w.Channel.Writer.TryComplete(new StoreWatchLaggedException(w.Prefix));
                    watchers.RemoveAt(i);
                }
            }
        }
    }

    public void CloseAll()
    {
        lock (gate)
        {
            foreach (var w in watchers) w.Channel.Writer.TryComplete();
            watchers.Clear();
        }
    }

    void Remove(Watcher w)
    {
        lock (gate) watchers.Remove(w);
        w.Channel.Writer.TryComplete();
    }

    sealed class Watcher(WatchHub hub, string prefix, int capacity) : IStoreWatch
    {
        public string Prefix { get; } = prefix;
        public Channel<StoreEvent> Channel { get; } = System.Threading.Channels.Channel.CreateBounded<StoreEvent>(
            new BoundedChannelOptions(capacity) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        public ChannelReader<StoreEvent> Events => Channel.Reader;
        public long Progress => hub.progress();
        public void Dispose() => hub.Remove(this);
    }
}
