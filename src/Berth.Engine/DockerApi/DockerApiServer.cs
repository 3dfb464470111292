using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Berth.Linux;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Berth.Engine.DockerApi;

public sealed class DockerApiOptions
{
    /// <summary>unix:///PATH or tcp://ADDRESS:PORT (dockerd's -H).</summary>
    public string Host { get; init; } = "unix:///run/berth/docker.sock";
    /// <summary>dockerd's --tls: null when not given. tcp:// needs TLS unless this is explicitly false.</summary>
    public bool? Tls { get; init; }
    /// <summary>dockerd's --tlsverify: TLS, and every client presents a certificate signed by <see cref="TlsCaCert"/>.</summary>
    public bool TlsVerify { get; init; }
    public string? TlsCaCert { get; init; }
    public string? TlsCert { get; init; }
    public string? TlsKey { get; init; }
    public required string DataRoot { get; init; }
    public required string RunRoot { get; init; }
    public string? RuntimePath { get; init; }
    /// <summary>Largest JSON request body (docker has none; bounded here so a client cannot exhaust memory).</summary>
    public long MaxJsonBodyBytes { get; init; } = 10 << 20;
    /// <summary>Group that owns the socket (mode 0660), created when missing, as dockerd's `docker` group.</summary>
    public string SocketGroup { get; init; } = "berth";
    /// <summary>dockerd's --debug: one line per request on stderr (method, path, status, milliseconds).</summary>
    public bool Debug { get; init; }
}

/// <summary>
/// `berth system service`: the Docker Engine API on a unix socket or TCP (with TLS client certificates), served by Kestrel (slim builder,
/// no MVC, source-generated JSON). Every request runs the same engine library as the CLI, so a
/// container made through one is seen by the other.
/// </summary>
public sealed class DockerApiServer : IAsyncDisposable
{
    readonly WebApplication _app;
    public Listen Address { get; }
    /// <summary>The unix socket, null when serving TCP.</summary>
    public string? SocketPath => Address.SocketPath;
    public DockerApiHandler Handler { get; }

    DockerApiServer(WebApplication app, Listen address, DockerApiHandler handler) { _app = app; Address = address; Handler = handler; }

    /// <summary>Where the service listens: a unix socket path or a TCP endpoint.</summary>
    public readonly record struct Listen(string? SocketPath, IPEndPoint? Tcp)
    {
        public override string ToString() => SocketPath is { } p ? "unix://" + p : "tcp://" + Tcp;
    }

    /// <summary>dockerd's -H forms: unix:///PATH, tcp://ADDRESS:PORT (an IP address; [v6]:PORT).</summary>
    public static Listen ParseHost(string host)
    {
        if (host.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = host["unix://".Length..];
            if (path.Length == 0 || !path.StartsWith('/')) throw EngineException.Invalid($"invalid --host \"{host}\": expected unix:///ABSOLUTE/PATH");
            return new Listen(path, null);
        }
        if (host.StartsWith("tcp://", StringComparison.Ordinal))
        {
            var rest = host["tcp://".Length..].TrimEnd('/');
            if (!IPEndPoint.TryParse(rest, out var ep) || ep.Port == 0 || !rest.Contains(':') || rest.EndsWith(']'))
                throw EngineException.Invalid($"invalid --host \"{host}\": expected tcp://IP:PORT (for example tcp://127.0.0.1:2376)");
            return new Listen(null, ep);
        }
        throw EngineException.Invalid($"invalid --host \"{host}\": expected unix:///PATH or tcp://IP:PORT");
    }

