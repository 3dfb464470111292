using System.Text;
using System.Text.Json.Nodes;
using Berth.Engine.Containers;
using Berth.Engine.Monitor;

namespace Berth.Engine.Tests;

public class FormatTests
{
    [Theory]
    [InlineData(0.5, "Less than a second")]
    [InlineData(1, "1 second")]
    [InlineData(59, "59 seconds")]
    [InlineData(60, "About a minute")]
    [InlineData(150, "2 minutes")]
    [InlineData(3600, "About an hour")]
    [InlineData(7200, "2 hours")]
    [InlineData(3 * 86400, "3 days")]
    public void Human_durations_as_docker_prints_them(double seconds, string expected) =>
        Assert.Equal(expected, Berth.Images.Units.HumanDuration(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void Ps_templates_and_tables()
    {
        var rows = new List<Dictionary<string, string>>
        {
            new() { ["ID"] = "abc", ["Names"] = "web", ["Status"] = "Up 2 seconds" },
            new() { ["ID"] = "defghi", ["Names"] = "db", ["Status"] = "Exited (0) 1 second ago" },
        };
        Assert.Equal("abc web\ndefghi db\n", ContainerFormat.RenderPs(rows, "{{.ID}} {{.Names}}"));
        Assert.Equal("CONTAINER ID   NAMES\nabc            web\ndefghi         db\n", ContainerFormat.RenderPs(rows, "table {{.ID}}\\t{{.Names}}"));
        Assert.Equal("{\"ID\":\"abc\",\"Names\":\"web\",\"Status\":\"Up 2 seconds\"}", ContainerFormat.RenderPs(rows, "json").Split('\n')[0]);
        Assert.Throws<EngineException>(() => ContainerFormat.RenderPs(rows, "{{.Nope}}"));
        Assert.Throws<EngineException>(() => ContainerFormat.RenderPs(rows, "{{.ID"));
    }

    [Fact]
    public void Inspect_templates_walk_the_document()
    {
        var doc = JsonNode.Parse("""{"State":{"Status":"running","Running":true,"Pid":42},"Config":{"Cmd":["sleep","1"],"Labels":{"a":"b"}}}""")!;
        Assert.Equal("running true 42", ContainerFormat.RenderInspect(doc, "{{.State.Status}} {{.State.Running}} {{.State.Pid}}"));
        Assert.Equal("[sleep 1] map[a:b] [\"sleep\",\"1\"]", ContainerFormat.RenderInspect(doc, "{{.Config.Cmd}} {{.Config.Labels}} {{json .Config.Cmd}}"));
        Assert.Throws<EngineException>(() => ContainerFormat.RenderInspect(doc, "{{.State.Nope}}"));
    }

    [Fact]
    public void Capabilities_follow_docker_add_and_drop()
    {
        Assert.Equal(SpecBuilder.DockerDefaultCaps, SpecBuilder.Capabilities(new HostConfig()));
        var hc = new HostConfig { CapDrop = ["ALL"], CapAdd = ["net_admin", "CAP_KILL"] };
        Assert.Equal(["CAP_NET_ADMIN", "CAP_KILL"], SpecBuilder.Capabilities(hc));
        Assert.Throws<EngineException>(() => SpecBuilder.Capabilities(new HostConfig { CapAdd = ["bogus"] }));
    }

    [Fact]
    public void Spec_gets_dockers_defaults_and_the_flags()
    {
        var dir = Path.Combine(Path.GetTempPath(), "berth-spec-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(dir, "etc"));
        try
        {
            var c = new ContainerRecord { Id = new string('a', 64), Rootfs = dir, Path = "sh", Args = ["-c", "x"] };
            c.Config.Hostname = "h";
            c.Config.Env = ["A=1"];
            c.HostConfig.Memory = 1 << 26;
            c.HostConfig.NanoCpus = 1_500_000_000;
            c.HostConfig.NetworkMode = "host";
            c.Mounts.Add(new MountPoint { Type = "bind", Source = "/src", Destination = "/dst", RW = false });
            var spec = SpecBuilder.Build(Berth.Oci.Runtime.DefaultSpec.Create(), c, "/cdir");
            Assert.Equal(["sh", "-c", "x"], spec.Process!.Args);
            Assert.Contains("A=1", spec.Process.Env!);
            Assert.Contains("HOSTNAME=h", spec.Process.Env!);
            Assert.DoesNotContain(spec.Process.Env!, e => e.StartsWith("TERM="));
            Assert.False(spec.Process.NoNewPrivileges);
            Assert.Null(spec.Process.Capabilities!.Ambient);
            Assert.Equal(dir, spec.Root!.Path);
            Assert.NotNull(spec.Linux!.Seccomp);
            Assert.Equal("SCMP_ACT_ERRNO", spec.Linux.Seccomp!.DefaultAction);
            Assert.DoesNotContain(spec.Linux.Namespaces!, n => n.Type == "network");
            Assert.Equal(1 << 26, spec.Linux.Resources!.Memory!.Limit);
            Assert.Equal(150_000, spec.Linux.Resources.Cpu!.Quota);
            Assert.Contains("/proc/kcore", spec.Linux.MaskedPaths!);
            Assert.Contains(spec.Mounts!, m => m.Destination == "/etc/hosts" && m.Source == "/cdir/hosts");
            Assert.Contains(spec.Mounts!, m => m.Destination == "/dst" && m.Options!.Contains("ro"));
        }
        finally { Directory.Delete(dir, true); }
    }
}
