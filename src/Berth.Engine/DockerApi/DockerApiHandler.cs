using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Berth.Engine.Containers;
using Berth.Linux;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Berth.Engine.DockerApi;

/// <summary>An error answered in docker's shape: {"message": …} with the status docker uses.</summary>
public sealed class ApiError(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
    public static ApiError BadRequest(string m) => new(400, m);
    public static ApiError NotFound(string m) => new(404, m);
}

/// <summary>
/// Routes Docker Engine API requests (versioned /v1.NN/… and unversioned paths) to handlers: one
/// method per endpoint, so an endpoint added later (stats, archive, events, save/load) is one case in
/// <see cref="Route"/> and one method.
/// </summary>
public sealed partial class DockerApiHandler
{
    public const string MaxApiVersion = "1.47";
    public const string MinApiVersion = "1.24";

    public DockerApiOptions Options { get; }
    public ContainerManager Containers { get; }
    string DataRoot => Options.DataRoot;

    public DockerApiHandler(DockerApiOptions options)
    {
        Options = options;
        Containers = new ContainerManager(options.DataRoot, options.RunRoot, options.RuntimePath);
    }

    delegate Task Endpoint(HttpContext ctx, string[] args);

    public const string LogCategory = "Berth.DockerApi";
    /// <summary>Set with --debug: every request logged with its status and duration.</summary>
    public ILogger? RequestLog { get; set; }