    /// <summary>Checks the TLS flags against the host as dockerd does; returns the warning to print, if any.</summary>
    public static string? CheckTls(DockerApiOptions o, Listen listen)
    {
        var tls = o.TlsVerify || o.Tls == true;
        if (o.TlsVerify && o.Tls == false) throw EngineException.Invalid("--tlsverify and --tls=false contradict each other");
        if (tls)
        {
            if (listen.Tcp is null) throw EngineException.Invalid($"--tls/--tlsverify apply to tcp:// hosts, not {listen}");
            if (string.IsNullOrEmpty(o.TlsCert) || string.IsNullOrEmpty(o.TlsKey)) throw EngineException.Invalid("--tls/--tlsverify need --tlscert and --tlskey");
            if (o.TlsVerify && string.IsNullOrEmpty(o.TlsCaCert)) throw EngineException.Invalid("--tlsverify needs --tlscacert (the CA that signs client certificates)");
            foreach (var f in new[] { o.TlsCert, o.TlsKey, o.TlsCaCert })
                if (!string.IsNullOrEmpty(f) && !File.Exists(f)) throw new EngineException(ErrorKind.NotFound, $"TLS file {f} does not exist");
            return o.TlsVerify ? null : $"berth: WARNING: {listen} serves TLS without --tlsverify: any client that reaches it controls this machine's containers";
        }
        if (listen.Tcp is null) return null;
        if (o.Tls is null)
            throw EngineException.Invalid($"refusing to serve {listen} without TLS: give --tlsverify --tlscacert CA --tlscert CERT --tlskey KEY, or --tls=false to serve plain HTTP (insecure)");
        return $"berth: WARNING: Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network ({listen}).";
    }

    public static DockerApiServer Create(DockerApiOptions options)
    {
        var listen = ParseHost(options.Host);
        CheckTls(options, listen);
        var path = listen.SocketPath;
        if (path is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            ClaimSocket(path);
        }
        var tls = listen.Tcp is not null && (options.TlsVerify || options.Tls == true) ? TlsOptions(options) : null;
        var handler = new DockerApiHandler(options);
        // No configuration reload: its file watcher (appsettings.json in the content root, the working
        // directory) watched the whole tree below the working directory with inotify, woke on every file
        // the engine wrote there (measured: ~23,000 lstat calls during one `docker run` started from a
        // directory holding the data root) and would have walked all of / for a service started from /.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        if (options.Debug)
        {
            builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
            builder.Logging.AddFilter((category, level) => category == DockerApiHandler.LogCategory ? level >= LogLevel.Debug : level >= LogLevel.Warning);
            builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            // Streams (pull, push, load) may be large; JSON bodies are bounded per request in the handler.
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MaxRequestHeadersTotalSize = 64 * 1024;
            k.Limits.MaxRequestHeaderCount = 100;
            k.Limits.MaxRequestLineSize = 16 * 1024;
            k.Limits.KeepAliveTimeout = TimeSpan.FromMinutes(5);
            void Configure(ListenOptions lo)
            {
                lo.Protocols = HttpProtocols.Http1;
                if (tls is not null) lo.UseHttps(tls);
                lo.Use(next => conn => HalfClose(conn, next));
            }
            if (path is not null) k.ListenUnixSocket(path, Configure);
            else k.Listen(listen.Tcp!, Configure);
        });
        var app = builder.Build();
        if (options.Debug) handler.RequestLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(DockerApiHandler.LogCategory);
        app.Run(handler.HandleAsync);
        return new DockerApiServer(app, listen, handler);
    }

    /// <summary>The server certificate, and with --tlsverify client certificates required and
    /// verified against the given CA only (not the system's roots).</summary>
    static HttpsConnectionAdapterOptions TlsOptions(DockerApiOptions o)
    {
        X509Certificate2 cert;
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(o.TlsCert!, o.TlsKey);
            // an ephemeral key is not usable by SslStream everywhere: round-trip through PKCS#12
            cert = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (CryptographicException e) { throw EngineException.Invalid($"cannot load --tlscert {o.TlsCert} / --tlskey {o.TlsKey}: {e.Message}"); }
        var https = new HttpsConnectionAdapterOptions
        {
            ServerCertificate = cert,
            SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateMode = o.TlsVerify ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
        };
        if (o.TlsVerify)
        {
            var cas = new X509Certificate2Collection();
            try { cas.ImportFromPemFile(o.TlsCaCert!); }
            catch (CryptographicException e) { throw EngineException.Invalid($"cannot load --tlscacert {o.TlsCaCert}: {e.Message}"); }
            if (cas.Count == 0) throw EngineException.Invalid($"--tlscacert {o.TlsCaCert} holds no certificate");
            https.ClientCertificateValidation = (client, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(cas);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // clientAuth
                return chain.Build(client);
            };
        }
        return https;
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
        if (SocketPath is { } path) SecureSocket(path, Handler.Options.SocketGroup);
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
        if (SocketPath is { } path) try { File.Delete(path); } catch (IOException) { }
    }
}
