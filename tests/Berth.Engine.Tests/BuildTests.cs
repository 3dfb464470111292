using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`berth build`: images from a Dockerfile on a local busybox image (imported, no registry):
/// RUN through containers, COPY from the context, the config instructions, multi-stage, the cache,
/// and bad input with one line and nothing left behind.</summary>
public class BuildTests
{
    static void BaseImage(EngineSandbox s)
    {
        var tar = Path.Combine(s.Dir, "rootfs.tar");
        Sh($"tar -C {s.Rootfs} -cf {tar} .");
        s.Ok("import", tar, "local/busybox:1");
    }

    static void Sh(string cmd)
    {
        var psi = new ProcessStartInfo("/bin/sh", ["-c", cmd]) { RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{cmd}: {e}");
    }

    static string Context(EngineSandbox s, string dockerfile, params (string Path, string Text)[] files) =>
        Berth.Tests.Shared.BuildContextFiles.Write(Path.Combine(s.Dir, "ctx-" + Guid.NewGuid().ToString("N")[..6]), dockerfile, files);

    static void NothingLeft(EngineSandbox s)
    {
        Assert.Equal("", s.Ok("ps", "-aq").Stdout);
        var tmp = Path.Combine(s.Root, "build", "tmp");
        Assert.True(!Directory.Exists(tmp) || Directory.GetFileSystemEntries(tmp).Length == 0, "build temp files left: " + string.Join(", ", Directory.Exists(tmp) ? Directory.GetFileSystemEntries(tmp) : []));
    }

    [Fact]
    public void Build_runs_copies_and_writes_dockers_config() => EngineSandbox.Run(s =>
    {
        BaseImage(s);
        var ctx = Context(s, """
            # syntax=docker/dockerfile:1
            ARG TAG=1
            FROM local/busybox:${TAG}
            ARG GREETING=hello
            ENV APP=/app
            WORKDIR $APP
            COPY hello.txt ./
            COPY dir/ sub/
            COPY --chown=1000:1000 --chmod=640 owned.txt /owned.txt
            COPY *.glob /globbed/
            COPY . /ctx/
            RUN echo "$GREETING from run" > run.txt \
                && mkdir -p /made
            LABEL org.example.k="v w" other=x
            EXPOSE 8080 53/udp
            USER app
            STOPSIGNAL SIGINT
            VOLUME /data
            HEALTHCHECK --interval=5s --retries=2 CMD true
            ENTRYPOINT ["sh", "-c"]
            CMD ["cat /app/run.txt /app/hello.txt"]
            """,
            ("hello.txt", "hello file\n"), ("dir/a/b.txt", "b\n"), ("owned.txt", "mine\n"), ("x.glob", "x"), ("y.glob", "y"),
            ("secret.txt", "no"), (".dockerignore", "secret.txt\n"));
        var r = s.Ok("build", "-t", "built:1", "-t", "built:also", "--build-arg", "GREETING=hi", ctx);
        Assert.Contains("Step 1/19 : ARG TAG=1\n", r.Stdout);
        Assert.Contains("Step 3/19 : ARG GREETING=hello\n", r.Stdout);
        Assert.Contains(" ---> Running in ", r.Stdout);
        Assert.Contains("Removing intermediate container ", r.Stdout);
        Assert.Matches(@"Successfully built [0-9a-f]{12}\nSuccessfully tagged built:1\nSuccessfully tagged built:also\n$", r.Stdout);
        NothingLeft(s);

        Assert.Equal("hi from run\nhello file\n", s.Ok("run", "--rm", "built:1").Stdout);
        Assert.Equal("b\n", s.Ok("run", "--rm", "built:1", "cat /app/sub/a/b.txt").Stdout);
        Assert.Equal("-rw-r----- 1000 1000 /owned.txt\n", s.Ok("run", "--rm", "built:1", "stat -c '%A %u %g %n' /owned.txt").Stdout);
        Assert.Equal("x.glob\ny.glob\n", s.Ok("run", "--rm", "built:1", "ls /globbed").Stdout);
        Assert.Equal("absent\n", s.Ok("run", "--rm", "built:1", "test -e /ctx/secret.txt && echo present || echo absent").Stdout);
        Assert.Equal("hello file\n", s.Ok("run", "--rm", "built:1", "cat /ctx/hello.txt").Stdout);
        Assert.Equal("app /app\n", s.Ok("run", "--rm", "built:1", "echo $(id -un) $(pwd)").Stdout);

        var img = JsonNode.Parse(s.Ok("image", "inspect", "built:1").Stdout)!.AsArray()[0]!;
        var cfg = img["Config"]!;
        Assert.Equal("app", (string)cfg["User"]!);
        Assert.Equal("/app", (string)cfg["WorkingDir"]!);
        Assert.Equal("v w", (string)cfg["Labels"]!["org.example.k"]!);
        Assert.NotNull(cfg["ExposedPorts"]!["8080/tcp"]);
        Assert.NotNull(cfg["ExposedPorts"]!["53/udp"]);
        Assert.Equal("SIGINT", (string)cfg["StopSignal"]!);
        Assert.NotNull(cfg["Volumes"]!["/data"]);
        Assert.Equal("[\"CMD-SHELL\",\"true\"]", cfg["Healthcheck"]!["Test"]!.ToJsonString());
        Assert.Equal(5_000_000_000, (long)cfg["Healthcheck"]!["Interval"]!);
        Assert.Contains("APP=/app", cfg["Env"]!.AsArray().Select(e => (string)e!));
        Assert.DoesNotContain(cfg["Env"]!.AsArray(), e => ((string)e!).StartsWith("GREETING", StringComparison.Ordinal));
        Assert.Equal("[\"sh\",\"-c\"]", cfg["Entrypoint"]!.ToJsonString());
        // COPY ×5 and RUN are layers on the base's one; the rest are empty layers in the history
        Assert.Equal(7, img["RootFS"]!["Layers"]!.AsArray().Count);
        // intermediate images are not listed
        Assert.Equal(2, s.Ok("images", "-q").Lines.Distinct().Count());
    });

    [Fact]
    public void Cache_reuses_steps_until_the_content_changes() => EngineSandbox.Run(s =>
    {
        BaseImage(s);
        var ctx = Context(s, "FROM local/busybox:1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCMD [\"cat\", \"/b.txt\"]\n", ("a.txt", "one\n"));
        var first = s.Ok("build", "-q", "-t", "cached", ctx).Stdout.Trim();
        Assert.Matches("^sha256:[0-9a-f]{64}$", first);
        var again = s.Ok("build", "-t", "cached", ctx);
        Assert.Equal(3, again.Stdout.Split(" ---> Using cache\n").Length - 1);
        Assert.Contains($"Successfully built {first[7..19]}\n", again.Stdout);
        var nocache = s.Ok("build", "--no-cache", "-t", "cached", ctx);
        Assert.DoesNotContain("Using cache", nocache.Stdout);
        File.WriteAllText(Path.Combine(ctx, "a.txt"), "two\n");
        var changed = s.Ok("build", "-t", "cached", ctx);
        Assert.DoesNotContain("Using cache", changed.Stdout);
        Assert.Equal("two\n", s.Ok("run", "--rm", "cached").Stdout);
        NothingLeft(s);
    });

    [Fact]
    public void Multi_stage_copy_from_and_target() => EngineSandbox.Run(s =>
    {
        BaseImage(s);
        var ctx = Context(s, """
            FROM local/busybox:1 AS builder
            RUN echo built > /artifact
            FROM scratch
            COPY --from=builder /artifact /artifact
            COPY --from=builder /bin/busybox /bin/busybox
            COPY --from=local/busybox:1 /etc/passwd /etc/passwd
            ENTRYPOINT ["/bin/busybox"]
            CMD ["cat", "/artifact"]
            """);
        s.Ok("build", "-t", "multi", ctx);
        Assert.Equal("built\n", s.Ok("run", "--rm", "multi").Stdout);
        var img = JsonNode.Parse(s.Ok("image", "inspect", "multi").Stdout)!.AsArray()[0]!;
        Assert.Equal(3, img["RootFS"]!["Layers"]!.AsArray().Count);
        var t = s.Ok("build", "--target", "builder", "-t", "stage1", ctx);
        Assert.Contains("Step 2/2 : RUN echo built > /artifact", t.Stdout);
        Assert.Equal("built\n", s.Ok("run", "--rm", "stage1", "cat", "/artifact").Stdout);
        EngineSandbox.AssertOneLineError(s.Berth("build", "--target", "nope", ctx), 1, "failed to reach build target nope");
        NothingLeft(s);
    });

    [Fact]
    public void Failing_run_stops_the_build_with_dockers_message() => EngineSandbox.Run(s =>
    {
        BaseImage(s);
        var ctx = Context(s, "FROM local/busybox:1\nRUN echo before\nRUN echo output && exit 3\nRUN echo never\n");
        var r = s.Berth("build", "-t", "failed", ctx);
        EngineSandbox.AssertOneLineError(r, 3, "The command '/bin/sh -c echo output && exit 3' returned a non-zero code: 3");
        Assert.Contains("output\n", r.Stdout);
        Assert.DoesNotContain("never", r.Stdout.Replace("RUN echo never", ""));
        Assert.DoesNotContain("Successfully", r.Stdout);
        NothingLeft(s);
        Assert.DoesNotContain("failed", s.Ok("images").Stdout);
    });

    [Fact]
    public void Bad_input_one_line_nothing_left() => EngineSandbox.Run(s =>
    {
        BaseImage(s);
        var ctx = Context(s, "FROM local/busybox:1\nFROB x\n");
        EngineSandbox.AssertOneLineError(s.Berth("build", ctx), 1, "dockerfile parse error on line 2: unknown instruction: FROB");
        var empty = Path.Combine(s.Dir, "empty-ctx");
        Directory.CreateDirectory(empty);
        EngineSandbox.AssertOneLineError(s.Berth("build", empty), 1, "Cannot locate specified Dockerfile: Dockerfile");
        EngineSandbox.AssertOneLineError(s.Berth("build", Path.Combine(s.Dir, "no-such-dir")), 1, "unable to prepare context");
        var outside = Context(s, "FROM local/busybox:1\nCOPY ../secret /x\n");
        EngineSandbox.AssertOneLineError(s.Berth("build", outside), 1, "forbidden path outside the build context: ../secret");
        var missing = Context(s, "FROM local/busybox:1\nCOPY missing.txt /x\n");
        EngineSandbox.AssertOneLineError(s.Berth("build", missing), 1, "missing.txt");
        var ignored = Context(s, "FROM local/busybox:1\nCOPY secret.txt /x\n", ("secret.txt", "s"), (".dockerignore", "secret.txt\n"));
        EngineSandbox.AssertOneLineError(s.Berth("build", ignored), 1, "excluded by .dockerignore");
        var noBase = Context(s, "FROM local/nothing:here\n");
        Assert.NotEqual(0, s.Berth("build", noBase).ExitCode);
        var badTag = Context(s, "FROM local/busybox:1\n");
        EngineSandbox.AssertOneLineError(s.Berth("build", "-t", "Bad:Tag:x", badTag), 1, "invalid reference format");
        var url = Context(s, "FROM local/busybox:1\nADD http://127.0.0.1:1/x /x\n");
        EngineSandbox.AssertOneLineError(s.Berth("build", url), 1, "ADD from a URL is not supported");
        NothingLeft(s);
        Assert.Single(s.Ok("images", "-q").Lines);
    });

    [Fact]
    public void Add_extracts_local_tar_archives_and_onbuild_runs_in_the_child() => EngineSandbox.Run(s =>
    {
        BaseImage(s);
        var ctx = Context(s, "FROM local/busybox:1\nADD files.tar.gz /opt/\nONBUILD RUN echo triggered > /trigger\n");
        var src = Path.Combine(s.Dir, "tarsrc");
        Directory.CreateDirectory(Path.Combine(src, "pkg"));
        File.WriteAllText(Path.Combine(src, "pkg", "f.txt"), "from tar\n");
        Sh($"tar -C {src} -czf {Path.Combine(ctx, "files.tar.gz")} pkg");
        s.Ok("build", "-t", "parent", ctx);
        Assert.Equal("from tar\n", s.Ok("run", "--rm", "parent", "cat", "/opt/pkg/f.txt").Stdout);
        var child = Context(s, "FROM parent\nCMD [\"cat\", \"/trigger\"]\n");
        var r = s.Ok("build", "-t", "child", child);
        Assert.Contains("# Executing 1 build trigger", r.Stdout);
        Assert.Equal("triggered\n", s.Ok("run", "--rm", "child").Stdout);
        NothingLeft(s);
    });
}
