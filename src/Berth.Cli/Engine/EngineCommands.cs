using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Engine;
using Berth.Engine.Containers;
using Berth.Engine.Monitor;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Cli.Engine;

/// <summary>The docker/podman-like container verbs: run, create, start, stop, restart, kill, rm, ps,
/// logs, exec, wait, inspect, pause, unpause, rename, top. The work is done by Berth.Engine.</summary>
public static unsafe partial class EngineCommands
{
    /// <summary>
    /// The image a `run`/`create` names is pulled when the store lacks it, as docker does ("Unable to
    /// find image ... locally", then the pull's progress on stderr).
    /// </summary>
    static void EnsureImage(string dataRoot, string reference)
    {
        if (ContainerImages.Exists(dataRoot, reference)) return;
        Berth.Images.Reference.ImageReference r;
        try { r = Berth.Images.Reference.ImageReference.Parse(reference); }
        catch (Berth.Images.ImageException e) { throw EngineException.Invalid(e.Message); }
        Console.Error.WriteLine($"Unable to find image '{r.WithDefaultTag().FamiliarString}' locally");
        using var view = new Images.ProgressView(Console.Error, Images.ProgressView.IsTerminal, quiet: false, "pull");
        ContainerImages.PullAsync(dataRoot, reference, view, CancellationToken.None).GetAwaiter().GetResult();
    }

    static readonly Option<string?> RuntimeOption = new("--runtime") { Description = "path of the OCI runtime (default: berth-runc next to berth)", Recursive = true };

    // Options of run/create/exec that take a value: the first positional after them starts the command.
    static readonly HashSet<string> ValueOptions =
    [
        "--name", "-e", "--env", "--env-file", "-w", "--workdir", "-u", "--user", "--entrypoint", "-h", "--hostname", "-l", "--label",
        "-v", "--volume", "--tmpfs", "-m", "--memory", "--cpus", "--pids-limit", "--cap-add", "--cap-drop", "--security-opt",
        "--stop-signal", "--stop-timeout", "--network", "--net", "--rootfs", "--log-opt", "--log-driver", "--restart", "--runtime",
        "--root", "--runroot", "--detach-keys", .. NetworkValueOptions,
    ];
    static readonly HashSet<string> GlobalValueOptions = ["--root", "--runroot", "--runtime"];
    static readonly HashSet<string> FlagOptions =
    [
        "-d", "--detach", "-i", "--interactive", "-t", "--tty", "--rm", "--read-only", "--privileged", "--privileged=true", "--help", "-?", .. NetworkFlagOptions,
    ];
    const string BundledShorts = "dit";

    /// <summary>`run [OPTS] --rootfs DIR CMD ARGS…` / `exec [OPTS] CONTAINER CMD ARGS…`: everything from
    /// the command on belongs to the container, so a "--" is put in front of it before parsing.</summary>
    public static string[] SeparateCommand(string[] args)
    {
        var i = 0;
        while (i < args.Length && args[i].StartsWith('-'))
        {
            if (args[i] == "--") return args;
            i += GlobalValueOptions.Contains(args[i]) ? 2 : 1;
        }
        if (i >= args.Length || args[i] is not ("run" or "create" or "exec")) return args;
        var verb = args[i];
        var rootfs = false;
        for (var j = i + 1; j < args.Length; j++)
        {
            var t = args[j];
            if (t == "--") return args;
            if (t.StartsWith('-') && t.Length > 1)
            {
                var bare = t.Split('=')[0];
                var bundled = t.Length > 2 && t[1] != '-' && t[1..].All(ch => BundledShorts.Contains(ch));
                if (!ValueOptions.Contains(bare) && !MoreValueOptions.Contains(bare) && !FlagOptions.Contains(t) && !MoreFlagOptions.Contains(t) && !bundled)
                    throw EngineException.Invalid($"unknown flag: {t} (see 'berth {verb} --help')");
                if (t == "--rootfs" || t.StartsWith("--rootfs=", StringComparison.Ordinal)) rootfs = true;
                if (!t.Contains('=') && (ValueOptions.Contains(t) || MoreValueOptions.Contains(t))) j++;
                continue;
            }
            // j: the image (run/create without --rootfs) or container (exec), else the command itself
            var at = verb == "exec" || !rootfs ? j + 1 : j;
            var list = args.ToList();
            if (at < args.Length && list[at] != "--") list.Insert(at, "--");
            return [.. list];
        }
        return args;
    }

