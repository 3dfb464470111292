using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime;

public sealed class RuntimeOptions
{
    public string Root { get; set; } = "/run/berth-runc";
    public bool SystemdCgroup { get; set; }
    /// <summary>runc's --rootless: cgroups the caller cannot write are skipped (and limits that would
    /// need them refused). Defaults to "not the host's root", which includes root in a user namespace
    /// (rootless podman runs the runtime so).</summary>
    public bool Rootless { get; set; } = geteuid() != 0 || InUserNamespace();
    /// <summary>Not root even in our own user namespace: id maps through newuidmap/newgidmap (or the
    /// caller's own id), and no mount namespace of our own for the spawn.</summary>
    public bool RootlessEuid { get; set; } = geteuid() != 0;
    public Action<string> Warn { get; set; } = _ => { };
    /// <summary>Notes for the log only (--log), never the terminal.</summary>
    public Action<string> Note { get; set; } = _ => { };

    /// <summary>runc's default --root: /run/berth-runc for root, $XDG_RUNTIME_DIR/berth-runc otherwise
    /// (runc's rule: root in a user namespace counts as not root unless $USER is "root").</summary>
    public static string DefaultRoot() =>
        Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg
        && (geteuid() != 0 || InUserNamespace() && Environment.GetEnvironmentVariable("USER") != "root")
            ? Path.Combine(xdg, "berth-runc") : "/run/berth-runc";

    /// <summary>True unless this process is in the initial user namespace (whose uid_map is the identity
    /// over all 2^32 ids).
    /// Read once per process (it cannot change for a process that made no user namespace of its own).</summary>
    public static bool InUserNamespace() => inUserNamespace.Value;

    static readonly Lazy<bool> inUserNamespace = new(() =>
        Sys.TryReadText("/proc/self/uid_map", out _) is { } map
        && string.Join(' ', map.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries)) != "0 0 4294967295");

    /// <summary>--rootless true|false|auto (runc): auto (the default) means "not the host's root".</summary>
    public static bool ParseRootless(string? value) => value switch
    {
        null or "" or "auto" => geteuid() != 0 || InUserNamespace(),
        "true" => true,
        "false" => false,
        _ => throw RuntimeException.Invalid($"invalid --rootless value \"{value}\" (want true, false or auto)"),
    };
}

public sealed class CreateOptions
{
    public required string Id { get; init; }
    public string Bundle { get; init; } = ".";
    public string? PidFile { get; init; }
    public string? ConsoleSocket { get; init; }
    public bool NoPivot { get; init; }
    public bool NoNewKeyring { get; init; }
    public int PreserveFds { get; init; }
    /// <summary>`run` in the foreground keeps the pty master instead of handing it to a socket.</summary>
    public bool KeepConsole { get; init; }
    /// <summary>`run`: no exec fifo; init waits for "start" on the sync socket, which
    /// <see cref="ContainerRuntime.CreateForRun"/> hands to <see cref="ContainerRuntime.StartCreated"/>.</summary>
    internal bool StartOnSocket { get; init; }
}

/// <summary>A container `run` created: its init waits on <see cref="Channel"/> for "start".</summary>
public sealed class HeldContainer(string id, int pid, Fd? console, SyncChannel channel, CgroupHandle cgroup, ContainerRecord record) : IDisposable
{
    public string Id { get; } = id;
    public int Pid { get; } = pid;
    public Fd? Console { get; } = console;
    internal SyncChannel Channel { get; } = channel;
    /// <summary>Create's cgroup handle: `run`'s delete needs no second layout discovery.</summary>
    internal CgroupHandle Cgroup { get; } = cgroup;
    /// <summary>Create's record as saved: `run`'s start and delete do not read state.json back.</summary>
    internal ContainerRecord Record { get; } = record;
    public void Dispose() => Channel.Dispose();
}

public sealed class ExecOptions
{
    public required string Id { get; init; }
    public required Process Process { get; init; }
    public string? PidFile { get; init; }
    public string? ConsoleSocket { get; init; }
    public bool Detach { get; init; }
    public int PreserveFds { get; init; }
}

/// <summary>The OCI runtime operations (create/start/state/kill/delete/exec/pause/resume/update)
/// on containers kept in a <see cref="StateStore"/>.</summary>
public sealed unsafe class ContainerRuntime(RuntimeOptions options)
{
    public StateStore Store { get; } = new(options.Root);
    public RuntimeOptions Options => options;

    static string SelfExe => Environment.ProcessPath ?? "/proc/self/exe";

    // ---------------------------------------------------------------- create

    /// <summary>Creates the container and leaves its init waiting for start. Returns the init pid and,
    /// when <see cref="CreateOptions.KeepConsole"/> is set, the pty master.</summary>
    public (int Pid, Fd? Console) Create(CreateOptions o)
    {
        var (pid, console, _, _, _) = CreateCore(o);
        return (pid, console);
    }

    /// <summary>`run`'s create: as <see cref="Create"/>, but without an exec fifo. Init waits for
    /// "start" on the sync socket, which stays open in the returned handle: no fifo to make, open,
    /// poll and remove, and an init whose runtime died before start exits instead of waiting forever.
    /// Until <see cref="StartCreated"/> the container's status reads "running" (no fifo), as nobody
    /// but this `run` knows its init exists.</summary>
    public HeldContainer CreateForRun(CreateOptions o)
    {
        var (pid, console, ch, cg, rec) = CreateCore(new CreateOptions
        {
            Id = o.Id, Bundle = o.Bundle, PidFile = o.PidFile, ConsoleSocket = o.ConsoleSocket, NoPivot = o.NoPivot,
            NoNewKeyring = o.NoNewKeyring, PreserveFds = o.PreserveFds, KeepConsole = o.KeepConsole, StartOnSocket = true,
        });
        return new HeldContainer(o.Id, pid, console, ch!, cg, rec);
    }

