using Berth.Images.Unpack;
using Berth.Linux;

namespace Berth.Images.Snapshots;

/// <summary>
/// overlayfs snapshots: each layer is unpacked once, alone, into layers/&lt;chain hex&gt;/fs (whiteouts
/// as overlay whiteouts) and shared read-only; a container gets an upper and work directory and a
/// lowerdir list of its image's layers. Lower directories are named through short symlinks
/// (l/&lt;id&gt;, as docker's overlay2 and containerd do) so about 70 layers fit in mount(2)'s one-page
/// option limit; <see cref="SnapshotMounter"/> adds them one at a time beyond that.
/// </summary>
public sealed class OverlaySnapshotter : LayerSnapshotter
{
    public OverlaySnapshotter(string root, UnpackOptions? options = null)
        : base(root, "overlay", options ?? new UnpackOptions()) => Directory.CreateDirectory(LinksDir);

    string LinksDir => Path.Combine(Dir, "l");

    public override string Driver => "overlay";
    public override bool LayersIndependent => true;
    protected override WhiteoutMode Whiteouts => WhiteoutMode.Overlay;

    protected override void Populate(string tmpFs, string? parentChainId) { }

    protected override void Describe(string tmp) => File.WriteAllText(Path.Combine(tmp, "link"), NewLinkId());

    static string NewLinkId()
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        return string.Create(16, 0, (span, _) =>
        {
            Span<byte> r = stackalloc byte[16];
            System.Security.Cryptography.RandomNumberGenerator.Fill(r);
            for (var i = 0; i < span.Length; i++) span[i] = alphabet[r[i] & 31];
        });
    }

    protected override void Committed(string chainId, string layerDir) => EnsureLink(chainId);

    /// <summary>The short path of a layer's tree (l/ID), re-created if a crash lost it.</summary>
    string EnsureLink(string chainId)
    {
        var id = File.ReadAllText(Path.Combine(LayerDir(chainId), "link")).Trim();
        var link = Path.Combine(LinksDir, id);
        if (!File.Exists(link) && !Directory.Exists(link))
        {
            try { File.CreateSymbolicLink(link, Path.Combine("..", "layers", Hex(chainId), "fs")); }
            catch (IOException) when (Directory.Exists(link)) { }
        }
        return link;
    }

    protected override void LayerRemoved(string movedLayerDir)
    {
        var id = File.ReadAllText(Path.Combine(movedLayerDir, "link")).Trim();
        File.Delete(Path.Combine(LinksDir, id));
    }

    protected override void PopulateContainer(string tmp, string? parentChainId)
    {
        Directory.CreateDirectory(Path.Combine(tmp, "fs"));
        Directory.CreateDirectory(Path.Combine(tmp, "work"));
    }

    protected override IReadOnlyList<SnapshotMount> MountsOf(string containerDir, string? parentChainId)
    {
        var fs = Path.Combine(containerDir, "fs");
        if (parentChainId is null) return [new SnapshotMount("bind", fs, ["rbind", "rw"])];
        var lowers = Ancestry(parentChainId).Select(EnsureLink);
        return [new SnapshotMount("overlay", "overlay",
            ["lowerdir=" + string.Join(':', lowers), "upperdir=" + fs, "workdir=" + Path.Combine(containerDir, "work")])];
    }

    /// <summary>Whether overlay mounts work on the file system under <paramref name="root"/>: a real
    /// test mount in a temp directory there (what containerd and docker do).</summary>
    public static bool IsSupported(string root)
    {
        var dir = Path.Combine(root, "images", "snapshots", "overlay-check-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            foreach (var d in new[] { "lower", "upper", "work", "merged" }) Directory.CreateDirectory(Path.Combine(dir, d));
            OverlayMount.Mount([Path.Combine(dir, "lower")], Path.Combine(dir, "upper"), Path.Combine(dir, "work"), Path.Combine(dir, "merged"));
            OverlayMount.Unmount(Path.Combine(dir, "merged"), detach: true);
            return true;
        }
        catch (SyscallException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The snapshotter to use under a data root: overlay when it works there, else copy.
    /// The choice is made once per data root (a test mount costs a few milliseconds) and recorded in
    /// images/snapshots/driver, so every later command uses the same driver as the first.</summary>
    public static ISnapshotter Create(string root, UnpackOptions? options = null)
    {
        var record = Path.Combine(root, "images", "snapshots", "driver");
        var driver = File.Exists(record) ? File.ReadAllText(record).Trim() : null;
        if (driver is null)
        {
            driver = IsSupported(root) ? "overlay" : "copy";
            Directory.CreateDirectory(Path.GetDirectoryName(record)!);
            var tmp = record + ".tmp-" + Environment.ProcessId;
            File.WriteAllText(tmp, driver + "\n");
            File.Move(tmp, record, overwrite: true);
        }
        return driver switch
        {
            "overlay" => new OverlaySnapshotter(root, options),
            "copy" => new CopySnapshotter(root, options),
            _ => throw new SnapshotException(SnapshotError.FailedPrecondition, $"{record}: unknown snapshot driver \"{driver}\""),
        };
    }
}
