using System.Text;
using Berth.Images.Snapshots;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Registry;

/// <summary>`berth pull` unpacks the layers into snapshots; `rmi` removes the layers no image needs;
/// a layer whose content does not match the config's diffID fails the pull and leaves nothing (no
/// record, blob or layer: the pull is atomic).</summary>
public sealed class UnpackOnPullTests(RegistryFixture fx) : IClassFixture<RegistryFixture>, IDisposable
{
    readonly BerthCli _berth = new();
    public void Dispose() => _berth.Dispose();

    string SnapshotDir => Path.Combine(_berth.Root, "images", "snapshots", File.ReadAllText(Path.Combine(_berth.Root, "images", "snapshots", "driver")).Trim());
    string[] LayerDirs() => Directory.Exists(Path.Combine(SnapshotDir, "layers")) ? Directory.GetDirectories(Path.Combine(SnapshotDir, "layers")).Select(Path.GetFileName).Order().ToArray()! : [];

    [Fact]
    public void Pull_unpacks_every_layer_once_and_rmi_removes_them()
    {
        var img = TestImage.Build("unpack-on-pull", extraLayerBytes: 4096);
        var name = $"{fx.Host}/unpack/pull:v1";
        Skopeo.PushLayout(img, name);
        _berth.Ok("pull", "-q", "--tls-verify=false", name);

        var config = ImageJson.ParseConfig(img.Blobs[img.Config.Digest]);
        var chain = ChainId.Chain(config.RootFs.DiffIds);
        Assert.Equal(chain.Select(c => c[7..]).Order().ToArray(), LayerDirs());
        // the base layer holds busybox and the marker, byte for byte
        var baseFs = Path.Combine(SnapshotDir, "layers", chain[0][7..], "fs");
        Assert.Equal(File.ReadAllBytes("/bin/busybox"), File.ReadAllBytes(Path.Combine(baseFs, "bin", "busybox")));
        Assert.Equal("unpack-on-pull", File.ReadAllText(Path.Combine(baseFs, "etc", "marker")));

        // a second name for the same image keeps the layers; removing the last name removes them
        _berth.Ok("tag", name, $"{fx.Host}/unpack/other:v1");
        _berth.Ok("rmi", name);
        Assert.Equal(chain.Count, LayerDirs().Length);
        _berth.Ok("rmi", $"{fx.Host}/unpack/other:v1");
        Assert.Empty(LayerDirs());
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(SnapshotDir, "tmp")));
    }

    [Fact]
    public void A_layer_that_does_not_match_its_diff_id_fails_the_pull_and_leaves_no_image_or_layer()
    {
        var layer = TestImage.Layer([("etc/marker", Encoding.UTF8.GetBytes("liar"))], withBusybox: false);
        var layout = Path.Combine(_berth.Root, "..", "bad-layout-" + Guid.NewGuid().ToString("N")[..8]);
        var blobs = Path.Combine(layout, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        string Put(byte[] b) { var d = Digest.Sha256(b).ToString(); File.WriteAllBytes(Path.Combine(blobs, d[7..]), b); return d; }
        try
        {
            var config = ImageJson.Serialize(new ImageConfigFile
            {
                Architecture = "amd64", Os = "linux",
                RootFs = new RootFs { DiffIds = [Digest.Sha256("not the layer"u8).ToString()] },
            });
            var manifest = ImageJson.Serialize(new Manifest
            {
                MediaType = MediaTypes.OciManifest,
                Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Put(config), Size = config.Length },
                Layers = [new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Put(layer), Size = layer.Length }],
            });
            File.WriteAllBytes(Path.Combine(layout, "index.json"), ImageJson.Serialize(new ImageIndex
            {
                MediaType = MediaTypes.OciIndex,
                Manifests = [new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Put(manifest), Size = manifest.Length, Annotations = new() { ["org.opencontainers.image.ref.name"] = "v1" } }],
            }));
            File.WriteAllText(Path.Combine(layout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
            var name = $"{fx.Host}/unpack/liar:v1";
            Skopeo.Ok("copy", "-q", "--dest-tls-verify=false", $"oci:{layout}:v1", $"docker://{name}");

            var err = _berth.Fails("pull", "-q", "--tls-verify=false", name);
            Assert.Contains("diff", err, StringComparison.OrdinalIgnoreCase);
            Assert.Single(err.Trim().Split('\n'));
            Assert.Equal("", _berth.Ok("images", "-q", name).Trim());
            // atomic: no unnamed image record waiting for prune, no blob that nothing references
            Assert.Equal("", _berth.Ok("images", "-q").Trim());
            foreach (var sub in new[] { "records", "blobs/sha256", "ingest" })
            {
                var d = Path.Combine(_berth.Root, "images", sub);
                Assert.True(!Directory.Exists(d) || Directory.GetFileSystemEntries(d).Length == 0, sub);
            }
            Assert.Empty(LayerDirs());
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(SnapshotDir, "tmp")));
        }
        finally { Directory.Delete(layout, recursive: true); }
    }
}
