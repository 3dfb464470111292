using Berth.Images.Tests.Support;

namespace Berth.Images.Tests.Run;

/// <summary>
/// `berth run IMAGE`: the engine on top of the image store (here because this project has the
/// registry fixture). The image's config gives the defaults, the container writes to its own
/// snapshot, and removing the container leaves no mount or snapshot behind.
/// </summary>
public sealed class RunImageTests(RegistryFixture fx) : IClassFixture<RegistryFixture>, IDisposable
{
    readonly BerthCli _berth = new();
    string RunRoot => _berth.Root + "-run";

    public void Dispose()
    {
        foreach (var id in Berth("ps", "-a", "-q", "--no-trunc").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Berth("rm", "-f", id);
        try { Directory.Delete(RunRoot, true); } catch (DirectoryNotFoundException) { }
        _berth.Dispose();
    }

    ToolResult Berth(params string[] args) => BerthWithInsecure(null, args);

    ToolResult BerthWithInsecure(string? insecure, params string[] args) =>
        Tools.Run(Tools.Berth, ["--root", _berth.Root, "--runroot", RunRoot, .. Tools.WithoutNetwork(args)], new Dictionary<string, string>
        {
            ["REGISTRY_AUTH_FILE"] = _berth.AuthFile,
            ["BERTH_INSECURE_REGISTRIES"] = insecure ?? "",
        });

    string Ok(params string[] args)
    {
        var r = Berth(args);
        Assert.True(r.ExitCode == 0, $"berth {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    /// <summary>`run -i IMAGE` with no command: the image's Cmd (/bin/sh) reads the script from stdin.</summary>
    string RunWithStdin(string image, string script)
    {
        var r = Tools.Run(Tools.Berth, ["--root", _berth.Root, "--runroot", RunRoot, "run", "--network", "none", "--rm", "-i", image],
            new Dictionary<string, string> { ["BERTH_INSECURE_REGISTRIES"] = "" }, script);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    void AssertNothingMounted() =>
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(_berth.Root, StringComparison.Ordinal));

    string SnapshotContainers => Path.Combine(_berth.Root, "images", "snapshots", File.ReadAllText(Path.Combine(_berth.Root, "images", "snapshots", "driver")).Trim(), "containers");

    [Fact]
    public void Run_uses_the_image_config_and_a_private_writable_layer()
    {
        var img = TestImage.Build("run-image");
        var name = $"{fx.Host}/run/image:v1";
        Skopeo.PushLayout(img, name);
        Ok("pull", "-q", "--tls-verify=false", name);

        Assert.Equal("run-image", Ok("run", "--rm", name, "/bin/busybox", "cat", "/etc/marker"));
        // Env from the image (MARKER), overridden by -e; Cmd from the image when none is given
        Assert.Equal("run-image\n", Ok("run", "--rm", name, "sh", "-c", "echo $MARKER"));
        Assert.Equal("mine\n", Ok("run", "--rm", "-e", "MARKER=mine", name, "sh", "-c", "echo $MARKER"));
        Assert.Equal("from-stdin\n", RunWithStdin(name, "echo from-stdin\n"));
        // writes stay in the container's snapshot: a second container sees the image as pulled
        Ok("run", "--rm", name, "sh", "-c", "echo changed > /etc/marker; /bin/busybox rm /bin/sh");
        Assert.Equal("run-image", Ok("run", "--rm", name, "/bin/busybox", "cat", "/etc/marker"));
        // a named container keeps its layer until rm
        Ok("run", "--name", "keep", name, "sh", "-c", "echo kept > /kept");
        Assert.Single(Directory.GetDirectories(SnapshotContainers));
        Ok("rm", "keep");
        Assert.Empty(Directory.GetDirectories(SnapshotContainers));
        AssertNothingMounted();
        // the command-not-found exit code comes from the image's rootfs
        var notFound = Berth("run", "--rm", name, "/no/such/binary");
        Assert.True(notFound.ExitCode == 127, notFound.ToString());
        AssertNothingMounted();
    }

    [Fact]
    public void Run_pulls_a_missing_image_and_an_unknown_one_fails_in_one_line()
    {
        var img = TestImage.Build("run-pull");
        var name = $"{fx.Host}/run/pull:v1";
        Skopeo.PushLayout(img, name);
        var r = BerthWithInsecure(fx.Host, "run", "--rm", name, "/bin/busybox", "cat", "/etc/marker");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("run-pull", r.Stdout);
        Assert.Contains("Unable to find image", r.Stderr);
        Assert.Contains(name, Ok("images", "--format", "{{.Repository}}:{{.Tag}}"));

        var missing = BerthWithInsecure(fx.Host, "run", "--rm", $"{fx.Host}/run/absent:v1", "true");
        Assert.Equal(125, missing.ExitCode);
        Assert.Single(missing.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("berth: ", StringComparison.Ordinal));
        Assert.Equal("", Ok("ps", "-a", "-q"));
        AssertNothingMounted();
    }
}
