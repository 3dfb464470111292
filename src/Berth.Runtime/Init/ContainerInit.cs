using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime.Init;

/// <summary>`berth-runc init`: the container's first process (or an exec'd process before it
/// becomes the user's). It receives an <see cref="InitPlan"/> on the sync socket, sets up the
/// container and execve()s the user's program. NativeAOT: nothing is loaded lazily after pivot_root.
/// Everything runs on the main thread, whose credentials and capabilities execve keeps.</summary>
public static unsafe partial class ContainerInit
{
    public const string SyncFdEnv = "_BERTH_SYNC_FD";

    public static int Main()
    {
        // Not dumpable: processes in the container cannot ptrace init or open its /proc/PID/{exe,mem,
        // fd/*} (CVE-2019-5736 class) while it still runs the runtime's code. execve resets it.
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        Timing.Mark("init: main");
        var fdText = Environment.GetEnvironmentVariable(SyncFdEnv);
        if (fdText is null || !int.TryParse(fdText, out var fdNum))
        {
            Console.Error.WriteLine("berth-runc init: must be started by berth-runc");
            return 1;
        }
        using var ch = new SyncChannel(new Fd(fdNum));
        try
        {
            Sys.SetCloexec(fdNum, true);
            var msg = ch.Receive() ?? throw new InvalidOperationException("no plan received");
            var plan = SyncMessages.ParsePlan(msg);
            if (plan.SpecOrNull is null)
            {
                var config = ch.Receive() ?? throw new InvalidOperationException("no config received");
                plan.Spec = SpecJson.ParseSpecWithoutSeccomp(Encoding.UTF8.GetBytes(config[SyncMessages.ConfigPrefix.Length..]));
                plan.ProcessOrNull ??= plan.Spec.Process!;
            }
            if (plan.SeccompListenerState is not null)
            {
                var m = ch.Receive(out var sock);
                if (m != SyncMessages.SeccompListener || sock is null) { sock?.Dispose(); throw new InvalidOperationException("no seccomp listener socket received"); }
                _listenerSocket = sock;
            }
            Timing.Mark("init: plan parsed");
            if (plan.ExecInitPid > 0) Exec(plan, ch);
            else Create(plan, ch);
            return 0; // not reached: Finish execs
        }
        catch (Exception e)
        {
            var text = e is RuntimeException or SyscallException or ArgumentException or InvalidOperationException or IOException
                ? e.Message : $"{e.GetType().Name}: {e.Message}";
            try { ch.Send(SyncMessages.ErrorPrefix + text); }
            catch (SyscallException) { Console.Error.WriteLine("berth-runc init: " + text); }
            return 1;
        }
    }

