using System.Net.Http;
using System.Text;
using System.Text.Json.Nodes;
using Berth.DockerApi.Tests;
using Berth.Images.Tests.Support;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;

namespace Berth.Clients.Docker.Tests;

/// <summary>
/// The service fixture plus what Testcontainers needs: DOCKER_HOST on the service's socket (set before
/// Testcontainers' settings are first read) and the resource reaper off — there is no internet here, so
/// no testcontainers/ryuk image; every test disposes what it made and checks that it is gone. A "tools"
/// image (the test busybox with its applets installed, so grep/nc/httpd exist) is built once with the docker CLI.
/// </summary>
public sealed class TestcontainersFixture : IDisposable
{
    public ServiceFixture Service { get; } = new();
    public string ToolsImage { get; } = "tc-tools:1";

    public TestcontainersFixture()
    {
        Environment.SetEnvironmentVariable("DOCKER_HOST", "unix://" + Service.Socket);
        Environment.SetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED", "true");
        TestcontainersSettings.ResourceReaperEnabled = false;
        var ctx = Directory.CreateTempSubdirectory("berth-tc-tools-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(ctx, "Dockerfile"), $"FROM {Service.Image}\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n");
            var r = Tools.Run(ServiceFixture.DockerCli, ["build", "-q", "-t", ToolsImage, ctx], new Dictionary<string, string>
            {
                ["DOCKER_HOST"] = "unix://" + Service.Socket, ["HOME"] = Service.Home,
                ["DOCKER_CONFIG"] = Path.Combine(Service.Home, ".docker"), ["DOCKER_BUILDKIT"] = "0",
            });
            if (r.ExitCode != 0) throw new InvalidOperationException("docker build of the tools image: " + r);
        }
        finally { Directory.Delete(ctx, true); }
    }

    public void Dispose() => Service.Dispose();
}

/// <summary>Testcontainers for .NET 4.16 (Docker.DotNet.Enhanced underneath) driving `berth system service`, unchanged.</summary>
public sealed class TestcontainersTests(TestcontainersFixture tc) : IClassFixture<TestcontainersFixture>
{
    ServiceFixture Fx => tc.Service;

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Every id of a container, network or volume the service still has (through the docker CLI).</summary>
    string Ids(params string[] args) => Fx.DockerOk(args);

