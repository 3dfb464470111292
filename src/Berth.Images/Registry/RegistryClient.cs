using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Oci.Image;

namespace Berth.Images.Registry;

/// <summary>
/// A client of one registry (OCI distribution-spec / Docker Registry HTTP API v2): ping, the Bearer
/// token flow and Basic auth driven by WWW-Authenticate, retries with backoff on 429/5xx/broken
/// connections, manifests and blobs (pull side: <see cref="RegistryClient"/>.Get*; push side: the
/// upload methods). Scheme and auth are settled by the first request (a ping of /v2/).
/// </summary>
public sealed partial class RegistryClient : IDisposable
{
    /// <summary>The registry as named in references (`docker.io`, `127.0.0.1:5000`).</summary>
    public string Registry { get; }
    readonly string _host;
    readonly RegistryOptions _o;
    readonly HttpClient _client;
    readonly RegistryCredentials? _creds;
    readonly SemaphoreSlim _pingLock = new(1, 1);
    readonly ConcurrentDictionary<string, (string Token, DateTime Expires)> _tokens = new(StringComparer.Ordinal);
    Uri? _base;
    AuthChallenge? _challenge;

    public RegistryClient(string registry, RegistryOptions options)
    {
        Registry = registry;
        _host = registry == "docker.io" ? "registry-1.docker.io" : registry;
        _o = options;
        _creds = options.Credentials ?? (options.AuthFile ?? AuthFile.Default()).Get(registry);
        var insecure = options.IsInsecure(registry);
        HttpMessageHandler handler = options.HandlerFactory?.Invoke(insecure) ?? CreateHandler(insecure);
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("berth", "0.1"));
    }

    static SocketsHttpHandler CreateHandler(bool insecure)
    {
        var h = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = true, // Authorization is dropped on redirects (blob storage URLs)
            MaxConnectionsPerServer = 16,
        };
        if (insecure) h.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        return h;
    }

    public void Dispose() { _client.Dispose(); _pingLock.Dispose(); }

    public static string PullScope(string repo) => $"repository:{repo}:pull";
    public static string PushScope(string repo) => $"repository:{repo}:pull,push";

    // ---------------------------------------------------------------- endpoint and auth

    /// <summary>GET /v2/: settles scheme (https, or http for an insecure registry) and the challenge.</summary>
    public async Task PingAsync(CancellationToken ct)
    {
        if (_base is not null) return;
        await _pingLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_base is not null) return;
            var https = new Uri($"https://{_host}/");
            HttpResponseMessage resp;
            if (_o.IsInsecure(Registry))
            {
                // HTTPS without verification first; a plain-HTTP registry fails the handshake (or
                // never answers it: bounded by a timeout), then plain HTTP.
                using var probe = CancellationTokenSource.CreateLinkedTokenSource(ct);
                probe.CancelAfter(TimeSpan.FromSeconds(10));
                try { resp = await _client.GetAsync(new Uri(https, "v2/"), HttpCompletionOption.ResponseHeadersRead, probe.Token).ConfigureAwait(false); }
                catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    https = new Uri($"http://{_host}/");
                    resp = await SendWithRetryAsync(() => new HttpRequestMessage(HttpMethod.Get, new Uri(https, "v2/")), ct).ConfigureAwait(false);
                }
            }
            else
            {
                resp = await SendWithRetryAsync(() => new HttpRequestMessage(HttpMethod.Get, new Uri(https, "v2/")), ct).ConfigureAwait(false);
            }
            using (resp)
            {
                if (resp.StatusCode == HttpStatusCode.Unauthorized)
                    _challenge = ChallengeOf(resp) ?? throw ImageException.Unauthorized($"registry {Registry}: 401 without a WWW-Authenticate challenge");
                else if (!resp.IsSuccessStatusCode)
                    throw await ErrorAsync(resp, $"registry {Registry}").ConfigureAwait(false);
            }
            _base = https;
        }
        finally { _pingLock.Release(); }
    }

    static AuthChallenge? ChallengeOf(HttpResponseMessage resp)
    {
        if (!resp.Headers.TryGetValues("WWW-Authenticate", out var values)) return null;
        var all = values.SelectMany(AuthChallenge.Parse).ToList();
        return all.FirstOrDefault(c => c.IsBearer) ?? all.FirstOrDefault(c => c.IsBasic);
    }

    /// <summary>Checks the configured credentials against the registry (what `login` does before storing them).</summary>
    public async Task VerifyCredentialsAsync(CancellationToken ct)
    {
        await PingAsync(ct).ConfigureAwait(false);
        if (_challenge is null) return; // the registry asks for no authentication
        if (_creds is null) throw ImageException.Unauthorized($"registry {Registry}: credentials required");
        if (_challenge.IsBearer)
        {
            await FetchTokenAsync(_challenge, [], ct).ConfigureAwait(false);
            return;
        }
        using var resp = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, Url("v2/")), [], true, ct).ConfigureAwait(false);
        if (!resp.IsSuccessStatusCode) throw await ErrorAsync(resp, $"login to {Registry}").ConfigureAwait(false);
    }

    async Task<string> FetchTokenAsync(AuthChallenge ch, string[] scopes, CancellationToken ct)
    {
        var key = string.Join(' ', scopes.Order(StringComparer.Ordinal));
        if (_tokens.TryGetValue(key, out var cached) && cached.Expires > DateTime.UtcNow) return cached.Token;
        if (ch.Realm is not { Length: > 0 } realm || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri))
            throw ImageException.Unauthorized($"registry {Registry}: Bearer challenge without a valid realm");
        var q = new StringBuilder();
        if (ch.Service is { } svc) q.Append("service=").Append(Uri.EscapeDataString(svc));
        foreach (var s in scopes) q.Append(q.Length > 0 ? "&" : "").Append("scope=").Append(Uri.EscapeDataString(s));
        var ub = new UriBuilder(realmUri);
        ub.Query = string.IsNullOrEmpty(ub.Query) || ub.Query == "?" ? q.ToString() : ub.Query.TrimStart('?') + "&" + q;
        using var resp = await SendWithRetryAsync(() =>
        {
            var req = new HttpRequestMessage(HttpMethod.Get, ub.Uri);
            if (_creds is not null) req.Headers.Authorization = BasicHeader(_creds);
            return req;
        }, ct).ConfigureAwait(false);
        if (resp.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw ImageException.Unauthorized($"registry {Registry}: token server {realmUri.Authority} refused the {(_creds is null ? "anonymous request" : $"credentials of \"{_creds.Username}\"")} ({(int)resp.StatusCode})");
        if (!resp.IsSuccessStatusCode) throw await ErrorAsync(resp, $"token server {realmUri.Authority}").ConfigureAwait(false);
        TokenResponse? tr;
        try { tr = JsonSerializer.Deserialize(await resp.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false), RegistryJsonContext.Default.TokenResponse); }
        catch (JsonException e) { throw ImageException.Unauthorized($"token server {realmUri.Authority}: malformed response: {e.Message}"); }
        var token = tr?.Token is { Length: > 0 } t ? t : tr?.AccessToken is { Length: > 0 } a ? a
            : throw ImageException.Unauthorized($"token server {realmUri.Authority}: response has no token");
        // distribution's token spec: expires_in defaults to 60 s; renew a little early.
        _tokens[key] = (token, DateTime.UtcNow.AddSeconds(Math.Max(10, (tr?.ExpiresIn ?? 60) - 5)));
        return token;
    }

    static AuthenticationHeaderValue BasicHeader(RegistryCredentials c) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Password}")));

    async Task AuthorizeAsync(HttpRequestMessage req, string[] scopes, CancellationToken ct)
    {
        if (_challenge is null) return;
        if (_challenge.IsBasic)
        {
            if (_creds is not null) req.Headers.Authorization = BasicHeader(_creds);
            return;
        }
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await FetchTokenAsync(_challenge, scopes, ct).ConfigureAwait(false));
    }

    public Uri Url(string relative) => new(_base ?? throw new InvalidOperationException("not pinged"), relative);

    /// <summary>
    /// Sends an authorized request made by <paramref name="make"/> (called again for each try). A 401
    /// answering a Bearer token refreshes the token once with the challenge's scope. With
    /// <paramref name="retry"/>, 429/5xx and connection failures are retried with backoff.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> make, string[] scopes, bool retry, CancellationToken ct)
    {
        await PingAsync(ct).ConfigureAwait(false);
        var refreshed = false;
        while (true)
        {
            var resp = await SendWithRetryAsync(() => make(), ct, retry ? _o.MaxAttempts : 1, async r => await AuthorizeAsync(r, scopes, ct).ConfigureAwait(false)).ConfigureAwait(false);
            if (resp.StatusCode != HttpStatusCode.Unauthorized || refreshed) return resp;
            // The token may have expired or lacked a scope, or /v2/ was open but this repository is
            // not: ask again once with what the registry's challenge names.
            var ch = ChallengeOf(resp);
            if (ch is null || (_challenge is not null && !ch.IsBearer) || (ch.IsBasic && _creds is null)) return resp;
            _tokens.Clear();
            if (ch.Scope is { Length: > 0 } s && !scopes.Contains(s)) scopes = [.. scopes, s];
            _challenge = ch;
            refreshed = true;
            resp.Dispose();
        }
    }

    async Task<HttpResponseMessage> SendWithRetryAsync(Func<HttpRequestMessage> make, CancellationToken ct, int attempts = -1, Func<HttpRequestMessage, Task>? prepare = null)
    {
        if (attempts < 0) attempts = _o.MaxAttempts;
        for (var attempt = 1; ; attempt++)
        {
            using var req = make();
            if (prepare is not null) await prepare(req).ConfigureAwait(false);
            HttpResponseMessage resp;
            try
            {
                resp = await _client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (attempt < attempts && !ct.IsCancellationRequested)
            {
                _ = e;
                await Task.Delay(Backoff(attempt, null), ct).ConfigureAwait(false);
                continue;
            }
            catch (HttpRequestException e)
            {
                throw ImageException.Unavailable($"registry {Registry}: {req.Method} {req.RequestUri?.AbsolutePath}: {Describe(e)}", e);
            }
            if (attempt < attempts && ((int)resp.StatusCode == 429 || (int)resp.StatusCode >= 500))
            {
                var delay = Backoff(attempt, resp.Headers.RetryAfter);
                resp.Dispose();
                await Task.Delay(delay, ct).ConfigureAwait(false);
                continue;
            }
            return resp;
        }
    }

    internal TimeSpan Backoff(int attempt, RetryConditionHeaderValue? retryAfter)
    {
        if (retryAfter?.Delta is { } d) return d < _o.BackoffMax ? d : _o.BackoffMax;
        var ms = _o.BackoffBase.TotalMilliseconds * Math.Pow(2, attempt - 1);
        ms = Math.Min(ms, _o.BackoffMax.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms * (0.75 + Random.Shared.NextDouble() * 0.5));
    }

    internal static string Describe(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        return inner == e ? e.Message : $"{e.Message} ({inner.Message})";
    }

    /// <summary>The one-line error for an unexpected response, with the registry's error code when it sent one.</summary>
    public static async Task<ImageException> ErrorAsync(HttpResponseMessage resp, string what)
    {
        string detail = "";
        try
        {
            var body = await resp.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            if (body.Length > 0 && body.Length < 65536)
            {
                var errs = JsonSerializer.Deserialize(body, RegistryJsonContext.Default.ErrorResponse);
                if (errs?.Errors is { Count: > 0 } list)
                    detail = ": " + string.Join("; ", list.Select(x => $"{x.Code}: {x.Message}".Trim(' ', ':')));
            }
        }
        catch (Exception e) when (e is JsonException or HttpRequestException or IOException) { }
        var code = (int)resp.StatusCode;
        var msg = $"{what}: {code} {resp.ReasonPhrase}{detail}";
        return code switch
        {
            401 or 403 => ImageException.Unauthorized(msg),
            404 => ImageException.NotFound(msg),
            400 or 405 or 413 or 415 => ImageException.Invalid(msg),
            _ => ImageException.Unavailable(msg),
        };
    }
}

internal sealed class TokenResponse
{
    [JsonPropertyName("token")] public string? Token { get; set; }
    [JsonPropertyName("access_token")] public string? AccessToken { get; set; }
    [JsonPropertyName("expires_in")] public int? ExpiresIn { get; set; }
}

internal sealed class ErrorResponse
{
    [JsonPropertyName("errors")] public List<RegistryError>? Errors { get; set; }
}

internal sealed class RegistryError
{
    [JsonPropertyName("code")] public string? Code { get; set; }
    [JsonPropertyName("message")] public string? Message { get; set; }
}

[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(ErrorResponse))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
