using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Scenarios.Tests.Support;

namespace Berth.Scenarios.Tests;

/// <summary>The verbs a Docker user reaches for after the first day, compared as the first scenarios are:
/// users from the image's /etc/passwd, a read-only root with a tmpfs, --init reaping zombies, health
/// checks over time, files in and out (cp, export | import, commit), stats/top/events. Where podman and
/// docker differ, the scenario follows docker and says so; what cannot be compared on this machine is
/// left out with the reason.</summary>
public partial class DockerUserScenarios
{
    [Fact]
    public void Users_named_in_the_images_passwd() => Compare(s =>
    {
        var obs = new List<string>();
        // the image's /etc/passwd has app (1000) and /etc/group an "extra" group (2000) listing app
        foreach (var u in new[] { "app", "app:extra", "1000", "nobody", "0:2000" })
        {
            var r = s.Do("run", "--rm", "--network", "none", "--user", u, s.Image, "id");
            obs.Add($"--user {u}: {r.ExitCode} {r.Stdout.Trim()}");
        }
        s.Ok("run", "-d", "--name", "u", "--network", "none", "--user", "app", s.Image, "sleep", "1000");
        obs.Add("Config.User: " + s.Field("u", "{{.Config.User}}"));
        obs.Add("the process runs as app: " + s.Ok("exec", "u", "sh", "-c", "stat -c %u /proc/1").Stdout.Trim());
        // podman 4.3's exec leaves the primary group out of the supplementary groups (`id` shows groups=2000
        // for app, none for root); docker's exec keeps it, as Berth does (compared with dockerd in
        // tests/Berth.DockerApi.Tests/DockerDayTests): exec is compared on the user and group ids
        string Ids(params string[] user) => s.Ok(["exec", .. user, "u", "sh", "-c", "echo $(id -u) $(id -g) $(id -un)"]).Stdout.Trim();
        obs.Add("exec inherits the user: " + Ids());
        obs.Add("exec -u root: " + Ids("-u", "root"));
        obs.Add("exec -u app:extra: " + Ids("-u", "app:extra"));
        var unknown = s.Do("run", "--rm", "--network", "none", "--user", "nosuch", s.Image, "id");
        // docker's CLI exits 125 (the daemon's error), podman 126 (the runtime's): both fail and name the user
        obs.Add("unknown user fails, names it: " + (unknown.ExitCode is 125 or 126) + " " + unknown.Stderr.Contains("nosuch"));
        obs.Add("and leaves nothing: [" + string.Join(",", s.Ok("ps", "-a", "--format", "{{.Names}}").Lines) + "]");
        return obs;
    });

    [Fact]
    public void Read_only_root_with_a_writable_tmpfs() => Compare(s =>
    {
        var obs = new List<string>();
        var r = s.Do("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", s.Image, "sh", "-c",
            "touch /x; echo root: $?; touch /tmp/y && echo tmp: ok; grep ' /tmp ' /proc/mounts | cut -d' ' -f3");
        obs.Add("exit: " + r.ExitCode);
        obs.Add("stdout: " + r.Stdout.ReplaceLineEndings("|"));
        obs.Add("the write to / says why: " + r.Stderr.Contains("Read-only file system"));
        var opts = s.Ok("run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", s.Image, "sh", "-c", "grep ' /tmp ' /proc/mounts | cut -d' ' -f4").Stdout.Trim().Split(',');
        // docker mounts --tmpfs with noexec too (podman 4.3 does not): compared on what both set
        obs.Add("tmpfs options include rw,nosuid,nodev: " + new[] { "rw", "nosuid", "nodev" }.All(opts.Contains));
        s.Ok("create", "--name", "ro", "--network", "none", "--read-only", s.Image, "true");
        // podman also adds tmpfs on /run and /var/tmp with --read-only (its --read-only-tmpfs); docker adds none
        obs.Add("HostConfig.ReadonlyRootfs: " + s.Field("ro", "{{.HostConfig.ReadonlyRootfs}}"));
        var w = s.Do("run", "--rm", "--network", "none", "--read-only", s.Image, "sh", "-c", "echo x > /etc/x");
        obs.Add("without a tmpfs /etc is read-only too: " + w.ExitCode);
        return obs;
    });

