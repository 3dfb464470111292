using Berth.Oci.Image;

namespace Berth.Images.Registry;

/// <summary>What a pull or push reports as it goes (the CLI draws it; tests may record it).</summary>
public interface ITransferProgress
{
    /// <summary>A line of overall status ("Pulling from ...", "Digest: ...").</summary>
    void Status(string line);
    /// <summary>A blob transfer starts (kind: "layer" or "config").</summary>
    void BlobStarted(Descriptor blob, string kind);
    /// <summary>Bytes of the blob done so far.</summary>
    void BlobProgress(Descriptor blob, long done);
    /// <summary>The blob is done ("Download complete", "Already exists", "Pushed", "Mounted from x", ...).</summary>
    void BlobDone(Descriptor blob, string outcome);
}

public sealed class NoProgress : ITransferProgress
{
    public static readonly NoProgress Instance = new();
    public void Status(string line) { }
    public void BlobStarted(Descriptor blob, string kind) { }
    public void BlobProgress(Descriptor blob, long done) { }
    public void BlobDone(Descriptor blob, string outcome) { }
}
