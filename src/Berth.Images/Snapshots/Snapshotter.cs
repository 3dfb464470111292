using System.Security.Cryptography;
using System.Text;
using Berth.Oci.Image;

namespace Berth.Images.Snapshots;

/// <summary>A mount a snapshot needs, as data (containerd's mount.Mount): the engine performs it.
/// Overlay: Type "overlay", options lowerdir/upperdir/workdir. Copy: a bind mount of a directory.</summary>
public sealed record SnapshotMount(string Type, string Source, IReadOnlyList<string> Options);

/// <summary>A failure the caller can act on: a missing parent, an unknown key, a layer still in use.</summary>
public sealed class SnapshotException(SnapshotError kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public SnapshotError Kind { get; } = kind;
}

public enum SnapshotError { NotFound, AlreadyExists, InvalidArgument, FailedPrecondition }

/// <summary>
/// Stores image layers as unpacked trees keyed by chain ID (shared read-only between images) and
/// gives each container one writable layer on top. Implementations: overlayfs, and a copying
/// fallback for file systems or kernels without overlay.
/// </summary>
public interface ISnapshotter
{
    /// <summary>"overlay" or "copy"; also the directory name under images/snapshots.</summary>
    string Driver { get; }

    /// <summary>True when a layer can be unpacked before its parent is (overlay: each layer stands
    /// alone), so a pull may unpack all layers at once.</summary>
    bool LayersIndependent { get; }

    bool HasLayer(string chainId);

    /// <summary>Unpacks a layer blob (compressed as given) whose parent chain is
    /// <paramref name="parentChainId"/> (null for the base layer), verifying its diffID. Returns the
    /// new chain ID. Already present: returns at once without reading the stream. Concurrent calls
    /// for the same layer are safe (one wins, the others discard their copy). On error nothing is left.</summary>
    Task<string> ApplyLayerAsync(string? parentChainId, string diffId, Stream blob, LayerCompression compression, CancellationToken cancellationToken);

    /// <summary>Creates the writable layer of a container on top of a layer chain (null: empty) and returns its mounts.</summary>
    IReadOnlyList<SnapshotMount> Prepare(string containerKey, string? parentChainId);

    /// <summary>The mounts of an existing container snapshot.</summary>
    IReadOnlyList<SnapshotMount> Mounts(string containerKey);

    /// <summary>The directory holding what the container wrote (overlay upper / copied tree).</summary>
    string UpperDirectory(string containerKey);

    void Remove(string containerKey);

    /// <summary>Removes a layer no container and no other layer builds on.</summary>
    void RemoveLayer(string chainId);

    IReadOnlyList<string> Layers();
    IReadOnlyList<string> Containers();
}

public static class ChainId
{
    /// <summary>image-spec config.md: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).</summary>
    public static string Next(string? parentChainId, string diffId)
    {
        Digest.Parse(diffId);
        if (parentChainId is null) return diffId;
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(parentChainId + " " + diffId)));
    }

    public static IReadOnlyList<string> Chain(IEnumerable<string> diffIds)
    {
        var result = new List<string>();
        string? parent = null;
        foreach (var d in diffIds) result.Add(parent = Next(parent, d));
        return result;
    }
}
