using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Berth.Engine.Containers;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Snapshots;
using Berth.Linux;
using Berth.Oci.Image;
using static Berth.Linux.Interop.Libc;
using OciConfig = Berth.Oci.Image.ContainerConfig;

namespace Berth.Engine.Build;

/// <summary>What a build was asked to do: docker build's options (CLI flags and POST /build's query).</summary>
public sealed class BuildOptions
{
    public string DockerfilePath { get; set; } = "Dockerfile";
    /// <summary>The Dockerfile's text when it does not come from the context (`-f -`, a path outside it).</summary>
    public string? DockerfileText { get; set; }
    public List<string> Tags { get; set; } = [];
    public Dictionary<string, string?> BuildArgs { get; set; } = [];
    public Dictionary<string, string> Labels { get; set; } = [];
    public string? Target { get; set; }
    public bool NoCache { get; set; }
    public bool Quiet { get; set; }
    /// <summary>Remove intermediate containers after a failed step too (docker's forcerm); after a
    /// successful step they always go.</summary>
    public bool ForceRemove { get; set; } = true;
    public string NetworkMode { get; set; } = "";
    public bool Pull { get; set; }
}

/// <summary>Where a build's output goes: docker's "stream" lines (Step N/M, RUN output) and the result.</summary>
public interface IBuildOutput
{
    void Stream(string text);
    /// <summary>The image ID once built (docker's {"aux":{"ID":…}}).</summary>
    void Result(string imageId);
}

/// <summary>A failed build: the message docker gives and, for a RUN that failed, its exit code.</summary>
public sealed class BuildException(string message, int code = 1) : Exception(message)
{
    public int Code { get; } = code;
}

/// <summary>
/// Builds an image from a Dockerfile as docker's classic builder does, on the engine's own pieces:
/// each RUN is a container of the current image (the build's env, workdir and user) whose changes
/// become a layer (<see cref="ContainerChanges"/>); COPY/ADD write into a snapshot of the current
/// image and keep the difference; the other instructions change the config only (an empty layer in
/// the history). Each step's result is an image in the store, kept while the build needs it; a step
/// whose parent, instruction and copied content match a previous build's reuses that result (the
/// cache, under &lt;root&gt;/build/cache). Intermediate containers and snapshots are removed, also
/// when a step fails.
/// </summary>
public sealed class ImageBuilder
{
    readonly ContainerManager _mgr;
    readonly ImageStore _store;
    readonly ISnapshotter _snapshots;
    readonly string _dataRoot;
    readonly BuildOptions _opt;
    readonly IBuildOutput _out;
    readonly BuildContext _ctx;
    readonly Func<string, CancellationToken, Task>? _pull;
    readonly CancellationToken _ct;
    readonly HashSet<string> _intermediate = [];
    readonly HashSet<string> _usedArgs = [];
    int _step, _steps;

    /// <param name="pull">Pulls a base image that is not in the store (null: such a FROM fails).</param>
    public ImageBuilder(ContainerManager mgr, BuildContext context, BuildOptions options, IBuildOutput output, Func<string, CancellationToken, Task>? pull, CancellationToken ct)
    {
        _mgr = mgr;
        _dataRoot = mgr.Store.Root;
        _store = new ImageStore(_dataRoot);
        _snapshots = OverlaySnapshotter.Create(_dataRoot);
        _opt = options;
        _out = output;
        _ctx = context;
        _pull = pull;
        _ct = ct;
    }

    /// <summary>The state of a stage after each step: its image (null while it is `scratch` with no
    /// step yet), config and layers.</summary>
    sealed class State
    {
        public string? ImageId;
        public ImageConfigFile Config = new();
        public List<Descriptor> Layers = [];
        public Dictionary<string, string> Args = new(StringComparer.Ordinal);
        public bool CmdSet;
        public string? Name;
    }

    void Say(string s) { if (!_opt.Quiet) _out.Stream(s); }