    (int Pid, Fd? Console, SyncChannel? Held, CgroupHandle Cgroup, ContainerRecord Record) CreateCore(CreateOptions o)
    {
        Timing.Mark("create: begin");
        StateStore.ValidateId(o.Id);
        var bundle = Path.GetFullPath(o.Bundle);
        var configPath = Path.Combine(bundle, "config.json");
        if (!File.Exists(configPath)) throw RuntimeException.Invalid($"{configPath}: no such file (is --bundle right?)");
        Timing.Mark("create: id validated");
        var configBytes = File.ReadAllBytes(configPath);
        // A seccomp profile compiled before (the same bytes) is not parsed or compiled again.
        var seccompSection = SeccompCache.Section(configBytes);
        var cachedSeccomp = CachedSeccomp(seccompSection);
        // Init gets the compiled program in its plan and never reads the profile: it (and, on a cache
        // hit, this parse) gets the config with linux.seccomp null.
        var configForInit = seccompSection is { } s2 ? SeccompCache.WithoutSection(configBytes, s2) : configBytes;
        var spec = cachedSeccomp is null ? SpecJson.ParseSpec(configBytes, configPath) : SpecJson.ParseSpecWithoutSeccomp(configForInit, configPath);
        Timing.Mark("create: spec parsed");
        var rootfs = spec.Root is { Path.Length: > 0 } r ? (Path.IsPathRooted(r.Path) ? r.Path : Path.GetFullPath(Path.Combine(bundle, r.Path))) : "";
        SpecValidator.Validate(spec, rootfs);
        if (options.RootlessEuid) RootlessIds.Validate(spec);
        Timing.Mark("create: spec parsed and validated");
        var seccomp = cachedSeccomp ?? CompileSeccomp(spec, configBytes);
        Timing.Mark("create: seccomp compiled");
        var process = spec.Process!;
        if (process.Terminal && o.ConsoleSocket is null && !o.KeepConsole)
            throw RuntimeException.Invalid("cannot allocate tty if berth-runc will detach without setting console socket");
        if (!process.Terminal && o.ConsoleSocket is not null)
            throw RuntimeException.Invalid("cannot use console socket if berth-runc will not detach or allocate tty");
        if (o.ConsoleSocket is not null && !File.Exists(o.ConsoleSocket) && !Path.Exists(o.ConsoleSocket))
            throw RuntimeException.Invalid($"console socket {o.ConsoleSocket} does not exist");

        using var _ = Store.CreateDir(o.Id);
        var record = new ContainerRecord
        {
            Id = o.Id, Bundle = bundle, Rootfs = rootfs, Created = DateTimeOffset.UtcNow, Owner = OwnerName(),
            Annotations = spec.Annotations, SystemdCgroup = options.SystemdCgroup,
            HasPostHooks = spec.Hooks?.Poststart is { Count: > 0 } || spec.Hooks?.Poststop is { Count: > 0 },
            HostMountNs = !(spec.Linux?.Namespaces ?? []).Any(n => n.Type == "mount"),
            Rootless = options.Rootless,
        };
        CgroupHandle? cg = null;
        int pid = 0;
        Fd? console = null;
        var nsList = spec.Linux!.Namespaces ?? [];
        var userNs = nsList.Any(n => n.Type == "user");
        // User and time namespaces go through nsexec (native/nsexec.c); so does everything then.
        var viaNsexec = userNs || nsList.Any(n => n.Type == "time");
        Fd? childEnd = null;
        SpawnJob? early = null;
        // Closed after a failed init is killed (finally): init must not see the runtime go away first
        // and report it on the container's stderr.
        ChannelOwner? chOwner = null;
        try
        {
            (var parentEnd, childEnd) = Sys.SocketPair();
            chOwner = new ChannelOwner(new SyncChannel(parentEnd));
            var ch = chOwner.Channel;
            // Without nsexec init needs neither the state dir nor the cgroups to be born: it is spawned
            // first, and its namespaces, exec and .NET start-up run beside the state and cgroup work
            // below (init joins the cgroups itself once it has its plan). Joined at "init spawned".
            if (!viaNsexec) early = BeginSpawn(nsList, childEnd, initPid: 0, [], timeOffsets: TimeOffsetsText(spec.Linux));
            Store.SaveSpecBytes(o.Id, configBytes);
            Timing.Mark("create: spec saved");
            cg = CgroupHandle.ForCreate(o.Id, spec.Linux!.CgroupsPath, options.SystemdCgroup);
            record.CgroupsPath = cg.SpecPath;
            record.CgroupPaths = cg.HierarchyPaths;
            record.FreezerStateFile = cg.FreezerStateFile;
            Store.Save(record);
            Timing.Mark("create: cgroup layout");

            string? fifo = null;
            if (!o.StartOnSocket)
            {
                fifo = Store.FifoPath(o.Id);
                var old = umask(0);
                var rc = mkfifo(fifo, 0x180 | 0x12);
                umask(old);
                if (rc != 0) throw SyscallException.Last("mkfifo", fifo);
            }

            // Init is spawned before the cgroups are made, and gets its plan before them: its start-up
            // and its mounts overlap with creating them. It joins them itself (writing "0" to each v1
            // `tasks`, lock-free) once the runtime says "cgroups-ready", before the cgroup mount or
            // the devices (whichever comes first). With a user namespace init (host uid = the mapped root) can no longer
            // write the cgroup files or reach the state dir: the cgroups come first, the spawning
            // thread (and so the intermediate nsexec process and init) is born in them, and the runtime
            // moves init into the late ones (memory) itself while init still waits for its id maps.
            // Rootless, the hierarchies the caller cannot write are dropped while the cgroups are
            // made: then too they come first, so that the plan names only the ones that exist.
            var cgroupsFirst = viaNsexec || options.Rootless;
            if (cgroupsFirst) SetUpCgroups(cg, spec.Linux, record);
            // With a user namespace init cannot open the fifo by path (the state dir is 0700, owned by
            // the host's root): it inherits an O_PATH descriptor and reopens it through /proc/self/fd.
            using var fifoFd = viaNsexec && fifo is not null ? Sys.Open(fifo, O_PATH) : null;
            var plan = new InitPlan
            {
                Id = o.Id, Rootfs = rootfs, Bundle = bundle, Fifo = fifoFd is null ? fifo : $"/proc/self/fd/{fifoFd.Value}",
                StartOnSocket = o.StartOnSocket,
                Seccomp = seccomp?.Bytes, SeccompFlags = seccomp?.Flags ?? 0,
                NoPivot = o.NoPivot, NoNewKeyring = o.NoNewKeyring, PreserveFds = o.PreserveFds,
                EarlyCgroupTasks = viaNsexec ? [] : cg.BirthTaskFiles(),
                LateCgroupProcs = viaNsexec ? [] : cg.LateProcsFiles(spec.Linux.Resources), CgroupMounts = cg.MountSources(), CgroupV2Path = cg.V2Dir,
                // Root in someone else's user namespace (rootless podman) cannot mknod either.
                UserNs = userNs || RuntimeOptions.InUserNamespace(),
                CgroupsLater = !cgroupsFirst,
                NewCgroupNs = nsList.Any(n => n.Type == "cgroup" && string.IsNullOrEmpty(n.Path)),
                HostMountNs = record.HostMountNs,
                // A new mount namespace is made from (or cloned from) the spawning thread's, where "/"
                // was already made rslave by ProtectRuntimeBinary (not rootless: that thread cannot unshare).
                RootSlaveDone = !options.RootlessEuid && nsList.Any(n => n.Type == "mount" && string.IsNullOrEmpty(n.Path)),
                Spec = spec, Process = spec.Process!,
            };
            // Without hooks that init runs or a seccomp listener nothing in the plan depends on init's
            // pid: it is sent before the spawn is joined, and init starts on it as soon as it runs.
            var planFirst = !viaNsexec && seccomp?.Notify != true
                && spec.Hooks?.CreateContainer is not { Count: > 0 } && spec.Hooks?.StartContainer is not { Count: > 0 };
            if (planFirst)
            {
                ch.Send(Init.ContainerInit.CompileCreate(plan, 0));
                Timing.Mark("create: plan sent");
            }
            pid = early is not null ? early.Join() : SpawnInNamespaces(nsList, childEnd, initPid: 0, cg.BirthTaskFiles(), fifoFd, timeOffsets: TimeOffsetsText(spec.Linux));
            early = null;
            childEnd.Dispose();
            if (viaNsexec)
            {
                var intermediate = pid;
                pid = 0;
                pid = ReceiveNsexecPid(ch, intermediate);
                record.InitPid = pid;
                Store.Save(record);
                var joinedUserNs = nsList.Any(n => n.Type == "user" && !string.IsNullOrEmpty(n.Path));
                SetUpUserNamespace(pid, joinedUserNs || !userNs ? null : spec.Linux, cg.LateProcsFiles(spec.Linux.Resources), ch, options.RootlessEuid ? Store.Dir(o.Id) : null);
                // A new time namespace beside a new user namespace belongs to it: nsexec's child made it
                // after the maps and cloned init into it, and reports init's pid.
                if (userNs && !joinedUserNs && nsList.Any(n => n.Type == "time" && string.IsNullOrEmpty(n.Path)))
                {
                    pid = ReceiveNsexecPid(ch, pid);
                    record.InitPid = pid;
                    Store.Save(record);
                }
                Timing.Mark("create: user namespace mapped");
            }
            record.InitPid = pid;
            record.InitStartTime = ProcStat.Read(pid)?.StartTime ?? 0;
            Store.Save(record);
            Timing.Mark("create: init spawned");

            // The plan went ahead (or goes now): init mounts while the cgroups are made, and waits
            // for "cgroups-ready" before it first needs them.
            if (!planFirst)
            {
                if (seccomp?.Notify == true) plan.SeccompListenerState = ListenerState(spec, pid, ToState(record, ContainerStatus.Creating));
                ch.Send(Init.ContainerInit.CompileCreate(plan, pid));
                if (seccomp?.Notify == true) SendSeccompListener(ch, spec);
                Timing.Mark("create: plan sent");
            }
            if (!cgroupsFirst)
            {
                SetUpCgroups(cg, spec.Linux, record);
                // An init that failed meanwhile has closed its end: its error is read below.
                try { ch.Send(SyncMessages.CgroupsReady); }
                catch (SyscallException) { }
            }

            while (true)
            {
                string? msg;
                Fd? passed;
                // An init that exited with "cgroups-ready" unread leaves ECONNRESET on this end, which
                // the kernel reports (once) before the messages still queued: its error comes next.
                try { msg = ch.Receive(out passed); }
                catch (SyscallException e) when (e.Errno == ECONNRESET && !cgroupsFirst) { msg = ch.Receive(out passed); }
                if (msg is null) throw InitDied(pid, "container init");
                if (msg == SyncMessages.Hooks)
                {
                    try
                    {
                        var st = ToState(record, ContainerStatus.Creating);
                        HookRunner.RunAll("prestart", spec.Hooks?.Prestart, st, failFast: true);
                        HookRunner.RunAll("createRuntime", spec.Hooks?.CreateRuntime, st, failFast: true);
                    }
                    catch (RuntimeException e)
                    {
                        ch.Send(SyncMessages.ErrorPrefix + e.Message);
                        throw;
                    }
                    ch.Send(SyncMessages.HooksDone);
                }
                else if (msg == SyncMessages.Pty) { console = passed; }
                else if (msg == SyncMessages.Ready) break;
                else if (msg.StartsWith(SyncMessages.ErrorPrefix, StringComparison.Ordinal))
                    throw new RuntimeException(ErrorKind.FailedPrecondition, msg[SyncMessages.ErrorPrefix.Length..]);
                else { passed?.Dispose(); throw new RuntimeException(ErrorKind.Internal, $"unexpected message from init: {msg}"); }
            }

            if (o.ConsoleSocket is not null && console is not null)
            {
                SendConsole(o.ConsoleSocket, console);
                console.Dispose();
                console = null;
            }
            if (o.PidFile is not null) WritePidFile(o.PidFile, pid);
            Timing.Mark("create: init ready");
            return (pid, console, o.StartOnSocket ? chOwner.Release() : null, cg, record);
        }
        catch (Exception e)
        {
            console?.Dispose();
            var cleanupErrors = new List<string>();
            // Failed while init was being spawned beside the work above: wait for it, then kill it.
            if (early is not null)
            {
                try { pid = early.Join(); } catch (Exception) { }
            }
            childEnd?.Dispose();
            if (pid > 0)
            {
                kill(pid, 9);
                try { Sys.Wait(pid); } catch (SyscallException) { }
            }
            try { cg?.Destroy(); } catch (Exception ce) { cleanupErrors.Add(ce.Message); }
            if (record.HostMountNs) UnmountUnder(rootfs);
            Store.Remove(o.Id);
            if (cleanupErrors.Count > 0)
                throw new RuntimeException(ErrorKind.Internal, $"{Message(e)}; cleanup also failed: {string.Join("; ", cleanupErrors)}");
            if (e is RuntimeException) throw;
            throw new RuntimeException(ErrorKind.Internal, Message(e));
        }
        finally { chOwner?.Dispose(); }
    }

