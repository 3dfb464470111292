using System.Collections.Concurrent;
using Berth.Engine.Containers;
using Berth.Linux;
using Microsoft.AspNetCore.Http;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.DockerApi;

public sealed partial class DockerApiHandler
{
    /// <summary>An exec instance (POST /containers/ID/exec), run by /exec/ID/start.</summary>
    sealed class ExecSession
    {
        public required string Id;
        public required string ContainerId;
        public required ExecCreateBody Body;
        public volatile bool Running;
        public int? ExitCode;
        public int Pid;
        public Fd? PtyMaster;
        public int Started;
    }

    readonly ConcurrentDictionary<string, ExecSession> _execs = new();

    async Task CreateExec(HttpContext ctx, string[] a)
    {
        var body = await ReadJsonAsync(ctx, DockerJson.Default.ExecCreateBody) ?? throw ApiError.BadRequest("exec config cannot be empty");
        if (body.Cmd is not { Count: > 0 }) throw ApiError.BadRequest("No exec command specified");
        DetachKeysOf(body);
        var c = await Blocking(() => Containers.Get(a[0]));
        if (!c.State.Running) throw new ApiError(409, $"Container {c.Id} is not running");
        if (c.State.Paused) throw new ApiError(409, $"Container {a[0]} is paused, unpause the container before exec");
        var id = ContainerStore.NewId();
        _execs[id] = new ExecSession { Id = id, ContainerId = c.Id, Body = body };
        Berth.Engine.Events.ObjectEvents.ExecCreate(Containers.Store.Root, c, id, body.Cmd);
        await WriteJsonAsync(ctx, 201, new IdResponse { Id = id }, DockerJson.Default.IdResponse);
    }

    /// <summary>The exec's detach sequence (its DetachKeys, else docker's ctrl-p,ctrl-q), refused in
    /// dockerd's words when malformed.</summary>
    static byte[] DetachKeysOf(ExecCreateBody b)
    {
        try { return DetachKeys.Parse(string.IsNullOrEmpty(b.DetachKeys) ? DetachKeys.Default : b.DetachKeys); }
        catch (EngineException) { throw ApiError.BadRequest($"Invalid escape keys ({b.DetachKeys}) provided"); }
    }

    ExecSession GetExec(string id) =>
        _execs.TryGetValue(id, out var e) ? e : throw ApiError.NotFound($"No such exec instance: {id}");

    async Task InspectExec(HttpContext ctx, string[] a)
    {
        var e = GetExec(a[0]);
        var b = e.Body;
        var r = new ExecInspect
        {
            ID = e.Id, ContainerID = e.ContainerId, Running = e.Running, ExitCode = e.ExitCode, Pid = e.Pid,
            OpenStdin = b.AttachStdin, OpenStdout = b.AttachStdout, OpenStderr = b.AttachStderr, CanRemove = false,
            DetachKeys = b.DetachKeys ?? "",
            ProcessConfig = { entrypoint = b.Cmd![0], arguments = b.Cmd.Skip(1).ToList(), tty = b.Tty, privileged = b.Privileged, user = b.User ?? "" },
        };
        await WriteJsonAsync(ctx, 200, r, DockerJson.Default.ExecInspect);
    }

    async Task ResizeExec(HttpContext ctx, string[] a)
    {
        var e = GetExec(a[0]);
        var h = QueryInt(ctx, "h") ?? 0;
        var w = QueryInt(ctx, "w") ?? 0;
        if (h is < 0 or > ushort.MaxValue || w is < 0 or > ushort.MaxValue) throw ApiError.BadRequest("invalid terminal size");
        if (e.PtyMaster is { } m && !m.IsClosed) Pty.SetSize(m.Value, (ushort)h, (ushort)w);
        await NoContent(ctx, 200);
    }

