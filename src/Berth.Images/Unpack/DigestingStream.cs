using System.Security.Cryptography;

namespace Berth.Images.Unpack;

/// <summary>Reads through a stream while hashing (sha256) and counting what passes, refusing to
/// read past a byte limit (the decompression-bomb guard).</summary>
public sealed class DigestingStream(Stream inner, long limit, string what) : ForwardReadStream
{
    readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    long _count;

    public long BytesRead => _count;

    public string Digest() => "sha256:" + Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override int Read(Span<byte> buffer)
    {
        int n;
        try { n = inner.Read(buffer); }
        catch (InvalidDataException e) { throw new LayerException($"{what}: corrupt compressed data: {e.Message}", e); }
        catch (EndOfStreamException e) { throw new LayerException($"{what}: truncated compressed data", e); }
        catch (ZstdSharp.ZstdException e) { throw new LayerException($"{what}: corrupt compressed data: {e.Message}", e); }
        catch (IOException e) when (e.GetType().FullName?.StartsWith("ZstdSharp", StringComparison.Ordinal) == true || e.InnerException is InvalidDataException)
        { throw new LayerException($"{what}: corrupt compressed data: {e.Message}", e); }
        if (n > 0)
        {
            _hash.AppendData(buffer[..n]);
            _count += n;
            if (_count > limit) throw new LayerException($"{what}: uncompressed size exceeds the limit of {limit} bytes");
        }
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}
