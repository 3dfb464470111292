using Berth.Images.Snapshots;
using Berth.Images.Tests.Support;
using Berth.Images.Unpack;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Snapshots;

public class ImageUnpackerTests : IDisposable
{
    readonly TempDir _t = new();
    public void Dispose() => _t.Dispose();

    static (ImageConfigFile, List<Descriptor>, Dictionary<string, byte[]>) Image(int n, Func<int, byte[]>? blobOverride = null)
    {
        var config = new ImageConfigFile { Architecture = "amd64", Os = "linux" };
        var descs = new List<Descriptor>();
        var blobs = new Dictionary<string, byte[]>();
        for (var i = 0; i < n; i++)
        {
            var tar = new TarBuilder().File($"l{i}", i.ToString()).Build();
            var gz = blobOverride?.Invoke(i) ?? TarBuilder.Gzip(tar);
            var d = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(gz));
            config.RootFs.DiffIds.Add(TarBuilder.DiffId(tar));
            descs.Add(new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = d, Size = gz.Length });
            blobs[d] = gz;
        }
        return (config, descs, blobs);
    }

    [Fact]
    public async Task Overlay_layers_unpack_concurrently_and_present_ones_are_not_opened()
    {
        var s = new OverlaySnapshotter(_t.Root);
        var (config, descs, blobs) = Image(3);
        // Layer 0's stream is held back until layer 2 has been opened: a sequential unpacker would deadlock.
        var layer2Opened = new TaskCompletionSource();
        var opened = new List<string>();
        async Task<Stream> Open(Descriptor d, CancellationToken ct)
        {
            lock (opened) opened.Add(d.Digest);
            if (d.Digest == descs[2].Digest) layer2Opened.SetResult();
            if (d.Digest == descs[0].Digest) await layer2Opened.Task.WaitAsync(TimeSpan.FromSeconds(20), ct);
            return new MemoryStream(blobs[d.Digest]);
        }
        var chain = await ImageUnpacker.UnpackAsync(s, config, descs, Open, 4, default);
        Assert.Equal(ChainId.Chain(config.RootFs.DiffIds), chain);
        Assert.All(chain, c => Assert.True(s.HasLayer(c)));
        opened.Clear();
        await ImageUnpacker.UnpackAsync(s, config, descs, Open, 4, default);
        Assert.Empty(opened);
    }

    [Fact]
    public async Task Copy_layers_unpack_in_order()
    {
        var s = new CopySnapshotter(_t.Root);
        var (config, descs, blobs) = Image(3);
        var chain = await ImageUnpacker.UnpackAsync(s, config, descs, (d, _) => Task.FromResult<Stream>(new MemoryStream(blobs[d.Digest])), 4, default);
        Assert.True(File.Exists(Path.Combine(_t.Root, "images/snapshots/copy/layers", chain[2][7..], "fs/l0")));
    }

    [Fact]
    public async Task A_bad_layer_fails_the_image_with_its_own_error_and_no_top_layer()
    {
        var s = new OverlaySnapshotter(_t.Root);
        var (config, descs, blobs) = Image(3, i => i == 1 ? TarBuilder.Gzip(new TarBuilder().File("other", "x").Build()) : null!);
        var e = await Assert.ThrowsAsync<LayerException>(() => ImageUnpacker.UnpackAsync(s, config, descs, (d, _) => Task.FromResult<Stream>(new MemoryStream(blobs[d.Digest])), 4, default));
        Assert.Contains("diffID mismatch", e.Message);
        Assert.False(s.HasLayer(ChainId.Chain(config.RootFs.DiffIds)[1]));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_t.Root, "images/snapshots/overlay/tmp")));
    }

    [Fact]
    public async Task Mismatched_manifests_and_unknown_media_types_are_refused()
    {
        var s = new OverlaySnapshotter(_t.Root);
        var (config, descs, blobs) = Image(2);
        Task<Stream> Open(Descriptor d, CancellationToken _) => Task.FromResult<Stream>(new MemoryStream(blobs[d.Digest]));
        var e = await Assert.ThrowsAsync<LayerException>(() => ImageUnpacker.UnpackAsync(s, config, descs.Take(1).ToList(), Open, 2, default));
        Assert.Contains("1 layers but the image config lists 2", e.Message);
        descs[1].MediaType = "application/vnd.example.unknown";
        e = await Assert.ThrowsAsync<LayerException>(() => ImageUnpacker.UnpackAsync(s, config, descs, Open, 2, default));
        Assert.Contains("unknown media type", e.Message);
        Assert.Empty(s.Layers());
    }
}
