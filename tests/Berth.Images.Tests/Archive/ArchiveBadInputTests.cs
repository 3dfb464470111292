using System.Text;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Archive;

/// <summary>
/// Hostile and broken archives: each `berth load` fails with one `berth:` line and a non-zero exit,
/// and leaves no image, name, blob, staging file or layer snapshot behind; nothing is written outside
/// the store.
/// </summary>
public sealed class ArchiveBadInputTests : IDisposable
{
    readonly BerthCli _berth = new();
    readonly TempDir _tmp = new();
    public void Dispose() { _berth.Dispose(); _tmp.Dispose(); }

    static readonly byte[] LayerTar = new TarBuilder().Dir("etc/").File("etc/hello", "hi").Build();

    static byte[] Config(params string[] diffIds) => ImageJson.Serialize(new ImageConfigFile
    {
        Architecture = "amd64", Os = "linux", RootFs = new RootFs { DiffIds = [.. diffIds] },
    });

    /// <summary>A docker-archive whose members can be replaced or added to.</summary>
    static byte[] DockerArchive(Action<TarBuilder>? extra = null, string? manifestJson = null, byte[]? layer = null, bool withConfig = true)
    {
        var l = layer ?? LayerTar;
        var config = Config(TarBuilder.DiffId(LayerTar));
        var configName = Digest.Sha256(config).Encoded + ".json";
        var t = new TarBuilder().Dir("abc/").File("abc/layer.tar", l);
        if (withConfig) t.File(configName, config);
        extra?.Invoke(t);
        t.File("manifest.json", manifestJson ?? $"[{{\"Config\":\"{configName}\",\"RepoTags\":[\"localhost/bad:1\"],\"Layers\":[\"abc/layer.tar\"]}}]");
        return t.Build();
    }

    string Load(byte[] archive)
    {
        var file = Path.Combine(_tmp.Outer, "archive.tar");
        File.WriteAllBytes(file, archive);
        var line = _berth.Fails("load", "-i", file);
        File.Delete(file);
        AssertNothingLeft();
        return line;
    }

    void AssertNothingLeft()
    {
        Assert.Equal("", _berth.Ok("images", "-q"));
        var images = Path.Combine(_berth.Root, "images");
        foreach (var sub in new[] { "blobs/sha256", "records", "names", "ingest" })
        {
            var d = Path.Combine(images, sub);
            Assert.True(!Directory.Exists(d) || !Directory.EnumerateFileSystemEntries(d).Any(), $"{sub} is not empty: {string.Join(", ", Directory.Exists(d) ? Directory.GetFileSystemEntries(d) : [])}");
        }
        var snapshots = Path.Combine(images, "snapshots");
        if (Directory.Exists(snapshots))
            foreach (var layers in Directory.GetDirectories(snapshots, "layers", SearchOption.AllDirectories))
                Assert.Empty(Directory.GetDirectories(layers));
        Assert.Equal(["root"], _tmp.OuterEntries());
    }

    [Fact]
    public void A_well_formed_archive_loads_so_the_cases_below_fail_for_their_own_reason()
    {
        var file = Path.Combine(_tmp.Outer, "good.tar");
        File.WriteAllBytes(file, DockerArchive());
        Assert.Equal("Loaded image: localhost/bad:1\n", _berth.Ok("load", "-i", file));
    }

    [Fact]
    public void Entries_outside_the_archive_are_refused()
    {
        Assert.Contains("outside the archive", Load(DockerArchive(t => t.File("../escape", "x"))));
        Assert.Contains("outside the archive", Load(DockerArchive(t => t.RawHeader("/abs/path", '0', "x"u8.ToArray()))));
        Assert.Contains("outside the archive", Load(DockerArchive(t => t.Symlink("evil", "../../../etc/passwd"))));
        Assert.Contains("outside the archive", Load(DockerArchive(t => t.Symlink("evil", "/etc/passwd"))));
        Assert.Contains("outside the archive", Load(DockerArchive(t => t.HardLink("evil", "../etc/passwd"))));
        Assert.Contains("is a chardevice", Load(DockerArchive(t => t.Device("dev", System.Formats.Tar.TarEntryType.CharacterDevice, 1, 3))));
    }

