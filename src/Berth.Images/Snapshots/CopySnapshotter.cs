using Berth.Images.Unpack;

namespace Berth.Images.Snapshots;

/// <summary>
/// The fallback where overlayfs is unavailable (like docker's vfs driver): every layer directory
/// holds the whole tree up to that layer (the parent's tree copied, this layer applied on top with
/// whiteouts deleting in place), and a container gets its own full copy, bind-mounted.
/// </summary>
public sealed class CopySnapshotter(string root, UnpackOptions? options = null)
    : LayerSnapshotter(root, "copy", options ?? new UnpackOptions())
{
    public override string Driver => "copy";
    public override bool LayersIndependent => false;
    protected override WhiteoutMode Whiteouts => WhiteoutMode.Delete;

    protected override void Populate(string tmpFs, string? parentChainId)
    {
        if (parentChainId != null) TreeCopier.Copy(LayerFs(parentChainId), tmpFs);
    }

    protected override void PopulateContainer(string tmp, string? parentChainId)
    {
        var fs = Path.Combine(tmp, "fs");
        Directory.CreateDirectory(fs);
        if (parentChainId != null) TreeCopier.Copy(LayerFs(parentChainId), fs);
    }

    protected override IReadOnlyList<SnapshotMount> MountsOf(string containerDir, string? parentChainId) =>
        [new SnapshotMount("bind", Path.Combine(containerDir, "fs"), ["rbind", "rw"])];
}
