using System.Text;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// A pull unpacks each layer while it downloads (the bytes go to the blob file and the unpacker in one
/// pass). What is only known at the end of a layer — its digest, whether the connection held — must
/// still decide everything: a bad blob leaves no layer snapshot, no blob, no record and no temp file;
/// a resumed download unpacks exactly the layer; a pull after a failed one succeeds.
/// </summary>
public sealed class StreamingPullTests : IDisposable
{
    readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("berth-stream-");
    public void Dispose() => _root.Delete(true);

    sealed record Puller(ImageStore Store, OverlaySnapshotter Snapshots, ImagePuller Pull);

    Puller NewPuller(string root)
    {
        var store = new ImageStore(root);
        var snapshots = new OverlaySnapshotter(root);
        var puller = new ImagePuller(store, FaultTests.Options(3));
        puller.PostPullSteps.Add(new UnpackOnPull(snapshots, 4));
        return new Puller(store, snapshots, puller);
    }

    static Task<StoredImage> PullAsync(Puller p, TinyHttpServer server) =>
        p.Pull.PullAsync(ImageReference.Parse($"{server.Host}/x:latest"), PlatformSpec.Parse("linux/amd64"), NoProgress.Instance, default);

    static void AssertNothingLeft(Puller p, string root)
    {
        Assert.Empty(p.Store.List());
        Assert.Empty(p.Store.ListNames());
        Assert.Empty(p.Store.Content.ListBlobs());
        var ingest = Path.Combine(p.Store.Root, "ingest");
        Assert.True(!Directory.Exists(ingest) || Directory.GetFileSystemEntries(ingest).Length == 0);
        Assert.Empty(p.Snapshots.Layers());
        var snapDir = Path.Combine(root, "images", "snapshots", "overlay");
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(snapDir, "tmp")));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(snapDir, "l")));
    }

    static void AssertUnpacked(Puller p, TestImage img, string root)
    {
        var chain = ChainId.Chain(ImageJson.ParseConfig(img.Blobs[img.Config.Digest]).RootFs.DiffIds);
        Assert.Equal(chain.Order(StringComparer.Ordinal), p.Snapshots.Layers());
        var baseFs = Path.Combine(root, "images", "snapshots", "overlay", "layers", chain[0][7..], "fs");
        Assert.Equal(File.ReadAllBytes("/bin/busybox"), File.ReadAllBytes(Path.Combine(baseFs, "bin", "busybox")));
        foreach (var l in img.Layers) Assert.Equal(img.Blobs[l.Digest], File.ReadAllBytes(Path.Combine(root, "images", "blobs", "sha256", l.Digest[7..])));
    }

    [Fact]
    public async Task A_digest_mismatch_found_at_the_end_of_a_streamed_layer_leaves_no_snapshot_blob_or_record()
    {
        var img = TestImage.Build("late-mismatch", extraLayerBytes: 300_000);
        var layer = img.Layers[1];
        // Byte 4 of a gzip stream is its MTIME, which decompression ignores: the layer unpacks whole,
        // to the diffID the config names, and only the blob digest, known at the end, is wrong.
        var forged = (byte[])img.Blobs[layer.Digest].Clone();
        forged[4] ^= 0x5a;
        var served = 0;
        using var server = ImageServer.Serve(img, blob: async (req, s, d) =>
        {
            if (d != layer.Digest) return false;
            Interlocked.Increment(ref served);
            await TinyHttpServer.Respond(s, 200, "OK", [], forged);
            return true;
        });
        var root = Path.Combine(_root.FullName, "a");
        var p = NewPuller(root);
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(p, server));
        Assert.Equal(ImageErrorKind.DataLoss, e.Kind);
        Assert.Contains(layer.Digest, e.Message);
        Assert.Equal(1, served);
        AssertNothingLeft(p, root);
    }

    [Fact]
    public async Task A_registry_that_drops_the_connection_mid_layer_leaves_nothing_and_a_retry_succeeds()
    {
        var img = TestImage.Build("dropped", extraLayerBytes: 400_000);
        var layer = img.Layers[1];
        var broken = true;
        using var server = ImageServer.Serve(img, blob: async (req, s, d) =>
        {
            if (d != layer.Digest || !Volatile.Read(ref broken)) return false;
            await TinyHttpServer.Respond(s, 200, "OK", [], img.Blobs[d], cutAfter: 120_000);
            throw new IOException("test closes the connection mid-layer");
        });
        var root = Path.Combine(_root.FullName, "b");
        var p = NewPuller(root);
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(p, server));
        Assert.Equal(ImageErrorKind.Unavailable, e.Kind);
        Assert.Contains(layer.Digest, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        AssertNothingLeft(p, root);

        Volatile.Write(ref broken, false);
        await PullAsync(p, server);
        AssertUnpacked(p, img, root);
    }

    [Fact]
    public async Task A_layer_resumed_after_a_cut_is_unpacked_whole_whether_or_not_the_registry_honours_Range()
    {
        foreach (var honoursRange in new[] { true, false })
        {
            var img = TestImage.Build($"resumed-{honoursRange}", extraLayerBytes: 400_000);
            var layer = img.Layers[1];
            const int cut = 150_001;
            var first = true;
            using var server = ImageServer.Serve(img, blob: async (req, s, d) =>
            {
                if (d != layer.Digest) return false;
                var data = img.Blobs[d];
                if (first)
                {
                    first = false;
                    await TinyHttpServer.Respond(s, 200, "OK", [], data, cutAfter: cut);
                    throw new IOException("cut");
                }
                Assert.Equal($"bytes={cut}-", req.Header("Range"));
                if (!honoursRange) return false; // the whole blob again, with 200
                await TinyHttpServer.Respond(s, 206, "Partial Content", [("Content-Range", $"bytes {cut}-{data.Length - 1}/{data.Length}")], data[cut..]);
                return true;
            });
            var root = Path.Combine(_root.FullName, "c" + honoursRange);
            var p = NewPuller(root);
            await PullAsync(p, server);
            AssertUnpacked(p, img, root);
            Assert.Equal(2, server.Requests.Count(r => r.Path.EndsWith(layer.Digest)));
        }
    }

    [Fact]
    public async Task A_layer_that_fails_to_unpack_stops_its_download_and_leaves_nothing()
    {
        // A valid blob (its digest matches) with a tar member that climbs out of the root.
        var bad = TestImage.Build("evil", files: [("../escape", Encoding.UTF8.GetBytes("x"))]);
        using var server = ImageServer.Serve(bad);
        var root = Path.Combine(_root.FullName, "d");
        var p = NewPuller(root);
        var e = await Assert.ThrowsAsync<ImageException>(() => PullAsync(p, server));
        Assert.Equal(ImageErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("outside", e.Message);
        AssertNothingLeft(p, root);
        Assert.Empty(Directory.GetFiles(_root.FullName, "escape", SearchOption.AllDirectories));
    }
}
