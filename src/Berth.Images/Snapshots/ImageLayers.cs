using Berth.Images.Content;
using Berth.Images.Registry;
using Berth.Images.Unpack;
using Berth.Oci.Image;

namespace Berth.Images.Snapshots;

/// <summary>
/// Joins the content store and a snapshotter: an image's layers (from its manifest) paired with their
/// diffIDs (from its config), unpacked into layer snapshots after a pull, and layer snapshots that no
/// image needs any more removed after image GC.
/// </summary>
public static class ImageLayers
{
    /// <summary>The image's layer descriptors and the diffIDs its config declares, checked to pair up.</summary>
    public static async Task<(IReadOnlyList<Descriptor> Layers, IReadOnlyList<string> DiffIds)> ReadAsync(ImageStore store, ImageRecord image, CancellationToken ct)
    {
        var (layers, config) = await ReadWithConfigAsync(store, image, ct).ConfigureAwait(false);
        return (layers, config.RootFs.DiffIds);
    }

    /// <summary>As <see cref="ReadAsync"/>, with the whole image config.</summary>
    public static async Task<(IReadOnlyList<Descriptor> Layers, ImageConfigFile Config)> ReadWithConfigAsync(ImageStore store, ImageRecord image, CancellationToken ct)
    {
        var manifest = ImageJson.ParseManifest(await store.Content.ReadBlobAsync(Digest.Parse(image.Manifest.Digest), ct).ConfigureAwait(false), $"manifest {image.Manifest.Digest}");
        var config = ImageJson.ParseConfig(await store.Content.ReadBlobAsync(Digest.Parse(image.Config.Digest), ct).ConfigureAwait(false), $"image config {image.Config.Digest}");
        var diffIds = config.RootFs.DiffIds;
        if (diffIds.Count != manifest.Layers.Count)
            throw ImageException.Invalid($"image {image.Id}: the manifest has {manifest.Layers.Count} layers but the config lists {diffIds.Count} diff_ids");
        return (manifest.Layers, config);
    }

    /// <summary>The chain ID of an image's top layer (null for an image without layers): the parent of its containers' snapshots.</summary>
    public static string? TopChainId(IReadOnlyList<string> diffIds)
    {
        var chain = ChainId.Chain(diffIds);
        return chain.Count == 0 ? null : chain[^1];
    }

    /// <summary>
    /// Unpacks every layer of the image that the snapshotter does not have yet. Layers of an overlay
    /// snapshotter stand alone, so they are unpacked in parallel; a copying snapshotter needs each
    /// parent first.
    /// </summary>
    public static async Task UnpackAsync(ImageStore store, ISnapshotter snapshotter, ImageRecord image, int parallelism, CancellationToken ct)
    {
        var (layers, diffIds) = await ReadAsync(store, image, ct).ConfigureAwait(false);
        await Translate($"image {image.Id}", () => ImageUnpacker.UnpackAsync(snapshotter, diffIds, layers, OpenBlob(store), parallelism, ct)).ConfigureAwait(false);
    }

    internal static Func<Descriptor, CancellationToken, Task<Stream>> OpenBlob(ImageStore store) =>
        (d, _) => Task.FromResult<Stream>(new BufferedStream(store.Content.OpenBlob(Digest.Parse(d.Digest)), 1 << 20));

    /// <summary>Unpack failures in the image area's taxonomy: bad content is InvalidArgument, a snapshot conflict FailedPrecondition.</summary>
    internal static async Task Translate(string what, Func<Task> unpack)
    {
        try { await unpack().ConfigureAwait(false); }
        catch (LayerException e) { throw ImageException.Invalid($"{what}: {e.Message}"); }
        catch (SnapshotException e) { throw ImageException.Precondition($"{what}: {e.Message}"); }
    }

    /// <summary>
    /// Undoes what a failed pull or load stored: the image records it created (unless a name points at
    /// them now), then every blob and layer snapshot no record needs. Takes the store's exclusive
    /// lock, so the caller must have released its shared one.
    /// </summary>
    public static async Task DiscardAsync(ImageStore store, ISnapshotter? snapshotter, IReadOnlyCollection<string> createdTargets)
    {
        using var _ = store.LockExclusive();
        store.DiscardCreated(createdTargets);
        if (snapshotter is not null) await CollectAsync(store, snapshotter, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// Removes layer snapshots that no image in the store builds on, top layers first; a layer a
    /// container snapshot still uses stays. Call with the store's exclusive lock held. Returns how many went.
    /// </summary>
    public static async Task<int> CollectAsync(ImageStore store, ISnapshotter snapshotter, CancellationToken ct)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var record in store.ListRecords())
        {
            try { wanted.UnionWith(ChainId.Chain((await ReadAsync(store, record, ct).ConfigureAwait(false)).DiffIds)); }
            catch (Exception e) when (e is ImageException or FormatException or IOException)
            {
                return 0; // an image whose layers cannot be read: keep every layer rather than guess
            }
        }
        var removed = 0;
        bool progress;
        do
        {
            progress = false;
            foreach (var layer in snapshotter.Layers())
            {
                if (wanted.Contains(layer)) continue;
                try { snapshotter.RemoveLayer(layer); removed++; progress = true; }
                catch (SnapshotException e) when (e.Kind is SnapshotError.FailedPrecondition or SnapshotError.NotFound) { }
            }
        } while (progress);
        return removed;
    }
}

/// <summary>The post-pull step that unpacks a pulled image's layers (plugged into <see cref="ImagePuller"/>).</summary>
public sealed class UnpackOnPull(ISnapshotter snapshotter, int parallelism) : IPostPullStep
{
    /// <summary>Unpacks whatever the per-layer calls did not (every layer of a copying snapshotter,
    /// which needs each parent first), skipping layers already present.</summary>
    public Task RunAsync(ImageStore store, ImageRecord image, CancellationToken ct) =>
        ImageLayers.UnpackAsync(store, snapshotter, image, parallelism, ct);

    /// <summary>After a failed pull (exclusive lock held): layer snapshots no image needs go.</summary>
    public Task DiscardAsync(ImageStore store) => ImageLayers.CollectAsync(store, snapshotter, CancellationToken.None);

    /// <summary>On overlay each layer stands alone, so it is unpacked while it downloads, into its own
    /// temp directory that becomes the layer only once the stream ends (the blob verified).</summary>
    public Func<Stream, CancellationToken, Task>? LayerConsumer(ImageConfigFile config, IReadOnlyList<Descriptor> layers, int index)
    {
        if (!snapshotter.LayersIndependent || config.RootFs.DiffIds.Count != layers.Count) return null;
        return (stream, ct) => ImageLayers.Translate($"layer {layers[index].Digest}",
            () => ImageUnpacker.UnpackLayerAsync(snapshotter, config.RootFs.DiffIds, layers, index, (_, _) => Task.FromResult(stream), ct));
    }

    /// <summary>On overlay each layer stands alone, so it is unpacked as soon as its blob is stored,
    /// while the other layers are still downloading.</summary>
    public Task LayerStoredAsync(ImageStore store, ImageConfigFile config, IReadOnlyList<Descriptor> layers, int index, CancellationToken ct)
    {
        if (!snapshotter.LayersIndependent || config.RootFs.DiffIds.Count != layers.Count) return Task.CompletedTask; // a count mismatch is reported by RunAsync
        return ImageLayers.Translate($"layer {layers[index].Digest}",
            () => ImageUnpacker.UnpackLayerAsync(snapshotter, config.RootFs.DiffIds, layers, index, ImageLayers.OpenBlob(store), ct));
    }
}
