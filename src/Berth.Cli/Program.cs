using Berth.Runtime.Cli;

// One binary, several names (k3s-style multicall): argv[0] decides which tool this is.
var name = Path.GetFileName(Environment.GetCommandLineArgs()[0]);
if (name.StartsWith("berth-runc", StringComparison.Ordinal))
    return RuncCli.Run(args);

// The container monitor (one per container), started detached by `berth run/start`.
if (name.StartsWith("berth-shim", StringComparison.Ordinal))
    return Berth.Engine.Monitor.ContainerMonitor.Main(args);
// A user network's DNS server (one per network with containers), started by whoever connects one.
if (name.StartsWith("berth-dns", StringComparison.Ordinal))
    return Berth.Engine.Networking.NetworkDns.Main(args);
if (name.StartsWith("berth-pod-infra", StringComparison.Ordinal))
    return Berth.Engine.Pods.PodInfra.Main(args);
if (args.Length > 0 && args[0] == "shim")
    return Berth.Engine.Monitor.ContainerMonitor.Main(args[1..]);

// `berth runtime ...` is the same runtime CLI under the main binary (no parser built: hot path).
if (args.Length > 0 && args[0] == "runtime")
    return RuncCli.Run(args[1..]);
if (args is ["--version"])
{
    Console.Out.Write($"berth version {RuncCli.Version}\n");
    return 0;
}
try { args = Berth.Cli.Engine.EngineCommands.SeparateCommand(args); }
catch (Berth.Engine.EngineException e)
{
    Console.Error.WriteLine("berth: " + e.Message);
    return 125;
}
return Berth.Cli.BerthCli.Run(args);
