using System.Formats.Tar;
using System.Text.Json;
using Berth.Images.Tests.Support;
using Oci = Berth.Oci;

namespace Berth.Images.Tests.Archive;

/// <summary>
/// `berth save` / `berth load` against the real peers: archives podman writes load in Berth with the
/// same image ID and run; archives Berth writes load in podman and read in skopeo with the same config
/// digest; skopeo copies between Berth's archives and OCI directories. Podman runs on its own temp
/// storage (vfs), never the machine's.
/// </summary>
public sealed class ArchiveInteropTests : IDisposable
{
    readonly BerthCli _berth = new();
    // lower case: podman names an image pulled from oci:DIR after the directory
    readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "berth-archive-" + Guid.NewGuid().ToString("N")[..10])).FullName;
    string RunRoot => _berth.Root + "-run";

    public void Dispose()
    {
        foreach (var id in Berth("ps", "-a", "-q", "--no-trunc").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Berth("rm", "-f", id);
        try { Directory.Delete(RunRoot, true); } catch (DirectoryNotFoundException) { }
        _berth.Dispose();
        Directory.Delete(_dir, true);
    }

    ToolResult Berth(params string[] args) =>
        Tools.Run(Tools.Berth, ["--root", _berth.Root, "--runroot", RunRoot, .. Tools.WithoutNetwork(args)], new Dictionary<string, string> { ["BERTH_INSECURE_REGISTRIES"] = "" });

    string Ok(params string[] args)
    {
        var r = Berth(args);
        Assert.True(r.ExitCode == 0, $"berth {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    string Path_(string name) => Path.Combine(_dir, name);

    /// <summary>podman on private storage under the test's directory.</summary>
    string Podman(params string[] args)
    {
        var conf = Path_("containers.conf");
        if (!File.Exists(conf)) File.WriteAllText(conf, // root here lacks CAP_SYS_RESOURCE: podman's default ulimits stay within the hard limits
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\nevents_logger=\"file\"\ncgroup_manager=\"cgroupfs\"\n");
        if (!File.Exists(Path_("auth.json"))) File.WriteAllText(Path_("auth.json"), "{}");
        var r = Tools.Run("podman", ["--root", Path_("podman-root"), "--runroot", Path_("podman-run"), "--storage-driver", "vfs", .. args],
            new Dictionary<string, string> { ["CONTAINERS_CONF"] = conf, ["REGISTRY_AUTH_FILE"] = Path_("auth.json") });
        Assert.True(r.ExitCode == 0, $"podman {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    /// <summary>The test image as an OCI layout loaded into Berth under <paramref name="name"/>.</summary>
    TestImage LoadIntoBerth(string marker, string name, int extraLayerBytes = 0)
    {
        var img = TestImage.Build(marker, extraLayerBytes);
        var layout = img.WriteLayout(Path_("layout-" + marker), name);
        Assert.Equal($"Loaded image: {name}\n", Ok("load", "-i", layout));
        return img;
    }

    static string ConfigDigestOfRawManifest(string raw)
    {
        using var doc = JsonDocument.Parse(raw);
        return doc.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
    }

    [Theory]
    [InlineData("docker-archive")]
    [InlineData("oci-archive")]
    public void Podman_save_loads_in_berth_with_the_same_id_and_runs(string format)
    {
        var img = TestImage.Build("from-podman-" + format, extraLayerBytes: 50_000);
        img.WriteLayout(Path_("layout"), "t");
        Podman("pull", "-q", $"oci:{Path_("layout")}:t");
        Podman("tag", img.Config.Digest[7..], "localhost/arch/frompodman:1");
        var archive = Path_("podman.tar");
        Podman("save", "-q", "--format", format, "-o", archive, "localhost/arch/frompodman:1");

        var load = Ok("load", "-i", archive);
        Assert.Equal("Loaded image: localhost/arch/frompodman:1\n", load);
        Assert.Equal($"localhost/arch/frompodman 1 {img.Config.Digest[7..19]}", Ok("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").Trim());
        Assert.Equal("from-podman-" + format, Ok("run", "--rm", "localhost/arch/frompodman:1", "/bin/busybox", "cat", "/etc/marker"));
    }

    [Fact]
    public void Berth_docker_archive_loads_in_podman_and_skopeo_reads_the_same_config_digest()
    {
        var img = LoadIntoBerth("to-podman", "localhost/arch/topodman:2", extraLayerBytes: 30_000);
        var archive = Path_("berth.tar");
        Ok("save", "-o", archive, "localhost/arch/topodman:2");
        // docker save's shape: manifest.json, repositories, CONFIG.json, LAYER/{VERSION,json,layer.tar}
        var names = TarNames(archive);
        Assert.Contains("manifest.json", names);
        Assert.Contains("repositories", names);
        Assert.Contains(img.Config.Digest[7..] + ".json", names);
        Assert.Equal(img.Layers.Count, names.Count(n => n.EndsWith("/layer.tar", StringComparison.Ordinal)));
        Assert.Equal(img.Layers.Count, names.Count(n => n.EndsWith("/VERSION", StringComparison.Ordinal)));

        Assert.Equal(img.Config.Digest, ConfigDigestOfRawManifest(Skopeo.Ok("inspect", "--raw", $"docker-archive:{archive}")));
        var loaded = Podman("load", "-q", "-i", archive);
        Assert.Contains("localhost/arch/topodman:2", loaded);
        Assert.Equal(img.Config.Digest[7..], Podman("image", "inspect", "--format", "{{.Id}}", "localhost/arch/topodman:2").Trim());
        Assert.Equal("to-podman\n", Podman("--runtime", "runc", "run", "--rm", "--net", "none", "localhost/arch/topodman:2", "/bin/busybox", "cat", "/etc/marker") + "\n");
    }

    [Fact]
    public void Berth_oci_archive_keeps_digests_for_podman_and_skopeo_copies_it_to_an_oci_dir_and_back()
    {
        var img = LoadIntoBerth("oci-out", "localhost/arch/ociout:3");
        var archive = Path_("berth-oci.tar");
        Ok("save", "--format", "oci-archive", "-o", archive, "localhost/arch/ociout:3");
        var raw = Skopeo.Ok("inspect", "--raw", $"oci-archive:{archive}");
        Assert.Equal(img.Config.Digest, ConfigDigestOfRawManifest(raw));
        Assert.Equal(System.Text.Encoding.UTF8.GetString(img.ManifestBytes), raw.TrimEnd('\n'));
        Podman("load", "-q", "-i", archive);
        Assert.Equal(img.Config.Digest[7..], Podman("image", "inspect", "--format", "{{.Id}}", "localhost/arch/ociout:3").Trim());

        // skopeo: berth's oci-archive → an OCI directory → berth load (a fresh store) → same ID and runs
        Skopeo.Ok("copy", "-q", $"oci-archive:{archive}", $"oci:{Path_("copied")}:localhost/arch/copied:4");
        using var other = new BerthCli();
        Assert.Equal("Loaded image: localhost/arch/copied:4\n", other.Ok("load", "-i", Path_("copied")));
        Assert.Equal(img.Config.Digest, other.Ok("image", "inspect", "--format", "{{.Id}}", "localhost/arch/copied:4").Trim());

        // berth's oci-dir → skopeo → docker-archive → berth load again
        Ok("save", "--format", "oci-dir", "-o", Path_("berth-dir"), "localhost/arch/ociout:3");
        Assert.True(File.Exists(Path.Combine(Path_("berth-dir"), "oci-layout")));
        Skopeo.Ok("copy", "-q", $"oci:{Path_("berth-dir")}", $"docker-archive:{Path_("via-skopeo.tar")}:localhost/arch/viaskopeo:5");
        using var third = new BerthCli();
        Assert.Equal("Loaded image: localhost/arch/viaskopeo:5\n", third.Ok("load", "-i", Path_("via-skopeo.tar")));
        Assert.Equal(img.Config.Digest, third.Ok("image", "inspect", "--format", "{{.Id}}", "localhost/arch/viaskopeo:5").Trim());
    }

    [Fact]
    public void Multi_image_archive_writes_shared_layers_once_and_restores_every_name()
    {
        var a = LoadIntoBerth("multi-a", "localhost/arch/a:1");
        var b = LoadIntoBerth("multi-b", "localhost/arch/b:1");
        Ok("tag", "localhost/arch/a:1", "localhost/arch/a:also");
        foreach (var format in new[] { "docker-archive", "oci-archive" })
        {
            var archive = Path_($"multi-{format}.tar");
            // by name, twice by the same image, and by ID (no name)
            Assert.NotEqual(0, Berth("save", "--format", format, "nothing:here").ExitCode);
            Ok("save", "--format", format, "-o", archive, "localhost/arch/a:1", "localhost/arch/a:also", b.Config.Digest[7..19]);
            var names = TarNames(archive);
            Assert.Equal(names.Count, names.Distinct().Count());
            using var fresh = new BerthCli();
            var load = fresh.Ok("load", "-i", archive).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
            Assert.Equal(new[] { $"Loaded image ID: {b.Config.Digest}", "Loaded image: localhost/arch/a:1", "Loaded image: localhost/arch/a:also" }, load);
            Assert.Equal(new[] { a.Config.Digest, b.Config.Digest }.Order(), fresh.Ok("images", "-q", "--no-trunc").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        }
        // the same busybox layer content in both images goes into a docker-archive once, with a symlink for the other
        var docker = TarEntries(Path_("multi-docker-archive.tar"));
        var layerTars = docker.Where(e => e.Name.EndsWith("/layer.tar", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, layerTars.Count);
        Assert.All(layerTars, e => Assert.Equal(TarEntryType.RegularFile, e.Type)); // different markers: different layers
    }

    [Fact]
    public void Save_refuses_a_terminal_and_stdout_round_trips_through_gzip_and_zstd()
    {
        var img = LoadIntoBerth("stdout", "localhost/arch/stdout:1");
        var tar = Path_("stdout.tar");
        var ok = Tools.Run("/bin/sh", ["-c", $"'{Tools.Berth}' --root '{_berth.Root}' save localhost/arch/stdout:1 > '{tar}'"]);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        foreach (var (tool, ext) in new[] { ("gzip", "gz"), ("zstd", "zst") })
        {
            var compressed = $"{tar}.{ext}";
            var c = Tools.Run("/bin/sh", ["-c", $"{tool} -c '{tar}' > '{compressed}'"]);
            Assert.True(c.ExitCode == 0, c.ToString());
            using var fresh = new BerthCli();
            var load = Tools.Run("/bin/sh", ["-c", $"'{Tools.Berth}' --root '{fresh.Root}' load < '{compressed}'"]);
            Assert.True(load.ExitCode == 0, load.ToString());
            Assert.Equal("Loaded image: localhost/arch/stdout:1\n", load.Stdout);
            Assert.Equal(img.Config.Digest, fresh.Ok("image", "inspect", "--format", "{{.Id}}", "localhost/arch/stdout:1").Trim());
        }
        // `script` gives save a terminal as stdout: refused like docker, nothing written
        var tty = Tools.Run("script", ["-qec", $"'{Tools.Berth}' --root '{_berth.Root}' save localhost/arch/stdout:1", "/dev/null"]);
        Assert.NotEqual(0, tty.ExitCode);
        Assert.Contains("cowardly refusing to save to a terminal", tty.Stdout);
    }

    [Fact]
    public void Docker_25_layout_with_blobs_and_index_loads_with_its_name_and_id()
    {
        // docker 25+ writes an OCI layout whose manifest.json points into blobs/ (uncompressed layers)
        var img = TestImage.Build("docker25");
        using var gz = new System.IO.Compression.GZipStream(new MemoryStream(img.Blobs[img.Layers[0].Digest]), System.IO.Compression.CompressionMode.Decompress);
        var plain = new MemoryStream();
        gz.CopyTo(plain);
        var layer = plain.ToArray();
        var layerDigest = Oci.Image.Digest.Sha256(layer);
        var config = img.Blobs[img.Config.Digest];
        var manifest = Oci.Image.ImageJson.Serialize(new Oci.Image.Manifest
        {
            MediaType = Oci.Image.MediaTypes.OciManifest,
            Config = new() { MediaType = Oci.Image.MediaTypes.OciConfig, Digest = img.Config.Digest, Size = config.Length },
            Layers = [new() { MediaType = Oci.Image.MediaTypes.OciLayer, Digest = layerDigest.ToString(), Size = layer.Length }],
        });
        var md = Oci.Image.Digest.Sha256(manifest);
        var index = $"{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{md}\",\"size\":{manifest.Length},\"annotations\":{{\"io.containerd.image.name\":\"docker.io/library/d25:1\",\"org.opencontainers.image.ref.name\":\"1\"}}}}]}}";
        var tar = new TarBuilder()
            .Dir("blobs/").Dir("blobs/sha256/")
            .File($"blobs/sha256/{layerDigest.Encoded}", layer)
            .File($"blobs/sha256/{img.Config.Digest[7..]}", config)
            .File($"blobs/sha256/{md.Encoded}", manifest)
            .File("index.json", index)
            .File("manifest.json", $"[{{\"Config\":\"blobs/sha256/{img.Config.Digest[7..]}\",\"RepoTags\":[\"d25:1\"],\"Layers\":[\"blobs/sha256/{layerDigest.Encoded}\"]}}]")
            .File("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}")
            .Build();
        File.WriteAllBytes(Path_("d25.tar"), tar);
        Assert.Equal("Loaded image: d25:1\n", Ok("load", "-i", Path_("d25.tar")));
        Assert.Equal(img.Config.Digest, Ok("image", "inspect", "--format", "{{.Id}}", "docker.io/library/d25:1").Trim());
        Assert.Equal("docker25", Ok("run", "--rm", "d25:1", "/bin/busybox", "cat", "/etc/marker"));
        // a docker-archive of an image already stored (same ID) only adds its names: one image, two names
        Ok("save", "-o", Path_("d25-again.tar"), "d25:1");
        Ok("tag", "d25:1", "localhost/keep:1");
        Ok("rmi", "d25:1");
        Assert.Equal("Loaded image: d25:1\n", Ok("load", "-i", Path_("d25-again.tar")));
        Assert.Equal(img.Config.Digest[7..19], Ok("images", "-q").Trim());
        Assert.Single(Directory.GetFiles(Path.Combine(_berth.Root, "images", "records")));
    }

    static List<string> TarNames(string path) => TarEntries(path).Select(e => e.Name.TrimEnd('/')).ToList();

    static List<(string Name, TarEntryType Type)> TarEntries(string path)
    {
        using var fs = File.OpenRead(path);
        using var r = new TarReader(fs);
        var list = new List<(string, TarEntryType)>();
        while (r.GetNextEntry() is { } e) list.Add((e.Name, e.EntryType));
        return list;
    }
}