    [Fact]
    public async Task Container_with_random_port_env_wait_strategies_exec_logs_copy_and_dispose()
    {
        var container = new ContainerBuilder(tc.ToolsImage)
            .WithName(Unique("tcweb"))
            .WithPortBinding(8080, true)
            .WithEnvironment("GREETING", "hello-testcontainers")
            .WithCommand("sh", "-c", "mkdir -p /www && echo \"$GREETING\" > /www/index.html && echo server starting && exec httpd -f -p 8080 -h /www")
            .WithWaitStrategy(Wait.ForUnixContainer()
                .UntilMessageIsLogged("server starting")
                .UntilInternalTcpPortIsAvailable(8080)
                .UntilExternalTcpPortIsAvailable(8080)
                .UntilHttpRequestIsSucceeded(r => r.ForPort(8080).ForPath("/index.html")))
            .Build();
        string id;
        try
        {
            await container.StartAsync();
            id = container.Id;
            Assert.Equal(TestcontainersStates.Running, container.State);
            // the random host port is published and answers from the host
            var port = container.GetMappedPublicPort(8080);
            Assert.NotEqual(0, port);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            Assert.Equal("hello-testcontainers\n", await http.GetStringAsync($"http://{container.Hostname}:{port}/index.html"));
            // Testcontainers' labels reached the container
            var labels = JsonNode.Parse(Fx.DockerOk("inspect", "--format", "{{json .Config.Labels}}", id))!;
            Assert.Equal("true", (string?)labels["org.testcontainers"]);
            Assert.Equal("dotnet", (string?)labels["org.testcontainers.lang"]);
            // exec: stdout, stderr and the exit code, apart
            var exec = await container.ExecAsync(["sh", "-c", "echo out-$GREETING; echo err-line >&2; exit 4"]);
            Assert.Equal("out-hello-testcontainers\n", exec.Stdout);
            Assert.Equal("err-line\n", exec.Stderr);
            Assert.Equal(4, exec.ExitCode);
            // logs
            var (stdout, stderr) = await container.GetLogsAsync(timestampsEnabled: false);
            Assert.Equal(("server starting\n", ""), (stdout, stderr));
            // with timestamps (Testcontainers' default): docker's fixed nine-digit RFC 3339 stamp
            var (stamped, _) = await container.GetLogsAsync();
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z server starting\n$", stamped);
            // copy in: bytes with a mode and owner, a directory tree; then read back out
            await container.CopyAsync(Encoding.UTF8.GetBytes("copied-in\n"), "/www/copied.txt", 1000, 1000, Unix.FileMode644);
            Assert.Equal("copied-in\n", await http.GetStringAsync($"http://{container.Hostname}:{port}/copied.txt"));
            Assert.Equal("copied-in\n", Encoding.UTF8.GetString(await container.ReadFileAsync("/www/copied.txt")));
            Assert.Equal("1000:1000 644\n", (await container.ExecAsync(["stat", "-c", "%u:%g %a", "/www/copied.txt"])).Stdout);
            var tree = Directory.CreateTempSubdirectory("berth-tc-tree-");
            try
            {
                Directory.CreateDirectory(Path.Combine(tree.FullName, "sub"));
                File.WriteAllText(Path.Combine(tree.FullName, "a.txt"), "A");
                File.WriteAllText(Path.Combine(tree.FullName, "sub", "b.txt"), "B");
                await container.CopyAsync(tree, "/data");
                var listed = (await container.ExecAsync(["sh", "-c", "cd /data && find . -type f | sort && cat a.txt sub/b.txt"])).Stdout;
                Assert.Equal("./a.txt\n./sub/b.txt\nAB", listed);
            }
            finally { tree.Delete(true); }
            // a file the container wrote, read out through GET /containers/{id}/archive
            Assert.Equal(0, (await container.ExecAsync(["sh", "-c", "echo made-inside > /www/made.txt"])).ExitCode);
            Assert.Equal("made-inside\n", Encoding.UTF8.GetString(await container.ReadFileAsync("/www/made.txt")));
            await Assert.ThrowsAnyAsync<Exception>(() => container.ReadFileAsync("/no/such/file"));
        }
        finally
        {
            await container.DisposeAsync();
        }
        // DisposeAsync removed the container
        Assert.DoesNotContain(id, Ids("ps", "-aq", "--no-trunc"));
        Assert.DoesNotContain(id, Fx.Berth("ps", "-a", "--no-trunc").Stdout);
    }

