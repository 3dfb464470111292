using Berth.Linux;
using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime.Init;

/// <summary>The plan compiler for `berth-runc init`, the container's first process (and each exec'd
/// process before it becomes the user's). The runtime makes every decision here, from the spec and
/// the <see cref="InitPlan"/>, and sends the result as one list of operations on the sync socket;
/// native/initexec.c carries them out in order and execve()s the user's program, without ever
/// starting the .NET runtime in the container (docs/ARCHITECTURE.md, "Native code").</summary>
public static class ContainerInit
{
    /// <summary>Read by native/initexec.c: the sync socket's fd number.</summary>
    public const string InitEnv = "_BERTH_INIT";

    /// <summary>`berth-runc init` reached .NET: it was not started by berth-runc (native/initexec.c
    /// carries out every real init before the runtime starts).</summary>
    public static int Main()
    {
        Console.Error.WriteLine("berth-runc init: must be started by berth-runc");
        return 1;
    }

    /// <summary>`create`: the container's init, from a fresh mount namespace to execve.</summary>
    public static byte[] CompileCreate(InitPlan plan, int initPid)
    {
        var spec = plan.Spec;
        var linux = spec.Linux!;
        var w = new InitProgram();
        if (plan.SeccompListenerState is not null) w.Op(InitOp.RecvListener);
        // Descriptors that must be opened while the host filesystem is still visible.
        if (plan.Fifo is not null) w.Op(InitOp.OpenFifo, s: [plan.Fifo]);
        // Into the container's cgroups (all but memory; those fds are opened for the end of create).
        // With CgroupsLater the runtime is still making them while init mounts: init waits for
        // "cgroups-ready" right before it first needs them (a cgroup mount, else the devices).
        var joined = false;
        void JoinCgroups()
        {
            if (joined) return;
            joined = true;
            if (plan.CgroupsLater) w.Op(InitOp.Wait, s: [SyncMessages.CgroupsReady]);
            foreach (var f in plan.EarlyCgroupTasks) w.Op(InitOp.Write, s: [f, "0"]);
            foreach (var p in plan.LateCgroupProcs) w.Op(InitOp.OpenLate, s: [p]);
        }
        if (!plan.CgroupsLater) JoinCgroups();

        RootfsSetup.PrepareRoot(w, plan);
        w.Op(InitOp.OpenRoot, s: [plan.Rootfs]);
        var setup = new RootfsSetup(plan, w, JoinCgroups);
        setup.MountAll();
        JoinCgroups();
        setup.CreateDevices();
        // Like runc, a missing working directory is created inside the rootfs.
        if (plan.Process.Cwd is { Length: > 1 } cwd) w.Op(InitOp.MkPath, s: [cwd]);
        // A session keyring of the container's own, so keys never leak between containers.
        if (!plan.NoNewKeyring) w.Op(InitOp.Keyring, s: [plan.Id]);

        // prestart + createRuntime hooks run in the runtime's namespaces, by the parent.
        if (spec.Hooks?.Prestart is { Count: > 0 } || spec.Hooks?.CreateRuntime is { Count: > 0 }) w.Op(InitOp.HooksSync);
        // createContainer hooks: in the container's namespaces, before pivot_root.
        Hooks(w, "createContainer", spec.Hooks?.CreateContainer, plan, initPid, "created");

        if (plan.Process.Terminal)
        {
            var size = plan.Process.ConsoleSize;
            w.Op(InitOp.PtyOpen, InitProgram.BindConsole, size?.Height ?? 0, size?.Width ?? 0,
                s: [Path.Combine(plan.Rootfs, "dev/pts/ptmx"), plan.Rootfs]);
        }

        if (plan.HostMountNs) w.Op(InitOp.Chroot, InitProgram.ChdirRoot, s: [plan.Rootfs]);
        else if (plan.NoPivot) w.Op(InitOp.NoPivot, s: [plan.Rootfs]);
        else w.Op(InitOp.Pivot, s: [plan.Rootfs]);
        // Sysctls before readonlyPaths (as runc does): /proc/sys is usually one of them.
        foreach (var (k, v) in linux.Sysctl ?? [])
            w.Op(InitOp.Write, s: ["/proc/sys/" + k.Replace('.', '/'), v]);
        foreach (var p in linux.MaskedPaths ?? []) w.Op(InitOp.Mask, s: [p]);
        foreach (var p in linux.ReadonlyPaths ?? []) w.Op(InitOp.Readonly, s: [p]);
        if (spec.Hostname is { Length: > 0 } hn) w.Op(InitOp.SetHostname, s: [hn]);
        if (spec.Domainname is { Length: > 0 } dn) w.Op(InitOp.SetDomainname, s: [dn]);
        // A new network namespace gets its loopback up, as runc and crun do.
        if (linux.Namespaces?.Any(n => n.Type == "network" && string.IsNullOrEmpty(n.Path)) == true) w.Op(InitOp.Loopback);
        if (spec.Root!.Readonly)
            w.Op(InitOp.Mount, n0: MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, s: [null, "/", null, null, "/ (read-only root)"]);

        var denied = SetgroupsDenied(initPid);
        PrepareProcess(w, plan, denied);
        // Join the memory cgroup now, at the end of create: the container's cgroups are complete
        // while it waits for start, and init's own set-up pages were already charged to the runtime's.
        w.Op(InitOp.JoinLate);
        // SCMP_ACT_NOTIFY: the listener gets its fd at create, as with runc, so a seccomp agent is
        // ready before the container runs. Without no_new_privs the filter may go on this early
        // (init still holds CAP_SYS_ADMIN); with it, it waits until right before execve (runc alike).
        var seccompEarly = plan.Seccomp is not null && plan.SeccompListenerState is not null && !plan.Process.NoNewPrivileges;
        if (seccompEarly) Seccomp(w, plan);
        w.Op(InitOp.Ready, plan.StartOnSocket ? InitProgram.WaitStart : 0);
        // Wait for `start`: opening the fifo for writing blocks until start opens it for reading.
        if (plan.Fifo is not null) w.Op(InitOp.FifoWait);
        Hooks(w, "startContainer", spec.Hooks?.StartContainer, plan, initPid, "running");
        Finish(w, plan, seccompEarly, denied);
        return w.ToArray();
    }