    [Fact]
    public void Init_reaps_the_zombies_a_command_leaves() => Compare(s =>
    {
        var obs = new List<string>();
        // the orphaned sleep is re-parented to PID 1: an init reaps it, `sleep` as PID 1 does not
        const string Orphan = "(sleep 0.2 &); exec sleep 1000";
        s.Ok("run", "-d", "--name", "withinit", "--network", "none", "--init", s.Image, "sh", "-c", Orphan);
        s.Ok("run", "-d", "--name", "noinit", "--network", "none", s.Image, "sh", "-c", Orphan);
        int Zombies(string c) => s.Ok("exec", c, "ps", "-o", "stat").Lines.Count(l => l.Trim().StartsWith('Z'));
        s.WaitFor("the orphan to exit", () => Zombies("noinit") == 1, 20_000);
        Thread.Sleep(300);
        obs.Add("zombies with --init: " + Zombies("withinit"));
        obs.Add("zombies without: " + Zombies("noinit"));
        // PID 1 is the init (docker-init, podman-init, Berth's /dev/init), the command its child
        var ps = s.Ok("exec", "withinit", "ps", "-o", "pid,comm").Lines;
        obs.Add("PID 1 is not the command: " + ps.Any(l => Regex.IsMatch(l, @"^\s*1\s") && !l.Contains("sleep")));
        obs.Add("HostConfig.Init: " + s.Field("withinit", "{{.HostConfig.Init}}"));
        // stop reaches the command through the init: it ends at once, not after the timeout
        var sw = System.Diagnostics.Stopwatch.StartNew();
        s.Ok("stop", "-t", "10", "withinit");
        obs.Add("stop through the init is prompt: " + (sw.ElapsedMilliseconds < 8000));
        obs.Add("exit code after SIGTERM: " + s.Field("withinit", "{{.State.ExitCode}}"));
        return obs;
    });

    [Fact]
    public void Health_status_over_time_with_the_health_flags() => Compare(s =>
    {
        var obs = new List<string>();
        // docker's daemon runs checks by itself; podman needs systemd timers this machine lacks, so its
        // checks are run by hand with `podman healthcheck run` (see DockerUserScenarios)
        void Tick(string c) { if (!s.IsBerth) s.Do("healthcheck", "run", c); }
        string Health(string c) => s.Field(c, "{{.State.Health.Status}}");
        s.Ok("run", "-d", "--name", "hc", "--network", "none", "--health-cmd", "cat /tmp/ok", "--health-interval", "1s",
            "--health-retries", "1", "--health-start-period", "10s", "--health-timeout", "5s", s.Image, "sleep", "1000");
        // docker and podman print the durations of a typed Go value ({{.Config.Healthcheck.Interval}} is "1s");
        // Berth's templates run over the JSON document, where they are nanoseconds, as in `{{json …}}`:
        // a known difference, so the JSON is compared
        var hcfg = JsonNode.Parse(s.Field("hc", "{{json .Config.Healthcheck}}"))!;
        obs.Add("Config.Healthcheck: " + string.Join(" ", new[] { "Test", "Interval", "Timeout", "StartPeriod", "Retries" }.Select(k => hcfg[k]?.ToJsonString())));
        obs.Add("at first: " + Health("hc"));
        // failures inside the start period do not count: still starting (docker stops ignoring them after the
        // first success, podman only when the period ends: the waits below cover both)
        Tick("hc"); Tick("hc");
        Thread.Sleep(2500);
        obs.Add("failing in the start period: " + Health("hc"));
        s.Ok("exec", "hc", "sh", "-c", "echo fine > /tmp/ok");
        s.WaitFor("healthy", () => { Tick("hc"); return Health("hc") == "healthy"; });
        obs.Add("then: " + Health("hc"));
        obs.Add("the check's output is kept: " + JsonNode.Parse(s.Field("hc", "{{json .State.Health.Log}}"))!.AsArray()[^1]!["Output"]!.ToString().Trim());
        s.Ok("exec", "hc", "rm", "/tmp/ok");
        s.WaitFor("unhealthy", () => { Tick("hc"); return Health("hc") == "unhealthy"; });
        obs.Add("after the file goes (retries 1): " + Health("hc"));
        s.Ok("exec", "hc", "sh", "-c", "echo back > /tmp/ok");
        s.WaitFor("healthy again", () => { Tick("hc"); return Health("hc") == "healthy"; });
        obs.Add("it recovers: " + Health("hc") + " streak " + s.Field("hc", "{{.State.Health.FailingStreak}}"));

        // a check slower than --health-timeout is killed and fails with exit code -1
        s.Ok("run", "-d", "--name", "slow", "--network", "none", "--health-cmd", "sleep 5", "--health-interval", "1s",
            "--health-timeout", "1s", "--health-retries", "1", s.Image, "sleep", "1000");
        s.WaitFor("the slow check to fail", () => { Tick("slow"); return Health("slow") == "unhealthy"; });
        var log = JsonNode.Parse(s.Field("slow", "{{json .State.Health.Log}}"))!.AsArray();
        obs.Add("timed-out check: " + Health("slow") + " exit " + log[^1]!["ExitCode"]);
        // docker's output says "Health check exceeded timeout (1s)"; podman's is empty: not compared
        obs.Add("ps filter: " + string.Join(",", s.Ok("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}").Lines));
        return obs;
    });

