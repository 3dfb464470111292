using System.Diagnostics;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Content;

/// <summary>
/// The real binary killed (SIGKILL, by its pid) in the middle of a blob download: no blob, record or
/// name is visible, `image prune` removes the ingest leftover, and the next pull completes. Two pulls
/// of one image into one store at once both succeed.
/// </summary>
public sealed class CrashTests : IDisposable
{
    readonly BerthCli _berth = new();
    public void Dispose() => _berth.Dispose();

    [Fact]
    public async Task Killed_mid_blob_leaves_nothing_visible_and_prune_cleans_up()
    {
        var img = TestImage.Build("crash", extraLayerBytes: 500_000);
        var big = img.Layers[1];
        var stall = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var stalled = true;
        using var server = ImageServer.Serve(img, blob: async (req, s, d) =>
        {
            if (d != big.Digest || !stalled) return false;
            await TinyHttpServer.Respond(s, 200, "OK", [], img.Blobs[d], cutAfter: 200_000);
            stall.TrySetResult();
            await release.Task; // hold the connection open: the client waits mid-blob
            throw new IOException("connection closed by the test");
        });
        var name = $"{server.Host}/crash:1";
        var psi = new ProcessStartInfo(Tools.Berth) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--root", _berth.Root, "pull", "--tls-verify=false", name }) psi.ArgumentList.Add(a);
        psi.Environment["REGISTRY_AUTH_FILE"] = _berth.AuthFile;
        using var p = Process.Start(psi)!;
        try
        {
            Assert.Same(stall.Task, await Task.WhenAny(stall.Task, Task.Delay(60_000)));
            var ingest = Path.Combine(_berth.Root, "images", "ingest");
            for (var i = 0; i < 100 && (!Directory.Exists(ingest) || Directory.GetFiles(ingest).Length == 0); i++) await Task.Delay(50);
            Assert.NotEmpty(Directory.GetFiles(ingest));
            p.Kill(); // SIGKILL: no cleanup runs
            await p.WaitForExitAsync();
        }
        finally
        {
            release.TrySetResult();
            if (!p.HasExited) { p.Kill(); p.WaitForExit(); }
        }
        Assert.False(File.Exists(Path.Combine(_berth.Root, "images", "blobs", "sha256", big.Digest[7..])));
        Assert.Equal("", _berth.Ok("images", "-q"));
        _berth.Ok("image", "prune", "-f");
        Assert.Empty(Directory.GetFiles(Path.Combine(_berth.Root, "images", "ingest")));
        stalled = false;
        _berth.Ok("pull", "-q", "--tls-verify=false", name);
        Assert.Equal(img.Blobs[big.Digest], File.ReadAllBytes(Path.Combine(_berth.Root, "images", "blobs", "sha256", big.Digest[7..])));
    }

    [Fact]
    public async Task Concurrent_pulls_of_one_image_into_one_store()
    {
        var img = TestImage.Build("concurrent", extraLayerBytes: 300_000);
        using var server = ImageServer.Serve(img);
        var pulls = Enumerable.Range(0, 3).Select(i => Task.Run(() => _berth.Run("pull", "-q", "--tls-verify=false", $"{server.Host}/c:{i}"))).ToArray();
        foreach (var r in await Task.WhenAll(pulls)) Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(3, _berth.Ok("images", "--format", "{{.Tag}}").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        foreach (var (d, data) in img.Blobs)
            Assert.Equal(data, File.ReadAllBytes(Path.Combine(_berth.Root, "images", "blobs", "sha256", d[7..])));
        Assert.Empty(Directory.GetFiles(Path.Combine(_berth.Root, "images", "ingest")));
    }
}
