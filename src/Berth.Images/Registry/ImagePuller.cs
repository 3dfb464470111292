using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using Berth.Images.Content;
using Berth.Images.Unpack;
using Berth.Images.Reference;
using Berth.Oci.Image;

namespace Berth.Images.Registry;

/// <summary>
/// A step run after a pull has stored every blob and the image record, before the name is set: the
/// seam where layer unpacking (Berth.Images.Unpack / Snapshots) is plugged in by the composition
/// root. If a step fails the pull fails and leaves nothing behind: the record it created, the blobs
/// and (through <see cref="DiscardAsync"/>) the layer snapshots no image needs are removed at once.
/// </summary>
public interface IPostPullStep
{
    Task RunAsync(ImageStore store, ImageRecord image, CancellationToken ct);

    /// <summary>Called as soon as layer <paramref name="index"/> is in the content store (downloaded
    /// or already there), while other layers may still be downloading: lets a step start its work
    /// on a layer early (unpacking overlaps the download of the rest).</summary>
    Task LayerStoredAsync(ImageStore store, ImageConfigFile config, IReadOnlyList<Descriptor> layers, int index, CancellationToken ct) => Task.CompletedTask;

    /// <summary>Asked before layer <paramref name="index"/> is downloaded: a step that returns a
    /// consumer is given the layer's bytes as they arrive (unpacking runs during the download),
    /// instead of <see cref="LayerStoredAsync"/>. The stream's end means the blob was verified and
    /// stored; a bad blob makes the stream throw instead, so the consumer commits nothing of it.
    /// Null: the step has no use for the bytes (then LayerStoredAsync follows the download).</summary>
    Func<Stream, CancellationToken, Task>? LayerConsumer(ImageConfigFile config, IReadOnlyList<Descriptor> layers, int index) => null;

    /// <summary>Called after a failed pull with the store's exclusive lock held, once the pull's
    /// record and unreferenced blobs are gone: removes what the step made that no image needs.</summary>
    Task DiscardAsync(ImageStore store) => Task.CompletedTask;
}

/// <summary>
/// `pull`: resolves a reference at its registry, picks the platform's manifest from an index, fetches
/// config and layers in parallel into the content store (verified while streaming), then records the
/// image and points the name at it. Holds the store's shared lock throughout, so GC cannot remove a
/// blob between its download and the record that references it. A pull is atomic to its user: when it
/// fails once anything may have been stored, the store's exclusive lock is taken and the record it
/// created (not a name's) and every blob and layer snapshot no image needs are removed.
/// </summary>
public sealed class ImagePuller(ImageStore store, RegistryOptions options)
{
    public List<IPostPullStep> PostPullSteps { get; } = [];

    public async Task<StoredImage> PullAsync(ImageReference reference, PlatformSpec platform, ITransferProgress progress, CancellationToken ct)
    {
        var created = new List<string>();
        var stored = false;
        var shared = store.LockShared();
        try
        {
            return await PullLockedAsync(reference, platform, progress, created, () => stored = true, ct).ConfigureAwait(false);
        }
        catch when (stored)
        {
            shared.Dispose();
            using (store.LockExclusive())
            {
                store.DiscardCreated(created);
                foreach (var step in PostPullSteps) await step.DiscardAsync(store).ConfigureAwait(false);
            }
            throw;
        }
        finally { shared.Dispose(); }
    }

