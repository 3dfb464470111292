using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Scenarios.Tests.Support;
using Xunit.Abstractions;

namespace Berth.Scenarios.Tests;

/// <summary>What a Docker user tries first, typed identically into `berth` and `podman` (each isolated
/// in temp storage, same busybox image): every scenario returns what the user would look at (exit codes,
/// output lines, `ps` states, the `inspect` fields people read) and the two lists must be equal. Both
/// transcripts are in the test output. Where podman and docker disagree, the scenario follows docker and
/// says so. Containers run with `--network none` on both sides (no host networking is touched).</summary>
[Collection("side-by-side")]
public partial class DockerUserScenarios(PodmanStore podman, ITestOutputHelper output)
{
    void Compare(Func<Side, List<string>> scenario) => SideBySide.Compare(output, podman, scenario);

    static string Status(Side s, string name) =>
        s.Ok("ps", "-a", "--filter", "name=^" + name + "$", "--format", "{{.Status}}").Stdout.Trim();

    [Fact]
    public void Interactive_shell_under_a_terminal() => Compare(s =>
    {
        var r = s.DoTty("echo hello-$((40+2))\ntty\ncd /tmp && pwd\nexit 3\n",
            "run", "-it", "--rm", "--network", "none", s.Image, "sh");
        var screen = r.Stdout.Replace("\r", "");
        return
        [
            "exit code: " + r.ExitCode,
            "computed in the container: " + screen.Split('\n').Contains("hello-42"),
            "stdin is a terminal: " + screen.Split('\n').Contains("/dev/pts/0"),
            "cd worked: " + screen.Split('\n').Contains("/tmp"),
            "--rm removed it: " + (s.Ok("ps", "-aq").Stdout.Trim() == ""),
        ];
    });

