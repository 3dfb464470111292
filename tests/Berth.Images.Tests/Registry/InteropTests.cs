using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// Berth's binary against Debian's docker-registry and skopeo: what skopeo pushes Berth pulls with the
/// same digests, what Berth pushes skopeo reads and copies with the same digest, platform selection
/// from a real index, and the image verbs around them.
/// </summary>
public sealed class InteropTests(RegistryFixture fx) : IClassFixture<RegistryFixture>, IDisposable
{
    readonly BerthCli _berth = new();
    public void Dispose() => _berth.Dispose();

    [Fact]
    public void Skopeo_pushes_berth_pulls_with_the_same_digests()
    {
        var img = TestImage.Build("interop-pull");
        var name = $"{fx.Host}/interop/pull:v1";
        Skopeo.PushLayout(img, name);
        Assert.Equal(img.Manifest.Digest, Skopeo.Digest(name));

        var pull = _berth.Ok("pull", "--tls-verify=false", name);
        Assert.EndsWith($"{name}\n", pull);
        Assert.Contains("Download complete", pull);

        var line = _berth.Ok("images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}").Trim();
        Assert.Equal($"{name} {img.Manifest.Digest} {img.Config.Digest[7..19]}", line);
        foreach (var (d, data) in img.Blobs)
            Assert.Equal(data, File.ReadAllBytes(Path.Combine(_berth.Root, "images", "blobs", "sha256", d[7..])));

        using var doc = JsonDocument.Parse(_berth.Ok("image", "inspect", name));
        var o = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal(img.Config.Digest, o.GetProperty("Id").GetString());
        Assert.Equal(name, Assert.Single(o.GetProperty("RepoTags").EnumerateArray()).GetString());
        Assert.Equal($"{fx.Host}/interop/pull@{img.Manifest.Digest}", Assert.Single(o.GetProperty("RepoDigests").EnumerateArray()).GetString());
        Assert.Equal("amd64", o.GetProperty("Architecture").GetString());
        Assert.Equal("linux", o.GetProperty("Os").GetString());
        Assert.Equal("2024-01-01T00:00:00Z", o.GetProperty("Created").GetString());
        Assert.Equal("/bin/sh", o.GetProperty("Config").GetProperty("Cmd")[0].GetString());
        Assert.Equal("layers", o.GetProperty("RootFS").GetProperty("Type").GetString());
        Assert.Single(o.GetProperty("RootFS").GetProperty("Layers").EnumerateArray());

        // a second pull transfers nothing
        var again = _berth.Ok("pull", "--tls-verify=false", name);
        Assert.DoesNotContain("Download complete", again);
        Assert.Contains("Already exists", again);
        Assert.Equal(img.Config.Digest, _berth.Ok("image", "inspect", "--format", "{{.Id}}", img.Config.Digest[7..19]).Trim());
    }

    [Fact]
    public void Berth_pushes_skopeo_reads_the_same_digest_and_mounts_across_repositories()
    {
        var img = TestImage.Build("interop-push");
        var src = $"{fx.Host}/interop/src:v1";
        Skopeo.PushLayout(img, src);
        _berth.Ok("pull", "-q", "--tls-verify=false", src);
        var dest = $"{fx.Host}/interop/dest:v2";
        _berth.Ok("tag", src, dest);
        var push = _berth.Ok("push", "--tls-verify=false", dest);
        Assert.Contains($"Mounted from interop/src", push);
        Assert.Equal(img.Manifest.Digest, Skopeo.Digest(dest));
        // skopeo copies it back out, verifying every blob
        var outDir = Directory.CreateTempSubdirectory("berth-out-").FullName;
        try
        {
            Skopeo.Ok("copy", "-q", "--src-tls-verify=false", $"docker://{dest}", $"oci:{outDir}:x");
            foreach (var d in img.Blobs.Keys.Where(k => k != img.Manifest.Digest))
                Assert.True(File.Exists(Path.Combine(outDir, "blobs", "sha256", d[7..])), d);
        }
        finally { Directory.Delete(outDir, true); }
        // pushing again: every blob is already there
        Assert.Contains("Layer already exists", _berth.Ok("push", "--tls-verify=false", dest));
    }