    async Task<StoredImage> PullLockedAsync(ImageReference reference, PlatformSpec platform, ITransferProgress progress,
        List<string> created, Action storing, CancellationToken ct)
    {
        using var client = new RegistryClient(reference.Domain, options);
        var repo = reference.Path;
        var named = reference.WithDefaultTag();
        progress.Status($"{reference.RegistryReference}: Pulling from {reference.FamiliarName}");

        var top = await client.GetManifestAsync(repo, reference.RegistryReference, ct).ConfigureAwait(false);
        var blobs = new List<string> { top.Digest.ToString() };
        FetchedManifest manifest = top;
        if (MediaTypes.IsIndex(top.MediaType))
        {
            var index = ImageJson.ParseIndex(top.Bytes, $"index {reference}");
            var chosen = platform.Select(index, reference.FamiliarString);
            manifest = await client.GetManifestAsync(repo, chosen.Digest, ct).ConfigureAwait(false);
            if (!MediaTypes.IsManifest(manifest.MediaType))
                throw ImageException.Invalid($"manifest {chosen.Digest} of {reference}: unsupported media type \"{manifest.MediaType}\" (nested index)");
            if (manifest.Bytes.Length != chosen.Size)
                throw ImageException.DataLoss($"manifest {chosen.Digest} of {reference}: {manifest.Bytes.Length} bytes, the index says {chosen.Size}");
            blobs.Add(manifest.Digest.ToString());
        }
        var m = ImageJson.ParseManifest(manifest.Bytes, $"manifest {manifest.Digest}");
        Validate(m, manifest.Digest);

        // Blobs first (config, layers), manifests after: a record only ever names stored blobs.
        storing();
        var config = await FetchConfigAsync(client, repo, m.Config, progress, ct).ConfigureAwait(false);
        await Parallel.ForEachAsync(Enumerable.Range(0, m.Layers.Count), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Parallelism), CancellationToken = ct },
            async (i, token) =>
            {
                var layer = m.Layers[i];
                var d = Digest.Parse(layer.Digest);
                IPostPullStep? streamed = null;
                if (store.Content.Exists(d)) progress.BlobDone(layer, "Already exists");
                else
                {
                    progress.BlobStarted(layer, "layer");
                    Func<Stream, CancellationToken, Task>? consumer = null;
                    foreach (var step in PostPullSteps)
                        if ((consumer = step.LayerConsumer(config, m.Layers, i)) is not null) { streamed = step; break; }
                    if (consumer is null)
                        await client.FetchBlobAsync(repo, layer, store.Content, n => progress.BlobProgress(layer, n), token).ConfigureAwait(false);
                    else
                        await FetchStreamingAsync(client, repo, layer, consumer, progress, token).ConfigureAwait(false);
                    progress.BlobDone(layer, "Download complete");
                }
                foreach (var step in PostPullSteps)
                    if (step != streamed) await step.LayerStoredAsync(store, config, m.Layers, i, token).ConfigureAwait(false);
            }).ConfigureAwait(false);
        await store.Content.WriteBlobAsync(manifest.Bytes, ct).ConfigureAwait(false);
        if (!ReferenceEquals(manifest, top)) await store.Content.WriteBlobAsync(top.Bytes, ct).ConfigureAwait(false);

        var record = ImageRecord.For(top.Descriptor, manifest.Descriptor, m, config, blobs);
        if (store.GetRecord(record.Target.Digest) is null) created.Add(record.Target.Digest);
        store.PutRecord(record);
        foreach (var step in PostPullSteps) await step.RunAsync(store, record, ct).ConfigureAwait(false);
        store.SetName(named, record.Target.Digest);
        // as dockerd: a pull by tag also records the digest the registry served for the repository
        List<ImageReference> names = [named];
        if (named.Digest is null)
        {
            var confirmed = named with { Tag = null, Digest = top.Digest };
            store.SetName(confirmed, record.Target.Digest);
            names.Add(confirmed);
        }
        progress.Status($"Digest: {top.Digest}");
        return new StoredImage(record, names);
    }

    /// <summary>Bytes of a layer held between the download and its consumer before the download waits.</summary>
    const long StreamWindow = 32 << 20;

    /// <summary>
    /// Downloads a layer into the content store and hands its bytes to <paramref name="consumer"/>
    /// in the same pass, through a pipe: the download writes each chunk to the blob file and the
    /// pipe, the consumer (on its own threads) reads them. The first real failure of either side is
    /// thrown: a consumer that fails stops the download; a download that fails (a digest mismatch
    /// found at the end, a registry gone) reaches the consumer as its stream's exception.
    /// </summary>
    async Task FetchStreamingAsync(RegistryClient client, string repo, Descriptor layer, Func<Stream, CancellationToken, Task> consumer, ITransferProgress progress, CancellationToken ct)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: StreamWindow, resumeWriterThreshold: StreamWindow / 2,
            minimumSegmentSize: 1 << 17, useSynchronizationContext: false,
            // The reader is a blocked unpack thread (PipeReadStream): the writer's flush wakes it directly.
            readerScheduler: PipeScheduler.Inline));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var firstFailure = 0; // 1: the consumer failed first, 2: the download did
        var consume = Side(1, async () =>
        {
            await Task.Yield();
            await using var s = new PipeReadStream(pipe.Reader);
            await consumer(s, linked.Token).ConfigureAwait(false);
        });
        var fetch = Side(2, () => client.FetchBlobAsync(repo, layer, store.Content, n => progress.BlobProgress(layer, n), linked.Token, pipe.Writer));
        try { await Task.WhenAll(fetch, consume).ConfigureAwait(false); }
        catch when (!ct.IsCancellationRequested && (firstFailure == 1 ? consume : fetch) is { IsFaulted: true } first)
        {
            // The side that failed first, not the other's cancellation or echo of it.
            ExceptionDispatchInfo.Throw(first.Exception!.InnerException!);
        }

        // Either side's failure stops the other.
        async Task Side(int id, Func<Task> run)
        {
            try { await run().ConfigureAwait(false); }
            catch
            {
                Interlocked.CompareExchange(ref firstFailure, id, 0);
                await linked.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>Refuses manifests Berth could not run: unknown config or layer media types, bad digests.</summary>
    internal static void Validate(Manifest m, Digest manifestDigest)
    {
        var what = $"manifest {manifestDigest}";
        if (m.SchemaVersion != 2) throw ImageException.Invalid($"{what}: unsupported schemaVersion {m.SchemaVersion}");
        if (!MediaTypes.IsConfig(m.Config.MediaType))
            throw ImageException.Invalid($"{what}: unsupported config media type \"{m.Config.MediaType}\" (not a container image)");
        foreach (var d in m.Layers.Prepend(m.Config))
        {
            if (!Digest.TryParse(d.Digest, out _)) throw ImageException.Invalid($"{what}: invalid digest \"{d.Digest}\"");
            if (d.Size < 0) throw ImageException.Invalid($"{what}: negative size for {d.Digest}");
        }
        foreach (var l in m.Layers)
        {
            if (LayerMediaTypes.CompressionOf(l.MediaType) is null)
                throw ImageException.Invalid($"{what}: unsupported layer media type \"{l.MediaType}\" ({l.Digest})");
            if (l.Urls is { Count: > 0 } && l.MediaType is MediaTypes.DockerForeignLayerGzip or MediaTypes.OciLayerNondistributableGzip)
                throw ImageException.Invalid($"{what}: foreign layer {l.Digest} must be fetched from {l.Urls[0]}: not supported");
        }
    }

    async Task<ImageConfigFile> FetchConfigAsync(RegistryClient client, string repo, Descriptor desc, ITransferProgress progress, CancellationToken ct)
    {
        if (desc.Size > 8 << 20) throw ImageException.Invalid($"image config {desc.Digest}: {desc.Size} bytes is larger than 8 MiB");
        var d = Digest.Parse(desc.Digest);
        if (!store.Content.Exists(d))
        {
            progress.BlobStarted(desc, "config");
            await client.FetchBlobAsync(repo, desc, store.Content, null, ct).ConfigureAwait(false);
            progress.BlobDone(desc, "Download complete");
        }
        return ImageJson.ParseConfig(await store.Content.ReadBlobAsync(d, ct).ConfigureAwait(false), $"image config {desc.Digest}");
    }
}