    public static void Register(RootCommand root)
    {
        root.Options.Add(RuntimeOption);
        root.Subcommands.Add(RunCommand("run", "create and start a container, then attach to it (or print its id with -d)"));
        root.Subcommands.Add(RunCommand("create", "create a container (started later with `berth start`)"));
        root.Subcommands.Add(StartCommand());
        root.Subcommands.Add(AttachCommand());
        root.Subcommands.Add(StopCommand("stop", "stop running containers (stop signal, then SIGKILL after the timeout)"));
        root.Subcommands.Add(StopCommand("restart", "restart containers"));
        root.Subcommands.Add(KillCommand());
        root.Subcommands.Add(RmCommand());
        root.Subcommands.Add(PsCommand());
        root.Subcommands.Add(LogsCommand());
        root.Subcommands.Add(ExecCommand());
        root.Subcommands.Add(WaitCommand());
        root.Subcommands.Add(InspectCommand());
        root.Subcommands.Add(PauseCommand("pause", true));
        root.Subcommands.Add(PauseCommand("unpause", false));
        root.Subcommands.Add(RenameCommand());
        root.Subcommands.Add(UpdateCommand());
        root.Subcommands.Add(TopCommand());
        root.Subcommands.Add(VolumeCommand());
        root.Subcommands.Add(StatsCommand());
        root.Subcommands.Add(CpCommand());
        foreach (var v in ImageVerbs()) root.Subcommands.Add(v);
        root.Subcommands.Add(EventsCommand());
        foreach (var v in SystemVerbs()) root.Subcommands.Add(v);
        root.Subcommands.Add(PortCommand());
        root.Subcommands.Add(BuildCommand());
        RegisterService(root);
        root.Subcommands.Add(PodCommand());
        // The monitor: dispatched in Program.cs before parsing; listed for --help only.
        root.Subcommands.Add(new Command("shim", "(internal) a container's monitor") { Hidden = true });
    }

    static ContainerManager Manager(ParseResult p) =>
        new(p.GetValue(BerthCli.DataRoot)!, p.GetValue(BerthCli.RunRoot)!, p.GetValue(RuntimeOption));

