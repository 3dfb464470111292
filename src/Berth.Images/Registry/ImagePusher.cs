using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Oci.Image;

namespace Berth.Images.Registry;

/// <summary>
/// `push`: uploads an image's blobs (HEAD first; a cross-repository mount when the image also has a
/// name in another repository of the same registry; else an upload) and then its manifest(s) with
/// the exact stored bytes, so the registry's digests equal the store's. An index is pushed whole when
/// every platform's manifest and blobs are in the store; otherwise the platform manifest that was
/// pulled is pushed on its own (as podman does).
/// </summary>
public sealed class ImagePusher(ImageStore store, RegistryOptions options)
{
    public async Task<Digest> PushAsync(StoredImage image, ImageReference destination, ITransferProgress progress, CancellationToken ct)
    {
        using var _ = store.LockShared();
        using var client = new RegistryClient(destination.Domain, options);
        var repo = destination.Path;
        var mountFrom = image.Names.Where(n => n.Domain == destination.Domain && n.Path != repo).Select(n => n.Path).Distinct().ToList();
        progress.Status($"The push refers to repository [{destination.Name}]");

        var top = image.Record.Target;
        var manifests = new List<Descriptor>();
        if (MediaTypes.IsIndex(top.MediaType) && await IndexCompleteAsync(top, ct).ConfigureAwait(false) is { } children)
            manifests.AddRange(children);
        else
            top = image.Record.Manifest;
        if (!MediaTypes.IsIndex(top.MediaType)) manifests.Clear();

        foreach (var md in manifests.Append(MediaTypes.IsIndex(top.MediaType) ? null : top).OfType<Descriptor>())
        {
            var m = ImageJson.ParseManifest(await store.Content.ReadBlobAsync(Digest.Parse(md.Digest), ct).ConfigureAwait(false), $"manifest {md.Digest}");
            await Parallel.ForEachAsync(m.Layers.Append(m.Config), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Parallelism), CancellationToken = ct },
                async (blob, token) =>
                {
                    progress.BlobStarted(blob, ReferenceEquals(blob, m.Config) ? "config" : "layer");
                    var outcome = await client.PushBlobAsync(repo, blob, store.Content, mountFrom, n => progress.BlobProgress(blob, n), token).ConfigureAwait(false);
                    progress.BlobDone(blob, outcome switch
                    {
                        RegistryClient.PushOutcome.Exists => "Layer already exists",
                        RegistryClient.PushOutcome.Mounted => $"Mounted from {mountFrom.FirstOrDefault()}",
                        _ => "Pushed",
                    });
                }).ConfigureAwait(false);
            if (MediaTypes.IsIndex(top.MediaType))
                await client.PutManifestAsync(repo, md.Digest, await store.Content.ReadBlobAsync(Digest.Parse(md.Digest), ct).ConfigureAwait(false), md.MediaType, ct).ConfigureAwait(false);
        }
        var bytes = await store.Content.ReadBlobAsync(Digest.Parse(top.Digest), ct).ConfigureAwait(false);
        await client.PutManifestAsync(repo, destination.RegistryReference, bytes, top.MediaType, ct).ConfigureAwait(false);
        var digest = Digest.Parse(top.Digest);
        progress.Status($"{destination.Tag ?? "latest"}: digest: {digest} size: {bytes.Length}");
        return digest;
    }

    /// <summary>The index's manifests when all of them and all their blobs are in the store, else null.</summary>
    async Task<List<Descriptor>?> IndexCompleteAsync(Descriptor indexDesc, CancellationToken ct)
    {
        var index = ImageJson.ParseIndex(await store.Content.ReadBlobAsync(Digest.Parse(indexDesc.Digest), ct).ConfigureAwait(false), $"index {indexDesc.Digest}");
        foreach (var md in index.Manifests)
        {
            if (!MediaTypes.IsManifest(md.MediaType) || !Digest.TryParse(md.Digest, out var d) || !store.Content.Exists(d)) return null;
            var m = ImageJson.ParseManifest(await store.Content.ReadBlobAsync(d, ct).ConfigureAwait(false), $"manifest {md.Digest}");
            if (m.Layers.Append(m.Config).Any(b => !Digest.TryParse(b.Digest, out var bd) || !store.Content.Exists(bd))) return null;
        }
        return index.Manifests;
    }
}
