using Berth.Images.Unpack;
using Berth.Oci.Image;

namespace Berth.Images.Snapshots;

/// <summary>
/// Unpacks an image's layers into a snapshotter: layers already present are skipped (their blobs
/// are never opened); with overlay every missing layer unpacks at once (bounded), each as soon as
/// its stream delivers, so a pull can hand over download streams directly; with the copy driver
/// they go in order. Each layer is verified against the config's rootfs.diff_ids.
/// </summary>
public static class ImageUnpacker
{
    /// <returns>The chain IDs of the image's layers, bottom to top (the last is the image's rootfs).</returns>
    public static Task<IReadOnlyList<string>> UnpackAsync(
        ISnapshotter snapshotter, ImageConfigFile config, IReadOnlyList<Descriptor> layers,
        Func<Descriptor, CancellationToken, Task<Stream>> openLayer, int maxParallel, CancellationToken cancellationToken)
    {
        if (config.RootFs.Type != "layers") throw new LayerException($"image config rootfs type \"{config.RootFs.Type}\" is not \"layers\"");
        return UnpackAsync(snapshotter, config.RootFs.DiffIds, layers, openLayer, maxParallel, cancellationToken);
    }

    /// <summary>As above, with the diffIDs (the config's rootfs.diff_ids) given directly.</summary>
    public static async Task<IReadOnlyList<string>> UnpackAsync(
        ISnapshotter snapshotter, IReadOnlyList<string> diffIds, IReadOnlyList<Descriptor> layers,
        Func<Descriptor, CancellationToken, Task<Stream>> openLayer, int maxParallel, CancellationToken cancellationToken)
    {
        if (diffIds.Count != layers.Count)
            throw new LayerException($"the manifest lists {layers.Count} layers but the image config lists {diffIds.Count} diff_ids");
        var compressions = layers.Select(l => LayerMediaTypes.CompressionOf(l.MediaType)
            ?? throw new LayerException($"layer {l.Digest} has unknown media type \"{l.MediaType}\"")).ToList();
        foreach (var d in diffIds)
            if (!Digest.TryParse(d, out var dd) || dd.Algorithm != "sha256") throw new LayerException($"image config has invalid diff_id \"{d}\"");
        var chain = ChainId.Chain(diffIds);

        Task One(int i, CancellationToken ct) => ApplyAsync(snapshotter, chain, diffIds[i], layers[i], compressions[i], i, openLayer, ct);

        if (!snapshotter.LayersIndependent)
        {
            for (var i = 0; i < layers.Count; i++) await One(i, cancellationToken).ConfigureAwait(false);
            return chain;
        }
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var gate = new SemaphoreSlim(Math.Max(1, maxParallel));
        var tasks = Enumerable.Range(0, layers.Count).Select(async i =>
        {
            await gate.WaitAsync(failed.Token).ConfigureAwait(false);
            try { await One(i, failed.Token).ConfigureAwait(false); }
            catch { failed.Cancel(); throw; }
            finally { gate.Release(); }
        }).ToList();
        try { await Task.WhenAll(tasks).ConfigureAwait(false); }
        catch
        {
            // Report the first real failure, not the cancellations it caused in the other layers.
            var first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault();
            if (first != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            throw;
        }
        return chain;
    }

    /// <summary>Unpacks layer <paramref name="index"/> alone (its parent need not be present on an
    /// independent-layer snapshotter): what a pull does as soon as that layer's blob is stored.</summary>
    public static Task UnpackLayerAsync(ISnapshotter snapshotter, IReadOnlyList<string> diffIds, IReadOnlyList<Descriptor> layers, int index,
        Func<Descriptor, CancellationToken, Task<Stream>> openLayer, CancellationToken cancellationToken)
    {
        if (diffIds.Count != layers.Count)
            throw new LayerException($"the manifest lists {layers.Count} layers but the image config lists {diffIds.Count} diff_ids");
        var compression = LayerMediaTypes.CompressionOf(layers[index].MediaType)
            ?? throw new LayerException($"layer {layers[index].Digest} has unknown media type \"{layers[index].MediaType}\"");
        return ApplyAsync(snapshotter, ChainId.Chain(diffIds.Take(index + 1)), diffIds[index], layers[index], compression, index, openLayer, cancellationToken);
    }

    static async Task ApplyAsync(ISnapshotter snapshotter, IReadOnlyList<string> chain, string diffId, Descriptor layer, LayerCompression compression, int i,
        Func<Descriptor, CancellationToken, Task<Stream>> openLayer, CancellationToken ct)
    {
        if (snapshotter.HasLayer(chain[i])) return;
        await using var blob = await openLayer(layer, ct).ConfigureAwait(false);
        await snapshotter.ApplyLayerAsync(i == 0 ? null : chain[i - 1], diffId, blob, compression, ct).ConfigureAwait(false);
    }
}
