namespace Berth.EndToEnd;

/// <summary>podman (Debian's) drives containers through berth-runc exactly as it would runc.</summary>
[Collection("podman")]
public sealed class PodmanTests(PodmanFixture f)
{
    // podman's default seccomp profile applies (no extra security options).
    static readonly string[] Sec = [];

    [Fact]
    public void Podman_default_seccomp_profile_is_enforced()
    {
        var r = RunRm(f.Image, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -n true 2>/dev/null; echo unshare=$?; echo ok > /tmp/f && cat /tmp/f");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["Seccomp:\t2", "unshare=1", "ok"], Lines(r.Stdout));
        var unconfined = RunRm("--security-opt", "seccomp=unconfined", f.Image, "grep", "Seccomp:", "/proc/self/status");
        Assert.Equal("Seccomp:\t0", unconfined.Stdout.Trim());
    }

    RunResult RunRm(params string[] args) => f.Podman(["run", "--rm", .. Sec, .. args]);

    [Fact]
    public void Exit_codes_pass_through()
    {
        Assert.Equal(0, RunRm(f.Image, "true").ExitCode);
        Assert.Equal(42, RunRm(f.Image, "sh", "-c", "exit 42").ExitCode);
        // The container's init killed by a signal from outside: 128 + signal.
        var run = f.Podman(["run", "-d", .. Sec, f.Image, "sleep", "100"]);
        var id = run.Stdout.Trim();
        try
        {
            Assert.Equal(0, f.Podman("kill", "-s", "KILL", id).ExitCode);
            Assert.Equal("137", f.Podman("wait", id).Stdout.Trim());
        }
        finally { f.Podman("rm", "-f", "-t", "0", id); }
    }

    [Fact]
    public void Env_workdir_user_and_hostname_reach_the_process()
    {
        var r = RunRm("-e", "GREETING=hello world", "-w", "/tmp", "-u", "1000:1000", "--hostname", "berth-box", f.Image,
            "sh", "-c", "echo \"$GREETING\"; pwd; id -u; id -g; hostname");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["hello world", "/tmp", "1000", "1000", "berth-box"], Lines(r.Stdout));
    }