    static void Create(InitPlan plan, SyncChannel ch)
    {
        var spec = plan.Spec;
        var linux = spec.Linux!;

        // Into the container's cgroups (all but memory) before doing any work.
        foreach (var f in plan.EarlyCgroupTasks) Sys.WriteFile(f, "0");
        // Descriptors that must be opened while the host filesystem is still visible.
        using var fifo = plan.Fifo is null ? null : Sys.Open(plan.Fifo, O_PATH);
        var late = plan.LateCgroupProcs.Select(p => Sys.Open(p, O_WRONLY)).ToList();

        RootfsSetup.PrepareRoot(plan);
        using (var root = Sys.Open(plan.Rootfs, O_PATH | O_DIRECTORY))
        {
            var setup = new RootfsSetup(plan, root);
            setup.MountAll();
            setup.CreateDevices();
            // Like runc, a missing working directory is created inside the rootfs.
            if (plan.Process.Cwd is { Length: > 1 } cwd) RootfsPath.OpenOrCreate(root, cwd, file: false).Dispose();
        }
        // A session keyring of the container's own, so keys never leak between containers.
        if (!plan.NoNewKeyring) JoinSessionKeyring(plan.Id);

        // prestart + createRuntime hooks run in the runtime's namespaces, by the parent.
        Timing.Mark("init: rootfs mounted");
        if (spec.Hooks?.Prestart is { Count: > 0 } || spec.Hooks?.CreateRuntime is { Count: > 0 })
        {
            ch.Send(SyncMessages.Hooks);
            var reply = ch.Receive();
            if (reply != SyncMessages.HooksDone) throw new InvalidOperationException(reply?.StartsWith(SyncMessages.ErrorPrefix) == true ? reply[6..] : "runtime went away");
        }
        Timing.Mark("init: hooks done");
        // createContainer hooks: in the container's namespaces, before pivot_root.
        HookRunner.RunAll("createContainer", spec.Hooks?.CreateContainer, StateFor(plan, "created"), failFast: true);

        Pty? pty = null;
        if (plan.Process.Terminal) pty = Pty.Open(Path.Combine(plan.Rootfs, "dev/pts/ptmx"), plan.Rootfs, plan.Process.ConsoleSize);
        if (pty is not null) BindConsole(plan, pty);

        PivotRoot(plan);
        // Sysctls before readonlyPaths (as runc does): /proc/sys is usually one of them.
        foreach (var (k, v) in linux.Sysctl ?? [])
            Sys.WriteFile("/proc/sys/" + k.Replace('.', '/'), v);
        ApplyMaskedAndReadonly(linux);
        if (spec.Hostname is { Length: > 0 } hn) SetName(hn, domain: false);
        if (spec.Domainname is { Length: > 0 } dn) SetName(dn, domain: true);
        if (linux.Namespaces?.Any(n => n.Type == "network" && string.IsNullOrEmpty(n.Path)) == true) LoopbackUp();
        if (spec.Root!.Readonly)
            Sys.Mount(null, "/", null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, null, "/ (read-only root)");

        PrepareProcess(plan.Process, ch, pty, out var exe);
        // Join the memory cgroup now, at the end of create: the container's cgroups are complete
        // while it waits for start (what `ps`, `events` and callers reading /proc/PID/cgroup expect),
        // and init's own set-up pages were already charged to the runtime's cgroup.
        JoinLateCgroups(plan, late);
        // SCMP_ACT_NOTIFY: the listener gets its fd at create, as with runc, so a seccomp agent is
        // ready before the container runs. Without no_new_privs the filter may go on this early
        // (init still holds CAP_SYS_ADMIN); with it, it waits until right before execve (runc alike).
        if (plan.Seccomp is not null && _listenerSocket is not null && !plan.Process.NoNewPrivileges) LoadSeccomp(plan);
        Timing.Mark("init: ready");
        ch.Send(SyncMessages.Ready);
        // `run`: wait for "start" on the socket; the runtime gone (EOF) means no start: exit.
        if (plan.StartOnSocket && ch.Receive() != SyncMessages.Start) Environment.Exit(1);
        ch.Dispose();

        // Wait for `start`: opening the fifo for writing blocks until start opens it for reading.
        if (fifo is not null)
        {
            var w = open($"/proc/self/fd/{fifo.Value}", O_WRONLY | O_CLOEXEC, 0);
            if (w < 0) throw SyscallException.Last("open", "exec fifo");
            byte zero = (byte)'0';
            write(w, &zero, 1);
            close(w);
        }
        Timing.Mark("init: started");
        HookRunner.RunAll("startContainer", spec.Hooks?.StartContainer, StateFor(plan, "running"), failFast: true);
        Finish(plan, late, exe);
    }

    static void Exec(InitPlan plan, SyncChannel ch)
    {
        var late = plan.LateCgroupProcs.Select(p => Sys.Open(p, O_WRONLY)).ToList();
        using (var mnt = Sys.Open(plan.ExecMntNs ?? $"/proc/{plan.ExecInitPid}/ns/mnt", O_RDONLY))
        {
            Sys.Unshare(CLONE_FS);
            Sys.SetNs(mnt, CLONE_NEWNS, "mount namespace of the container");
        }
        if (plan.HostMountNs && chroot(plan.Rootfs) != 0) throw SyscallException.Last("chroot", plan.Rootfs);
        Pty? pty = plan.Process.Terminal ? Pty.Open("/dev/ptmx", null, plan.Process.ConsoleSize) : null;
        PrepareProcess(plan.Process, ch, pty, out var exe);
        ch.Send(SyncMessages.Ready);
        ch.Dispose();
        Finish(plan, late, exe);
    }