    [Fact]
    public void Detached_server_with_logs_exec_stop_and_rm() => Compare(s =>
    {
        var obs = new List<string>();
        var id = s.Ok("run", "-d", "--name", "web", "--network", "none", s.Image, "sh", "-c",
            // stdout and stderr are two pipes: the pause keeps their order in the log deterministic
            "mkdir /www; echo hello from httpd > /www/index.html; echo to-stderr >&2; sleep 0.5; " +
            "echo line 1; echo line 2; echo line 3; echo line 4; exec httpd -f -p 8080 -h /www").Stdout.Trim();
        obs.Add("run -d printed a full id: " + Regex.IsMatch(id, "^[0-9a-f]{64}$"));
        obs.Add("ps: " + Regex.Replace(s.Ok("ps", "--format", "{{.Names}} {{.Status}}").Stdout.Trim(), @"Up .*", "Up …"));
        obs.Add("State.Status: " + s.Field("web", "{{.State.Status}}"));
        s.WaitFor("the startup lines in the log", () => s.Do("logs", "web").Stdout.Contains("line 4"));
        var logs = s.Ok("logs", "web");
        obs.Add("logs stdout: " + logs.Stdout.ReplaceLineEndings("|"));
        obs.Add("logs stderr: " + logs.Stderr.ReplaceLineEndings("|"));
        var tail = s.Ok("logs", "--tail", "2", "web");
        obs.Add("logs --tail 2 stdout: " + tail.Stdout.ReplaceLineEndings("|") + " stderr: " + tail.Stderr.ReplaceLineEndings("|"));

        // the server answers (over the container's own loopback), through exec
        var get = s.Do("exec", "web", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.3; done; exit 1");
        obs.Add("exec wget: " + get.ExitCode + " " + get.Stdout.Trim());
        obs.Add("exec exit code passes through: " + s.Do("exec", "web", "sh", "-c", "exit 5").ExitCode);
        obs.Add("exec -e -w: " + s.Ok("exec", "-e", "X=y", "-w", "/www", "web", "sh", "-c", "echo $X $(pwd)").Stdout.Trim());

        // logs -f --tail 1 follows: the last line, then what is written after
        var follow = s.Begin("logs", "-f", "--tail", "1", "web");
        s.WaitFor("logs -f to print the tail", () => follow.Stdout.Contains("line 4"), 20_000);
        s.Ok("exec", "web", "sh", "-c", "echo appended later > /proc/1/fd/1");
        s.WaitFor("logs -f to print the new line", () => follow.Stdout.Contains("appended later"), 20_000);
        obs.Add("logs -f --tail 1: " + s.Stop(follow).Stdout.ReplaceLineEndings("|"));

        // stop: httpd as PID 1 ignores SIGTERM, so stop -t 1 ends it with SIGKILL (exit 137)
        var stop = s.Do("stop", "-t", "1", "web");
        obs.Add("stop: " + stop.ExitCode + " " + stop.Stdout.Trim());
        obs.Add("after stop State.Status/ExitCode: " + s.Field("web", "{{.State.Status}} {{.State.ExitCode}}"));
        obs.Add("ps after stop: " + s.Ok("ps", "-q").Stdout.Trim());
        obs.Add("ps -a after stop: " + Regex.Replace(Status(s, "web"), @"\) .*", ") …"));
        var exec = s.Do("exec", "web", "true");
        // docker: "container … is not running" (exit 1 from the docker CLI); podman: exit 125. Both fail.
        obs.Add("exec into a stopped container fails: " + (exec.ExitCode != 0 && exec.Stderr.Length > 0));
        obs.Add("logs still readable after stop: " + s.Ok("logs", "web").Stdout.Contains("line 4"));
        var rm = s.Do("rm", "web");
        obs.Add("rm: " + rm.ExitCode + " " + rm.Stdout.Trim());
        obs.Add("ps -a after rm: [" + s.Ok("ps", "-aq").Stdout.Trim() + "]");
        obs.Add("logs after rm fails: " + (s.Do("logs", "web").ExitCode != 0));
        return obs;
    });

    [Fact]
    public void Named_volume_kept_across_restarts_and_shared_with_a_second_container() => Compare(s =>
    {
        var obs = new List<string>();
        obs.Add("volume create: " + s.Ok("volume", "create", "data").Stdout.Trim());
        var first = s.Do("run", "--name", "writer", "--network", "none", "-v", "data:/data", s.Image, "sh", "-c", "echo run >> /data/log; wc -l < /data/log");
        obs.Add("first run: " + first.ExitCode + " " + first.Stdout.Trim());
        var again = s.Do("start", "-a", "writer");
        obs.Add("start -a the same container: " + again.ExitCode + " " + again.Stdout.Trim());

        // a detached container restarted keeps the volume's content
        s.Ok("run", "-d", "--name", "svc", "--network", "none", "-v", "data:/data", s.Image, "sh", "-c", "echo svc >> /data/log; exec sleep 1000");
        s.WaitFor("svc's line in the volume", () => s.Do("exec", "svc", "grep", "-c", "svc", "/data/log").Stdout.Trim() == "1");
        var restart = s.Do("restart", "-t", "1", "svc");
        obs.Add("restart: " + restart.ExitCode + " " + restart.Stdout.Trim());
        s.WaitFor("svc's second line", () => s.Do("exec", "svc", "grep", "-c", "svc", "/data/log").Stdout.Trim() == "2");
        obs.Add("State after restart: " + s.Field("svc", "{{.State.Status}}"));

        var reader = s.Do("run", "--rm", "--network", "none", "-v", "data:/mnt:ro", s.Image, "cat", "/mnt/log");
        obs.Add("second container reads: " + reader.ExitCode + " " + reader.Stdout.ReplaceLineEndings("|"));
        var ro = s.Do("run", "--rm", "--network", "none", "-v", "data:/mnt:ro", s.Image, "touch", "/mnt/x");
        obs.Add(":ro refuses writes: " + ro.ExitCode);
        obs.Add("volume ls -q: " + s.Ok("volume", "ls", "-q").Stdout.Trim());
        obs.Add("volume inspect Name: " + s.Ok("volume", "inspect", "--format", "{{.Name}}", "data").Stdout.Trim());
        // in use: refused (docker: exit 1 "volume is in use"; podman: exit 2) — both refuse and keep it
        obs.Add("volume rm while in use fails: " + (s.Do("volume", "rm", "data").ExitCode != 0));
        s.Ok("rm", "-f", "writer", "svc");
        obs.Add("volume rm: " + s.Ok("volume", "rm", "data").Stdout.Trim());
        obs.Add("volume ls after rm: [" + s.Ok("volume", "ls", "-q").Stdout.Trim() + "]");
        return obs;
    });

    [Fact]
    public void Restart_on_failure_gives_up_after_the_maximum() => Compare(s =>
    {
        var obs = new List<string>();
        s.Ok("run", "-d", "--name", "flaky", "--network", "none", "--restart", "on-failure:3", s.Image, "sh", "-c", "echo attempt; exit 2");
        s.WaitFor("the restarts to end", () =>
            s.Do("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", "flaky").Stdout.Trim() == "exited 3", 90_000);
        Thread.Sleep(1500);   // and no fourth restart comes
        obs.Add("State.Status ExitCode RestartCount: " + s.Field("flaky", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"));
        obs.Add("HostConfig.RestartPolicy: " + s.Field("flaky", "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"));
        obs.Add("ps -a: " + Regex.Replace(Status(s, "flaky"), @"\) .*", ") …"));
        obs.Add("logs hold every attempt: " + s.Ok("logs", "flaky").Stdout.ReplaceLineEndings("|"));
        // a clean exit is not restarted
        s.Ok("run", "-d", "--name", "fine", "--network", "none", "--restart", "on-failure:3", s.Image, "true");
        s.WaitFor("fine to exit", () => s.Do("inspect", "--format", "{{.State.Status}}", "fine").Stdout.Trim() == "exited");
        Thread.Sleep(1000);
        obs.Add("exit 0 is not restarted: " + s.Field("fine", "{{.State.ExitCode}} {{.RestartCount}}"));
        return obs;
    });

    [Fact]
    public void Health_check_turns_unhealthy() => Compare(s =>
    {
        var obs = new List<string>();
        s.Ok("run", "-d", "--name", "hc", "--network", "none", "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s",
            "--health-retries", "2", s.Image, "sh", "-c", "touch /tmp/ok; exec sleep 1000");
        obs.Add("Config.Healthcheck.Test: " + s.Field("hc", "{{json .Config.Healthcheck.Test}}"));
        // docker's daemon runs the checks by itself every interval; podman needs systemd timers, which this
        // machine lacks, so on podman the checks are run by hand with `podman healthcheck run` (docker's
        // behaviour is what Berth follows: its monitor runs them).
        void Tick() { if (!s.IsBerth) s.Do("healthcheck", "run", "hc"); }
        s.WaitFor("healthy", () => { Tick(); return s.Field("hc", "{{.State.Health.Status}}") == "healthy"; });
        obs.Add("ps when healthy: " + Regex.Replace(Status(s, "hc"), @"^Up .* \(", "Up … ("));
        s.Ok("exec", "hc", "rm", "/tmp/ok");
        s.WaitFor("unhealthy", () => { Tick(); return s.Field("hc", "{{.State.Health.Status}}") == "unhealthy"; });
        obs.Add("State.Health.Status: " + s.Field("hc", "{{.State.Health.Status}}"));
        obs.Add("ps when unhealthy: " + Regex.Replace(Status(s, "hc"), @"^Up .* \(", "Up … ("));
        var health = JsonNode.Parse(s.Field("hc", "{{json .State.Health}}"))!;
        obs.Add("FailingStreak >= retries: " + ((int)health["FailingStreak"]! >= 2));
        obs.Add("last check's exit code: " + health["Log"]!.AsArray()[^1]!["ExitCode"]);
        obs.Add("ps --filter health=unhealthy: " + s.Ok("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}").Stdout.Trim());
        obs.Add("the container keeps running: " + s.Field("hc", "{{.State.Status}}"));
        return obs;
    });

    [Fact]
    public void Containers_of_a_pod_talk_over_localhost() => Compare(s =>
    {
        var obs = new List<string>();
        var pod = s.Do("pod", "create", "--name", "shop", "--network", "none");
        obs.Add("pod create: " + pod.ExitCode + " " + Regex.IsMatch(pod.Stdout.Trim(), "^[0-9a-f]{64}$"));
        s.Ok("run", "-d", "--pod", "shop", "--name", "api", s.Image, "sh", "-c",
            "mkdir /srv; echo hello over localhost > /srv/index.html; exec httpd -f -p 127.0.0.1:8080 -h /srv");
        var get = s.Do("run", "--rm", "--pod", "shop", s.Image, "sh", "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.3; done; exit 1");
        obs.Add("client in the pod reaches the server: " + get.ExitCode + " " + get.Stdout.Trim());
        var nc = s.Do("run", "--rm", "--pod", "shop", s.Image, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080 | tail -1");
        obs.Add("nc on 127.0.0.1: " + nc.ExitCode + " " + nc.Stdout.Trim());
        obs.Add("same hostname in the pod: " + (s.Ok("exec", "api", "hostname").Stdout == s.Ok("run", "--rm", "--pod", "shop", s.Image, "hostname").Stdout));
        var outside = s.Do("run", "--rm", "--network", "none", s.Image, "wget", "-T", "2", "-qO-", "http://127.0.0.1:8080/");
        obs.Add("a container outside the pod cannot: " + (outside.ExitCode != 0));
        obs.Add("pod ps: " + s.Ok("pod", "ps", "--format", "{{.Name}} {{.Status}}").Stdout.Trim());
        // podman lists its pod's infra container ("ID-infra") too; Berth's infra is a process, not a container
        obs.Add("ps --filter pod: " + string.Join(",", s.Ok("ps", "--filter", "pod=shop", "--format", "{{.Names}}").Lines.Where(l => !l.EndsWith("-infra"))));
        var stop = s.Do("pod", "stop", "-t", "1", "shop");
        obs.Add("pod stop: " + stop.ExitCode);
        obs.Add("api after pod stop: " + s.Field("api", "{{.State.Status}}"));
        var rm = s.Do("pod", "rm", "shop");
        obs.Add("pod rm: " + rm.ExitCode);
        obs.Add("containers after pod rm: [" + s.Ok("ps", "-aq").Stdout.Trim() + "]");
        return obs;
    });

    [Fact]
    public void Bad_input_gets_dockers_exit_codes_and_leaves_nothing() => Compare(s =>
    {
        var obs = new List<string>();
        var unknown = s.Do("run", "--rm", "--network", "none", "localhost/no-such-image:1", "true");
        obs.Add("unknown image: " + unknown.ExitCode + ", says so: " + Regex.IsMatch(unknown.Stderr, "no-such-image"));
        var notFound = s.Do("run", "--rm", "--network", "none", s.Image, "no-such-command");
        obs.Add("command not found: " + notFound.ExitCode + ", names it: " + notFound.Stderr.Contains("no-such-command"));
        var notExec = s.Do("run", "--rm", "--network", "none", s.Image, "/etc/passwd");
        obs.Add("not executable: " + notExec.ExitCode + ", says so: " + Regex.IsMatch(notExec.Stderr, "(?i)permission denied"));
        obs.Add("exit status passes through: " + s.Do("run", "--rm", "--network", "none", s.Image, "sh", "-c", "exit 7").ExitCode);
        obs.Add("nothing left by the failed runs: [" + s.Ok("ps", "-aq").Stdout.Trim() + "]");
        s.Ok("create", "--name", "dup", "--network", "none", s.Image, "true");
        var dup = s.Do("run", "--name", "dup", "--network", "none", s.Image, "true");
        obs.Add("name conflict: " + dup.ExitCode + ", says so: " + Regex.IsMatch(dup.Stderr, "already in use"));
        obs.Add("only the first dup exists: " + s.Ok("ps", "-a", "--format", "{{.Names}}").Stdout.Trim());
        var noSuch = s.Do("start", "ghost");
        // docker's CLI exits 1 here ("No such container: ghost"), podman 125: Berth follows docker.
        obs.Add("start of an unknown container, docker's code (podman's 125): " + (noSuch.ExitCode == (s.IsBerth ? 1 : 125)) + ", names it: " + noSuch.Stderr.Contains("ghost"));
        var badFlag = s.Do("run", "--no-such-flag", s.Image, "true");
        obs.Add("unknown flag: " + badFlag.ExitCode);
        var badRestart = s.Do("run", "--restart", "sometimes", s.Image, "true");
        obs.Add("invalid restart policy: " + badRestart.ExitCode);
        obs.Add("still only dup: " + s.Ok("ps", "-a", "--format", "{{.Names}}").Stdout.Trim());
        return obs;
    });
}