    [Fact]
    public void Files_in_and_out_cp_export_import_and_commit() => Compare(s =>
    {
        var obs = new List<string>();
        var host = Path.Combine(s.Dir, "host-" + s.Name);
        Directory.CreateDirectory(Path.Combine(host, "dir"));
        File.WriteAllText(Path.Combine(host, "in.txt"), "from the host\n");
        File.WriteAllText(Path.Combine(host, "dir", "a"), "a\n");
        s.Ok("run", "-d", "--name", "f", "--network", "none", s.Image, "sh", "-c", "mkdir -p /data; echo made inside > /data/out.txt; exec sleep 1000");
        s.WaitFor("the container's file", () => s.Do("exec", "f", "cat", "/data/out.txt").ExitCode == 0);

        obs.Add("cp host file in: " + s.Do("cp", Path.Combine(host, "in.txt"), "f:/data/").ExitCode);
        obs.Add("cp host dir in: " + s.Do("cp", Path.Combine(host, "dir"), "f:/data/").ExitCode);
        obs.Add("seen inside: " + s.Ok("exec", "f", "sh", "-c", "cat /data/in.txt /data/dir/a").Stdout.ReplaceLineEndings("|"));
        obs.Add("cp file out: " + s.Do("cp", "f:/data/out.txt", Path.Combine(host, "out.txt")).ExitCode + " " + File.ReadAllText(Path.Combine(host, "out.txt")).Trim());
        obs.Add("cp dir out: " + s.Do("cp", "f:/data", Path.Combine(host, "copy")).ExitCode + " " +
            string.Join(",", Directory.EnumerateFileSystemEntries(Path.Combine(host, "copy")).Select(Path.GetFileName).Order(StringComparer.Ordinal)));
        // docker: exit 1 "Could not find the file /nope in container f"; podman: 125. Both fail and name the path
        var missing = s.Do("cp", "f:/nope", Path.Combine(host, "x"));
        obs.Add("cp of a missing path fails: " + (missing.ExitCode != 0) + " " + missing.Stderr.Contains("/nope") + " " + !File.Exists(Path.Combine(host, "x")));

        // commit with a new CMD, then run the image
        s.Ok("commit", "-c", "CMD [\"cat\", \"/data/out.txt\"]", "f", "localhost/committed:1");
        var run = s.Do("run", "--rm", "--network", "none", "localhost/committed:1");
        obs.Add("run of the committed image: " + run.ExitCode + " " + run.Stdout.Trim());
        obs.Add("its Cmd: " + s.Ok("image", "inspect", "--format", "{{json .Config.Cmd}}", "localhost/committed:1").Stdout.Trim());

        // export to a file, import it, run a file of it; then through a pipe
        var tar = Path.Combine(host, "f.tar");
        obs.Add("export -o: " + s.Do("export", "-o", tar, "f").ExitCode);
        obs.Add("the tar has the files: " + Side.Sh($"tar -tf {tar} | grep -c '^data/'").Trim());
        s.Ok("import", tar, "localhost/imported:1");
        var imp = s.Do("run", "--rm", "--network", "none", "localhost/imported:1", "cat", "/data/in.txt");
        obs.Add("run of the imported image: " + imp.ExitCode + " " + imp.Stdout.Trim());
        var piped = s.DoPipe(["export", "f"], ["import", "-", "localhost/imported:2"]);
        obs.Add("export | import: " + piped.ExitCode);
        var fromPipe = s.Do("run", "--rm", "--network", "none", "localhost/imported:2", "cat", "/data/out.txt");
        obs.Add("run of the piped image: " + fromPipe.ExitCode + " " + fromPipe.Stdout.Trim());
        s.Ok("rm", "-f", "f");
        s.Ok("rmi", "localhost/committed:1", "localhost/imported:1", "localhost/imported:2");
        // `diff` is not compared: podman's vfs driver (the isolated store here) lists every file of the
        // image as added; Berth's diff is compared with dockerd's in tests/Berth.DockerApi.Tests (DockerDayTests)
        return obs;
    });