    /// <summary>`exec`: a new process joining a running container's namespaces.</summary>
    public static byte[] CompileExec(InitPlan plan, int pid)
    {
        var w = new InitProgram();
        if (plan.SeccompListenerState is not null) w.Op(InitOp.RecvListener);
        foreach (var p in plan.LateCgroupProcs) w.Op(InitOp.OpenLate, s: [p]);
        w.Op(InitOp.SetNsMnt, s: [plan.ExecMntNs ?? $"/proc/{plan.ExecInitPid}/ns/mnt"]);
        if (plan.HostMountNs) w.Op(InitOp.Chroot, s: [plan.Rootfs]);
        if (plan.Process.Terminal)
        {
            var size = plan.Process.ConsoleSize;
            w.Op(InitOp.PtyOpen, 0, size?.Height ?? 0, size?.Width ?? 0, s: ["/dev/ptmx", "/"]);
        }
        var denied = SetgroupsDenied(pid);
        PrepareProcess(w, plan, denied);
        w.Op(InitOp.Ready);
        Finish(w, plan, seccompLoaded: false, denied);
        return w.ToArray();
    }

    /// <summary>Work that can still fail visibly to the caller of create/exec: the terminal, rlimits,
    /// oom score, the working directory and finding the executable.</summary>
    static void PrepareProcess(InitProgram w, InitPlan plan, bool setgroupsDenied)
    {
        var p = plan.Process;
        // Every process, with a terminal or not, leads a session of its own, as runc's (its nsexec
        // calls setsid for create and exec alike); a terminal then becomes its controlling tty.
        w.Op(InitOp.Setsid);
        if (p.Terminal) w.Op(InitOp.PtyCtty);
        foreach (var r in p.Rlimits ?? [])
            w.Op(InitOp.Rlimit, 0, (ulong)Rlimits.Parse(r.Type), r.Soft, r.Hard, s: [$"{r.Type} soft={r.Soft} hard={r.Hard}"]);
        if (p.OomScoreAdj is { } adj) w.Op(InitOp.Write, s: ["/proc/self/oom_score_adj", adj.ToString()]);
        w.Op(InitOp.Chdir, s: [string.IsNullOrEmpty(p.Cwd) ? "/" : p.Cwd]);
        LookPath(w, p.Args![0], p.Env);
        // A rootless runtime that wrote gid_map itself had to deny setgroups in the namespace (the
        // kernel's rule): no supplementary groups then, and asking for some is an error (runc alike).
        var gids = p.User.AdditionalGids ?? [];
        if (setgroupsDenied && gids.Count > 0)
            throw new RuntimeException(ErrorKind.FailedPrecondition, new SyscallException("setgroups",
                "process.user.additionalGids (setgroups is denied in this rootless user namespace; map gids with newgidmap)", Errno.EPERM).Message);
    }

