using Berth.Linux;
using Berth.Oci.Image;
using static Berth.Linux.Interop.Libc;

namespace Berth.Images.Content;

/// <summary>
/// Content-addressed blobs under &lt;images&gt;/blobs/&lt;algorithm&gt;/&lt;encoded&gt; (the OCI image-layout
/// shape). A blob appears only by an atomic rename of a fully written, fsynced and verified temp file
/// from &lt;images&gt;/ingest (same filesystem), so a half-written blob is never visible; concurrent
/// ingests of one digest each write their own temp file and the renames are idempotent.
/// </summary>
public sealed class ContentStore
{
    public string Root { get; }
    readonly string _ingest;

    public ContentStore(string imagesRoot)
    {
        Root = imagesRoot;
        _ingest = Path.Combine(imagesRoot, "ingest");
    }

    public string BlobsRoot => Path.Combine(Root, "blobs");

    /// <summary>Where the blob lives (whether or not it exists yet).</summary>
    public string BlobPath(Digest digest) => Path.Combine(Root, "blobs", digest.Algorithm, digest.Encoded);

    public bool Exists(Digest digest) => File.Exists(BlobPath(digest));

    /// <summary>The blob's size, or null when it is not in the store.</summary>
    public long? SizeOf(Digest digest)
    {
        var fi = new FileInfo(BlobPath(digest));
        return fi.Exists ? fi.Length : null;
    }