    [Fact]
    public void Stats_top_and_events_with_filters() => Compare(s =>
    {
        var obs = new List<string>();
        var since = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString();
        s.Ok("run", "-d", "--name", "busy", "--network", "none", s.Image, "sh", "-c", "sleep 1000 & exec sleep 1001");
        s.WaitFor("both sleeps", () => s.Ok("exec", "busy", "ps", "-o", "comm").Lines.Count(l => l.Trim() == "sleep") == 2);
        var stats = s.Ok("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", "busy").Stdout.Trim().Split('|');
        obs.Add("stats Name: " + stats[0]);
        obs.Add("stats CPUPerc is a percentage: " + Regex.IsMatch(stats[1], @"^\d+\.\d\d%$"));
        // docker writes MiB/GiB, podman kB/GB: compared on the shape "USED / LIMIT"
        obs.Add("stats MemUsage is used / limit: " + Regex.IsMatch(stats[2], @"^[\d.]+[kKMG]?i?B / [\d.]+[kKMGT]?i?B$"));
        obs.Add("stats PIDs: " + stats[3]);
        // `top`: docker runs ps -ef (UID PID PPID C STIME TTY TIME CMD), podman its own columns (USER PID PPID
        // %CPU ELAPSED TTY TIME COMMAND): compared on the PID column and the commands listed
        var top = s.Ok("top", "busy").Lines;
        obs.Add("top has a PID column: " + Regex.IsMatch(top[0], @"\bPID\b"));
        obs.Add("top lists the processes: " + top.Count(l => l.Contains("sleep 1000")) + " " + top.Count(l => l.Contains("sleep 1001")));
        s.Ok("stop", "-t", "1", "busy");
        s.Ok("rm", "busy");
        s.Ok("run", "--name", "other", "--network", "none", s.Image, "true");
        // podman names the die event "died", logs no stop after a SIGKILL and adds init/cleanup/attach: the
        // events both name as docker does are compared (create, start)
        // --until a second ahead (podman reads "0s" as the epoch): both stream what happened, then stop
        string Events(params string[] filters) => string.Join(",", s.Ok(["events", "--since", since, "--until", (DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1).ToString(),
            .. filters.SelectMany(f => new[] { "--filter", f }), "--format", "{{.Status}}"]).Lines);
        obs.Add("events container=busy event=start: " + Events("container=busy", "event=start"));
        obs.Add("events container=busy event=create: " + Events("container=busy", "event=create"));
        obs.Add("events container=other event=create,start: " + Events("container=other", "event=create", "event=start"));
        obs.Add("events type=container event=start: " + Events("type=container", "event=start"));
        // system df: docker's fields (podman names the count Total, docker TotalCount; docker adds a Build
        // Cache row podman has not): compared on the types and the active counts
        obs.Add("system df: " + string.Join(",", s.Ok("system", "df", "--format", "{{.Type}} {{.Active}}").Lines.Where(l => !l.StartsWith("Build Cache"))));
        // `port` is not compared: publishing needs podman's bridge network, whose configuration on this
        // machine is shared; Berth's `port` is compared with dockerd's in tests/Berth.DockerApi.Tests (DockerDayTests)
        return obs;
    });
}
