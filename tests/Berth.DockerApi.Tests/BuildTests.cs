using System.Net.Http;
using System.Text.Json.Nodes;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>POST /build with the real docker CLI (28: the classic builder when buildx is missing or
/// DOCKER_BUILDKIT=0) and Debian's docker-compose 1.29 `build`: steps, RUN output, tags, the cache,
/// a failing RUN with docker's message and exit code, and bad input leaving nothing behind.</summary>
public sealed class BuildTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    ToolResult Docker(IDictionary<string, string>? extraEnv, params string[] args)
    {
        var env = new Dictionary<string, string>
        {
            ["DOCKER_HOST"] = "unix://" + fx.Socket,
            ["HOME"] = fx.Home,
            ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker"),
        };
        foreach (var (k, v) in extraEnv ?? new Dictionary<string, string>()) env[k] = v;
        return Tools.Run(ServiceFixture.DockerCli, args, env);
    }

    static string Context(string dockerfile, params (string Path, string Text)[] files) =>
        Berth.Tests.Shared.BuildContextFiles.Write(Directory.CreateTempSubdirectory("berth-build-ctx-").FullName, dockerfile, files);

    void NoContainers() => Assert.Equal("", fx.DockerOk("ps", "-aq"));

    [Fact]
    public void Docker_build_plain_and_with_buildkit_off()
    {
        fx.DockerOk("pull", fx.Image);
        var ctx = Context($"""
            FROM {fx.Image}
            ARG WHO=nobody
            WORKDIR /srv
            COPY greeting.txt .
            RUN echo "built by $WHO" > who.txt && echo visible-run-output
            ENV MODE=prod
            LABEL com.example.built=yes
            EXPOSE 8080
            CMD ["sh", "-c", "cat /srv/who.txt /srv/greeting.txt; echo $MODE"]
            """, ("greeting.txt", "hello\n"), ("ignored.txt", "x"), (".dockerignore", "ignored.txt\n"));
        try
        {
            // plain `docker build`: the CLI falls back to the classic builder without buildx
            var r = Docker(null, "build", "-t", "apibuilt:1", "--build-arg", "WHO=docker", ctx);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("Step 1/9 : FROM " + fx.Image, r.Stdout);
            Assert.Contains("visible-run-output", r.Stdout);
            Assert.Matches(@"Successfully built [0-9a-f]{12}", r.Stdout);
            Assert.Contains("Successfully tagged apibuilt:1", r.Stdout);
            Assert.Equal("built by docker\nhello\nprod\n", fx.DockerOk("run", "--rm", "apibuilt:1"));
            var img = JsonNode.Parse(fx.DockerOk("image", "inspect", "apibuilt:1"))!.AsArray()[0]!;
            Assert.Equal("yes", (string)img["Config"]!["Labels"]!["com.example.built"]!);
            Assert.Equal("/srv", (string)img["Config"]!["WorkingDir"]!);
            NoContainers();

            // DOCKER_BUILDKIT=0, the cache, -q
            var q = Docker(new Dictionary<string, string> { ["DOCKER_BUILDKIT"] = "0" }, "build", "-q", "-t", "apibuilt:2", "--build-arg", "WHO=docker", ctx);
            Assert.True(q.ExitCode == 0, q.ToString());
            var id = q.Stdout.Trim();
            Assert.Matches("^sha256:[0-9a-f]{64}$", id);
            Assert.Equal(id, fx.DockerOk("image", "inspect", "-f", "{{.Id}}", "apibuilt:1").Trim());
            var again = Docker(new Dictionary<string, string> { ["DOCKER_BUILDKIT"] = "0" }, "build", "-t", "apibuilt:1", "--build-arg", "WHO=docker", ctx);
            Assert.Contains("Using cache", again.Stdout);
            NoContainers();
        }
        finally { Directory.Delete(ctx, true); }
    }

    [Fact]
    public void Docker_build_failing_run_and_bad_input()
    {
        fx.DockerOk("pull", fx.Image);
        var failing = Context($"FROM {fx.Image}\nRUN echo partial && exit 3\n");
        var unknown = Context($"FROM {fx.Image}\nFROB x\n");
        var missing = Context($"FROM {fx.Image}\nCOPY nothere.txt /x\n");
        try
        {
            var r = Docker(null, "build", "-t", "willfail", failing);
            Assert.Equal(3, r.ExitCode);
            Assert.Contains("The command '/bin/sh -c echo partial && exit 3' returned a non-zero code: 3", r.Stderr);
            Assert.Contains("partial", r.Stdout);
            NoContainers();
            Assert.NotEqual(0, Docker(null, "image", "inspect", "willfail").ExitCode);

            var u = Docker(null, "build", unknown);
            Assert.NotEqual(0, u.ExitCode);
            Assert.Contains("unknown instruction: FROB", u.Stderr);

            var m = Docker(null, "build", missing);
            Assert.NotEqual(0, m.ExitCode);
            Assert.Contains("nothere.txt", m.Stderr);
            NoContainers();
            Assert.True(fx.ServiceAlive);
        }
        finally
        {
            foreach (var d in new[] { failing, unknown, missing }) Directory.Delete(d, true);
        }
    }

    [Fact]
    public async Task Api_stream_shape_and_a_body_that_is_not_a_tar()
    {
        using var client = fx.ApiClient();
        using var bad = await client.PostAsync("/v1.41/build?t=x", new ByteArrayContent("this is not a tar archive, just text....."u8.ToArray()));
        var text = await bad.Content.ReadAsStringAsync();
        Assert.True((int)bad.StatusCode >= 400 || text.Contains("\"error\""), text);
        Assert.True(fx.ServiceAlive);
    }

    [Fact]
    public void Compose_build_builds_and_tags_the_service_image()
    {
        const string compose = "/usr/bin/docker-compose";
        if (!File.Exists(compose)) Assert.Fail($"{compose} is missing: scripts/install-deps.sh installs docker-compose");
        fx.DockerOk("pull", fx.Image);
        var project = "bb" + Guid.NewGuid().ToString("N")[..8];
        var dir = Context($"FROM {fx.Image}\nARG FLAVOUR\nRUN echo \"flavour $FLAVOUR\" > /flavour\nCMD [\"sh\", \"-c\", \"cat /flavour\"]\n");
        File.WriteAllText(Path.Combine(dir, "docker-compose.yml"), $$"""
            services:
              app:
                build:
                  context: .
                  args:
                    FLAVOUR: compose
                image: {{project}}-app:latest
            """);
        try
        {
            var env = new Dictionary<string, string>
            {
                ["DOCKER_HOST"] = "unix://" + fx.Socket,
                ["HOME"] = fx.Home,
                ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker"),
                ["COMPOSE_FILE"] = Path.Combine(dir, "docker-compose.yml"),
            };
            var r = Tools.Run(compose, ["-p", project, "build"], env, stdin: "");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal("flavour compose\n", fx.DockerOk("run", "--rm", project + "-app"));
            NoContainers();
        }
        finally { Directory.Delete(dir, true); }
    }
}
