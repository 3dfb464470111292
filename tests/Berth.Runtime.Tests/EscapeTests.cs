using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;
using Xunit.Abstractions;

namespace Berth.Runtime.Tests;

/// <summary>Container-escape attacks run from inside real containers (busybox sh) against the built
/// berth-runc. Each test says what the attack would observe if the defence it targets were missing.</summary>
public partial class EscapeTests(ITestOutputHelper output)
{
    // ------------------------------------------------------------------ shared attacker

    /// <summary>pid 1 of the attacker container. It watches its pid namespace for processes that are not
    /// busybox (berth-runc init of an exec, or the runtime binary re-run through a `#!/proc/self/exe`
    /// script), freezes each one with SIGSTOP (so it cannot execve away while probed) and tries what a
    /// CVE-2019-5736 / ptrace attacker tries: open /proc/N/environ and /proc/N/mem, open /proc/N/exe,
    /// and reopen that exe for writing while it runs and again after it exited (when "text file busy"
    /// no longer protects it). Nothing is ever written: opening for writing is the proof.</summary>
    const string Attacker = """
        #!/bin/sh
        L=/log
        : > $L/ready
        while [ ! -e $L/stop ]; do
          for d in /proc/[0-9]*; do
            p=${d#/proc/}
            [ "$p" = 1 ] && continue
            [ $d/exe -ef /bin/busybox ] && continue
            kill -STOP $p 2>/dev/null || continue
            if [ $d/exe -ef /bin/busybox ]; then kill -CONT $p; continue; fi
            echo "seen $p" >>$L/events
            if { command exec 5<$d/environ; } 2>>$L/errors; then echo "ENVIRON-OPEN $p" >>$L/events; exec 5<&-; fi
            if { command exec 5<$d/mem; } 2>>$L/errors; then echo "MEM-OPEN $p" >>$L/events; exec 5<&-; fi
            if { command exec 3<$d/exe; } 2>>$L/errors; then
              if [ /proc/self/fd/3 -ef /bin/busybox ]; then exec 3<&-; kill -CONT $p; continue; fi
              echo "EXE-OPEN $p" >>$L/events
              { ( exec 4<>/proc/self/fd/3 ) && echo "EXE-WRITABLE-RUNNING $p" >>$L/events; } 2>>$L/rw-running
              kill -CONT $p
              n=0; while [ -d $d ] && [ $n -lt 200000 ]; do n=$((n+1)); done
              { ( exec 4<>/proc/self/fd/3 ) && echo "EXE-WRITABLE-EXITED $p" >>$L/events; } 2>>$L/rw-exited
              exec 3<&-
            else
              kill -CONT $p
            fi
          done
        done
        echo stopped >$L/stopped
        """;

    sealed record AttackLog(string[] Events, string Errors, string RwRunning, string RwExited, string LastExecStderr)
    {
        public int Count(string prefix) => Events.Count(e => e.StartsWith(prefix + " ", StringComparison.Ordinal));

        public string Summary() =>
            $"seen {Count("seen")}, environ opened {Count("ENVIRON-OPEN")}, mem opened {Count("MEM-OPEN")}, exe opened {Count("EXE-OPEN")}; " +
            $"exe writable while running {Count("EXE-WRITABLE-RUNNING")}, after exit {Count("EXE-WRITABLE-EXITED")}; " +
            $"open errors: EACCES {Occ(Errors, "Permission denied")}, ENOENT {Occ(Errors, "No such file")}, ESRCH {Occ(Errors, "No such process")}; " +
            $"rw while running: ETXTBSY {Occ(RwRunning, "Text file busy")}, EROFS {Occ(RwRunning, "Read-only file system")}; " +
            $"rw after exit: ETXTBSY {Occ(RwExited, "Text file busy")}, EROFS {Occ(RwExited, "Read-only file system")}";

        static int Occ(string text, string what) => text.Split('\n').Count(l => l.Contains(what));
    }