    /// <summary>Runs the build; returns the final image ID (sha256:…).</summary>
    public string Build()
    {
        foreach (var tag in _opt.Tags)
            if (!ImageReference.TryParse(tag, out _, out _)) throw new BuildException($"invalid argument \"{tag}\" for \"-t, --tag\" flag: invalid reference format");
        var text = _opt.DockerfileText ?? ReadDockerfile();
        Dockerfile df;
        try { df = Dockerfile.Parse(text); }
        catch (DockerfileException e) { throw new BuildException(e.Message); }
        var shell = new ShellWords(df.Escape);
        // ARGs before FROM: visible in FROM lines (and re-declared ARGs in stages take their value).
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        var stages = df.Stages;
        var lastIndex = stages.Count - 1;
        if (_opt.Target is { Length: > 0 } target)
        {
            lastIndex = stages.FindIndex(s => s.Name == target.ToLowerInvariant());
            if (lastIndex < 0) throw new BuildException($"failed to reach build target {target} in Dockerfile");
        }
        _steps = df.MetaArgs.Count + stages.Take(lastIndex + 1).Sum(s => 1 + s.Instructions.Count);
        var done = new List<State>();
        var keep = new HashSet<string>();
        string? final = null;
        try
        {
            foreach (var a in df.MetaArgs)
            {
                StepHeader(a);
                foreach (var (k, v) in ParseArg(a, shell, meta))
                {
                    if (_opt.BuildArgs.TryGetValue(k, out var given)) { meta[k] = given ?? Environment.GetEnvironmentVariable(k) ?? v ?? ""; _usedArgs.Add(k); }
                    else meta[k] = v ?? "";
                }
            }
            for (var si = 0; si <= lastIndex; si++)
            {
                var stage = stages[si];
                StepHeader(stage.From);
                var st = From(stage, shell, meta, done, stages);
                foreach (var ins in OnBuildTriggers(st, df.Escape)) Step(ins, st, shell, meta, done, stages, trigger: true);
                foreach (var ins in stage.Instructions)
                {
                    StepHeader(ins);
                    Step(ins, st, shell, meta, done, stages, trigger: false);
                }
                done.Add(st);
            }
            var last = done[^1];
            if (_opt.Labels.Count > 0)
            {
                var cfg = Clone(last.Config);
                cfg.Config ??= new OciConfig();
                foreach (var (k, v) in _opt.Labels) (cfg.Config.Labels ??= [])[k] = v;
                Commit(last, cfg, null, "LABEL " + string.Join(' ', _opt.Labels.Select(kv => $"{kv.Key}={kv.Value}")), cacheKey: null);
            }
            if (last.ImageId is null) throw new BuildException("No image was generated. Is your Dockerfile empty?");
            final = last.ImageId;
            var unused = _opt.BuildArgs.Keys.Where(k => !_usedArgs.Contains(k) && !PredefinedArgs.Contains(k)).Order(StringComparer.Ordinal).ToList();
            if (unused.Count > 0) Say($"[Warning] One or more build-args [{string.Join(' ', unused)}] were not consumed\n");
            Say($"Successfully built {Short(final)}\n");
            foreach (var tag in _opt.Tags)
            {
                var r = ImageReference.Parse(tag).WithDefaultTag();
                using (_store.LockShared()) _store.SetName(r, _store.GetRecord(ManifestOf(final))!.Target.Digest);
                Say($"Successfully tagged {r.FamiliarString}\n");
                Events.EventJournal.Emit(_dataRoot, "image", "tag", final, new Dictionary<string, string> { ["name"] = r.FamiliarString });
            }
            keep.Add(final);
            _out.Result(final);
            return final;
        }
        finally { DropIntermediate(keep); }
    }

    static readonly HashSet<string> PredefinedArgs = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

    string ReadDockerfile()
    {
        var rel = _opt.DockerfilePath.Length == 0 ? "Dockerfile" : _opt.DockerfilePath;
        using var root = Sys.Open(_ctx.Root, O_PATH | O_DIRECTORY);
        byte[]? bytes;
        try { bytes = RootfsPath.ReadFile(root, BuildContext.CleanRel(rel), 16 << 20); }
        catch (SyscallException) { bytes = null; }
        if (bytes is null && rel == "Dockerfile")
        {
            try { bytes = RootfsPath.ReadFile(root, "dockerfile", 16 << 20); } catch (SyscallException) { }
        }
        if (bytes is null) throw new BuildException($"Cannot locate specified Dockerfile: {rel}");
        return Encoding.UTF8.GetString(bytes);
    }

    void StepHeader(Instruction ins)
    {
        _step++;
        Say($"Step {_step}/{_steps} : {ins.Original}\n");
    }

    static string Short(string id) => id.StartsWith("sha256:", StringComparison.Ordinal) ? id[7..19] : id[..Math.Min(12, id.Length)];

    // ------------------------------------------------------------------ FROM

