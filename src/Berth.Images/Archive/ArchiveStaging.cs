using System.IO.Compression;
using System.Security.Cryptography;
using Berth.Images.Unpack;
using Berth.Oci.Image;

namespace Berth.Images.Archive;

/// <summary>
/// An image archive (a tar, plain or gzip/zstd-compressed) unpacked into a staging directory of the
/// content store: every regular member is written to its own numbered file while its sha256 is
/// computed, symlinks and hard links between members are kept as names, and nothing else is
/// accepted. Member names are normalised and any that would leave the archive ("../", absolute) is
/// refused, so what the archive's manifests name can only ever be a member of the archive. The
/// staging directory is deleted by <see cref="Dispose"/>; files adopted into the store are moved out of it.
/// </summary>
internal sealed class ArchiveStaging : IDisposable
{
    const int MaxLinkHops = 16;
    const long MaxMetadataSize = 8 << 20;

    public sealed record Member(string Name, string File, long Size, Digest Sha256);

    readonly string _dir;
    readonly Dictionary<string, Member> _files = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);

    ArchiveStaging(string dir) => _dir = dir;

    public bool Has(string name) => TryFind(name, out _);

    /// <summary>Reads the whole archive into <paramref name="dir"/> (created by the caller, removed on dispose).</summary>
    public static ArchiveStaging Read(Stream input, string dir, CancellationToken ct)
    {
        var staging = new ArchiveStaging(dir);
        try
        {
            using var tarStream = Decompressed(input);
            var tar = new TarStreamReader(tarStream);
            var n = 0;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                TarHeader? h;
                try { h = tar.Next(); }
                catch (LayerException e) { throw ImageException.Invalid($"archive: {Rephrase(e.Message)}"); }
                if (h is null) break;
                var name = Normalize(h.Name, $"archive entry \"{h.Name}\"");
                switch (h.Kind)
                {
                    case TarKind.Directory:
                        break;
                    case TarKind.File:
                        if (name.Length == 0) throw ImageException.Invalid($"archive entry \"{h.Name}\" has no name");
                        staging._files[name] = staging.Stage(tar, name, $"{n++}", ct);
                        staging._links.Remove(name);
                        break;
                    case TarKind.Symlink:
                        {
                            if (h.LinkName.StartsWith('/'))
                                throw ImageException.Invalid($"archive entry \"{h.Name}\": symlink to \"{h.LinkName}\" points outside the archive");
                            var parent = name.Contains('/') ? name[..name.LastIndexOf('/')] + "/" : "";
                            staging._links[name] = Normalize(parent + h.LinkName, $"archive entry \"{h.Name}\": symlink to \"{h.LinkName}\"");
                            staging._files.Remove(name);
                            break;
                        }
                    case TarKind.HardLink:
                        staging._links[name] = Normalize(h.LinkName, $"archive entry \"{h.Name}\": hard link to \"{h.LinkName}\"");
                        staging._files.Remove(name);
                        break;
                    default:
                        throw ImageException.Invalid($"archive entry \"{h.Name}\" is a {h.Kind.ToString().ToLowerInvariant()}: an image archive holds only files, directories and links");
                }
            }
            return staging;
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }

    Member Stage(TarStreamReader tar, string name, string file, CancellationToken ct)
    {
        var path = Path.Combine(_dir, file);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0;
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
        {
            while (true)
            {
                ReadOnlySpan<byte> chunk;
                try { chunk = tar.ReadData(); }
                catch (LayerException e) { throw ImageException.Invalid($"archive: {Rephrase(e.Message)} (in \"{name}\")"); }
                if (chunk.IsEmpty) break;
                hash.AppendData(chunk);
                fs.Write(chunk);
                size += chunk.Length;
                if ((size & ((1 << 26) - 1)) < chunk.Length) ct.ThrowIfCancellationRequested();
            }
        }
        return new Member(name, path, size, Digest.FromHash("sha256", hash.GetHashAndReset()));
    }

    /// <summary>The tar reader speaks of layers; here the tar is an archive.</summary>
    static string Rephrase(string message) => message.Replace("end of layer", "end of archive", StringComparison.Ordinal).Replace("layer: ", "", StringComparison.Ordinal);

    /// <summary>A member name made canonical ("./a//b/" → "a/b"); null-free, relative and inside the archive, or InvalidArgument.</summary>
    public static string Normalize(string name, string what)
    {
        if (name.Contains('\0')) throw ImageException.Invalid($"{what}: name contains a NUL byte");
        if (name.StartsWith('/')) throw ImageException.Invalid($"{what} is an absolute path: outside the archive");
        var parts = new List<string>();
        foreach (var p in name.Split('/'))
        {
            if (p is "" or ".") continue;
            if (p == "..")
            {
                if (parts.Count == 0) throw ImageException.Invalid($"{what} points outside the archive");
                parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(p);
        }
        return string.Join('/', parts);
    }

    bool TryFind(string name, out Member member)
    {
        var n = name;
        for (var hop = 0; hop <= MaxLinkHops; hop++)
        {
            if (_files.TryGetValue(n, out member!)) return true;
            if (!_links.TryGetValue(n, out var next)) return false;
            n = next;
        }
        member = null!;
        return false;
    }

    /// <summary>The member <paramref name="name"/> (links followed, inside the archive only), named by <paramref name="by"/>.</summary>
    public Member Find(string name, string by)
    {
        var n = Normalize(name, $"{by} names \"{name}\", which");
        if (n.Length == 0 || !TryFind(n, out var m)) throw ImageException.Invalid($"{by} names \"{name}\", which is not in the archive");
        return m;
    }

    /// <summary>A small member (manifest, index, config) read whole; refused when larger than 8 MiB.</summary>
    public byte[] ReadSmall(Member m, string what)
    {
        if (m.Size > MaxMetadataSize) throw ImageException.Invalid($"{what} is {m.Size} bytes: larger than the limit of {MaxMetadataSize >> 20} MiB");
        return File.ReadAllBytes(m.File);
    }

    /// <summary>A blob of an OCI layout: blobs/ALG/HEX, whose content must hash to its name and match the descriptor's size.</summary>
    public Member Blob(Descriptor d, string by)
    {
        if (!Digest.TryParse(d.Digest, out var digest)) throw ImageException.Invalid($"{by}: invalid digest \"{d.Digest}\"");
        var m = Find($"blobs/{digest.Algorithm}/{digest.Encoded}", by);
        Verify(m, digest);
        if (d.Size != m.Size) throw ImageException.Invalid($"archive blob {digest}: {m.Size} bytes, {by} says {d.Size}");
        return m;
    }

    /// <summary>Checks a member's content against a digest (sha256 was computed while staging; others are computed now).</summary>
    public static void Verify(Member m, Digest expected)
    {
        Digest actual;
        if (expected.Algorithm == "sha256") actual = m.Sha256;
        else
        {
            using var h = expected.CreateHasher();
            using var fs = File.OpenRead(m.File);
            var buf = new byte[1 << 16];
            int n;
            while ((n = fs.Read(buf)) > 0) h.AppendData(buf, 0, n);
            actual = Digest.FromHash(expected.Algorithm, h.GetHashAndReset());
        }
        if (actual != expected) throw ImageException.Invalid($"archive blob {expected}: content of \"{m.Name}\" has digest {actual} (corrupt or tampered)");
    }

    /// <summary>The compression of a member's content, from its first bytes (docker load accepts compressed layer.tar files).</summary>
    public static LayerCompression CompressionOf(Member m)
    {
        Span<byte> head = stackalloc byte[4];
        using var fs = File.OpenRead(m.File);
        var n = fs.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        return Sniff(head[..n]);
    }

    static LayerCompression Sniff(ReadOnlySpan<byte> head) =>
        head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b ? LayerCompression.Gzip
        : head.Length >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd ? LayerCompression.Zstd
        : LayerCompression.None;

    /// <summary>The archive's tar stream: the input itself, or its gzip/zstd decompression, told by its first bytes.</summary>
    static Stream Decompressed(Stream input)
    {
        var head = new byte[4];
        var n = input.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        var joined = new PrefixedStream(head.AsMemory(0, n), input);
        return Sniff(head.AsSpan(0, n)) switch
        {
            LayerCompression.Gzip => new ArchiveDecompressionStream(new GZipStream(joined, CompressionMode.Decompress)),
            LayerCompression.Zstd => new ArchiveDecompressionStream(new ZstdSharp.DecompressionStream(joined)),
            _ => joined,
        };
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    /// <summary>Bytes already read from a stream, then the rest of it.</summary>
    sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest) : ForwardReadStream
    {
        int _pos;
        public override int Read(Span<byte> buffer)
        {
            if (_pos < prefix.Length)
            {
                var n = Math.Min(buffer.Length, prefix.Length - _pos);
                prefix.Span.Slice(_pos, n).CopyTo(buffer);
                _pos += n;
                return n;
            }
            return rest.Read(buffer);
        }
    }

    /// <summary>Corrupt or truncated compressed input as one InvalidArgument line.</summary>
    sealed class ArchiveDecompressionStream(Stream inner) : ForwardReadStream
    {
        public override int Read(Span<byte> buffer)
        {
            try { return inner.Read(buffer); }
            catch (InvalidDataException e) { throw ImageException.Invalid($"archive: corrupt compressed data: {e.Message}"); }
            catch (EndOfStreamException) { throw ImageException.Invalid("archive: truncated compressed data"); }
            catch (ZstdSharp.ZstdException e) { throw ImageException.Invalid($"archive: corrupt compressed data: {e.Message}"); }
            catch (IOException e) when (e.InnerException is InvalidDataException)
            { throw ImageException.Invalid($"archive: corrupt compressed data: {e.Message}"); }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
