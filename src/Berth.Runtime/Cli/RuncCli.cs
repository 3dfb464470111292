using System.CommandLine;
using System.Text;
using System.Text.Json;
using Berth.Linux;
using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;

namespace Berth.Runtime.Cli;

/// <summary>`berth-runc`: runc's command line, so podman, containerd and conmon can drive Berth.</summary>
public static class RuncCli
{
    public const string Version = "0.1.0";

    // Options of `exec`/`ps` that take a value: everything after the container id is the command.
    static readonly HashSet<string> ExecValueOptions = ["--process", "-p", "--console-socket", "--cwd", "--env", "-e", "--user", "-u",
        "--additional-gids", "-g", "--pid-file", "--process-label", "--apparmor", "--cap", "-c", "--preserve-fds", "--cgroup", "--format", "-f"];
    static readonly HashSet<string> GlobalValueOptions = ["--root", "--log", "--log-format", "--criu", "--rootless"];

    public static int Run(string[] args)
    {
        if (args is ["init"]) return Init.ContainerInit.Main(); // hot path: no parser in the container's init
        if (args is ["--version"] or ["-v"] or ["version"])
        {
            Console.Out.Write($"berth-runc version {Version}\nspec: {SpecVersion.Current}\n");
            return 0;
        }
        Timing.Mark("cli: main");
        args = SeparateCommand(args);

        var root = new Option<string>("--root") { Description = "root directory for storage of container state", DefaultValueFactory = _ => RuntimeOptions.DefaultRoot(), Recursive = true };
        var log = new Option<string?>("--log") { Description = "log file path (default: none)", Recursive = true };
        var logFormat = new Option<string>("--log-format") { Description = "log format: text or json", DefaultValueFactory = _ => "text", Recursive = true };
        logFormat.AcceptOnlyFromAmong("text", "json");
        var debug = new Option<bool>("--debug") { Description = "enable debug logging", Recursive = true };
        var systemd = new Option<bool>("--systemd-cgroup") { Description = "use the systemd cgroup driver (needs a running systemd)", Recursive = true };
        var rootless = new Option<string?>("--rootless") { Description = "ignore cgroup permission errors (true|false|auto)", Recursive = true };

        var cmd = new RootCommand("berth-runc: the Berth OCI runtime (runc-compatible command line)");
        foreach (var o in new Option[] { root, log, logFormat, debug, systemd, rootless }) cmd.Options.Add(o);

        RuntimeLog? logger = null;
        ContainerRuntime Rt(ParseResult p)
        {
            logger = new RuntimeLog(p.GetValue(log), p.GetValue(logFormat)!, p.GetValue(debug));
            var l = logger;
            return new ContainerRuntime(new RuntimeOptions
            {
                Root = p.GetValue(root)!, SystemdCgroup = p.GetValue(systemd), Warn = l.Warn, Note = l.Note,
                Rootless = RuntimeOptions.ParseRootless(p.GetValue(rootless)),
            });
        }
        int Guard(ParseResult p, Func<ContainerRuntime, int> f)
        {
            try { return f(Rt(p)); }
            catch (Exception e)
            {
                // Expected failures carry a message for the user; anything else is a bug: still one
                // line on stderr, with the stack trace in the log.
                var expected = e is RuntimeException or SyscallException or SpecException or CgroupException or ArgumentException
                    or IOException or UnauthorizedAccessException;
                var msg = (expected ? e.Message : $"internal error: {e.GetType().Name}: {e.Message}").Replace('\n', ' ');
                logger?.Error(msg);
                if (!expected) logger?.DebugMsg(e.ToString());
                Console.Error.WriteLine($"berth-runc: {msg}");
                return 1;
            }
        }

        var id = () => new Argument<string>("container-id") { Description = "the container's id" };

        // spec
        {
            var c = new Command("spec", "create a new specification file (config.json)");
            var bundle = new Option<string?>("--bundle", "-b") { Description = "path to the root of the bundle directory" };
            var rl = new Option<bool>("--rootless") { Description = "generate a configuration for a rootless container" };
            c.Options.Add(bundle); c.Options.Add(rl);
            c.SetAction(p => Guard(p, _ =>
            {
                var dir = p.GetValue(bundle) ?? ".";
                var path = Path.Combine(dir, "config.json");
                if (File.Exists(path)) throw RuntimeException.Invalid("File config.json exists. Remove it first.");
                File.WriteAllBytes(path, SpecJson.Serialize(DefaultSpec.Create(p.GetValue(rl))));
                return 0;
            }));
            cmd.Subcommands.Add(c);
        }

        // create / run share their options
        Option<string> Bundle() => new("--bundle", "-b") { Description = "path to the root of the bundle directory", DefaultValueFactory = _ => "." };
        Option<string?> PidFile() => new("--pid-file") { Description = "file to write the process id to" };
        Option<string?> ConsoleSocket() => new("--console-socket") { Description = "AF_UNIX socket that receives the pty master" };
        Option<bool> NoPivot() => new("--no-pivot") { Description = "do not use pivot_root (for a ramdisk rootfs)" };
        Option<bool> NoKeyring() => new("--no-new-keyring") { Description = "do not create a new session keyring" };
        Option<int> PreserveFds() => new("--preserve-fds") { Description = "pass N additional file descriptors (from 3) to the container" };
        {
            var c = new Command("create", "create a container");
            var a = id(); var b = Bundle(); var pf = PidFile(); var cs = ConsoleSocket(); var np = NoPivot(); var nk = NoKeyring(); var pr = PreserveFds();
            c.Arguments.Add(a); foreach (var o in new Option[] { b, pf, cs, np, nk, pr }) c.Options.Add(o);
            c.SetAction(p => Guard(p, rt =>
            {
                rt.Create(new CreateOptions
                {
                    Id = p.GetValue(a)!, Bundle = p.GetValue(b)!, PidFile = p.GetValue(pf), ConsoleSocket = p.GetValue(cs),
                    NoPivot = p.GetValue(np), NoNewKeyring = p.GetValue(nk), PreserveFds = p.GetValue(pr),
                });
                return 0;
            }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("run", "create and run a container");
            var a = id(); var b = Bundle(); var pf = PidFile(); var cs = ConsoleSocket(); var np = NoPivot(); var nk = NoKeyring(); var pr = PreserveFds();
            var detach = new Option<bool>("--detach", "-d") { Description = "detach from the container's process" };
            var keep = new Option<bool>("--keep") { Description = "do not delete the container after it exits" };
            c.Arguments.Add(a); foreach (var o in new Option[] { b, pf, cs, np, nk, pr, detach, keep }) c.Options.Add(o);
            c.SetAction(p => Guard(p, rt =>
            {
                var cid = p.GetValue(a)!;
                var det = p.GetValue(detach);
                var held = rt.CreateForRun(new CreateOptions
                {
                    Id = cid, Bundle = p.GetValue(b)!, PidFile = p.GetValue(pf), ConsoleSocket = p.GetValue(cs),
                    NoPivot = p.GetValue(np), NoNewKeyring = p.GetValue(nk), PreserveFds = p.GetValue(pr), KeepConsole = !det,
                });
                var (pid, console) = (held.Pid, held.Console);
                try { rt.StartCreated(held); }
                catch
                {
                    held.Dispose();
                    console?.Dispose();
                    try { rt.Delete(held); } catch (RuntimeException) { }
                    throw;
                }
                if (det) { console?.Dispose(); return 0; }
                var status = Terminal.WaitForeground(pid, console);
                console?.Dispose();
                if (!p.GetValue(keep)) rt.Delete(held);
                return status;
            }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("start", "start a created container");
            var a = id(); c.Arguments.Add(a);
            c.SetAction(p => Guard(p, rt => { rt.Start(p.GetValue(a)!); return 0; }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("state", "output the state of a container");
            var a = id(); c.Arguments.Add(a);
            c.SetAction(p => Guard(p, rt =>
            {
                Console.Out.Write(Encoding.UTF8.GetString(SpecJson.Serialize(rt.GetState(p.GetValue(a)!))) + "\n");
                return 0;
            }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("kill", "send a signal to the container's init process (default SIGTERM)");
            var a = id(); var sig = new Argument<string>("signal") { DefaultValueFactory = _ => "SIGTERM" };
            var all = new Option<bool>("--all", "-a") { Description = "send the signal to all processes in the container" };
            c.Arguments.Add(a); c.Arguments.Add(sig); c.Options.Add(all);
            c.SetAction(p => Guard(p, rt =>
            {
                int s;
                try { s = Signals.Parse(p.GetValue(sig)!); }
                catch (ArgumentException e) { throw RuntimeException.Invalid(e.Message); }
                rt.Kill(p.GetValue(a)!, s, p.GetValue(all));
                return 0;
            }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("delete", "delete a container and the resources it holds");
            var a = id(); var force = new Option<bool>("--force", "-f") { Description = "kill the container first if it is running" };
            c.Arguments.Add(a); c.Options.Add(force);
            c.SetAction(p => Guard(p, rt => { rt.Delete(p.GetValue(a)!, p.GetValue(force)); return 0; }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("list", "list containers started by berth-runc with this --root");
            var fmt = new Option<string>("--format", "-f") { DefaultValueFactory = _ => "table", Description = "table or json" };
            fmt.AcceptOnlyFromAmong("table", "json");
            var quiet = new Option<bool>("--quiet", "-q") { Description = "display only container ids" };
            c.Options.Add(fmt); c.Options.Add(quiet);
            c.SetAction(p => Guard(p, rt =>
            {
                var list = rt.List();
                if (p.GetValue(quiet)) { foreach (var s in list) Console.Out.WriteLine(s.Id); return 0; }
                if (p.GetValue(fmt) == "json")
                {
                    Console.Out.WriteLine(JsonSerializer.Serialize(list, SpecJsonContext.Default.ListState).Replace("\n", "").Replace("  ", ""));
                    return 0;
                }
                var rows = new List<string[]> { new[] { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" } };
                rows.AddRange(list.Select(s => new[] { s.Id, s.Pid.ToString(), s.Status, s.Bundle, s.Created?.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ") ?? "", s.Owner ?? "" }));
                PrintTable(rows);
                return 0;
            }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("ps", "display the processes running inside a container");
            var a = id(); var fmt = new Option<string>("--format", "-f") { DefaultValueFactory = _ => "table" };
            fmt.AcceptOnlyFromAmong("table", "json");
            var psArgs = new Argument<string[]>("ps-options") { Arity = ArgumentArity.ZeroOrMore };
            c.Arguments.Add(a); c.Arguments.Add(psArgs); c.Options.Add(fmt);
            c.SetAction(p => Guard(p, rt =>
            {
                var pids = rt.Pids(p.GetValue(a)!);
                if (p.GetValue(fmt) == "json") { Console.Out.WriteLine("[" + string.Join(",", pids) + "]"); return 0; }
                var opts = p.GetValue(psArgs) is { Length: > 0 } pa ? pa : ["-ef"];
                return PrintPs(pids, opts);
            }));
            cmd.Subcommands.Add(c);
        }
        foreach (var (name, desc, pause) in new[] { ("pause", "suspend all processes in the container", true), ("resume", "resume all processes in the container", false) })
        {
            var c = new Command(name, desc);
            var a = id(); c.Arguments.Add(a);
            c.SetAction(p => Guard(p, rt => { if (pause) rt.Pause(p.GetValue(a)!); else rt.Resume(p.GetValue(a)!); return 0; }));
            cmd.Subcommands.Add(c);
        }
        cmd.Subcommands.Add(UpdateCommand(id, Guard));
        {
            var c = new Command("events", "display container events and statistics");
            var a = id(); var stats = new Option<bool>("--stats") { Description = "display the container's stats once, then exit" };
            var interval = new Option<string>("--interval") { DefaultValueFactory = _ => "5s", Description = "stats collection interval" };
            c.Arguments.Add(a); c.Options.Add(stats); c.Options.Add(interval);
            c.SetAction(p => Guard(p, rt =>
            {
                var cid = p.GetValue(a)!;
                if (p.GetValue(stats)) { Console.Out.WriteLine(rt.StatsJson(cid)); return 0; }
                var every = ParseDuration(p.GetValue(interval)!);
                while (true)
                {
                    Console.Out.WriteLine(rt.StatsJson(cid));
                    Console.Out.Flush();
                    Thread.Sleep(every);
                }
            }));
            cmd.Subcommands.Add(c);
        }
        {
            var c = new Command("features", "show the enabled features");
            c.SetAction(p => Guard(p, _ => { Console.Out.WriteLine(JsonSerializer.Serialize(FeaturesInfo.Get(), SpecJsonContext.Default.Features)); return 0; }));
            cmd.Subcommands.Add(c);
        }
        cmd.Subcommands.Add(ExecCommand(id, Guard));
        {
            var c = new Command("init", "(internal) the container's first process") { Hidden = true };
            c.SetAction(_ => Init.ContainerInit.Main());
            cmd.Subcommands.Add(c);
        }

        Timing.Mark("cli: commands built");
        var parsed = cmd.Parse(args);
        Timing.Mark("cli: parsed");
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) Console.Error.WriteLine($"berth-runc: {e.Message}");
            return 1;
        }
        return parsed.Invoke();
    }

    static Command ExecCommand(Func<Argument<string>> id, Func<ParseResult, Func<ContainerRuntime, int>, int> guard)
    {
        var c = new Command("exec", "execute a new process inside the container");
        var a = id();
        var command = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore };
        var process = new Option<string?>("--process", "-p") { Description = "path to a process.json" };
        var cs = new Option<string?>("--console-socket");
        var cwd = new Option<string?>("--cwd");
        var env = new Option<string[]>("--env", "-e") { AllowMultipleArgumentsPerToken = false };
        var tty = new Option<bool>("--tty", "-t");
        var user = new Option<string?>("--user", "-u") { Description = "UID[:GID]" };
        var groups = new Option<string[]>("--additional-gids", "-g");
        var pidFile = new Option<string?>("--pid-file");
        var detach = new Option<bool>("--detach", "-d");
        var nnp = new Option<bool>("--no-new-privs");
        var caps = new Option<string[]>("--cap", "-c");
        var preserve = new Option<int>("--preserve-fds");
        var label = new Option<string?>("--process-label");
        var apparmor = new Option<string?>("--apparmor");
        var ignorePaused = new Option<bool>("--ignore-paused");
        var cgroup = new Option<string?>("--cgroup");
        c.Arguments.Add(a); c.Arguments.Add(command);
        foreach (var o in new Option[] { process, cs, cwd, env, tty, user, groups, pidFile, detach, nnp, caps, preserve, label, apparmor, ignorePaused, cgroup })
            c.Options.Add(o);
        c.SetAction(p => guard(p, rt =>
        {
            var cid = p.GetValue(a)!;
            Process proc;
            if (p.GetValue(process) is { } file)
            {
                var bytes = file == "-" ? ReadStdin() : File.ReadAllBytes(file);
                proc = SpecJson.ParseProcess(bytes, file);
            }
            else
            {
                var cmdline = p.GetValue(command) ?? [];
                if (cmdline.Length == 0) throw RuntimeException.Invalid("exec: no command given (pass arguments or --process)");
                var spec = rt.Store.LoadSpec(cid);
                var basep = spec.Process ?? new Process();
                proc = new Process
                {
                    Args = [.. cmdline], Env = basep.Env is null ? null : [.. basep.Env], Cwd = basep.Cwd,
                    User = new User { Uid = basep.User.Uid, Gid = basep.User.Gid, AdditionalGids = basep.User.AdditionalGids, Umask = basep.User.Umask },
                    Capabilities = basep.Capabilities, NoNewPrivileges = basep.NoNewPrivileges, Rlimits = basep.Rlimits,
                };
            }
            if (p.GetValue(cwd) is { } w) proc.Cwd = w;
            foreach (var e in p.GetValue(env) ?? [])
            {
                proc.Env ??= [];
                var key = e.Split('=')[0] + "=";
                proc.Env.RemoveAll(x => x.StartsWith(key, StringComparison.Ordinal));
                proc.Env.Add(e);
            }
            if (p.GetValue(tty)) proc.Terminal = true;
            if (p.GetValue(user) is { } u)
            {
                var parts = u.Split(':');
                if (!uint.TryParse(parts[0], out var uid) || (parts.Length > 1 && !uint.TryParse(parts[1], out _)))
                    throw RuntimeException.Invalid($"invalid --user \"{u}\": expected UID[:GID]");
                proc.User.Uid = uid;
                if (parts.Length > 1) proc.User.Gid = uint.Parse(parts[1]);
            }
            foreach (var g in p.GetValue(groups) ?? [])
            {
                if (!uint.TryParse(g, out var gid)) throw RuntimeException.Invalid($"invalid --additional-gids \"{g}\"");
                (proc.User.AdditionalGids ??= []).Add(gid);
            }
            if (p.GetValue(nnp)) proc.NoNewPrivileges = true;
            if (p.GetValue(caps) is { Length: > 0 } extra)
            {
                proc.Capabilities ??= new Capabilities();
                foreach (var cap in extra)
                {
                    (proc.Capabilities.Bounding ??= []).Add(cap); (proc.Capabilities.Effective ??= []).Add(cap);
                    (proc.Capabilities.Permitted ??= []).Add(cap);
                }
            }
            if (p.GetValue(label) is { Length: > 0 }) proc.SelinuxLabel = p.GetValue(label);
            if (p.GetValue(apparmor) is { Length: > 0 }) proc.ApparmorProfile = p.GetValue(apparmor);
            if (p.GetValue(cgroup) is { Length: > 0 } cg) throw RuntimeException.Invalid($"--cgroup {cg}: joining a sub-cgroup is not supported");
            var det = p.GetValue(detach);
            return rt.Exec(new ExecOptions
            {
                Id = cid, Process = proc, PidFile = p.GetValue(pidFile), ConsoleSocket = p.GetValue(cs), Detach = det,
                PreserveFds = p.GetValue(preserve),
            }, Terminal.WaitForeground);
        }));
        return c;
    }

    static Command UpdateCommand(Func<Argument<string>> id, Func<ParseResult, Func<ContainerRuntime, int>, int> guard)
    {
        var c = new Command("update", "update the container's resource limits");
        var a = id();
        var resources = new Option<string?>("--resources", "-r") { Description = "path to a resources JSON file, or - for stdin" };
        var memory = new Option<string?>("--memory", "-m");
        var memRes = new Option<string?>("--memory-reservation");
        var memSwap = new Option<string?>("--memory-swap");
        var kmem = new Option<string?>("--kernel-memory");
        var kmemTcp = new Option<string?>("--kernel-memory-tcp");
        var shares = new Option<ulong?>("--cpu-shares");
        var quota = new Option<long?>("--cpu-quota");
        var period = new Option<ulong?>("--cpu-period");
        var rtRuntime = new Option<long?>("--cpu-rt-runtime");
        var rtPeriod = new Option<ulong?>("--cpu-rt-period");
        var cpus = new Option<string?>("--cpuset-cpus");
        var mems = new Option<string?>("--cpuset-mems");
        var pids = new Option<long?>("--pids-limit");
        var blkio = new Option<ushort?>("--blkio-weight");
        c.Arguments.Add(a);
        foreach (var o in new Option[] { resources, memory, memRes, memSwap, kmem, kmemTcp, shares, quota, period, rtRuntime, rtPeriod, cpus, mems, pids, blkio })
            c.Options.Add(o);
        c.SetAction(p => guard(p, rt =>
        {
            LinuxResources r;
            if (p.GetValue(resources) is { } file)
                r = SpecJson.ParseResources(file == "-" ? ReadStdin() : File.ReadAllBytes(file), file);
            else r = new LinuxResources();
            long? Size(Option<string?> o) => p.GetValue(o) is { } s ? ParseSize(s, o.Name) : null;
            if (Size(memory) is { } m) (r.Memory ??= new()).Limit = m;
            if (Size(memRes) is { } mr) (r.Memory ??= new()).Reservation = mr;
            if (Size(memSwap) is { } ms) (r.Memory ??= new()).Swap = ms;
            if (Size(kmem) is { } km) (r.Memory ??= new()).Kernel = km;
            if (Size(kmemTcp) is { } kt) (r.Memory ??= new()).KernelTcp = kt;
            if (p.GetValue(shares) is { } sh) (r.Cpu ??= new()).Shares = sh;
            if (p.GetValue(quota) is { } q) (r.Cpu ??= new()).Quota = q;
            if (p.GetValue(period) is { } pe) (r.Cpu ??= new()).Period = pe;
            if (p.GetValue(rtRuntime) is { } rr) (r.Cpu ??= new()).RealtimeRuntime = rr;
            if (p.GetValue(rtPeriod) is { } rp) (r.Cpu ??= new()).RealtimePeriod = rp;
            if (p.GetValue(cpus) is { } cs) (r.Cpu ??= new()).Cpus = cs;
            if (p.GetValue(mems) is { } me) (r.Cpu ??= new()).Mems = me;
            if (p.GetValue(pids) is { } pl) r.Pids = new Pids { Limit = pl };
            if (p.GetValue(blkio) is { } bw) (r.BlockIO ??= new()).Weight = bw;
            rt.Update(p.GetValue(a)!, r);
            return 0;
        }));
        return c;
    }

    /// <summary>"-1", "1024", "512k", "64m", "1g" (as runc/docker units, powers of 1024).</summary>
    public static long ParseSize(string s, string what)
    {
        if (s == "-1") return -1;
        var t = s.Trim().ToLowerInvariant();
        long mul = 1;
        if (t.EndsWith('b')) t = t[..^1];
        if (t.Length > 0 && "kmgt".Contains(t[^1]))
        {
            mul = t[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, _ => 1L << 40 };
            t = t[..^1];
        }
        if (!double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) || v < 0)
            throw RuntimeException.Invalid($"invalid value \"{s}\" for {what}");
        return (long)(v * mul);
    }

    static TimeSpan ParseDuration(string s)
    {
        if (TimeSpan.TryParse(s, out var ts)) return ts;
        var units = new (string U, double Ms)[] { ("ms", 1), ("s", 1000), ("m", 60000), ("h", 3600000) };
        foreach (var (u, ms) in units)
            if (s.EndsWith(u, StringComparison.Ordinal) && double.TryParse(s[..^u.Length], System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0)
                return TimeSpan.FromMilliseconds(v * ms);
        throw RuntimeException.Invalid($"invalid --interval \"{s}\"");
    }

    static byte[] ReadStdin()
    {
        using var ms = new MemoryStream();
        Console.OpenStandardInput().CopyTo(ms);
        return ms.ToArray();
    }

    static void PrintTable(List<string[]> rows)
    {
        var widths = new int[rows[0].Length];
        foreach (var r in rows) for (var i = 0; i < r.Length; i++) widths[i] = Math.Max(widths[i], r[i].Length);
        var sb = new StringBuilder();
        foreach (var r in rows)
        {
            for (var i = 0; i < r.Length; i++)
                sb.Append(i == r.Length - 1 ? r[i] : r[i].PadRight(widths[i] + 3));
            sb.Append('\n');
        }
        Console.Out.Write(sb.ToString());
    }

    /// <summary>Runs ps(1) with the given options and keeps the header and the container's rows.</summary>
    static int PrintPs(IReadOnlyList<int> pids, string[] opts)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ps") { RedirectStandardOutput = true };
        foreach (var o in opts) psi.ArgumentList.Add(o);
        using var ps = System.Diagnostics.Process.Start(psi)!;
        var lines = ps.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        ps.WaitForExit();
        if (lines.Length == 0) return ps.ExitCode;
        var header = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var pidCol = Array.IndexOf(header, "PID");
        if (pidCol < 0) throw RuntimeException.Invalid("ps: couldn't find PID field in ps output");
        var set = pids.ToHashSet();
        var sb = new StringBuilder(lines[0]).Append('\n');
        foreach (var l in lines.Skip(1))
        {
            var f = l.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > pidCol && int.TryParse(f[pidCol], out var pid) && set.Contains(pid)) sb.Append(l).Append('\n');
        }
        Console.Out.Write(sb.ToString());
        return 0;
    }

    /// <summary>Inserts "--" after the container id of exec/ps, so the command's own flags are not
    /// read as ours (runc stops parsing flags at the first argument).</summary>
    static string[] SeparateCommand(string[] args)
    {
        var i = 0;
        while (i < args.Length && args[i].StartsWith('-'))
        {
            if (args[i] == "--") return args;
            i += GlobalValueOptions.Contains(args[i]) ? 2 : 1;
        }
        if (i >= args.Length || args[i] is not ("exec" or "ps")) return args;
        for (var j = i + 1; j < args.Length; j++)
        {
            var t = args[j];
            if (t == "--") return args;
            if (t.StartsWith('-') && t.Length > 1)
            {
                if (!t.Contains('=') && (ExecValueOptions.Contains(t) || GlobalValueOptions.Contains(t))) j++;
                continue;
            }
            // j is the container id
            var list = args.ToList();
            if (j + 1 < args.Length && args[j + 1] != "--") list.Insert(j + 1, "--");
            return [.. list];
        }
        return args;
    }
}

public static class FeaturesInfo
{
    public static Features Get()
    {
        var layout = CgroupLayout.Discover();
        return new Features
        {
            Hooks = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            MountOptions = ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime", "mand", "noatime",
                "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow",
                "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared",
                "slave", "strictatime", "suid", "symfollow", "sync", "unbindable"],
            Linux = new LinuxFeatures
            {
                Namespaces = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
                Capabilities = Caps.ToNames(Caps.All),
                Cgroup = new CgroupFeatures { V1 = layout.Mode != CgroupMode.V2, V2 = layout.Mode != CgroupMode.V1, Systemd = false, SystemdUser = false },
                Seccomp = new SeccompFeatures
                {
                    EnabledValue = true,
                    Actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                    Operators = ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                    Archs = ["SCMP_ARCH_AARCH64", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                    KnownFlags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                    SupportedFlags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                },
                Apparmor = new Enabled { Value = false },
                Selinux = new Enabled { Value = false },
                IntelRdt = new Enabled { Value = false },
                MountExtensions = new MountExtensions { Idmap = new Enabled { Value = false } },
            },
            Annotations = new Dictionary<string, string> { ["org.opencontainers.runtime-spec.features.runtime.name"] = "berth-runc", ["org.opencontainers.runtime-spec.features.runtime.version"] = RuncCli.Version },
        };
    }
}
