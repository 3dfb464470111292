using Berth.Engine.Events;
using Berth.Images.Archive;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Berth.Oci.Image;

namespace Berth.Engine.Containers;

/// <summary>
/// The image actions that change the store or move images in and out of it — pull, push, tag,
/// untag, delete, save, load — as one engine method each, which also writes docker's image event
/// (<see cref="ImageEvents"/>). The `berth` CLI and the Docker API both call these, so a
/// `docker events` sees the same events whichever client acted. Policy (which names rmi removes,
/// conflicts with containers) stays with the caller; these methods do one step and report it.
/// Image-store errors surface as <see cref="Berth.Images.ImageException"/>, as from the store.
/// </summary>
public sealed class ImageManager(string dataRoot)
{
    public string DataRoot => dataRoot;
    public ImageStore Store { get; } = new(dataRoot);
    ISnapshotter Snapshots() => OverlaySnapshotter.Create(dataRoot);

    /// <summary>Pulls <paramref name="reference"/> (default tag "latest") and unpacks its layers as
    /// they arrive. Event: pull, actor the reference, name its repository.</summary>
    public async Task<StoredImage> PullAsync(ImageReference reference, PlatformSpec platform, RegistryOptions options, ITransferProgress progress, CancellationToken ct)
    {
        var puller = new ImagePuller(Store, options);
        puller.PostPullSteps.Add(new UnpackOnPull(Snapshots(), options.Parallelism));
        var img = await puller.PullAsync(reference, platform, progress, ct).ConfigureAwait(false);
        var r = reference.WithDefaultTag();
        ImageEvents.Emit(dataRoot, "pull", r.FamiliarString, r.FamiliarName, img.Id);
        return img;
    }

    /// <summary>Pushes <paramref name="image"/> as <paramref name="target"/> and names it
    /// repo@digest with the digest the registry took. Event: push, actor the reference, name its repository.</summary>
    public async Task<Digest> PushAsync(StoredImage image, ImageReference target, RegistryOptions options, ITransferProgress progress, CancellationToken ct)
    {
        var digest = await new ImagePusher(Store, options).PushAsync(image, target, progress, ct).ConfigureAwait(false);
        // as dockerd: the repository pushed to now names the image by the digest the registry took
        using (Store.LockShared())
            if (Store.GetRecord(image.Record.Target.Digest) is not null)
                Store.SetName(target.WithDefaultTag() with { Tag = null, Digest = digest }, image.Record.Target.Digest);
        ImageEvents.Emit(dataRoot, "push", target.FamiliarString, target.FamiliarName, image.Id);
        return digest;
    }

    /// <summary>Names <paramref name="image"/> <paramref name="target"/> (default tag "latest"; a
    /// name it had elsewhere moves). Event: tag, actor the image ID, name the new name.</summary>
    public void Tag(StoredImage image, ImageReference target)
    {
        var name = target.WithDefaultTag();
        Store.SetName(name, image.Record.Target.Digest);
        ImageEvents.Emit(dataRoot, "tag", image.Id, name.FamiliarString, image.Id);
    }

    /// <summary>Removes one name of <paramref name="image"/>; the image stays, without a name if it was
    /// the last (whether it goes is <see cref="ImageRemoval"/>'s decision; the exclusive store lock held).
    /// Event: untag.</summary>
    public void Untag(StoredImage image, ImageReference name)
    {
        if (!Store.RemoveName(name)) throw new EngineException(ErrorKind.NotFound, $"No such image: {name.FamiliarString}");
        ImageEvents.Emit(dataRoot, "untag", image.Id, image.Id, image.Id);
    }

    /// <summary>Deletes <paramref name="image"/>'s record and collects the blobs and layer snapshots
    /// nothing uses any more (the exclusive store lock held). Event: delete.</summary>
    public async Task DeleteAsync(StoredImage image, CancellationToken ct)
    {
        Store.DeleteRecord(image.Record.Target.Digest);
        Store.CollectGarbage(dangling: false);
        await ImageLayers.CollectAsync(Store, Snapshots(), ct).ConfigureAwait(false);
        ImageEvents.Emit(dataRoot, "delete", image.Id, image.Id);
    }

    /// <summary>Writes <paramref name="references"/> as an archive. Event: save, one per image.</summary>
    public async Task SaveAsync(Stream output, IReadOnlyList<string> references, ArchiveFormat format, CancellationToken ct)
    {
        var ids = references.Select(r => Store.Resolve(r).Id).Distinct().ToList();
        await new ImageArchive(Store, Snapshots()).SaveAsync(output, references, format, ct).ConfigureAwait(false);
        foreach (var id in ids) ImageEvents.Emit(dataRoot, "save", id, id, id);
    }

    /// <summary>As <see cref="SaveAsync"/>, into an OCI layout directory.</summary>
    public async Task SaveToDirectoryAsync(string directory, IReadOnlyList<string> references, CancellationToken ct)
    {
        var ids = references.Select(r => Store.Resolve(r).Id).Distinct().ToList();
        await new ImageArchive(Store, Snapshots()).SaveToDirectoryAsync(directory, references, ct).ConfigureAwait(false);
        foreach (var id in ids) ImageEvents.Emit(dataRoot, "save", id, id, id);
    }

    /// <summary>Loads a docker-archive or OCI archive. Event: load, one per image.</summary>
    public async Task<IReadOnlyList<LoadedImage>> LoadAsync(Stream input, CancellationToken ct) =>
        Loaded(await new ImageArchive(Store, Snapshots()).LoadAsync(input, ct).ConfigureAwait(false));

    /// <summary>As <see cref="LoadAsync"/>, from an OCI layout directory.</summary>
    public async Task<IReadOnlyList<LoadedImage>> LoadDirectoryAsync(string directory, CancellationToken ct) =>
        Loaded(await new ImageArchive(Store, Snapshots()).LoadDirectoryAsync(directory, ct).ConfigureAwait(false));

    IReadOnlyList<LoadedImage> Loaded(IReadOnlyList<LoadedImage> loaded)
    {
        foreach (var img in loaded) ImageEvents.Emit(dataRoot, "load", img.Id, img.Id, img.Id);
        return loaded;
    }
}
