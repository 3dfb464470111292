using System.Globalization;
using System.Text.RegularExpressions;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>More of the Docker user's day (see <see cref="DockerDayTests"/>): failing execs and
/// terminals, copying trees both ways, networks and volumes with labels and filters, and the
/// container verbs around ports, waits, updates and restart policies.</summary>
public sealed partial class DockerDayTests
{
    /// <summary>A terminal for docker (as a user's shell gives it): docker runs on a pty made by a small
    /// python3 `pty` driver that types each line once the shell in the container shows a new prompt
    /// ("# "), so the typing never races the CLI setting its terminal raw; the output is what the user saw.</summary>
    static ToolResult Typed(DaySide s, string dockerArgs, params string[] lines)
    {
        const string driver = """
            import os, pty, select, sys, time
            pid, fd = pty.fork()
            if pid == 0:
                os.execvp(sys.argv[1], sys.argv[1:])
            out = b""
            def read(until, secs):
                global out
                end = time.time() + secs
                while time.time() < end:
                    if select.select([fd], [], [], 0.2)[0]:
                        try:
                            d = os.read(fd, 4096)
                        except OSError:
                            return
                        if not d:
                            return
                        out += d
                        if until():
                            return
            for line in os.environ["TYPED"].split("\n"):
                n = out.count(b"# ")
                read(lambda: out.count(b"# ") > n, 30)
                os.write(fd, (line + "\n").encode())
            read(lambda: False, 30)
            _, st = os.waitpid(pid, 0)
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(st))
            """;
        return s.Shell($"TYPED={DaySide.Quote(string.Join('\n', lines))} python3 -c {DaySide.Quote(driver)} {ServiceFixture.DockerCli} {dockerArgs}");
    }

    static string PtsNumber(string s) => Regex.Replace(s, @"/dev/pts/\d+", "/dev/pts/N");

    [Fact]
    public void Exec_failures_and_terminals() => Compare(s =>
    {
        s.Ok("run", "-d", "--name", "sh", I, "sleep", "1000");
        // a command that cannot start: exit 126, the runtime's error on stdout (as the CLI prints it)
        s.Do("exec", "sh", "no-such-command");
        s.Do("exec", "sh", "/etc/passwd");
        s.Do("exec", "sh", "/tmp");
        s.Do("exec", "sh", "/nosuch/x");
        s.Do("exec", "sh", "./sh");
        s.Do("exec", "-w", "/nosuch", "sh", "true");
        s.Do("exec", "-w", "/etc/passwd", "sh", "true");
        s.Do("exec", "-u", "nosuchuser", "sh", "true");
        s.Do("exec", "-t", "sh", "no-such-command");
        s.Do("exec", "-i", "sh", "/tmp");
        s.Do("exec", "-d", "sh", "no-such-command");
        s.Do("exec", "-d", "sh", "sleep", "1");
        s.Do("exec", "-e", "PATH=/nowhere", "sh", "ls");
        s.Do("exec", "-w", "/www", "sh", "./index.html");
        // terminals: the container's own pty, CRLF line ends
        // the pty's number is the devpts' next free one: it depends on the execs before
        s.DoWith(null, PtsNumber, "exec", "-t", "sh", "tty");
        s.Do("exec", "-t", "sh", "sh", "-c", "echo one; echo two >&2; exit 5");
        s.Do("run", "--rm", "-t", I, "sh", "-c", "echo hi; tty");
        s.Note("run -it:\n" + PtsNumber(Typed(s, $"run -it --rm {I} sh", "echo hello; tty; stty size | wc -w", "exit 3").ToString()));
        // the exec's pty is the shell's controlling terminal (runc's setsid + TIOCSCTTY): busybox has
        // job control, no "can't access tty; job control turned off"
        s.Note("exec -it:\n" + PtsNumber(Typed(s, "exec -it sh sh", "echo in exec; tty", "exit 4").ToString()));
        s.Do("inspect", "--format", "{{.State.Status}}", "sh");
        s.Do("rm", "-f", "sh");
    });

