using Berth.Images.Snapshots;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Engine.Monitor;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>Owns the lifecycle of containers: daemonless, every call works from the store and the
/// kernel (the monitor's pid and start time, its control socket) and reconciles what it finds: a
/// container whose monitor is gone is exited, never a running ghost.</summary>
public sealed unsafe partial class ContainerManager
{
    public ContainerStore Store { get; }
    public RuntimeClient Runtime { get; }

    public ContainerManager(string root, string runRoot, string? runtimePath = null)
    {
        Store = new ContainerStore(root, runRoot);
        Runtime = new RuntimeClient(RuntimeClient.Locate(runtimePath), Store.RuntimeRoot);
    }

    // ------------------------------------------------------------------ create

    /// <summary>Creates a container from a request in docker's shape: <see cref="ContainerRecord.Config"/>
    /// (with Config.Image, or <see cref="ContainerRecord.Rootfs"/> for a directory) and
    /// <see cref="ContainerRecord.HostConfig"/>. The image must be in the store (NotFound otherwise:
    /// pulling is the caller's choice). Writes the record, the /etc files and the bundle
    /// (spec = <paramref name="baseSpec"/> or the default, with docker's defaults and the request applied).</summary>
    public ContainerRecord Create(ContainerRecord c, Spec? baseSpec = null)
    {
        ContainerImage? image = null;
        if (c.Rootfs.Length > 0)
        {
            c.Rootfs = System.IO.Path.GetFullPath(c.Rootfs);
            if (!Directory.Exists(c.Rootfs)) throw EngineException.Invalid($"rootfs {c.Rootfs}: no such directory");
            c.Image = "";
            c.ImageLayer = null;
        }
        else
        {
            if (c.Config.Image.Length == 0) throw EngineException.Invalid("an image (or a rootfs directory) is required");
            image = ContainerImages.Resolve(Store.Root, c.Config.Image);
            c.Image = image.Id;
            c.ImageLayer = image.TopLayer;
        }
        ContainerSetup.Complete(c, image is null ? null : image.Config ?? new(), Store.Root);
        Networking.ContainerNetworking.Prepare(c, image?.Config, Store);
        foreach (var m in c.Mounts.Where(m => m.Type == "bind"))
            if (!Path.Exists(m.Source)) throw EngineException.Invalid($"bind source path does not exist: {m.Source}");
        c.Id = ContainerStore.NewId();
        if (c.Name.Length == 0) c.Name = "/" + NameGenerator.Next();
        if (!c.Name.StartsWith('/')) c.Name = "/" + c.Name;
        if (!ContainerStore.ValidName(c.BareName))
            throw EngineException.Invalid($"invalid container name \"{c.BareName}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        if (c.Config.Hostname.Length == 0) c.Config.Hostname = c.ShortId;
        Timing.Mark("engine: create");
        c.Created = JsonFileLog.FormatTime(DateTime.UtcNow);
        var dir = Store.Dir(c.Id);
        c.LogPath = Path.Combine(dir, c.Id + "-json.log");
        c.Driver = "rootfs";
        Directory.CreateDirectory(Store.ContainersDir);
        Directory.CreateDirectory(dir);
        try
        {
            if (c.ImageLayer is not null)
            {
                // A writable snapshot on top of the image's layers, mounted at <container dir>/rootfs.
                var snapshots = Snapshots();
                c.Driver = snapshots.Driver;
                c.Rootfs = Path.Combine(dir, "rootfs");
                snapshots.Prepare(c.Id, c.ImageLayer);
                MountRootfs(c);
            }
            Volumes.ContainerVolumes.Prepare(c, Store.Root);
            SpecBuilder.EnsureWorkdir(c.Rootfs, c.Config.WorkingDir);
            SpecBuilder.WriteEtcFiles(c, dir);
            Networking.ContainerNetworking.WriteEtcFiles(c, Store.Root);
            Timing.Mark("engine: etc files");
            var spec = SpecBuilder.Build(baseSpec ?? DefaultSpec.Create(), c, dir);
            if (c.HostConfig.Init == true) InitProcess.Apply(spec, InitProcess.Ensure(Store.Root));
            Timing.Mark("engine: spec built");
            Directory.CreateDirectory(Store.BundleDir(c.Id));
            var bytes = SpecJson.Serialize(spec);
            Timing.Mark("engine: spec serialized");
            ContainerStore.WriteAtomic(Path.Combine(Store.BundleDir(c.Id), "config.json"), bytes, durable: !c.HostConfig.AutoRemove);
            Store.Add(c);
            Events.ContainerEvents.Emit(Store.Root, c, "create");
            Timing.Mark("engine: created");
        }
        catch
        {
            Volumes.ContainerVolumes.RemoveAnonymous(c, Store.Root);
            Store.ReleaseRootfs(c.Id);
            try { Directory.Delete(dir, true); } catch (IOException) { }
            throw;
        }
        return c;
    }

    ISnapshotter Snapshots() => OverlaySnapshotter.Create(Store.Root);

    /// <summary>Mounts the container's snapshot at its rootfs unless it is mounted already (after a
    /// reboot the mount is gone while the snapshot stays).</summary>
    public void MountRootfs(ContainerRecord c)
    {
        if (c.ImageLayer is null) return;
        Directory.CreateDirectory(c.Rootfs);
        if (MountInfo.IsMountPoint(c.Rootfs)) return;
        SnapshotMounter.Mount(Snapshots().Mounts(c.Id), c.Rootfs);
    }

    // ------------------------------------------------------------------ start

    /// <summary>Starts the container's monitor and waits until the container runs (or failed to).
    /// <paramref name="hold"/>: the monitor keeps the output for the attach that follows.</summary>
    public int Start(string id, bool hold)
    {
        int rfd, shimPid;
        using (Store.Lock(id))
        {
            var c = Store.Load(id);
            if (ReconcileLocked(c)) Store.Save(c);
            if (c.State.Running) return c.State.Pid;
            c.ManuallyStopped = null;
            MountRootfs(c);
            if (c.Pod is not null) new Pods.PodManager(this).PrepareStart(c);
            if (c.Monitor is not null) throw new EngineException(ErrorKind.FailedPrecondition, $"container {c.BareName} is being started");
            // The run dir exists before the record names the monitor, so a concurrent Get never
            // takes the monitor that is starting for a dead one (MonitorAlive checks the dir).
            Directory.CreateDirectory(Store.RunDir(id));
            int* fds = stackalloc int[2];
            if (pipe2(fds, O_CLOEXEC) != 0) throw SyscallException.Last("pipe2");
            rfd = fds[0];
            using var w = new Fd(fds[1]);
            using var devnull = RuntimeClient.DevNull();
            // With BERTH_TIMING=1 the monitor's marks go to the caller's stderr.
            var errFd = Timing.Enabled ? 2 : devnull.Value;
            var argv = new List<string> { "berth-shim", "--root", Store.Root, "--runroot", Store.RunRoot, "--runtime", Runtime.Path, "--id", id };
            if (hold) argv.Add("--hold");
            var env = RuntimeClient.ChildEnv();
            // A small gen0 budget for the monitor's .NET phases (start-up, resume after an exit, health
            // checks): their peak memory, 100 starts at once. Hex, without 0x: NativeAOT ignores a value it cannot parse.
            env.Add("DOTNET_GCgen0size=40000");
            // Tuning/measurement hook: BERTH_SHIM_DOTNET_X=V in the caller's environment becomes DOTNET_X=V in the monitor's.
            foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
                if (e.Key is string k && k.StartsWith("BERTH_SHIM_DOTNET_", StringComparison.Ordinal))
                {
                    var name = "DOTNET_" + k["BERTH_SHIM_DOTNET_".Length..];
                    env.RemoveAll(v => v.StartsWith(name + "=", StringComparison.Ordinal));
                    env.Add($"{name}={e.Value}");
                }
            shimPid = Spawn.Start(Environment.ProcessPath!, argv, env, [(devnull.Value, 0), (devnull.Value, 1), (errFd, 2), (w.Value, 3)], newSession: true);
            c.Monitor = new MonitorInfo { Pid = shimPid, StartTime = ProcStat.Read(shimPid)?.StartTime ?? 0 };
            Store.Save(c);
            Timing.Mark("engine: monitor spawned");
        }
        var r = new Fd(rfd);
        // With hold, the pipe stays open until the attach: the monitor keeps the output until then
        // (and gives up holding when this end closes, e.g. the CLI was killed). It is registered before the
        // answer is read: an attach already connected (the Docker API's) may get its first frame first.
        var held = hold ? _heldStarts[id] = new HeldStart(r) : null;
        var line = ReadLine(r.Value);
        Timing.Mark("engine: monitor answered");
        var ok = line is not null && line.StartsWith("ok ", StringComparison.Ordinal);
        if (held is null) r.Dispose();
        else lock (held)
        {
            held.Answered = true;
            if (held.Attached || !ok)
            {
                _heldStarts.TryRemove(new KeyValuePair<string, HeldStart>(id, held));
                r.Dispose();
            }
        }
        if (line is null)
        {
            int st;
            waitpid(shimPid, &st, WNOHANG);
            var log = Path.Combine(Store.RunDir(id), "shim.log");
            var detail = File.Exists(log) ? File.ReadLines(log).FirstOrDefault() : null;
            Reconcile(id);
            throw new EngineException(ErrorKind.Internal, $"container {id[..12]}: monitor exited before the container started{(detail is null ? "" : ": " + detail)}");
        }
        // the monitor wrote the "start" event (before it could write "die")
        if (line.StartsWith("ok ", StringComparison.Ordinal)) return int.Parse(line[3..]);
        // "error CODE MESSAGE"
        var parts = line.Split(' ', 3);
        var code = int.TryParse(parts.ElementAtOrDefault(1), out var cc) ? cc : 125;
        throw new EngineException(ErrorKind.FailedPrecondition, parts.ElementAtOrDefault(2) ?? line, code);
    }

    readonly System.Collections.Concurrent.ConcurrentDictionary<string, HeldStart> _heldStarts = new();

    /// <summary>The starter's end of a held start: closed once the monitor answered and an attach took
    /// the output over, whichever comes last.</summary>
    sealed class HeldStart(Fd pipe)
    {
        public readonly Fd Pipe = pipe;
        public bool Answered, Attached;
    }

    static string? ReadLine(int fd)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            int n;
            try { n = Sys.Read(fd, one); }
            catch (SyscallException) { return null; }
            if (n == 0) return bytes.Count > 0 ? Encoding.UTF8.GetString(bytes.ToArray()) : null;
            if (one[0] == '\n') return Encoding.UTF8.GetString(bytes.ToArray());
            bytes.Add(one[0]);
        }
    }

    // ------------------------------------------------------------------ reconcile

    /// <summary>Loads a container and brings its record in line with the kernel.</summary>
    public ContainerRecord Get(string nameOrId)
    {
        var id = Store.Resolve(nameOrId);
        var c = Store.Load(id);
        if (c.Monitor is not null && !MonitorAlive(c)) return Reconcile(id);
        return c;
    }

    public ContainerRecord Reconcile(string id)
    {
        using (Store.Lock(id))
        {
            var c = Store.Load(id);
            if (ReconcileLocked(c)) Store.Save(c);
            return c;
        }
    }

    bool MonitorAlive(ContainerRecord c) =>
        c.Monitor is { Pid: > 0 } m && Directory.Exists(Store.RunDir(c.Id))
        && ProcStat.Read(m.Pid) is { } s && s.StartTime == m.StartTime && s.State is not ('Z' or 'X');

    /// <summary>The monitor is gone (killed, or a reboot emptied the runroot): whatever is left of
    /// the container is killed and deleted from the runtime, and it is recorded as exited.</summary>
    bool ReconcileLocked(ContainerRecord c)
    {
        if (c.Monitor is null || MonitorAlive(c)) return false;
        var killed = false;
        if (c.State.Pid > 0 && ProcStat.Read(c.State.Pid) is { } s && s.StartTime == c.Monitor.InitStartTime && s.State != 'Z')
            killed = true;
        using (var devnull = RuntimeClient.DevNull())
            Runtime.Run(["delete", "--force", c.Id], devnull.Value, devnull.Value, devnull.Value);
        try { Directory.Delete(Store.RunDir(c.Id), true); } catch (DirectoryNotFoundException) { }
        // its volumes' mounts go with their last user
        try { Volumes.VolumeMounts.Release(c, Store.Root, Store.RunRoot); }
        catch (Exception e) when (e is EngineException or SyscallException or IOException) { }
        var wasRunning = c.State.Running || c.State.Status is "running" or "paused";
        c.Monitor = null;
        ReleaseNetworks(c);
        if (wasRunning)
        {
            c.State.Status = "exited";
            c.State.ExitCode = killed ? 137 : 255;
            c.State.Error = "container monitor exited unexpectedly";
            c.State.FinishedAt = JsonFileLog.FormatTime(DateTime.UtcNow);
        }
        c.State.Running = false; c.State.Paused = false; c.State.Pid = 0;
        return true;
    }

    /// <summary>Endpoints left by a container whose monitor is gone (killed, or a reboot) are released.</summary>
    void ReleaseNetworks(ContainerRecord c)
    {
        if (!Networking.ContainerNetworking.IsNetworked(c.HostConfig)) return;
        Networking.ContainerNetworking.Release(c.Id, Store.Root);
        Networking.ContainerNetworking.ClearRuntime(c.NetworkSettings);
    }

    public List<ContainerRecord> List()
    {
        var list = new List<ContainerRecord>();
        foreach (var loaded in Store.ListRecords())
        {
            try
            {
                var c = loaded;
                if (c.Monitor is not null && !MonitorAlive(c)) c = Reconcile(c.Id);
                list.Add(c);
            }
            catch (EngineException) { /* removed meanwhile */ }
        }
        return list.OrderByDescending(c => c.Created, StringComparer.Ordinal).ToList();
    }

    // ------------------------------------------------------------------ talking to the monitor

    Fd? Connect(ContainerRecord c) => MonitorProtocol.TryConnect(Store.RunDir(c.Id), "ctl.sock");

    static void SendLine(Fd fd, string line) => Sys.WriteAll(fd.Value, Encoding.UTF8.GetBytes(line + "\n"), "monitor socket");

    /// <summary>Sends a request and reads frames until an exit (returns the code) or ok/error.</summary>
    int? Request(ContainerRecord c, string line, Action? whileWaiting = null)
    {
        using var fd = Connect(c);
        if (fd is null) return null;
        SendLine(fd, line);
        whileWaiting?.Invoke();
        while (MonitorProtocol.ReadFrame(fd.Value) is { } f)
        {
            switch (f.Type)
            {
                case MonitorProtocol.Exit: return int.Parse(Encoding.ASCII.GetString(f.Payload));
                case MonitorProtocol.Ok: return 0;
                case MonitorProtocol.Error: throw new EngineException(ErrorKind.FailedPrecondition, $"container {c.BareName}: {Encoding.UTF8.GetString(f.Payload)}");
            }
        }
        return null;
    }

    /// <summary>Blocks until the container is not running; returns its exit code.</summary>
    public int Wait(string nameOrId)
    {
        var c = Get(nameOrId);
        int? code = null;
        if (c.State.Running || c.Monitor is not null) code = Request(c, "wait");
        // removed on exit (--rm): the monitor's answer is all that is left
        if (code is { } gone && !Store.Exists(c.Id)) return gone;
        return Reconcile(c.Id).State.ExitCode;
    }

    public void Kill(string nameOrId, string signal)
    {
        var c = Get(nameOrId);
        try { Signals.Parse(signal); }
        catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
        if (!c.State.Running) throw new EngineException(ErrorKind.FailedPrecondition, $"cannot kill container {c.BareName}: container is not running");
        var number = Signals.Parse(signal);
        // as dockerd: the event before the signal, so a SIGKILL's "kill" comes before the "die"
        KillEvent(c, number);
        if (Request(c, "kill " + signal) is null) throw new EngineException(ErrorKind.FailedPrecondition, $"cannot kill container {c.BareName}: container is not running");
        // as dockerd: a paused container is resumed, so the signal is delivered
        if (c.State.Paused)
        {
            Unpause(c);
            Store.Update(c.Id, r => { r.State.Paused = false; if (r.State.Running) r.State.Status = "running"; });
        }
        // As dockerd: SIGKILL cannot be caught, so the kill returns once the exit is recorded (a
        // following inspect or start sees the container stopped); other signals return at once.
        if (number == 9) WaitForExitRecorded(c);
    }

    void KillEvent(ContainerRecord c, int signal) =>
        Events.ContainerEvents.Emit(Store.Root, c, "kill", ("signal", signal.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Waits (up to 5 s) until the monitor has recorded the container's exit and is gone.</summary>
    void WaitForExitRecorded(ContainerRecord c)
    {
        for (var i = 0; i < 500 && Store.Exists(c.Id) && Store.Load(c.Id).Monitor is not null; i++)
        {
            var cur = Store.Load(c.Id);
            if (!MonitorAlive(cur)) { Reconcile(c.Id); break; }
            Thread.Sleep(10);
        }
    }

    /// <summary>Stop signal, then SIGKILL after the timeout (the monitor keeps the clock, so the stop
    /// completes even if this CLI dies).</summary>
    public void Stop(string nameOrId, int? timeout)
    {
        var c = Get(nameOrId);
        if (!c.State.Running) return;
        Store.Update(c.Id, r => r.ManuallyStopped = true);
        var t = timeout ?? c.Config.StopTimeout ?? 10;
        var sig = c.Config.StopSignal.Length > 0 ? c.Config.StopSignal : "SIGTERM";
        // as dockerd: a "kill" event for the stop signal, and one for the SIGKILL when the timeout passes
        // (the monitor sends that one at the same moment; its "die" comes after it has reaped the process)
        int number;
        try { number = Signals.Parse(sig); }
        catch (ArgumentException) { number = 15; }
        KillEvent(c, t <= 0 ? 9 : number);
        var answered = 0;
        using (var escalate = t <= 0 ? null : new Timer(_ => { if (Interlocked.Exchange(ref answered, 1) == 0) KillEvent(c, 9); }, null, t * 1000L, Timeout.Infinite))
        {
            Request(c, $"stop {sig} {t}", c.State.Paused ? () => Unpause(c) : null);
            Interlocked.Exchange(ref answered, 1);
        }
        WaitForExitRecorded(c);
        Events.ContainerEvents.Emit(Store.Root, c, "stop");
    }

    void Unpause(ContainerRecord c)
    {
        using var devnull = RuntimeClient.DevNull();
        Runtime.Run(["resume", c.Id], devnull.Value, devnull.Value, devnull.Value);
    }

    /// <param name="volumes">`rm -v`: the container's anonymous volumes go too.</param>
    public void Remove(string nameOrId, bool force, bool volumes = false)
    {
        var c = Get(nameOrId);
        if (c.State.Running)
        {
            if (!force)
                throw new EngineException(ErrorKind.FailedPrecondition,
                    $"cannot remove container \"{c.BareName}\": container is running: stop the container before removing or force remove");
            KillEvent(c, 9);
            Request(c, "stop SIGKILL 0", c.State.Paused ? () => Unpause(c) : null);
            for (var i = 0; i < 500 && Store.Exists(c.Id) && Store.Load(c.Id).Monitor is { } m; i++)
            {
                if (!MonitorAlive(Store.Load(c.Id))) break;
                Thread.Sleep(10);
            }
        }
        if (!Store.Exists(c.Id)) return; // --rm removed it already
        using (Store.Lock(c.Id))
        {
            var cur = Store.Load(c.Id);
            ReconcileLocked(cur);
            using (var devnull = RuntimeClient.DevNull())
                Runtime.Run(["delete", "--force", c.Id], devnull.Value, devnull.Value, devnull.Value);
            ReleaseNetworks(cur);
        }
        Store.Remove(c.Id, c.BareName);
        if (volumes) Volumes.ContainerVolumes.RemoveAnonymous(c, Store.Root);
        Events.ContainerEvents.Emit(Store.Root, c, "destroy");
    }

    public void Pause(string nameOrId, bool pause)
    {
        var c = Get(nameOrId);
        // dockerd's wording: the container by its full id
        if (!c.State.Running) throw new EngineException(ErrorKind.FailedPrecondition, $"Container {c.Id} is not running");
        if (pause && c.State.Paused) throw new EngineException(ErrorKind.FailedPrecondition, $"Container {c.Id} is already paused");
        if (!pause && !c.State.Paused) throw new EngineException(ErrorKind.FailedPrecondition, $"Container {c.Id} is not paused");
        var log = Path.Combine(Store.RunDir(c.Id), "pause.log");
        using (var devnull = RuntimeClient.DevNull())
        {
            var rc = Runtime.Run([pause ? "pause" : "resume", c.Id], devnull.Value, devnull.Value, devnull.Value, log);
            if (rc != 0) throw new EngineException(ErrorKind.FailedPrecondition, $"container {c.BareName}: {RuntimeClient.LastError(log) ?? "runtime failed"}");
        }
        Store.Update(c.Id, r => { r.State.Paused = pause; r.State.Status = pause ? "paused" : "running"; });
        Events.ContainerEvents.Emit(Store.Root, c, pause ? "pause" : "unpause");
    }

    public void Rename(string nameOrId, string newName)
    {
        var c = Get(nameOrId);
        if (!ContainerStore.ValidName(newName)) throw EngineException.Invalid($"invalid container name \"{newName}\"");
        Store.ReserveName(newName, c.Id);
        try { Store.Update(c.Id, r => r.Name = "/" + newName, durable: true); }
        catch { Store.ReleaseName(newName, c.Id); throw; }
        Store.ReleaseName(c.BareName, c.Id);
        var oldName = c.Name;
        c.Name = "/" + newName;
        Events.ContainerEvents.Emit(Store.Root, c, "rename", ("oldName", oldName));
    }

    /// <summary>Runs the runtime with the caller's stdio (exec, top): returns its exit status and the
    /// error it logged, if any.</summary>
    public (int Status, string? Error) RunAttached(ContainerRecord c, List<string> args, bool stdin)
    {
        var log = Path.Combine(Store.RunDir(c.Id), $"cmd-{Environment.ProcessId}.log");
        try
        {
            using var devnull = RuntimeClient.DevNull();
            var rc = Runtime.Run(args, stdin ? 0 : devnull.Value, 1, 2, log);
            return (rc, rc != 0 ? RuntimeClient.LastError(log) : null);
        }
        finally { File.Delete(log); }
    }

    /// <summary>`exec` with the caller's stdio (<paramref name="args"/> from <see cref="ExecArgs"/>): emits
    /// exec_create, exec_start and (unless detached) exec_die; returns the exit code (126, as dockerd's,
    /// when the runtime could not start the process).</summary>
    public int Exec(ContainerRecord c, IReadOnlyList<string> command, List<string> args, bool stdin, bool detach)
    {
        var execId = ContainerStore.NewId();
        Events.ObjectEvents.ExecCreate(Store.Root, c, execId, command);
        Events.ObjectEvents.ExecStart(Store.Root, c, execId, command);
        int status;
        string? error;
        try { (status, error) = RunAttached(c, args, stdin); }
        finally { ForgetExecArgs(args); }
        // the runtime printed its error on the caller's stderr already
        if (error is not null) status = ExecFailedCode;
        if (!detach || status != 0) Events.ObjectEvents.ExecDie(Store.Root, c, execId, status);
        return status;
    }

    /// <summary>What <see cref="Attach"/> returns when the caller typed the detach keys.</summary>
    public const int Detached = -1;

    /// <summary>Attaches the caller's stdio to the running container until it exits (returns its exit
    /// code), the monitor goes away (null) or the caller types <paramref name="detachKeys"/> on stdin
    /// (<see cref="Detached"/>; the container runs on). <paramref name="keepStdin"/>: the end of the
    /// caller's stdin does not close the container's (docker's StdinOnce=false).</summary>
    public int? Attach(ContainerRecord c, bool stdin, bool tty, Action<int>? onConnected = null, byte[]? detachKeys = null, bool keepStdin = false)
    {
        using var fd = OpenAttach(c, stdin, stdout: true, stderr: true, keepStdin);
        if (fd is null) return null;
        onConnected?.Invoke(fd.Value);
        var detached = 0;
        if (stdin)
        {
            var sock = fd.Value;
            new Thread(() =>
            {
                var buf = new byte[32 * 1024];
                var escape = new DetachKeyScanner(detachKeys);
                try
                {
                    while (true)
                    {
                        var n = Sys.Read(0, buf);
                        if (n <= 0) break;
                        var (pass, hit) = escape.Feed(buf.AsSpan(0, n));
                        if (pass.Length > 0) Sys.WriteAll(sock, pass, "monitor socket");
                        if (hit)
                        {
                            Volatile.Write(ref detached, 1);
                            shutdown(sock, 2); // SHUT_RDWR: the frame loop ends too
                            return;
                        }
                    }
                }
                catch (SyscallException) { }
                shutdown(sock, SHUT_WR);
            }) { IsBackground = true }.Start();
        }
        while (MonitorProtocol.ReadFrame(fd.Value) is { } f && Volatile.Read(ref detached) == 0)
        {
            switch (f.Type)
            {
                case MonitorProtocol.Stdout: WriteOut(1, f.Payload); break;
                case MonitorProtocol.Stderr: WriteOut(2, f.Payload); break;
                case MonitorProtocol.Exit: Timing.Mark("engine: exit received"); return int.Parse(Encoding.ASCII.GetString(f.Payload));
            }
        }
        return Volatile.Read(ref detached) == 1 ? Detached : null;
    }

    /// <summary>Connects an attach to the container's monitor: the returned socket carries its
    /// output frames (then the exit frame) and takes its stdin; null when the monitor is gone.</summary>
    public Fd? OpenAttach(ContainerRecord c, bool stdin, bool stdout, bool stderr, bool keepStdin = false)
    {
        var fd = Connect(c);
        if (fd is null) return null;
        SendLine(fd, $"attach {(stdin ? 1 : 0)} {(stdout ? 1 : 0)} {(stderr ? 1 : 0)}{(keepStdin ? " keep" : "")}");
        var first = MonitorProtocol.ReadFrame(fd.Value);
        if (_heldStarts.TryRemove(c.Id, out var held))
            lock (held)
            {
                held.Attached = true;
                if (held.Answered) held.Pipe.Dispose();
            }
        if (first is not { Type: MonitorProtocol.Ok }) { fd.Dispose(); return null; }
        return fd;
    }

    /// <summary>The runtime's `exec` arguments for a process in a running container (docker exec's
    /// options: user defaults to the container's, env added to the container's). As containerd and
    /// dockerd do, the whole process goes to the runtime as a process file (`exec --process`): the
    /// user's own groups replace the container process's (runc's --additional-gids would add to
    /// them, so `-u nobody` kept group 0). The caller removes the file with
    /// <see cref="ForgetExecArgs"/> once the runtime has returned.</summary>
    public List<string> ExecArgs(ContainerRecord rec, IReadOnlyList<string> command, IEnumerable<string> env, string? user, string? workdir, bool tty, bool detach,
        Berth.Oci.Runtime.Box? consoleSize = null)
    {
        if (!rec.State.Running) throw new EngineException(ErrorKind.FailedPrecondition, $"container {rec.BareName} is not running");
        if (rec.State.Paused) throw new EngineException(ErrorKind.FailedPrecondition, $"container {rec.BareName} is paused, unpause the container before exec");
        if (command.Count == 0) throw EngineException.Invalid("no exec command specified");
        return ExecArgs(Store, rec, command, env, user, workdir, tty, detach, consoleSize);
    }

    /// <summary><see cref="ExecArgs(ContainerRecord, IReadOnlyList{string}, IEnumerable{string}, string?, string?, bool, bool, Berth.Oci.Runtime.Box?)"/>
    /// without the checks of the container's state: the one way to build an exec, also for the monitor's
    /// health checks (which run while the monitor knows the container runs).</summary>
    public static List<string> ExecArgs(ContainerStore store, ContainerRecord rec, IReadOnlyList<string> command, IEnumerable<string> env, string? user, string? workdir, bool tty, bool detach,
        Berth.Oci.Runtime.Box? consoleSize = null)
    {
        Berth.Oci.Runtime.Spec spec;
        try { spec = Berth.Oci.Runtime.SpecJson.ParseSpecWithoutSeccomp(File.ReadAllBytes(Path.Combine(store.BundleDir(rec.Id), "config.json"))); }
        catch (Exception e) when (e is IOException or Berth.Oci.Runtime.SpecException) { throw new EngineException(ErrorKind.FailedPrecondition, $"container {rec.BareName}: its runtime config cannot be read: {e.Message}"); }
        var basep = spec.Process ?? new Berth.Oci.Runtime.Process();
        Berth.Oci.Runtime.User u;
        // dockerd resolves an exec's user itself: its error is the exec's failure (126), not the engine's
        try { u = SpecBuilder.ResolveUser(rec.Rootfs, string.IsNullOrEmpty(user) ? rec.Config.User : user); }
        catch (EngineException e) when (e.Kind == ErrorKind.InvalidArgument) { throw new EngineException(ErrorKind.InvalidArgument, e.Message, ExecFailedCode); }
        var envs = basep.Env is null ? new List<string>() : [.. basep.Env];
        // dockerd's exec environment: TERM=xterm with a terminal and none without, whatever the container
        // was created with, unless the container's own env sets TERM
        if (!rec.Config.Env.Any(e => e.StartsWith("TERM=", StringComparison.Ordinal)))
        {
            var at = envs.FindIndex(e => e.StartsWith("TERM=", StringComparison.Ordinal));
            if (at >= 0) envs.RemoveAt(at);
            else at = envs.FindIndex(e => e.StartsWith("HOSTNAME=", StringComparison.Ordinal)) + 1;
            if (tty) envs.Insert(at > 0 ? at : envs.Count, "TERM=xterm");
        }
        foreach (var e in env.Where(e => e.Length > 0))
        {
            var key = e.Split('=')[0] + "=";
            envs.RemoveAll(x => x.StartsWith(key, StringComparison.Ordinal));
            envs.Add(e);
        }
        var proc = new Berth.Oci.Runtime.Process
        {
            Args = [.. command], Env = envs, Cwd = string.IsNullOrEmpty(workdir) ? basep.Cwd : workdir, Terminal = tty, ConsoleSize = tty ? consoleSize : null,
            User = new Berth.Oci.Runtime.User { Uid = u.Uid, Gid = u.Gid, AdditionalGids = u.AdditionalGids, Umask = basep.User.Umask },
            Capabilities = basep.Capabilities, NoNewPrivileges = basep.NoNewPrivileges, Rlimits = basep.Rlimits,
        };
        if (ExecCheck.Problem(rec.State.Pid, proc) is { } problem)
            throw new EngineException(ErrorKind.InvalidArgument, ExecFailure(problem), ExecFailedCode);
        var file = Path.Combine(store.RunDir(rec.Id), $"exec-{ContainerStore.NewId()[..16]}.json");
        File.WriteAllBytes(file, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(proc, Berth.Oci.Runtime.SpecJsonContext.Default.Process));
        var args = new List<string> { "exec", "--process", file };
        if (tty) args.Add("--tty");
        if (detach) args.Add("--detach");
        args.Add(rec.Id);
        return args;
    }

    /// <summary>dockerd's exit code for every exec whose process could not be started.</summary>
    public const int ExecFailedCode = 126;

    /// <summary>A runtime's error starting an exec's process, in dockerd's words.</summary>
    public static string ExecFailure(string runtimeError) =>
        "OCI runtime exec failed: exec failed: unable to start container process: " + runtimeError + ": unknown"
        // dockerd's hint for any start error that says "not a directory"
        + (runtimeError.Contains("not a directory", StringComparison.Ordinal) ? ": Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type" : "");

    /// <summary>Removes the process file of <see cref="ExecArgs"/> (the runtime has read it).</summary>
    public static void ForgetExecArgs(List<string> args)
    {
        var i = args.IndexOf("--process");
        if (i >= 0 && i + 1 < args.Count) { try { File.Delete(args[i + 1]); } catch (IOException) { } }
    }

    /// <summary>Runs the runtime with its output captured (top through the API): exit status,
    /// stdout, and the error it logged, if any.</summary>
    public (int Status, string Output, string? Error) RunCaptured(ContainerRecord c, List<string> args)
    {
        var log = Path.Combine(Store.RunDir(c.Id), $"cmd-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}.log");
        var outPath = log + ".out";
        try
        {
            using var devnull = RuntimeClient.DevNull();
            int rc;
            using (var o = Sys.Open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0x180))
                rc = Runtime.Run(args, devnull.Value, o.Value, devnull.Value, log);
            return (rc, File.ReadAllText(outPath), rc != 0 ? RuntimeClient.LastError(log) : null);
        }
        finally { File.Delete(log); File.Delete(outPath); }
    }

    static void WriteOut(int fd, byte[] data)
    {
        try { Sys.WriteAll(fd, data, "output"); }
        catch (SyscallException) { }
    }

    public void Resize(ContainerRecord c, ushort rows, ushort cols) => Request(c, $"resize {rows} {cols}");

    public void SignalProxy(ContainerRecord c, int sig)
    {
        try { Request(c, "kill " + sig); } catch (EngineException) { }
    }
}
