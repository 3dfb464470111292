using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>Health checks run by the monitor: State.Health in inspect, the status in ps, the
/// health filter, docker's transitions (starting → healthy → unhealthy after the retries).</summary>
public class HealthcheckTests
{
    static JsonObject Health(EngineSandbox s, string name) => s.Inspect(name)["State"]!["Health"]!.AsObject();

    [Fact]
    public void A_check_that_starts_failing_turns_the_container_unhealthy() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "web", "--tmpfs", "/run/app", "--health-cmd", "echo probing; test -f /run/app/ok",
            "--health-interval", "200ms", "--health-retries", "3"], "sh", "-c", "touch /run/app/ok; sleep 1000");
        var cfg = s.Inspect("web")["Config"]!["Healthcheck"]!;
        Assert.Equal("""["CMD-SHELL","echo probing; test -f /run/app/ok"]""", cfg["Test"]!.ToJsonString());
        Assert.Equal(200_000_000L, (long)cfg["Interval"]!);
        EngineSandbox.WaitUntil(() => (string?)Health(s, "web")["Status"] == "healthy", "healthy");
        var h = Health(s, "web");
        Assert.Equal(0, (int)h["FailingStreak"]!);
        var last = h["Log"]!.AsArray()[^1]!;
        Assert.Equal(0, (int)last["ExitCode"]!);
        Assert.Equal("probing\n", (string?)last["Output"]);
        Assert.Matches(@"^Up .* \(healthy\)$", s.Ok("ps", "--format", "{{.Status}}").Stdout.Trim());
        Assert.Equal("web", s.Ok("ps", "--filter", "health=healthy", "--format", "{{.Names}}").Stdout.Trim());

        s.Ok("exec", "web", "rm", "/run/app/ok");
        EngineSandbox.WaitUntil(() => (string?)Health(s, "web")["Status"] == "unhealthy", "unhealthy");
        h = Health(s, "web");
        Assert.True((int)h["FailingStreak"]! >= 3, h.ToJsonString());
        var log = h["Log"]!.AsArray();
        Assert.InRange(log.Count, 3, 5);
        Assert.Equal(1, (int)log[^1]!["ExitCode"]!);
        Assert.Matches(@"\(unhealthy\)$", s.Ok("ps", "--format", "{{.Status}}").Stdout.Trim());
        Assert.Empty(s.Ok("ps", "--filter", "health=healthy", "-q").Lines);
        Assert.Single(s.Ok("ps", "--filter", "health=unhealthy", "-q").Lines);
        // it can recover
        s.Ok("exec", "web", "touch", "/run/app/ok");
        EngineSandbox.WaitUntil(() => (string?)Health(s, "web")["Status"] == "healthy", "healthy again");
        // at most five results are kept
        Thread.Sleep(1500);
        Assert.Equal(5, Health(s, "web")["Log"]!.AsArray().Count);
    });

    [Fact]
    public void Starting_until_the_first_check_and_timeouts_fail_the_check() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "slow", "--health-cmd", "true", "--health-interval", "1h"], "sleep", "1000");
        Assert.Equal("starting", (string?)Health(s, "slow")["Status"]);
        Assert.Matches(@"\(health: starting\)$", s.Ok("ps", "--format", "{{.Status}}").Stdout.Trim());
        Assert.Single(s.Ok("ps", "--filter", "health=starting", "-q").Lines);

        s.RunDetached(["--name", "hang", "--health-cmd", "sleep 5", "--health-interval", "200ms", "--health-timeout", "300ms", "--health-retries", "1"], "sleep", "1000");
        EngineSandbox.WaitUntil(() => (string?)Health(s, "hang")["Status"] == "unhealthy", "unhealthy by timeout");
        var entry = Health(s, "hang")["Log"]!.AsArray()[0]!;
        Assert.Equal(-1, (int)entry["ExitCode"]!);
        Assert.Equal("Health check exceeded timeout (300ms)", (string?)entry["Output"]);
        // a container without a check has no Health and matches health=none
        s.RunDetached(["--name", "plain"], "sleep", "1000");
        Assert.False(s.Inspect("plain")["State"]!.AsObject().ContainsKey("Health"));
        Assert.Equal("plain", s.Ok("ps", "--filter", "health=none", "--format", "{{.Names}}").Stdout.Trim());
    });

    [Fact]
    public void Bad_health_flags_are_one_line_errors() => EngineSandbox.Run(s =>
    {
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--no-healthcheck", "--health-cmd", "true"], "true"), 125, "--no-healthcheck conflicts with --health-* options");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--health-interval", "soon"], "true"), 125, "invalid duration \"soon\"");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--health-interval", "-1s"], "true"), 125, "--health-interval cannot be negative");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--health-retries", "-2"], "true"), 125, "--health-retries cannot be negative");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--health-cmd", "true", "--health-interval", "10us"], "true"), 125, "Interval in Healthcheck cannot be less than 1ms");
        EngineSandbox.AssertOneLineError(s.Berth("ps", "--filter", "health=sick"), 125, "health=sick");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
    });
}