    /// <summary>Starts the attacker container, runs <paramref name="execArgs"/> through `berth-runc exec`
    /// <paramref name="times"/> times, stops the attacker and returns what it observed.</summary>
    static AttackLog RunExecAttack(Sandbox s, int times, Action<Bundle>? prepare, params string[] execArgs)
    {
        var id = s.NewId("attacker");
        var log = s.HostDir("attack-log");
        var b = s.NewBundle(id, null, c =>
        {
            c.SetArgs("/attack.sh");
            c.AddMount("/log", "bind", log, "rbind", "rw");
        });
        File.WriteAllText(Path.Combine(b.Rootfs, "attack.sh"), Attacker.Replace("\r", ""));
        File.SetUnixFileMode(Path.Combine(b.Rootfs, "attack.sh"), (UnixFileMode)0x1ed);
        prepare?.Invoke(b);
        s.Ok("run", "--detach", "--bundle", b.Dir, id);
        Sandbox.WaitForText(Path.Combine(log, "ready"), "");
        var last = "";
        for (var i = 0; i < times; i++) last = s.Runc(["exec", id, .. execArgs]).Stderr;
        File.WriteAllText(Path.Combine(log, "stop"), "");
        var deadline = Environment.TickCount64 + 10_000;
        while (!File.Exists(Path.Combine(log, "stopped")) && Environment.TickCount64 < deadline) Thread.Sleep(20);
        string Read(string f) => File.Exists(Path.Combine(log, f)) ? File.ReadAllText(Path.Combine(log, f)) : "";
        return new AttackLog(Read("events").Split('\n', StringSplitOptions.RemoveEmptyEntries), Read("errors"), Read("rw-running"), Read("rw-exited"), last);
    }

    /// <summary>The file the tests' berth-runc really is (out/berth-runc is a symlink to out/berth).</summary>
    internal static string RealBinary()
    {
        var p = realpath(Runc.Binary, IntPtr.Zero);
        Assert.True(p != IntPtr.Zero, "realpath " + Runc.Binary);
        try { return Marshal.PtrToStringUTF8(p)!; } finally { free(p); }
    }

