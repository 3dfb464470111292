using System.Text.RegularExpressions;
using Berth.Images.Unpack;
using Berth.Linux;
using Berth.Oci.Image;

namespace Berth.Images.Snapshots;

/// <summary>
/// What both snapshotters share: the on-disk layout under &lt;root&gt;/images/snapshots/&lt;driver&gt;/
/// (layers/&lt;chain hex&gt;/{fs,parent,diffid}, containers/&lt;key&gt;/{fs,parent}, tmp/), the
/// unpack-into-temp-then-rename commit that makes concurrent pulls of one layer safe, and removal.
/// </summary>
public abstract partial class LayerSnapshotter : ISnapshotter
{
    protected string Dir { get; }
    protected string LayersDir => Path.Combine(Dir, "layers");
    protected string ContainersDir => Path.Combine(Dir, "containers");
    protected string TmpDir => Path.Combine(Dir, "tmp");
    protected UnpackOptions UnpackOptions { get; }

    public abstract string Driver { get; }
    public abstract bool LayersIndependent { get; }

    /// <param name="root">Berth's data root (--root); data goes to root/images/snapshots/driver.</param>
    protected LayerSnapshotter(string root, string driver, UnpackOptions options)
    {
        Dir = Path.Combine(root, "images", "snapshots", driver);
        UnpackOptions = options;
        Directory.CreateDirectory(LayersDir);
        Directory.CreateDirectory(ContainersDir);
        Directory.CreateDirectory(TmpDir);
        SpreadNewTrees(TmpDir);
    }

    /// <summary>
    /// Marks tmp/ as a top directory (chattr +T, FS_TOPDIR_FL) so that on ext2/3/4 every layer and
    /// container tree (made as tmp/&lt;random id&gt;, then renamed) starts where the Orlov allocator
    /// puts top-level directories: the flex group with the fewest directories among those with at
    /// least average free inodes and blocks, searched from a hash of the random name. Without it each
    /// new tree goes into its parent's flex group, where the trees of removed images were; on an ext4
    /// without a journal the kernel skips inodes freed in the last minute or more and walks all of them
    /// for every inode it allocates there (fs/ext4/ialloc.c recently_deleted), which made a pull right
    /// after a removal spend seconds of system time. Layers of one pull also land in different groups.
    /// Best effort: other file systems have no such flag, and nothing else depends on it.
    /// </summary>
    static void SpreadNewTrees(string dir) => FileAt.TryAddInodeFlags(dir, FileAt.FS_TOPDIR_FL);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex KeyPattern();

    protected static string Hex(string chainId) =>
        Digest.TryParse(chainId, out var d) && d.Algorithm == "sha256" ? d.Encoded
            : throw new SnapshotException(SnapshotError.InvalidArgument, $"invalid chain ID \"{chainId}\"");

    protected static void CheckKey(string key)
    {
        if (!KeyPattern().IsMatch(key)) throw new SnapshotException(SnapshotError.InvalidArgument, $"invalid snapshot key \"{key}\"");
    }

    protected string LayerDir(string chainId) => Path.Combine(LayersDir, Hex(chainId));
    protected string LayerFs(string chainId) => Path.Combine(LayerDir(chainId), "fs");
    protected string ContainerDir(string key) { CheckKey(key); return Path.Combine(ContainersDir, key); }

    public bool HasLayer(string chainId) => Directory.Exists(LayerDir(chainId));

    /// <summary>The parent chain ID recorded for a layer (null for a base layer).</summary>
    protected string? ParentOf(string chainId)
    {
        var p = File.ReadAllText(Path.Combine(LayerDir(chainId), "parent")).Trim();
        return p.Length == 0 ? null : p;
    }

    /// <summary>Chain IDs from <paramref name="top"/> down to the base layer.</summary>
    protected List<string> Ancestry(string top)
    {
        var chain = new List<string>();
        for (string? c = top; c != null; c = ParentOf(c))
        {
            if (!HasLayer(c)) throw new SnapshotException(SnapshotError.NotFound, $"layer {c} is not unpacked");
            if (chain.Count > 1000) throw new SnapshotException(SnapshotError.FailedPrecondition, $"layer chain of {top} is too deep");
            chain.Add(c);
        }
        return chain;
    }

    protected string NewTemp()
    {
        var t = Path.Combine(TmpDir, Guid.NewGuid().ToString("N")[..16]);
        Directory.CreateDirectory(Path.Combine(t, "fs"));
        return t;
    }