    /// <summary>pid 0: init not spawned yet; it will be in this process's user namespace.</summary>
    static bool SetgroupsDenied(int pid) =>
        Sys.TryReadText(pid > 0 ? $"/proc/{pid}/setgroups" : "/proc/self/setgroups", out _) is { } text && text.Trim() == "deny";

    /// <summary>The candidates execve may use, in PATH order; initexec takes the first executable
    /// one that is not a directory (Go's exec.LookPath, as runc).</summary>
    static void LookPath(InitProgram w, string file, List<string>? env)
    {
        if (file.Contains('/')) { w.Op(InitOp.LookPath, InitProgram.HasSlash, s: [file]); return; }
        var pathVar = env?.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..]
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        var s = new List<string?> { file };
        foreach (var dir in pathVar.Split(':')) s.Add(Path.Combine(dir.Length == 0 ? "." : dir, file));
        w.Op(InitOp.LookPath, s: s);
    }

    /// <summary>Credentials, capabilities, no_new_privs, the memory cgroup, then execve.</summary>
    static void Finish(InitProgram w, InitPlan plan, bool seccompLoaded, bool setgroupsDenied)
    {
        var p = plan.Process;
        var caps = p.Capabilities;
        ulong bounding = Caps.Parse(caps?.Bounding, "bounding"), effective = Caps.Parse(caps?.Effective, "effective"),
            permitted = Caps.Parse(caps?.Permitted, "permitted"), inheritable = Caps.Parse(caps?.Inheritable, "inheritable"),
            ambient = Caps.Parse(caps?.Ambient, "ambient");
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while init still has it
        // (runc does the same); with no_new_privs, as late as possible, right before execve.
        if (plan.Seccomp is not null && !p.NoNewPrivileges && !seccompLoaded) Seccomp(w, plan);
        if (caps is not null)
            for (var i = 0; i <= Caps.LastCap; i++)
                if ((bounding & (1UL << i)) == 0) w.Op(InitOp.CapBsetDrop, 0, (ulong)i, s: [Caps.Names[i]]);
        w.Op(InitOp.Prctl, 0, PR_SET_KEEPCAPS, 1, s: [PR_SET_KEEPCAPS.ToString()]);
        var gids = p.User.AdditionalGids ?? [];
        w.Op(InitOp.SetIds, 0, p.User.Uid, p.User.Gid, setgroupsDenied ? 0UL : 1, s: gids.Select(g => (string?)g.ToString()).ToList());
        if (caps is not null)
        {
            w.Op(InitOp.Capset, 0, effective, permitted, inheritable);
            // The kernel only allows ambient capabilities that are permitted and inheritable;
            // like runc, the others are left out rather than failing the container.
            var amb = ambient & permitted & inheritable;
            for (var i = 0; i <= Caps.LastCap; i++)
                if ((amb & (1UL << i)) != 0) w.Op(InitOp.AmbientRaise, 0, (ulong)i, s: [Caps.Names[i]]);
        }
        if (p.NoNewPrivileges) w.Op(InitOp.Prctl, 0, PR_SET_NO_NEW_PRIVS, 1, s: [PR_SET_NO_NEW_PRIVS.ToString()]);
        w.Op(InitOp.Umask, 0, p.User.Umask ?? 0x12);
        // Join the memory cgroup last: init's own pages stay charged to the runtime's cgroup.
        w.Op(InitOp.JoinLate);
        // Nothing but stdio and the preserved fds may cross into the container (CVE-2024-21626).
        w.Op(InitOp.CloseRange, 0, 3 + (ulong)plan.PreserveFds);
        if (plan.Seccomp is not null && p.NoNewPrivileges) Seccomp(w, plan);
        var s = new List<string?>(p.Args!);
        s.AddRange(p.Env ?? []);
        w.Op(InitOp.Exec, 0, (ulong)p.Args!.Count, s: s);
    }

    static void Seccomp(InitProgram w, InitPlan plan)
    {
        var flags = plan.SeccompFlags;
        if (plan.SeccompListenerState is not null)
        {
            flags |= SeccompAbi.FlagNewListener;
            // TSYNC and NEW_LISTENER together are EINVAL unless a TSYNC failure is reported as ESRCH.
            if ((flags & SeccompAbi.FlagTsync) != 0) flags |= SeccompAbi.FlagTsyncEsrch;
        }
        w.Op(InitOp.Seccomp, 0, flags, (ulong)(plan.Seccomp!.Length / 8), raw0: plan.Seccomp, s: [null, plan.SeccompListenerState]);
    }

    static void Hooks(InitProgram w, string stage, List<Hook>? hooks, InitPlan plan, int pid, string status)
    {
        if (hooks is not { Count: > 0 }) return;
        var state = System.Text.Encoding.UTF8.GetString(SpecJson.Serialize(new State
        {
            Id = plan.Id, Pid = pid, Status = status, Bundle = plan.Bundle, Annotations = plan.Spec.Annotations,
        }));
        foreach (var h in hooks)
        {
            var args = h.Args is { Count: > 0 } ? h.Args : [h.Path];
            var s = new List<string?> { stage, h.Path, state };
            s.AddRange(args);
            s.AddRange(h.Env ?? []);
            w.Op(InitOp.Hook, 0, (ulong)args.Count, (ulong)(h.Timeout is > 0 ? h.Timeout.Value : 0), s: s);
        }
    }

    /// <summary>The mount point that holds <paramref name="path"/>'s parent directory.</summary>
    internal static string? ParentMountPoint(string path) =>
        MountInfo.MountPointOf(Path.GetDirectoryName(path.TrimEnd('/')) ?? "/");
}