    [Fact]
    public async Task Network_with_aliases_and_a_volume_shared_by_containers()
    {
        var network = new NetworkBuilder().WithName(Unique("tcnet")).Build();
        var volume = new VolumeBuilder().WithName(Unique("tcvol")).Build();
        await network.CreateAsync();
        await volume.CreateAsync();
        string networkName = network.Name, volumeName = volume.Name;
        var server = new ContainerBuilder(tc.ToolsImage)
            .WithNetwork(network).WithNetworkAliases("web", "www.internal")
            .WithVolumeMount(volume, "/www")
            .WithCommand("sh", "-c", "echo served-by-alias > /www/index.html && exec httpd -f -p 8080 -h /www")
            .WithWaitStrategy(Wait.ForUnixContainer().UntilInternalTcpPortIsAvailable(8080))
            .Build();
        var client = new ContainerBuilder(tc.ToolsImage)
            .WithNetwork(network)
            .WithCommand("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done")
            .Build();
        var reader = new ContainerBuilder(tc.ToolsImage)
            .WithVolumeMount(volume, "/mnt", AccessMode.ReadOnly)
            .WithCommand("sh", "-c", "cat /mnt/index.html; echo reader-done; trap 'exit 0' TERM; while true; do sleep 0.2; done")
            .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("reader-done"))
            .Build();
        var ids = new List<string>();
        try
        {
            await server.StartAsync();
            await client.StartAsync();
            ids.Add(server.Id);
            ids.Add(client.Id);
            // the client reaches the server by both aliases on the user network
            foreach (var name in new[] { "web", "www.internal" })
            {
                var r = await client.ExecAsync(["wget", "-qO-", $"http://{name}:8080/index.html"]);
                Assert.True(r.ExitCode == 0, $"wget {name}: {r.Stderr}");
                Assert.Equal("served-by-alias\n", r.Stdout);
            }
            // the named volume carries the server's file into a third container, read-only there
            await reader.StartAsync();
            ids.Add(reader.Id);
            var (logs, _) = await reader.GetLogsAsync(timestampsEnabled: false);
            Assert.Equal("served-by-alias\nreader-done\n", logs);
            Assert.NotEqual(0, (await reader.ExecAsync(["sh", "-c", "echo x > /mnt/ro"])).ExitCode);
        }
        finally
        {
            await reader.DisposeAsync();
            await client.DisposeAsync();
            await server.DisposeAsync();
            await volume.DisposeAsync();
            await network.DisposeAsync();
        }
        var left = Ids("ps", "-aq", "--no-trunc");
        foreach (var id in ids) Assert.DoesNotContain(id, left);
        Assert.DoesNotContain(networkName, Ids("network", "ls", "--format", "{{.Name}}"));
        Assert.DoesNotContain(volumeName, Ids("volume", "ls", "--format", "{{.Name}}"));
    }

    [Fact]
    public async Task Image_from_dockerfile_builds_runs_and_is_deleted()
    {
        var ctx = Directory.CreateTempSubdirectory("berth-tc-ctx-").FullName;
        var name = Unique("tcbuilt") + ":1";
        try
        {
            File.WriteAllText(Path.Combine(ctx, "Dockerfile"), $"""
                FROM {tc.ToolsImage}
                ARG FLAVOUR=plain
                COPY greeting.txt /srv/greeting.txt
                RUN echo "flavour $FLAVOUR" > /srv/flavour.txt
                CMD ["sh", "-c", "cat /srv/greeting.txt /srv/flavour.txt; echo image-done; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
                """);
            File.WriteAllText(Path.Combine(ctx, "greeting.txt"), "built-by-testcontainers\n");
            var image = new ImageFromDockerfileBuilder()
                .WithDockerfileDirectory(ctx).WithDockerfile("Dockerfile")
                .WithName(name).WithBuildArgument("FLAVOUR", "spicy")
                .WithDeleteIfExists(true)
                .Build();
            await image.CreateAsync();
            Assert.Contains(name.Split(':')[0], Fx.DockerOk("images", "--format", "{{.Repository}}:{{.Tag}}"));
            var container = new ContainerBuilder(image)
                .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("image-done"))
                .Build();
            try
            {
                await container.StartAsync();
                var (logs, _) = await container.GetLogsAsync(timestampsEnabled: false);
                Assert.Equal("built-by-testcontainers\nflavour spicy\nimage-done\n", logs);
            }
            finally { await container.DisposeAsync(); }
            await image.DeleteAsync();
            await image.DisposeAsync();
            Assert.DoesNotContain(name, Fx.DockerOk("images", "--format", "{{.Repository}}:{{.Tag}}"));
        }
        finally { Directory.Delete(ctx, true); }
    }

    [Fact]
    public async Task A_missing_image_and_a_container_that_exits_fail_start_and_leave_nothing()
    {
        var missing = new ContainerBuilder($"{Fx.Registry.Host}/test/missing:v1").Build();
        await Assert.ThrowsAnyAsync<Exception>(() => missing.StartAsync());
        await missing.DisposeAsync();
        var before = Ids("ps", "-aq", "--no-trunc");
        var exits = new ContainerBuilder(tc.ToolsImage)
            .WithCommand("sh", "-c", "echo going-away; exit 2")
            .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("never-printed"))
            .Build();
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => exits.StartAsync());
        Assert.Contains("exit", ex.Message, StringComparison.OrdinalIgnoreCase);
        await exits.DisposeAsync();
        Assert.Equal(before, Ids("ps", "-aq", "--no-trunc"));
    }
}
