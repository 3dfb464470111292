using System.Text;
using System.Text.Json.Nodes;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Run;

/// <summary>The image config's Volumes (anonymous volumes, filled from the image, removed by rm -v)
/// and Healthcheck (CMD-SHELL used, NONE and --no-healthcheck disable it).</summary>
public sealed class ImageVolumeAndHealthTests(RegistryFixture fx) : IClassFixture<RegistryFixture>, IDisposable
{
    readonly BerthCli _berth = new();
    string RunRoot => _berth.Root + "-run";

    public void Dispose()
    {
        foreach (var id in Berth("ps", "-a", "-q", "--no-trunc").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Berth("rm", "-f", "-v", id);
        try { Directory.Delete(RunRoot, true); } catch (DirectoryNotFoundException) { }
        _berth.Dispose();
    }

    ToolResult Berth(params string[] args) =>
        Tools.Run(Tools.Berth, ["--root", _berth.Root, "--runroot", RunRoot, .. Tools.WithoutNetwork(args)], new Dictionary<string, string>
        {
            ["REGISTRY_AUTH_FILE"] = _berth.AuthFile, ["BERTH_INSECURE_REGISTRIES"] = "",
        });

    string Ok(params string[] args)
    {
        var r = Berth(args);
        Assert.True(r.ExitCode == 0, $"berth {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    string Push(string marker, Action<ContainerConfig> configure, params (string, byte[])[] files)
    {
        var name = $"{fx.Host}/run/{marker}:v1";
        Skopeo.PushLayout(TestImage.Build(marker, configure: configure, files: files), name);
        Ok("pull", "-q", "--tls-verify=false", name);
        return name;
    }

    [Fact]
    public void Image_volumes_are_anonymous_volumes_filled_from_the_image()
    {
        var name = Push("vol-image", c => c.Volumes = new() { ["/data"] = new EmptyObject() }, ("data/seed.txt", Encoding.UTF8.GetBytes("seeded")));
        Ok("run", "--name", "v1", name, "sh", "-c", "cat /data/seed.txt; echo more > /data/new.txt");
        var mount = JsonNode.Parse(Ok("inspect", "v1"))!.AsArray()[0]!["Mounts"]!.AsArray().Single(m => (string?)m!["Destination"] == "/data")!;
        Assert.Equal("volume", (string?)mount["Type"]);
        var vol = (string)mount["Name"]!;
        Assert.Equal(64, vol.Length);
        Assert.Contains(vol, Ok("volume", "ls", "-q"));
        Assert.Equal("seeded", Ok("logs", "v1").Trim());
        // -v NAME over the image volume: a named volume, also filled from the image
        Assert.Equal("seeded", Ok("run", "--rm", "-v", "named:/data", name, "sh", "-c", "cat /data/seed.txt"));
        // nocopy leaves a new volume empty
        Assert.Equal("", Ok("run", "--rm", "--mount", "type=volume,src=empty,dst=/data,volume-nocopy", name, "sh", "-c", "ls /data").Trim());
        // rm without -v keeps the anonymous volume, rm -v removes it; --rm removes its own
        Ok("rm", "-v", "v1");
        Assert.DoesNotContain(vol, Ok("volume", "ls", "-q"));
        Ok("run", "--rm", name, "sh", "-c", "true");
        Assert.Equal(["empty", "named"], Ok("volume", "ls", "-q").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray());
    }

    [Fact]
    public void Image_healthcheck_is_used_unless_disabled()
    {
        var name = Push("health-image", c => c.Healthcheck = new HealthConfig { Test = ["CMD-SHELL", "echo image-check"], Interval = 200_000_000, Retries = 2 });
        Ok("run", "-d", "--name", "h", name, "sh", "-c", "sleep 1000");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        JsonNode? health = null;
        while (DateTime.UtcNow < deadline)
        {
            health = JsonNode.Parse(Ok("inspect", "h"))!.AsArray()[0]!["State"]!["Health"];
            if ((string?)health?["Status"] == "healthy") break;
            Thread.Sleep(100);
        }
        Assert.Equal("healthy", (string?)health?["Status"]);
        Assert.Equal("image-check\n", (string?)health!["Log"]!.AsArray()[0]!["Output"]);
        Ok("run", "-d", "--name", "off", "--no-healthcheck", name, "sh", "-c", "sleep 1000");
        var off = JsonNode.Parse(Ok("inspect", "off"))!.AsArray()[0]!;
        Assert.Null(off["State"]!["Health"]);
        Assert.Equal("""["NONE"]""", off["Config"]!["Healthcheck"]!["Test"]!.ToJsonString());
    }
}
