using System.Net.Http;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>
/// Debian's docker-compose (1.29, the python docker SDK) against `berth system service`: a project of
/// two services on the project's network, a named volume, environment, labels, depends_on and a port
/// published on 127.0.0.1, through up/ps/logs/exec/port/stop/start/down -v.
/// </summary>
public sealed class ComposeTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    const string Compose = "/usr/bin/docker-compose";

    ToolResult Run(string dir, string project, params string[] args) => RunWith(dir, project, false, args);

    /// <summary>docker-compose with the service's socket; <paramref name="noCli"/>: `exec` through the
    /// python SDK's own hijacked stream instead of calling the docker CLI (compose's default).</summary>
    ToolResult RunWith(string dir, string project, bool noCli, params string[] args) =>
        Tools.Run(Compose, ["-p", project, .. args], new Dictionary<string, string>
        {
            ["DOCKER_HOST"] = "unix://" + fx.Socket,
            ["HOME"] = fx.Home,
            ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker"),
            ["COMPOSE_FILE"] = Path.Combine(dir, "docker-compose.yml"),
            ["COMPOSE_INTERACTIVE_NO_CLI"] = noCli ? "1" : "",
        }, stdin: "");

    string Ok(string dir, string project, params string[] args) => OkWith(dir, project, false, args);

    string OkWith(string dir, string project, bool noCli, params string[] args)
    {
        var r = RunWith(dir, project, noCli, args);
        Assert.True(r.ExitCode == 0, $"docker-compose {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    [Fact]
    public async Task Two_services_network_volume_ports_up_exec_stop_start_down()
    {
        if (!File.Exists(Compose)) Assert.Fail($"{Compose} is missing: scripts/install-deps.sh installs docker-compose");
        var project = "bc" + Guid.NewGuid().ToString("N")[..8];
        var port = Tools.FreePort();
        var dir = Directory.CreateTempSubdirectory("berth-compose-").FullName;
        File.WriteAllText(Path.Combine(dir, "docker-compose.yml"), $$"""
            services:
              web:
                image: {{fx.Image}}
                environment:
                  GREETING: hello-from-compose
                labels:
                  com.example.tier: frontend
                volumes:
                  - site:/www
                ports:
                  - "127.0.0.1:{{port}}:8080"
                command: ["sh", "-c", "echo \"$$GREETING\" > /www/index.html && echo web ready && exec busybox httpd -f -p 8080 -h /www"]
                stop_grace_period: 2s
                healthcheck:
                  test: ["CMD", "busybox", "wget", "-qO", "/dev/null", "http://127.0.0.1:8080/index.html"]
                  interval: 1s
                  timeout: 5s
                  retries: 30
              client:
                image: {{fx.Image}}
                depends_on:
                  web:
                    condition: service_healthy
                command: ["sh", "-c", "trap 'exit 0' TERM; while true; do busybox sleep 0.2; done"]
            volumes:
              site:
            """);
        try
        {
            var up = Run(dir, project, "up", "-d");
            Assert.True(up.ExitCode == 0, "up -d: " + up);
            // ps: both services up, under compose's container names
            var ps = Ok(dir, project, "ps");
            Assert.Contains($"{project}_web_1", ps);
            Assert.Contains($"{project}_client_1", ps);
            Assert.Equal(2, ps.Split('\n').Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"\bUp\b")));
            // compose waited for web's health check before it started client
            Assert.Equal("healthy", fx.DockerOk("inspect", "--format", "{{.State.Health.Status}}", $"{project}_web_1").Trim());
            Assert.Equal(2, Ok(dir, project, "ps", "-q").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            // labels and environment reached the container
            Assert.Equal("frontend", fx.DockerOk("inspect", "--format", "{{index .Config.Labels \"com.example.tier\"}}", $"{project}_web_1").Trim());
            Assert.Equal(project, fx.DockerOk("inspect", "--format", "{{index .Config.Labels \"com.docker.compose.project\"}}", $"{project}_web_1").Trim());
            // the published port answers from the host
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var body = await Eventually(async () => await http.GetStringAsync($"http://127.0.0.1:{port}/index.html"));
            Assert.Equal("hello-from-compose\n", body);
            Assert.Equal($"127.0.0.1:{port}", Ok(dir, project, "port", "web", "8080").Trim());
            // the client reaches web by its service name on the project network
            Assert.Equal("hello-from-compose\n", Ok(dir, project, "exec", "-T", "client", "busybox", "wget", "-qO-", "http://web:8080/index.html"));
            Assert.Equal("frontend-env hello-from-compose\n", OkWith(dir, project, true, "exec", "-T", "web", "sh", "-c", "echo frontend-env $GREETING"));
            var failing = Run(dir, project, "exec", "-T", "client", "sh", "-c", "exit 3");
            Assert.Equal(3, failing.ExitCode);
            Assert.Contains("web ready", Ok(dir, project, "logs", "--no-color", "web"));
            // the named volume and network carry compose's labels
            Assert.Contains($"{project}_site", fx.DockerOk("volume", "ls", "--filter", $"label=com.docker.compose.project={project}", "--format", "{{.Name}}"));
            Assert.Contains($"{project}_default", fx.DockerOk("network", "ls", "--filter", $"label=com.docker.compose.project={project}", "--format", "{{.Name}}"));
            // stop / start
            Ok(dir, project, "stop");
            Assert.Equal(2, Ok(dir, project, "ps").Split('\n').Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"\bExit \d+")));
            Ok(dir, project, "start");
            Assert.Equal("hello-from-compose\n", await Eventually(async () => await http.GetStringAsync($"http://127.0.0.1:{port}/index.html")));
            Assert.Equal("hello-from-compose\n", Ok(dir, project, "exec", "-T", "client", "busybox", "wget", "-qO-", "http://web:8080/index.html"));
            // down -v: containers, the network and the volume are gone
            Ok(dir, project, "down", "-v");
            Assert.Empty(fx.DockerOk("ps", "-a", "--filter", $"label=com.docker.compose.project={project}", "-q").Trim());
            Assert.DoesNotContain(project, fx.DockerOk("network", "ls", "--format", "{{.Name}}"));
            Assert.DoesNotContain(project, fx.DockerOk("volume", "ls", "--format", "{{.Name}}"));
            Assert.DoesNotContain(project, fx.Berth("ps", "-a").Stdout);
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetStringAsync($"http://127.0.0.1:{port}/index.html"));
        }
        finally
        {
            Run(dir, project, "down", "-v", "-t", "1");
            Directory.Delete(dir, true);
        }
    }

    static async Task<T> Eventually<T>(Func<Task<T>> f)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try { return await f(); }
            catch (Exception) when (DateTime.UtcNow < deadline) { await Task.Delay(100); }
        }
    }
}
