using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using Berth.Images.Snapshots;
using Berth.Images.Tests.Support;
using Berth.Linux;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Snapshots;

/// <summary>Real layers from busybox-static in an OCI layout: unpacked through both snapshotters and
/// mounted, then compared file by file with what `umoci unpack` makes of the same layout.</summary>
public class BusyboxPeerTests : IDisposable
{
    readonly TempDir _t = new();
    public void Dispose() => _t.Dispose();


    static byte[][] Layers()
    {
        var busybox = File.ReadAllBytes("/bin/busybox");
        var l1 = new TarBuilder().Dir("bin").File("bin/busybox", busybox, mode: 0x1ed)
            .Symlink("bin/sh", "busybox").Symlink("bin/ls", "/bin/busybox").HardLink("bin/echo", "bin/busybox")
            .Dir("etc").File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n")
            .File("etc/group", "root:x:0:\nwheel:x:10:root\n").File("etc/motd", "remove me\n")
            .Dir("dev").Device("dev/null", TarEntryType.CharacterDevice, 1, 3).Fifo("dev/pipe")
            .Dir("tmp", mode: 0x3ff).Dir("var").Dir("var/www", uid: 33, gid: 33).File("var/www/index.html", "old", uid: 33, gid: 33)
            .Dir("var/cache").File("var/cache/a", "a").File("var/cache/b", "b")
            .FileWithPax("bin/ping", "p"u8.ToArray(), ("SCHILY.xattr.user.cap", [0x01, 0x00, 0x00, 0x02]))
            .Build();
        var l2 = new TarBuilder().Dir("etc").File("etc/.wh.motd", "").File("etc/hostname", "box\n", mode: 0x180)
            .Dir("var/cache").File("var/cache/.wh..wh..opq", "").File("var/cache/c", "c")
            .Dir("var/www", uid: 33, gid: 33).File("var/www/index.html", "new", uid: 33, gid: 33, mode: 0x1a0)
            .Build();
        return [l1, l2];
    }

    static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    /// <summary>Writes an OCI image layout with gzip layers; returns the config.</summary>
    ImageConfigFile WriteLayout(string dir, byte[][] layers)
    {
        var blobs = Path.Combine(dir, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        string Put(byte[] b) { var d = Sha(b); File.WriteAllBytes(Path.Combine(blobs, d[7..]), b); return d; }
        var config = new ImageConfigFile { Architecture = "amd64", Os = "linux", Config = new ContainerConfig { Cmd = ["/bin/sh"] } };
        var manifest = new Manifest { MediaType = MediaTypes.OciManifest };
        foreach (var l in layers)
        {
            var gz = TarBuilder.Gzip(l);
            config.RootFs.DiffIds.Add(Sha(l));
            manifest.Layers.Add(new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Put(gz), Size = gz.Length });
        }
        var cfg = ImageJson.Serialize(config);
        manifest.Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Put(cfg), Size = cfg.Length };
        var man = ImageJson.Serialize(manifest);
        var index = new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = [new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Put(man), Size = man.Length, Annotations = new() { ["org.opencontainers.image.ref.name"] = "latest" } }] };
        File.WriteAllBytes(Path.Combine(dir, "index.json"), ImageJson.Serialize(index));
        File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        return config;
    }

    static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd();
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new Exception($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {e}");
        return o;
    }

    /// <summary>One line per file: path, type, mode, owner, size or target, content hash, mtime, xattrs.</summary>
    static SortedDictionary<string, string> Describe(string root)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(string dir, string rel)
        {
            foreach (var full in Directory.GetFileSystemEntries(dir))
            {
                var name = rel + "/" + Path.GetFileName(full);
                var s = FileAt.TryStat(full)!.Value;
                var sb = new StringBuilder($"{s.Type:x} {Convert.ToString(s.Mode & 0xfff, 8)} {s.Uid}:{s.Gid}");
                if (s.IsRegular) sb.Append($" {s.Size} {Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(full)))[..12]} n{s.Nlink}");
                if (s.IsSymlink) sb.Append(" -> " + new FileInfo(full).LinkTarget);
                if (!s.IsDirectory) sb.Append($" t{s.MtimeSec}");
                if (s.Type is 0x2000 or 0x6000) sb.Append($" dev{s.RdevMajor},{s.RdevMinor}");
                foreach (var (k, v) in FileAt.ListXattrs(full).Where(x => x.Key.StartsWith("user.")).OrderBy(x => x.Key)) sb.Append($" {k}={Convert.ToHexString(v)}");
                result[name] = sb.ToString();
                if (s.IsDirectory) Walk(full, name);
            }
        }
        Walk(root, "");
        return result;
    }

    [Theory]
    [InlineData("overlay")]
    [InlineData("copy")]
    public async Task Busybox_layers_match_umoci_and_run(string driver)
    {
        var layers = Layers();
        var layout = Path.Combine(_t.Outer, "layout");
        var config = WriteLayout(layout, layers);
        var bundle = Path.Combine(_t.Outer, "umoci-bundle");
        Run("umoci", "unpack", "--image", layout + ":latest", bundle);

        ISnapshotter s = driver == "overlay" ? new OverlaySnapshotter(_t.Root) : new CopySnapshotter(_t.Root);
        string? parent = null;
        var manifest = ImageJson.ParseManifest(File.ReadAllBytes(Path.Combine(layout, "blobs/sha256", ImageJson.ParseIndex(File.ReadAllBytes(Path.Combine(layout, "index.json"))).Manifests[0].Digest[7..])));
        for (var i = 0; i < layers.Length; i++)
        {
            await using var blob = File.OpenRead(Path.Combine(layout, "blobs/sha256", manifest.Layers[i].Digest[7..]));
            parent = await s.ApplyLayerAsync(parent, config.RootFs.DiffIds[i], blob, LayerCompression.Gzip, default);
        }
        Assert.Equal(ChainId.Chain(config.RootFs.DiffIds)[^1], parent);
        s.Prepare("c", parent);
        var mnt = Path.Combine(_t.Outer, "mnt");
        Directory.CreateDirectory(mnt);
        SnapshotMounter.Mount(s.Mounts("c"), mnt);
        try
        {
            var ours = Describe(mnt);
            var theirs = Describe(Path.Combine(bundle, "rootfs"));
            Assert.True(ours.Count >= 19, $"only {ours.Count} entries");
            Assert.Equal(theirs.Keys, ours.Keys);
            foreach (var (k, v) in theirs) Assert.Equal($"{k}: {v}", $"{k}: {ours[k]}");
            Assert.False(File.Exists(Path.Combine(mnt, "etc/motd")));
            Assert.Equal("hello from busybox\n", Run("chroot", mnt, "/bin/sh", "-c", "echo hello from busybox"));
            Assert.Equal("new", Run("chroot", mnt, "/bin/busybox", "cat", "/var/www/index.html"));
        }
        finally { SnapshotMounter.Unmount(mnt); }
    }
}