    [Fact]
    public async Task Fresh_upload_monolithic_and_chunked_are_readable_by_skopeo()
    {
        // Get an image into a store without docker-registry (from an in-test server), then push it.
        var img = TestImage.Build("interop-upload", extraLayerBytes: 300_000);
        using var server = ImageServer.Serve(img);
        var root = Directory.CreateTempSubdirectory("berth-upload-");
        try
        {
            var store = new ImageStore(root.FullName);
            var opts = new RegistryOptions { TlsVerify = false, AuthFile = new AuthFile("/nonexistent-berth-auth.json"), BackoffBase = TimeSpan.FromMilliseconds(10) };
            var pulled = await new ImagePuller(store, opts).PullAsync(ImageReference.Parse($"{server.Host}/up"), PlatformSpec.Default, NoProgress.Instance, default);
            var outcomes = new RecordingProgress();
            var mono = ImageReference.Parse($"{fx.Host}/interop/mono:1");
            Assert.Equal(img.Manifest.Digest, (await new ImagePusher(store, opts).PushAsync(pulled, mono, outcomes, default)).ToString());
            Assert.All(outcomes.Done.Values, v => Assert.Equal("Pushed", v));
            Assert.Equal(img.Manifest.Digest, Skopeo.Digest(mono.ToString()));

            var chunked = ImageReference.Parse($"{fx.Host}/interop/chunked:1");
            var chunkOpts = new RegistryOptions { TlsVerify = false, AuthFile = opts.AuthFile, ChunkSize = 64 * 1024, Parallelism = 1 };
            await new ImagePusher(store, chunkOpts).PushAsync(pulled, chunked, NoProgress.Instance, default);
            Assert.Equal(img.Manifest.Digest, Skopeo.Digest(chunked.ToString()));
            var outDir = Directory.CreateTempSubdirectory("berth-out-").FullName;
            try { Skopeo.Ok("copy", "-q", "--src-tls-verify=false", $"docker://{chunked}", $"oci:{outDir}:x"); }
            finally { Directory.Delete(outDir, true); }
        }
        finally { root.Delete(true); }
    }

