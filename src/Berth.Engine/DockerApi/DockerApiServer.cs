using System.Net.Sockets;
using Berth.Linux;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Berth.Engine.DockerApi;

public sealed class DockerApiOptions
{
    /// <summary>unix:///path (tcp:// is refused until TLS client certificates are supported).</summary>
    public string Host { get; init; } = "unix:///run/berth/docker.sock";
    public required string DataRoot { get; init; }
    public required string RunRoot { get; init; }
    public string? RuntimePath { get; init; }
    /// <summary>Largest JSON request body (docker has none; bounded here so a client cannot exhaust memory).</summary>
    public long MaxJsonBodyBytes { get; init; } = 10 << 20;
    /// <summary>Group that owns the socket (mode 0660), created when missing, as dockerd's `docker` group.</summary>
    public string SocketGroup { get; init; } = "berth";
}

/// <summary>
/// `berth system service`: the Docker Engine API on a unix socket, served by Kestrel (slim builder,
/// no MVC, source-generated JSON). Every request runs the same engine library as the CLI, so a
/// container made through one is seen by the other.
/// </summary>
public sealed class DockerApiServer : IAsyncDisposable
{
    readonly WebApplication _app;
    public string SocketPath { get; }
    public DockerApiHandler Handler { get; }

    DockerApiServer(WebApplication app, string socketPath, DockerApiHandler handler) { _app = app; SocketPath = socketPath; Handler = handler; }

    public static string SocketPathOf(string host)
    {
        if (host.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = host["unix://".Length..];
            if (path.Length == 0 || !path.StartsWith('/')) throw EngineException.Invalid($"invalid --host \"{host}\": expected unix:///ABSOLUTE/PATH");
            return path;
        }
        if (host.StartsWith("tcp://", StringComparison.Ordinal))
            throw EngineException.Invalid($"--host {host}: TCP is not served (it needs TLS client certificates, not done yet); use unix:///PATH");
        throw EngineException.Invalid($"invalid --host \"{host}\": expected unix:///PATH");
    }

    public static DockerApiServer Create(DockerApiOptions options)
    {
        var path = SocketPathOf(options.Host);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ClaimSocket(path);
        var handler = new DockerApiHandler(options);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            // Streams (pull, push, load) may be large; JSON bodies are bounded per request in the handler.
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MaxRequestHeadersTotalSize = 64 * 1024;
            k.Limits.MaxRequestHeaderCount = 100;
            k.Limits.MaxRequestLineSize = 16 * 1024;
            k.Limits.KeepAliveTimeout = TimeSpan.FromMinutes(5);
            k.ListenUnixSocket(path, lo =>
            {
                lo.Protocols = HttpProtocols.Http1;
                lo.Use(next => conn => HalfClose(conn, next));
            });
        });
        var app = builder.Build();
        app.Run(handler.HandleAsync);
        return new DockerApiServer(app, path, handler);
    }

    /// <summary>docker's clients half-close a hijacked connection when they have no stdin; Kestrel
    /// takes the FIN for the end of the connection. Here the FIN only ends the input (a hijacked
    /// stream reads EOF): the connection stays open for the output until the request ends.</summary>
    static async Task HalfClose(Microsoft.AspNetCore.Connections.ConnectionContext conn, Microsoft.AspNetCore.Connections.ConnectionDelegate next)
    {
        var inner = conn.Transport;
        var pipe = new System.IO.Pipelines.Pipe();
        conn.Transport = new Duplex(pipe.Reader, inner.Output);
        using var closed = new CancellationTokenSource();
        conn.ConnectionClosed = closed.Token;
        var pump = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var r = await inner.Input.ReadAsync();
                    foreach (var seg in r.Buffer) await pipe.Writer.WriteAsync(seg);
                    inner.Input.AdvanceTo(r.Buffer.End);
                    if (r.IsCompleted || r.IsCanceled) break;
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException or Microsoft.AspNetCore.Connections.ConnectionResetException) { }
            await pipe.Writer.CompleteAsync();
        });
        try { await next(conn); }
        finally { closed.Cancel(); }
    }

    sealed class Duplex(System.IO.Pipelines.PipeReader input, System.IO.Pipelines.PipeWriter output) : System.IO.Pipelines.IDuplexPipe
    {
        public System.IO.Pipelines.PipeReader Input { get; } = input;
        public System.IO.Pipelines.PipeWriter Output { get; } = output;
    }

    /// <summary>Refuses to start if a live service answers on the socket; removes a stale one.</summary>
    static void ClaimSocket(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) return;
        if (Directory.Exists(path)) throw EngineException.Invalid($"{path} is a directory");
        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                s.Connect(new UnixDomainSocketEndPoint(path));
                throw new EngineException(ErrorKind.FailedPrecondition, $"another service is listening on {path}");
            }
            catch (SocketException) { /* stale: nobody listens */ }
        }
        File.Delete(path);
    }

    public async Task StartAsync(CancellationToken ct)
    {
        await _app.StartAsync(ct);
        SecureSocket(SocketPath, Handler.Options.SocketGroup);
    }

    /// <summary>root:GROUP 0660 (the group made if missing, as dockerd's docker group); 0600 if no group can be had.</summary>
    static void SecureSocket(string path, string group)
    {
        var gid = GroupId(group);
        if (gid is null && Environment.UserName == "root")
        {
            try
            {
                using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("groupadd", ["--system", group])
                { RedirectStandardError = true, RedirectStandardOutput = true });
                p?.WaitForExit(10_000);
            }
            catch (System.ComponentModel.Win32Exception) { }
            gid = GroupId(group);
        }
        if (gid is { } g)
        {
            if (Berth.Linux.Interop.Libc.fchownat(-100 /* AT_FDCWD */, path, 0, (uint)g, 0) != 0) throw SyscallException.Last("chown", path);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        }
        else File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    static int? GroupId(string name)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/group"))
            {
                var f = line.Split(':');
                if (f.Length >= 3 && f[0] == name && int.TryParse(f[2], out var gid)) return gid;
            }
        }
        catch (IOException) { }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try { await _app.StopAsync(cts.Token); } catch (OperationCanceledException) { }
        await _app.DisposeAsync();
        try { File.Delete(SocketPath); } catch (IOException) { }
    }
}