    /// <summary>Runs the exec through the runtime (as `berth exec` does) with its stdio on pipes; with
    /// Tty, the runtime makes the process's terminal (`exec --tty --console-socket`, as containerd asks
    /// runc: the pty of the container's devpts, the process's controlling terminal) and hands the
    /// master here. The hijacked connection carries them.</summary>
    async Task StartExec(HttpContext ctx, string[] a)
    {
        var e = GetExec(a[0]);
        var start = await ReadJsonAsync(ctx, DockerJson.Default.ExecStartBody) ?? new ExecStartBody();
        if (Interlocked.Exchange(ref e.Started, 1) == 1) throw new ApiError(409, $"exec instance {e.Id} has already been started");
        var c = await Blocking(() => Containers.Get(e.ContainerId));
        var b = e.Body;
        var tty = b.Tty;
        var detachKeys = DetachKeysOf(b);
        List<string> args;
        try { args = Containers.ExecArgs(c, b.Cmd!, b.Env ?? [], b.User, b.WorkingDir, tty, detach: false, ConsoleSize(start.ConsoleSize ?? b.ConsoleSize)); }
        catch (EngineException ex) when (ex.ExitCode == ContainerManager.ExecFailedCode)
        {
            await FailExec(ctx, e, c, start.Detach, tty, ex.Message);
            return;
        }
        var log = Path.Combine(Containers.Store.RunDir(c.Id), $"exec-{e.Id[..12]}.log");

        using var devnull = RuntimeClient.DevNull();
        Fd? stdinW = null, stdoutR = null, stderrR = null;
        int childIn = devnull.Value, childOut = devnull.Value, childErr = devnull.Value;
        var toClose = new List<Fd>();
        Monitor.ConsoleSocket? console = null;
        if (tty)
        {
            console = Monitor.ConsoleSocket.In(Containers.Store.RunDir(c.Id), e.Id[..12]);
            args.InsertRange(args.Count - 1, ["--console-socket", console.Path]);
        }
        else
        {
            (childIn, stdinW) = b.AttachStdin && !start.Detach ? Pipe(out var r, toClose, readEndForChild: true) : (devnull.Value, null);
            (childOut, stdoutR) = b.AttachStdout && !start.Detach ? Pipe(out _, toClose, readEndForChild: false) : (devnull.Value, null);
            (childErr, stderrR) = b.AttachStderr && !start.Detach ? Pipe(out _, toClose, readEndForChild: false) : (devnull.Value, null);
        }
        int pid;
        try { pid = Containers.Runtime.Start(args, childIn, childOut, childErr, log); }
        catch { ContainerManager.ForgetExecArgs(args); console?.Dispose(); throw; }
        finally { foreach (var f in toClose) f.Dispose(); }
        e.Pid = pid;
        e.Running = true;
        Berth.Engine.Events.ObjectEvents.ExecStart(Containers.Store.Root, c, e.Id, b.Cmd!);
        string? startError = null;
        var waiter = Blocking(() =>
        {
            var status = Sys.Wait(pid);
            console?.Abandon();
            ContainerManager.ForgetExecArgs(args);
            if (status != 0 && RuntimeClient.LastError(log) is { } err) { status = ContainerManager.ExecFailedCode; startError = err; }
            try { File.Delete(log); } catch (IOException) { }
            e.ExitCode = status;
            e.Running = false;
            // as dockerd: an exec whose process never started has no exec_die
            if (startError is null) Berth.Engine.Events.ObjectEvents.ExecDie(Containers.Store.Root, c, e.Id, status);
            return status;
        });
        // the runtime sends the master once the process has its terminal (nothing if it failed first)
        if (console is not null)
        {
            using (console) e.PtyMaster = await Blocking(console.Receive);
        }
        if (start.Detach)
        {
            await NoContent(ctx, 200);
            _ = waiter.ContinueWith(_ => { e.PtyMaster?.Dispose(); }, TaskScheduler.Default);
            return;
        }
        var conn = await HijackAsync(ctx, tty);
        // not RequestAborted: a client without stdin half-closes, which Kestrel reports as an abort
        var ct = CancellationToken.None;
        var gate = new SemaphoreSlim(1, 1);
        // the client has gone (it detached, or closed the connection): with a TTY, as dockerd, the process
        // runs on and its terminal is still read (and dropped) until it exits
        var clientGone = false;
        var detached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task Pump(Fd fd, byte stream)
        {
            var buf = new byte[32 * 1024];
            while (true)
            {
                int n;
                try { n = await Blocking(() => Sys.Read(fd.Value, buf)); }
                catch (SyscallException) { break; } // EIO: the pty's last holder closed it
                if (n <= 0) break;
                if (Volatile.Read(ref clientGone)) continue;
                await gate.WaitAsync(ct);
                try { await WriteStreamAsync(conn, tty, stream, buf.AsMemory(0, n), ct); await conn.FlushAsync(ct); }
                catch (Exception ex) when (tty && ex is IOException or ObjectDisposedException) { Volatile.Write(ref clientGone, true); }
                finally { gate.Release(); }
            }
        }
        var input = (tty ? e.PtyMaster is not null : stdinW is not null) && b.AttachStdin ? Task.Run(async () =>
        {
            var buf = new byte[32 * 1024];
            var target = tty ? e.PtyMaster!.Value : stdinW!.Value;
            // with a TTY, as dockerd: the detach keys end the stream and leave the process running
            var escape = tty ? new DetachKeyScanner(detachKeys) : null;
            try
            {
                int n;
                while ((n = await conn.ReadAsync(buf, ct)) > 0)
                {
                    if (escape is null) { Sys.WriteAll(target, buf.AsSpan(0, n), "exec stdin"); continue; }
                    var (pass, hit) = escape.Feed(buf.AsSpan(0, n));
                    if (pass.Length > 0) Sys.WriteAll(target, pass, "exec stdin");
                    if (hit) { Volatile.Write(ref clientGone, true); detached.TrySetResult(); return; }
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or SyscallException or ObjectDisposedException) { }
            stdinW?.Dispose();
        }, CancellationToken.None) : Task.CompletedTask;
        var pumps = new List<Task>();
        if (tty && e.PtyMaster is not null) pumps.Add(Pump(e.PtyMaster, 1));
        if (stdoutR is not null) pumps.Add(Pump(stdoutR, 1));
        if (stderrR is not null) pumps.Add(Pump(stderrR, 2));
        // (a pty's master reads EIO once the process and its children closed the slave)
        var output = Task.WhenAll(pumps);
        if (await Task.WhenAny(output, detached.Task) == detached.Task)
        {
            Berth.Engine.Events.ContainerEvents.Emit(Containers.Store.Root, c, "exec_detach", ("execID", e.Id));
            await conn.DisposeAsync();
            _ = output.ContinueWith(_ => waiter, TaskScheduler.Default).Unwrap()
                .ContinueWith(_ => e.PtyMaster?.Dispose(), TaskScheduler.Default);
            return;
        }
        try
        {
            await output;
            await waiter;
            // the runtime could not start the process: dockerd writes its error on the stream's stdout
            if (startError is not null && !Volatile.Read(ref clientGone))
                await WriteStreamAsync(conn, tty, 1, System.Text.Encoding.UTF8.GetBytes(ContainerManager.ExecFailure(startError) + "\r\n"), ct);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            stdoutR?.Dispose(); stderrR?.Dispose(); e.PtyMaster?.Dispose();
            await conn.DisposeAsync();
        }
        _ = input;
    }

    /// <summary>An exec whose process cannot start (its command, working directory or user): as dockerd,
    /// exit code 126, exec_start without exec_die, and the error as the response (detached) or on the
    /// hijacked stream's stdout, the way docker's CLI prints it.</summary>
    async Task FailExec(HttpContext ctx, ExecSession e, ContainerRecord c, bool detach, bool tty, string message)
    {
        e.ExitCode = ContainerManager.ExecFailedCode;
        e.Running = false;
        Berth.Engine.Events.ObjectEvents.ExecStart(Containers.Store.Root, c, e.Id, e.Body.Cmd!);
        if (detach) throw new ApiError(400, message);
        var conn = await HijackAsync(ctx, tty);
        try
        {
            await WriteStreamAsync(conn, tty, 1, System.Text.Encoding.UTF8.GetBytes(message + "\r\n"), CancellationToken.None);
            await conn.FlushAsync(CancellationToken.None);
        }
        catch (IOException) { }
        finally { await conn.DisposeAsync(); }
    }

    /// <summary>Docker's ConsoleSize ([height, width]) as the process's consoleSize.</summary>
    static Berth.Oci.Runtime.Box? ConsoleSize(List<uint>? hw) =>
        hw is [var h, var w] && (h > 0 || w > 0) ? new Berth.Oci.Runtime.Box { Height = h, Width = w } : null;

    /// <summary>A pipe whose one end goes to the child (returned as the int) and other end stays here.</summary>
    static unsafe (int Child, Fd Ours) Pipe(out Fd childEnd, List<Fd> toClose, bool readEndForChild)
    {
        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw SyscallException.Last("pipe2");
        var r = new Fd(fds[0]);
        var w = new Fd(fds[1]);
        childEnd = readEndForChild ? r : w;
        toClose.Add(childEnd);
        return (childEnd.Value, readEndForChild ? w : r);
    }
}

public sealed partial class DockerApiHandler
{
    /// <summary>Monitors this service started are its children: reaped here when they exit (the
    /// CLI exits instead, so init reaps theirs).</summary>
    readonly ConcurrentDictionary<int, byte> _monitors = new();

    void TrackMonitor(string id)
    {
        try { if (Containers.Get(id).Monitor is { Pid: > 0 } m) _monitors[m.Pid] = 0; }
        catch (EngineException) { }
    }

    public unsafe void ReapMonitors()
    {
        foreach (var pid in _monitors.Keys)
        {
            int st;
            var r = waitpid(pid, &st, WNOHANG);
            if (r == pid || r < 0) _monitors.TryRemove(pid, out _);
        }
    }
}
