using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Snapshots;

namespace Berth.Engine.Containers;

/// <summary>One line of an image removal, as dockerd reports it ("Untagged: NAME" or "Deleted: ID").</summary>
public sealed record ImageDeleteStep(string? Untagged, string? Deleted);

/// <summary>
/// `rmi` (CLI and Docker API alike) with dockerd's rules: a name is untagged, and the image goes with its
/// last name; by ID, an image with several names is refused without -f ("referenced in multiple
/// repositories"). Conflicts are hard (children: images committed from a container of it; a running
/// container) or soft (other names; a stopped container), and -f overrides only the soft ones. Untagging the
/// last name of an image that still has children or a running container leaves the image, quietly.
/// Deleting an image also deletes its parent when that parent is left without a name or a child (dockerd's
/// prune of parents). Events: untag, delete.
/// </summary>
public static class ImageRemoval
{
    /// <summary>Removes <paramref name="input"/> (a name or an ID prefix); the exclusive store lock
    /// must be held. Throws EngineException (FailedPrecondition) with dockerd's conflict message.</summary>
    public static async Task<List<ImageDeleteStep>> RemoveAsync(string dataRoot, IReadOnlyList<ContainerRecord> containers, string input, bool force, CancellationToken ct)
    {
        var images = new ImageManager(dataRoot);
        var store = images.Store;
        var img = store.Resolve(input);
        var steps = new List<ImageDeleteStep>();
        var quiet = false;
        if (!IsIdPrefix(img.Id, input) && ImageReference.TryParse(input, out var parsed, out _) && img.Names.Contains(parsed.WithDefaultTag()))
        {
            var named = parsed.WithDefaultTag();
            if (!force && IsSingleReference(img.Names) && containers.FirstOrDefault(c => c.Image == img.Id) is { } user)
                throw new EngineException(ErrorKind.FailedPrecondition,
                    $"conflict: unable to remove repository reference \"{input}\" (must force) - container {user.ShortId} is using its referenced image {Short(img.Id)}");
            var untag = new List<ImageReference> { named };
            // a repository's digest names go with its last tag
            var rest = img.Names.Where(n => n != named && n.Name == named.Name).ToList();
            if (named.Digest is null && rest.All(n => n.Digest is not null && n.Tag is null)) untag.AddRange(rest);
            foreach (var n in untag)
            {
                images.Untag(img, n);
                steps.Add(new ImageDeleteStep(n.FamiliarString, null));
            }
            img = Reload(store, img);
            if (img.Names.Count > 0) return steps;
            quiet = true;
        }
        else if (IsSingleReference(img.Names))
        {
            var conflict = Conflict(dataRoot, store, containers, img, hard: true, activeReference: false, stopped: !force);
            if (conflict is not null) throw conflict.Value.Error;
            foreach (var n in img.Names.OrderBy(n => n.FamiliarString, StringComparer.Ordinal))
            {
                images.Untag(img, n);
                steps.Add(new ImageDeleteStep(n.FamiliarString, null));
            }
            img = Reload(store, img);
        }
        await DeleteAsync(dataRoot, images, containers, img, force, quiet, steps, ct).ConfigureAwait(false);
        return steps;
    }

    /// <summary>dockerd's imageDeleteHelper: the image's conflicts (soft ones only without
    /// <paramref name="force"/>), its names, the image with the layers only it used, then its parent
    /// if that is left unused. <paramref name="quiet"/>: a conflict ends the removal silently unless the
    /// image is dangling and unused.</summary>
    static async Task DeleteAsync(string dataRoot, ImageManager images, IReadOnlyList<ContainerRecord> containers, StoredImage img, bool force, bool quiet, List<ImageDeleteStep> steps, CancellationToken ct)
    {
        var store = images.Store;
        if (Conflict(dataRoot, store, containers, img, hard: true, activeReference: !force, stopped: !force) is { } conflict)
        {
            var dangling = img.Names.Count == 0 && Children(dataRoot, store, img.Id).Count == 0;
            if (quiet && (!dangling || conflict.Used)) return;
            throw conflict.Error;
        }
        var parent = ImageParents.Get(dataRoot, img.Record);
        await DeleteWithLayersAsync(dataRoot, images, containers, img, steps, ct).ConfigureAwait(false);
        if (parent is null) return;
        StoredImage? p = null;
        try { p = store.Resolve(parent); }
        catch (Berth.Images.ImageException) { }
        if (p is not null && p.Id == parent)
            await DeleteAsync(dataRoot, images, containers, p, force: false, quiet: true, steps, ct).ConfigureAwait(false);
    }