    State From(Stage stage, ShellWords shell, Dictionary<string, string> meta, List<State> done, List<Stage> stages)
    {
        var baseName = shell.Word(stage.BaseName, meta);
        foreach (var (k, _) in meta) if (stage.BaseName.Contains(k, StringComparison.Ordinal)) _usedArgs.Add(k);
        if (baseName.Length == 0) throw new BuildException($"base name ({stage.BaseName}) should not be blank");
        var st = new State { Name = stage.Name };
        // FROM an earlier stage
        var prior = done.FindIndex(s => s.Name is not null && s.Name == baseName.ToLowerInvariant());
        if (prior >= 0)
        {
            var p = done[prior];
            if (p.ImageId is null) throw new BuildException($"stage {baseName} produced no image");
            Load(st, p.ImageId);
            Say($" ---> {Short(st.ImageId!)}\n");
            return st;
        }
        if (baseName == "scratch")
        {
            st.Config = new ImageConfigFile { Architecture = ImageCommitter.Arch(), Os = "linux", Config = new OciConfig { Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] } };
            Say(" ---> \n");
            return st;
        }
        var id = ResolveOrPull(baseName);
        Load(st, id);
        Say($" ---> {Short(id)}\n");
        return st;
    }

    string ResolveOrPull(string name)
    {
        if (!_opt.Pull && ContainerImages.Exists(_dataRoot, name)) return _store.Resolve(name).Id;
        if (_pull is null) throw new BuildException($"pull access denied for {name}: the image is not in the store");
        try { _pull(name, _ct).GetAwaiter().GetResult(); }
        catch (EngineException e) { throw new BuildException(e.Message); }
        return _store.Resolve(name).Id;
    }

    void Load(State st, string imageId)
    {
        var rec = _store.Resolve(imageId).Record;
        var (layers, config) = ImageLayers.ReadWithConfigAsync(_store, rec, _ct).GetAwaiter().GetResult();
        st.ImageId = rec.Id;
        st.Config = config;
        st.Config.Config ??= new OciConfig();
        st.Layers = [.. layers];
    }

    /// <summary>The base image's ONBUILD triggers run right after FROM (docker's "# Executing N build triggers").</summary>
    IEnumerable<Instruction> OnBuildTriggers(State st, char escape)
    {
        var triggers = st.Config.Config?.OnBuild;
        if (triggers is not { Count: > 0 }) yield break;
        Say($" # Executing {triggers.Count} build trigger{(triggers.Count == 1 ? "" : "s")}\n");
        st.Config.Config!.OnBuild = null;
        foreach (var t in triggers)
        {
            Dockerfile d;
            try { d = Dockerfile.Parse($"# escape={escape}\nFROM scratch\n{t}\n"); }
            catch (DockerfileException e) { throw new BuildException($"invalid ONBUILD trigger \"{t}\": {e.Message}"); }
            foreach (var ins in d.Stages[0].Instructions) yield return ins;
        }
    }

    // ------------------------------------------------------------------ steps

    Dictionary<string, string> Env(State st)
    {
        var env = new Dictionary<string, string>(st.Args, StringComparer.Ordinal);
        foreach (var e in st.Config.Config?.Env ?? [])
        {
            var i = e.IndexOf('=');
            if (i > 0) env[e[..i]] = e[(i + 1)..];
        }
        return env;
    }

    void Step(Instruction ins, State st, ShellWords shell, Dictionary<string, string> meta, List<State> done, List<Stage> stages, bool trigger)
    {
        var env = Env(st);
        var cfg = Clone(st.Config);
        var c = cfg.Config ??= new OciConfig();
        try
        {
            switch (ins.Keyword)
            {
                case "RUN": Run(ins, st); return;
                case "COPY": case "ADD": Copy(ins, st, shell, env, done, stages); return;
                case "ARG":
                    foreach (var (k, v) in ParseArg(ins, shell, env))
                    {
                        string? value = v;
                        if (_opt.BuildArgs.TryGetValue(k, out var given)) { value = given ?? Environment.GetEnvironmentVariable(k) ?? value; _usedArgs.Add(k); }
                        else if (v is null && meta.TryGetValue(k, out var mv)) value = mv;
                        if (value is not null) st.Args[k] = value;
                        else st.Args.Remove(k);
                    }
                    Say($" ---> {(st.ImageId is null ? "" : Short(st.ImageId))}\n");
                    return;
                case "ENV":
                    foreach (var (k, v) in shell.KeyValues(ins.Args, "ENV", env))
                    {
                        c.Env ??= [];
                        c.Env.RemoveAll(e => e.StartsWith(k + "=", StringComparison.Ordinal));
                        c.Env.Add(k + "=" + v);
                        env[k] = v;
                    }
                    break;
                case "LABEL":
                    foreach (var (k, v) in shell.KeyValues(ins.Args, "LABEL", env)) (c.Labels ??= [])[k] = v;
                    break;
                case "MAINTAINER": cfg.Author = ins.Args; break;
                case "WORKDIR":
                    var wd = shell.Word(ins.Args, env);
                    c.WorkingDir = wd.StartsWith('/') ? Clean(wd) : Clean((c.WorkingDir is { Length: > 0 } cur ? cur : "/") + "/" + wd);
                    break;
                case "USER": c.User = shell.Word(ins.Args, env); break;
                case "STOPSIGNAL":
                    var sig = shell.Word(ins.Args, env);
                    try { Signals.Parse(sig); } catch (ArgumentException) { throw new BuildException($"failed to process \"{ins.Original}\": invalid signal: {sig}"); }
                    c.StopSignal = sig;
                    break;
                case "EXPOSE":
                    foreach (var p in shell.Split(ins.Args, env))
                    {
                        var port = p.Contains('/') ? p.ToLowerInvariant() : p + "/tcp";
                        var num = port[..port.IndexOf('/')];
                        if (!num.Split('-').All(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and < 65536))
                            throw new BuildException($"invalid containerPort: {num}");
                        (c.ExposedPorts ??= [])[port] = new EmptyObject();
                    }
                    break;
                case "VOLUME":
                    foreach (var v in ins.Json ?? shell.Split(ins.Args, env))
                    {
                        if (v.Trim().Length == 0) throw new BuildException("VOLUME specified can not be an empty string");
                        (c.Volumes ??= [])[v] = new EmptyObject();
                    }
                    break;
                case "CMD":
                    c.Cmd = ins.Json ?? [.. ShellOf(c), ins.Args];
                    st.CmdSet = true;
                    break;
                case "ENTRYPOINT":
                    c.Entrypoint = ins.Json ?? (ins.Args.Length == 0 ? null : [.. ShellOf(c), ins.Args]);
                    if (!st.CmdSet) c.Cmd = null;
                    break;
                case "SHELL": c.Shell = ins.Json; break;
                case "ONBUILD":
                    var trig = ins.Args.TrimStart();
                    var kw = trig.Split(' ', 2)[0].ToUpperInvariant();
                    if (kw is "ONBUILD" or "FROM" or "MAINTAINER") throw new BuildException($"{kw} isn't allowed as an ONBUILD trigger");
                    (c.OnBuild ??= []).Add(trig);
                    break;
                case "HEALTHCHECK": c.Healthcheck = Healthcheck(ins); break;
                default: throw new BuildException($"dockerfile parse error on line {ins.Line}: unknown instruction: {ins.Keyword}");
            }
        }
        catch (DockerfileException e) { throw new BuildException($"failed to process \"{ins.Original}\": {e.Message}"); }
        Commit(st, cfg, null, NopCreatedBy(ins), CacheKey(st, ins.Original, Convert.ToHexStringLower(SHA256.HashData(ImageJson.Serialize(cfg)))));
    }

    static string Clean(string p) => "/" + BuildContext.CleanRel(p);

    static List<string> ShellOf(OciConfig c) => c.Shell is { Count: > 0 } s ? s : ["/bin/sh", "-c"];

    static string NopCreatedBy(Instruction ins) => "/bin/sh -c #(nop) " + (ins.Keyword is "CMD" or "ENTRYPOINT" or "SHELL" or "VOLUME" or "HEALTHCHECK" ? " " : " ") + ins.Original;

    static HealthConfig Healthcheck(Instruction ins)
    {
        var args = ins.Args.Trim();
        if (args.Equals("NONE", StringComparison.OrdinalIgnoreCase)) return new HealthConfig { Test = ["NONE"] };
        var sp = args.IndexOfAny([' ', '\t']);
        var kw = (sp < 0 ? args : args[..sp]).ToUpperInvariant();
        if (kw != "CMD") throw new BuildException($"failed to process \"{ins.Original}\": HEALTHCHECK requires CMD or NONE");
        var rest = sp < 0 ? "" : args[(sp + 1)..].Trim();
        if (rest.Length == 0) throw new BuildException($"failed to process \"{ins.Original}\": HEALTHCHECK CMD requires a command");
        var json = rest.StartsWith('[') ? Dockerfile.TryJsonArray(rest) : null;
        var h = new HealthConfig { Test = json is null ? ["CMD-SHELL", rest] : ["CMD", .. json] };
        if (ins.Flag("interval") is { } i) h.Interval = Duration(i, ins);
        if (ins.Flag("timeout") is { } t) h.Timeout = Duration(t, ins);
        if (ins.Flag("start-period") is { } sp2) h.StartPeriod = Duration(sp2, ins);
        if (ins.Flag("start-interval") is { } si) h.StartInterval = Duration(si, ins);
        if (ins.Flag("retries") is { } r)
        {
            if (!int.TryParse(r, out var n) || n < 1) throw new BuildException($"failed to process \"{ins.Original}\": --retries must be at least 1");
            h.Retries = n;
        }
        return h;
    }

    /// <summary>Go durations as HEALTHCHECK takes them: 30s, 1m30s, 500ms, 1h.</summary>
    static long Duration(string s, Instruction ins)
    {
        var m = System.Text.RegularExpressions.Regex.Matches(s, @"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)");
        if (m.Count == 0 || string.Concat(m.Select(x => x.Value)) != s) throw new BuildException($"failed to process \"{ins.Original}\": time: invalid duration \"{s}\"");
        double ns = 0;
        foreach (System.Text.RegularExpressions.Match x in m)
        {
            var v = double.Parse(x.Groups[1].Value, CultureInfo.InvariantCulture);
            ns += v * x.Groups[2].Value switch { "ns" => 1, "us" or "µs" => 1e3, "ms" => 1e6, "s" => 1e9, "m" => 60e9, _ => 3600e9 };
        }
        return (long)ns;
    }

    IEnumerable<(string Key, string? Value)> ParseArg(Instruction ins, ShellWords shell, IReadOnlyDictionary<string, string> env)
    {
        foreach (var w in shell.RawWords(ins.Args))
        {
            var eq = w.IndexOf('=');
            if (eq == 0) throw new BuildException($"dockerfile parse error on line {ins.Line}: ARG names can not be blank");
            if (eq < 0) yield return (w, null);
            else yield return (w[..eq], shell.Word(w[(eq + 1)..], env));
        }
    }

    // ------------------------------------------------------------------ RUN

    void Run(Instruction ins, State st)
    {
        if (ins.Flags.Count > 0) throw new BuildException($"the --{ins.Flags[0].Name} option requires BuildKit: {ins.Original}");
        var c = st.Config.Config ??= new OciConfig();
        var cmd = ins.Json ?? [.. ShellOf(c), ins.Args];
        if (cmd.Count == 0) throw new BuildException($"dockerfile parse error on line {ins.Line}: RUN requires at least one argument");
        // The build's ARGs are in the command's environment and in its cache key and history (docker's "|N K=V" prefix).
        var args = st.Args.Where(kv => !(c.Env ?? []).Any(e => e.StartsWith(kv.Key + "=", StringComparison.Ordinal))).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var createdBy = (args.Count > 0 ? $"|{args.Count} {string.Join(' ', args.Select(kv => kv.Key + "=" + kv.Value))} " : "") + string.Join(' ', cmd);
        var key = CacheKey(st, "RUN " + createdBy, "");
        if (TryCache(st, key)) return;
        if (st.ImageId is null) throw new BuildException($"The command '{string.Join(' ', cmd)}' returned a non-zero code: 127: the stage has no files (FROM scratch) to run it in");
        var rec = new ContainerRecord();
        rec.Config.Image = st.ImageId;
        rec.Config.Cmd = cmd;
        rec.Config.Entrypoint = [""];
        rec.Config.Env = [.. c.Env ?? [], .. args.Select(kv => kv.Key + "=" + kv.Value)];
        rec.Config.WorkingDir = c.WorkingDir ?? "";
        rec.Config.User = c.User ?? "";
        rec.Config.Healthcheck = new HealthConfig { Test = ["NONE"] };
        rec.Config.AttachStdout = true; rec.Config.AttachStderr = true;
        rec.HostConfig.NetworkMode = _opt.NetworkMode;
        ContainerRecord created;
        try { created = _mgr.Create(rec); }
        catch (EngineException e) { throw new BuildException(e.Message); }
        Say($" ---> Running in {created.ShortId}\n");
        var removed = false;
        try
        {
            int code;
            try
            {
                _mgr.Start(created.Id, hold: true);
                code = Attach(created);
            }
            catch (EngineException e) { throw new BuildException($"The command '{string.Join(' ', cmd)}' could not be started: {e.Message}", e.ExitCode); }
            if (code != 0) throw new BuildException($"The command '{string.Join(' ', cmd)}' returned a non-zero code: {code}", code);
            var running = _mgr.Get(created.Id);
            var changes = ContainerChanges.Compute(_mgr, running);
            var cfg = Clone(st.Config);
            Commit(st, cfg, w => ContainerChanges.WriteLayer(running, changes, w), createdBy, key, run: true);
            _mgr.Remove(created.Id, force: true, volumes: true);
            removed = true;
            Say($"Removing intermediate container {created.ShortId}\n");
            Say($" ---> {Short(st.ImageId!)}\n");
        }
        finally
        {
            if (!removed)
            {
                try { _mgr.Remove(created.Id, force: true, volumes: true); } catch (EngineException) { }
            }
        }
    }

    /// <summary>Streams the RUN's output to the build output until it exits; returns its exit code.</summary>
    int Attach(ContainerRecord c)
    {
        using var fd = _mgr.OpenAttach(c, stdin: false, stdout: true, stderr: true);
        if (fd is not null)
        {
            while (Monitor.MonitorProtocol.ReadFrame(fd.Value) is { } f)
            {
                switch (f.Type)
                {
                    case Monitor.MonitorProtocol.Stdout:
                    case Monitor.MonitorProtocol.Stderr:
                        Say(Encoding.UTF8.GetString(f.Payload));
                        break;
                    case Monitor.MonitorProtocol.Exit:
                        return int.Parse(Encoding.ASCII.GetString(f.Payload), CultureInfo.InvariantCulture);
                }
            }
        }
        return _mgr.Wait(c.Id);
    }

    // ------------------------------------------------------------------ COPY / ADD

    void Copy(Instruction ins, State st, ShellWords shell, Dictionary<string, string> env, List<State> done, List<Stage> stages)
    {
        var words = ins.Json ?? shell.Split(ins.Args, env);
        if (ins.Json is not null) words = [.. words.Select(w => shell.Word(w, env))];
        if (words.Count < 2) throw new BuildException($"{ins.Keyword} requires at least two arguments, but only one was provided. Destination could not be determined.");
        var sources = words[..^1];
        var dest = words[^1];
        var c = st.Config.Config ??= new OciConfig();
        var destAbs = dest.StartsWith('/') ? dest : (c.WorkingDir is { Length: > 0 } wd ? wd : "/") + "/" + dest;
        var destIsDir = dest.EndsWith('/') || dest.EndsWith("/.", StringComparison.Ordinal) || dest is "." or "..";
        var destRel = BuildContext.CleanRel(destAbs);
        uint? mode = null;
        if (ins.Flag("chmod") is { } chmod)
        {
            if (!uint.TryParse(chmod, NumberStyles.None, CultureInfo.InvariantCulture, out _) || chmod.Any(ch => ch > '7'))
                throw new BuildException($"invalid chmod parameter: {chmod}: only octal modes are supported");
            mode = Convert.ToUInt32(chmod, 8);
        }
        var from = ins.Flag("from");
        if (from is not null && ins.Keyword == "ADD") throw new BuildException("ADD --from is not supported: use COPY --from");
        foreach (var s in sources)
            if (s.Contains("://", StringComparison.Ordinal))
                throw new BuildException(ins.Keyword == "ADD" ? $"ADD from a URL is not supported by Berth (no network during builds): {s}" : $"COPY does not support URLs as sources: {s}");

        // The source tree: the context, an earlier stage, or an image.
        using var sourceView = from is null ? null : OpenFrom(shell.Word(from, env), done);
        var srcRoot = sourceView?.Path ?? _ctx.Root;
        using var rootFd = Sys.Open(srcRoot, O_PATH | O_DIRECTORY);
        Func<string, bool>? ignored = sourceView is null ? _ctx.IsIgnored : null;

        // The target's view: needed for --chown names, existing directories and missing parents.
        using var target = SnapshotView.Open(_snapshots, st.ImageId is null ? null : ContainerImages.Resolve(_dataRoot, st.ImageId).TopLayer, _dataRoot);
        using var targetRoot = Sys.Open(target.Path, O_PATH | O_DIRECTORY);
        int? uid = null, gid = null;
        if (ins.Flag("chown") is { } chown)
        {
            var owner = shell.Word(chown, env);
            try
            {
                var u = SpecBuilder.ResolveUser(target.Path, owner);
                uid = (int)u.Uid;
                gid = owner.Contains(':') ? (int)u.Gid : (int)u.Uid; // docker: no group given, the GID is the UID
            }
            catch (EngineException e) { throw new BuildException($"unable to convert uid/gid chown string to host mapping: {e.Message}"); }
        }

        // Expand the sources (globs) to paths that exist.
        var matches = new List<string>();
        foreach (var s in sources)
        {
            if (sourceView is null && (s.StartsWith('/') ? false : BuildContext.Escapes(s)))
                throw new BuildException($"forbidden path outside the build context: {s} ()");
            var rel = BuildContext.CleanRel(s);
            if (BuildContext.HasWildcards(rel))
            {
                var found = Glob(rootFd, rel, ignored);
                if (found.Count == 0) throw new BuildException($"{ins.Keyword} failed: no source files were specified");
                matches.AddRange(found);
                continue;
            }
            if ((ignored is not null && ignored(rel)) || !ExistsIn(rootFd, rel))
                throw new BuildException($"{ins.Keyword} failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist");
            matches.Add(rel);
        }
        if (matches.Count > 1 || sources.Any(BuildContext.HasWildcards))
        {
            if (matches.Count > 1 && !destIsDir) throw new BuildException($"When using {ins.Keyword} with more than one source file, the destination must be a directory and end with a /");
        }
        // An existing directory at the destination takes the sources inside it.
        if (!destIsDir && IsDirIn(targetRoot, destRel)) destIsDir = true;

        var tmp = Path.Combine(_dataRoot, "build", "tmp", "copy-" + Guid.NewGuid().ToString("N")[..12] + ".tar");
        Directory.CreateDirectory(Path.GetDirectoryName(tmp)!);
        try
        {
            var hash = new IncrementalHashSink();
            using (var f = File.Create(tmp))
            using (var tar = new CopyTar(f) { Uid = uid, Gid = gid, Mode = mode, Ignored = ignored, Hash = hash })
            {
                // missing parents of the destination (docker creates them, 0755)
                var parentRel = destIsDir ? destRel : (destRel.Contains('/') ? destRel[..destRel.LastIndexOf('/')] : "");
                var acc = "";
                foreach (var part in parentRel.Split('/', StringSplitOptions.RemoveEmptyEntries))
                {
                    acc = acc.Length == 0 ? part : acc + "/" + part;
                    if (!ExistsIn(targetRoot, acc)) tar.AddParent(acc);
                }
                foreach (var m in matches)
                {
                    var (parentDir, name) = SplitRel(m);
                    using var pfd = parentDir.Length == 0 ? Sys.Open(srcRoot, O_PATH | O_DIRECTORY) : RootfsPath.OpenDirectory(rootFd, parentDir, create: false)!;
                    using var pdir = Sys.Open(RootfsPath.ProcFdPath(pfd), O_RDONLY | O_DIRECTORY);
                    var srcName = name.Length == 0 ? "." : name;
                    // The named source itself is followed when it is a symlink (in-root).
                    var st0 = FileAt.TryStat(pdir, srcName);
                    if (st0 is { } sst && sst.Type == S_IFLNK)
                    {
                        using var resolved = RootfsPath.TryOpen(rootFd, m) ?? throw new BuildException($"{ins.Keyword} failed: file not found in build context: stat {m}: file does not exist");
                        using var real = Sys.Open(RootfsPath.ProcFdPath(resolved), O_PATH);
                        AddSource(tar, ins, real, m, destRel, destIsDir);
                        continue;
                    }
                    if (ins.Keyword == "ADD" && st0 is { IsRegular: true } && IsLocalArchive(pdir, srcName))
                    {
                        hash.Add("archive " + m + "\n");
                        using var af = FileAt.OpenRead(pdir, srcName);
                        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(af.Value, ownsHandle: false);
                        using var data = new FileStream(handle, FileAccess.Read, 1, isAsync: false);
                        hash.AddStream(data);
                        _pendingArchives.Add((Path.Combine(srcRoot, m), destRel));
                        continue;
                    }
                    var destName = destIsDir ? Join(destRel, name.Length == 0 ? "" : name, st0) : destRel;
                    tar.Add(pdir, srcName, m, destName, contentsOnly: st0 is { IsDirectory: true }, skipTop: ExistsIn(targetRoot, destName));
                }
            }
            var digest = hash.Hex();
            var fromTag = from is null ? "" : $" from {from}";
            var createdBy = $"/bin/sh -c #(nop) {ins.Keyword} {(matches.Count == 1 ? "file" : "multi")}:{digest}{fromTag} in {destAbs} ";
            var key = CacheKey(st, ins.Original + (uid is null ? "" : $" {uid}:{gid}"), digest);
            var archives = _pendingArchives.ToList();
            _pendingArchives.Clear();
            if (TryCache(st, key)) return;
            Commit(st, Clone(st.Config), w => ApplyAndDiff(st, tmp, archives, w), createdBy, key, run: true);
            Say($" ---> {Short(st.ImageId!)}\n");
        }
        finally
        {
            _pendingArchives.Clear();
            File.Delete(tmp);
        }
    }

    readonly List<(string Path, string DestRel)> _pendingArchives = [];

    static string Join(string destRel, string name, FileStat? st) =>
        st is { IsDirectory: true } ? destRel : (destRel.Length == 0 ? name : destRel + "/" + name);

    void AddSource(CopyTar tar, Instruction ins, Fd resolved, string m, string destRel, bool destIsDir)
    {
        using var dir = RootfsPath.IsDirectory(resolved) ? Sys.Open(RootfsPath.ProcFdPath(resolved), O_RDONLY | O_DIRECTORY) : null;
        if (dir is not null) { tar.Add(dir, ".", m, destRel, contentsOnly: true, skipTop: true); return; }
        // a regular file behind a symlink: add it through its parent, by the symlink's name
        var name = m.Contains('/') ? m[(m.LastIndexOf('/') + 1)..] : m;
        using var parentFd = Sys.Open(RootfsPath.ProcFdPath(resolved) + "/..", O_PATH | O_DIRECTORY);
        var target = File.ResolveLinkTarget(RootfsPath.ProcFdPath(resolved), false)?.FullName ?? name;
        var realName = Path.GetFileName(target);
        using var pdir = Sys.Open(Path.GetDirectoryName(target) ?? "/", O_RDONLY | O_DIRECTORY);
        _ = parentFd;
        tar.Add(pdir, realName, m, destIsDir ? (destRel.Length == 0 ? name : destRel + "/" + name) : destRel, contentsOnly: false);
        _ = ins;
    }

    static bool IsLocalArchive(Fd dir, string name)
    {
        using var f = FileAt.OpenRead(dir, name);
        var head = new byte[512];
        var n = 0;
        while (n < head.Length)
        {
            var r = Sys.Read(f.Value, head.AsSpan(n));
            if (r == 0) break;
            n += r;
        }
        if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) return true;
        if (n >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) return true;
        return n >= 262 && Encoding.ASCII.GetString(head, 257, 5) == "ustar";
    }

    /// <summary>Writes the COPY's files (and ADD's archives) into a snapshot of the current image and
    /// returns the difference as the new layer.</summary>
    void ApplyAndDiff(State st, string tarPath, List<(string Path, string DestRel)> archives, Stream layer)
    {
        var parent = st.ImageId is null ? null : ContainerImages.Resolve(_dataRoot, st.ImageId).TopLayer;
        var key = "build-" + Guid.NewGuid().ToString("N")[..16];
        var mount = Path.Combine(_dataRoot, "build", "tmp", key);
        Directory.CreateDirectory(mount);
        var mounts = _snapshots.Prepare(key, parent);
        try
        {
            SnapshotMounter.Mount(mounts, mount);
            try
            {
                using (var input = File.OpenRead(tarPath))
                    Images.Unpack.LayerUnpacker.Unpack(input, LayerCompression.None, mount, new Images.Unpack.UnpackOptions { Whiteouts = Images.Unpack.WhiteoutMode.None, Chown = true }, expectedDiffId: null);
                foreach (var (path, destRel) in archives)
                {
                    using var root = Sys.Open(mount, O_PATH | O_DIRECTORY);
                    using var dir = RootfsPath.OpenDirectory(root, destRel, create: true)!;
                    using var a = File.OpenRead(path);
                    var head = new byte[4];
                    var n = a.Read(head);
                    a.Position = 0;
                    var compression = n >= 2 && head[0] == 0x1f && head[1] == 0x8b ? LayerCompression.Gzip
                        : n >= 4 && head[0] == 0x28 && head[1] == 0xb5 ? LayerCompression.Zstd : LayerCompression.None;
                    Images.Unpack.LayerUnpacker.Unpack(a, compression, RootfsPath.ProcFdPath(dir), new Images.Unpack.UnpackOptions { Whiteouts = Images.Unpack.WhiteoutMode.None, Chown = true }, expectedDiffId: null);
                }
                if (parent is null)
                {
                    // FROM scratch: everything in the snapshot is new
                    using var root = Sys.Open(mount, O_RDONLY | O_DIRECTORY);
                    using var all = new TreeTar(layer);
                    all.AddContents(root, "");
                }
                else
                {
                    var rec = new ContainerRecord { Id = key, Name = "/" + key, Rootfs = mount, ImageLayer = parent };
                    var changes = ContainerChanges.Compute(_mgr, rec);
                    ContainerChanges.WriteLayer(rec, changes, layer);
                }
            }
            catch (Images.Unpack.LayerException e) { throw new BuildException($"failed to copy files: {e.Message.Replace("layer: ", "")}"); }
            finally { SnapshotMounter.Unmount(mount); }
        }
        finally
        {
            _snapshots.Remove(key);
            try { Directory.Delete(mount); } catch (IOException) { }
        }
    }

    /// <summary>A read-only look at an image's files (COPY --from, a COPY's target): a snapshot on
    /// its top layer mounted in a temp dir, removed on dispose.</summary>
    sealed class SnapshotView : IDisposable
    {
        public string Path { get; private init; } = "";
        Action? _release;

        public static SnapshotView Open(ISnapshotter snapshots, string? chainId, string dataRoot)
        {
            var key = "build-view-" + Guid.NewGuid().ToString("N")[..12];
            var root = System.IO.Path.Combine(dataRoot, "build", "tmp", key);
            Directory.CreateDirectory(root);
            try
            {
                var mounts = snapshots.Prepare(key, chainId);
                try { SnapshotMounter.Mount(mounts, root); }
                catch { snapshots.Remove(key); throw; }
            }
            catch { Directory.Delete(root); throw; }
            return new SnapshotView
            {
                Path = root,
                _release = () =>
                {
                    try { SnapshotMounter.Unmount(root); }
                    finally { snapshots.Remove(key); try { Directory.Delete(root); } catch (IOException) { } }
                },
            };
        }

        public void Dispose() => _release?.Invoke();
    }

    SnapshotView OpenFrom(string from, List<State> done)
    {
        string imageId;
        var stage = int.TryParse(from, out var idx) && idx >= 0 && idx < done.Count ? done[idx] : done.FirstOrDefault(s => s.Name == from.ToLowerInvariant());
        if (stage is not null)
        {
            if (stage.ImageId is null) return SnapshotView.Open(_snapshots, null, _dataRoot);
            imageId = stage.ImageId;
        }
        else imageId = ResolveOrPull(from);
        var top = ContainerImages.Resolve(_dataRoot, imageId).TopLayer;
        return SnapshotView.Open(_snapshots, top, _dataRoot);
    }

    static (string Parent, string Name) SplitRel(string rel)
    {
        var i = rel.LastIndexOf('/');
        return i < 0 ? ("", rel) : (rel[..i], rel[(i + 1)..]);
    }

    static bool ExistsIn(Fd root, string rel)
    {
        if (rel.Length == 0) return true;
        try
        {
            var (parent, name) = SplitRel(rel);
            using var d = RootfsPath.OpenDirectory(root, parent, create: false);
            return d is not null && FileAt.TryStat(d, name) is not null;
        }
        catch (SyscallException) { return false; }
    }

    static bool IsDirIn(Fd root, string rel)
    {
        try
        {
            using var d = RootfsPath.OpenDirectory(root, rel, create: false);
            return d is not null;
        }
        catch (SyscallException) { return false; }
    }

    /// <summary>Context paths matching a glob, component by component.</summary>
    static List<string> Glob(Fd root, string pattern, Func<string, bool>? ignored)
    {
        var parts = pattern.Split('/');
        var results = new List<string> { "" };
        foreach (var part in parts)
        {
            var next = new List<string>();
            foreach (var basePath in results)
            {
                if (!BuildContext.HasWildcards(part)) { var p = basePath.Length == 0 ? part : basePath + "/" + part; if (ExistsIn(root, p)) next.Add(p); continue; }
                Fd? d;
                try { d = RootfsPath.OpenDirectory(root, basePath, create: false); }
                catch (SyscallException) { continue; }
                if (d is null) continue;
                using (d)
                using (var rd = Sys.Open(RootfsPath.ProcFdPath(d), O_RDONLY | O_DIRECTORY))
                {
                    var re = BuildContext.GlobRegex(part);
                    foreach (var n in FileAt.ListNames(rd).Order(StringComparer.Ordinal))
                        if (re.IsMatch(n)) next.Add(basePath.Length == 0 ? n : basePath + "/" + n);
                }
            }
            results = next;
        }
        return ignored is null ? results : results.Where(r => !ignored(r)).ToList();
    }

    // ------------------------------------------------------------------ images, cache

    static ImageConfigFile Clone(ImageConfigFile c) => ImageJson.ParseConfig(ImageJson.Serialize(c));

    string CacheKey(State st, string instruction, string contentDigest) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{st.ImageId ?? "scratch"}\n{instruction}\n{contentDigest}\n{JsonSerializer.Serialize(st.Config.Config?.Env ?? [], EngineListJsonContext.Default.ListString)}")));

    string CacheDir => Path.Combine(_dataRoot, "build", "cache");

    /// <summary>A cached result for this step: restores its image record (the blobs must still be in
    /// the content store) and moves the stage on to it.</summary>
    bool TryCache(State st, string key)
    {
        if (_opt.NoCache) return false;
        var path = Path.Combine(CacheDir, key);
        if (!File.Exists(path)) return false;
        try
        {
            var manifestDigest = Digest.Parse(File.ReadAllText(path).Trim());
            if (!_store.Content.Exists(manifestDigest)) return false;
            var manifestBytes = _store.Content.ReadBlobAsync(manifestDigest, _ct).GetAwaiter().GetResult();
            var manifest = ImageJson.ParseManifest(manifestBytes);
            if (!_store.Content.Exists(Digest.Parse(manifest.Config.Digest)) || manifest.Layers.Any(l => !_store.Content.Exists(Digest.Parse(l.Digest)))) return false;
            var config = ImageJson.ParseConfig(_store.Content.ReadBlobAsync(Digest.Parse(manifest.Config.Digest), _ct).GetAwaiter().GetResult());
            var md = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = manifestDigest.ToString(), Size = manifestBytes.Length };
            if (_store.GetRecord(md.Digest) is null)
            {
                using (_store.LockShared()) _store.PutRecord(ImageRecord.For(md, md, manifest, config, [md.Digest]));
                _intermediate.Add(manifest.Config.Digest);
            }
            st.ImageId = manifest.Config.Digest;
            st.Config = config;
            st.Config.Config ??= new OciConfig();
            st.Layers = [.. manifest.Layers];
            Say($" ---> Using cache\n ---> {Short(st.ImageId)}\n");
            return true;
        }
        catch (Exception e) when (e is IOException or FormatException or ImageException or ArgumentException) { return false; }
    }

    /// <summary>Writes the step's image (with a layer from <paramref name="writeLayer"/>, or none)
    /// and moves the stage on to it.</summary>
    void Commit(State st, ImageConfigFile cfg, Action<Stream>? writeLayer, string createdBy, string? cacheKey, bool run = false)
    {
        if (writeLayer is null && cacheKey is not null && TryCache(st, cacheKey)) return;
        cfg.Architecture = cfg.Architecture.Length > 0 ? cfg.Architecture : ImageCommitter.Arch();
        cfg.Os = cfg.Os.Length > 0 ? cfg.Os : "linux";
        var history = new History { Created = ImageCommitter.Now(), CreatedBy = createdBy };
        ImageRecord rec;
        try { rec = ImageCommitter.WriteImage(_store, cfg, st.Layers, writeLayer, null, history, ""); }
        catch (ImageException e) { throw new BuildException(e.Message); }
        var (layers, _) = ImageLayers.ReadWithConfigAsync(_store, rec, _ct).GetAwaiter().GetResult();
        _intermediate.Add(rec.Id);
        st.ImageId = rec.Id;
        st.Config = cfg;
        st.Layers = [.. layers];
        if (cacheKey is not null)
        {
            Directory.CreateDirectory(CacheDir);
            var tmp = Path.Combine(CacheDir, cacheKey + ".tmp" + Environment.ProcessId);
            File.WriteAllText(tmp, rec.Manifest.Digest);
            File.Move(tmp, Path.Combine(CacheDir, cacheKey), overwrite: true);
        }
        if (!run) Say($" ---> {Short(rec.Id)}\n");
    }

    string ManifestOf(string imageId) => _store.Resolve(imageId).Record.Target.Digest;

    /// <summary>Intermediate images this build wrote or restored go again (their blobs stay for the
    /// cache until an image prune); the final image and any image a name points at stay.</summary>
    void DropIntermediate(HashSet<string> keep)
    {
        if (_intermediate.Count == 0) return;
        try
        {
            var named = _store.ListNames().Select(n => n.Target).ToHashSet(StringComparer.Ordinal);
            using (_store.LockShared())
                foreach (var rec in _store.ListRecords().Where(r => _intermediate.Contains(r.Id) && !keep.Contains(r.Id) && !named.Contains(r.Target.Digest)).ToList())
                    _store.DeleteRecord(rec.Target.Digest);
        }
        catch (IOException) { }
    }
}
