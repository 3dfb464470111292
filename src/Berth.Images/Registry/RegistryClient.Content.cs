using System.Net;
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Http.Headers;
using System.Text.Json;
using Berth.Images.Content;
using Berth.Oci.Image;

namespace Berth.Images.Registry;

/// <summary>A manifest or index as fetched: the exact bytes, their media type and digest.</summary>
public sealed record FetchedManifest(byte[] Bytes, string MediaType, Digest Digest)
{
    public Descriptor Descriptor => new() { MediaType = MediaType, Digest = Digest.ToString(), Size = Bytes.Length };
}

public sealed partial class RegistryClient
{
    static readonly string[] ManifestAccept = [MediaTypes.OciIndex, MediaTypes.DockerManifestList, MediaTypes.OciManifest, MediaTypes.DockerManifest];

    /// <summary>
    /// GET /v2/&lt;repo&gt;/manifests/&lt;tag|digest&gt;. The body's digest is computed; asked by digest, it
    /// must match; a Docker-Content-Digest header must match too. Media types other than OCI/Docker
    /// manifests and indexes are refused.
    /// </summary>
    public async Task<FetchedManifest> GetManifestAsync(string repo, string reference, CancellationToken ct)
    {
        var what = $"manifest {Registry}/{repo}:{reference}".Replace(":sha256:", "@sha256:");
        using var resp = await SendAsync(() =>
        {
            var req = new HttpRequestMessage(HttpMethod.Get, Url($"v2/{repo}/manifests/{reference}"));
            foreach (var mt in ManifestAccept) req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mt));
            return req;
        }, [PullScope(repo)], true, ct).ConfigureAwait(false);
        if (!resp.IsSuccessStatusCode) throw await ErrorAsync(resp, what).ConfigureAwait(false);
        var bytes = await ReadLimitedAsync(resp, _o.MaxManifestBytes, what, ct).ConfigureAwait(false);
        var mediaType = resp.Content.Headers.ContentType?.MediaType;
        if (mediaType is null or "application/json" or "application/octet-stream" or "text/plain")
            mediaType = SniffMediaType(bytes);
        if (!MediaTypes.IsIndex(mediaType) && !MediaTypes.IsManifest(mediaType))
            throw ImageException.Invalid($"{what}: unsupported media type \"{mediaType}\"");
        Digest digest;
        if (Digest.TryParse(reference, out var asked))
        {
            using var h = asked.CreateHasher();
            h.AppendData(bytes);
            digest = Digest.FromHash(asked.Algorithm, h.GetHashAndReset());
            if (digest != asked) throw ImageException.DataLoss($"{what}: content has digest {digest}");
        }
        else digest = Digest.Sha256(bytes);
        if (resp.Headers.TryGetValues("Docker-Content-Digest", out var dcd) && Digest.TryParse(dcd.FirstOrDefault(), out var claimed)
            && claimed.Algorithm == digest.Algorithm && claimed != digest)
            throw ImageException.DataLoss($"{what}: registry says digest {claimed}, content has {digest}");
        return new FetchedManifest(bytes, mediaType!, digest);
    }

    /// <summary>The media type a manifest without a usable Content-Type declares or implies.</summary>
    internal static string SniffMediaType(byte[] bytes)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return "unknown";
            if (doc.RootElement.TryGetProperty("mediaType", out var mt) && mt.ValueKind == JsonValueKind.String) return mt.GetString()!;
            if (doc.RootElement.TryGetProperty("manifests", out _)) return MediaTypes.OciIndex;
            if (doc.RootElement.TryGetProperty("layers", out _)) return MediaTypes.OciManifest;
            if (doc.RootElement.TryGetProperty("fsLayers", out _)) return "application/vnd.docker.distribution.manifest.v1+json";
        }
        catch (JsonException) { }
        return "unknown";
    }

    static async Task<byte[]> ReadLimitedAsync(HttpResponseMessage resp, int limit, string what, CancellationToken ct)
    {
        if (resp.Content.Headers.ContentLength > limit) throw ImageException.Invalid($"{what}: larger than {limit} bytes");
        await using var s = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var ms = new MemoryStream();
        var buf = new byte[16384];
        int n;
        while ((n = await s.ReadAsync(buf, ct).ConfigureAwait(false)) > 0)
        {
            if (ms.Length + n > limit) throw ImageException.Invalid($"{what}: larger than {limit} bytes");
            ms.Write(buf, 0, n);
        }
        return ms.ToArray();
    }

    /// <summary>HEAD /v2/&lt;repo&gt;/blobs/&lt;digest&gt;: does the repository have the blob?</summary>
    public async Task<bool> BlobExistsAsync(string repo, Digest digest, string[] scopes, CancellationToken ct)
    {
        using var resp = await SendAsync(() => new HttpRequestMessage(HttpMethod.Head, Url($"v2/{repo}/blobs/{digest}")), scopes, true, ct).ConfigureAwait(false);
        if (resp.StatusCode == HttpStatusCode.NotFound) return false;
        if (resp.IsSuccessStatusCode) return true;
        throw await ErrorAsync(resp, $"blob {digest} in {Registry}/{repo}").ConfigureAwait(false);
    }

    /// <summary>
    /// Downloads a blob into the content store. The bytes are hashed while they stream; a connection
    /// that breaks mid-blob is resumed with `Range: bytes=N-` (a registry that answers with the whole
    /// blob again, or from an earlier offset, has the bytes already held skipped), up to MaxAttempts;
    /// the blob is published only when size and digest match its descriptor.
    /// With <paramref name="tee"/> every byte is also written there once, as it arrives (the HTTP body
    /// is read straight into the pipe's memory, then written to the blob file from it): a consumer can
    /// unpack the layer during the download. The tee is completed only after the blob is verified and
    /// published, or with the download's exception; a consumer that completes its end early (it needed
    /// nothing) does not stop the download.
    /// </summary>
    public async Task FetchBlobAsync(string repo, Descriptor desc, ContentStore store, Action<long>? progress, CancellationToken ct, PipeWriter? tee = null)
    {
        var teeCompleted = false;
        try
        {
            await FetchBlobCoreAsync(repo, desc, store, progress, tee, async () =>
            {
                // Verified: the consumer may commit while the blob is fsynced and published.
                teeCompleted = true;
                await tee!.CompleteAsync().ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (tee is not null && !teeCompleted)
        {
            teeCompleted = true;
            await tee.CompleteAsync(e).ConfigureAwait(false);
            throw;
        }
        if (tee is not null && !teeCompleted) await tee.CompleteAsync().ConfigureAwait(false);
    }

    const int TeeSegment = 1 << 17;

    async Task FetchBlobCoreAsync(string repo, Descriptor desc, ContentStore store, Action<long>? progress, PipeWriter? tee, Func<Task> verified, CancellationToken ct)
    {
        var digest = Digest.Parse(desc.Digest);
        if (store.Exists(digest))
        {
            // Stored meanwhile (a concurrent pull): the consumer reads it from the store.
            if (tee is not null)
            {
                await using var f = store.OpenBlob(digest);
                await f.CopyToAsync(tee, ct).ConfigureAwait(false);
            }
            return;
        }
        var what = $"blob {digest} of {Registry}/{repo}";
        await using var writer = store.BeginIngest(digest, desc.Size);
        var buf = new byte[TeeSegment];
        var teeOpen = tee is not null;
        for (var attempt = 1; ; attempt++)
        {
            var offset = writer.Offset;
            using var resp = await SendAsync(() =>
            {
                var req = new HttpRequestMessage(HttpMethod.Get, Url($"v2/{repo}/blobs/{digest}"));
                if (offset > 0) req.Headers.Range = new RangeHeaderValue(offset, null);
                return req;
            }, [PullScope(repo)], true, ct).ConfigureAwait(false);
            // Bytes of this answer that were already received (and written, and teed): skipped.
            long skip = 0;
            if (resp.StatusCode == HttpStatusCode.PartialContent && offset > 0)
            {
                var from = resp.Content.Headers.ContentRange?.From ?? offset;
                if (from > offset) throw ImageException.Unavailable($"{what}: asked for bytes from {offset}, the registry sent from {from}");
                skip = offset - from;
            }
            else if (resp.StatusCode == HttpStatusCode.OK) skip = offset;
            else throw await ErrorAsync(resp, what).ConfigureAwait(false);
            progress?.Invoke(writer.Offset);
            try
            {
                await using var s = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                while (true)
                {
                    // Straight into the tee's memory when nothing is to be skipped: one copy only.
                    var direct = teeOpen && skip == 0;
                    var mem = direct ? tee!.GetMemory(TeeSegment) : buf;
                    var n = await s.ReadAsync(mem, ct).ConfigureAwait(false);
                    if (n == 0) break;
                    var data = mem[..n];
                    if (skip > 0)
                    {
                        var k = (int)Math.Min(skip, n);
                        skip -= k;
                        data = data[k..];
                        if (data.IsEmpty) continue;
                    }
                    await writer.WriteAsync(data, ct).ConfigureAwait(false);
                    if (teeOpen)
                    {
                        if (direct) tee!.Advance(n);
                        else tee!.Write(data.Span);
                        if ((await tee!.FlushAsync(ct).ConfigureAwait(false)).IsCompleted) teeOpen = false;
                    }
                    progress?.Invoke(writer.Offset);
                }
            }
            catch (Exception e) when (e is IOException or HttpRequestException && !ct.IsCancellationRequested)
            {
                if (attempt >= _o.MaxAttempts)
                    throw ImageException.Unavailable($"{what}: connection broke after {writer.Offset} of {desc.Size} bytes ({attempt} tries): {Describe(e)}", e);
                await Task.Delay(Backoff(attempt, null), ct).ConfigureAwait(false);
                continue;
            }
            if (writer.Offset < desc.Size && attempt < _o.MaxAttempts)
            {
                // The body ended early without an error (a proxy or server closed cleanly): resume.
                await Task.Delay(Backoff(attempt, null), ct).ConfigureAwait(false);
                continue;
            }
            break;
        }
        writer.Verify();
        if (tee is not null) await verified().ConfigureAwait(false);
        await writer.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>How a blob reached the registry in a push.</summary>
    public enum PushOutcome { Exists, Mounted, Uploaded }

    /// <summary>
    /// Pushes one blob from the content store: HEAD first (already there), then a cross-repository
    /// mount from each of <paramref name="mountFrom"/> (same registry), else an upload: one PUT, or
    /// PATCH chunks of ChunkSize followed by a closing PUT. A failed upload is restarted from scratch.
    /// </summary>
    public async Task<PushOutcome> PushBlobAsync(string repo, Descriptor desc, ContentStore store, IReadOnlyList<string> mountFrom, Action<long>? progress, CancellationToken ct)
    {
        var digest = Digest.Parse(desc.Digest);
        var what = $"blob {digest} to {Registry}/{repo}";
        if (!store.Exists(digest)) throw ImageException.NotFound($"{what}: not in the content store");
        string[] scopes = [PushScope(repo), .. mountFrom.Select(PullScope)];
        if (await BlobExistsAsync(repo, digest, scopes, ct).ConfigureAwait(false)) return PushOutcome.Exists;
        Uri? location = null;
        foreach (var from in mountFrom)
        {
            using var resp = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post,
                Url($"v2/{repo}/blobs/uploads/?mount={Uri.EscapeDataString(digest.ToString())}&from={Uri.EscapeDataString(from)}")), scopes, true, ct).ConfigureAwait(false);
            if (resp.StatusCode == HttpStatusCode.Created) return PushOutcome.Mounted;
            if (resp.StatusCode == HttpStatusCode.Accepted) { location = LocationOf(resp); break; }
            // a registry that refuses mounts: upload instead
        }
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                location ??= await StartUploadAsync(repo, scopes, what, ct).ConfigureAwait(false);
                if (_o.ChunkSize > 0 && desc.Size > _o.ChunkSize)
                    await UploadChunkedAsync(repo, location, digest, desc.Size, store, scopes, what, progress, ct).ConfigureAwait(false);
                else
                    await UploadMonolithicAsync(location, digest, desc.Size, store, scopes, what, progress, ct).ConfigureAwait(false);
                return PushOutcome.Uploaded;
            }
            catch (ImageException e) when (e.Kind == ImageErrorKind.Unavailable && attempt < _o.MaxAttempts && !ct.IsCancellationRequested)
            {
                location = null;
                await Task.Delay(Backoff(attempt, null), ct).ConfigureAwait(false);
            }
        }
    }

    async Task<Uri> StartUploadAsync(string repo, string[] scopes, string what, CancellationToken ct)
    {
        using var resp = await SendAsync(() => new HttpRequestMessage(HttpMethod.Post, Url($"v2/{repo}/blobs/uploads/")), scopes, true, ct).ConfigureAwait(false);
        if (resp.StatusCode != HttpStatusCode.Accepted) throw await ErrorAsync(resp, what).ConfigureAwait(false);
        return LocationOf(resp);
    }

    Uri LocationOf(HttpResponseMessage resp)
    {
        var loc = resp.Headers.Location ?? throw ImageException.Unavailable($"registry {Registry}: upload answer without a Location");
        return loc.IsAbsoluteUri ? loc : new Uri(resp.RequestMessage?.RequestUri ?? _base!, loc);
    }

    static Uri WithQuery(Uri u, string query)
    {
        var ub = new UriBuilder(u);
        ub.Query = string.IsNullOrEmpty(ub.Query) || ub.Query == "?" ? query : ub.Query.TrimStart('?') + "&" + query;
        return ub.Uri;
    }

    async Task UploadMonolithicAsync(Uri location, Digest digest, long size, ContentStore store, string[] scopes, string what, Action<long>? progress, CancellationToken ct)
    {
        var target = WithQuery(location, "digest=" + Uri.EscapeDataString(digest.ToString()));
        using var resp = await SendAsync(() =>
        {
            var content = new ProgressStreamContent(store.OpenBlob(digest), 0, size, progress);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Headers.ContentLength = size;
            return new HttpRequestMessage(HttpMethod.Put, target) { Content = content };
        }, scopes, false, ct).ConfigureAwait(false);
        if (resp.StatusCode != HttpStatusCode.Created) throw await ErrorAsync(resp, what).ConfigureAwait(false);
    }

    async Task UploadChunkedAsync(string repo, Uri location, Digest digest, long size, ContentStore store, string[] scopes, string what, Action<long>? progress, CancellationToken ct)
    {
        for (long off = 0; off < size; off += _o.ChunkSize)
        {
            var len = Math.Min(_o.ChunkSize, size - off);
            var at = location;
            var start = off;
            using var resp = await SendAsync(() =>
            {
                var content = new ProgressStreamContent(store.OpenBlob(digest), start, len, progress);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                content.Headers.ContentLength = len;
                var req = new HttpRequestMessage(HttpMethod.Patch, at) { Content = content };
                // distribution-spec: Content-Range: <start>-<end> (inclusive, no unit)
                req.Content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + len - 1}");
                return req;
            }, scopes, false, ct).ConfigureAwait(false);
            if (resp.StatusCode != HttpStatusCode.Accepted) throw await ErrorAsync(resp, $"{what} (chunk at {start})").ConfigureAwait(false);
            location = LocationOf(resp);
        }
        var final = WithQuery(location, "digest=" + Uri.EscapeDataString(digest.ToString()));
        using var done = await SendAsync(() => new HttpRequestMessage(HttpMethod.Put, final) { Content = new ByteArrayContent([]) }, scopes, false, ct).ConfigureAwait(false);
        if (done.StatusCode != HttpStatusCode.Created) throw await ErrorAsync(done, what).ConfigureAwait(false);
    }

    /// <summary>PUT /v2/&lt;repo&gt;/manifests/&lt;tag|digest&gt; with the exact bytes and their media type.</summary>
    public async Task PutManifestAsync(string repo, string reference, byte[] bytes, string mediaType, CancellationToken ct)
    {
        using var resp = await SendAsync(() =>
        {
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
            return new HttpRequestMessage(HttpMethod.Put, Url($"v2/{repo}/manifests/{reference}")) { Content = content };
        }, [PushScope(repo)], true, ct).ConfigureAwait(false);
        if (resp.StatusCode != HttpStatusCode.Created)
            throw await ErrorAsync(resp, $"manifest {Registry}/{repo}:{reference}").ConfigureAwait(false);
    }
}

/// <summary>Streams a slice of a blob file as a request body, reporting bytes sent.</summary>
sealed class ProgressStreamContent(Stream file, long start, long length, Action<long>? progress) : HttpContent
{
    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken ct)
    {
        file.Seek(start, SeekOrigin.Begin);
        var buf = new byte[1 << 17];
        long left = length;
        while (left > 0)
        {
            var n = await file.ReadAsync(buf.AsMemory(0, (int)Math.Min(buf.Length, left)), ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("blob file ended early");
            await stream.WriteAsync(buf.AsMemory(0, n), ct).ConfigureAwait(false);
            left -= n;
            progress?.Invoke(start + length - left);
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);
    protected override bool TryComputeLength(out long len) { len = length; return true; }
    protected override void Dispose(bool disposing) { if (disposing) file.Dispose(); base.Dispose(disposing); }
}
