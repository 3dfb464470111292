using System.Text;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// Pulls against an in-test HTTP server that misbehaves on purpose: 404/401/429/500, a blob with the
/// wrong content, a connection closed mid-blob (resumed with Range), unknown media types. Each must
/// fail with one clear error and leave no record, no name and no temp file, or recover exactly.
/// </summary>
public sealed class FaultTests : IDisposable
{
    readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("berth-faults-");
    public void Dispose() => _root.Delete(true);

    internal static RegistryOptions Options(int attempts = 4) => new()
    {
        TlsVerify = false, MaxAttempts = attempts, BackoffBase = TimeSpan.FromMilliseconds(10),
        AuthFile = new AuthFile("/nonexistent/berth-test-auth.json"), InsecureRegistries = new HashSet<string>(),
    };

    ImageStore Store() => new(_root.FullName);
    ImageStore? _lastStore;

    static TinyHttpServer Serve(TestImage img, Func<HttpRequestInfo, Stream, string, Task<bool>>? blob = null, Func<HttpRequestInfo, Stream, Task<bool>>? manifest = null) =>
        ImageServer.Serve(img, blob, manifest);

    static void AssertNothingHalfMade(ImageStore store)
    {
        Assert.Empty(store.List());
        Assert.Empty(store.ListNames());
        var ingest = Path.Combine(store.Root, "ingest");
        Assert.True(!Directory.Exists(ingest) || Directory.GetFiles(ingest).Length == 0);
    }