    static (string Hash, DateTime Mtime) Fingerprint(string path) =>
        (Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))), File.GetLastWriteTimeUtc(path));

    // ------------------------------------------------------------------ 1. runtime binary via /proc/PID/exe

    /// <summary>CVE-2019-5736 through exec. The attacker watches for the exec's berth-runc init in its pid
    /// namespace and tries to open its /proc/N/exe (to reopen it for writing once it exited). The exec'd
    /// program is a script whose interpreter is `#!/proc/self/exe`: on runc before 1.0-rc7 that
    /// re-executed the runtime binary with the container's credentials, making it dumpable and
    /// reachable. Here the kernel refuses that interpreter (ENOENT: init's exe sits on a mount the
    /// container cannot reach), and init itself is not dumpable and more privileged than the attacker,
    /// so every open of its exe is refused (EACCES). Without those defences the attacker would log
    /// EXE-OPEN and, without the read-only bind, EXE-WRITABLE-EXITED.</summary>
    [Fact]
    public void Escape_exec_cannot_open_the_runtime_binary_for_writing_through_proc_exe() => Sandbox.Run(s =>
    {
        var binary = RealBinary();
        var before = Fingerprint(binary);
        var log = RunExecAttack(s, 30, b =>
        {
            File.WriteAllText(Path.Combine(b.Rootfs, "bin/evil"), "#!/proc/self/exe\n");
            File.SetUnixFileMode(Path.Combine(b.Rootfs, "bin/evil"), (UnixFileMode)0x1ed);
        }, "/bin/evil");
        output.WriteLine(log.Summary());
        output.WriteLine("exec /bin/evil said: " + log.LastExecStderr.Trim());

        Assert.Equal(0, log.Count("EXE-OPEN"));
        Assert.Equal(0, log.Count("EXE-WRITABLE-RUNNING"));
        Assert.Equal(0, log.Count("EXE-WRITABLE-EXITED"));
        Assert.Equal(before, Fingerprint(binary));
        // The attack must really have met the exec's init, or this test proves nothing.
        Assert.True(log.Count("seen") > 0, "the attacker never saw an exec's init: " + log.Summary());
        Assert.Contains("Permission denied", log.Errors);
    });

    /// <summary>The same defence seen from the host after `create`: the init's /proc/PID/exe names the
    /// binary on a read-only bind mount (fstatvfs ST_RDONLY, while the real file's mount is writable),
    /// so once init has exec'd the user's program (no more "text file busy") a handle to it still cannot
    /// be reopened for writing. Without the defence the O_WRONLY reopen succeeds (nothing is written).</summary>
    [Fact]
    public void Escape_create_init_exe_is_a_read_only_view_of_the_runtime_binary() => Sandbox.Run(s =>
    {
        var binary = RealBinary();
        var before = Fingerprint(binary);
        var id = s.NewId("exe");
        var b = s.NewBundle(id, "exec sleep 1000");
        s.Ok("create", "--bundle", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;

        using var exe = File.OpenHandle($"/proc/{pid}/exe", FileMode.Open, FileAccess.Read);
        var fd = (int)exe.DangerousGetHandle();
        Assert.True(IsReadOnlyMount(fd), "init's exe is not on a read-only mount");
        Assert.False(IsReadOnlyMount(binary), "the host's binary is itself on a read-only mount: the test cannot tell");
        var whileCreated = TryOpenForWrite($"/proc/self/fd/{fd}");
        output.WriteLine($"O_WRONLY reopen while init waits for start: {Describe(whileCreated)}");
        Assert.True(whileCreated is ETXTBSY or EROFS, "reopen for writing while created: " + Describe(whileCreated));

        s.Ok("start", id);
        s.WaitForStatus(id, "running");
        var deadline = Environment.TickCount64 + 10_000;
        while (File.ResolveLinkTarget($"/proc/{pid}/exe", false)?.FullName == binary && Environment.TickCount64 < deadline) Thread.Sleep(10);
        // ETXTBSY only means some process (any test running berth-runc in parallel) executes the
        // inode right now: an attacker retries until that passes, so do we; the read-only view must
        // then refuse the write for good.
        var afterExec = TryOpenForWrite($"/proc/self/fd/{fd}");
        deadline = Environment.TickCount64 + 20_000;
        while (afterExec == ETXTBSY && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(5);
            afterExec = TryOpenForWrite($"/proc/self/fd/{fd}");
        }
        output.WriteLine($"O_WRONLY reopen after init exec'd sleep: {Describe(afterExec)}");
        Assert.Equal(EROFS, afterExec);
        Assert.Equal(before, Fingerprint(binary));
    });

    // ------------------------------------------------------------------ 7. ptrace / proc access to exec's init

    /// <summary>During `exec`, berth-runc init sits in the container's pid namespace. The attacker
    /// freezes it with SIGSTOP and tries /proc/N/environ (which holds the exec's environment, here a
    /// secret) and /proc/N/mem (ptrace attach rights). Init runs with all capabilities until just
    /// before execve (the kernel's capability-subset rule already refuses a less privileged
    /// attacker), and is non-dumpable from its first instruction of Main: without PR_SET_DUMPABLE 0
    /// the window after it dropped to the container's capabilities would be open.</summary>
    [Fact]
    public void Escape_exec_init_cannot_be_read_or_attached_from_the_container() => Sandbox.Run(s =>
    {
        var log = RunExecAttack(s, 30, null, "--env", "SECRET=hunter2", "true");
        output.WriteLine(log.Summary());
        Assert.Equal(0, log.Count("ENVIRON-OPEN"));
        Assert.Equal(0, log.Count("MEM-OPEN"));
        Assert.Equal(0, log.Count("EXE-OPEN"));
        Assert.True(log.Count("seen") > 0, "the attacker never saw an exec's init: " + log.Summary());
        Assert.Contains("Permission denied", log.Errors);
    });

    // ------------------------------------------------------------------ 2. leaked fds / cwd (CVE-2024-21626)

    /// <summary>`exec --cwd /proc/self/fd/N`: whatever init has open at N must not become the process's
    /// working directory. runc 1.1.11 leaked a host /sys/fs/cgroup directory fd there, so the process
    /// started in a host directory and `..` walked to the host root. Here the fds are either not
    /// directories (chdir fails) or the cwd check refuses it; the process never runs.</summary>
    [Theory]
    [InlineData(3)] [InlineData(4)] [InlineData(5)] [InlineData(6)] [InlineData(7)] [InlineData(8)] [InlineData(9)]
    public void Escape_exec_cwd_through_an_inherited_fd_is_refused(int fd) => Sandbox.Run(s =>
    {
        var (id, log) = RunSleeper(s);
        var r = s.Runc("exec", "--cwd", $"/proc/self/fd/{fd}", id, "sh", "-c", "pwd > /log/pwd; ls -a .. > /log/ls");
        Sandbox.AssertOneLineError(r);
        Assert.Empty(Directory.GetFiles(log));
    });

    /// <summary>The strongest form: the caller hands berth-runc a host directory as fd 3 and preserves
    /// it (--preserve-fds 1), then asks for /proc/self/fd/3 as the working directory. chdir succeeds,
    /// into a directory outside the container's root; without the check after chdir the process would
    /// start there (`ls` would list host-secret). Checked for exec and for create.</summary>
    [Fact]
    public void Escape_cwd_on_a_preserved_host_directory_fd_is_refused() => Sandbox.Run(s =>
    {
        var hostDir = s.HostDir("host-dir");
        File.WriteAllText(Path.Combine(hostDir, "host-secret"), "x");
        var (id, log) = RunSleeper(s);
        var setup = $"exec 3<'{hostDir}';";
        var r = s.RuncWithFds(setup, null, "exec", "--preserve-fds", "1", "--cwd", "/proc/self/fd/3", id, "sh", "-c", "pwd > /log/pwd; ls -a > /log/ls");
        output.WriteLine("exec: " + r.Stderr.Trim());
        Sandbox.AssertOneLineError(r, "outside the container's root");
        Assert.Empty(Directory.GetFiles(log));

        var id2 = s.NewId("cwdfd");
        var b = s.NewBundle(id2, "pwd > /log/pwd; ls -a > /log/ls", c =>
        {
            c.Proc()["cwd"] = "/proc/self/fd/3";
            c.AddMount("/log", "bind", log, "rbind", "rw");
        });
        var c2 = s.RuncWithFds(setup, null, "run", "--preserve-fds", "1", "--bundle", b.Dir, id2);
        output.WriteLine("run: " + c2.Stderr.Trim());
        Sandbox.AssertOneLineError(c2);
        s.AssertNothingLeft(id2);
        Assert.Empty(Directory.GetFiles(log));
        Assert.Equal(["host-secret"], Directory.GetFileSystemEntries(hostDir).Select(Path.GetFileName));
    });

    /// <summary>Only stdio, plus exactly the preserved fds, reach the container's processes (init and
    /// exec). Seen from the host in /proc/PID/fd. berth-runc inherits extra fds 3, 4 and 5 (a file, a
    /// file, a host directory); without close_range(CLOEXEC) before execve they would show up.</summary>
    [Fact]
    public void Escape_only_stdio_and_preserved_fds_reach_the_container() => Sandbox.Run(s =>
    {
        var f3 = Path.Combine(s.HostDir("fds"), "three");
        var f4 = Path.Combine(s.Dir, "fds", "four");
        File.WriteAllText(f3, "3"); File.WriteAllText(f4, "4");
        var setup = $"exec 3<'{f3}' 4<'{f4}' 5<'{s.Dir}';";

        var id = s.NewId("fds0");
        var b = s.NewBundle(id, "exec sleep 1000");
        Assert.True(s.RuncWithFds(setup, null, "run", "--detach", "--bundle", b.Dir, id) is { ExitCode: 0 } r0, "run");
        Assert.Equal(["0", "1", "2"], FdsOf((int)s.State(id)["pid"]!).Keys);

        var id1 = s.NewId("fds1");
        var b1 = s.NewBundle(id1, "exec sleep 1000");
        var r1 = s.RuncWithFds(setup, null, "run", "--detach", "--preserve-fds", "1", "--bundle", b1.Dir, id1);
        Assert.True(r1.ExitCode == 0, r1.ToString());
        var fds = FdsOf((int)s.State(id1)["pid"]!);
        Assert.Equal(["0", "1", "2", "3"], fds.Keys);
        Assert.Equal(f3, fds["3"]);

        // exec: without and with --preserve-fds
        foreach (var (preserve, expected) in new[] { ("0", new[] { "0", "1", "2" }), ("1", new[] { "0", "1", "2", "3" }) })
        {
            var pidFile = Path.Combine(s.Dir, $"exec-{preserve}.pid");
            var e = s.RuncWithFds(setup, null, "exec", "--detach", "--preserve-fds", preserve, "--pid-file", pidFile, id1, "sleep", "1000");
            Assert.True(e.ExitCode == 0, e.ToString());
            var execFds = FdsOf(int.Parse(File.ReadAllText(pidFile).Trim()));
            Assert.Equal(expected, execFds.Keys);
            if (preserve == "1") Assert.Equal(f3, execFds["3"]);
        }
    });

    /// <summary>Starts a long-running container with a host directory bound at /log; returns id and dir.</summary>
    static (string Id, string Log) RunSleeper(Sandbox s)
    {
        var id = s.NewId("sleeper");
        var log = s.HostDir("log-" + id);
        var b = s.NewBundle(id, "exec sleep 1000", c => c.AddMount("/log", "bind", log, "rbind", "rw"));
        s.Ok("run", "--detach", "--bundle", b.Dir, id);
        return (id, log);
    }

    /// <summary>The fds of a container process once it has exec'd the user's program (create and exec
    /// return when init is ready, a moment before its execve closes the rest).</summary>
    static string Comm(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").Trim(); }
        catch (IOException) { return ""; }
    }

    static SortedDictionary<string, string> FdsOf(int pid)
    {
        // Until the process has exec'd the container's program: while it is still `berth-runc init`
        // its comm is the runtime's. (Its exe link is no guide: once init joined the container's
        // mount namespace the binary's path may read differently from here.)
        var deadline = Environment.TickCount64 + 10_000;
        while (Comm(pid).StartsWith("berth", StringComparison.Ordinal) && Environment.TickCount64 < deadline) Thread.Sleep(5);
        var d = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFileSystemEntries($"/proc/{pid}/fd"))
            d[Path.GetFileName(f)] = File.ResolveLinkTarget(f, false)?.ToString() ?? "";
        return d;
    }

    // ------------------------------------------------------------------ 3. symlinked mount destinations (CVE-2021-30465)

    /// <summary>Mount destinations that go through symlinks pointing out of the rootfs (absolute and
    /// `../`-relative). Resolved naively on the host, /evil/x would be the host's marker/x (a tmpfs
    /// and a directory created on the host). Resolved in the root, both land inside the rootfs.</summary>
    [Fact]
    public void Escape_symlinked_mount_destinations_stay_inside_the_rootfs() => SymlinkedDestinations(dangling: false);

    /// <summary>Same, but the links dangle inside the rootfs (the directory they name does not exist
    /// there yet), as /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf does in systemd
    /// images. runc (securejoin MkdirAll) creates the missing directories inside the root.</summary>
    [Fact]
    public void Escape_dangling_symlinked_mount_destinations_are_created_inside_the_rootfs() => SymlinkedDestinations(dangling: true);

    void SymlinkedDestinations(bool dangling) => Sandbox.Run(s =>
    {
        var marker = s.HostDir("marker");
        var src = s.HostDir("bind-src");
        File.WriteAllText(Path.Combine(src, "from-src"), "x");
        var id = s.NewId("symdst");
        var b = s.NewBundle(id, "grep -E ' (/evil|/evil2|" + marker + ")' /proc/self/mountinfo; cat /evil2/y/from-src && echo bind-visible", c =>
        {
            c.AddMount("/evil/x", "tmpfs", "tmpfs", "size=1m");
            c.AddMount("/evil2/y", "bind", src, "rbind", "ro");
        });
        File.CreateSymbolicLink(Path.Combine(b.Rootfs, "evil"), marker);
        File.CreateSymbolicLink(Path.Combine(b.Rootfs, "evil2"), "../../../../../../../../.." + marker);
        // The image also has the directory the links name (inside the rootfs): a naive runtime follows
        // the links on the host instead, where the marker directory exists too.
        if (!dangling) Directory.CreateDirectory(b.Rootfs + marker);
        var hostMountsBefore = File.ReadAllLines("/proc/self/mountinfo").Count(l => l.Contains(marker));

        var r = s.Runc("run", "--bundle", b.Dir, id);
        output.WriteLine(r.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Empty(Directory.GetFileSystemEntries(marker));
        Assert.Equal(hostMountsBefore, File.ReadAllLines("/proc/self/mountinfo").Count(l => l.Contains(marker)));
        // Inside the container both mounts sit at <marker>/x and /y of the container's own tree...
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.Split(' ')[4] == marker + "/x" && l.Contains(" - tmpfs "));
        Assert.Contains(lines, l => l.Split(' ')[4] == marker + "/y");
        Assert.Contains("bind-visible", r.Stdout);
        // ...which on the host is a path under the rootfs.
        Assert.True(Directory.Exists(b.Rootfs + marker + "/x"));
        Assert.True(Directory.Exists(b.Rootfs + marker + "/y"));
    });

    /// <summary>Symlink-swap race: container A flips /vol/d between a directory and a symlink to /
    /// while containers B are created with a mount destination /shared/d/NAME, /shared being the same
    /// host directory. A runtime that checks the path and then mounts by string (runc before 1.0.0-rc95)
    /// can be made to follow the symlink on the host: NAME would appear in the host's /. Resolved
    /// against the rootfs fd, the symlink means B's own root.</summary>
    [Fact]
    public void Escape_symlink_swap_race_on_a_shared_volume_stays_inside_the_rootfs() => Sandbox.Run(s =>
    {
        var vol = s.HostDir("volume");
        var name = "bt-escape-" + Guid.NewGuid().ToString("N")[..10];
        var hostRootBefore = Directory.GetFileSystemEntries("/").Order().ToArray();
        var a = s.NewId("swapper");
        var ba = s.NewBundle(a, "while :; do rm -rf /vol/d; mkdir /vol/d; rm -rf /vol/d; ln -s / /vol/d; done",
            c => c.AddMount("/vol", "bind", vol, "rbind", "rw"));
        s.Ok("run", "--detach", "--bundle", ba.Dir, a);
        int ok = 0, failed = 0, viaSymlink = 0;
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var id = s.NewId("victim");
                var b = s.NewBundle(id, "true", c =>
                {
                    c.AddMount("/shared", "bind", vol, "rbind", "rw");
                    c.AddMount($"/shared/d/{name}", "tmpfs", "tmpfs", "size=1m");
                });
                var r = s.Runc("create", "--bundle", b.Dir, id);
                if (r.ExitCode == 0) ok++; else { failed++; Sandbox.AssertOneLineError(r); }
                if (Directory.Exists(Path.Combine(b.Rootfs, name))) viaSymlink++;
                s.Runc("delete", "--force", id);
            }
            output.WriteLine($"created {ok}, failed {failed}, mount resolved through the symlink into the rootfs {viaSymlink} times");
        }
        finally
        {
            // Should never exist; if it does, the test fails below, but the host is put back.
            if (Directory.Exists("/" + name)) Directory.Delete("/" + name);
        }
        Assert.False(File.ReadAllText("/proc/self/mountinfo").Contains(name), "a mount named " + name + " reached the host");
        Assert.DoesNotContain("/" + name, Directory.GetFileSystemEntries("/"));
        var newAtRoot = Directory.GetFileSystemEntries("/").Except(hostRootBefore).ToList();
        Assert.DoesNotContain(newAtRoot, e => e.Contains("bt-"));
        Assert.True(ok > 0, "no victim container was created");
    });

    // ------------------------------------------------------------------ 4. masked and read-only paths

    /// <summary>The defaults of `berth-runc spec`: masked paths read empty (or list nothing), read-only
    /// paths refuse writes with EROFS. The writes are harmless even if they went through: sysrq `h`
    /// only prints help to the kernel log, and kernel/hostname is the container's own uts namespace.
    /// Without the masks /proc/timer_list and /proc/keys (the container has its own session keyring)
    /// read non-empty and /sys/firmware lists entries; without the read-only binds the writes succeed.</summary>
    [Fact]
    public void Escape_default_masked_and_readonly_paths_hold() => Sandbox.Run(s =>
    {
        var id = s.NewId("masked");
        var b = s.NewBundle(id, """
            for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
              if [ -e $p ]; then echo "size $p $(cat $p 2>/dev/null | wc -c)"; else echo "absent $p"; fi
            done
            echo "entries /sys/firmware $(ls -A /sys/firmware | wc -l)"
            { echo h > /proc/sysrq-trigger; } 2>&1 && echo "WROTE /proc/sysrq-trigger"
            { echo evil > /proc/sys/kernel/hostname; } 2>&1 && echo "WROTE /proc/sys/kernel/hostname"
            echo "hostname $(hostname)"
            for p in /proc/sys /proc/sysrq-trigger /proc/bus /proc/irq /proc/fs; do
              grep " $p " /proc/self/mountinfo | head -1 | sed "s|^|mount |"
            done
            """);
        var r = s.Runc("run", "--bundle", b.Dir, id);
        output.WriteLine(r.Stdout);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        foreach (var p in new[] { "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug" })
        {
            if (!File.Exists(p))
            {
                output.WriteLine($"{p}: not present on this kernel, nothing to mask (skipped)");
                Assert.Contains($"absent {p}", lines);
                continue;
            }
            Assert.Contains($"size {p} 0", lines);
        }
        Assert.True(Directory.GetFileSystemEntries("/sys/firmware").Length > 0, "host /sys/firmware is empty: the mask cannot be told apart");
        Assert.Contains("entries /sys/firmware 0", lines);

        Assert.DoesNotContain(lines, l => l.StartsWith("WROTE"));
        if (File.Exists("/proc/sysrq-trigger"))
            Assert.Contains(lines, l => l.Contains("/proc/sysrq-trigger") && l.Contains("Read-only file system"));
        else output.WriteLine("/proc/sysrq-trigger: not present on this kernel (write attempt skipped)");
        Assert.Contains(lines, l => l.Contains("/proc/sys/kernel/hostname") && l.Contains("Read-only file system"));
        Assert.Contains("hostname berth", lines);
        foreach (var p in new[] { "/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/irq", "/proc/fs" })
        {
            if (!Path.Exists(p)) { output.WriteLine($"{p}: not present on this kernel (skipped)"); continue; }
            var m = lines.FirstOrDefault(l => l.StartsWith("mount ") && l.Split(' ')[5] == p);
            Assert.True(m is not null, $"{p} is not a mount of its own in the container");
            Assert.Contains("ro", m!.Split(' ')[6].Split(','));
        }
    });

    // ------------------------------------------------------------------ 5. devices

    /// <summary>Only the default devices exist in /dev; with CAP_MKNOD (Docker grants it) the container
    /// can create nodes, but the device cgroup (deny all, allow the defaults) refuses opening them:
    /// the host's disk (a block device any root may read), /dev/mem (also guarded by CAP_SYS_RAWIO)
    /// and /dev/net/tun (opening it needs no capability). Without the device cgroup the disk read
    /// returns a byte and tun opens (read then fails with EBADFD, not EPERM).</summary>
    [Fact]
    public void Escape_device_cgroup_refuses_devices_outside_the_allow_list() => Sandbox.Run(s =>
    {
        var disk = Directory.GetDirectories("/sys/block").Select(Path.GetFileName)
            .FirstOrDefault(n => !n!.StartsWith("loop") && !n.StartsWith("zram") && !n.StartsWith("ram")) ?? "sda";
        var devFile = $"/sys/block/{disk}/dev";
        var mm = File.Exists(devFile) ? File.ReadAllText(devFile).Trim().Split(':') : ["8", "0"];
        output.WriteLine($"host disk {disk} = {mm[0]}:{mm[1]}");
        var id = s.NewId("dev");
        var b = s.NewBundle(id, $$"""
            ls -l /dev | grep '^[cb]' | sed 's/.* //' | sort | tr '\n' ' ' | sed 's/^/nodes /'; echo
            for d in "disk b {{mm[0]}} {{mm[1]}}" "mem c 1 1" "tun c 10 200"; do
              set -- $d
              { mknod /dev/$1 $2 $3 $4; } 2>&1 | sed "s/^/mknod-$1 /"
              if { head -c1 /dev/$1 >/dev/null; } 2>/tmp/err; then echo "READ-OK $1"; else echo "read-failed $1 $(cat /tmp/err)"; fi
            done
            """, c =>
        {
            c.SetCaps("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_MKNOD");
            c.AddMount("/tmp", "tmpfs", "tmpfs", "size=1m");
        });
        var r = s.Runc("run", "--bundle", b.Dir, id);
        output.WriteLine(r.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("nodes full null random tty urandom zero", lines.First(l => l.StartsWith("nodes")).Trim());
        foreach (var d in new[] { "disk", "mem", "tun" })
        {
            Assert.DoesNotContain($"READ-OK {d}", lines);
            var line = lines.First(l => l.StartsWith($"read-failed {d} "));
            Assert.Contains("Operation not permitted", line);
        }
    });

    // ------------------------------------------------------------------ 6. no_new_privs

    /// <summary>A setuid-root binary in the rootfs, run by uid 1000 with no capabilities. With
    /// noNewPrivileges the kernel ignores the setuid bit (prints 1000); the contrast run without it
    /// prints 0, which proves the binary really is setuid on this filesystem. (busybox drops setuid
    /// privileges itself, so a 4-line C program is compiled for the test.)</summary>
    [Fact]
    public void Escape_no_new_privileges_ignores_setuid_binaries() => Sandbox.Run(s =>
    {
        var src = Path.Combine(s.Dir, "euid.c");
        File.WriteAllText(src, "#include <stdio.h>\n#include <unistd.h>\nint main(void){printf(\"euid=%d\\n\",(int)geteuid());return 0;}\n");
        var exe = Path.Combine(s.Dir, "euid");
        using (var cc = System.Diagnostics.Process.Start("gcc", ["-static", "-O", "-o", exe, src]))
        {
            cc.WaitForExit();
            Assert.True(cc.ExitCode == 0, "gcc -static failed (needed to build a setuid test binary)");
        }
        string RunAs(bool nnp)
        {
            var id = s.NewId(nnp ? "nnp" : "nonnp");
            var b = s.NewBundle(id, null, c =>
            {
                c.SetArgs("/bin/euid");
                c.Proc()["user"] = new JsonObject { ["uid"] = 1000, ["gid"] = 1000 };
                c.Proc()["noNewPrivileges"] = nnp;
                c.SetCaps();
            });
            var target = Path.Combine(b.Rootfs, "bin/euid");
            File.Copy(exe, target);
            File.SetUnixFileMode(target, (UnixFileMode)0x9ed); // 04755, owned by root
            var r = s.Runc("run", "--bundle", b.Dir, id);
            Assert.True(r.ExitCode == 0, r.ToString());
            return r.Stdout.Trim();
        }
        Assert.Equal("euid=1000", RunAs(nnp: true));
        Assert.Equal("euid=0", RunAs(nnp: false));
    });

    // ------------------------------------------------------------------ interop

    const int O_WRONLY = 1, EROFS = 30, ETXTBSY = 26;

    static int TryOpenForWrite(string path)
    {
        var fd = open(path, O_WRONLY | 0x80000 /* O_CLOEXEC */, 0);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        close(fd);
        return 0;
    }

    static string Describe(int errno) => errno switch { 0 => "opened (writable!)", EROFS => "EROFS", ETXTBSY => "ETXTBSY", _ => "errno " + errno };

    internal static unsafe bool IsReadOnlyMount(int fd)
    {
        var buf = stackalloc ulong[16];
        Assert.Equal(0, fstatvfs(fd, buf));
        return (buf[9] & 1) != 0; // f_flag & ST_RDONLY
    }

    internal static unsafe bool IsReadOnlyMount(string path)
    {
        var buf = stackalloc ulong[16];
        Assert.Equal(0, statvfs(path, buf));
        return (buf[9] & 1) != 0;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int fstatvfs(int fd, ulong* buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statvfs(string path, ulong* buf);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr realpath(string path, IntPtr resolved);

    [LibraryImport("libc")]
    private static partial void free(IntPtr p);
}
