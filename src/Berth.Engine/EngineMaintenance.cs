using Berth.Engine.Containers;
using Berth.Engine.Events;
using Berth.Engine.Volumes;
using Berth.Images.Content;
using Berth.Images.Snapshots;

namespace Berth.Engine;

/// <summary>What a prune removed, as the Docker API reports it (…Deleted, SpaceReclaimed).</summary>
public sealed record PruneReport(List<string> Deleted, long SpaceReclaimed);

/// <summary>One row of `system df` (the Docker API's /system/df, summarised as the CLI prints it).</summary>
public sealed record UsageRow(string Type, int Total, int Active, long Size, long Reclaimable);

/// <summary>Disk usage and pruning across the engine's stores (library API for `system df|prune`,
/// `container prune`, `image prune` and the Docker API's /system/df and /…/prune): images used by a
/// container are never pruned, and `rmi` refuses them without -f.</summary>
public static class EngineMaintenance
{
    /// <summary>Image IDs (config digests) that containers use, with one container of each.</summary>
    public static Dictionary<string, string> ImagesInUse(ContainerManager mgr)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in mgr.List()) if (c.Image.Length > 0) map.TryAdd(c.Image, c.Id);
        return map;
    }

    /// <summary>docker's conflict for removing the last reference of an image a container uses.</summary>
    public static string? RemoveConflict(ContainerManager mgr, string imageId, string reference) =>
        ImagesInUse(mgr).TryGetValue(imageId, out var cid)
            ? $"conflict: unable to remove repository reference \"{reference}\" (must force) - container {cid[..12]} is using its referenced image {ShortImageId(imageId)}"
            : null;

    static string ShortImageId(string id) => (id.StartsWith("sha256:", StringComparison.Ordinal) ? id[7..] : id)[..12];

    public static PruneReport PruneContainers(ContainerManager mgr)
    {
        var deleted = new List<string>();
        long space = 0;
        foreach (var c in mgr.List().Where(c => !c.State.Running && !c.State.Restarting && c.Monitor is null))
        {
            var size = ContainerSize(mgr, c);
            try { mgr.Remove(c.Id, force: false); deleted.Add(c.Id); space += size; }
            catch (EngineException) { /* started or removed meanwhile */ }
        }
        return new PruneReport(deleted, space);
    }

    /// <summary>Unused volumes (no container, running or not, names them).</summary>
    public static PruneReport PruneVolumes(ContainerManager mgr)
    {
        var vs = new VolumeStore(mgr.Store.Root);
        var containers = mgr.List();
        var used = containers.SelectMany(c => c.Mounts).Where(m => m.Type == "volume" && m.Name is not null).Select(m => m.Name!).ToHashSet();
        var deleted = new List<string>();
        long space = 0;
        foreach (var v in vs.List().Where(v => !used.Contains(v.Name)))
        {
            var size = DirSize(v.Mountpoint);
            try { vs.Remove(v.Name, containers); deleted.Add(v.Name); space += size; }
            catch (EngineException) { }
        }
        return new PruneReport(deleted, space);
    }

    /// <summary>Dangling images (no tag; repo@digest names go with them), or with <paramref name="all"/> every image no container
    /// uses; images a container uses stay, and so do images with children until their children go
    /// (as dockerd: a dangling parent goes with its last child). Each deleted image is listed with its
    /// names ("untagged: …") and the layers that went with it ("deleted: …").</summary>
    public static async Task<PruneReport> PruneImagesAsync(ContainerManager mgr, bool all, CancellationToken ct)
    {
        var root = mgr.Store.Root;
        var images = new ImageManager(root);
        var store = images.Store;
        var containers = mgr.List();
        var inUse = new HashSet<string>(containers.Select(c => c.Image), StringComparer.Ordinal);
        var deleted = new List<string>();
        long before;
        using (store.LockExclusive())
        {
            before = BlobBytes(store);
            bool progress;
            do
            {
                progress = false;
                var named = store.ListNames().ToList();
                foreach (var r in store.ListRecords().OrderBy(r => r.Id, StringComparer.Ordinal).ToList())
                {
                    if (inUse.Contains(r.Id) || ImageRemoval.Children(root, store, r.Id).Count > 0) continue;
                    var names = named.Where(n => n.Target == r.Target.Digest).Select(n => n.Name).ToList();
                    // dangling, as dockerd has it: no tag (digest names go with the image)
                    if (!all && names.Any(n => n.Tag is not null && n.Digest is null)) continue;
                    if (!store.ListRecords().Any(x => x.Target.Digest == r.Target.Digest)) continue;
                    var steps = new List<ImageDeleteStep>();
                    await ImageRemoval.DeleteWithLayersAsync(root, images, containers, new StoredImage(r, names), steps, ct).ConfigureAwait(false);
                    deleted.AddRange(steps.Select(s => s.Untagged is not null ? "untagged: " + s.Untagged : "deleted: " + s.Deleted));
                    progress = true;
                }
            } while (progress);
            store.CollectGarbage(dangling: false);
            await ImageLayers.CollectAsync(store, OverlaySnapshotter.Create(root), ct).ConfigureAwait(false);
        }
        var report = new PruneReport(deleted, Math.Max(0, before - BlobBytes(store)));
        ImageEvents.Pruned(root, report.SpaceReclaimed);
        return report;
    }

    static long BlobBytes(ImageStore store) => store.Content.ListBlobs().Sum(d => store.Content.SizeOf(d) ?? 0);

    /// <summary>The bytes a container wrote (its writable layer); 0 with --rootfs.</summary>
    public static long ContainerSize(ContainerManager mgr, ContainerRecord c)
    {
        if (c.ImageLayer is null) return 0;
        try { return DirSize(OverlaySnapshotter.Create(mgr.Store.Root).UpperDirectory(c.Id)); }
        catch (Exception e) when (e is IOException or Berth.Images.Snapshots.SnapshotException or UnauthorizedAccessException) { return 0; }
    }

    public static long DirSize(string dir)
    {
        if (!Directory.Exists(dir)) return 0;
        long total = 0;
        var opts = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true };
        foreach (var f in new DirectoryInfo(dir).EnumerateFiles("*", opts))
            if (f.LinkTarget is null) total += f.Length;
        return total;
    }

    /// <summary>`system df`: images, containers, local volumes, build cache (none here).</summary>
    public static List<UsageRow> DiskUsage(ContainerManager mgr)
    {
        var containers = mgr.List();
        var store = new ImageStore(mgr.Store.Root);
        var images = store.ListRecords().ToList();
        var inUse = containers.Where(c => c.Image.Length > 0).Select(c => c.Image).ToHashSet();
        var imgSize = images.Sum(i => i.Size);
        var imgReclaim = images.Where(i => !inUse.Contains(i.Id)).Sum(i => i.Size);
        var sizes = containers.ToDictionary(c => c.Id, c => ContainerSize(mgr, c));
        var vs = new VolumeStore(mgr.Store.Root);
        var vols = vs.List();
        var usedVols = containers.SelectMany(c => c.Mounts).Where(m => m.Type == "volume" && m.Name is not null).Select(m => m.Name!).ToHashSet();
        var volSizes = vols.ToDictionary(v => v.Name, v => DirSize(v.Mountpoint));
        return
        [
            new("Images", images.Count, images.Count(i => inUse.Contains(i.Id)), imgSize, imgReclaim),
            new("Containers", containers.Count, containers.Count(c => c.State.Running), sizes.Values.Sum(), containers.Where(c => !c.State.Running).Sum(c => sizes[c.Id])),
            new("Local Volumes", vols.Count, vols.Count(v => usedVols.Contains(v.Name)), volSizes.Values.Sum(), vols.Where(v => !usedVols.Contains(v.Name)).Sum(v => volSizes[v.Name])),
            new("Build Cache", 0, 0, 0, 0),
        ];
    }
}