    public async Task HandleAsync(HttpContext ctx)
    {
        Interlocked.Increment(ref _active);
        var began = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            var path = ctx.Request.Path.Value ?? "/";
            var segs = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
            if (segs.Length > 0 && segs[0].StartsWith('v') && segs[0].Length > 1 && char.IsDigit(segs[0][1]))
            {
                CheckVersion(segs[0][1..]);
                if (TryParseVersion(segs[0][1..], out var ver)) ctx.Items[ApiVersionKey] = ver;
                segs = segs[1..];
            }
            var (endpoint, args) = Route(ctx.Request.Method, segs);
            if (endpoint is null) throw new ApiError(404, "page not found");
            await endpoint(ctx, args);
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is ApiError or EngineException or Berth.Engine.Networking.NetworkException or SyscallException or IOException or UnauthorizedAccessException or JsonException or Berth.Oci.Runtime.SpecException or Berth.Images.ImageException or HttpRequestException or BadHttpRequestException)
        {
            var (status, message) = ToStatus(e);
            await WriteErrorAsync(ctx, status, message);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // the client went away mid-stream: nothing to answer
        }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            await WriteErrorAsync(ctx, 500, e.Message);
        }
        finally
        {
            Interlocked.Decrement(ref _active);
            _lastActivity = Environment.TickCount64;
            if (RequestLog is { } log)
                RequestLogged(log, ctx.Request.Method, ctx.Request.Path.Value + ctx.Request.QueryString.Value, ctx.Response.StatusCode,
                    System.Diagnostics.Stopwatch.GetElapsedTime(began).TotalMilliseconds);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "{Method} {Path} {Status} {Milliseconds:F1} ms")]
    static partial void RequestLogged(ILogger logger, string method, string path, int status, double milliseconds);

    int _active;
    long _lastActivity = Environment.TickCount64;
    /// <summary>Requests in flight and the time the last one ended (for the service's idle timeout).</summary>
    public (int Active, long LastActivity) Activity => (Volatile.Read(ref _active), Volatile.Read(ref _lastActivity));

    (Endpoint?, string[]) Route(string method, string[] s)
    {
        bool Is(string m, int n) => method == m && s.Length == n;
        var get = method is "GET" or "HEAD";
        if (s.Length == 0) return (null, []);
        switch (s[0])
        {
            case "_ping" when s.Length == 1 && get: return (Ping, []);
            case "version" when s.Length == 1 && get: return (Version, []);
            case "info" when s.Length == 1 && get: return (Info, []);
            case "events" when s.Length == 1 && get: return (Events, []);
            case "system" when s.Length == 2 && s[1] == "df" && get: return (DiskUsage, []);
            case "commit" when Is("POST", 1): return (CommitContainer, []);
            case "auth" when Is("POST", 1): return (Auth, []);
            case "build" when Is("POST", 1): return (BuildImage, []);
            case "build" when Is("POST", 2) && s[1] == "prune": return (PruneBuildCache, []);
            case "containers":
                if (Is("POST", 2) && s[1] == "create") return (CreateContainer, []);
                if (get && s.Length == 2 && s[1] == "json") return (ListContainers, []);
                if (Is("POST", 2) && s[1] == "prune") return (PruneContainers, []);
                if (Is("DELETE", 2)) return (RemoveContainer, [s[1]]);
                if (s.Length == 3)
                {
                    var id = s[1];
                    Endpoint? e = (method, s[2]) switch
                    {
                        ("GET", "json") => InspectContainer,
                        ("POST", "start") => StartContainer,
                        ("POST", "stop") => StopContainer,
                        ("POST", "restart") => RestartContainer,
                        ("POST", "kill") => KillContainer,
                        ("POST", "wait") => WaitContainer,
                        ("POST", "pause") => PauseContainer,
                        ("POST", "unpause") => UnpauseContainer,
                        ("POST", "rename") => RenameContainer,
                        ("POST", "resize") => ResizeContainer,
                        ("POST", "attach") => AttachContainer,
                        ("GET", "logs") => ContainerLogs,
                        ("GET", "top") => TopContainer,
                        ("POST", "exec") => CreateExec,
                        ("POST", "update") => UpdateContainer,
                        ("GET", "stats") => ContainerStatsEndpoint,
                        ("HEAD", "archive") => StatArchive,
                        ("GET", "archive") => GetArchive,
                        ("PUT", "archive") => PutArchive,
                        ("GET", "export") => ExportContainer,
                        ("GET", "changes") => ContainerChangesEndpoint,
                        _ => null,
                    };
                    return (e, [id]);
                }
                break;
            case "exec" when s.Length == 3:
                return ((method, s[2]) switch
                {
                    ("POST", "start") => StartExec,
                    ("POST", "resize") => ResizeExec,
                    ("GET", "json") => InspectExec,
                    _ => null,
                }, [s[1]]);
            case "images":
                if (Is("POST", 2) && s[1] == "create") return (PullImage, []);
                if (get && s.Length == 2 && s[1] == "json") return (ListImages, []);
                if (Is("POST", 2) && s[1] == "prune") return (PruneImages, []);
                if (Is("POST", 2) && s[1] == "load") return (LoadImages, []);

                if (get && s.Length == 2 && s[1] == "get") return (SaveImages, []);
                // Image names contain slashes: /images/{name}/json|tag|push, DELETE /images/{name}
                if (method == "DELETE" && s.Length >= 2) return (RemoveImage, [string.Join('/', s[1..])]);
                if (s.Length >= 3)
                {
                    var name = string.Join('/', s[1..^1]);
                    Endpoint? e = (method, s[^1]) switch
                    {
                        ("GET", "json") => InspectImage,
                        ("POST", "tag") => TagImage,
                        ("POST", "push") => PushImage,
                        ("GET" or "HEAD", "get") => SaveImages,
                        ("GET", "history") => ImageHistory,
                        _ => null,
                    };
                    return (e, [name]);
                }
                break;
            case "networks":
                if (get && s.Length == 1) return (ListNetworks, []);
                if (Is("POST", 2) && s[1] == "create") return (CreateNetwork, []);
                if (Is("POST", 2) && s[1] == "prune") return (PruneNetworks, []);
                if (get && s.Length == 2) return (InspectNetwork, [s[1]]);
                if (Is("DELETE", 2)) return (RemoveNetwork, [s[1]]);
                if (Is("POST", 3) && s[2] == "connect") return (ConnectNetwork, [s[1]]);
                if (Is("POST", 3) && s[2] == "disconnect") return (DisconnectNetwork, [s[1]]);
                break;
            case "volumes":
                if (get && s.Length == 1) return (ListVolumes, []);
                if (Is("POST", 2) && s[1] == "create") return (CreateVolume, []);
                if (Is("POST", 2) && s[1] == "prune") return (PruneVolumes, []);
                if (get && s.Length == 2) return (InspectVolume, [s[1]]);
                if (Is("DELETE", 2)) return (RemoveVolume, [s[1]]);
                break;
        }
        return (null, []);
    }

    // ------------------------------------------------------------------ versions

    static void CheckVersion(string v)
    {
        if (!TryParseVersion(v, out var ver)) throw ApiError.BadRequest($"invalid API version \"{v}\"");
        TryParseVersion(MaxApiVersion, out var max);
        TryParseVersion(MinApiVersion, out var min);
        if (ver > max) throw ApiError.BadRequest($"client version {v} is too new. Maximum supported API version is {MaxApiVersion}");
        if (ver < min) throw ApiError.BadRequest($"client version {v} is too old. Minimum supported API version is {MinApiVersion}, please upgrade your client to a newer version");
    }

    const string ApiVersionKey = "berth.api-version";

    /// <summary>Whether the request speaks API <paramref name="v"/> or later (a request without a version
    /// speaks the newest, as dockerd takes it).</summary>
    static bool SpeaksAtLeast(HttpContext ctx, string v) =>
        !ctx.Items.TryGetValue(ApiVersionKey, out var o) || o is not int asked || !TryParseVersion(v, out var want) || asked >= want;

    static bool TryParseVersion(string v, out int ver)
    {
        ver = 0;
        var p = v.Split('.');
        if (p.Length != 2 || !int.TryParse(p[0], NumberStyles.None, CultureInfo.InvariantCulture, out var a) || !int.TryParse(p[1], NumberStyles.None, CultureInfo.InvariantCulture, out var b)) return false;
        ver = a * 10_000 + b;
        return true;
    }

    // ------------------------------------------------------------------ helpers

    static (int Status, string Message) ToStatus(Exception e) => e switch
    {
        ApiError a => (a.Status, a.Message),
        EngineException ee => (ee.Kind switch
        {
            ErrorKind.NotFound => 404,
            ErrorKind.AlreadyExists => 409,
            ErrorKind.InvalidArgument => 400,
            ErrorKind.FailedPrecondition => 409,
            ErrorKind.Unavailable => 503,
            _ => 500,
        }, DockerWords(ee.Message)),
        Berth.Images.ImageException ie => (ie.Kind switch
        {
            Berth.Images.ImageErrorKind.NotFound => 404,
            Berth.Images.ImageErrorKind.AlreadyExists or Berth.Images.ImageErrorKind.FailedPrecondition => 409,
            Berth.Images.ImageErrorKind.Unauthorized => 401,
            Berth.Images.ImageErrorKind.Unavailable => 503,
            Berth.Images.ImageErrorKind.DataLoss => 500,
            _ => 400,
        }, ie.Message),
        Berth.Engine.Networking.NetworkException ne => (ne.Kind switch
        {
            Berth.Engine.Networking.NetworkErrorKind.NotFound => 404,
            Berth.Engine.Networking.NetworkErrorKind.AlreadyExists => 409,
            Berth.Engine.Networking.NetworkErrorKind.InvalidArgument => 400,
            Berth.Engine.Networking.NetworkErrorKind.FailedPrecondition => 403,
            Berth.Engine.Networking.NetworkErrorKind.Unavailable => 503,
            _ => 500,
        }, ne.Message),
        JsonException je => (400, "invalid JSON: " + je.Message),
        BadHttpRequestException be => (be.StatusCode, be.Message),
        _ => (500, e.Message),
    };

    /// <summary>docker's capitalisation for the messages clients match on.</summary>
    static string DockerWords(string m) =>
        m.StartsWith("no such container: ", StringComparison.Ordinal) ? "No such container: " + m["no such container: ".Length..] : m;

    internal static async Task WriteErrorAsync(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        if (ctx.Request.Method == "HEAD") return;
        await WriteJsonBodyAsync(ctx, new ErrorResponse { message = message }, DockerJson.Default.ErrorResponse);
    }

    internal static async Task WriteJsonAsync<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> type)
    {
        ctx.Response.StatusCode = status;
        await WriteJsonBodyAsync(ctx, value, type);
    }

    static async Task WriteJsonBodyAsync<T>(HttpContext ctx, T value, JsonTypeInfo<T> type)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, type);
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = bytes.Length + 1;
        await ctx.Response.Body.WriteAsync(bytes);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray());
    }

    static Task NoContent(HttpContext ctx, int status = 204)
    {
        ctx.Response.StatusCode = status;
        return Task.CompletedTask;
    }

    /// <summary>Reads a JSON body (bounded by MaxJsonBodyBytes); null for an empty body.</summary>
    async Task<T?> ReadJsonAsync<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class
    {
        var limit = Options.MaxJsonBodyBytes;
        if (ctx.Request.ContentLength > limit) throw new ApiError(413, $"request body too large: at most {limit} bytes");
        using var ms = new MemoryStream();
        var buf = new byte[16 * 1024];
        int n;
        while ((n = await ctx.Request.Body.ReadAsync(buf, ctx.RequestAborted)) > 0)
        {
            if (ms.Length + n > limit) throw new ApiError(413, $"request body too large: at most {limit} bytes");
            ms.Write(buf, 0, n);
        }
        if (ms.Length == 0) return null;
        try { return JsonSerializer.Deserialize(ms.GetBuffer().AsSpan(0, (int)ms.Length), type); }
        catch (JsonException e) { throw ApiError.BadRequest("malformed JSON in the request body: " + e.Message); }
    }

    static string? Query(HttpContext ctx, string name) => ctx.Request.Query.TryGetValue(name, out var v) ? v.ToString() : null;

    /// <summary>docker's boolean query values: 1/true/True, 0/false/False/empty.</summary>
    static bool QueryBool(HttpContext ctx, string name, bool dflt = false)
    {
        var v = Query(ctx, name);
        if (v is null) return dflt;
        return v switch
        {
            "1" or "true" or "True" or "TRUE" => true,
            "" or "0" or "false" or "False" or "FALSE" => false,
            _ => throw ApiError.BadRequest($"invalid boolean value \"{v}\" for query parameter {name}"),
        };
    }

    static int? QueryInt(HttpContext ctx, string name)
    {
        var v = Query(ctx, name);
        if (string.IsNullOrEmpty(v)) return null;
        return int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n : throw ApiError.BadRequest($"invalid value \"{v}\" for query parameter {name}: expected an integer");
    }

    /// <summary>The `filters` query parameter: {"name":["a","b"]} (or the older {"name":{"a":true}}).</summary>
    static Dictionary<string, List<string>> Filters(HttpContext ctx)
    {
        var raw = Query(ctx, "filters");
        var result = new Dictionary<string, List<string>>();
        if (string.IsNullOrEmpty(raw)) return result;
        try
        {
            using var doc = JsonDocument.Parse(raw);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiError.BadRequest("invalid filters: expected a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                var list = new List<string>();
                if (p.Value.ValueKind == JsonValueKind.Array) list.AddRange(p.Value.EnumerateArray().Select(x => x.GetString() ?? ""));
                else if (p.Value.ValueKind == JsonValueKind.Object) list.AddRange(p.Value.EnumerateObject().Where(x => x.Value.ValueKind == JsonValueKind.True).Select(x => x.Name));
                else throw ApiError.BadRequest($"invalid filter \"{p.Name}\"");
                result[p.Name] = list;
            }
        }
        catch (JsonException e) { throw ApiError.BadRequest("invalid filters: " + e.Message); }
        return result;
    }

    static void OnlyFilters(Dictionary<string, List<string>> f, params string[] known)
    {
        foreach (var k in f.Keys)
            if (!known.Contains(k)) throw ApiError.BadRequest($"Invalid filter '{k}'");
    }

    /// <summary>Runs blocking engine work off the request's thread.</summary>
    static Task<T> Blocking<T>(Func<T> f) => Task.Factory.StartNew(f, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    static Task Blocking(Action f) => Task.Factory.StartNew(f, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
