using System.CommandLine;
using System.Runtime.InteropServices;
using Berth.Engine;
using Berth.Engine.DockerApi;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`berth system service`: the Docker Engine API on a unix socket or TCP with TLS (joins an existing
    /// `system` group if another area registered one).</summary>
    static void RegisterService(RootCommand root)
    {
        var system = root.Subcommands.FirstOrDefault(c => c.Name == "system");
        if (system is null)
        {
            system = new Command("system", "manage the engine");
            root.Subcommands.Add(system);
        }
        var c = new Command("service", "serve the Docker Engine API (docker CLI, Docker.DotNet, compose) on a unix socket or TCP with TLS");
        var host = new Option<string>("--host", "-H") { Description = "where to listen: unix:///PATH or tcp://IP:PORT (tcp needs --tlsverify, or --tls=false for plain HTTP)", DefaultValueFactory = _ => "unix:///run/berth/docker.sock" };
        var tls = new Option<bool?>("--tls") { Description = "serve TLS on a tcp:// host (--tls=false: plain HTTP, insecure)" };
        var tlsVerify = new Option<bool>("--tlsverify") { Description = "serve TLS and require client certificates signed by --tlscacert" };
        var tlsCa = new Option<string?>("--tlscacert") { Description = "CA certificate (PEM) that client certificates must chain to" };
        var tlsCert = new Option<string?>("--tlscert") { Description = "server certificate (PEM)" };
        var tlsKey = new Option<string?>("--tlskey") { Description = "server private key (PEM)" };
        var timeout = new Option<int>("--timeout", "--time", "-t") { Description = "seconds without requests before the service exits (0: never)", DefaultValueFactory = _ => 0 };
        var maxBody = new Option<long>("--max-request-body") { Description = "largest JSON request body in bytes", DefaultValueFactory = _ => 10 << 20 };
        var group = new Option<string>("--group", "-G") { Description = "group owning the socket (mode 0660; created if missing)", DefaultValueFactory = _ => "berth" };
        var debug = new Option<bool>("--debug", "-D") { Description = "log every request on stderr: method, path, status and milliseconds" };
        c.Options.Add(host); c.Options.Add(timeout); c.Options.Add(maxBody); c.Options.Add(group); c.Options.Add(debug);
        c.Options.Add(tls); c.Options.Add(tlsVerify); c.Options.Add(tlsCa); c.Options.Add(tlsCert); c.Options.Add(tlsKey);
        c.Arguments.Add(new Argument<string?>("URI") { Arity = ArgumentArity.ZeroOrOne, Description = "(as podman) the same as --host" });
        c.SetAction(p => Guard(() =>
        {
            if (p.GetValue(timeout) < 0) throw EngineException.Invalid("--timeout must be 0 or more seconds");
            if (p.GetValue(maxBody) < 1024) throw EngineException.Invalid("--max-request-body must be at least 1024 bytes");
            var uri = p.GetValue<string?>("URI") ?? p.GetValue(host)!;
            var options = new DockerApiOptions
            {
                Host = uri,
                DataRoot = p.GetValue(BerthCli.DataRoot)!,
                RunRoot = p.GetValue(BerthCli.RunRoot)!,
                RuntimePath = p.GetValue(RuntimeOption),
                MaxJsonBodyBytes = p.GetValue(maxBody),
                SocketGroup = p.GetValue(group)!,
                Tls = p.GetValue(tls),
                TlsVerify = p.GetValue(tlsVerify),
                TlsCaCert = p.GetValue(tlsCa),
                TlsCert = p.GetValue(tlsCert),
                TlsKey = p.GetValue(tlsKey),
                Debug = p.GetValue(debug),
            };
            if (DockerApiServer.CheckTls(options, DockerApiServer.ParseHost(uri)) is { } warning) Console.Error.WriteLine(warning);
            return Serve(options, p.GetValue(timeout)).GetAwaiter().GetResult();
        }));
        system.Subcommands.Add(c);
    }

    static async Task<int> Serve(DockerApiOptions options, int idleSeconds)
    {
        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        await using var server = DockerApiServer.Create(options);
        await server.StartAsync(stop.Token);
        Console.Error.WriteLine($"berth: serving the Docker Engine API (v{DockerApiHandler.MinApiVersion}–v{DockerApiHandler.MaxApiVersion}) on {server.Address}{(options.TlsVerify ? " (TLS, client certificates verified)" : options.Tls == true ? " (TLS)" : "")}");
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(1000, stop.Token);
                var (active, last) = server.Handler.Activity;
                if (idleSeconds > 0 && active == 0 && Environment.TickCount64 - last > idleSeconds * 1000L) break;
                server.Handler.ReapMonitors();
            }
        }
        catch (OperationCanceledException) { }
        return 0;
    }
}
