using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>The real docker CLI against `berth system service`.</summary>
public sealed class DockerCliTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    void Pull() => fx.DockerOk("pull", fx.Image);

    [Fact]
    public void Version_and_info_answer_in_dockers_shape()
    {
        Assert.Equal("1.47", fx.DockerOk("version", "--format", "{{.Server.APIVersion}}").Trim());
        Assert.Equal("1.24", fx.DockerOk("version", "--format", "{{.Server.MinAPIVersion}}").Trim());
        var info = fx.DockerOk("info", "--format", "{{.OSType}} {{.NCPU}} {{.DockerRootDir}}").Trim();
        Assert.Equal($"linux {Environment.ProcessorCount} {fx.Root}", info);
    }

    [Fact]
    public void Pull_run_rm_and_missing_image_pulled_by_the_cli()
    {
        var pull = fx.DockerOk("pull", fx.Image);
        Assert.Contains("Digest: sha256:", pull);
        Assert.Contains("Status:", pull);
        Assert.Contains(fx.Image, fx.DockerOk("images", "--format", "{{.Repository}}:{{.Tag}}"));
        Assert.Equal("hi\n", fx.DockerOk("run", "--rm", fx.Image, "sh", "-c", "echo hi"));
        // exit status and stderr come back through the hijacked attach
        var r = fx.Docker("run", "--rm", fx.Image, "sh", "-c", "echo out; echo err >&2; exit 7");
        Assert.Equal(7, r.ExitCode);
        Assert.Equal("out\n", r.Stdout);
        Assert.Contains("err", r.Stderr);
        // stdin with -i
        var cat = fx.DockerWithInput("piped\n", "run", "--rm", "-i", fx.Image, "sh", "-c", "cat");
        Assert.True(cat.ExitCode == 0, cat.ToString());
        Assert.Equal("piped\n", cat.Stdout);
        // nothing left behind by --rm
        Assert.Empty(fx.Berth("ps", "-aq").Stdout.Trim());
        // an unknown image: 404 from create, then the CLI's pull fails in docker's words
        var missing = fx.Docker("run", "--rm", $"{fx.Registry.Host}/no/such:v1", "true");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("Unable to find image", missing.Stderr);
    }

    [Fact]
    public void HostConfig_fields_the_cli_sends_reach_the_engine_as_berth_run_gives_them()
    {
        Pull();
        // the create body's HostConfig is the engine's: --init, --ulimit, --mount and --memory-swap apply as
        // they do for `berth run` (one code path validates and applies them)
        var r = fx.Docker("run", "--rm", "--init", "--ulimit", "nofile=1024:2048", "--mount", "type=tmpfs,destination=/scratch,tmpfs-size=1m",
            "--memory", "64m", "--memory-swap", "128m", fx.Image, "sh", "-c", "[ \"$(cat /proc/1/comm)\" != sh ] && echo init is pid 1; ulimit -n; grep ' /scratch ' /proc/mounts | cut -d' ' -f3");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("init is pid 1\n1024\ntmpfs\n", r.Stdout);
        var id = fx.DockerOk("create", "--init", "--mount", "type=tmpfs,destination=/scratch", "--ulimit", "nofile=1024:2048", fx.Image, "true").Trim();
        try
        {
            Assert.Equal("""true tmpfs /scratch [{"Name":"nofile","Hard":2048,"Soft":1024}]""", fx.DockerOk("inspect", "--format",
                "{{json .HostConfig.Init}} {{range .HostConfig.Mounts}}{{.Type}} {{.Target}}{{end}} {{json .HostConfig.Ulimits}}", id).Trim());
        }
        finally { fx.Docker("rm", "-f", id); }
        // docker's validation of --mount, from the engine
        var bad = fx.Docker("run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/x", fx.Image, "true");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("bind source path does not exist: /no/such/dir", bad.Stderr);
        Assert.Empty(fx.Berth("ps", "-aq").Stdout.Trim());
    }

    [Fact]
    public void Detached_container_ps_logs_exec_stop_rm_seen_by_berth_too()
    {
        Pull();
        var id = fx.DockerOk("run", "-d", "--name", "web", "-l", "app=web", fx.Image, "sh", "-c", "echo started; echo oops >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done").Trim();
        Assert.Equal(64, id.Length);
        try
        {
            Assert.Contains("web", fx.DockerOk("ps", "--format", "{{.Names}} {{.Status}}"));
            Assert.Contains("web", fx.DockerOk("ps", "--filter", "label=app=web", "--format", "{{.Names}}"));
            Assert.Empty(fx.DockerOk("ps", "--filter", "label=app=other", "-q").Trim());
            // the CLI's own view agrees: one engine
            Assert.Contains(id[..12], fx.Berth("ps").Stdout);
            ServiceFixtureWait(() => fx.DockerOk("logs", "web").Contains("started"));
            var logs = fx.Docker("logs", "web");
            Assert.Equal("started\n", logs.Stdout);
            Assert.Equal("oops\n", logs.Stderr);
            Assert.Contains("started", fx.DockerOk("logs", "-t", "--tail", "1", "web") + fx.Docker("logs", "--tail", "5", "web").Stdout);
            Assert.Equal("inexec\n", fx.DockerOk("exec", "web", "sh", "-c", "echo inexec"));
            Assert.Equal(3, fx.Docker("exec", "web", "sh", "-c", "exit 3").ExitCode);
            Assert.Equal("running", fx.DockerOk("inspect", "--format", "{{.State.Status}}", "web").Trim());
            Assert.Contains("PID", fx.DockerOk("top", "web"));
            // logs -f ends when the container stops
            var follow = Task.Run(() => fx.Docker("logs", "-f", "web"));
            Thread.Sleep(300);
            fx.DockerOk("stop", "-t", "5", "web");
            Assert.True(follow.Wait(20_000), "logs -f did not end with the container");
            Assert.Contains("started", follow.Result.Stdout);
            Assert.Equal("exited", fx.DockerOk("inspect", "--format", "{{.State.Status}}", "web").Trim());
            Assert.Contains("web", fx.DockerOk("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"));
        }
        finally { fx.Docker("rm", "-f", "web"); }
        Assert.DoesNotContain(id[..12], fx.Berth("ps", "-a").Stdout);
    }

    [Fact]
    public void A_container_made_by_berth_is_seen_and_removed_by_docker()
    {
        Pull();
        var r = fx.Berth("run", "-d", "--name", "fromberth", fx.Image, "sh", "-c", "sleep 60");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("fromberth", fx.DockerOk("ps", "--format", "{{.Names}}"));
        var rm = fx.Docker("rm", "fromberth");
        Assert.NotEqual(0, rm.ExitCode);
        Assert.Contains("You cannot remove a running container", rm.Stderr);   // dockerd's words
        fx.DockerOk("rm", "-f", "fromberth");
        Assert.DoesNotContain("fromberth", fx.Berth("ps", "-a").Stdout);
    }

    [Fact]
    public void Run_it_under_a_pty_gives_a_terminal()
    {
        Pull();
        // script(1) gives docker a pty, as a user's terminal
        var r = Tools.Run("script", ["-qefc", $"docker run -it --rm {fx.Image} sh -c 'test -t 0 && echo tty-ok; exit 4'", "/dev/null"], new Dictionary<string, string>
        {
            ["DOCKER_HOST"] = "unix://" + fx.Socket, ["HOME"] = fx.Home,
        }, stdin: "");
        Assert.Contains("tty-ok", r.Stdout);
        Assert.Equal(4, r.ExitCode);
    }

    [Fact]
    public void Images_tag_push_rmi_against_the_local_registry()
    {
        Pull();
        var pushed = $"{fx.Registry.Host}/test/pushed:v2";
        fx.DockerOk("tag", fx.Image, pushed);
        Assert.Contains(pushed, fx.DockerOk("images", "--format", "{{.Repository}}:{{.Tag}}"));
        var push = fx.DockerOk("push", pushed);
        Assert.Contains("digest: sha256:", push);
        var inspect = fx.DockerOk("image", "inspect", "--format", "{{.Os}} {{len .RootFS.Layers}}", pushed).Trim();
        Assert.Equal("linux 1", inspect);
        var rmi = fx.DockerOk("rmi", pushed);
        Assert.Contains("Untagged: " + pushed, rmi);
        Assert.DoesNotContain(pushed, fx.DockerOk("images", "--format", "{{.Repository}}:{{.Tag}}"));
        // pulled back from the registry
        Assert.Contains("Digest:", fx.DockerOk("pull", pushed));
        fx.DockerOk("rmi", pushed);
        var gone = fx.Docker("image", "inspect", pushed);
        Assert.NotEqual(0, gone.ExitCode);
        Assert.Contains("No such image", gone.Stderr);
    }

    [Fact]
    public void Volumes_create_ls_inspect_rm()
    {
        Assert.Equal("vol1\n", fx.DockerOk("volume", "create", "vol1"));
        Assert.Contains("vol1", fx.DockerOk("volume", "ls", "--format", "{{.Name}}"));
        Assert.Equal("local\n", fx.DockerOk("volume", "inspect", "--format", "{{.Driver}}", "vol1"));
        Pull();
        Assert.Equal("", fx.DockerOk("run", "--rm", "-v", "vol1:/data", fx.Image, "sh", "-c", "echo kept > /data/f"));
        Assert.Equal("kept\n", fx.DockerOk("run", "--rm", "-v", "vol1:/data", fx.Image, "sh", "-c", "cat /data/f"));
        fx.DockerOk("volume", "rm", "vol1");
        Assert.DoesNotContain("vol1", fx.DockerOk("volume", "ls", "--format", "{{.Name}}"));
        var r = fx.Docker("volume", "inspect", "vol1");
        Assert.NotEqual(0, r.ExitCode);
    }

    [Fact]
    public void Networks_create_ls_inspect_names_connect_disconnect_rm()
    {
        Pull();
        var net = "dnet" + Guid.NewGuid().ToString("N")[..6];
        var id = fx.DockerOk("network", "create", "--subnet", $"10.216.{Random.Shared.Next(0, 250)}.0/24", net).Trim();
        try
        {
            Assert.Equal(64, id.Length);
            Assert.Contains(net, fx.DockerOk("network", "ls", "--format", "{{.Name}}"));
            Assert.Equal("bridge", fx.DockerOk("network", "inspect", "--format", "{{.Driver}}", net).Trim());
            Assert.NotEqual(0, fx.Docker("network", "create", net).ExitCode); // a name is taken once
            fx.DockerOk("run", "-d", "--name", "srv", "--network", net, "--network-alias", "api", fx.Image,
                "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done");
            // names and aliases through the network's DNS, from another container on it
            ServiceFixtureWait(() => fx.Docker("run", "--rm", "--network", net, fx.Image, "sh", "-c", "ping -c1 -W2 api && ping -c1 -W2 srv").ExitCode == 0);
            Assert.Contains("srv", fx.DockerOk("network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", net));
            var busy = fx.Docker("network", "rm", net);
            Assert.NotEqual(0, busy.ExitCode);
            Assert.Contains("active endpoints", busy.Stderr);
            fx.DockerOk("network", "disconnect", net, "srv");
            Assert.DoesNotContain("srv", fx.DockerOk("network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", net));
            fx.DockerOk("network", "connect", net, "srv");
            Assert.Contains("srv", fx.DockerOk("network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", net));
            fx.DockerOk("rm", "-f", "srv");
        }
        finally
        {
            fx.Docker("rm", "-f", "srv");
            fx.Docker("network", "rm", net);
        }
        Assert.NotEqual(0, fx.Docker("network", "inspect", net).ExitCode);
        // docker 28's CLI shows the daemon's "network nosuch-net not found"; docker.io's 20.10 its own words
        Assert.Matches("not found|No such network: nosuch-net", fx.Docker("network", "rm", "nosuch-net").Stderr);
    }

    [Fact]
    public void Create_naming_two_networks_joins_both_from_api_1_44()
    {
        Pull();
        var a = "mna" + Guid.NewGuid().ToString("N")[..6];
        var b = "mnb" + Guid.NewGuid().ToString("N")[..6];
        var name = "multi" + Guid.NewGuid().ToString("N")[..6];
        var third = Random.Shared.Next(0, 125) * 2;
        fx.DockerOk("network", "create", "--subnet", $"10.217.{third}.0/24", a);
        fx.DockerOk("network", "create", "--subnet", $"10.217.{third + 1}.0/24", b);
        try
        {
            // docker 28 speaks 1.47 here: the create carries both endpoints, the container joins both (the
            // first --network's is eth0 with the default route), by name on each
            fx.DockerOk("run", "-d", "--name", name, "--network", a, "--network", $"name={b},alias=second", fx.Image,
                "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done");
            Assert.Equal($"{a} {b} \n", fx.DockerOk("inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", name));
            var addrs = fx.DockerOk("exec", name, "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'; ip -o -4 addr show eth1 | awk '{print $4}'; ip route | grep default | awk '{print $5}'");
            Assert.Matches($@"^10\.217\.{third}\.\d+/24\n10\.217\.{third + 1}\.\d+/24\neth0\n$", addrs);
            ServiceFixtureWait(() => fx.Docker("run", "--rm", "--network", b, fx.Image, "sh", "-c", $"ping -c1 -W2 second && ping -c1 -W2 {name}").ExitCode == 0);
            ServiceFixtureWait(() => fx.Docker("run", "--rm", "--network", a, fx.Image, "sh", "-c", $"ping -c1 -W2 {name}").ExitCode == 0);
            Assert.Contains(name, fx.DockerOk("network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", b));
            // a network that does not exist refuses the create and leaves nothing
            var bad = fx.Docker("create", "--name", name + "x", "--network", a, "--network", "nosuch-net", fx.Image, "true");
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("network nosuch-net not found", bad.Stderr);
            Assert.NotEqual(0, fx.Docker("inspect", name + "x").ExitCode);
            fx.DockerOk("rm", "-f", name);
            // an older API refuses more than one endpoint in dockerd's words
            var old = Tools.Run(ServiceFixture.DockerCli, ["create", "--network", a, "--network", b, fx.Image, "true"], new Dictionary<string, string>
            {
                ["DOCKER_HOST"] = "unix://" + fx.Socket, ["HOME"] = fx.Home, ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker"), ["DOCKER_API_VERSION"] = "1.43",
            });
            Assert.NotEqual(0, old.ExitCode);
            Assert.Contains($"Container cannot be connected to network endpoints: {a}, {b}", old.Stderr);
        }
        finally
        {
            fx.Docker("rm", "-f", name);
            fx.Docker("rm", "-f", name + "x");
            fx.Docker("network", "rm", a);
            fx.Docker("network", "rm", b);
        }
    }

    static void ServiceFixtureWait(Func<bool> cond)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!cond()) { if (DateTime.UtcNow > deadline) Assert.Fail("timed out"); Thread.Sleep(50); }
    }
}
