using System.Text.RegularExpressions;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>
/// Debian's docker-compose 1.29 on the rest of a compose user's day: `up -d --scale`, env_file, a
/// built service, a network alias reached from another service, `ps`, `logs --tail`, `exec -T
/// --index`, `run --rm`, `restart`, `stop`/`start`, a named volume that survives `down` but not
/// `down -v`, and `down --rmi local` removing the built image. (`profiles` are not in 1.29.)
/// </summary>
public sealed class ComposeMoreTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    const string Compose = "/usr/bin/docker-compose";

    ToolResult Run(string dir, string project, params string[] args) =>
        Tools.Run(Compose, ["-p", project, .. args], new Dictionary<string, string>
        {
            ["DOCKER_HOST"] = "unix://" + fx.Socket,
            ["HOME"] = fx.Home,
            ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker"),
            ["COMPOSE_FILE"] = Path.Combine(dir, "docker-compose.yml"),
            ["DOCKER_BUILDKIT"] = "0",
            ["COMPOSE_DOCKER_CLI_BUILD"] = "0",
        }, stdin: "");

    string Ok(string dir, string project, params string[] args)
    {
        var r = Run(dir, project, args);
        Assert.True(r.ExitCode == 0, $"docker-compose {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    static int UpLines(string ps) => ps.Split('\n').Count(l => Regex.IsMatch(l, @"\bUp\b"));

    [Fact]
    public void Scale_env_file_build_alias_logs_exec_run_restart_and_down_with_volumes_and_images()
    {
        if (!File.Exists(Compose)) Assert.Fail($"{Compose} is missing: scripts/install-deps.sh installs docker-compose");
        var project = "bm" + Guid.NewGuid().ToString("N")[..8];
        var dir = Directory.CreateTempSubdirectory("berth-compose-more-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "api"));
        File.WriteAllText(Path.Combine(dir, "api", "Dockerfile"), $"FROM {fx.Image}\nRUN echo built > /built.txt\n");
        File.WriteAllText(Path.Combine(dir, "web.env"), "# the web tier\nGREETING=from-env-file\nEMPTY=\n");
        File.WriteAllText(Path.Combine(dir, "docker-compose.yml"), $$"""
            services:
              web:
                image: {{fx.Image}}
                env_file: [web.env]
                command: ["sh", "-c", "mkdir -p /www && echo \"$$GREETING\" > /www/index.html && echo web-first && echo web-up && exec busybox httpd -f -p 8080 -h /www"]
                stop_grace_period: 1s
              api:
                build: ./api
                networks:
                  default:
                    aliases: [backend.internal]
                volumes:
                  - data:/data
                command: ["sh", "-c", "echo api-$$(cat /built.txt) >> /data/log && mkdir -p /www && echo api-page > /www/index.html && exec busybox httpd -f -p 9090 -h /www"]
                stop_grace_period: 1s
              client:
                image: {{fx.Image}}
                command: ["sh", "-c", "trap 'exit 0' TERM; while true; do busybox sleep 0.2; done"]
            volumes:
              data:
            """);
        var builtImage = project + "_api";
        try
        {
            var up = Run(dir, project, "up", "-d", "--scale", "web=2");
            Assert.True(up.ExitCode == 0, "up -d --scale web=2: " + up);
            var ps = Ok(dir, project, "ps");
            foreach (var name in new[] { "web_1", "web_2", "api_1", "client_1" }) Assert.Contains($"{project}_{name}", ps);
            Assert.Equal(4, UpLines(ps));
            Assert.Equal(2, Ok(dir, project, "ps", "-q", "web").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            // the built image is the project's own
            Assert.Contains(builtImage, fx.DockerOk("images", "--format", "{{.Repository}}"));

            // env_file reached both replicas; exec -T --index picks one
            foreach (var index in new[] { "1", "2" })
                Assert.Equal("from-env-file|\n", Ok(dir, project, "exec", "-T", "--index", index, "web", "sh", "-c", "echo \"$GREETING|$EMPTY\""));
            // the alias and the service names answer from another service on the project network
            Assert.Equal("api-page\n", Eventually(() => Run(dir, project, "exec", "-T", "client", "busybox", "wget", "-qO-", "http://backend.internal:9090/index.html")));
            Assert.Equal("from-env-file\n", Eventually(() => Run(dir, project, "exec", "-T", "client", "busybox", "wget", "-qO-", "http://web:8080/index.html")));
            var noService = Run(dir, project, "exec", "-T", "nosuch", "true");
            // compose 1.29 finds no such service itself and exits 1; its NoSuchService message is not
            // printed by Debian's build (nothing on either stream), so only the exit code is checked
            Assert.Equal(1, noService.ExitCode);

            // logs --tail 1: the last line of each replica only
            var logs = Ok(dir, project, "logs", "--no-color", "--tail", "1", "web");
            Assert.Equal(2, logs.Split('\n').Count(l => l.Contains("web-up")));
            Assert.DoesNotContain("web-first", logs);
            Assert.Equal(2, Ok(dir, project, "logs", "--no-color", "web").Split('\n').Count(l => l.Contains("web-first")));

            // run --rm: a one-off container of a service, on its network, removed afterwards
            Assert.Equal("api-page\n", Ok(dir, project, "run", "--rm", "-T", "client", "busybox", "wget", "-qO-", "http://backend.internal:9090/index.html"));
            Assert.Equal("one-off 7\n", Ok(dir, project, "run", "--rm", "-T", "-e", "N=7", "client", "sh", "-c", "echo one-off $N"));
            var failed = Run(dir, project, "run", "--rm", "-T", "client", "sh", "-c", "exit 4");
            Assert.Equal(4, failed.ExitCode);
            Assert.Empty(fx.DockerOk("ps", "-aq", "--filter", $"label=com.docker.compose.project={project}", "--filter", "label=com.docker.compose.oneoff=True").Trim());

            // restart: new start times, still up
            string Started(string c) => fx.DockerOk("inspect", "--format", "{{.State.StartedAt}}", c).Trim();
            var before = Started($"{project}_web_1");
            Ok(dir, project, "restart", "-t", "1", "web");
            Assert.NotEqual(before, Started($"{project}_web_1"));
            Assert.Equal(4, UpLines(Ok(dir, project, "ps")));

            // stop/start one service: the volume keeps what each start wrote
            Ok(dir, project, "stop", "api");
            Assert.Matches(@"\bExit \d+", Ok(dir, project, "ps", "api"));
            Ok(dir, project, "start", "api");
            Assert.Equal("api-built\napi-built\n", Ok(dir, project, "exec", "-T", "api", "busybox", "cat", "/data/log"));

            // down: containers and network go, the named volume and the built image stay
            Ok(dir, project, "down", "-t", "1");
            Assert.Empty(fx.DockerOk("ps", "-aq", "--filter", $"label=com.docker.compose.project={project}").Trim());
            Assert.DoesNotContain(project, fx.DockerOk("network", "ls", "--format", "{{.Name}}"));
            Assert.Contains($"{project}_data", fx.DockerOk("volume", "ls", "--format", "{{.Name}}"));
            Assert.Contains(builtImage, fx.DockerOk("images", "--format", "{{.Repository}}"));
            Ok(dir, project, "up", "-d");
            Assert.Equal("api-built\napi-built\napi-built\n", Eventually(() => Run(dir, project, "exec", "-T", "api", "busybox", "cat", "/data/log"), "api-built\napi-built\napi-built\n"));

            // down -v --rmi local: the volume and the built image go too; the pulled image stays
            Ok(dir, project, "down", "-v", "--rmi", "local", "-t", "1");
            Assert.Empty(fx.DockerOk("ps", "-aq", "--filter", $"label=com.docker.compose.project={project}").Trim());
            Assert.DoesNotContain(project, fx.DockerOk("volume", "ls", "--format", "{{.Name}}"));
            Assert.DoesNotContain(project, fx.DockerOk("network", "ls", "--format", "{{.Name}}"));
            Assert.DoesNotContain(builtImage, fx.DockerOk("images", "--format", "{{.Repository}}"));
            Assert.Contains(fx.Image, fx.DockerOk("images", "--format", "{{.Repository}}:{{.Tag}}"));
            Assert.DoesNotContain(project, fx.Berth("ps", "-a").Stdout);
        }
        finally
        {
            Run(dir, project, "down", "-v", "--rmi", "local", "-t", "1");
            Directory.Delete(dir, true);
        }
    }

    /// <summary>Retries a compose command until it succeeds (and prints <paramref name="want"/>, when
    /// given) for 20 s: a replica's server may not listen yet.</summary>
    static string Eventually(Func<ToolResult> f, string? want = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var r = f();
            if (r.ExitCode == 0 && (want is null || r.Stdout == want)) return r.Stdout;
            if (DateTime.UtcNow > deadline) return r.ToString();
            Thread.Sleep(200);
        }
    }
}