    /// <summary>One line on stderr and docker's exit code for anything the engine refuses.</summary>
    static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (EngineException e) { return Fail(e.Message, e.ExitCode); }
        catch (Exception e) when (e is SyscallException or IOException or UnauthorizedAccessException or SpecException or JsonException)
        {
            return Fail(e.Message, 125);
        }
    }

    static int Fail(string msg, int code)
    {
        Console.Error.WriteLine("berth: " + msg.Replace('\n', ' '));
        return code;
    }

    /// <summary>Runs a verb over several containers as docker does: each success echoes the argument,
    /// each failure prints one line; the exit status is 1 if any failed.</summary>
    static int ForEach(IEnumerable<string> names, Action<string> act, bool echo = true)
    {
        var rc = 0;
        foreach (var n in names)
        {
            try
            {
                act(n);
                if (echo) Console.Out.Write(n + "\n");
            }
            catch (EngineException e) { Fail(e.Message, 1); rc = e.Kind == ErrorKind.NotFound ? 1 : 125; }
            catch (Exception e) when (e is SyscallException or IOException) { Fail(e.Message, 1); rc = 125; }
        }
        return rc;
    }

    static Argument<string[]> Containers() => new("container") { Arity = ArgumentArity.OneOrMore, Description = "container names or ids" };

    // ------------------------------------------------------------------ run / create

    static Command RunCommand(string verb, string description)
    {
        var c = new Command(verb, description);
        var detach = new Option<bool>("--detach", "-d") { Description = "run in the background and print the container id" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "keep stdin open and attach it" };
        var tty = new Option<bool>("--tty", "-t") { Description = "allocate a pseudo-terminal" };
        var rm = new Option<bool>("--rm") { Description = "remove the container when it exits" };
        var name = new Option<string?>("--name") { Description = "the container's name" };
        var env = new Option<string[]>("--env", "-e") { Description = "set an environment variable (KEY=VALUE, or KEY to take it from here)" };
        var envFile = new Option<string[]>("--env-file") { Description = "read environment variables from a file" };
        var workdir = new Option<string?>("--workdir", "-w") { Description = "working directory inside the container" };
        var user = new Option<string?>("--user", "-u") { Description = "user (name|uid[:group|gid])" };
        var entrypoint = new Option<string?>("--entrypoint") { Description = "override the entrypoint" };
        var hostname = new Option<string?>("--hostname", "-h") { Description = "container host name" };
        var label = new Option<string[]>("--label", "-l") { Description = "set a label (KEY=VALUE)" };
        var volume = new Option<string[]>("--volume", "-v") { Description = "bind mount HOST:CONTAINER[:ro|rw]" };
        var tmpfs = new Option<string[]>("--tmpfs") { Description = "mount a tmpfs (PATH[:OPTIONS])" };
        var readOnly = new Option<bool>("--read-only") { Description = "mount the root filesystem read-only" };
        var memory = new Option<string?>("--memory", "-m") { Description = "memory limit (e.g. 64m)" };
        var cpus = new Option<string?>("--cpus") { Description = "number of CPUs (e.g. 1.5)" };
        var pids = new Option<long?>("--pids-limit") { Description = "maximum number of processes" };
        var capAdd = new Option<string[]>("--cap-add") { Description = "add a capability" };
        var capDrop = new Option<string[]>("--cap-drop") { Description = "drop a capability" };
        var privileged = new Option<bool>("--privileged") { Description = "all capabilities, no seccomp, no masked paths, all devices allowed" };
        var securityOpt = new Option<string[]>("--security-opt") { Description = "no-new-privileges | seccomp=unconfined | seccomp=FILE" };
        var stopSignal = new Option<string?>("--stop-signal") { Description = "signal that stops the container (default SIGTERM)" };
        var stopTimeout = new Option<int?>("--stop-timeout") { Description = "seconds before the container is killed on stop (default 10)" };
        var network = new Option<string?>("--network", "--net") { Description = "bridge (default) | NETWORK | none | host | container:NAME" };
        var rootfs = new Option<string?>("--rootfs") { Description = "use DIR as the container's root filesystem (podman's --rootfs)" };
        var logOpt = new Option<string[]>("--log-opt") { Description = "json-file options: max-size=SIZE, max-file=N" };
        var logDriver = new Option<string?>("--log-driver") { Description = "json-file (the only driver)" };
        var restart = new Option<string?>("--restart") { Description = "no | always | unless-stopped | on-failure[:N] (carried out by the monitor, with back-off)" };
        var image = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore, Description = "[IMAGE] COMMAND [ARG...] (with --rootfs: COMMAND [ARG...])" };
        foreach (var o in new Option[] { detach, interactive, tty, rm, name, env, envFile, workdir, user, entrypoint, hostname, label, volume, tmpfs,
            readOnly, memory, cpus, pids, capAdd, capDrop, privileged, securityOpt, stopSignal, stopTimeout, network, rootfs, logOpt, logDriver, restart })
            c.Options.Add(o);
        if (verb == "create") { c.Options.Remove(detach); }
        var networkOptions = new NetworkRunOptions(c);
        var more = new MoreRunFlags();
        more.AddTo(c);
        c.Arguments.Add(image);
        c.SetAction(p => Guard(() =>
        {
            Timing.Mark("cli: run parsed");
            var mgr = Manager(p);
            var words = p.GetValue(image) ?? [];
            // The flags become a create request in docker's shape (as the docker CLI turns them into
            // the body of POST /containers/create); the engine completes and validates it.
            var rec = new ContainerRecord();
            var cfg = rec.Config;
            var hc = rec.HostConfig;
            if (p.GetValue(rootfs) is { } dir) rec.Rootfs = dir;
            else
            {
                if (words.Length == 0) throw EngineException.Invalid($"\"{verb}\" requires at least 1 argument: an image (or --rootfs DIR)");
                cfg.Image = words[0];
                words = words[1..];
                EnsureImage(p.GetValue(BerthCli.DataRoot)!, cfg.Image);
            }
            if (p.GetValue(entrypoint) is { } ep) cfg.Entrypoint = [ep];
            cfg.Cmd = words.Length > 0 ? [.. words] : null;
            cfg.Tty = p.GetValue(tty);
            cfg.OpenStdin = p.GetValue(interactive);
            var det = verb == "create" || p.GetValue(detach);
            cfg.StdinOnce = cfg.OpenStdin && !det;
            cfg.AttachStdin = cfg.OpenStdin && !det;
            cfg.AttachStdout = cfg.AttachStderr = !det;
            foreach (var f in p.GetValue(envFile) ?? []) cfg.Env.AddRange(ReadEnvFile(f));
            foreach (var e in p.GetValue(env) ?? []) cfg.Env.Add(ExpandEnv(e));
            cfg.WorkingDir = p.GetValue(workdir) ?? "";
            cfg.User = p.GetValue(user) ?? "";
            cfg.Hostname = p.GetValue(hostname) ?? "";
            foreach (var l in p.GetValue(label) ?? [])
            {
                var kv = l.Split('=', 2);
                cfg.Labels[kv[0]] = kv.Length > 1 ? kv[1] : "";
            }
            cfg.StopSignal = p.GetValue(stopSignal) ?? "";
            cfg.StopTimeout = p.GetValue(stopTimeout);
            hc.AutoRemove = p.GetValue(rm);
            hc.ReadonlyRootfs = p.GetValue(readOnly);
            hc.Privileged = p.GetValue(privileged);
            hc.CapAdd = [.. p.GetValue(capAdd) ?? []];
            hc.CapDrop = [.. p.GetValue(capDrop) ?? []];
            hc.SecurityOpt = [.. p.GetValue(securityOpt) ?? []];
            hc.NetworkMode = p.GetValue(network) ?? ""; // "": the default bridge, unless the container joins a pod
            networkOptions.Apply(p, rec);
            if (p.GetValue(memory) is { } mem) hc.Memory = ContainerMonitor.ParseSize(mem);
            if (p.GetValue(cpus) is { } cp)
            {
                if (!double.TryParse(cp, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0)
                    throw EngineException.Invalid($"invalid --cpus \"{cp}\"");
                hc.NanoCpus = (long)(n * 1e9);
            }
            hc.PidsLimit = p.GetValue(pids);
            hc.LogConfig.Type = p.GetValue(logDriver) ?? "json-file";
            foreach (var lo in p.GetValue(logOpt) ?? [])
            {
                var kv = lo.Split('=', 2);
                if (kv.Length != 2) throw EngineException.Invalid($"invalid --log-opt \"{lo}\": expected max-size=SIZE or max-file=N");
                hc.LogConfig.Config[kv[0]] = kv[1];
            }
            if (p.GetValue(restart) is { } rp)
            {
                var parts = rp.Split(':', 2);
                hc.RestartPolicy.Name = parts[0];
                if (parts.Length > 1)
                {
                    if (!int.TryParse(parts[1], out var max) || max < 0)
                        throw EngineException.Invalid($"invalid restart policy \"{rp}\": the maximum retry count must be a number");
                    if (parts[0] != "on-failure") throw EngineException.Invalid($"invalid restart policy \"{rp}\": only on-failure takes a maximum retry count");
                    hc.RestartPolicy.MaximumRetryCount = max;
                }
            }
            hc.Binds = [.. p.GetValue(volume) ?? []];
            foreach (var t in p.GetValue(tmpfs) ?? [])
            {
                var parts = t.Split(':', 2);
                hc.Tmpfs[parts[0]] = parts.Length > 1 ? parts[1] : "";
            }
            rec.Name = p.GetValue(name) ?? "";
            more.Apply(p, rec);
            if (more.Pod(p) is { } podName) new Berth.Engine.Pods.PodManager(mgr).Join(rec, podName);

            rec = mgr.Create(rec);
            if (verb == "create")
            {
                Console.Out.Write(rec.Id + "\n");
                return 0;
            }
            if (det)
            {
                try { mgr.Start(rec.Id, hold: false); }
                catch (EngineException) { if (rec.HostConfig.AutoRemove) TryRemove(mgr, rec.Id); throw; }
                Console.Out.Write(rec.Id + "\n");
                return 0;
            }
            try { mgr.Start(rec.Id, hold: true); }
            catch (EngineException) { if (rec.HostConfig.AutoRemove) TryRemove(mgr, rec.Id); throw; }
            return AttachForeground(mgr, rec, cfg.OpenStdin, cfg.Tty);
        }));
        return c;
    }

    static void TryRemove(ContainerManager mgr, string id)
    {
        try { mgr.Remove(id, force: true); } catch (EngineException) { }
    }

    static string ExpandEnv(string e)
    {
        if (e.Contains('=')) return e;
        return Environment.GetEnvironmentVariable(e) is { } v ? $"{e}={v}" : "";
    }

    static IEnumerable<string> ReadEnvFile(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw EngineException.Invalid($"env file {path}: {e.Message}"); }
        foreach (var raw in lines)
        {
            var l = raw.TrimStart();
            if (l.Length == 0 || l.StartsWith('#')) continue;
            yield return ExpandEnv(l);
        }
    }

    /// <summary>The CLI in the foreground: output (and stdin with -i) through the monitor; with -t the
    /// terminal in raw mode and its size passed on; signals proxied to the container without -t.</summary>
    static int AttachForeground(ContainerManager mgr, ContainerRecord rec, bool stdin, bool tty, byte[]? detachKeys = null, bool keepStdin = false, bool sigProxy = true)
    {
        // With a terminal, ctrl-p ctrl-q detaches unless other keys were given (docker's default).
        detachKeys ??= stdin && tty ? DetachKeys.Parse(DetachKeys.Default) : null;
        byte[]? saved = null;
        var regs = new List<PosixSignalRegistration>();
        try
        {
            var code = mgr.Attach(rec, stdin, tty, detachKeys: detachKeys, keepStdin: keepStdin, onConnected: _ =>
            {
                if (tty && isatty(0) == 1)
                {
                    saved = new byte[64];
                    var raw = new byte[64];
                    fixed (byte* s = saved) tcgetattr(0, s);
                    saved.CopyTo(raw, 0);
                    fixed (byte* r = raw) { cfmakeraw(r); tcsetattr(0, 0, r); }
                    if (Pty.TryGetSize(0, out var rows, out var cols)) mgr.Resize(rec, rows, cols);
                    regs.Add(PosixSignalRegistration.Create(PosixSignal.SIGWINCH, ctx =>
                    {
                        ctx.Cancel = true;
                        if (Pty.TryGetSize(0, out var r2, out var c2)) mgr.Resize(rec, r2, c2);
                    }));
                }
                else if (!tty && sigProxy)
                {
                    foreach (var (sig, num) in new[] { (PosixSignal.SIGINT, 2), (PosixSignal.SIGTERM, 15), (PosixSignal.SIGHUP, 1), (PosixSignal.SIGQUIT, 3) })
                        regs.Add(PosixSignalRegistration.Create(sig, ctx => { ctx.Cancel = true; mgr.SignalProxy(rec, num); }));
                }
            });
            if (code == ContainerManager.Detached) return 0;
            if (code is { } c) return c;
            // The monitor went away without telling: whatever the record says now.
            try { return mgr.Wait(rec.Id); }
            catch (EngineException) { return 125; }
        }
        finally
        {
            foreach (var r in regs) r.Dispose();
            if (saved is not null) fixed (byte* s = saved) tcsetattr(0, 0, s);
        }
    }

    // ------------------------------------------------------------------ start / stop / kill / rm

    static Command StartCommand()
    {
        var c = new Command("start", "start created or exited containers");
        var attach = new Option<bool>("--attach", "-a") { Description = "attach stdout/stderr and wait for the container" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "attach stdin" };
        var names = Containers();
        c.Options.Add(attach); c.Options.Add(interactive); c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var list = p.GetValue(names)!;
            if (p.GetValue(attach) || p.GetValue(interactive))
            {
                if (list.Length != 1) throw EngineException.Invalid("you cannot start and attach multiple containers at once");
                var rec = mgr.Get(list[0]);
                if (!rec.State.Running) mgr.Start(rec.Id, hold: true);
                return AttachForeground(mgr, mgr.Get(rec.Id), p.GetValue(interactive) && rec.Config.OpenStdin, rec.Config.Tty);
            }
            return ForEach(list, n => mgr.Start(mgr.Get(n).Id, hold: false));
        }));
        return c;
    }

    /// <summary>`attach`: the terminal (or stdout/stderr, and stdin if the container was started with -i)
    /// joined to a running container through its monitor, as `start -a` does; the detach keys leave it running.</summary>
    static Command AttachCommand()
    {
        var c = new Command("attach", "attach local standard input, output, and error streams to a running container");
        var noStdin = new Option<bool>("--no-stdin") { Description = "do not attach stdin" };
        var sigProxy = new Option<bool>("--sig-proxy") { Description = "proxy received signals to the process (non-TTY only)", DefaultValueFactory = _ => true };
        var detachKeys = new Option<string?>("--detach-keys") { Description = "key sequence for detaching (default ctrl-p,ctrl-q)" };
        var name = new Argument<string>("container");
        foreach (var o in new Option[] { noStdin, sigProxy, detachKeys }) c.Options.Add(o);
        c.Arguments.Add(name);
        c.SetAction(p => Guard(() =>
        {
            var keys = DetachKeys.Parse(p.GetValue(detachKeys) ?? DetachKeys.Default);
            var mgr = Manager(p);
            var rec = mgr.Get(p.GetValue(name)!);
            if (rec.State.Paused) throw new EngineException(ErrorKind.FailedPrecondition, "You cannot attach to a paused container, unpause it first", 1);
            if (!rec.State.Running) throw new EngineException(ErrorKind.FailedPrecondition, "You cannot attach to a stopped container, start it first", 1);
            var stdin = rec.Config.OpenStdin && !p.GetValue(noStdin);
            return AttachForeground(mgr, rec, stdin, rec.Config.Tty, keys, keepStdin: !rec.Config.StdinOnce, sigProxy: p.GetValue(sigProxy));
        }));
        return c;
    }

    static Command StopCommand(string verb, string description)
    {
        var c = new Command(verb, description);
        var time = new Option<int?>("--time", "-t") { Description = "seconds to wait before killing the container" };
        var names = Containers();
        c.Options.Add(time); c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            return ForEach(p.GetValue(names)!, n =>
            {
                mgr.Stop(n, p.GetValue(time));
                if (verb == "restart") mgr.Start(mgr.Get(n).Id, hold: false);
            });
        }));
        return c;
    }

    static Command KillCommand()
    {
        var c = new Command("kill", "send a signal to running containers (default SIGKILL)");
        var signal = new Option<string>("--signal", "-s") { DefaultValueFactory = _ => "SIGKILL", Description = "the signal" };
        var names = Containers();
        c.Options.Add(signal); c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            return ForEach(p.GetValue(names)!, n => mgr.Kill(n, p.GetValue(signal)!));
        }));
        return c;
    }

    static Command RmCommand()
    {
        var c = new Command("rm", "remove containers");
        var force = new Option<bool>("--force", "-f") { Description = "kill and remove running containers" };
        var volumes = new Option<bool>("--volumes", "-v") { Description = "remove the container's anonymous volumes too" };
        var names = Containers();
        c.Options.Add(force); c.Options.Add(volumes); c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            return ForEach(p.GetValue(names)!, n => mgr.Remove(n, p.GetValue(force), p.GetValue(volumes)));
        }));
        return c;
    }

    static Command PauseCommand(string verb, bool pause)
    {
        var c = new Command(verb, pause ? "pause all processes of containers" : "resume paused containers");
        var names = Containers();
        c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            return ForEach(p.GetValue(names)!, n => mgr.Pause(n, pause));
        }));
        return c;
    }

    static Command RenameCommand()
    {
        var c = new Command("rename", "rename a container");
        var from = new Argument<string>("container");
        var to = new Argument<string>("new-name");
        c.Arguments.Add(from); c.Arguments.Add(to);
        c.SetAction(p => Guard(() => { Manager(p).Rename(p.GetValue(from)!, p.GetValue(to)!); return 0; }));
        return c;
    }

    static Command WaitCommand()
    {
        var c = new Command("wait", "block until containers stop, then print their exit codes");
        var names = Containers();
        c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var rc = 0;
            foreach (var n in p.GetValue(names)!)
            {
                try { Console.Out.Write(mgr.Wait(n) + "\n"); }
                catch (EngineException e) { Fail(e.Message, 1); rc = 1; }
            }
            return rc;
        }));
        return c;
    }

    // ------------------------------------------------------------------ ps / inspect / logs / top

    static System.Text.RegularExpressions.Regex NameFilter(string pattern)
    {
        try { return new(pattern, System.Text.RegularExpressions.RegexOptions.CultureInvariant); }
        catch (ArgumentException) { throw EngineException.Invalid($"invalid filter 'name={pattern}': not a regular expression"); }
    }

    static Command PsCommand()
    {
        var c = new Command("ps", "list containers");
        var all = new Option<bool>("--all", "-a") { Description = "show all containers (default: running)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "only ids" };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "do not truncate output" };
        var format = new Option<string?>("--format") { Description = "table | json | a Go template ({{.ID}} {{.Names}} {{.Status}}…)" };
        var filter = new Option<string[]>("--filter", "-f") { Description = "status=, name=REGEX, label=KEY[=VALUE], id=, health=, pod=" };
        foreach (var o in new Option[] { all, quiet, noTrunc, format, filter }) c.Options.Add(o);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var list = mgr.List();
            var filters = p.GetValue(filter) ?? [];
            if (!p.GetValue(all) && !filters.Any(f => f.StartsWith("status=", StringComparison.Ordinal))) list = list.Where(x => x.State.Running).ToList();
            foreach (var group in filters.Select(f => f.Split('=', 2)).GroupBy(f => f[0]))
            {
                var values = group.Select(g => g.Length > 1 ? g[1] : "").ToList();
                list = group.Key switch
                {
                    "status" => list.Where(x => values.Contains(ContainerFormat.State(x))).ToList(),
                    // docker matches names as regular expressions (`name=^web$`), on the name with and without its '/'
                    "name" => list.Where(x => values.Select(NameFilter).Any(r => r.IsMatch(x.BareName) || r.IsMatch("/" + x.BareName))).ToList(),
                    "pod" => values.Select(v => new Berth.Engine.Pods.PodManager(mgr).Store.Resolve(v)).ToList() is var pods
                        ? list.Where(x => x.Pod is { } pid && pods.Contains(pid)).ToList() : list,
                    "id" => list.Where(x => values.Any(v => x.Id.StartsWith(v, StringComparison.Ordinal))).ToList(),
                    "health" => values.FirstOrDefault(v => v is not ("starting" or "healthy" or "unhealthy" or "none")) is { } hv
                        ? throw EngineException.Invalid($"invalid filter 'health={hv}': expected starting, healthy, unhealthy or none")
                        : list.Where(x => values.Contains(x.State.Health?.Status ?? "none")).ToList(),
                    "label" => list.Where(x => values.All(v =>
                    {
                        var kv = v.Split('=', 2);
                        return x.Config.Labels.TryGetValue(kv[0], out var lv) && (kv.Length == 1 || lv == kv[1]);
                    })).ToList(),
                    _ => throw EngineException.Invalid($"invalid filter \"{group.Key}\": expected status, name, id, label, health or pod"),
                };
            }
            var trunc = !p.GetValue(noTrunc);
            if (p.GetValue(quiet))
            {
                Console.Out.Write(string.Concat(list.Select(x => (trunc ? x.ShortId : x.Id) + "\n")));
                return 0;
            }
            var now = DateTime.UtcNow;
            Console.Out.Write(ContainerFormat.RenderPs(list.Select(x => ContainerFormat.PsFields(x, now, trunc)).ToList(), p.GetValue(format)));
            return 0;
        }));
        return c;
    }

    static Command InspectCommand()
    {
        var c = new Command("inspect", "show containers' configuration and state (docker inspect's shape)");
        var format = new Option<string?>("--format", "-f") { Description = "a Go template, e.g. {{.State.Status}}" };
        var names = Containers();
        c.Options.Add(format); c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var found = new List<ContainerRecord>();
            var rc = 0;
            foreach (var n in p.GetValue(names)!)
            {
                try
                {
                    var r = mgr.Get(n);
                    r.Monitor = null;
                    r.ManuallyStopped = null;
                    found.Add(r);
                }
                catch (EngineException e) { Fail(e.Message, 1); rc = 1; }
            }
            if (p.GetValue(format) is { } f)
            {
                foreach (var r in found)
                    Console.Out.Write(ContainerFormat.RenderInspect(JsonNode.Parse(JsonSerializer.SerializeToUtf8Bytes(r, EngineJsonContext.Relaxed.ContainerRecord))!, f) + "\n");
            }
            else
                Console.Out.Write(Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(found, EngineJsonContext.Relaxed.ListContainerRecord)) + "\n");
            return rc;
        }));
        return c;
    }

    static Command LogsCommand()
    {
        var c = new Command("logs", "print a container's output (json-file log)");
        var follow = new Option<bool>("--follow", "-f") { Description = "keep printing new output until the container stops" };
        var tail = new Option<string?>("--tail", "-n") { Description = "number of lines from the end (or \"all\")" };
        var timestamps = new Option<bool>("--timestamps", "-t") { Description = "prefix each line with its time" };
        var since = new Option<string?>("--since") { Description = "only lines since a time (RFC 3339, unix seconds or a duration like 10m)" };
        var name = new Argument<string>("container");
        foreach (var o in new Option[] { follow, tail, timestamps, since }) c.Options.Add(o);
        c.Arguments.Add(name);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var rec = mgr.Get(p.GetValue(name)!);
            DateTime? sinceTime = p.GetValue(since) is { } s ? ParseSince(s) : null;
            int? tailN = p.GetValue(tail) is { } t && t != "all"
                ? (int.TryParse(t, out var tn) && tn >= 0 ? tn : throw EngineException.Invalid($"invalid --tail \"{t}\""))
                : null;
            var ts = p.GetValue(timestamps);
            var entries = ContainerLogs.ReadAsync(mgr, rec, e => sinceTime is null || ContainerFormat.ParseTime(e.Time) >= sinceTime,
                tailN, p.GetValue(follow), until: null, CancellationToken.None);
            foreach (var e in entries.ToBlockingEnumerable()) Emit(e, ts);
            return 0;
        }));
        return c;
    }

    static void Emit(LogEntry e, bool timestamps)
    {
        var text = timestamps ? e.Time + " " + e.Text : e.Text;
        var bytes = Encoding.UTF8.GetBytes(text);
        try { Sys.WriteAll(e.Stream == "stderr" ? 2 : 1, bytes, "output"); } catch (SyscallException) { }
    }

    static DateTime ParseSince(string s)
    {
        if (double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var secs))
            return DateTime.UnixEpoch.AddSeconds(secs);
        var unit = s[^1];
        if (s.Length > 1 && "smh".Contains(unit) && double.TryParse(s[..^1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var n))
            return DateTime.UtcNow - (unit == 's' ? TimeSpan.FromSeconds(n) : unit == 'm' ? TimeSpan.FromMinutes(n) : TimeSpan.FromHours(n));
        var t = ContainerFormat.ParseTime(s);
        if (t == DateTime.MinValue) throw EngineException.Invalid($"invalid --since \"{s}\": expected RFC 3339, unix seconds or a duration (10m)");
        return t;
    }

    static Command TopCommand()
    {
        var c = new Command("top", "show the processes of a container");
        var name = new Argument<string>("container");
        var psArgs = new Argument<string[]>("ps-options") { Arity = ArgumentArity.ZeroOrMore };
        c.Arguments.Add(name); c.Arguments.Add(psArgs);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var rec = mgr.Get(p.GetValue(name)!);
            if (!rec.State.Running) throw new EngineException(ErrorKind.FailedPrecondition, $"container {rec.BareName} is not running");
            var extra = p.GetValue(psArgs) is { Length: > 0 } a ? a : ["-ef"];
            var (st, err) = mgr.RunAttached(rec, ["ps", rec.Id, .. extra], stdin: false);
            if (st != 0) throw new EngineException(ErrorKind.FailedPrecondition, err ?? $"ps exited with status {st}");
            return 0;
        }));
        return c;
    }

    // ------------------------------------------------------------------ volumes

    static Command VolumeCommand()
    {
        var v = new Command("volume", "manage named volumes");
        Berth.Engine.Volumes.VolumeStore Store(ParseResult p) => new(p.GetValue(BerthCli.DataRoot)!);
        {
            var c = new Command("create", "create a volume");
            var name = new Argument<string?>("name") { Arity = ArgumentArity.ZeroOrOne };
            var driver = new Option<string?>("--driver", "-d") { Description = "volume driver (local)" };
            var opts = new Option<string[]>("--opt", "-o") { Description = "the local driver's options: type=…, device=…, o=… (as mount(8))" };
            var labels = new Option<string[]>("--label") { Description = "set a label KEY[=VALUE]" };
            c.Arguments.Add(name); c.Options.Add(driver); c.Options.Add(opts); c.Options.Add(labels);
            c.SetAction(p => Guard(() =>
            {
                Dictionary<string, string> Map(string[]? items) =>
                    (items ?? []).Select(i => i.Split('=', 2)).GroupBy(kv => kv[0]).ToDictionary(g => g.Key, g => g.Last().Length > 1 ? g.Last()[1] : "");
                var vol = Store(p).Create(p.GetValue(name), existingOk: false, Map(p.GetValue(labels)), Map(p.GetValue(opts)), p.GetValue(driver));
                Console.Out.Write(vol.Name + "\n");
                return 0;
            }));
            v.Subcommands.Add(c);
        }
        {
            var c = new Command("ls", "list volumes");
            var quiet = new Option<bool>("--quiet", "-q") { Description = "only names" };
            c.Options.Add(quiet);
            c.SetAction(p => Guard(() =>
            {
                var list = Store(p).List();
                Console.Out.Write(p.GetValue(quiet)
                    ? string.Concat(list.Select(x => x.Name + "\n"))
                    : ContainerFormat.RenderPs(list.Select(x => new Dictionary<string, string> { ["Driver"] = x.Driver, ["Name"] = x.Name }).ToList(), "table {{.Driver}}\t{{.Name}}").Replace("NAME\n", "VOLUME NAME\n"));
                return 0;
            }));
            v.Subcommands.Add(c);
        }
        {
            var c = new Command("inspect", "show volumes");
            var names = new Argument<string[]>("volume") { Arity = ArgumentArity.OneOrMore };
            var format = new Option<string?>("--format", "-f") { Description = "a Go template, e.g. {{.Mountpoint}}" };
            c.Arguments.Add(names); c.Options.Add(format);
            c.SetAction(p => Guard(() =>
            {
                var s = Store(p);
                var list = p.GetValue(names)!.Select(s.Get).ToList();
                if (p.GetValue(format) is { } f)
                    foreach (var vol in list)
                        Console.Out.Write(ContainerFormat.RenderInspect(JsonNode.Parse(JsonSerializer.SerializeToUtf8Bytes(vol, Berth.Engine.Volumes.VolumeJsonContext.Default.VolumeInfo))!, f) + "\n");
                else
                    Console.Out.Write(Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(list, Berth.Engine.Volumes.VolumeJsonContext.Default.ListVolumeInfo)) + "\n");
                return 0;
            }));
            v.Subcommands.Add(c);
        }
        {
            var c = new Command("rm", "remove volumes no container uses");
            var names = new Argument<string[]>("volume") { Arity = ArgumentArity.OneOrMore };
            var force = new Option<bool>("--force", "-f") { Description = "(accepted; a volume in use is never removed)" };
            c.Arguments.Add(names); c.Options.Add(force);
            c.SetAction(p => Guard(() =>
            {
                var s = Store(p);
                var containers = Manager(p).List();
                return ForEach(p.GetValue(names)!, n => s.Remove(n, containers));
            }));
            v.Subcommands.Add(c);
        }
        return v;
    }

    // ------------------------------------------------------------------ exec

    static Command ExecCommand()
    {
        var c = new Command("exec", "run a command in a running container");
        var detach = new Option<bool>("--detach", "-d") { Description = "run the command in the background" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "keep stdin open" };
        var tty = new Option<bool>("--tty", "-t") { Description = "allocate a pseudo-terminal" };
        var env = new Option<string[]>("--env", "-e") { Description = "set an environment variable" };
        var envFile = new Option<string[]>("--env-file") { Description = "read environment variables from a file" };
        var user = new Option<string?>("--user", "-u") { Description = "user (name|uid[:group|gid])" };
        var workdir = new Option<string?>("--workdir", "-w") { Description = "working directory" };
        var privileged = new Option<bool>("--privileged") { Description = "(accepted; the container's capabilities apply)" };
        var name = new Argument<string>("container");
        var command = new Argument<string[]>("command") { Arity = ArgumentArity.OneOrMore };
        foreach (var o in new Option[] { detach, interactive, tty, env, envFile, user, workdir, privileged }) c.Options.Add(o);
        c.Arguments.Add(name); c.Arguments.Add(command);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var rec = mgr.Get(p.GetValue(name)!);
            var envs = new List<string>();
            foreach (var f in p.GetValue(envFile) ?? []) envs.AddRange(ReadEnvFile(f));
            foreach (var e in p.GetValue(env) ?? []) envs.Add(ExpandEnv(e));
            var args = mgr.ExecArgs(rec, p.GetValue(command)!, envs, p.GetValue(user), p.GetValue(workdir), p.GetValue(tty), p.GetValue(detach));
            return mgr.Exec(rec, p.GetValue(command)!, args, stdin: p.GetValue(interactive) || p.GetValue(tty), p.GetValue(detach));
        }));
        return c;
    }
}