/// <summary>The operations native/initexec.c carries out (keep the numbers in step with its enum).</summary>
public enum InitOp : uint
{
    Write = 1, OpenFifo, OpenLate, Mount, OpenRoot, MountInRoot, MkPath, Symlink, MkNod, BindDev, Ptmx, Keyring,
    HooksSync, Hook, PtyOpen, Pivot, NoPivot, Chroot, Mask, Readonly, SetHostname, SetDomainname, Loopback,
    PtyCtty, Rlimit, Chdir, LookPath, RecvListener, Seccomp, Ready, FifoWait, CapBsetDrop, Prctl, SetIds,
    Capset, AmbientRaise, Umask, JoinLate, CloseRange, SetNsMnt, Exec, Wait, Setsid,
}

/// <summary>Writes the plan in initexec's wire format: "BIP1" u32:count, then per op u32:code
/// u32:flags u64:n0..n3 u32:nstr and each string as u32:len bytes NUL (len 0xffffffff: null).</summary>
public sealed class InitProgram
{
    public const uint BindConsole = 1, WaitStart = 1, HasSlash = 1, ChdirRoot = 1, Locked = 1, IgnoreExisting = 1, IgnoreAll = 2;
    public const ulong CreateDir = 0, CreateFile = 1, CreateLikeSource = 2;

    readonly System.Buffers.ArrayBufferWriter<byte> _buf = new(4096);
    int _count;

    public InitProgram() => Raw("BIP1\0\0\0\0"u8);

    public int Count => _count;

    public void Op(InitOp code, uint flags = 0, ulong n0 = 0, ulong n1 = 0, ulong n2 = 0, ulong n3 = 0,
        IReadOnlyList<string?>? s = null, byte[]? raw0 = null)
    {
        _count++;
        U32((uint)code);
        U32(flags);
        U64(n0); U64(n1); U64(n2); U64(n3);
        U32((uint)(s?.Count ?? 0));
        for (var i = 0; i < (s?.Count ?? 0); i++)
        {
            if (i == 0 && raw0 is not null) { Bytes(raw0); continue; }
            if (s![i] is not { } text) { U32(0xffffffff); continue; }
            var n = System.Text.Encoding.UTF8.GetByteCount(text);
            U32((uint)n);
            var span = _buf.GetSpan(n + 1);
            System.Text.Encoding.UTF8.GetBytes(text, span);
            span[n] = 0;
            _buf.Advance(n + 1);
        }
    }

    void Bytes(byte[] b)
    {
        U32((uint)b.Length);
        Raw(b);
        Raw([0]);
    }

    void Raw(ReadOnlySpan<byte> b)
    {
        b.CopyTo(_buf.GetSpan(b.Length));
        _buf.Advance(b.Length);
    }

    void U32(uint v) { System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(_buf.GetSpan(4), v); _buf.Advance(4); }
    void U64(ulong v) { System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(_buf.GetSpan(8), v); _buf.Advance(8); }

    public byte[] ToArray()
    {
        var a = _buf.WrittenSpan.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(a.AsSpan(4), (uint)_count);
        return a;
    }
}
