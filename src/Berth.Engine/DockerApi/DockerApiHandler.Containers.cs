using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Berth.Engine.Containers;
using Berth.Engine.Monitor;
using Berth.Linux;
using Berth.Images.Reference;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Berth.Engine.DockerApi;

public sealed partial class DockerApiHandler
{
    // ------------------------------------------------------------------ create

    async Task CreateContainer(HttpContext ctx, string[] _)
    {
        var body = await ReadJsonAsync(ctx, DockerJson.Default.CreateContainerBody) ?? throw ApiError.BadRequest("config cannot be empty in order to create a container");
        var name = Query(ctx, "name") ?? "";
        // docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+, so at least two characters
        if (name.Length > 0 && (!ContainerStore.ValidName(name.TrimStart('/')) || name.TrimStart('/').Length < 2))
            throw ApiError.BadRequest($"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        // before API 1.44 a container joins one network at create, as dockerd refuses more (its map's order)
        if (body.NetworkingConfig?.EndpointsConfig is { Count: > 1 } endpoints && !SpeaksAtLeast(ctx, "1.44"))
            throw ApiError.BadRequest("Container cannot be connected to network endpoints: " + string.Join(", ", endpoints.Keys));
        var rec = ToRecord(body);
        rec.Name = name;
        try { rec = await Blocking(() => Containers.Create(rec)); }
        catch (EngineException e) when (e.Kind == ErrorKind.AlreadyExists && NameOwner(e.Message) is { } owner)
        {
            throw new ApiError(409, $"Conflict. The container name \"/{name.TrimStart('/')}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name.");
        }
        catch (Exception e) when (e is EngineException { Kind: ErrorKind.NotFound } or Berth.Engine.Networking.NetworkException { Kind: Berth.Engine.Networking.NetworkErrorKind.NotFound }
            && e.Message.StartsWith("network ", StringComparison.Ordinal))
        {
            // not a 404: on a 404 the docker CLI pulls the image and tries again
            throw ApiError.BadRequest(e.Message.Replace("\"", "", StringComparison.Ordinal));
        }
        catch (EngineException e) when (e.Kind == ErrorKind.NotFound && e.Message.StartsWith("No such image", StringComparison.Ordinal))
        {
            // docker's words (the docker CLI pulls on a 404 and retries)
            var familiar = body.Image!;
            try { familiar = ImageReference.Parse(body.Image!).WithDefaultTag().FamiliarString; } catch (Berth.Images.ImageException) { }
            throw ApiError.NotFound("No such image: " + familiar);
        }
        await WriteJsonAsync(ctx, 201, new CreateResponse { Id = rec.Id }, DockerJson.Default.CreateResponse);
    }

    /// <summary>The id in the engine's "name … is already in use by container \"ID\"" message.</summary>
    static string? NameOwner(string message) =>
        System.Text.RegularExpressions.Regex.Match(message, "already in use by container \"([0-9a-f]+)\"") is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The body of POST /containers/create as the engine's create request.</summary>
    static ContainerRecord ToRecord(CreateContainerBody b)
    {
        var rec = new ContainerRecord();
        var cfg = rec.Config;
        cfg.Hostname = b.Hostname ?? "";
        cfg.Domainname = b.Domainname ?? "";
        cfg.User = b.User ?? "";
        cfg.AttachStdin = b.AttachStdin; cfg.AttachStdout = b.AttachStdout; cfg.AttachStderr = b.AttachStderr;
        cfg.Tty = b.Tty; cfg.OpenStdin = b.OpenStdin; cfg.StdinOnce = b.StdinOnce;
        cfg.Env = b.Env ?? [];
        cfg.Cmd = b.Cmd;
        cfg.Image = b.Image ?? "";
        cfg.WorkingDir = b.WorkingDir ?? "";
        cfg.Entrypoint = b.Entrypoint;
        cfg.Labels = b.Labels ?? [];
        cfg.StopSignal = b.StopSignal ?? "";
        cfg.StopTimeout = b.StopTimeout;
        cfg.Healthcheck = b.Healthcheck;
        if (cfg.Image.Length == 0) throw ApiError.BadRequest("no image specified");
        // the engine's own HostConfig, as the CLI fills it: resources, devices, ulimits and --mount
        // (HostConfig.Mounts) are validated and applied by the engine as for `berth run`
        var hc = rec.HostConfig = (b.HostConfig ?? new HostConfig()).Normalize();
        foreach (var bind in hc.Binds)
        {
            var src = bind.Split(':')[0];
            if (src.Length > 0 && !src.StartsWith('/') && bind.Contains(':') && !ContainerStore.ValidName(src))
                throw ApiError.BadRequest($"create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path");
        }
        // docker's "default" is the default bridge ("" to the engine); 0 or less pids is no limit
        if (hc.NetworkMode == "default") hc.NetworkMode = "";
        if (hc.PidsLimit is <= 0) hc.PidsLimit = null;
        if (b.ExposedPorts is { Count: > 0 } exposed)
            cfg.ExposedPorts = exposed.Keys.ToDictionary(k => k, _ => new Berth.Oci.Image.EmptyObject());
        // `docker run -v /path`: an anonymous volume
        if (b.Volumes is { Count: > 0 } volumes)
            cfg.Volumes = volumes.Keys.ToDictionary(k => k, _ => new Berth.Oci.Image.EmptyObject());
        rec.NetworkingConfig = b.NetworkingConfig;
        return rec;
    }

    // ------------------------------------------------------------------ lifecycle

    /// <summary>Containers with an attach waiting for their start: started with the monitor holding
    /// their output until the attach connects, so none of it is lost.</summary>
    readonly ConcurrentDictionary<string, int> _pendingAttach = new();
    /// <summary>Exit codes attaches received, for a wait whose container was removed (--rm) meanwhile.</summary>
    readonly ConcurrentDictionary<string, int> _exitCodes = new();

    /// <summary>Per container, a task completed (and replaced) whenever this service changes the
    /// container's state: started, its exit seen, removed. An attach or wait that waits for such a
    /// change wakes at once instead of on its next poll; the poll stays, at the same interval, for
    /// changes made by other processes (the CLI, a monitor's restart).</summary>
    readonly ConcurrentDictionary<string, TaskCompletionSource> _changes = new();

    void Changed(string id)
    {
        if (_changes.TryRemove(id, out var t)) t.TrySetResult();
    }

    /// <summary>The task <see cref="Changed"/> completes next for this container: taken before the
    /// state is read, so a change between the read and the wait is not missed.</summary>
    Task NextChange(string id)
    {
        if (_changes.Count > 4096) _changes.Clear(); // entries nobody waits on any more (their waiters poll on)
        return _changes.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
    }

    /// <summary>Waits until <paramref name="change"/> completes or <paramref name="pollMs"/> pass.</summary>
    static async Task ChangeOrPoll(Task change, int pollMs, CancellationToken ct)
    {
        await Task.WhenAny(change, Task.Delay(pollMs, ct));
        ct.ThrowIfCancellationRequested();
    }

    async Task StartContainer(HttpContext ctx, string[] a)
    {
        var c = await Blocking(() => Containers.Get(a[0]));
        if (c.State.Running) { await NoContent(ctx, 304); return; }
        try { await Blocking(() => { Containers.Start(c.Id, hold: _pendingAttach.ContainsKey(c.Id)); TrackMonitor(c.Id); }); }
        catch (EngineException e) when (e.Kind == ErrorKind.FailedPrecondition)
        {
            if (c.HostConfig.AutoRemove) { try { await Blocking(() => Containers.Remove(c.Id, force: true)); } catch (EngineException) { } }
            Changed(c.Id);
            // 126/127 (the command cannot be run) are the client's mistake, as docker answers them
            throw new ApiError(e.ExitCode is 126 or 127 ? 400 : 500, StartFailure(e.Message));
        }
        Changed(c.Id); // an attach or wait of this container goes on at once
        await NoContent(ctx);
    }

    /// <summary>A process that could not be started, in dockerd's words: the docker CLI picks its exit
    /// code from them (127 for "executable file not found"/"no such file or directory", 126 for
    /// "permission denied"), and scripts match them.</summary>
    static string StartFailure(string m)
    {
        if (!m.StartsWith("exec: ", StringComparison.Ordinal)) return m;
        m = m.Replace(": Permission denied", ": permission denied", StringComparison.Ordinal);
        if (System.Text.RegularExpressions.Regex.Match(m, "^exec: \"([^\"]+)\": No such file or directory$") is { Success: true } nf)
            m = $"exec: \"{nf.Groups[1].Value}\": stat {nf.Groups[1].Value}: no such file or directory";
        return "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: " + m + ": unknown";
    }

    async Task StopContainer(HttpContext ctx, string[] a)
    {
        var t = QueryInt(ctx, "t");
        var c = await Blocking(() => Containers.Get(a[0]));
        if (!c.State.Running) { await NoContent(ctx, 304); return; }
        await Blocking(() => Containers.Stop(c.Id, t));
        await NoContent(ctx);
    }

    async Task RestartContainer(HttpContext ctx, string[] a)
    {
        var t = QueryInt(ctx, "t");
        var c = await Blocking(() => Containers.Get(a[0]));
        await Blocking(() =>
        {
            Containers.Stop(c.Id, t);
            Containers.Start(c.Id, hold: false);
            TrackMonitor(c.Id);
        });
        await NoContent(ctx);
    }

    async Task KillContainer(HttpContext ctx, string[] a)
    {
        var signal = Query(ctx, "signal") is { Length: > 0 } s ? s : "SIGKILL";
        var c = await Blocking(() => Containers.Get(a[0]));
        try { Signals.Parse(signal); }
        catch (ArgumentException) { throw ApiError.BadRequest("Invalid signal: " + signal); }
        if (!c.State.Running) throw new ApiError(409, $"Cannot kill container: {a[0]}: Container {c.Id} is not running");
        await Blocking(() => Containers.Kill(c.Id, signal));
        await NoContent(ctx);
    }

    async Task PauseContainer(HttpContext ctx, string[] a)
    {
        await Blocking(() => Containers.Pause(a[0], true));
        await NoContent(ctx);
    }

    async Task UnpauseContainer(HttpContext ctx, string[] a)
    {
        await Blocking(() => Containers.Pause(a[0], false));
        await NoContent(ctx);
    }

    async Task RenameContainer(HttpContext ctx, string[] a)
    {
        var name = Query(ctx, "name");
        if (string.IsNullOrEmpty(name)) throw ApiError.BadRequest("the new name is required (query parameter name)");
        var c = await Blocking(() => Containers.Get(a[0]));
        if (c.BareName == name.TrimStart('/')) throw ApiError.BadRequest("Renaming a container with the same name as its current name");
        if (!ContainerStore.ValidName(name.TrimStart('/')))
            throw ApiError.BadRequest($"Error when allocating new name: Invalid container name (/{name.TrimStart('/')}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        try { await Blocking(() => Containers.Rename(c.Id, name.TrimStart('/'))); }
        catch (EngineException e) when (e.Kind == ErrorKind.AlreadyExists && NameOwner(e.Message) is { } owner)
        {
            throw new ApiError(409, $"Error when allocating new name: Conflict. The container name \"/{name.TrimStart('/')}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name.");
        }
        await NoContent(ctx);
    }

    async Task ResizeContainer(HttpContext ctx, string[] a)
    {
        var h = QueryInt(ctx, "h") ?? 0;
        var w = QueryInt(ctx, "w") ?? 0;
        if (h is < 0 or > ushort.MaxValue || w is < 0 or > ushort.MaxValue) throw ApiError.BadRequest("invalid terminal size");
        var c = await Blocking(() => Containers.Get(a[0]));
        if (!c.State.Running) throw new ApiError(409, $"Container {c.Id} is not running");
        await Blocking(() => Containers.Resize(c, (ushort)h, (ushort)w));
        await NoContent(ctx, 200);
    }

    /// <summary>POST /containers/ID/update: resource limits (live for a running container) and the restart
    /// policy; Docker's other Resources fields are refused when set.</summary>
    async Task UpdateContainer(HttpContext ctx, string[] a)
    {
        var body = await ReadJsonAsync(ctx, DockerJson.Default.ContainerUpdate) ?? new ContainerUpdate();
        var set = (body.Rest ?? []).Where(kv => kv.Value.ValueKind switch
        {
            JsonValueKind.Null or JsonValueKind.False => false,
            JsonValueKind.Number => kv.Value.GetRawText() != "0",
            JsonValueKind.String => kv.Value.GetString()!.Length > 0,
            JsonValueKind.Array => kv.Value.GetArrayLength() > 0,
            JsonValueKind.Object => kv.Value.EnumerateObject().Any(),
            _ => true,
        }).Select(kv => kv.Key).ToList();
        if (set.Count > 0) throw ApiError.BadRequest($"updating {string.Join(", ", set)} is not supported by Berth");
        var warnings = await Blocking(() => Containers.Update(a[0], body));
        await WriteJsonAsync(ctx, 200, new UpdateContainerResponse { Warnings = warnings }, DockerJson.Default.UpdateContainerResponse);
    }

    async Task RemoveContainer(HttpContext ctx, string[] a)
    {
        var force = QueryBool(ctx, "force");
        QueryBool(ctx, "v"); // anonymous volumes: the engine makes none
        if (QueryBool(ctx, "link")) throw ApiError.BadRequest("links are not supported");
        var c = await Blocking(() => Containers.Get(a[0]));
        if (c.State.Running && !force)
            throw new ApiError(409, $"You cannot remove a running container {c.Id}. Stop the container before attempting removal or force remove");
        await Blocking(() => Containers.Remove(c.Id, force));
        await NoContent(ctx);
    }

    async Task PruneContainers(HttpContext ctx, string[] _)
    {
        var f = Filters(ctx);
        OnlyFilters(f, "until", "label");
        var list = await Blocking(Containers.List);
        var until = f.TryGetValue("until", out var u) && u.Count > 0 ? PruneUntil(u[0]) : (DateTime?)null;
        var result = new PruneContainersResponse();
        foreach (var c in list.Where(c => !c.State.Running))
        {
            if (until is { } ut && ContainerFormat.ParseTime(c.Created) >= ut) continue;
            if (f.TryGetValue("label", out var labels) && !labels.All(l => LabelMatch(c.Config.Labels, l))) continue;
            try { await Blocking(() => Containers.Remove(c.Id, false)); result.ContainersDeleted.Add(c.Id); }
            catch (EngineException) { }
        }
        await WriteJsonAsync(ctx, 200, result, DockerJson.Default.PruneContainersResponse);
    }

    // ------------------------------------------------------------------ wait

    async Task WaitContainer(HttpContext ctx, string[] a)
    {
        var condition = Query(ctx, "condition") is { Length: > 0 } cond ? cond : "not-running";
        if (condition is not ("not-running" or "next-exit" or "removed"))
            throw ApiError.BadRequest($"invalid condition: \"{condition}\"");
        var c = await Blocking(() => Containers.Get(a[0]));
        // docker answers the headers at once (the CLI sends start only after that), the body at the exit
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        var code = await WaitFor(c, condition, ctx.RequestAborted);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new WaitResponse { StatusCode = code }, DockerJson.Default.WaitResponse);
        await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), ctx.RequestAborted);
    }

    async Task<int> WaitFor(ContainerRecord first, string condition, CancellationToken ct)
    {
        var id = first.Id;
        var code = first.State.ExitCode;
        if (condition == "not-running" && !first.State.Running) return code;
        var finished = first.State.FinishedAt;
        var exited = false;
        while (!ct.IsCancellationRequested)
        {
            var change = NextChange(id);
            ContainerRecord c;
            try { c = Containers.Get(id); }
            catch (EngineException e) when (e.Kind == ErrorKind.NotFound) { return await ExitSeenByAttach(id, code, ct); }
            if (!exited)
            {
                if (c.Monitor is not null && c.State.Running)
                {
                    try { code = await Blocking(() => Containers.Wait(id)); }
                    catch (EngineException e) when (e.Kind == ErrorKind.NotFound) { return await ExitSeenByAttach(id, code, ct); }
                    exited = true;
                    // --rm: the monitor answers a wait only once the container is removed
                    if (condition == "removed" && !Containers.Store.Exists(id)) return code;
                }
                else if (c.State.FinishedAt != finished && c.Monitor is null) { code = c.State.ExitCode; exited = true; }
                if (exited && condition != "removed") return code;
            }
            await ChangeOrPoll(change, exited ? 50 : 10, ct);
        }
        ct.ThrowIfCancellationRequested();
        return code;
    }

    /// <summary>A container removed on exit (--rm) before the wait saw its exit: the attach saw it.</summary>
    async Task<int> ExitSeenByAttach(string id, int fallback, CancellationToken ct)
    {
        for (var i = 0; i < 100 && !_exitCodes.ContainsKey(id); i++) await ChangeOrPoll(NextChange(id), 10, ct);
        return _exitCodes.TryRemove(id, out var seen) ? seen : fallback;
    }

    // ------------------------------------------------------------------ list / inspect

    async Task ListContainers(HttpContext ctx, string[] _)
    {
        var all = QueryBool(ctx, "all");
        var limit = QueryInt(ctx, "limit") ?? -1;
        var size = QueryBool(ctx, "size");
        var f = Filters(ctx);
        OnlyFilters(f, "id", "name", "label", "status", "exited", "ancestor", "before", "since", "publish", "expose", "health");
        var list = await Blocking(Containers.List);
        if (!all && limit <= 0 && !f.ContainsKey("status") && !f.ContainsKey("exited") && !f.ContainsKey("before") && !f.ContainsKey("since"))
            list = list.Where(c => c.State.Running).ToList();
        foreach (var (key, values) in f)
        {
            list = key switch
            {
                "id" => list.Where(c => values.Any(v => c.Id.StartsWith(v, StringComparison.Ordinal))).ToList(),
                "name" => list.Where(c => values.Any(v => c.Name.Contains(v, StringComparison.Ordinal) || c.BareName.Contains(v, StringComparison.Ordinal))).ToList(),
                "label" => list.Where(c => values.All(v => LabelMatch(c.Config.Labels, v))).ToList(),
                "status" => values.FirstOrDefault(v => v is not ("created" or "restarting" or "running" or "removing" or "paused" or "exited" or "dead")) is { } bad
                    ? throw ApiError.BadRequest($"invalid filter 'status={bad}'")
                    : list.Where(c => values.Contains(ContainerFormat.State(c))).ToList(),
                "exited" => list.Where(c => !c.State.Running && c.State.Status == "exited" && values.Any(v => int.TryParse(v, out var n) ? n == c.State.ExitCode : throw ApiError.BadRequest($"invalid filter 'exited={v}'"))).ToList(),
                "ancestor" => list.Where(c => values.Any(v => Ancestor(c, v))).ToList(),
                // as dockerd: publish matches a published (host) port, expose a container port (exposed or published)
                "publish" => list.Where(c => values.Any(v => PortFilter(v, "publish") is var want && c.NetworkSettings.Ports.Any(kv =>
                    kv.Value is { } bs && bs.Any(b => want.Contains(b.HostPort + "/" + kv.Key.Split('/')[^1]))))).ToList(),
                "expose" => list.Where(c => values.Any(v => PortFilter(v, "expose") is var want && (c.NetworkSettings.Ports.Keys.Any(want.Contains)
                    || (c.Config.ExposedPorts?.Keys.Any(want.Contains) ?? false)))).ToList(),
                "health" => values.FirstOrDefault(v => v is not ("starting" or "healthy" or "unhealthy" or "none")) is { } badHealth
                    ? throw ApiError.BadRequest($"Unrecognised filter value for health: {badHealth}")
                    : list.Where(c => values.Contains(c.State.Health?.Status ?? "none")).ToList(),
                "before" => Relative(list, values, before: true),
                "since" => Relative(list, values, before: false),
                _ => list,
            };
        }
        if (limit > 0) list = list.Take(limit).ToList();
        var now = DateTime.UtcNow;
        var summaries = list.Select(c => SummaryOf(c, now)).ToList();
        // ps -s: the container's own layer and, with the image's, its whole filesystem ("virtual")
        if (size)
            await Blocking(() =>
            {
                for (var i = 0; i < list.Count; i++)
                {
                    summaries[i].SizeRw = EngineMaintenance.ContainerSize(Containers, list[i]);
                    summaries[i].SizeRootFs = summaries[i].SizeRw + (list[i].Image.Length > 0 ? ImageSize(list[i].Image) : 0);
                }
                return true;
            });
        await WriteJsonAsync(ctx, 200, summaries, DockerJson.Default.ListContainerSummary);
    }

    static ContainerSummary SummaryOf(ContainerRecord c, DateTime now) => new()
    {
        Id = c.Id,
        Names = [c.Name],
        Image = c.Config.Image.Length > 0 ? c.Config.Image : c.Rootfs,
        ImageID = c.Image,
        Command = SummaryCommand(c),
        Created = new DateTimeOffset(ContainerFormat.ParseTime(c.Created), TimeSpan.Zero).ToUnixTimeSeconds(),
        Labels = c.Config.Labels,
        State = ContainerFormat.State(c),
        Status = ContainerFormat.Status(c, now),
        HostConfig = { NetworkMode = c.HostConfig.NetworkMode },
        NetworkSettings = { Networks = c.NetworkSettings.Networks },
        Mounts = c.Mounts,
        Ports = PortSummaries(c.NetworkSettings),
    };

    /// <summary>dockerd's list Command: the path, then the arguments, those with a space in single
    /// quotes (not escaped: `sh -c 'echo 'a b''`).</summary>
    static string SummaryCommand(ContainerRecord c) =>
        string.Join(' ', c.Args.Select(a => a.Contains(' ', StringComparison.Ordinal) ? "'" + a + "'" : a).Prepend(c.Path));

    /// <summary>docker's summary Ports: one entry per binding of a published port, one without
    /// IP/PublicPort per exposed port (the CLI's PORTS column is made from these).</summary>
    static List<PortSummary> PortSummaries(NetworkSettings s)
    {
        var list = new List<PortSummary>();
        foreach (var (key, bindings) in s.Ports)
        {
            var parts = key.Split('/');
            if (!int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var priv)) continue;
            var type = parts.Length > 1 ? parts[1] : "tcp";
            if (bindings is not { Count: > 0 }) { list.Add(new PortSummary { PrivatePort = priv, Type = type }); continue; }
            foreach (var b in bindings)
                list.Add(new PortSummary
                {
                    IP = b.HostIp is "" ? "0.0.0.0" : b.HostIp, PrivatePort = priv, Type = type,
                    PublicPort = int.TryParse(b.HostPort, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pub) ? pub : null,
                });
        }
        return list;
    }

    bool Ancestor(ContainerRecord c, string image)
    {
        if (c.Config.Image == image || (c.Image.Length > 0 && (c.Image == image || c.Image.StartsWith("sha256:" + image, StringComparison.Ordinal)))) return true;
        try { return new Berth.Images.Content.ImageStore(DataRoot).Resolve(image).Id == c.Image; }
        catch (Berth.Images.ImageException) { return false; }
    }

    List<ContainerRecord> Relative(List<ContainerRecord> list, List<string> values, bool before)
    {
        foreach (var v in values)
        {
            var pivot = Containers.Get(v);
            list = list.Where(c => before
                ? string.CompareOrdinal(c.Created, pivot.Created) < 0
                : string.CompareOrdinal(c.Created, pivot.Created) > 0).ToList();
        }
        return list;
    }

    async Task InspectContainer(HttpContext ctx, string[] a)
    {
        var c = await Blocking(() => Containers.Get(a[0]));
        c.Monitor = null;
        await WriteJsonAsync(ctx, 200, c, DockerJson.Default.ContainerRecord);
    }

    /// <summary>A publish/expose filter value (PORT[-END][/PROTO], tcp by default) as the set of "port/proto" keys it names.</summary>
    static HashSet<string> PortFilter(string v, string name)
    {
        var parts = v.Split('/', 2);
        var proto = parts.Length == 2 && parts[1].Length > 0 ? parts[1] : "tcp";
        var range = parts[0].Split('-', 2);
        if (!int.TryParse(range[0], out var lo) || lo is < 1 or > 65535) throw ApiError.BadRequest($"invalid filter '{name}={v}'");
        var hi = lo;
        if (range.Length == 2 && (!int.TryParse(range[1], out hi) || hi < lo || hi > 65535)) throw ApiError.BadRequest($"invalid filter '{name}={v}'");
        return Enumerable.Range(lo, hi - lo + 1).Select(p => $"{p}/{proto}").ToHashSet(StringComparer.Ordinal);
    }

    async Task TopContainer(HttpContext ctx, string[] a)
    {
        var c = await Blocking(() => Containers.Get(a[0]));
        if (!c.State.Running) throw new ApiError(409, $"Container {c.Id} is not running");
        var psArgs = Query(ctx, "ps_args") is { Length: > 0 } pa ? pa.Split(' ', StringSplitOptions.RemoveEmptyEntries) : ["-ef"];
        var (status, output, error) = await Blocking(() => Containers.RunCaptured(c, ["ps", c.Id, .. psArgs]));
        // dockerd's words for ps output without a PID column
        if (status != 0) throw new ApiError(500, error == "ps: couldn't find PID field in ps output" ? "Couldn't find PID field in ps output" : error ?? $"ps exited with status {status}");
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var top = new ContainerTop();
        if (lines.Length > 0)
        {
            top.Titles = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
            var n = top.Titles.Count;
            foreach (var l in lines.Skip(1))
            {
                var fields = l.Split(' ', n, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                top.Processes.Add(fields);
            }
        }
        await WriteJsonAsync(ctx, 200, top, DockerJson.Default.ContainerTop);
    }

    // ------------------------------------------------------------------ logs

    async Task ContainerLogs(HttpContext ctx, string[] a)
    {
        var follow = QueryBool(ctx, "follow");
        var stdout = QueryBool(ctx, "stdout");
        var stderr = QueryBool(ctx, "stderr");
        var timestamps = QueryBool(ctx, "timestamps");
        var since = Query(ctx, "since") is { Length: > 0 } s && s != "0" ? ParseTimeArg(s, "since") : (DateTime?)null;
        var until = Query(ctx, "until") is { Length: > 0 } u && u != "0" ? ParseTimeArg(u, "until") : (DateTime?)null;
        var tailArg = Query(ctx, "tail");
        // dockerd reads a tail that is not a number as "all"
        int? tail = int.TryParse(tailArg, out var tn) && tn >= 0 ? tn : null;
        var details = QueryBool(ctx, "details");
        if (!stdout && !stderr) throw ApiError.BadRequest("you must choose at least one stream");
        var c = await Blocking(() => Containers.Get(a[0]));
        if (c.HostConfig.LogConfig.Type == "none") throw new ApiError(501, "configured logging driver does not support reading");
        // --details: the log's attributes (none are configured by Berth's json-file) and a space before each line
        var prefix = details ? " " : "";
        var tty = c.Config.Tty;
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
        var body = ctx.Response.Body;
        var ct = ctx.RequestAborted;

        bool Wanted(LogEntry e)
        {
            if (e.Stream == "stderr" ? !stderr : !stdout) return false;
            var t = ContainerFormat.ParseTime(e.Time);
            return (since is null || t >= since) && (until is null || t <= until);
        }
        // follow: new lines until the container stops (or `until` passes, or the client leaves);
        // the body is flushed whenever the reader is about to wait.
        await using var entries = Berth.Engine.Containers.ContainerLogs.ReadAsync(Containers, c, Wanted, tail, follow, until, ct).GetAsyncEnumerator(ct);
        while (true)
        {
            var next = entries.MoveNextAsync();
            if (!next.IsCompleted) await body.FlushAsync(ct);
            if (!await next) break;
            var e = entries.Current;
            var text = Encoding.UTF8.GetBytes((timestamps ? e.Time + " " : "") + prefix + e.Text);
            await WriteStreamAsync(body, tty, e.Stream == "stderr" ? (byte)2 : (byte)1, text, ct);
        }
        await body.FlushAsync(ct);
    }

    /// <summary>One chunk of a container's output: raw with a TTY, else with docker's 8-byte header
    /// [stream, 0, 0, 0, size (big-endian uint32)].</summary>
    static async Task WriteStreamAsync(Stream s, bool raw, byte stream, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (!raw)
        {
            var head = new byte[8];
            head[0] = stream;
            BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(4), (uint)data.Length);
            await s.WriteAsync(head, ct);
        }
        await s.WriteAsync(data, ct);
    }

    /// <summary>docker's time arguments: unix seconds (with optional fraction) or RFC 3339.</summary>
    static DateTime ParseTimeArg(string s, string what)
    {
        if (decimal.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var secs))
            return DateTime.UnixEpoch.AddTicks((long)(secs * TimeSpan.TicksPerSecond));
        var t = ContainerFormat.ParseTime(s);
        if (t == DateTime.MinValue) throw ApiError.BadRequest($"invalid value for \"{what}\": \"{s}\"");
        return t;
    }

    /// <summary>A prune's `until` filter, with dockerd's error for one it cannot read.</summary>
    static DateTime PruneUntil(string v)
    {
        try { return ParseTimeArg(v, "until"); }
        catch (ApiError) { throw ApiError.BadRequest($"failed to parse value as time or duration: \"{v}\""); }
    }

    // ------------------------------------------------------------------ attach

    async Task AttachContainer(HttpContext ctx, string[] a)
    {
        var stream = QueryBool(ctx, "stream");
        var logs = QueryBool(ctx, "logs");
        var stdin = QueryBool(ctx, "stdin");
        var stdout = QueryBool(ctx, "stdout");
        var stderr = QueryBool(ctx, "stderr");
        if (!stream && !logs) throw ApiError.BadRequest("either logs or stream must be set");
        var c = await Blocking(() => Containers.Get(a[0]));
        var id = c.Id;
        stdin &= c.Config.OpenStdin;
        var tty = c.Config.Tty;
        var detachKeys = DetachKeysOf(ctx);
        _pendingAttach.AddOrUpdate(id, 1, (_, n) => n + 1);
        try
        {
            if (stream) Berth.Engine.Events.ContainerEvents.Emit(Containers.Store.Root, c, "attach");
            var conn = await HijackAsync(ctx, tty);
            // A hijacked client half-closes when it has no stdin, which Kestrel reports as an
            // aborted request: the session ends on a failed write or the container's exit instead.
            var ct = CancellationToken.None;
            if (logs)
            {
                // what the container wrote so far (from its log), then the live stream
                foreach (var f in new[] { c.LogPath }.Where(File.Exists))
                    foreach (var line in await File.ReadAllLinesAsync(f))
                        if (JsonFileLog.Parse(line) is { } e && (e.Stream == "stderr" ? stderr : stdout))
                            await WriteStreamAsync(conn, tty, e.Stream == "stderr" ? (byte)2 : (byte)1, Encoding.UTF8.GetBytes(e.Text), ct);
            }
            if (!stream) return;
            // The container may not run yet: docker's clients attach before they start it.
            Fd? monitor = null;
            var deadline = DateTime.UtcNow.AddMinutes(10);
            while (monitor is null && !ct.IsCancellationRequested && DateTime.UtcNow < deadline)
            {
                var change = NextChange(id);
                ContainerRecord cur;
                try { cur = Containers.Get(id); } catch (EngineException) { return; }
                // A live monitor (even after a quick exit: it holds the output for this attach). Its socket
                // is bound before it starts the container: connected, the attach waits there (no polling).
                if (cur.Monitor is not null && File.Exists(Path.Combine(Containers.Store.RunDir(id), "ctl.sock")))
                {
                    monitor = await Blocking(() => Containers.OpenAttach(cur, stdin, stdout, stderr));
                    if (monitor is not null) break;
                }
                else if (cur.State.FinishedAt != c.State.FinishedAt) return; // ran and exited, monitor gone
                await ChangeOrPoll(change, 10, ct);
            }
            if (monitor is null) return;
            _pendingAttach.AddOrUpdate(id, 0, (_, n) => n - 1);
            var (exit, detached) = await RelayAsync(monitor, conn, stdin, tty, detachKeys, ct);
            if (detached) Berth.Engine.Events.ContainerEvents.Emit(Containers.Store.Root, c, "detach");
            else if (exit is not null)
            {
                if (_exitCodes.Count > 1000) _exitCodes.Clear();
                _exitCodes[id] = exit.Value;
                Changed(id);
            }
        }
        finally
        {
            if (_pendingAttach.TryGetValue(id, out var n) && n <= 1) _pendingAttach.TryRemove(id, out _);
            else _pendingAttach.AddOrUpdate(id, 0, (_, k) => Math.Max(0, k - 1));
        }
    }

    /// <summary>Takes the connection over: 101 Switching Protocols (Upgrade: tcp) when the client
    /// asks for it, as docker's clients do, else a 200 whose body is the stream.</summary>
    static async Task<Stream> HijackAsync(HttpContext ctx, bool tty)
    {
        var contentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
        var upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is { IsUpgradableRequest: true })
        {
            ctx.Response.Headers.ContentType = contentType;
            ctx.Response.Headers.Connection = "Upgrade";
            ctx.Response.Headers.Upgrade = "tcp";
            return await upgrade.UpgradeAsync();
        }
        var transport = ctx.Features.Get<IConnectionTransportFeature>()?.Transport;
        if (transport is not null)
        {
            // Kestrel does not upgrade a request that had a body (exec start has one): the 101 is
            // written on the connection itself, which is closed (not reused) when the stream ends.
            // Without "Upgrade: tcp" (Docker.DotNet asks for none) dockerd hijacks all the same and
            // answers a bare 200: what the client writes after the request body is the stream's stdin.
            await ctx.Request.Body.CopyToAsync(Stream.Null, CancellationToken.None);
            var head = ctx.Request.Headers.Upgrade.ToString().Equals("tcp", StringComparison.OrdinalIgnoreCase)
                ? $"HTTP/1.1 101 UPGRADED\r\nContent-Type: {contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                : $"HTTP/1.1 200 OK\r\nContent-Type: {contentType}\r\n\r\n";
            // Output goes to the socket itself, so it is in the kernel before the connection is aborted.
            Stream output = ctx.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket
                ? new NetworkStream(socket, ownsSocket: false)
                : transport.Output.AsStream(leaveOpen: true);
            await output.WriteAsync(Encoding.ASCII.GetBytes(head), CancellationToken.None);
            await output.FlushAsync(CancellationToken.None);
            return new HijackedStream(transport.Input.AsStream(leaveOpen: true), output, abortOnDispose: ctx);
        }
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = contentType;
        await ctx.Response.StartAsync(CancellationToken.None);
        return new HijackedStream(ctx.Request.Body, ctx.Response.Body, abortOnDispose: null);
    }

    /// <summary>A hijacked connection as one Stream: reads from <paramref name="input"/>, writes to
    /// <paramref name="output"/>. With <paramref name="abortOnDispose"/> it is a connection taken from
    /// Kestrel, flushed and aborted when disposed so nothing more is written on it; without, the request
    /// and response bodies of a non-upgraded hijack.</summary>
    sealed class HijackedStream(Stream input, Stream output, HttpContext? abortOnDispose) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { if (abortOnDispose is null) output.Flush(); }
        public override Task FlushAsync(CancellationToken ct) => output.FlushAsync(ct);
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => input.ReadAsync(buffer, ct);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => input.ReadAsync(buffer, offset, count, ct);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => output.WriteAsync(buffer, ct);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => output.WriteAsync(buffer, offset, count, ct);
        public override async ValueTask DisposeAsync()
        {
            if (abortOnDispose is null) { await base.DisposeAsync(); return; }
            try { await output.FlushAsync(); } catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException) { }
            abortOnDispose.Abort();
        }
        protected override void Dispose(bool disposing) { if (disposing) abortOnDispose?.Abort(); }
    }

    /// <summary>The attach's detach sequence (query detachKeys, else docker's ctrl-p,ctrl-q).</summary>
    static byte[] DetachKeysOf(HttpContext ctx)
    {
        var spec = Query(ctx, "detachKeys");
        try { return DetachKeys.Parse(string.IsNullOrEmpty(spec) ? DetachKeys.Default : spec); }
        catch (EngineException e) { throw ApiError.BadRequest(e.Message); }
    }

    /// <summary>Monitor frames → the client (framed unless TTY); the client's bytes → the
    /// container's stdin (its half-close closes stdin). Ends when the container exits, the client leaves
    /// or (with a TTY, as dockerd) types <paramref name="detachKeys"/>: then the container runs on.</summary>
    static async Task<(int? Exit, bool Detached)> RelayAsync(Fd monitor, Stream conn, bool stdin, bool tty, byte[] detachKeys, CancellationToken ct)
    {
        int? exit = null;
        var detached = false;
        using var sock = new Socket(new SafeSocketHandle((nint)monitor.Release(), ownsHandle: true));
        using var ms = new NetworkStream(sock, ownsSocket: false);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task input = Task.CompletedTask;
        if (stdin)
        {
            input = Task.Run(async () =>
            {
                var buf = new byte[32 * 1024];
                var escape = tty ? new DetachKeyScanner(detachKeys) : null;
                try
                {
                    int n;
                    while ((n = await conn.ReadAsync(buf, cts.Token)) > 0)
                    {
                        if (escape is null) { await ms.WriteAsync(buf.AsMemory(0, n), cts.Token); continue; }
                        var (pass, hit) = escape.Feed(buf.AsSpan(0, n));
                        if (pass.Length > 0) await ms.WriteAsync(pass, cts.Token);
                        if (hit)
                        {
                            // the container keeps its stdin: the attach just ends
                            Volatile.Write(ref detached, true);
                            await cts.CancelAsync();
                            return;
                        }
                    }
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException) { }
                try { sock.Shutdown(SocketShutdown.Send); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            });
        }
        try
        {
            var head = new byte[5];
            while (true)
            {
                await ms.ReadExactlyAsync(head, cts.Token);
                var len = (int)BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(1));
                var payload = new byte[len];
                if (len > 0) await ms.ReadExactlyAsync(payload, cts.Token);
                if (head[0] is MonitorProtocol.Stdout or MonitorProtocol.Stderr)
                {
                    await WriteStreamAsync(conn, tty, head[0], payload, cts.Token);
                    await conn.FlushAsync(cts.Token);
                }
                else if (head[0] == MonitorProtocol.Exit)
                {
                    if (int.TryParse(Encoding.ASCII.GetString(payload), out var code)) exit = code;
                    break;
                }
            }
        }
        catch (EndOfStreamException) { }
        catch (OperationCanceledException) when (Volatile.Read(ref detached)) { }
        finally
        {
            cts.Cancel();
            try { await input; } catch (OperationCanceledException) { }
            try { await conn.FlushAsync(CancellationToken.None); } catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
            await conn.DisposeAsync();
        }
        return (exit, Volatile.Read(ref detached));
    }
}