    [Fact]
    public void Berth_uploads_podman_pulls_with_the_same_digest_and_id()
    {
        // Source: an in-test server (another registry), so every blob is uploaded by Berth.
        var img = TestImage.Build("podman-pull", extraLayerBytes: 100_000);
        using var source = ImageServer.Serve(img);
        _berth.Ok("pull", "-q", "--tls-verify=false", $"{source.Host}/src:1");
        var dest = $"{fx.Host}/interop/forpodman:1";
        var push = _berth.Ok("push", "--tls-verify=false", $"{source.Host}/src:1", dest);
        Assert.Equal(img.Layers.Count + 1, push.Split('\n').Count(l => l.EndsWith(": Pushed", StringComparison.Ordinal)));

        var dir = Directory.CreateTempSubdirectory("berth-podman-").FullName;
        try
        {
            var conf = Path.Combine(dir, "containers.conf");
            File.WriteAllText(conf, "[engine]\nevents_logger=\"file\"\ncgroup_manager=\"cgroupfs\"\n");
            File.WriteAllText(Path.Combine(dir, "auth.json"), "{}");
            var env = new Dictionary<string, string> { ["CONTAINERS_CONF"] = conf, ["REGISTRY_AUTH_FILE"] = Path.Combine(dir, "auth.json") };
            string[] common = ["--root", Path.Combine(dir, "root"), "--runroot", Path.Combine(dir, "runroot"), "--storage-driver", "vfs"];
            var pull = Tools.Run("podman", [.. common, "pull", "-q", "--tls-verify=false", dest], env);
            Assert.True(pull.ExitCode == 0, pull.ToString());
            Assert.Equal(img.Config.Digest[7..], pull.Stdout.Trim());
            var digest = Tools.Run("podman", [.. common, "image", "inspect", "--format", "{{.Digest}}", dest], env);
            Assert.Equal(img.Manifest.Digest, digest.Stdout.Trim());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Index_with_two_platforms_picks_the_right_one()
    {
        var img = TestImage.BuildMultiPlatform("interop-multi");
        var name = $"{fx.Host}/interop/multi:1";
        Skopeo.PushLayout(img, name, "--all");
        var raw = Skopeo.Ok("inspect", "--tls-verify=false", "--raw", $"docker://{name}");
        Assert.Equal(System.Text.Encoding.UTF8.GetString(img.IndexBytes!), raw.TrimEnd('\n'));
        _berth.Ok("pull", "-q", "--tls-verify=false", "--platform", "linux/arm64", name);
        Assert.Equal("arm64", _berth.Ok("image", "inspect", "--format", "{{.Architecture}}", name).Trim());
        var other = new BerthCli();
        try
        {
            other.Ok("pull", "-q", "--tls-verify=false", name);
            Assert.Equal("amd64", other.Ok("image", "inspect", "--format", "{{.Architecture}}", name).Trim());
            Assert.Contains("no image for platform linux/ppc64le", other.Fails("pull", "--tls-verify=false", "--platform", "linux/ppc64le", name));
        }
        finally { other.Dispose(); }
    }

    [Fact]
    public void Image_verbs_tag_list_remove_prune()
    {
        var a = TestImage.Build("verbs-a");
        var nameA = $"{fx.Host}/verbs/a:1";
        Skopeo.PushLayout(a, nameA);
        _berth.Ok("pull", "-q", "--tls-verify=false", nameA);
        _berth.Ok("tag", nameA, "localhost/other:2");
        _berth.Ok("image", "tag", nameA, "plain");
        var names = _berth.Ok("images", "--format", "{{.Repository}}:{{.Tag}}").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
        Assert.Equal(new[] { nameA, "localhost/other:2", "plain:latest" }.Order(), names);
        Assert.Equal(a.Config.Digest[7..19], _berth.Ok("images", "-q").Trim());
        Assert.Equal(a.Config.Digest, _berth.Ok("images", "-q", "--no-trunc").Trim());

        var table = _berth.Ok("images").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$", table[0]);
        Assert.Equal(4, table.Length);
        Assert.Matches(@"\d+ (years|months) ago", table[1]);

        foreach (var l in _berth.Ok("image", "ls", "--format", "json").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var j = JsonDocument.Parse(l);
            Assert.Equal(a.Config.Digest[7..19], j.RootElement.GetProperty("ID").GetString());
            Assert.False(string.IsNullOrEmpty(j.RootElement.GetProperty("Size").GetString()));
        }
        Assert.Contains("can't evaluate field Nope", _berth.Fails("images", "--format", "{{.Nope}}"));

        // removing one name of three only untags; blobs stay
        Assert.Equal("Untagged: localhost/other:2", _berth.Ok("rmi", "localhost/other:2").Trim());
        Assert.All(a.Blobs.Keys, d => Assert.True(File.Exists(Path.Combine(_berth.Root, "images", "blobs", "sha256", d[7..]))));
        // by ID with two repositories: refused without -f
        Assert.Contains("must be forced", _berth.Fails("rmi", a.Config.Digest[7..19]));
        var rm = _berth.Ok("rmi", "-f", a.Config.Digest[7..19]);
        Assert.Contains("Untagged: plain:latest", rm);
        Assert.Contains($"Deleted: {a.DiffId(0)}", rm);
        Assert.Empty(Directory.GetFiles(Path.Combine(_berth.Root, "images", "blobs", "sha256")));
        Assert.Equal("", _berth.Ok("images", "-q"));
        Assert.Contains("is not known", _berth.Fails("rmi", nameA));
        Assert.Contains("is not known", _berth.Fails("image", "inspect", "nothing:here"));
        Assert.Contains("Total reclaimed space: 0B", _berth.Ok("image", "prune", "-f"));
    }

    [Fact]
    public void Shared_layers_survive_removal_and_prune_takes_dangling_images()
    {
        var v1 = TestImage.Build("prune-1");
        var v2 = TestImage.Build("prune-2");
        var name = $"{fx.Host}/prune/x:1";
        Skopeo.PushLayout(v1, name);
        _berth.Ok("pull", "-q", "--tls-verify=false", name);
        Skopeo.PushLayout(v2, name); // the tag moves
        _berth.Ok("pull", "-q", "--tls-verify=false", name);
        var rows = _berth.Ok("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // as dockerd: the old image keeps the digest name its pull recorded (it shows as repo <none>) and is dangling
        Assert.Contains($"{fx.Host}/prune/x <none> {v1.Config.Digest[7..19]}", rows);
        Assert.Contains($"{fx.Host}/prune/x 1 {v2.Config.Digest[7..19]}", rows);
        Assert.Equal(2, rows.Length);
        var prune = _berth.Ok("image", "prune", "-f");
        Assert.Contains($"untagged: {fx.Host}/prune/x@{v1.Manifest.Digest}", prune);
        Assert.Contains($"deleted: {v1.Config.Digest}", prune);
        Assert.DoesNotContain($"deleted: {v2.Config.Digest}", prune);
        Assert.Single(_berth.Ok("images", "-q").Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(Path.Combine(_berth.Root, "images", "blobs", "sha256", v1.Config.Digest[7..])));
        Assert.True(File.Exists(Path.Combine(_berth.Root, "images", "blobs", "sha256", v2.Config.Digest[7..])));
    }

    [Fact]
    public void Bad_input_is_one_line_and_leaves_nothing()
    {
        Assert.Contains("invalid reference format", _berth.Fails("pull", "--tls-verify=false", "Bad/Ref::x"));
        Assert.Equal(125, _berth.Run("pull", "UPPER").ExitCode);
        var nf = _berth.Fails("pull", "--tls-verify=false", $"{fx.Host}/nope/nothing:1");
        Assert.Contains("404", nf);
        Assert.Contains("MANIFEST_UNKNOWN", nf);
        var closed = Tools.FreePort();
        Assert.Contains($"127.0.0.1:{closed}", _berth.Fails("pull", "--tls-verify=false", $"127.0.0.1:{closed}/x:1"));
        // without --tls-verify=false a plain-HTTP registry is an error (no silent downgrade)
        Assert.Contains(fx.Host, _berth.Fails("pull", $"{fx.Host}/nope/nothing:1"));
        Assert.Contains("invalid platform", _berth.Fails("pull", "--platform", "linux", $"{fx.Host}/x:1"));
        Assert.Contains("is not known", _berth.Fails("push", "--tls-verify=false", $"{fx.Host}/never/pulled:1"));
        Assert.Contains("is not known", _berth.Fails("tag", "never:1", "x:2"));
        Assert.Empty(_berth.Ok("images", "-q"));
        var ingest = Path.Combine(_berth.Root, "images", "ingest");
        Assert.True(!Directory.Exists(ingest) || Directory.GetFiles(ingest).Length == 0);
    }
}

sealed class RecordingProgress : ITransferProgress
{
    public System.Collections.Concurrent.ConcurrentDictionary<string, string> Done { get; } = new();
    public void Status(string line) { }
    public void BlobStarted(Descriptor blob, string kind) { }
    public void BlobProgress(Descriptor blob, long done) { }
    public void BlobDone(Descriptor blob, string outcome) => Done[blob.Digest] = outcome;
}