    /// <summary>Creates the cgroup and writes the limits. Rootless: only where the caller may write
    /// (the rest is skipped and noted in the log), and a limit that would need a skipped hierarchy is
    /// refused.</summary>
    void SetUpCgroups(CgroupHandle cg, Berth.Oci.Runtime.Linux linux, ContainerRecord record)
    {
        if (options.Rootless)
        {
            cg.CreateWhereWritable(options.Note);
            record.CgroupPaths = cg.HierarchyPaths;
            record.FreezerStateFile = cg.HasCgroup ? cg.FreezerStateFile : null;
            Store.Save(record);
            cg.RequireControllersFor(linux.Resources);
        }
        else cg.Create();
        foreach (var w in cg.Apply(linux.Resources, linux.Devices ?? [], options.Rootless)) options.Warn(w);
        Timing.Mark("create: cgroups ready");
    }

    /// <summary>Compiles linux.seccomp (a bad profile fails here, before anything exists); unknown
    /// syscall names are warnings, as in runc.</summary>
    (byte[] Bytes, uint Flags, bool Notify)? CachedSeccomp(ReadOnlyMemory<byte>? section) =>
        section is { } raw && SeccompCache.TryLoad(options.Root, raw.Span, SelfExe) is { } hit ? (hit.Bytes, hit.Flags, false) : null;

