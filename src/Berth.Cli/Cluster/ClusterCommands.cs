using System.CommandLine;
using Berth.Cluster;

namespace Berth.Cli.Cluster;

/// <summary>`berth server` and `berth kubeconfig`: the cluster control plane's verbs.</summary>
public static class ClusterCommands
{
    public static void Register(RootCommand root)
    {
        var listen = new Option<string>("--listen") { Description = "address:port to serve the Kubernetes API on (HTTPS)", DefaultValueFactory = _ => "127.0.0.1:6443" };
        var dataDir = new Option<string?>("--data-dir") { Description = "server state directory (default: <root>/server)" };

        var noScheduler = new Option<bool>("--disable-scheduler") { Description = "do not run the scheduler in this server" };
        var noControllers = new Option<bool>("--disable-controllers") { Description = "do not run any controller in this server" };
        var controllers = new Option<string[]>("--controllers")
        {
            Description = "controllers to run, as kube-controller-manager's flag: '*' (all), 'name', '-name'; comma-separated",
            AllowMultipleArgumentsPerToken = false,
        };

        var server = new Command("server", "run the cluster control plane (Kubernetes API server, store, scheduler and controllers)");
        var datastore = new Option<string?>("--datastore-endpoint") { Description = "etcd://HOST:PORT[,HOST:PORT…] to keep the cluster's state in etcd (default: SQLite in the data directory)" };
        server.Options.Add(datastore);
        server.Options.Add(listen);
        server.Options.Add(dataDir);
        server.Options.Add(noScheduler);
        server.Options.Add(noControllers);
        server.Options.Add(controllers);
        server.SetAction(async (p, ct) =>
        {
            var dir = p.GetValue(dataDir) ?? Path.Combine(p.GetValue(BerthCli.DataRoot)!, "server");
            try
            {
                return await ServerHost.RunAsync(new ServerOptions
                {
                    DataDir = Path.GetFullPath(dir), Listen = p.GetValue(listen)!,
                    DisableScheduler = p.GetValue(noScheduler), DisableControllers = p.GetValue(noControllers),
                    Controllers = p.GetValue(controllers) ?? [],
                    DatastoreEndpoint = p.GetValue(datastore),
                }, Console.Out, ct);
            }
            catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or Berth.Cluster.Storage.StoreException
                                      or System.Security.Cryptography.CryptographicException)
            {
                Console.Error.WriteLine($"berth server: {e.Message}");
                return 1;
            }
        });
        root.Subcommands.Add(server);

        var pathOnly = new Option<bool>("--path") { Description = "print the file's path instead of its content" };
        var kubeconfig = new Command("kubeconfig", "print the admin kubeconfig written by `berth server`");
        kubeconfig.Options.Add(dataDir);
        kubeconfig.Options.Add(pathOnly);
        kubeconfig.SetAction(p =>
        {
            var dir = p.GetValue(dataDir) ?? Path.Combine(p.GetValue(BerthCli.DataRoot)!, "server");
            var file = ServerHost.KubeconfigPath(Path.GetFullPath(dir));
            if (!File.Exists(file))
            {
                Console.Error.WriteLine($"berth kubeconfig: {file} does not exist (start `berth server` first)");
                return 1;
            }
            Console.Out.Write(p.GetValue(pathOnly) ? file + "\n" : File.ReadAllText(file));
            return 0;
        });
        root.Subcommands.Add(kubeconfig);
    }
}
