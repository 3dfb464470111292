using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Images.Tests.Support;

public sealed record HttpRequestInfo(string Method, string Target, Dictionary<string, string> Headers, byte[] Body)
{
    public string Path => Target.Split('?')[0];
    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var v) ? v : null;
}

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1:&lt;free port&gt; for fault tests: the handler writes the raw
/// response, so it can send wrong bytes, stop mid-body and close the connection, or answer any status.
/// </summary>
public sealed class TinyHttpServer : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly Func<HttpRequestInfo, Stream, Task<bool>> _handler;
    readonly CancellationTokenSource _stop = new();
    public List<HttpRequestInfo> Requests { get; } = [];
    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";

    /// <summary>The handler returns false to close the connection after its response.</summary>
    public TinyHttpServer(Func<HttpRequestInfo, Stream, Task<bool>> handler)
    {
        _handler = handler;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoop();
    }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient c;
            try { c = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Serve(c);
        }
    }

    async Task Serve(TcpClient c)
    {
        using (c)
        {
            var s = c.GetStream();
            try
            {
                while (true)
                {
                    var req = await ReadRequest(s);
                    if (req is null) return;
                    lock (Requests) Requests.Add(req);
                    if (!await _handler(req, s)) return;
                }
            }
            catch (IOException) { }
            catch (ObjectDisposedException) { }
        }
    }

    static async Task<HttpRequestInfo?> ReadRequest(Stream s)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            if (await s.ReadAsync(one) == 0) return null;
            if (head.Count == 0 && one[0] == 0x16) return null; // a TLS ClientHello: plain HTTP only
            head.Add(one[0]);
            if (head.Count >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r') break;
        }
        var lines = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var parts = lines[0].Split(' ');
        var headers = new Dictionary<string, string>();
        foreach (var l in lines.Skip(1))
        {
            var colon = l.IndexOf(':');
            if (colon > 0) headers[l[..colon].Trim().ToLowerInvariant()] = l[(colon + 1)..].Trim();
        }
        var body = Array.Empty<byte>();
        if (headers.TryGetValue("content-length", out var cl) && long.Parse(cl) > 0)
        {
            body = new byte[long.Parse(cl)];
            await s.ReadExactlyAsync(body);
        }
        return new HttpRequestInfo(parts[0], parts[1], headers, body);
    }

    public static async Task Respond(Stream s, int status, string reason, IEnumerable<(string, string)>? headers = null, byte[]? body = null, int? cutAfter = null)
    {
        body ??= [];
        var sb = new StringBuilder($"HTTP/1.1 {status} {reason}\r\n");
        foreach (var (k, v) in headers ?? []) sb.Append($"{k}: {v}\r\n");
        sb.Append($"Content-Length: {body.Length}\r\n\r\n");
        await s.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()));
        await s.WriteAsync(body.AsMemory(0, cutAfter ?? body.Length));
        await s.FlushAsync();
    }

    public static Task Json(Stream s, int status, string json, params (string, string)[] headers) =>
        Respond(s, status, status switch { 200 => "OK", 401 => "Unauthorized", 404 => "Not Found", 429 => "Too Many Requests", 500 => "Internal Server Error", _ => "Status" },
            headers.Append(("Content-Type", "application/json")), Encoding.UTF8.GetBytes(json));

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