    [Fact]
    public void Memory_limit_is_enforced()
    {
        var r = RunRm("--memory", "32m", f.Image, "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("33554432", r.Stdout.Trim());
        // Allocating well past the limit gets the process OOM-killed (SIGKILL → 137).
        var oom = RunRm("--memory", "32m", "--memory-swap", "32m", f.Image, "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived");
        Assert.Equal(137, oom.ExitCode);
        Assert.DoesNotContain("survived", oom.Stdout);
    }

    [Fact]
    public void Pids_limit_bounds_a_fork_bomb()
    {
        var r = RunRm("--pids-limit", "20", f.Image, "sh", "-c",
            // The loop runs in a subshell that dies when fork fails; then only builtins (no fork).
            "d=/sys/fs/cgroup/pids; [ -d $d ] || d=/sys/fs/cgroup; (for i in $(seq 60); do sleep 2 & done) 2>/dev/null; read cur < $d/pids.current; read max < $d/pids.max; echo $cur; echo $max");
        var lines = Lines(r.Stdout);
        Assert.True(lines.Length >= 2, r.ToString());
        Assert.InRange(int.Parse(lines[0]), 1, 20);
        Assert.Equal("20", lines[1]);
    }

    [Fact]
    public void Detached_container_exec_logs_pause_stop_rm()
    {
        var run = f.Podman(["run", "-d", .. Sec, f.Image, "sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 0.2; done"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        var id = run.Stdout.Trim();
        try
        {
            var exec = f.Podman("exec", id, "sh", "-c", "echo from-exec; exit 5");
            Assert.Equal(5, exec.ExitCode);
            Assert.Equal("from-exec", exec.Stdout.Trim());
            var env = f.Podman("exec", "-e", "X=1", "-w", "/bin", "-u", "1000", id, "sh", "-c", "echo $X $(pwd) $(id -u)");
            Assert.Equal("1 /bin 1000", env.Stdout.Trim());

            Assert.Contains("started", WaitFor(() => f.Podman("logs", id).Stdout, s => s.Contains("started")));

            Assert.Equal(0, f.Podman("pause", id).ExitCode);
            Assert.Equal("paused", f.Podman("inspect", "--format", "{{.State.Status}}", id).Stdout.Trim());
            Assert.Equal(0, f.Podman("unpause", id).ExitCode);
            Assert.Equal("running", f.Podman("inspect", "--format", "{{.State.Status}}", id).Stdout.Trim());

            var stop = f.Podman("stop", "-t", "5", id);
            Assert.True(stop.ExitCode == 0, stop.ToString());
            Assert.Equal("exited", f.Podman("inspect", "--format", "{{.State.Status}}", id).Stdout.Trim());
            Assert.Equal("0", f.Podman("inspect", "--format", "{{.State.ExitCode}}", id).Stdout.Trim());
            Assert.Equal(0, f.Podman("rm", id).ExitCode);
            Assert.NotEqual(0, f.Podman("inspect", id).ExitCode);
        }
        finally { f.Podman("rm", "-f", "-t", "0", id); }
    }

    [Fact]
    public void Tty_gives_the_process_a_terminal()
    {
        var r = f.PodmanWithTty(["run", "--rm", "-t", .. Sec, f.Image, "sh", "-c", "tty; test -t 0 && test -t 1 && echo is-a-tty"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("/dev/pts/0", r.Stdout);
        Assert.Contains("is-a-tty", r.Stdout);
        var noTty = RunRm(f.Image, "sh", "-c", "test -t 1 || echo not-a-tty");
        Assert.Equal("not-a-tty", noTty.Stdout.Trim());
    }

    [Fact]
    public void Preserved_fds_reach_the_container()
    {
        var marker = Path.Combine(f.Dir, "fd3.txt");
        File.WriteAllText(marker, "through fd 3\n");
        var r = f.PodmanAfter($"exec 3<{marker}", "run", "--rm", "--preserve-fds", "1", f.Image, "sh", "-c", "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("through fd 3", r.Stdout);
    }

    [Fact]
    public void Exec_with_a_tty()
    {
        var run = f.Podman("run", "-d", f.Image, "sleep", "100");
        var id = run.Stdout.Trim();
        try
        {
            var r = f.PodmanWithTty("exec", "-it", id, "sh", "-c", "tty; test -t 0 && echo exec-tty");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("/dev/pts/", r.Stdout);
            Assert.Contains("exec-tty", r.Stdout);
        }
        finally { f.Podman("rm", "-f", "-t", "0", id); }
    }

    [Fact]
    public void Capabilities_can_be_dropped()
    {
        var r = RunRm("--cap-drop", "ALL", f.Image, "sh", "-c", "grep CapEff /proc/self/status");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("CapEff:\t0000000000000000", r.Stdout.Trim());
    }

    /// <summary>podman --uidmap/--gidmap: berth-runc creates the user namespace (nsexec); the container's
    /// root is host uid 100000; `podman exec` joins the same user namespace.</summary>
    [Fact]
    public void User_namespace_with_uidmap_run_and_exec()
    {
        var run = f.Podman(["run", "-d", .. Sec, "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", f.Image, "sh", "-c", "touch /made; exec sleep 100"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        var id = run.Stdout.Trim();
        try
        {
            var pid = int.Parse(f.Podman("inspect", "-f", "{{.State.Pid}}", id).Stdout.Trim());
            var uid = File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:")).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];
            Assert.Equal("100000", uid);
            var exec = f.Podman("exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; ls -ln /made");
            Assert.True(exec.ExitCode == 0, exec.ToString());
            var lines = Lines(exec.Stdout);
            Assert.Equal("0", lines[0]);
            Assert.Equal("0 100000 65536", string.Join(' ', lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
            Assert.Equal(new FileInfo($"/proc/{pid}/ns/user").LinkTarget, lines[2]);
            Assert.Contains(" 0 ", lines[3]); // owned by the container's root
        }
        finally { f.Podman("rm", "-f", "-t", "0", id); }
    }

    static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    static string WaitFor(Func<string> probe, Func<string, bool> done, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        string last;
        do
        {
            last = probe();
            if (done(last)) return last;
            Thread.Sleep(100);
        } while (Environment.TickCount64 < deadline);
        return last;
    }
}