    [Fact]
    public void Manifest_json_naming_something_outside_or_absent_is_refused()
    {
        var config = Config(TarBuilder.DiffId(LayerTar));
        var configName = Digest.Sha256(config).Encoded + ".json";
        Assert.Contains("\"../../etc/passwd\", which points outside the archive",
            Load(DockerArchive(manifestJson: $"[{{\"Config\":\"{configName}\",\"Layers\":[\"../../etc/passwd\"]}}]")));
        Assert.Contains("\"/etc/passwd\", which is an absolute path",
            Load(DockerArchive(manifestJson: $"[{{\"Config\":\"{configName}\",\"Layers\":[\"/etc/passwd\"]}}]")));
        Assert.Contains("\"missing/layer.tar\", which is not in the archive",
            Load(DockerArchive(manifestJson: $"[{{\"Config\":\"{configName}\",\"Layers\":[\"missing/layer.tar\"]}}]")));
        // a symlink inside the archive that leads out of it is refused when read
        Assert.Contains("outside the archive", Load(DockerArchive(t => t.Symlink("up", ".."), manifestJson: $"[{{\"Config\":\"{configName}\",\"Layers\":[\"up/x\"]}}]")));
        Assert.Contains("not in the archive", Load(DockerArchive(withConfig: false)));
        Assert.Contains("manifest.json: malformed JSON", Load(DockerArchive(manifestJson: "[{\"Config\":")));
    }

    [Fact]
    public void Digest_mismatches_are_refused()
    {
        // a layer that is not what the config's diff_id says
        var other = new TarBuilder().File("etc/other", "x").Build();
        Assert.Contains("the image config's diff_id is", Load(DockerArchive(layer: other)));
        // a compressed layer is checked when it is unpacked, and the load leaves nothing either
        var err = Load(DockerArchive(layer: TarBuilder.Gzip(other)));
        Assert.Contains("diff", err, StringComparison.OrdinalIgnoreCase);

        // an OCI layout blob whose content does not hash to its name
        var layer = TarBuilder.Gzip(LayerTar);
        var config = Config(TarBuilder.DiffId(LayerTar));
        var manifest = ImageJson.Serialize(new Manifest
        {
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Sha256(config).ToString(), Size = config.Length },
            Layers = [new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256(layer).ToString(), Size = layer.Length }],
        });
        byte[] Oci(byte[] layerBytes) => new TarBuilder()
            .File("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}")
            .File($"blobs/sha256/{Digest.Sha256(config).Encoded}", config)
            .File($"blobs/sha256/{Digest.Sha256(layer).Encoded}", layerBytes)
            .File($"blobs/sha256/{Digest.Sha256(manifest).Encoded}", manifest)
            .File("index.json", ImageJson.Serialize(new ImageIndex
            {
                Manifests = [new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256(manifest).ToString(), Size = manifest.Length, Annotations = new() { ["org.opencontainers.image.ref.name"] = "localhost/bad:oci" } }],
            }))
            .Build();
        var file = Path.Combine(_tmp.Outer, "good-oci.tar");
        File.WriteAllBytes(file, Oci(layer));
        Assert.Equal("Loaded image: localhost/bad:oci\n", _berth.Ok("load", "-i", file));
        _berth.Ok("rmi", "localhost/bad:oci");
        File.Delete(file);
        var tampered = (byte[])layer.Clone();
        tampered[^5] ^= 0xff;
        Assert.Contains("corrupt or tampered", Load(Oci(tampered)));
    }

    [Fact]
    public void Truncated_huge_and_unknown_input_is_refused()
    {
        var good = DockerArchive();
        Assert.Contains("unexpected end of archive", Load(good[..(good.Length / 2 + 100)]));
        Assert.Matches("truncated compressed data|unexpected end of archive", Load(TarBuilder.Gzip(good)[..300]));
        Assert.Contains("compressed data", Load([.. TarBuilder.Zstd(good)[..8], .. new byte[64]]));
        var huge = "[" + new string(' ', 9 << 20) + "]";
        Assert.Contains("manifest.json is 9437186 bytes: larger than the limit", Load(DockerArchive(manifestJson: huge)));
        Assert.Contains("not a docker-archive or an OCI image layout", Load(new TarBuilder().File("hello.txt", "hi").Build()));
        Assert.Contains("tar header", Load(Encoding.UTF8.GetBytes(new string('x', 2048))));
        Assert.Contains("archive holds no image", Load(DockerArchive(manifestJson: "[]")));
        Assert.Contains("no oci-layout", Load(new TarBuilder().File("index.json", "{\"schemaVersion\":2,\"manifests\":[]}").Build()));
        Assert.Contains("does not exist", _berth.Fails("load", "-i", Path.Combine(_tmp.Outer, "absent.tar")));
        Assert.Contains("unknown archive format \"zip\"", _berth.Fails("save", "--format", "zip", "x"));
        Assert.Contains("is not known", _berth.Fails("save", "-o", Path.Combine(_tmp.Outer, "out.tar"), "nothing:here"));
        AssertNothingLeft();
    }
}