    protected static void RemoveTree(string path)
    {
        try { Directory.Delete(path, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    /// <summary>Fills tmp/fs before the layer is unpacked into it (copy: the parent's tree).</summary>
    protected abstract void Populate(string tmpFs, string? parentChainId);

    /// <summary>Runs after the layer directory is in place (overlay: its short link).</summary>
    protected virtual void Committed(string chainId, string layerDir) { }

    /// <summary>Writes extra metadata into the temp layer directory before the commit.</summary>
    protected virtual void Describe(string tmp) { }

    protected abstract WhiteoutMode Whiteouts { get; }

    public async Task<string> ApplyLayerAsync(string? parentChainId, string diffId, Stream blob, LayerCompression compression, CancellationToken cancellationToken)
    {
        if (!Digest.TryParse(diffId, out var d) || d.Algorithm != "sha256")
            throw new SnapshotException(SnapshotError.InvalidArgument, $"invalid diffID \"{diffId}\"");
        var chainId = ChainId.Next(parentChainId, diffId);
        if (HasLayer(chainId)) return chainId;
        if (parentChainId != null && !LayersIndependent && !HasLayer(parentChainId))
            throw new SnapshotException(SnapshotError.FailedPrecondition, $"parent layer {parentChainId} of {chainId} is not unpacked");
        var tmp = NewTemp();
        try
        {
            var fs = Path.Combine(tmp, "fs");
            Populate(fs, parentChainId);
            await LayerUnpacker.UnpackAsync(blob, compression, fs, UnpackOptions with { Whiteouts = Whiteouts }, diffId, cancellationToken).ConfigureAwait(false);
            File.WriteAllText(Path.Combine(tmp, "parent"), parentChainId ?? "");
            File.WriteAllText(Path.Combine(tmp, "diffid"), diffId);
            Describe(tmp);
            var final = LayerDir(chainId);
            var r = FileAt.TryRename(tmp, final, noReplace: true);
            if (r == Errno.EEXIST || r == Errno.ENOTEMPTY)
            {
                RemoveTree(tmp); // another pull won the race: its copy is the same content
                return chainId;
            }
            if (r != 0) throw new SyscallException("rename", $"{tmp} to {final}", r);
            Committed(chainId, final);
            return chainId;
        }
        catch (Exception e)
        {
            try { RemoveTree(tmp); }
            catch (Exception cleanup) { throw new AggregateException($"layer {chainId}: {e.Message}; removing {tmp} also failed: {cleanup.Message}", e, cleanup); }
            throw;
        }
    }

    /// <summary>Builds tmp (fs plus metadata) for a container's writable layer.</summary>
    protected abstract void PopulateContainer(string tmp, string? parentChainId);

    public IReadOnlyList<SnapshotMount> Prepare(string containerKey, string? parentChainId)
    {
        var dir = ContainerDir(containerKey);
        using var l = FileAt.Lock(Path.Combine(Dir, "lock"));
        if (Directory.Exists(dir)) throw new SnapshotException(SnapshotError.AlreadyExists, $"snapshot \"{containerKey}\" already exists");
        if (parentChainId != null) Ancestry(parentChainId);
        var tmp = Path.Combine(TmpDir, "c-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.CreateDirectory(tmp);
        try
        {
            PopulateContainer(tmp, parentChainId);
            File.WriteAllText(Path.Combine(tmp, "parent"), parentChainId ?? "");
            var r = FileAt.TryRename(tmp, dir, noReplace: true);
            if (r != 0) throw new SyscallException("rename", $"{tmp} to {dir}", r);
        }
        catch
        {
            RemoveTree(tmp);
            throw;
        }
        return Mounts(containerKey);
    }

    public IReadOnlyList<SnapshotMount> Mounts(string containerKey)
    {
        var dir = ContainerDir(containerKey);
        if (!Directory.Exists(dir)) throw new SnapshotException(SnapshotError.NotFound, $"snapshot \"{containerKey}\" does not exist");
        var p = File.ReadAllText(Path.Combine(dir, "parent")).Trim();
        return MountsOf(dir, p.Length == 0 ? null : p);
    }

    protected abstract IReadOnlyList<SnapshotMount> MountsOf(string containerDir, string? parentChainId);

    public string UpperDirectory(string containerKey)
    {
        var dir = ContainerDir(containerKey);
        if (!Directory.Exists(dir)) throw new SnapshotException(SnapshotError.NotFound, $"snapshot \"{containerKey}\" does not exist");
        return Path.Combine(dir, "fs");
    }

    public void Remove(string containerKey)
    {
        var dir = ContainerDir(containerKey);
        using var l = FileAt.Lock(Path.Combine(Dir, "lock"));
        if (!Directory.Exists(dir)) throw new SnapshotException(SnapshotError.NotFound, $"snapshot \"{containerKey}\" does not exist");
        // Rename first so a crash mid-delete never leaves a half-removed snapshot under its key.
        var doomed = Path.Combine(TmpDir, "rm-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.Move(dir, doomed);
        RemoveTree(doomed);
    }

    public void RemoveLayer(string chainId)
    {
        var dir = LayerDir(chainId);
        using var l = FileAt.Lock(Path.Combine(Dir, "lock"));
        if (!Directory.Exists(dir)) throw new SnapshotException(SnapshotError.NotFound, $"layer {chainId} does not exist");
        foreach (var c in Layers())
            if (c != chainId && ParentOf(c) == chainId)
                throw new SnapshotException(SnapshotError.FailedPrecondition, $"layer {chainId} is the parent of layer {c}");
        foreach (var k in Containers())
        {
            var p = File.ReadAllText(Path.Combine(ContainersDir, k, "parent")).Trim();
            if (p.Length > 0 && Ancestry(p).Contains(chainId))
                throw new SnapshotException(SnapshotError.FailedPrecondition, $"layer {chainId} is in use by snapshot \"{k}\"");
        }
        var doomed = Path.Combine(TmpDir, "rm-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.Move(dir, doomed);
        LayerRemoved(doomed);
        RemoveTree(doomed);
    }

    protected virtual void LayerRemoved(string movedLayerDir) { }

    public IReadOnlyList<string> Layers() =>
        Directory.GetDirectories(LayersDir).Select(p => "sha256:" + Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();

    public IReadOnlyList<string> Containers() =>
        Directory.GetDirectories(ContainersDir).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToList();
}