    (byte[] Bytes, uint Flags, bool Notify)? CompileSeccomp(Spec spec, byte[] configBytes)
    {
        if (spec.Linux?.Seccomp is not { } profile) return null;
        Berth.Linux.Seccomp.SeccompProgram program;
        try { program = Berth.Linux.Seccomp.SeccompCompiler.Compile(profile, Berth.Linux.Seccomp.SeccompCompiler.NativeArchitecture); }
        catch (Berth.Linux.Seccomp.SeccompException e) { throw RuntimeException.Invalid(e.Message); }
        if (program.NeedsListener && string.IsNullOrEmpty(profile.ListenerPath))
            throw RuntimeException.Invalid("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the socket that receives the notification fd)");
        if (program.NeedsListener && !Path.IsPathRooted(profile.ListenerPath))
            throw RuntimeException.Invalid($"seccomp: linux.seccomp.listenerPath \"{profile.ListenerPath}\" must be absolute");
        // Profiles list every architecture's names (podman's and Docker's do): a name this kernel
        // lacks is skipped quietly, as libseccomp does; it goes to the log only.
        foreach (var w in program.Warnings) options.Note(w);
        var bytes = new byte[program.Instructions.Count * 8];
        for (var i = 0; i < program.Instructions.Count; i++)
        {
            var ins = program.Instructions[i];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 8), ins.Code);
            bytes[i * 8 + 2] = ins.Jt;
            bytes[i * 8 + 3] = ins.Jf;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 8 + 4), ins.K);
        }
        if (!program.NeedsListener && SeccompCache.Section(configBytes) is { } raw) SeccompCache.Save(options.Root, raw.Span, SelfExe, bytes, program.Flags);
        return (bytes, program.Flags, program.NeedsListener);
    }

    /// <summary>SCMP_ACT_NOTIFY: connects to linux.seccomp.listenerPath now (the runtime can reach it;
    /// init, later inside the container, could not), hands the socket to init after the plan, and puts
    /// in the plan the OCI ContainerProcessState init sends over it with the listener fd.</summary>
    static void SendSeccompListener(SyncChannel ch, Spec spec)
    {
        using var sock = ConnectUnix(spec.Linux!.Seccomp!.ListenerPath!, "seccomp listener");
        ch.Send(SyncMessages.SeccompListener, sock.Value);
    }

    static string ListenerState(Spec spec, int pid, State state)
    {
        var buf = new System.Buffers.ArrayBufferWriter<byte>(512);
        using (var w = new System.Text.Json.Utf8JsonWriter(buf))
        {
            w.WriteStartObject();
            w.WriteString("ociVersion", SpecVersion.Current);
            w.WriteStartArray("fds");
            w.WriteStringValue("seccompFd");
            w.WriteEndArray();
            w.WriteNumber("pid", pid);
            if (spec.Linux?.Seccomp?.ListenerMetadata is { Length: > 0 } md) w.WriteString("metadata", md);
            w.WritePropertyName("state");
            w.WriteRawValue(SpecJson.Serialize(state), skipInputValidation: true);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buf.WrittenSpan);
    }

    static Fd ConnectUnix(string socketPath, string what)
    {
        var s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) throw SyscallException.Last("socket");
        var sock = new Fd(s);
        var addr = new byte[110];
        addr[0] = 1; // AF_UNIX
        var p = Encoding.UTF8.GetBytes(socketPath);
        if (p.Length >= 108) { sock.Dispose(); throw RuntimeException.Invalid($"{what} path too long: {socketPath}"); }
        p.CopyTo(addr, 2);
        fixed (byte* a = addr)
            if (connect(s, a, 2 + p.Length + 1) != 0)
            {
                var e = SyscallException.Last("connect", $"{what} {socketPath}");
                sock.Dispose();
                throw RuntimeException.Invalid(e.Message);
            }
        return sock;
    }

    static string Message(Exception e) => e is RuntimeException or SyscallException or SpecException or ArgumentException
        or IOException or UnauthorizedAccessException || e.GetType().Name == "CgroupException" ? e.Message : $"{e.GetType().Name}: {e.Message}";

    static RuntimeException InitDied(int pid, string what)
    {
        var status = 0;
        try { status = Sys.Wait(pid); } catch (SyscallException) { }
        return new RuntimeException(ErrorKind.Internal, $"{what} exited unexpectedly (status {status})");
    }

    /// <summary>nsexec's intermediate process reports the pid of init (born in the new namespaces,
    /// our child through CLONE_PARENT) and exits.</summary>
    static int ReceiveNsexecPid(SyncChannel ch, int intermediate)
    {
        var msg = ch.Receive();
        var status = 0;
        try { status = Sys.Wait(intermediate); } catch (SyscallException) { }
        if (msg is null) throw new RuntimeException(ErrorKind.Internal, $"nsexec exited without reporting init's pid (status {status})");
        if (msg.StartsWith(SyncMessages.ErrorPrefix, StringComparison.Ordinal))
            throw new RuntimeException(ErrorKind.FailedPrecondition, msg[SyncMessages.ErrorPrefix.Length..]);
        if (!msg.StartsWith("pid:", StringComparison.Ordinal) || !int.TryParse(msg.AsSpan(4), out var pid) || pid <= 0)
            throw new RuntimeException(ErrorKind.Internal, $"unexpected message from nsexec: {msg}");
        return pid;
    }

    /// <summary>Writes init's uid and gid maps, moves it into the cgroups it could not join itself,
    /// then lets it go on ("maps-done": it becomes root of its user namespace and starts .NET).
    /// The runtime is root with CAP_SETGID, so gid_map is written without denying setgroups (as runc
    /// does for root).</summary>
    static void SetUpUserNamespace(int pid, Berth.Oci.Runtime.Linux? linux, List<string> lateCgroupFiles, SyncChannel ch, string? rootlessScratch = null)
    {
        if (linux is not null && rootlessScratch is not null) RootlessIds.WriteMaps(pid, linux, rootlessScratch);
        else if (linux is not null) // create; exec joins a namespace that is mapped already
        {
            Sys.WriteFile($"/proc/{pid}/uid_map", MapText(linux.UidMappings!));
            Sys.WriteFile($"/proc/{pid}/gid_map", MapText(linux.GidMappings!));
        }
        // init is single-threaded until "maps-done": writing its pid to a v1 `tasks` moves all of it.
        foreach (var f in lateCgroupFiles)
        {
            try { Sys.WriteFile(f, pid.ToString()); }
            catch (SyscallException e) { throw new RuntimeException(ErrorKind.FailedPrecondition, $"cgroup: joining {Path.GetDirectoryName(f)}: {Errno.Describe(e.Errno)}"); }
        }
        ch.Send("maps-done");
    }

    internal static string MapText(List<IdMapping> maps) =>
        string.Concat(maps.Select(m => $"{m.ContainerId} {m.HostId} {m.Size}\n"));

    /// <summary>Spawns `berth-runc init` from a throwaway thread that first joins (setns) and creates
    /// (unshare) the namespaces, so the child is born inside them. For exec, joins the namespaces of
    /// the container's init.</summary>
    int SpawnInNamespaces(List<Namespace> nsList, Fd childEnd, int initPid, List<string> taskFiles, Fd? inherit = null, List<string>? nsexecJoin = null, string? timeOffsets = null) =>
        BeginSpawn(nsList, childEnd, initPid, taskFiles, inherit, nsexecJoin, timeOffsets).Join();

    /// <summary>A spawn under way on its throwaway thread (<see cref="BeginSpawn"/>).</summary>
    sealed class SpawnJob(Thread thread, Func<(int Pid, Exception? Error)> result)
    {
        /// <summary>Waits for the thread; returns init's pid, or throws what the spawn threw.</summary>
        public int Join()
        {
            thread.Join();
            var (pid, error) = result();
            if (error is not null) throw error is SyscallException se ? new RuntimeException(ErrorKind.InvalidArgument, se.Message) : error;
            return pid;
        }
    }

    /// <summary><see cref="SpawnInNamespaces"/> without waiting: the caller may do other work while the
    /// namespaces are made and init is exec'd, and must <see cref="SpawnJob.Join"/> before it uses
    /// (or disposes) <paramref name="childEnd"/> or <paramref name="inherit"/> again.</summary>
    SpawnJob BeginSpawn(List<Namespace> nsList, Fd childEnd, int initPid, List<string> taskFiles, Fd? inherit = null, List<string>? nsexecJoin = null, string? timeOffsets = null)
    {
        // A new user namespace cannot be made by this (multi-threaded) process: nsexec (native/nsexec.c)
        // clones init into all the new namespaces at once before .NET starts in it. The validator
        // has refused joining other namespaces by path together with it.
        var nsexecFlags = 0;
        if (initPid == 0 && nsList.Any(n => n.Type is "user" or "time"))
        {
            // New namespaces are cloned; those with a path (a joined user namespace, and what the
            // validator allows beside it) are setns()ed first, in ownership order.
            nsexecFlags = CLONE_PARENT;
            // A new time namespace is unshared by nsexec before the clone (timeOffsets), not cloned.
            foreach (var ns in nsList)
                if (string.IsNullOrEmpty(ns.Path) && ns.Type != "time") nsexecFlags |= NsFlag(ns.Type);
            var joinPaths = nsList.Where(n => n.Type != "user" && !string.IsNullOrEmpty(n.Path)).Select(n => n.Path!).ToList();
            if (nsList.FirstOrDefault(n => n.Type == "user" && !string.IsNullOrEmpty(n.Path)) is { } joined)
                nsexecJoin = JoinOrder(joined.Path!, joinPaths);
            else if (joinPaths.Count > 0) nsexecJoin = joinPaths;
            if (nsList.Any(n => n.Type == "time" && string.IsNullOrEmpty(n.Path))) timeOffsets ??= "";
            else timeOffsets = null;
        }
        int pid = 0;
        Exception? error = null;
        Fd? sealedExe = null;
        var t = new Thread(() =>
        {
            try
            {
                // Move this throwaway thread into the container's cgroups: the child is born there.
                // "0" (the calling thread) is the one migration the kernel does without taking the
                // threadgroup rwsem (an RCU grace period, ~7 ms here, for any other id).
                foreach (var f in taskFiles)
                {
                    try { Sys.WriteFile(f, "0"); }
                    catch (SyscallException e) { throw new RuntimeException(ErrorKind.FailedPrecondition, $"cgroup: joining {Path.GetDirectoryName(f)}: {Errno.Describe(e.Errno)}"); }
                }
                if ((nsexecFlags != 0 || nsexecJoin is not null) && !options.RootlessEuid)
                {
                    // nsexec creates or joins the namespaces. This thread only takes a private mount
                    // namespace for the read-only view of the binary: the spawned process execs through
                    // it, and a new mount namespace cloned from it (create) keeps it, locked.
                    Sys.Unshare(CLONE_NEWNS);
                    ProtectRuntimeBinary();
                }
                else if (nsexecFlags != 0 || nsexecJoin is not null)
                {
                    // Rootless: no mount namespace of our own for a read-only bind. A binary the caller
                    // may write (so may its containers) is exec'd from a sealed in-memory copy instead.
                    if (SealedExecutable.WritableByCaller(SelfExe)) sealedExe = SealedExecutable.Copy(SelfExe, "berth-runc");
                }
                else if (initPid > 0)
                {
                    JoinContainerNamespaces(initPid);
                    // exec: a private mount namespace just for the read-only view of the binary;
                    // the child then enters the container's mount namespace itself.
                    Sys.Unshare(CLONE_NEWNS);
                    ProtectRuntimeBinary();
                }
                else
                {
                    var unshareFlags = 0;
                    foreach (var ns in nsList)
                    {
                        var flag = NsFlag(ns.Type);
                        if (ns.Path is { Length: > 0 } p)
                        {
                            if (flag == CLONE_NEWNS) Sys.Unshare(CLONE_FS);
                            using var fd = Sys.Open(p, O_RDONLY);
                            Sys.SetNs(fd, flag, $"{ns.Type} namespace {p}");
                        }
                        else unshareFlags |= flag;
                    }
                    if (unshareFlags != 0) Sys.Unshare(unshareFlags);
                    if ((unshareFlags & CLONE_NEWNS) != 0) ProtectRuntimeBinary();
                }
                Sys.SetCloexec(childEnd.Value, false);
                if (inherit is not null) Sys.SetCloexec(inherit.Value, false);
                // native/initexec.c receives the plan on this socket and carries it out before .NET starts.
                var env = new List<string> { $"{Init.ContainerInit.InitEnv}={childEnd.Value}" };
                if (nsexecFlags == 0 && nsexecJoin is not null) nsexecFlags = CLONE_PARENT; // exec
                if (timeOffsets is not null) env.Add($"{NsexecTimeEnv}={timeOffsets}");
                if (nsexecFlags != 0)
                    env.Add($"{NsexecEnv}={childEnd.Value}:{nsexecFlags:x}" + (nsexecJoin is null ? "" : ":" + string.Join(',', nsexecJoin)));
                if (Timing.Enabled) env.Add("BERTH_TIMING=1");
                pid = Spawn.Start(sealedExe is null ? SelfExe : $"/proc/self/fd/{sealedExe.Value}", ["berth-runc", "init"], env);
            }
            catch (Exception e) { error = e; }
            finally { sealedExe?.Dispose(); }
        }, 256 * 1024);
        t.Start();
        return new SpawnJob(t, () => (pid, error));
    }

    const int ECONNRESET = 104;

    /// <summary>Read by native/nsexec.c: "SYNCFD:CLONEFLAGS_HEX".</summary>
    const string NsexecEnv = "_BERTH_NSEXEC";
    /// <summary>Read by native/nsexec.c: present = unshare a time namespace and write this text to
    /// /proc/self/timens_offsets before cloning.</summary>
    const string NsexecTimeEnv = "_BERTH_NSEXEC_TIME";

    /// <summary>linux.timeOffsets as /proc/PID/timens_offsets lines ("monotonic SECS NANOSECS").</summary>
    static string? TimeOffsetsText(Berth.Oci.Runtime.Linux? linux) =>
        linux?.TimeOffsets is { Count: > 0 } t ? string.Concat(t.Select(kv => $"{kv.Key} {kv.Value.Secs} {kv.Value.Nanosecs}\n")) : null;

    /// <summary>CVE-2019-5736 defence: in the new mount namespace the child is born into, bind the
    /// runtime binary read-only over itself, so a container process that reaches it through
    /// /proc/PID/exe gets EROFS instead of overwriting the host's berth. Mounts made here stay in
    /// this namespace (made a slave of the host's first).</summary>
    static void ProtectRuntimeBinary()
    {
        Sys.Mount(null, "/", null, MS_REC | MS_SLAVE, null, "/ (slave, before protecting the runtime binary)");
        Sys.Mount(SelfExe, SelfExe, null, MS_BIND, null, $"runtime binary {SelfExe} (bind)");
        Sys.Mount(null, SelfExe, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, null, $"runtime binary {SelfExe} (read-only)");
    }

    /// <summary>Detaches every mount at or below <paramref name="root"/> in this mount namespace,
    /// deepest first (what a container sharing the host's mount namespace left there).</summary>
    static void UnmountUnder(string root)
    {
        var prefix = root.TrimEnd('/');
        var points = MountInfo.MountPoints().Where(mp => mp == prefix || mp.StartsWith(prefix + "/", StringComparison.Ordinal)).ToList();
        foreach (var mp in points.OrderByDescending(p => p.Count(c => c == '/')).ThenByDescending(p => p.Length))
            umount2(mp, MNT_DETACH);
    }

    /// <summary>The container init's namespaces that differ from ours, in the order nsexec joins them
    /// for exec: those not owned by the container's user namespace first (e.g. the host's cgroup
    /// namespace podman leaves on cgroup v1: joining it needs the host's CAP_SYS_ADMIN, gone once in
    /// the user namespace), then the user namespace, then the ones it owns. The mount namespace is
    /// joined later, by init itself.</summary>
    /// <summary>Namespace files in the order nsexec must join them: those the user namespace at
    /// <paramref name="userPath"/> does not own first (joining them needs our own privileges), then the
    /// user namespace, then the ones it owns (joining those needs its privileges).</summary>
    static List<string> JoinOrder(string userPath, IEnumerable<string> others)
    {
        var userNs = NsId(userPath);
        List<string> before = [], after = [];
        foreach (var p in others) (OwnerUserNs(p) == userNs ? after : before).Add(p);
        return [.. before, userPath, .. after];
    }

    static List<string> ContainerNamespacePaths(int initPid, bool withUser)
    {
        var userPath = $"/proc/{initPid}/ns/user";
        var userNs = withUser ? NsId(userPath) : "";
        List<string> before = [], after = [];
        foreach (var name in new[] { "time", "ipc", "uts", "net", "pid", "cgroup" })
        {
            var theirs = $"/proc/{initPid}/ns/{name}";
            string a, b;
            try { a = NsId(theirs); b = NsId($"/proc/self/ns/{name}"); }
            catch (IOException) { continue; }
            if (a == b) continue;
            (withUser && OwnerUserNs(theirs) == userNs ? after : before).Add(theirs);
        }
        return withUser ? [.. before, userPath, .. after] : before;
    }

    /// <summary>The raw link text, "net:[4026531833]" (ResolveLinkTarget would prefix the link's directory).</summary>
    static string NsId(string path) => new FileInfo(path).LinkTarget ?? "";

    /// <summary>"user:[inode]" of the user namespace that owns the namespace at <paramref name="path"/>.</summary>
    static string OwnerUserNs(string path)
    {
        using var ns = Sys.Open(path, O_RDONLY);
        var owner = ioctl(ns.Value, 0xb701 /* NS_GET_USERNS */, null);
        if (owner < 0) throw SyscallException.Last("ioctl(NS_GET_USERNS)", path);
        using var ownerFd = new Fd(owner);
        return NsId($"/proc/self/fd/{owner}");
    }

    static void JoinContainerNamespaces(int initPid)
    {
        Sys.Unshare(CLONE_FS);
        foreach (var (name, flag) in new[] { ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("net", CLONE_NEWNET), ("pid", CLONE_NEWPID), ("cgroup", CLONE_NEWCGROUP) })
        {
            var theirs = $"/proc/{initPid}/ns/{name}";
            string a, b;
            try { a = NsId(theirs); b = NsId($"/proc/self/ns/{name}"); }
            catch (IOException) { continue; }
            if (a == b) continue;
            using var fd = Sys.Open(theirs, O_RDONLY);
            Sys.SetNs(fd, flag, $"{name} namespace of pid {initPid}");
        }
    }

    static int NsFlag(string type) => type switch
    {
        "pid" => CLONE_NEWPID, "network" => CLONE_NEWNET, "mount" => CLONE_NEWNS, "ipc" => CLONE_NEWIPC,
        "uts" => CLONE_NEWUTS, "cgroup" => CLONE_NEWCGROUP, "user" => CLONE_NEWUSER, "time" => CLONE_NEWTIME,
        _ => throw RuntimeException.Invalid($"unknown namespace type \"{type}\""),
    };

    static void SendConsole(string socketPath, Fd master)
    {
        using var sock = ConnectUnix(socketPath, "console socket");
        new SyncChannel(sock).Send("/dev/ptmx", master.Value);
    }

    static void WritePidFile(string path, int pid)
    {
        var full = Path.GetFullPath(path);
        AtomicFile.Write(full, Encoding.ASCII.GetBytes(pid.ToString()));
    }

    static string OwnerName()
    {
        var uid = geteuid();
        return uid == 0 ? "root" : uid.ToString();
    }

    // ---------------------------------------------------------------- start

    public void Start(string id)
    {
        using var _ = Store.Lock(id);
        var rec = Store.Load(id);
        var status = StatusOf(rec);
        if (!status.CanStart()) throw RuntimeException.Precondition($"cannot start container \"{id}\": it is {status.ToSpecString()}, not created");
        Timing.Mark("start: begin");
        ReleaseFifo(rec);
        Timing.Mark("start: fifo released");
        if (!rec.HasPostHooks) return;
        var spec = Store.LoadSpec(id);
        HookRunner.RunAll("poststart", spec.Hooks?.Poststart, ToState(rec, ContainerStatus.Running), failFast: false, options.Warn);
    }

    /// <summary>`run`'s start of a container from <see cref="CreateForRun"/>: "start" on the sync
    /// socket releases init (what opening the fifo does for `start`), then the poststart hooks.</summary>
    public void StartCreated(HeldContainer c)
    {
        using var _ = Store.Lock(c.Id);
        var rec = c.Record;
        Timing.Mark("start: begin");
        try { c.Channel.Send(SyncMessages.Start); }
        catch (SyscallException) { throw RuntimeException.Precondition($"cannot start container \"{c.Id}\": its init process exited"); }
        c.Dispose();
        Timing.Mark("start: released");
        if (!rec.HasPostHooks) return;
        var spec = Store.LoadSpec(c.Id);
        HookRunner.RunAll("poststart", spec.Hooks?.Poststart, ToState(rec, ContainerStatus.Running), failFast: false, options.Warn);
    }

    /// <summary>Disposes the sync channel unless <see cref="Release"/> handed it on.</summary>
    sealed class ChannelOwner(SyncChannel ch) : IDisposable
    {
        SyncChannel? _ch = ch;
        public SyncChannel Channel => _ch!;
        public SyncChannel Release() { var c = _ch!; _ch = null; return c; }
        public void Dispose() => _ch?.Dispose();
    }

    void ReleaseFifo(ContainerRecord rec)
    {
        var path = Store.FifoPath(rec.Id);
        using var fd = Sys.Open(path, O_RDONLY | O_NONBLOCK);
        Span<byte> b = stackalloc byte[1];
        var pfd = new PollFd { Fd = fd.Value, Events = POLLIN };
        // init opens its end for writing and writes one byte; wait for it unless init is gone.
        while (true)
        {
            var r = poll(&pfd, 1, 50);
            if (r > 0)
            {
                var n = Sys.Read(fd.Value, b);
                if (n == 1) break;
            }
            if (!IsInitAlive(rec)) throw RuntimeException.Precondition($"cannot start container \"{rec.Id}\": its init process exited");
        }
        File.Delete(path);
    }

    // ---------------------------------------------------------------- state

    bool IsInitAlive(ContainerRecord r) =>
        r.InitPid > 0 && Sys.IsAlive(r.InitPid) && (r.InitStartTime == 0 || ProcStat.Read(r.InitPid)?.StartTime == r.InitStartTime);

    public ContainerStatus StatusOf(ContainerRecord r) => StatusOf(r, null);

    ContainerStatus StatusOf(ContainerRecord r, CgroupHandle? cg)
    {
        if (r.InitPid == 0) return ContainerStatus.Creating;
        if (!IsInitAlive(r)) return ContainerStatus.Stopped;
        bool frozen;
        try { frozen = cg is null && r.FreezerStateFile is { } f ? CgroupHandle.IsFrozenFile(f) : (cg ?? Cgroup(r)).IsFrozen(); }
        catch (RuntimeException) { frozen = false; } // no freezer (or cgroup gone): cannot be paused
        if (frozen) return ContainerStatus.Paused;
        if (File.Exists(Store.FifoPath(r.Id))) return ContainerStatus.Created;
        return ContainerStatus.Running;
    }

    CgroupHandle Cgroup(ContainerRecord r) => CgroupHandle.ForExisting(r.Id, r.CgroupsPath, r.CgroupPaths, r.Rootless);

    /// <summary>The container's processes: its cgroup's, or (rootless without a cgroup) every process
    /// in init's pid namespace; without a pid namespace of its own, init alone.</summary>
    IReadOnlyList<int> ContainerPids(ContainerRecord r, CgroupHandle cg)
    {
        if (cg.HasCgroup) return cg.GetPids();
        if (r.InitPid <= 0 || !IsInitAlive(r)) return [];
        string initNs;
        // Before start, init is not dumpable and its /proc/PID/ns is not ours to read.
        try { initNs = NsId($"/proc/{r.InitPid}/ns/pid"); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return [r.InitPid]; }
        if (initNs.Length == 0 || initNs == NsId("/proc/self/ns/pid")) return [r.InitPid];
        var pids = new List<int>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var p)) continue;
            try { if (p == r.InitPid || NsId(d + "/ns/pid") == initNs) pids.Add(p); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        pids.Sort();
        return pids;
    }

    public State GetState(string id)
    {
        StateStore.ValidateId(id);
        var rec = Store.Load(id);
        return ToState(rec, StatusOf(rec));
    }

    public State ToState(ContainerRecord r, ContainerStatus s) => new()
    {
        Id = r.Id, Pid = s == ContainerStatus.Stopped ? 0 : r.InitPid, Status = s.ToSpecString(), Bundle = r.Bundle,
        Rootfs = r.Rootfs, Created = r.Created, Owner = r.Owner, Annotations = r.Annotations,
    };

    public List<State> List()
    {
        var result = new List<State>();
        foreach (var id in Store.ListIds())
        {
            try { result.Add(GetState(id)); }
            catch (RuntimeException e) when (e.Kind == ErrorKind.NotFound) { }
        }
        return result;
    }

    // ---------------------------------------------------------------- kill / delete

    public void Kill(string id, int signal, bool all)
    {
        using var _ = Store.Lock(id);
        var rec = Store.Load(id);
        var status = StatusOf(rec);
        if (!status.CanKill() && !all) throw RuntimeException.Precondition($"container \"{id}\" is not running");
        if (all)
        {
            var cg = Cgroup(rec);
            var frozen = signal == 9 && status != ContainerStatus.Stopped && cg.HasCgroup;
            if (frozen)
            {
                try { cg.Freeze(); }
                catch (RuntimeException) when (rec.Rootless) { frozen = false; } // no freezer it may write
            }
            try
            {
                foreach (var p in ContainerPids(rec, cg)) kill(p, signal);
            }
            finally { if (frozen) cg.Thaw(); }
            if (status == ContainerStatus.Stopped) return;
        }
        if (status.CanKill() && kill(rec.InitPid, signal) != 0)
        {
            var e = Marshal.GetLastPInvokeError();
            if (e != Errno.ESRCH) throw new SyscallException("kill", $"container \"{id}\" (pid {rec.InitPid})", e);
        }
    }

    public void Delete(string id, bool force) => Delete(id, force, null, null);

    /// <summary>`run`'s delete, with the cgroup handle its create made.</summary>
    public void Delete(HeldContainer c) => Delete(c.Id, force: true, c.Cgroup, c.Record);

    void Delete(string id, bool force, CgroupHandle? known, ContainerRecord? knownRecord)
    {
        StateStore.ValidateId(id);
        if (!Directory.Exists(Store.Dir(id)))
        {
            if (force) return; // runc: delete --force of a missing container succeeds
            throw RuntimeException.NotFound(id);
        }
        using var _ = Store.Lock(id);
        var rec = knownRecord ?? Store.Load(id);
        var cg = known ?? Cgroup(rec);
        var status = StatusOf(rec, cg);
        if (status is ContainerStatus.Running or ContainerStatus.Paused && !force)
            throw RuntimeException.Precondition($"cannot delete container \"{id}\" that is not stopped: {status.ToSpecString()}");
        Timing.Mark("delete: begin");
        if (status != ContainerStatus.Stopped && status != ContainerStatus.Creating)
        {
            KillAllAndWait(rec, cg);
        }
        else
        {
            // Processes left in the cgroup (init exited without a pid namespace) are killed too.
            try { if (ContainerPids(rec, cg).Count > 0) KillAllAndWait(rec, cg); } catch (Exception) { }
        }
        Spec? spec = null;
        if (rec.HasPostHooks)
        {
            try { spec = Store.LoadSpec(id); } catch (Exception) { }
        }
        var errors = new List<string>();
        try { cg.Destroy(); } catch (Exception e) { errors.Add(e.Message); }
        if (rec.HostMountNs) UnmountUnder(rec.Rootfs);
        if (spec is not null && rec.InitPid > 0)
            HookRunner.RunAll("poststop", spec.Hooks?.Poststop, ToState(rec, ContainerStatus.Stopped), failFast: false, options.Warn);
        Store.Remove(id);
        Timing.Mark("delete: done");
        if (errors.Count > 0) throw new RuntimeException(ErrorKind.Internal, $"container \"{id}\" deleted, but: {string.Join("; ", errors)}");
    }

    void KillAllAndWait(ContainerRecord rec, CgroupHandle cg)
    {
        try { cg.Freeze(); } catch (Exception) { }
        foreach (var p in SafePids(rec, cg)) kill(p, 9);
        if (rec.InitPid > 0 && IsInitAlive(rec)) kill(rec.InitPid, 9);
        try { cg.Thaw(); } catch (Exception) { }
        var deadline = Environment.TickCount64 + 10_000;
        while (Environment.TickCount64 < deadline)
        {
            var alive = IsInitAlive(rec) || SafePids(rec, cg).Count > 0;
            if (!alive) return;
            // Reap if init is our child (run/exec); ignore ECHILD otherwise.
            int st;
            waitpid(rec.InitPid, &st, WNOHANG);
            Thread.Sleep(2);
        }
        throw new RuntimeException(ErrorKind.Unavailable, $"container \"{rec.Id}\": processes did not exit after SIGKILL");
    }

    IReadOnlyList<int> SafePids(ContainerRecord rec, CgroupHandle cg)
    {
        try { return ContainerPids(rec, cg); } catch (Exception) { return []; }
    }

    // ---------------------------------------------------------------- pause / resume / update / stats

    public void Pause(string id)
    {
        using var _ = Store.Lock(id);
        var rec = Store.Load(id);
        var s = StatusOf(rec);
        if (!s.CanPause()) throw RuntimeException.Precondition($"container \"{id}\" is not running");
        Cgroup(rec).Freeze();
    }

    public void Resume(string id)
    {
        using var _ = Store.Lock(id);
        var rec = Store.Load(id);
        var s = StatusOf(rec);
        if (!s.CanResume()) throw RuntimeException.Precondition($"container \"{id}\" is not paused");
        Cgroup(rec).Thaw();
    }

    public void Update(string id, LinuxResources r)
    {
        using var _ = Store.Lock(id);
        var rec = Store.Load(id);
        if (StatusOf(rec) == ContainerStatus.Stopped) throw RuntimeException.Precondition($"container \"{id}\" is stopped");
        var spec = Store.LoadSpec(id);
        var merged = ResourceMerge.Merge(spec.Linux!.Resources, r);
        var cg = Cgroup(rec);
        if (rec.Rootless) cg.RequireControllersFor(r);
        foreach (var w in cg.Apply(r, null, rec.Rootless)) options.Warn(w);
        spec.Linux.Resources = merged;
        Store.SaveSpec(id, spec);
    }

    public IReadOnlyList<int> Pids(string id)
    {
        var rec = Store.Load(id);
        return ContainerPids(rec, Cgroup(rec));
    }

    public string StatsJson(string id)
    {
        var rec = Store.Load(id);
        if (StatusOf(rec) == ContainerStatus.Stopped) throw RuntimeException.Precondition($"container \"{id}\" is stopped");
        return Cgroup(rec).StatsEventJson(id);
    }

    // ---------------------------------------------------------------- exec

    /// <summary>Runs a new process in a running container. Returns its exit status, or 0 once it has
    /// started when detached. <paramref name="onStarted"/> gets the pid and pty master (if any).</summary>
    public int Exec(ExecOptions o, Func<int, Fd?, int>? foreground = null)
    {
        SpecValidator.ValidateProcess(o.Process, "process");
        if (o.Process.Terminal && o.ConsoleSocket is null && o.Detach)
            throw RuntimeException.Invalid("cannot allocate tty if berth-runc will detach without setting console socket");
        ContainerRecord rec;
        Spec spec;
        byte[] configBytes, configForInit;
        (byte[] Bytes, uint Flags, bool Notify)? cachedSeccomp;
        using (Store.Lock(o.Id))
        {
            rec = Store.Load(o.Id);
            var status = StatusOf(rec);
            if (!status.CanExec()) throw RuntimeException.Precondition($"cannot exec in a {status.ToSpecString()} container");
            configBytes = File.ReadAllBytes(Store.ConfigPath(o.Id));
            var section = SeccompCache.Section(configBytes);
            cachedSeccomp = CachedSeccomp(section);
            configForInit = section is { } sec ? SeccompCache.WithoutSection(configBytes, sec) : configBytes;
            spec = cachedSeccomp is null ? SpecJson.ParseSpec(configBytes, Store.ConfigPath(o.Id))
                : SpecJson.ParseSpecWithoutSeccomp(configForInit, Store.ConfigPath(o.Id));
        }
        // With a user namespace, nsexec joins it (and then the others) before .NET starts: entering
        // only the other namespaces would run the process as the host's root.
        var userNs = spec.Linux?.Namespaces?.Any(n => n.Type == "user") == true;
        // A time namespace cannot be joined by a multi-threaded process either (EUSERS).
        var viaNsexec = userNs || spec.Linux?.Namespaces?.Any(n => n.Type == "time") == true;
        var cg = Cgroup(rec);
        var seccomp = cachedSeccomp ?? CompileSeccomp(spec, configBytes);
        var plan = new InitPlan
        {
            Id = o.Id, ExecInitPid = rec.InitPid, Process = o.Process, HostMountNs = rec.HostMountNs, Seccomp = seccomp?.Bytes, SeccompFlags = seccomp?.Flags ?? 0,
            Bundle = rec.Bundle, Rootfs = rec.Rootfs, PreserveFds = o.PreserveFds,
            LateCgroupProcs = viaNsexec ? [] : cg.LateProcsFiles(spec.Linux?.Resources),
        };
        using var mntFd = viaNsexec ? Sys.Open($"/proc/{rec.InitPid}/ns/mnt", O_RDONLY) : null;
        if (mntFd is not null) plan.ExecMntNs = $"/proc/self/fd/{mntFd.Value}";
        var (parentEnd, childEnd) = Sys.SocketPair();
        using var ch = new SyncChannel(parentEnd);
        int pid;
        using (childEnd)
            pid = SpawnInNamespaces([], childEnd, rec.InitPid, cg.BirthTaskFiles(), mntFd, viaNsexec ? ContainerNamespacePaths(rec.InitPid, userNs) : null);
        Fd? console = null;
        try
        {
            if (viaNsexec)
            {
                var intermediate = pid;
                pid = 0;
                pid = ReceiveNsexecPid(ch, intermediate);
                SetUpUserNamespace(pid, null, cg.LateProcsFiles(spec.Linux?.Resources), ch);
            }
            if (seccomp?.Notify == true) plan.SeccompListenerState = ListenerState(spec, pid, ToState(rec, ContainerStatus.Running));
            plan.Spec = spec;
            ch.Send(Init.ContainerInit.CompileExec(plan, pid));
            if (seccomp?.Notify == true) SendSeccompListener(ch, spec);
            while (true)
            {
                var msg = ch.Receive(out var passed);
                if (msg is null) throw InitDied(pid, "exec process");
                if (msg == SyncMessages.Pty) console = passed;
                else if (msg == SyncMessages.Ready) break;
                else if (msg.StartsWith(SyncMessages.ErrorPrefix, StringComparison.Ordinal))
                    throw new RuntimeException(ErrorKind.FailedPrecondition, msg[SyncMessages.ErrorPrefix.Length..]);
            }
        }
        catch
        {
            console?.Dispose();
            if (pid > 0)
            {
                kill(pid, 9);
                try { Sys.Wait(pid); } catch (SyscallException) { }
            }
            throw;
        }
        if (o.ConsoleSocket is not null && console is not null)
        {
            SendConsole(o.ConsoleSocket, console);
            console.Dispose();
            console = null;
        }
        if (o.PidFile is not null) WritePidFile(o.PidFile, pid);
        if (o.Detach) { console?.Dispose(); return 0; }
        return foreground is not null ? foreground(pid, console) : Sys.Wait(pid);
    }
}
