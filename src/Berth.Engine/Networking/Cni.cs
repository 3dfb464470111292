using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Engine.Networking;

/// <summary>A CNI network configuration list (.conflist), kept as JSON: plugins carry fields of their own.</summary>
public sealed class CniConfigList
{
    public required string Name { get; init; }
    public required string CniVersion { get; init; }
    public bool DisableCheck { get; init; }
    public required IReadOnlyList<JsonObject> Plugins { get; init; }
    public string Source { get; init; } = "";

    public static CniConfigList Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw NetworkException.NotFound($"CNI configuration {path}: {e.Message}"); }
        return Parse(text, path);
    }

    public static CniConfigList Parse(string json, string source = "(inline)")
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw NetworkException.Invalid($"CNI configuration {source}: invalid JSON: {e.Message}"); }
        var name = Str(root, "name") ?? throw NetworkException.Invalid($"CNI configuration {source}: missing \"name\"");
        var version = Str(root, "cniVersion") ?? throw NetworkException.Invalid($"CNI configuration {source}: missing \"cniVersion\"");
        if (root["plugins"] is not JsonArray arr || arr.Count == 0)
            throw NetworkException.Invalid($"CNI configuration {source}: \"plugins\" must be a non-empty list");
        var plugins = new List<JsonObject>();
        foreach (var p in arr)
        {
            if (p is not JsonObject o || Str(o, "type") is not { Length: > 0 } type)
                throw NetworkException.Invalid($"CNI configuration {source}: every plugin needs a \"type\"");
            if (type.Contains('/') || type is "." or "..")
                throw NetworkException.Invalid($"CNI configuration {source}: invalid plugin type \"{type}\"");
            plugins.Add(o);
        }
        var disable = root["disableCheck"] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
        return new CniConfigList { Name = name, CniVersion = version, DisableCheck = disable, Plugins = plugins, Source = source };
    }

    static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

/// <summary>What the runtime tells the plugins about one attachment.</summary>
public sealed record CniRuntimeConf(string ContainerId, string NetnsPath, string IfName = "eth0")
{
    /// <summary>CNI_ARGS (K=V;K2=V2).</summary>
    public IReadOnlyDictionary<string, string> Args { get; init; } = new Dictionary<string, string>();
    /// <summary>Capability values (e.g. "portMappings"), passed as runtimeConfig to plugins that declare them.</summary>
    public IReadOnlyDictionary<string, JsonNode> Capabilities { get; init; } = new Dictionary<string, JsonNode>();

    /// <summary>The portMappings capability value for published ports (as the portmap plugin reads it).</summary>
    public static JsonNode PortMappings(IEnumerable<PortMapping> ports)
    {
        var a = new JsonArray();
        foreach (var p in ports)
            a.Add((JsonNode)new JsonObject
            {
                ["hostPort"] = p.HostPort, ["containerPort"] = p.ContainerPort, ["protocol"] = p.Protocol,
                ["hostIP"] = p.HostIp is "0.0.0.0" ? "" : p.HostIp,
            });
        return a;
    }
}

public sealed record CniInterface(string Name, string Mac, string? Sandbox);
public sealed record CniIp(IPAddress Address, int PrefixLength, IPAddress? Gateway, int? Interface);
public sealed record CniRoute(string Dst, IPAddress? Gateway);
public sealed record CniDns(IReadOnlyList<string> Nameservers, string? Domain, IReadOnlyList<string> Search, IReadOnlyList<string> Options);

/// <summary>A CNI result (spec 1.0.0 §"Success"): interfaces, ips, routes, dns; the JSON is kept for chaining.</summary>
public sealed class CniResult
{
    public required string CniVersion { get; init; }
    public required IReadOnlyList<CniInterface> Interfaces { get; init; }
    public required IReadOnlyList<CniIp> Ips { get; init; }
    public required IReadOnlyList<CniRoute> Routes { get; init; }
    public required CniDns Dns { get; init; }
    public required JsonObject Json { get; init; }