    [Fact]
    public void Cp_trees_symlinks_and_streams() => Compare(s =>
    {
        var tmp = Directory.CreateTempSubdirectory("berth-day-").FullName;
        s.Alias(tmp, "<tmp>");
        string H(string p) => Path.Combine(tmp, p);
        try
        {
            Directory.CreateDirectory(H("dir/sub"));
            File.WriteAllText(H("dir/a.txt"), "a\n");
            File.WriteAllText(H("dir/sub/b.txt"), "b\n");
            File.SetUnixFileMode(H("dir/sub/b.txt"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.CreateSymbolicLink(H("dir/link"), "a.txt");
            File.CreateSymbolicLink(H("dir/abs"), "/etc/passwd");
            string Tree(string root) => string.Join(' ', Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
                .Select(p => Path.GetRelativePath(root, p) + (new FileInfo(p).LinkTarget is { } t ? "->" + t : "")).Order(StringComparer.Ordinal));
            s.Ok("run", "-d", "--name", "box", I, "sleep", "1000");
            s.Do("cp", H("dir"), "box:/tmp/");
            s.Do("exec", "box", "sh", "-c", "cd /tmp/dir && find . | sort && stat -c '%n %a %U:%G %F' a.txt link abs sub sub/b.txt && readlink link abs");
            s.Do("cp", H("dir/a.txt"), "box:/tmp/renamed.txt");
            s.Do("cp", H("dir/."), "box:/tmp/flat");
            s.Do("exec", "box", "sh", "-c", "cat /tmp/renamed.txt; ls /tmp/flat | sort");
            s.Do("cp", "box:/tmp/dir", H("back"));
            s.Note("copied back: " + Tree(H("back")));
            s.Do("cp", "box:/tmp/dir/.", H("contents"));
            s.Note("contents: " + Tree(H("contents")));
            s.Do("cp", "box:/bin/sh", H("sh"));
            s.Note("sh is a link to: " + new FileInfo(H("sh")).LinkTarget);
            s.Do("cp", "-L", "box:/bin/sh", H("shL"));
            s.Note("-L copied a file of " + new FileInfo(H("shL")).Length + " bytes, executable: " + ((File.GetUnixFileMode(H("shL")) & UnixFileMode.UserExecute) != 0));
            s.Note("tar from cp to stdout: " + s.Shell($"{ServiceFixture.DockerCli} cp box:/etc/passwd - | tar -t").Stdout.Trim());
            s.Note("tar into cp from stdin: " + s.Shell($"tar -C {tmp}/dir -c a.txt sub | {ServiceFixture.DockerCli} cp - box:/opt && {ServiceFixture.DockerCli} exec box find /opt").Stdout.Trim());
            s.Do("cp", H("dir/a.txt"), "box:/nosuchdir/x");
            // the CLI refuses before sending; whether its tar writer had begun (and logs "Can't add file …: closed pipe") is its own race
            s.DoWith(null, t => Regex.Replace(t, "time=\"<time>\" level=error msg=\"Can't [^\n]*\n?", ""), "cp", H("dir"), "box:/tmp/dir/a.txt");
            // dockerd's error names the path in its own overlay directory (lstat …/merged/tmp/dir/a.txt/x: not a directory)
            s.Known("dockerd shows its storage path", "cp", "box:/tmp/dir/a.txt/x", tmp);
            s.Do("stop", "-t", "0", "box");
            s.Do("cp", H("dir/a.txt"), "box:/root/while-stopped.txt");
            s.Do("cp", "box:/root/while-stopped.txt", H("stopped.txt"));
            s.Note("from the stopped container: " + File.ReadAllText(H("stopped.txt")).Trim());
            s.Do("rm", "box");
        }
        finally { Directory.Delete(tmp, true); }
    });

    [Fact]
    public void Labels_filters_and_inspect_of_networks_and_volumes() => Compare(s =>
    {
        s.Do("network", "create", "--label", "env=test", "--label", "team=a", "labnet");
        s.Do("network", "create", "plainnet");
        s.Do("network", "inspect", "--format", "{{json .Labels}} {{.IPAM.Driver}} {{.EnableIPv6}} {{.Internal}}", "labnet");
        s.DoWith(null, SortLines, "network", "ls", "--filter", "label=env=test", "--format", "{{.Name}}");
        // (.Labels joins a Go map: dockerd's order varies from run to run)
        s.DoWith(null, SortLines, "network", "ls", "--filter", "label=team", "--format", "{{.Name}} {{.Label \"team\"}}");
        s.Do("network", "ls", "--filter", "driver=null", "--format", "{{.Name}}");
        s.Ok("run", "-d", "--name", "a1", "--network", "labnet", "--network-alias", "svc", I, "sleep", "1000");
        s.Ok("run", "-d", "--name", "b1", I, "sleep", "1000");
        // API 1.41 (dockerd 20.10) lists the container's short id among its aliases; from API 1.45 (Berth serves 1.47) that is in DNSNames
        s.Known("aliases by API version", "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{json $v.Aliases}} {{end}}", "a1");
        // two networks at create before API 1.44 (dockerd 20.10 serves 1.41; Berth's side asks for it): refused in
        // dockerd's words (it names them in its map's order: compared sorted); from 1.44 see DockerCliTests
        s.Env["DOCKER_API_VERSION"] = "1.41";
        try
        {
            s.DoWith(null, t => EndpointList().Replace(t, m => m.Groups[1].Value + string.Join(", ", m.Groups[2].Value.Split(", ").Order(StringComparer.Ordinal))),
                "create", "--name", "two", "--network", "labnet", "--network", "plainnet", I, "true");
        }
        finally { s.Env.Remove("DOCKER_API_VERSION"); }
        s.Do("network", "connect", "--alias", "other", "labnet", "b1");
        s.Do("exec", "b1", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 svc >/dev/null 2>&1 && echo svc answers && exit 0; sleep 0.3; done; exit 1");
        s.Do("exec", "a1", "sh", "-c", "ping -c 1 -W 2 other >/dev/null && echo other answers");
        s.DoWith(null, SortLines, "network", "inspect", "--format", "{{range .Containers}}{{.Name}}\n{{end}}", "labnet");
        s.Do("inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "b1");
        s.Do("network", "disconnect", "labnet", "b1");
        s.Do("network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", "labnet");
        s.Do("network", "connect", "labnet", "nosuch");
        s.Do("network", "disconnect", "-f", "labnet", "a1");
        s.Do("inspect", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", "labnet");
        s.Do("network", "rm", "labnet", "plainnet");
        s.Do("volume", "create", "--label", "tier=db", "--label", "keep", "vol1");
        s.Do("volume", "create", "vol2");
        s.Do("volume", "inspect", "--format", "{{json .Labels}} {{.Driver}} {{json .Options}}", "vol1");
        s.Do("volume", "ls", "--filter", "label=tier=db", "-q");
        s.Do("volume", "ls", "--filter", "label=keep", "--format", "{{.Name}} {{.Driver}} {{.Label \"tier\"}}");
        s.Ok("run", "--name", "user", "-v", "vol2:/v", I, "true");
        s.DoWith(null, SortLines, "volume", "ls", "--filter", "dangling=true", "-q");
        s.Do("volume", "ls", "--filter", "dangling=false", "-q");
        s.Do("volume", "prune", "-f", "--filter", "label=tier=db");
        s.DoWith(null, SortLines, "volume", "ls", "-q");
        s.Do("inspect", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", "vol2");
        s.Do("inspect", "--format", "{{.Name}} {{.State.Status}}", "user");
        s.Do("inspect", "--format", "{{.Os}} {{json .Config.Cmd}} {{json .RepoTags}}", I);
        s.Do("volume", "rm", "vol2");
        s.Do("rm", "user");
        s.Do("volume", "rm", "vol2");
        s.Do("volume", "ls", "-q");
    });

    [Fact]
    public void Ports_top_wait_update_rename_and_restart_policies() => Compare(s =>
    {
        var port = Tools.FreePort();
        s.Alias(port.ToString(CultureInfo.InvariantCulture), "PORT");
        s.Ok("run", "-d", "--name", "svc", "-p", $"127.0.0.1:{port}:80", "-p", "127.0.0.1::81/udp", "--expose", "90", "--label", "role=web",
            I, "httpd", "-f", "-p", "80", "-h", "/www");
        // the ephemeral host ports differ between the daemons
        string Ports(string t) => Regex.Replace(t, @"127\.0\.0\.1:(?!PORT\b)\d+", "127.0.0.1:<eph>");
        s.DoWith(null, Ports, "port", "svc");
        s.Do("port", "svc", "80/tcp");
        s.DoWith(null, Ports, "port", "svc", "81/udp");
        s.Do("port", "svc", "90");
        s.DoWith(null, Ports, "ps", "--format", "{{.Names}} {{.Ports}} {{.Labels}}");
        s.Do("ps", "--filter", "label=role=web", "--format", "{{.Names}}");
        s.Do("ps", "--filter", "ancestor=" + I, "--format", "{{.Names}}");
        s.Do("ps", "--filter", "publish=80", "--format", "{{.Names}}");
        s.Do("ps", "--filter", "expose=90", "--format", "{{.Names}}");
        s.DoWith(null, Digits, "top", "svc", "-o", "pid,comm");
        s.DoWith(null, Digits, "top", "svc", "-eo", "user,args");
        s.DoWith(null, t => Regex.Replace(t, @"\d+(\.\d+)?%", "<pct>"), "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemPerc}}", "svc");
        // resource limits: live in the running container's cgroup, kept in HostConfig, dockerd's rules and errors
        const string limits = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuQuota}} {{.HostConfig.PidsLimit}}";
        s.Do("update", "--memory", "64m", "svc");
        s.Do("update", "--memory", "64m", "--memory-swap", "128m", "--cpu-shares", "512", "svc");
        s.Do("inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}}", "svc");
        s.Do("update", "--memory", "1k", "svc");
        s.Do("update", "--memory", "200m", "svc");
        s.Do("update", "--cpus", "0.5", "--pids-limit", "50", "svc");
        s.Do("inspect", "--format", limits, "svc");
        s.Do("exec", "svc", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
            "/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/pids/pids.max");
        s.Do("update", "--cpu-quota", "20000", "svc");
        s.Do("update", "--cpus", "0.5", "--cpu-quota", "20000", "svc");
        s.Do("update", "--cpus", "64", "svc");
        s.Do("update", "--cpuset-cpus", "99", "svc");
        // real-time budget (cgroup v1 cpu.rt_*; this kernel has CONFIG_RT_GROUP_SCHED, the parents no budget to give)
        s.Do("update", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "2000000", "svc");
        s.Do("update", "--cpu-rt-runtime", "950000", "svc");
        s.Do("update", "--cpuset-cpus", "0", "--cpu-rt-runtime", "950000", "svc");
        s.Do("update", "--cpu-rt-period", "500000", "svc");
        s.Do("inspect", "--format", "{{.HostConfig.CPURealtimePeriod}} {{.HostConfig.CPURealtimeRuntime}} [{{.HostConfig.CpusetCpus}}]", "svc");
        s.Do("exec", "svc", "cat", "/sys/fs/cgroup/cpu/cpu.rt_period_us", "/sys/fs/cgroup/cpu/cpu.rt_runtime_us", "/sys/fs/cgroup/cpuset/cpuset.cpus");
        s.Do("update", "--memory-reservation", "1k", "svc");
        s.Do("update", "--pids-limit", "-1", "--memory", "100m", "svc");
        s.Do("inspect", "--format", limits, "svc");
        s.Do("exec", "svc", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max");
        s.Do("update", "--blkio-weight", "300", "svc");
        s.Do("update", "--memory", "32m", "nosuch");
        s.Do("update", "--pids-limit", "60", "svc", "nosuch", "svc");
        s.Do("update", "svc");
        // a stopped container: the limits wait for the start
        s.Ok("create", "--name", "later", I, "sleep", "1000");
        s.Do("update", "--memory", "32m", "--memory-swap", "64m", "--pids-limit", "10", "--cpu-period", "50000", "--cpu-quota", "25000", "later");
        s.Do("inspect", "--format", limits + " {{.HostConfig.CpuPeriod}}", "later");
        s.Ok("start", "later");
        s.Do("exec", "later", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us");
        s.Ok("stop", "-t", "0", "later");
        s.Do("update", "--pids-limit", "20", "later");
        s.Ok("start", "later");
        s.Do("exec", "later", "cat", "/sys/fs/cgroup/pids/pids.max");
        s.Do("update", "--cpus", "1", "later");
        s.Ok("rm", "-f", "later");
        s.Do("update", "--restart", "unless-stopped", "svc");
        s.Do("inspect", "--format", "{{json .HostConfig.RestartPolicy}}", "svc");
        s.Do("rename", "svc", "svc2");
        s.Do("rename", "svc2", "bad/name");
        s.Do("port", "svc2", "80");
        s.Ok("run", "-d", "--name", "w1", I, "sh", "-c", "sleep 0.5; exit 1");
        s.Ok("run", "-d", "--name", "w2", I, "sh", "-c", "sleep 1; exit 2");
        s.Do("wait", "w1", "w2");
        s.Do("wait", "w1", "nosuch", "w2");
        s.Ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", I, "sh", "-c", "exit 7");
        s.WaitFor("flaky's retries", () => s.Quiet("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", "flaky").Stdout.Trim() == "exited 2", 60_000);
        s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}} {{json .HostConfig.RestartPolicy}}", "flaky");
        s.Do("run", "-d", "--name", "bad", "--restart", "on-failure:2", "--rm", I, "true");
        s.Do("run", "-d", "--name", "bad", "--restart", "sometimes", I, "true");
        s.Do("rm", "-f", "svc2", "w1", "w2", "flaky");
        s.Do("ps", "-aq");
    });
    [Fact]
    public void Compose_healthcheck_depends_on_exec_down_volumes() => Compare(s =>
    {
        var dir = Directory.CreateTempSubdirectory("berth-day-compose-").FullName;
        s.Alias(dir, "<dir>");
        var file = Path.Combine(dir, "docker-compose.yml");
        File.WriteAllText(file, $$"""
            version: "2.4"
            services:
              db:
                image: {{I}}
                command: ["sh", "-c", "echo stored > /data/v; sleep 1; touch /tmp/ready; echo db ready; exec sleep 1000"]
                volumes: [dbdata:/data]
                networks: [back]
                healthcheck:
                  test: ["CMD", "test", "-f", "/tmp/ready"]
                  interval: 1s
                  timeout: 2s
                  retries: 10
              app:
                image: {{I}}
                depends_on:
                  db: {condition: service_healthy}
                networks: [back]
                environment: [MODE=test]
                command: ["sh", "-c", "ping -c 1 -W 2 db >/dev/null && echo app reached db; exec sleep 1000"]
            networks:
              back: {}
            volumes:
              dbdata: {}
            """);
        try
        {
            s.Compose(file, "dhc", "up", "-d");
            s.Do("inspect", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "dhc_db_1");
            s.WaitFor("the app's line", () => s.Quiet("logs", "dhc_app_1").Stdout.Contains("app reached db"));
            s.Compose(file, "dhc", "ps");
            s.Compose(file, "dhc", "exec", "-T", "app", "sh", "-c", "cat /etc/hostname >/dev/null; echo $MODE; exit 3");
            s.Compose(file, "dhc", "logs", "--no-color", "db");
            s.Do("inspect", "--format", "{{json .Config.Healthcheck}}", "dhc_db_1");
            s.Do("ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}");
            s.Compose(file, "dhc", "down", "-v", "-t", "1");
            s.Do("volume", "ls", "-q", "--filter", "name=dhc");
            s.Do("network", "ls", "--filter", "name=dhc", "--format", "{{.Name}}");
        }
        finally { Directory.Delete(dir, true); }
    });

    [GeneratedRegex(@"(network endpoints: )([^\n]*)")] private static partial Regex EndpointList();
}
