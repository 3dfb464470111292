using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`system info|df|prune`, `container prune`, `image prune` and `rmi` with containers that
/// use images.</summary>
public class SystemTests
{
    static void Import(EngineSandbox s, string reference)
    {
        var tar = Path.Combine(s.Dir, "rootfs.tar");
        if (!File.Exists(tar))
        {
            using var p = Process.Start("/bin/sh", ["-c", $"tar -C {s.Rootfs} -cf {tar} ."]);
            p.WaitForExit();
        }
        s.Ok("import", tar, reference);
    }

    [Fact]
    public void Rmi_and_prune_refuse_images_a_container_uses() => EngineSandbox.Run(s =>
    {
        Import(s, "local/used");
        Import(s, "local/unused");
        s.Ok("create", "--name", "user", "local/used", "true");
        var id = JsonNode.Parse(s.Ok("image", "inspect", "local/used").Stdout)!.AsArray()[0]!["Id"]!.ToString();
        var r = s.Berth("rmi", "local/used");
        Assert.Equal(1, r.ExitCode);
        Assert.Matches($"^berth: conflict: unable to remove repository reference \"local/used\" \\(must force\\) - container [0-9a-f]{{12}} is using its referenced image {id[7..19]}$", r.StderrLines.Single());
        var prune = s.Ok("image", "prune", "-a", "-f").Stdout;
        Assert.Contains("untagged: local/unused:latest", prune);
        Assert.DoesNotContain("local/used", prune);
        Assert.Equal("hi\n", s.Ok("run", "--rm", "local/used", "echo", "hi").Stdout);
        s.Ok("rmi", "-f", "local/used");                       // forced: untagged, the container still runs
        Assert.Equal(0, s.Berth("start", "-a", "user").ExitCode);
    });

    [Fact]
    public void Container_prune_system_df_and_info() => EngineSandbox.Run(s =>
    {
        Import(s, "local/img");
        s.Ok("run", "--name", "stopped", "local/img", "sh", "-c", "dd if=/dev/zero of=/big bs=1k count=300 2>/dev/null");
        var up = s.Ok("run", "-d", "--name", "up", "local/img", "sleep", "1000").Stdout.Trim();
        s.Ok("volume", "create", "v1");
        var df = s.Ok("system", "df").Lines;
        Assert.Matches(@"^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE$", df[0]);
        Assert.Matches(@"^Images +1 +1 +\S+ +0B \(0%\)$", df[1]);
        Assert.Matches(@"^Containers +2 +1 +30\dkB +30\dkB \(100%\)$", df[2]);
        Assert.Matches(@"^Local Volumes +1 +0 +0B +0B$", df[3]);
        Assert.Matches(@"^Build Cache +0 +0 +0B +0B$", df[4]);
        Assert.Contains("Containers space usage:", s.Ok("system", "df", "-v").Stdout);
        var info = JsonNode.Parse(s.Ok("system", "info", "--format", "json").Stdout)!;
        Assert.Equal(2, (int)info["Containers"]!);
        Assert.Equal(1, (int)info["ContainersRunning"]!);
        Assert.Equal(1, (int)info["Images"]!);
        Assert.Equal(s.Root, (string)info["DockerRootDir"]!);
        Assert.Contains(" Containers: 2", s.Ok("system", "info").Stdout);
        var pr = s.Ok("container", "prune", "-f").Lines;
        Assert.Equal("Deleted Containers:", pr[0]);
        Assert.Equal(64, pr[1].Length);
        Assert.Matches(@"^Total reclaimed space: 30\dkB$", pr[^1]);
        Assert.Equal([up[..12]], s.Ok("ps", "-aq").Lines);
        var sp = s.Ok("system", "prune", "-f", "--volumes", "-a").Stdout;
        Assert.Contains("Deleted Volumes:\nv1\n", sp);
        Assert.DoesNotContain("deleted: ", sp);                // the running container's image stays
        Assert.Empty(s.BerthIn("n\n", "container", "prune").Lines.Where(l => l.StartsWith("Deleted")));
    });
}
