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
    static string RealBinary()
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
        var afterExec = TryOpenForWrite($"/proc/self/fd/{fd}");
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

    static unsafe bool IsReadOnlyMount(int fd)
    {
        var buf = stackalloc ulong[16];
        Assert.Equal(0, fstatvfs(fd, buf));
        return (buf[9] & 1) != 0; // f_flag & ST_RDONLY
    }

    static unsafe bool IsReadOnlyMount(string path)
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