    /// <summary>Work that can still fail visibly to the caller of create/exec: the terminal, rlimits,
    /// oom score, the working directory and finding the executable.</summary>
    static void PrepareProcess(Process p, SyncChannel ch, Pty? pty, out string exe)
    {
        if (pty is not null)
        {
            if (setsid() < 0) throw SyscallException.Last("setsid");
            if (ioctl(pty.Slave.Value, TIOCSCTTY, null) != 0) throw SyscallException.Last("ioctl(TIOCSCTTY)");
            for (var i = 0; i < 3; i++)
                if (dup3(pty.Slave.Value, i, 0) < 0) throw SyscallException.Last("dup3", "pty");
            ch.Send(SyncMessages.Pty, pty.Master.Value);
            pty.Dispose();
        }
        foreach (var r in p.Rlimits ?? [])
            Rlimits.Set(Rlimits.Parse(r.Type), r.Soft, r.Hard, r.Type);
        if (p.OomScoreAdj is { } adj) Sys.WriteFile("/proc/self/oom_score_adj", adj.ToString());
        var cwd = string.IsNullOrEmpty(p.Cwd) ? "/" : p.Cwd;
        if (chdir(cwd) != 0)
        {
            var e = Marshal.GetLastPInvokeError();
            throw new RuntimeException(ErrorKind.InvalidArgument, $"cannot change to working directory {cwd}: {Errno.Describe(e)}");
        }
        // A cwd reached through a descriptor that names a host directory (e.g. /proc/self/fd/N,
        // CVE-2024-21626) is outside the container's root: the kernel reports it as "(unreachable)",
        // which glibc's getcwd turns into ENOENT (and .NET into FileNotFoundException).
        string here;
        try { here = Directory.GetCurrentDirectory(); }
        catch (IOException) { here = "(unreachable)"; }
        if (!here.StartsWith('/') || here.StartsWith("(unreachable)", StringComparison.Ordinal))
            throw new RuntimeException(ErrorKind.InvalidArgument, $"working directory {cwd} is outside the container's root");
        exe = LookPath(p.Args![0], p.Env);
    }

    /// <summary>Credentials, capabilities, no_new_privs, the memory cgroup, then execve.</summary>
    static void Finish(InitPlan plan, List<Fd> late, string exe)
    {
        var p = plan.Process;
        var caps = p.Capabilities;
        ulong bounding = Caps.Parse(caps?.Bounding, "bounding"), effective = Caps.Parse(caps?.Effective, "effective"),
            permitted = Caps.Parse(caps?.Permitted, "permitted"), inheritable = Caps.Parse(caps?.Inheritable, "inheritable"),
            ambient = Caps.Parse(caps?.Ambient, "ambient");
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while init still has it
        // (runc does the same); with no_new_privs, as late as possible, right before execve.
        if (plan.Seccomp is not null && !p.NoNewPrivileges && !_seccompLoaded) LoadSeccomp(plan);
        if (caps is not null) Caps.DropBounding(bounding);
        Sys.Prctl(PR_SET_KEEPCAPS, 1);
        SetIds(p.User);
        if (caps is not null)
        {
            Caps.Set(effective, permitted, inheritable);
            // The kernel only allows ambient capabilities that are permitted and inheritable;
            // like runc, the others are left out rather than failing the container.
            Caps.RaiseAmbient(ambient & permitted & inheritable);
        }
        if (p.NoNewPrivileges) Sys.Prctl(PR_SET_NO_NEW_PRIVS, 1);
        umask(p.User.Umask ?? 0x12);
        // Join the memory cgroup last: init's own pages stay charged to the runtime's cgroup.
        JoinLateCgroups(plan, late);
        Timing.Mark("init: cgroups joined");
        // Nothing but stdio and the preserved fds may cross into the container (CVE-2024-21626).
        syscall(SYS_close_range, 3 + plan.PreserveFds, uint.MaxValue, 4 /* CLOSE_RANGE_CLOEXEC */, 0, 0, 0);

        if (plan.Seccomp is not null && p.NoNewPrivileges) LoadSeccomp(plan);
        Timing.Mark("init: execve");
        ResetSignals();
        using var strings = new NativeStrings();
        var path = strings.Add(exe);
        var argv = strings.AddArray(p.Args!);
        var envp = strings.AddArray(p.Env ?? []);
        execve(path, argv, envp);
        var err = Marshal.GetLastPInvokeError();
        var msg = Encoding.UTF8.GetBytes($"berth-runc: exec {p.Args![0]}: {Errno.Describe(err)}\n");
        fixed (byte* m = msg) write(2, m, msg.Length);
        Environment.Exit(err == Errno.ENOENT ? 127 : 126);
    }

    /// <summary>"0" = the calling thread: for v1 `tasks` that is the thread that execs (and so becomes
    /// the whole process), with no threadgroup lock; for v2 `cgroup.procs` it is this process.</summary>
    static void JoinLateCgroups(InitPlan plan, List<Fd> late)
    {
        for (var i = 0; i < late.Count; i++)
        {
            var zero = (byte)'0';
            if (write(late[i].Value, &zero, 1) < 0) throw SyscallException.Last("join cgroup", plan.LateCgroupProcs[i]);
            late[i].Dispose();
        }
        late.Clear();
    }