    async Task<ImageException> PullFails(TinyHttpServer server, string tag = "latest", PlatformSpec? platform = null)
    {
        var store = _lastStore = new ImageStore(Path.Combine(_root.FullName, Guid.NewGuid().ToString("N")));
        var e = await Assert.ThrowsAsync<ImageException>(() =>
            new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x:{tag}"), platform ?? PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default));
        Assert.DoesNotContain('\n', e.Message);
        AssertNothingHalfMade(store);
        return e;
    }

    [Fact]
    public async Task A_good_pull_over_plain_http_records_the_image()
    {
        var img = TestImage.Build("good");
        using var server = Serve(img);
        var store = Store();
        var pulled = await new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
        Assert.Equal(img.Manifest.Digest, pulled.Record.Target.Digest);
        Assert.Equal(img.Config.Digest, pulled.Id);
        foreach (var (d, data) in img.Blobs) Assert.Equal(data, await store.Content.ReadBlobAsync(Digest.Parse(d)));
        // the tag, and the repository digest the registry served (dockerd's RepoDigests)
        Assert.Equal([$"{server.Host}/x:latest", $"{server.Host}/x@{img.Manifest.Digest}"], Assert.Single(store.List()).Names.Select(n => n.ToString()));
    }

    [Fact]
    public async Task Unknown_manifest_is_NotFound()
    {
        using var server = ImageServer.Serve(TestImage.Build("nf"), tags: ["latest"]);
        var e = await PullFails(server, "nosuchtag");
        Assert.Equal(ImageErrorKind.NotFound, e.Kind);
        Assert.Contains("MANIFEST_UNKNOWN", e.Message);
        Assert.Contains("nosuchtag", e.Message);
    }

    [Fact]
    public async Task Registry_asking_for_basic_auth_without_credentials_is_Unauthorized()
    {
        using var server = new TinyHttpServer(async (req, s) =>
        {
            await TinyHttpServer.Json(s, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}", ("WWW-Authenticate", "Basic realm=\"test\""));
            return true;
        });
        var e = await PullFails(server);
        Assert.Equal(ImageErrorKind.Unauthorized, e.Kind);
        Assert.Contains("401", e.Message);
    }

    [Fact]
    public async Task Persistent_500_fails_after_retries_and_429_then_ok_succeeds()
    {
        var img = TestImage.Build("r");
        var fails = 0;
        using (var server = Serve(img, manifest: async (req, s) => { fails++; await TinyHttpServer.Json(s, 500, "{}"); return true; }))
        {
            var e = await PullFails(server);
            Assert.Equal(ImageErrorKind.Unavailable, e.Kind);
            Assert.Contains("500", e.Message);
            Assert.Equal(4, fails); // MaxAttempts
        }
        var throttled = 0;
        using (var server = Serve(img, blob: async (req, s, d) =>
               {
                   if (d != img.Layers[0].Digest || throttled++ >= 2) return false;
                   await TinyHttpServer.Respond(s, 429, "Too Many Requests", [("Retry-After", "0")]);
                   return true;
               }))
        {
            var store = Store();
            await new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
            Assert.Equal(3, throttled);
            Assert.True(store.Content.Exists(Digest.Parse(img.Layers[0].Digest)));
        }
    }

    [Fact]
    public async Task Blob_with_wrong_content_is_refused()
    {
        var img = TestImage.Build("wrong");
        var layer = img.Layers[0].Digest;
        using var server = Serve(img, blob: async (req, s, d) =>
        {
            if (d != layer) return false;
            var data = (byte[])img.Blobs[d].Clone();
            data[data.Length / 2] ^= 0xff; // same size, different digest
            await TinyHttpServer.Respond(s, 200, "OK", [], data);
            return true;
        });
        var e = await PullFails(server);
        Assert.Equal(ImageErrorKind.DataLoss, e.Kind);
        Assert.Contains(layer, e.Message);
        Assert.False(_lastStore!.Content.Exists(Digest.Parse(layer)));
    }

    [Fact]
    public async Task Blob_larger_than_its_descriptor_is_refused()
    {
        var img = TestImage.Build("big");
        var layer = img.Layers[0].Digest;
        using var server = Serve(img, blob: async (req, s, d) =>
        {
            if (d != layer) return false;
            await TinyHttpServer.Respond(s, 200, "OK", [], [.. img.Blobs[d], 1, 2, 3]);
            return true;
        });
        var e = await PullFails(server);
        Assert.Equal(ImageErrorKind.DataLoss, e.Kind);
        Assert.Contains("declared size", e.Message);
    }

    [Fact]
    public async Task Connection_closed_mid_blob_is_resumed_with_Range()
    {
        var img = TestImage.Build("resume", extraLayerBytes: 400_000);
        var layer = img.Layers[1];
        var cut = 150_000;
        var first = true;
        using var server = Serve(img, blob: async (req, s, d) =>
        {
            if (d != layer.Digest) return false;
            var data = img.Blobs[d];
            if (first)
            {
                first = false;
                await TinyHttpServer.Respond(s, 200, "OK", [], data, cutAfter: cut);
                throw new IOException("test closes the connection mid-blob");
            }
            var range = req.Header("Range");
            Assert.Equal($"bytes={cut}-", range);
            var rest = data[cut..];
            await TinyHttpServer.Respond(s, 206, "Partial Content", [("Content-Range", $"bytes {cut}-{data.Length - 1}/{data.Length}")], rest);
            return true;
        });
        var store = Store();
        await new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
        Assert.Equal(img.Blobs[layer.Digest], await store.Content.ReadBlobAsync(Digest.Parse(layer.Digest)));
        Assert.Equal(2, server.Requests.Count(r => r.Path.EndsWith(layer.Digest)));
    }

    [Fact]
    public async Task Server_that_ignores_Range_restarts_the_blob()
    {
        var img = TestImage.Build("norange", extraLayerBytes: 200_000);
        var layer = img.Layers[1];
        var first = true;
        using var server = Serve(img, blob: async (req, s, d) =>
        {
            if (d != layer.Digest || !first) return false; // second try: full 200 despite Range
            first = false;
            await TinyHttpServer.Respond(s, 200, "OK", [], img.Blobs[d], cutAfter: 70_000);
            throw new IOException("cut");
        });
        var store = Store();
        await new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
        Assert.Equal(img.Blobs[layer.Digest], await store.Content.ReadBlobAsync(Digest.Parse(layer.Digest)));
    }

    [Fact]
    public async Task Connection_closed_every_time_gives_up_cleanly()
    {
        var img = TestImage.Build("dead", extraLayerBytes: 100_000);
        var layer = img.Layers[1];
        using var server = Serve(img, blob: async (req, s, d) =>
        {
            if (d != layer.Digest) return false;
            await TinyHttpServer.Respond(s, 200, "OK", [], img.Blobs[d], cutAfter: 1000);
            throw new IOException("cut");
        });
        var e = await PullFails(server);
        Assert.Equal(ImageErrorKind.Unavailable, e.Kind);
        Assert.Contains(layer.Digest, e.Message);
    }

    [Fact]
    public async Task Unknown_layer_media_type_is_refused()
    {
        var img = TestImage.Build("mt");
        var m = ImageJson.ParseManifest(img.ManifestBytes);
        m.Layers[0].MediaType = "application/vnd.example.weird+tar";
        var bytes = ImageJson.Serialize(m);
        using var server = Serve(img, manifest: async (req, s) =>
        {
            await TinyHttpServer.Respond(s, 200, "OK", [("Content-Type", MediaTypes.OciManifest)], bytes);
            return true;
        });
        var e = await PullFails(server);
        Assert.Equal(ImageErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("application/vnd.example.weird+tar", e.Message);
    }

    [Fact]
    public async Task Schema1_and_unknown_manifest_types_are_refused()
    {
        using var server = Serve(TestImage.Build("s1"), manifest: async (req, s) =>
        {
            await TinyHttpServer.Respond(s, 200, "OK", [("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")], Encoding.UTF8.GetBytes("{\"schemaVersion\":1,\"fsLayers\":[]}"));
            return true;
        });
        var e = await PullFails(server);
        Assert.Equal(ImageErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("manifest.v1+prettyjws", e.Message);
    }

    [Fact]
    public async Task Manifest_by_digest_with_other_content_is_refused()
    {
        var img = TestImage.Build("md");
        var other = TestImage.Build("other");
        using var server = Serve(img, manifest: async (req, s) =>
        {
            await TinyHttpServer.Respond(s, 200, "OK", [("Content-Type", MediaTypes.OciManifest)], other.ManifestBytes);
            return true;
        });
        var e = await PullFails(server, "latest@" + img.Manifest.Digest);
        Assert.Equal(ImageErrorKind.DataLoss, e.Kind);
    }

    [Fact]
    public async Task Index_picks_the_platform_and_names_what_it_has()
    {
        var img = TestImage.BuildMultiPlatform("multi");
        using var server = Serve(img);
        var store = Store();
        var amd = await new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
        Assert.Equal(img.PlatformManifests["linux/amd64"].Digest, amd.Record.Manifest.Digest);
        Assert.Equal(img.Index!.Digest, amd.Record.Target.Digest);
        Assert.Equal("amd64", amd.Record.Architecture);
        var store2 = new ImageStore(Path.Combine(_root.FullName, "second"));
        var arm = await new ImagePuller(store2, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/arm64/v8"), NoProgress.Instance, default);
        Assert.Equal(img.PlatformManifests["linux/arm64"].Digest, arm.Record.Manifest.Digest);
        Assert.Equal("arm64", arm.Record.Architecture);
        var e = await PullFails(server, platform: PlatformSpec.Parse("linux/s390x"));
        Assert.Equal(ImageErrorKind.NotFound, e.Kind);
        Assert.Contains("linux/amd64", e.Message);
        Assert.Contains("linux/arm64", e.Message);
    }

    [Fact]
    public async Task Layers_download_in_parallel()
    {
        var img = TestImage.Build("parallel", extraLayerBytes: 10_000, extraLayers: 4);
        int inFlight = 0, maxInFlight = 0;
        using var server = Serve(img, blob: async (req, s, d) =>
        {
            if (!img.Layers.Any(l => l.Digest == d)) return false;
            var now = Interlocked.Increment(ref inFlight);
            lock (img) maxInFlight = Math.Max(maxInFlight, now);
            await Task.Delay(300);
            Interlocked.Decrement(ref inFlight);
            await TinyHttpServer.Respond(s, 200, "OK", [], img.Blobs[d]);
            return true;
        });
        var store = Store();
        await new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
        Assert.Equal(5, img.Layers.Count);
        Assert.Equal(4, maxInFlight); // RegistryOptions.Parallelism
    }

    [Fact]
    public async Task Open_ping_but_protected_repository_authenticates_on_the_401()
    {
        var img = TestImage.Build("late-auth");
        const string good = "Basic " + "dTpw"; // u:p
        var inner = Serve(img);
        using var server = new TinyHttpServer(async (req, s) =>
        {
            if (req.Path != "/v2/" && req.Header("Authorization") != good)
            {
                await TinyHttpServer.Json(s, 401, "{}", ("WWW-Authenticate", "Basic realm=\"r\""));
                return true;
            }
            // forward to the plain image server's logic
            using var http = new HttpClient();
            using var m = new HttpRequestMessage(new HttpMethod(req.Method), $"http://{inner.Host}{req.Target}");
            using var r = await http.SendAsync(m);
            var body = await r.Content.ReadAsByteArrayAsync();
            await TinyHttpServer.Respond(s, (int)r.StatusCode, "X", r.Content.Headers.ContentType is { } ct ? [("Content-Type", ct.ToString())] : [], body);
            return true;
        });
        using (inner)
        {
            var e = await PullFails(server);
            Assert.Equal(ImageErrorKind.Unauthorized, e.Kind);
            var store = Store();
            var opts = new RegistryOptions { TlsVerify = false, Credentials = new RegistryCredentials("u", "p"), BackoffBase = TimeSpan.FromMilliseconds(10) };
            var pulled = await new ImagePuller(store, opts).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
            Assert.Equal(img.Manifest.Digest, pulled.Record.Target.Digest);
        }
    }

    [Theory]
    [InlineData(MediaTypes.OciLayerZstd)]
    [InlineData(MediaTypes.OciLayer)]
    [InlineData(MediaTypes.DockerLayerGzip)]
    public async Task Zstd_uncompressed_and_docker_layer_types_are_fetched(string mediaType)
    {
        var img = TestImage.Build("types-" + mediaType);
        var m = ImageJson.ParseManifest(img.ManifestBytes);
        m.Layers[0].MediaType = mediaType; // the pull stores blobs; decompression is the unpacker's
        var bytes = ImageJson.Serialize(m);
        using var server = Serve(img, manifest: async (req, s) =>
        {
            await TinyHttpServer.Respond(s, 200, "OK", [("Content-Type", MediaTypes.OciManifest)], bytes);
            return true;
        });
        var store = Store();
        var pulled = await new ImagePuller(store, Options()).PullAsync(ImageReference.Parse($"{server.Host}/x"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);
        Assert.Equal(Digest.Sha256(bytes).ToString(), pulled.Record.Target.Digest);
        Assert.True(store.Content.Exists(Digest.Parse(m.Layers[0].Digest)));
    }
}