    /// <summary>Opens a blob for reading; NotFound when it is not in the store.</summary>
    public Stream OpenBlob(Digest digest)
    {
        try
        {
            return new FileStream(BlobPath(digest), new FileStreamOptions
            {
                Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan, BufferSize = 0,
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw ImageException.NotFound($"blob {digest} is not in the content store");
        }
    }

    public async Task<byte[]> ReadBlobAsync(Digest digest, CancellationToken ct = default)
    {
        try { return await File.ReadAllBytesAsync(BlobPath(digest), ct).ConfigureAwait(false); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw ImageException.NotFound($"blob {digest} is not in the content store");
        }
    }

    /// <summary>Starts writing a blob whose digest and size are known in advance (from a descriptor).</summary>
    public BlobWriter BeginIngest(Digest expected, long expectedSize)
    {
        Directory.CreateDirectory(_ingest);
        var tmp = Path.Combine(_ingest, $"{expected.Encoded}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        return new BlobWriter(this, tmp, expected, expectedSize);
    }

    /// <summary>Stores bytes already in memory (manifests, configs); returns their sha256 digest.</summary>
    public async Task<Digest> WriteBlobAsync(byte[] data, CancellationToken ct = default)
    {
        var digest = Digest.Sha256(data);
        if (Exists(digest)) return digest;
        await using var w = BeginIngest(digest, data.Length);
        await w.WriteAsync(data, ct).ConfigureAwait(false);
        await w.CommitAsync(ct).ConfigureAwait(false);
        return digest;
    }

    /// <summary>Copies a stream into the store, verifying digest and size.</summary>
    public async Task IngestAsync(Stream source, Digest expected, long expectedSize, CancellationToken ct = default)
    {
        if (Exists(expected)) return;
        await using var w = BeginIngest(expected, expectedSize);
        var buf = new byte[1 << 16];
        int n;
        while ((n = await source.ReadAsync(buf, ct).ConfigureAwait(false)) > 0)
            await w.WriteAsync(buf.AsMemory(0, n), ct).ConfigureAwait(false);
        await w.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Where an ingest that stages many files (an archive load) keeps them: a fresh
    /// directory under ingest, on the store's filesystem so verified files can be renamed into place.</summary>
    public string CreateStagingDirectory(string purpose)
    {
        var dir = Path.Combine(_ingest, $"{purpose}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// Publishes a fully written file from a staging directory as blob <paramref name="digest"/>: the
    /// caller has verified its content (hashed while writing it); it is fsynced and renamed into
    /// place. When the blob already exists the file is left where it is.
    /// </summary>
    public void Adopt(string stagedFile, Digest digest)
    {
        if (Exists(digest)) return;
        using (var fs = new FileStream(stagedFile, FileMode.Open, FileAccess.ReadWrite)) fs.Flush(flushToDisk: true);
        Publish(stagedFile, digest);
    }

    /// <summary>Every blob in the store (sha256 and sha512 directories); temp files are not blobs.</summary>
    public IEnumerable<Digest> ListBlobs()
    {
        foreach (var alg in new[] { "sha256", "sha512" })
        {
            var dir = Path.Combine(Root, "blobs", alg);
            if (!Directory.Exists(dir)) continue;
            foreach (var f in Directory.EnumerateFiles(dir))
                if (Digest.TryParse($"{alg}:{Path.GetFileName(f)}", out var d)) yield return d;
        }
    }

    /// <summary>Removes a blob; returns the bytes freed (0 when it was already gone).</summary>
    public long DeleteBlob(Digest digest)
    {
        var p = BlobPath(digest);
        var fi = new FileInfo(p);
        if (!fi.Exists) return 0;
        var size = fi.Length;
        try { File.Delete(p); } catch (FileNotFoundException) { return 0; }
        return size;
    }

    /// <summary>Removes temp files and staging directories of ingests; call only when no ingest can be running (GC lock held).</summary>
    public int DeleteIngestLeftovers()
    {
        if (!Directory.Exists(_ingest)) return 0;
        var n = 0;
        foreach (var f in Directory.EnumerateFiles(_ingest))
        {
            try { File.Delete(f); n++; } catch (IOException) { }
        }
        foreach (var d in Directory.EnumerateDirectories(_ingest))
        {
            try { Directory.Delete(d, recursive: true); n++; } catch (IOException) { }
        }
        return n;
    }

    internal void Publish(string tmp, Digest digest)
    {
        var dest = BlobPath(digest);
        var dir = Path.GetDirectoryName(dest)!;
        Directory.CreateDirectory(dir);
        // rename(2) replaces atomically; a concurrent ingest of the same digest wrote identical bytes.
        File.Move(tmp, dest, overwrite: true);
        FsyncDirectory(dir);
    }

    internal static void FsyncDirectory(string dir)
    {
        using var fd = Sys.Open(dir, O_RDONLY | O_DIRECTORY);
        if (fsync(fd.Value) != 0) throw SyscallException.Last("fsync", dir);
    }
}

/// <summary>
/// One ingest in progress: bytes are hashed as they are written, a write past the expected size fails
/// at once, and <see cref="CommitAsync"/> publishes the blob only when size and digest match. Disposing
/// an uncommitted writer deletes its temp file. <see cref="Offset"/> is where a resumed download
/// (HTTP Range) continues.
/// </summary>
public sealed class BlobWriter : IAsyncDisposable, IDisposable
{
    readonly ContentStore _store;
    readonly string _tmp;
    readonly FileStream _file;
    System.Security.Cryptography.IncrementalHash _hash;
    bool _committed;

    public Digest Expected { get; }
    public long ExpectedSize { get; }
    public long Offset { get; private set; }

    internal BlobWriter(ContentStore store, string tmp, Digest expected, long expectedSize)
    {
        _store = store;
        _tmp = tmp;
        Expected = expected;
        ExpectedSize = expectedSize;
        _hash = expected.CreateHasher();
        _file = new FileStream(tmp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None,
            Options = FileOptions.Asynchronous, BufferSize = 0,
        });
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        if (ExpectedSize >= 0 && Offset + data.Length > ExpectedSize)
            throw ImageException.DataLoss($"blob {Expected}: more data than its declared size {ExpectedSize}");
        _hash.AppendData(data.Span);
        await _file.WriteAsync(data, ct).ConfigureAwait(false);
        Offset += data.Length;
    }

    /// <summary>Starts over from byte 0 (a server that ignored a Range request sends the whole blob again).</summary>
    public void Restart()
    {
        if (_verified) throw new InvalidOperationException($"blob {Expected}: restarted after it was verified");
        _file.SetLength(0);
        _file.Position = 0;
        _hash.Dispose();
        _hash = Expected.CreateHasher();
        Offset = 0;
    }

    bool _verified;

    /// <summary>Checks size and digest of what was written (DataLoss when they do not match), without
    /// publishing: lets a download tell its stream's consumer the bytes are good while the fsync runs.</summary>
    public void Verify()
    {
        if (_verified) return;
        if (ExpectedSize >= 0 && Offset != ExpectedSize)
            throw ImageException.DataLoss($"blob {Expected}: got {Offset} bytes, its descriptor says {ExpectedSize}");
        var actual = Digest.FromHash(Expected.Algorithm, _hash.GetHashAndReset());
        if (actual != Expected)
            throw ImageException.DataLoss($"blob {Expected}: content has digest {actual} (corrupt or tampered)");
        _verified = true;
    }

    public async Task CommitAsync(CancellationToken ct = default)
    {
        Verify();
        await _file.FlushAsync(ct).ConfigureAwait(false);
        _file.Flush(flushToDisk: true);
        await _file.DisposeAsync().ConfigureAwait(false);
        _store.Publish(_tmp, Expected);
        _committed = true;
    }

    public async ValueTask DisposeAsync()
    {
        await _file.DisposeAsync().ConfigureAwait(false);
        Cleanup();
    }

    public void Dispose()
    {
        _file.Dispose();
        Cleanup();
    }

    void Cleanup()
    {
        _hash.Dispose();
        if (!_committed) try { File.Delete(_tmp); } catch (IOException) { }
    }
}