    /// <summary>execve keeps ignored signals ignored and the blocked mask: the .NET runtime ignores
    /// SIGPIPE, which must not leak into the container's process. Everything back to default.</summary>
    static void ResetSignals()
    {
        for (var sig = 1; sig <= 64; sig++)
            if (sig is not (9 or 19 or 32 or 33)) signal(sig, 0 /* SIG_DFL */);
        ulong empty = 0;
        sigprocmask(2 /* SIG_SETMASK */, &empty, null);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint signal(int sig, nint handler);

    /// <summary>Connected to linux.seccomp.listenerPath by the runtime (SCMP_ACT_NOTIFY), else null.</summary>
    static Fd? _listenerSocket;

    static bool _seccompLoaded;

    static void LoadSeccomp(InitPlan plan)
    {
        _seccompLoaded = true;
        var raw = plan.Seccomp!;
        var ins = new Berth.Linux.Seccomp.SockFilter[raw.Length / 8];
        for (var i = 0; i < ins.Length; i++)
            ins[i] = new Berth.Linux.Seccomp.SockFilter(
                System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(i * 8)), raw[i * 8 + 2], raw[i * 8 + 3],
                System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * 8 + 4)));
        Timing.Mark("init: seccomp decode");
        using var listener = Berth.Linux.Seccomp.SeccompLoader.Load(new Berth.Linux.Seccomp.SeccompProgram(ins, plan.SeccompFlags, _listenerSocket is not null, []));
        if (listener is not null && _listenerSocket is not null)
        {
            // The runtime connected this socket to linux.seccomp.listenerPath; the fd goes with the state.
            using var sock = new SyncChannel(_listenerSocket);
            _listenerSocket = null;
            sock.Send(plan.SeccompListenerState!, listener.Value);
        }
        Timing.Mark("init: seccomp loaded");
    }

    static void SetIds(User u)
    {
        var gids = u.AdditionalGids ?? [];
        var arr = stackalloc uint[Math.Max(1, gids.Count)];
        for (var i = 0; i < gids.Count; i++) arr[i] = gids[i];
        // A rootless runtime that wrote gid_map itself had to deny setgroups in the namespace (the
        // kernel's rule): no supplementary groups then, and asking for some is an error (runc alike).
        var denied = File.Exists("/proc/self/setgroups") && File.ReadAllText("/proc/self/setgroups").Trim() == "deny";
        if (denied && gids.Count > 0)
            throw new SyscallException("setgroups", "process.user.additionalGids (setgroups is denied in this rootless user namespace; map gids with newgidmap)", Errno.EPERM);
        // Raw syscalls: they change only this thread, the one that will execve.
        if (!denied && syscall(SYS_setgroups, gids.Count, (long)arr, 0, 0, 0, 0) != 0) throw SyscallException.Last("setgroups");
        if (syscall(SYS_setresgid, u.Gid, u.Gid, u.Gid, 0, 0, 0) != 0) throw SyscallException.Last("setresgid", u.Gid.ToString());
        if (syscall(SYS_setresuid, u.Uid, u.Uid, u.Uid, 0, 0, 0) != 0) throw SyscallException.Last("setresuid", u.Uid.ToString());
    }

    static string LookPath(string file, List<string>? env)
    {
        if (file.Contains('/'))
        {
            CheckExecutable(file, file);
            return file;
        }
        var pathVar = env?.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..]
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var dir in pathVar.Split(':'))
        {
            var candidate = Path.Combine(dir.Length == 0 ? "." : dir, file);
            if (access(candidate, 1 /* X_OK */) == 0 && !Directory.Exists(candidate)) return candidate;
        }
        throw new RuntimeException(ErrorKind.NotFound, $"exec: \"{file}\": executable file not found in $PATH");
    }

    static void CheckExecutable(string path, string name)
    {
        if (Directory.Exists(path)) throw new RuntimeException(ErrorKind.InvalidArgument, $"exec: \"{name}\": is a directory");
        if (access(path, 1) != 0)
        {
            var e = Marshal.GetLastPInvokeError();
            throw new RuntimeException(e == Errno.ENOENT ? ErrorKind.NotFound : ErrorKind.InvalidArgument, $"exec: \"{name}\": {Errno.Describe(e)}");
        }
    }

    static void PivotRoot(InitPlan plan)
    {
        if (plan.HostMountNs)
        {
            if (chroot(plan.Rootfs) != 0) throw SyscallException.Last("chroot", plan.Rootfs);
            if (chdir("/") != 0) throw SyscallException.Last("chdir", "/");
            return;
        }
        if (plan.NoPivot)
        {
            if (chdir(plan.Rootfs) != 0) throw SyscallException.Last("chdir", plan.Rootfs);
            Sys.Mount(plan.Rootfs, "/", null, MS_MOVE, null, "rootfs (move to /)");
            if (chroot(".") != 0) throw SyscallException.Last("chroot", plan.Rootfs);
            if (chdir("/") != 0) throw SyscallException.Last("chdir", "/");
            return;
        }
        using var oldRoot = Sys.Open("/", O_DIRECTORY | O_RDONLY);
        using var newRoot = Sys.Open(plan.Rootfs, O_DIRECTORY | O_RDONLY);
        if (fchdir(newRoot.Value) != 0) throw SyscallException.Last("fchdir", plan.Rootfs);
        // pivot_root(".", "."): the old root ends up stacked under the new one; detach it.
        if (syscall(SYS_pivot_root, (long)Dot(), (long)Dot(), 0, 0, 0, 0) != 0) throw SyscallException.Last("pivot_root", plan.Rootfs);
        Sys.Mount(null, ".", null, MS_SLAVE | MS_REC, null, "old root (make slave)");
        if (umount2(".", MNT_DETACH) != 0) throw SyscallException.Last("umount", "old root");
        if (chdir("/") != 0) throw SyscallException.Last("chdir", "/");
    }

    /// <summary>The mount point that holds <paramref name="path"/>'s parent directory.</summary>
    internal static string? ParentMountPoint(string path) =>
        MountInfo.MountPointOf(Path.GetDirectoryName(path.TrimEnd('/')) ?? "/");

    static readonly byte* DotStr = (byte*)NativeMemory.AllocZeroed(2);
    static byte* Dot() { DotStr[0] = (byte)'.'; return DotStr; }

    static void ApplyMaskedAndReadonly(Berth.Oci.Runtime.Linux linux)
    {
        foreach (var p in linux.MaskedPaths ?? [])
        {
            if (Directory.Exists(p))
                Sys.Mount("tmpfs", p, "tmpfs", MS_RDONLY, null, $"masked path {p}");
            else if (File.Exists(p) || Path.Exists(p))
            {
                if (mount("/dev/null", p, null, MS_BIND, null) != 0)
                {
                    var e = Marshal.GetLastPInvokeError();
                    if (e != Errno.ENOENT) throw new SyscallException("mount", $"masked path {p}", e);
                }
            }
        }
        foreach (var p in linux.ReadonlyPaths ?? [])
        {
            if (!Path.Exists(p)) continue;
            Sys.Mount(p, p, null, MS_BIND | MS_REC, null, $"readonly path {p}");
            var locked = MS_NOSUID | MS_NODEV | MS_NOEXEC;
            if (mount(null, p, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | locked, null) != 0 &&
                mount(null, p, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, null) != 0)
                throw SyscallException.Last("mount", $"readonly path {p}");
        }
    }

    static void JoinSessionKeyring(string name)
    {
        var b = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = b)
        {
            // keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): ENOSYS (no keyrings) is fine, as in runc.
            if (syscall(250, 1, (long)p, 0, 0, 0, 0) < 0 && Marshal.GetLastPInvokeError() is var e && e != Errno.ENOSYS)
                throw new SyscallException("keyctl(JOIN_SESSION_KEYRING)", name, e);
        }
    }

    /// <summary>A new network namespace gets its loopback up, as runc and crun do (a server and a
    /// client in one container talk over 127.0.0.1 even with no other network): the engine then needs
    /// no step between create and start for a container without networks.</summary>
    static void LoopbackUp()
    {
        try
        {
            using var nl = Berth.Linux.Netlink.RtNetlink.Open();
            nl.SetUp("lo");
        }
        catch (SyscallException e)
        {
            throw new RuntimeException(ErrorKind.FailedPrecondition, $"loopback up in the container's network namespace: {e.Message}");
        }
    }

    static void SetName(string name, bool domain)
    {
        var b = Encoding.UTF8.GetBytes(name);
        fixed (byte* p = b)
        {
            var rc = domain ? setdomainname(p, b.Length) : sethostname(p, b.Length);
            if (rc != 0) throw SyscallException.Last(domain ? "setdomainname" : "sethostname", name);
        }
    }

    static void BindConsole(InitPlan plan, Pty pty)
    {
        using var root = Sys.Open(plan.Rootfs, O_PATH | O_DIRECTORY);
        using var console = RootfsPath.OpenOrCreate(root, "/dev/console", file: true);
        Sys.Mount(pty.SlavePath, RootfsPath.ProcFdPath(console), null, MS_BIND, null, "/dev/console");
    }

    internal static State StateFor(InitPlan plan, string status) => new()
    {
        Id = plan.Id, Pid = getpid(), Status = status, Bundle = plan.Bundle, Annotations = plan.Spec.Annotations,
    };

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access(string path, int mode);
}