    /// <summary>Untags every name of the image, deletes it and lists the layers that went with it.</summary>
    internal static async Task DeleteWithLayersAsync(string dataRoot, ImageManager images, IReadOnlyList<ContainerRecord> containers, StoredImage img, List<ImageDeleteStep> steps, CancellationToken ct)
    {
        var store = images.Store;
        foreach (var n in img.Names.OrderBy(n => n.FamiliarString, StringComparer.Ordinal))
        {
            images.Untag(img, n);
            steps.Add(new ImageDeleteStep(n.FamiliarString, null));
        }
        IReadOnlyList<string> chain = [];
        try { chain = ChainId.Chain((await ImageLayers.ReadAsync(store, img.Record, ct).ConfigureAwait(false)).DiffIds); }
        catch (Exception e) when (e is Berth.Images.ImageException or FormatException or IOException) { }
        var snapshotter = OverlaySnapshotter.Create(dataRoot);
        var before = snapshotter.Layers().ToHashSet(StringComparer.Ordinal);
        await images.DeleteAsync(img, ct).ConfigureAwait(false);
        steps.Add(new ImageDeleteStep(null, img.Id));
        // then, as dockerd lists them, each layer that went with it (top first, by chain id): an unpacked
        // layer that is gone, or a layer never unpacked that no other image and no container has
        var after = snapshotter.Layers().ToHashSet(StringComparer.Ordinal);
        var kept = new HashSet<string>(containers.Select(c => c.ImageLayer).OfType<string>(), StringComparer.Ordinal);
        foreach (var r in store.ListRecords())
        {
            try { kept.UnionWith(ChainId.Chain((await ImageLayers.ReadAsync(store, r, ct).ConfigureAwait(false)).DiffIds)); }
            catch (Exception e) when (e is Berth.Images.ImageException or FormatException or IOException) { }
        }
        foreach (var layer in chain.Reverse())
            if (before.Contains(layer) ? !after.Contains(layer) : !kept.Contains(layer)) steps.Add(new ImageDeleteStep(null, layer));
    }

    readonly record struct ConflictFound(EngineException Error, bool Used);

    static ConflictFound? Conflict(string dataRoot, ImageStore store, IReadOnlyList<ContainerRecord> containers, StoredImage img, bool hard, bool activeReference, bool stopped)
    {
        ConflictFound Found(bool isHard, bool used, string why) => new(new EngineException(ErrorKind.FailedPrecondition,
            $"conflict: unable to delete {Short(img.Id)} ({(isHard ? "cannot be forced" : "must be forced")}) - {why}"), used);
        if (hard && Children(dataRoot, store, img.Id).Count > 0) return Found(true, false, "image has dependent child images");
        if (hard && containers.FirstOrDefault(c => c.Image == img.Id && c.State.Running) is { } running)
            return Found(true, true, $"image is being used by running container {running.ShortId}");
        if (activeReference && img.Names.Count > 0) return Found(false, false, "image is referenced in multiple repositories");
        if (stopped && containers.FirstOrDefault(c => c.Image == img.Id && !c.State.Running) is { } st)
            return Found(false, true, $"image is being used by stopped container {st.ShortId}");
        return null;
    }

    /// <summary>The images made from <paramref name="imageId"/> (their recorded parent is it).</summary>
    public static List<ImageRecord> Children(string dataRoot, ImageStore store, string imageId) =>
        store.ListRecords().Where(r => r.Id != imageId && ImageParents.Get(dataRoot, r) == imageId).ToList();

    static StoredImage Reload(ImageStore store, StoredImage img) =>
        new(img.Record, store.ListNames().Where(n => n.Target == img.Record.Target.Digest).Select(n => n.Name).ToList());

    /// <summary>dockerd's isSingleReference: one tag at most, and every name in one repository.</summary>
    static bool IsSingleReference(IReadOnlyList<ImageReference> refs)
    {
        if (refs.Count <= 1) return refs.Count == 1;
        ImageReference? single = null;
        var canonical = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in refs)
        {
            if (r.Digest is not null && r.Tag is null) canonical.Add(r.Name);
            else if (single is null) single = r;
            else return false;
        }
        single ??= refs[0];
        return canonical.Count == 1 && canonical.Contains(single.Name);
    }

    static bool IsIdPrefix(string id, string input) =>
        id.StartsWith(input, StringComparison.Ordinal) || (id.IndexOf(':') is >= 0 and var i && id[(i + 1)..].StartsWith(input, StringComparison.Ordinal));

    public static string Short(string id) => (id.StartsWith("sha256:", StringComparison.Ordinal) ? id[7..] : id)[..12];
}
