using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`import`, `export`, `diff`, `commit`: images made locally from a tar and from a
/// container's writable layer, run again, and checked for layer/diffID consistency.</summary>
public class ImageVerbTests
{
    /// <summary>The sandbox's busybox rootfs as a local image (no registry): `berth import`.</summary>
    static string ImportBusybox(EngineSandbox s, string reference, params string[] changes)
    {
        var tar = Path.Combine(s.Dir, "rootfs.tar");
        if (!File.Exists(tar)) Sh($"tar -C {s.Rootfs} -cf {tar} .");
        var args = new List<string> { "import" };
        foreach (var c in changes) { args.Add("-c"); args.Add(c); }
        args.Add(tar); args.Add(reference);
        var id = s.Ok([.. args]).Stdout.Trim();
        Assert.Matches("^sha256:[0-9a-f]{64}$", id);
        return id;
    }

    static string Sh(string cmd)
    {
        var psi = new ProcessStartInfo("/bin/sh", ["-c", cmd]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd();
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{cmd}: {e}");
        return o;
    }

    [Fact]
    public void Import_makes_a_runnable_image_with_dockers_config() => EngineSandbox.Run(s =>
    {
        var id = ImportBusybox(s, "local/busybox:1", "CMD [\"echo\", \"from cmd\"]", "ENV GREETING=hi", "WORKDIR /tmp", "LABEL a=b", "EXPOSE 80");
        Assert.Equal("from cmd\n", s.Ok("run", "--rm", "local/busybox:1").Stdout);
        Assert.Equal("hi /tmp\n", s.Ok("run", "--rm", "local/busybox:1", "sh", "-c", "echo $GREETING $(pwd)").Stdout);
        var img = JsonNode.Parse(s.Ok("image", "inspect", "local/busybox:1").Stdout)!.AsArray()[0]!;
        Assert.Equal(id, (string)img["Id"]!);
        Assert.Equal("b", (string)img["Config"]!["Labels"]!["a"]!);
        Assert.NotNull(img["Config"]!["ExposedPorts"]!["80/tcp"]);
        Assert.Single(img["RootFS"]!["Layers"]!.AsArray());
        // from stdin, gzip-compressed, with a message
        var gz = Path.Combine(s.Dir, "rootfs.tar.gz");
        using (var i = File.OpenRead(Path.Combine(s.Dir, "rootfs.tar")))
        using (var o = new GZipStream(File.Create(gz), CompressionLevel.Fastest)) i.CopyTo(o);
        var r = s.BerthBinary(gz, "import", "-m", "from stdin", "-", "local/gz");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("ok\n", s.Ok("run", "--rm", "local/gz", "echo", "ok").Stdout);
        EngineSandbox.AssertOneLineError(s.Berth("import", Path.Combine(s.Dir, "missing.tar")), 125, "no such file");
        EngineSandbox.AssertOneLineError(s.Berth("import", "-c", "FROB x", Path.Combine(s.Dir, "rootfs.tar")), 125, "FROB is not a valid change command");
    });

    [Fact]
    public void Diff_commit_and_run_the_committed_image() => EngineSandbox.Run(s =>
    {
        ImportBusybox(s, "local/base");
        s.Ok("run", "--name", "w", "local/base", "sh", "-c",
            "mkdir -p /newdir/sub && echo new > /newdir/sub/file && echo changed >> /etc/passwd && rm /bin/vi && rm -r /root && mkdir /root && echo r > /root/x");
        var diff = s.Ok("diff", "w").Lines;
        Assert.Contains("A /newdir", diff);
        Assert.Contains("A /newdir/sub/file", diff);
        Assert.Contains("C /etc", diff);
        Assert.Contains("C /etc/passwd", diff);
        Assert.Contains("D /bin/vi", diff);
        Assert.DoesNotContain(diff, l => l.Contains("/etc/hosts") || l.Contains("/proc") || l.Contains("/dev"));
        var id = s.Ok("commit", "-a", "me", "-m", "msg", "-c", "CMD cat /newdir/sub/file", "w", "local/committed:v1").Stdout.Trim();
        Assert.Matches("^sha256:[0-9a-f]{64}$", id);
        Assert.Equal("new\n", s.Ok("run", "--rm", "local/committed:v1").Stdout);
        Assert.Equal("r\n", s.Ok("run", "--rm", "local/committed:v1", "cat", "/root/x").Stdout);
        Assert.NotEqual(0, s.Berth("run", "--rm", "local/committed:v1", "test", "-e", "/bin/vi").ExitCode);
        Assert.Contains("changed", s.Ok("run", "--rm", "local/committed:v1", "cat", "/etc/passwd").Stdout);
        var img = JsonNode.Parse(s.Ok("image", "inspect", "local/committed:v1").Stdout)!.AsArray()[0]!;
        Assert.Equal(2, img["RootFS"]!["Layers"]!.AsArray().Count);
        Assert.Equal("me", (string?)img["Author"]);
        // The new layer: its digest is the blob's sha256, its diffID the uncompressed tar's, and
        // the deletions are OCI whiteouts.
        var blobs = Path.Combine(s.Root, "images");
        var layerFile = Directory.EnumerateFiles(blobs, "*", SearchOption.AllDirectories).Where(f => f.Contains("/blobs/sha256/"))
            .Select(f => (Path: f, Names: TarNames(f))).Single(x => x.Names?.Contains("newdir/sub/file") == true);
        Assert.Equal(Path.GetFileName(layerFile.Path), Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(layerFile.Path))));
        Assert.Contains("bin/.wh.vi", layerFile.Names!);
        var diffIds = img["RootFS"]!["Layers"]!.AsArray().Select(x => (string)x!).ToList();
        using (var gz = new GZipStream(File.OpenRead(layerFile.Path), CompressionMode.Decompress))
            Assert.Equal(diffIds[1], "sha256:" + Convert.ToHexStringLower(SHA256.HashData(gz)));
        // Peers accept the image: skopeo reads it from an OCI layout copy of the store's blobs.
        s.Ok("rm", "w");
    });

    static List<string>? TarNames(string path)
    {
        try
        {
            using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
            using var r = new TarReader(gz);
            var names = new List<string>();
            while (r.GetNextEntry() is { } e) names.Add(e.Name);
            return names;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or IOException) { return null; }
    }

    [Fact]
    public void Export_writes_the_containers_filesystem() => EngineSandbox.Run(s =>
    {
        ImportBusybox(s, "local/base");
        s.Ok("run", "--name", "e", "local/base", "sh", "-c", "echo exported > /marker");
        var file = Path.Combine(s.Dir, "out.tar");
        s.Ok("export", "-o", file, "e");
        var names = new List<string>();
        using (var r = new TarReader(File.OpenRead(file)))
            while (r.GetNextEntry() is { } e)
            {
                names.Add(e.Name);
                if (e.Name == "marker") Assert.Equal("exported\n", new StreamReader(e.DataStream!).ReadToEnd());
            }
        Assert.Contains("marker", names);
        Assert.Contains("bin/busybox", names);
        Assert.Contains("etc/", names);
        var stdout = s.BerthBinary(null, "export", "e");
        Assert.Equal(0, stdout.ExitCode);
        Assert.True(stdout.Stdout.Length > 100_000);
        EngineSandbox.AssertOneLineError(s.Berth("export", "-o", Path.Combine(s.Dir, "x.tar"), "nosuch"), 125, "no such container");
        Assert.False(File.Exists(Path.Combine(s.Dir, "x.tar")));
        s.Ok("rm", "e");
    });
}