    public static CniResult Parse(JsonObject o, string plugin)
    {
        try
        {
            var ifs = (o["interfaces"] as JsonArray ?? []).OfType<JsonObject>()
                .Select(i => new CniInterface(S(i, "name") ?? "", S(i, "mac") ?? "", S(i, "sandbox"))).ToList();
            var ips = new List<CniIp>();
            foreach (var i in (o["ips"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var addr = S(i, "address") ?? throw new FormatException("an ips entry has no address");
                var slash = addr.IndexOf('/');
                if (slash < 0) throw new FormatException($"ips address \"{addr}\" is not in CIDR notation");
                var gw = S(i, "gateway") is { } g ? IPAddress.Parse(g) : null;
                int? idx = i["interface"] is JsonValue v && v.TryGetValue<int>(out var n) ? n : null;
                ips.Add(new CniIp(IPAddress.Parse(addr[..slash]), int.Parse(addr[(slash + 1)..]), gw, idx));
            }
            var routes = (o["routes"] as JsonArray ?? []).OfType<JsonObject>()
                .Select(r => new CniRoute(S(r, "dst") ?? "", S(r, "gw") is { } g ? IPAddress.Parse(g) : null)).ToList();
            var d = o["dns"] as JsonObject;
            var dns = new CniDns(L(d, "nameservers"), d is null ? null : S(d, "domain"), L(d, "search"), L(d, "options"));
            return new CniResult { CniVersion = S(o, "cniVersion") ?? "", Interfaces = ifs, Ips = ips, Routes = routes, Dns = dns, Json = o };
        }
        catch (FormatException e) { throw new CniException(plugin, 6, $"invalid result: {e.Message}", null); }
    }

    static string? S(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
    static List<string> L(JsonObject? o, string k) =>
        (o?[k] as JsonArray ?? []).Select(x => x is JsonValue v && v.TryGetValue<string>(out var s) ? s : null).OfType<string>().ToList();
}

/// <summary>A plugin's error result (code, msg, details) or a failure to run it.</summary>
public sealed class CniException(string plugin, int code, string msg, string? details)
    : Exception($"CNI plugin \"{plugin}\" failed (code {code}): {msg}{(string.IsNullOrEmpty(details) ? "" : ": " + details)}")
{
    public string Plugin { get; } = plugin;
    public int Code { get; } = code;
}

/// <summary>Runs CNI plugins for a configuration list as the CNI 1.0.0 spec's runtime: ADD in order, each
/// plugin getting the previous one's result as prevResult; CHECK in order and DEL in reverse, both with the
/// cached ADD result; CNI_* in the environment, the plugin's config (name, cniVersion, runtimeConfig from
/// the capabilities it declares) on stdin. The final ADD result is cached per attachment for DEL/CHECK.</summary>
public sealed class CniClient(IReadOnlyList<string> pluginDirs, string cacheDir)
{
    public static readonly string[] DefaultPluginDirs = ["/usr/lib/cni", "/opt/cni/bin"];
    public TimeSpan PluginTimeout { get; init; } = TimeSpan.FromSeconds(60);

    string CachePath(CniConfigList list, CniRuntimeConf rt) =>
        Path.Combine(cacheDir, "results", $"{list.Name}-{rt.ContainerId}-{rt.IfName}");

    public async Task<CniResult> AddAsync(CniConfigList list, CniRuntimeConf rt, CancellationToken ct = default)
    {
        JsonObject? prev = null;
        try
        {
            foreach (var plugin in list.Plugins)
                prev = await InvokeAsync("ADD", list, plugin, rt, prev, ct) ?? prev;
        }
        catch (Exception e) when (e is CniException or NetworkException)
        {
            // Undo what the earlier plugins did (a partial ADD must not leak), then report the first failure.
            try { await DelAsync(list, rt, ct, prev); }
            catch (Exception cleanup) { throw new CniException(Type(list.Plugins[0]), (e as CniException)?.Code ?? 999, e.Message + "; cleanup also failed: " + cleanup.Message, null); }
            throw;
        }
        if (prev is null) throw new CniException(Type(list.Plugins[^1]), 999, "ADD produced no result", null);
        var result = CniResult.Parse(prev, Type(list.Plugins[^1]));
        var path = CachePath(list, rt);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path + ".tmp", prev.ToJsonString(), ct);
        File.Move(path + ".tmp", path, true);
        return result;
    }

    public async Task CheckAsync(CniConfigList list, CniRuntimeConf rt, CancellationToken ct = default)
    {
        if (list.DisableCheck) return;
        var cached = ReadCache(list, rt) ?? throw NetworkException.NotFound($"no cached CNI result for container \"{rt.ContainerId}\" on network \"{list.Name}\" (was it added?)");
        foreach (var plugin in list.Plugins) await InvokeAsync("CHECK", list, plugin, rt, cached, ct);
    }

    /// <summary>DEL in reverse order with the cached ADD result (if any). Idempotent: a second DEL succeeds.</summary>
    public async Task DelAsync(CniConfigList list, CniRuntimeConf rt, CancellationToken ct = default, JsonObject? prevResult = null)
    {
        var cached = prevResult ?? ReadCache(list, rt);
        CniException? first = null;
        for (var i = list.Plugins.Count - 1; i >= 0; i--)
        {
            try { await InvokeAsync("DEL", list, list.Plugins[i], rt, cached, ct); }
            catch (CniException e) { first ??= e; }
        }
        if (first is not null) throw first;
        File.Delete(CachePath(list, rt));
    }

    JsonObject? ReadCache(CniConfigList list, CniRuntimeConf rt)
    {
        var path = CachePath(list, rt);
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    /// <summary>Supported spec versions of a plugin (VERSION command).</summary>
    public async Task<List<string>> VersionsAsync(string type, CancellationToken ct = default)
    {
        var conf = new JsonObject { ["cniVersion"] = "1.0.0" };
        var (code, stdout) = await RunAsync(type, FindPlugin(type), "VERSION", conf, new CniRuntimeConf("", ""), ct);
        var o = Output(type, code, stdout) ?? throw new CniException(type, 6, "VERSION printed nothing", null);
        return (o["supportedVersions"] as JsonArray ?? []).Select(x => x?.GetValue<string>() ?? "").ToList();
    }

    async Task<JsonObject?> InvokeAsync(string command, CniConfigList list, JsonObject plugin, CniRuntimeConf rt, JsonObject? prev, CancellationToken ct)
    {
        var type = Type(plugin);
        var conf = (JsonObject)plugin.DeepClone();
        conf["name"] = list.Name;
        conf["cniVersion"] = list.CniVersion;
        if (prev is not null) conf["prevResult"] = prev.DeepClone();
        else conf.Remove("prevResult");
        if (plugin["capabilities"] is JsonObject caps)
        {
            var runtimeConfig = new JsonObject();
            foreach (var (key, on) in caps)
                if (on is JsonValue v && v.TryGetValue<bool>(out var b) && b && rt.Capabilities.TryGetValue(key, out var value))
                    runtimeConfig[key] = value.DeepClone();
            if (runtimeConfig.Count > 0) conf["runtimeConfig"] = runtimeConfig;
        }
        var (code, stdout) = await RunAsync(type, FindPlugin(type), command, conf, rt, ct);
        var output = Output(type, code, stdout);
        return command == "ADD" ? output ?? throw new CniException(type, 6, "ADD printed no result", null) : null;
    }

    static JsonObject? Output(string type, int code, string stdout)
    {
        JsonObject? o = null;
        if (stdout.Trim().Length > 0)
        {
            try { o = JsonNode.Parse(stdout) as JsonObject; }
            catch (JsonException) when (code != 0) { }
            catch (JsonException e) { throw new CniException(type, 6, $"unparsable output: {e.Message}", null); }
        }
        if (code == 0) return o;
        var c = o?["code"] is JsonValue cv && cv.TryGetValue<int>(out var n) ? n : 999;
        var msg = o?["msg"] is JsonValue mv && mv.TryGetValue<string>(out var m) ? m : stdout.Trim();
        var details = o?["details"] is JsonValue dv && dv.TryGetValue<string>(out var d) ? d : null;
        throw new CniException(type, c, msg.Length > 0 ? msg : $"exited {code}", details);
    }

    string FindPlugin(string type)
    {
        foreach (var dir in pluginDirs)
        {
            var p = Path.Combine(dir, type);
            if (File.Exists(p)) return p;
        }
        throw new CniException(type, 999, $"plugin not found in {string.Join(", ", pluginDirs)}", null);
    }

    async Task<(int Code, string Stdout)> RunAsync(string type, string path, string command, JsonObject conf, CniRuntimeConf rt, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.Environment["CNI_COMMAND"] = command;
        psi.Environment["CNI_CONTAINERID"] = rt.ContainerId;
        psi.Environment["CNI_NETNS"] = rt.NetnsPath;
        psi.Environment["CNI_IFNAME"] = rt.IfName;
        psi.Environment["CNI_ARGS"] = string.Join(';', rt.Args.Select(kv => $"{kv.Key}={kv.Value}"));
        psi.Environment["CNI_PATH"] = string.Join(':', pluginDirs);
        using var p = Process.Start(psi) ?? throw new CniException(type, 999, $"cannot start {path}", null);
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        try
        {
            await p.StandardInput.WriteAsync(conf.ToJsonString().AsMemory(), ct);
            p.StandardInput.Close();
        }
        catch (IOException) { } // the plugin exited without reading all of stdin (VERSION may): its output decides
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(PluginTimeout);
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            throw new CniException(type, 999, $"{command} did not finish within {PluginTimeout.TotalSeconds:0} s", null);
        }
        var o = await stdout;
        var e = await stderr;
        if (p.ExitCode != 0 && o.Trim().Length == 0) o = e;
        return (p.ExitCode, o);
    }

    static string Type(JsonObject plugin) => plugin["type"]!.GetValue<string>();
}
