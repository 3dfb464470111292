using System.Net;
using Berth.Cluster.Api;
using Berth.Cluster.Client;
using Berth.Cluster.ControlPlane;
using Berth.Cluster.Security;
using Berth.Cluster.Storage;
using Berth.Cluster.Storage.Etcd;
using Berth.Cluster.Storage.Sqlite;

namespace Berth.Cluster;

public sealed record ServerOptions
{
    public required string DataDir { get; init; }
    public string Listen { get; init; } = "127.0.0.1:6443";
    /// <summary>etcd://HOST:PORT[,HOST:PORT…] (or http://…) stores everything in that etcd; null: SQLite in the data directory.</summary>
    public string? DatastoreEndpoint { get; init; }
    /// <summary>How much watch history is kept: compaction runs every interval to the revision of one interval ago.</summary>
    public TimeSpan CompactionInterval { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Run no scheduler in this server (kube: run kube-scheduler elsewhere).</summary>
    public bool DisableScheduler { get; init; }
    /// <summary>Run no controllers in this server.</summary>
    public bool DisableControllers { get; init; }
    /// <summary>kube-controller-manager's --controllers: "*", "name", "-name" (empty = all).</summary>
    public IReadOnlyList<string> Controllers { get; init; } = [];
    /// <summary>This server's identity in the leader-election Leases (default: hostname_listen-address).</summary>
    public string? Identity { get; init; }
    public LeaderElectionConfig LeaderElection { get; init; } = new();
}

/// <summary>`berth server`: the store, the PKI, the API server, the scheduler and the controllers, run until cancelled.</summary>
public static class ServerHost
{
    public static IPEndPoint ParseListen(string listen)
    {
        if (IPEndPoint.TryParse(listen, out var ep) && ep.Port != 0) return ep;
        if (listen.StartsWith("localhost:", StringComparison.Ordinal) && int.TryParse(listen[10..], out var p) && p is > 0 and < 65536)
            return new IPEndPoint(IPAddress.Loopback, p);
        throw new ArgumentException($"--listen \"{listen}\" is not an address:port (e.g. 127.0.0.1:6443)");
    }

    public static string KubeconfigPath(string dataDir) => Path.Combine(dataDir, "admin.kubeconfig");

    public static async Task<int> RunAsync(ServerOptions options, TextWriter output, CancellationToken ct)
    {
        var endpoint = ParseListen(options.Listen);
        var controllers = options.DisableControllers ? [] : ControllerManager.Select(options.Controllers);
        if (options.DatastoreEndpoint is { } ep) EtcdStore.ParseEndpoints(ep); // bad input fails before anything is written
        var creds = Pki.Ensure(options.DataDir, endpoint.Address.ToString(), endpoint.Port);
        await using IStore store = options.DatastoreEndpoint is { } etcd
            ? await EtcdStore.OpenAsync(etcd, ct: ct)
            : SqliteStore.Open(Path.Combine(options.DataDir, "state.db"));
        await using var server = ApiServer.Create(store, creds, endpoint);
        await server.BootstrapAsync(ct);
        await server.StartAsync(ct);
        output.WriteLine($"berth server: serving the Kubernetes API on https://{endpoint}");
        output.WriteLine($"berth server: admin kubeconfig: {creds.KubeconfigPath}");

        // The scheduler and the controller manager, each under its own Lease in kube-system, so that
        // of several servers on one store exactly one runs each.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var client = new LocalClusterClient(server.Handler);
        var identity = options.Identity ?? $"{Environment.MachineName}_{endpoint}";
        var components = new List<Task>();
        if (!options.DisableScheduler)
        {
            var elector = new LeaderElector(client, "kube-system", "kube-scheduler", identity, options.LeaderElection);
            components.Add(elector.RunAsync(t => ControllerManager.RunSchedulerAsync(client, null, t), stop.Token));
            output.WriteLine("berth server: scheduler enabled (lease kube-system/kube-scheduler)");
        }
        if (controllers.Count > 0)
        {
            var elector = new LeaderElector(client, "kube-system", "kube-controller-manager", identity, options.LeaderElection);
            var caPem = creds.Ca.ExportCertificatePem() + "\n";
            components.Add(elector.RunAsync(t => ControllerManager.RunAsync(client, controllers, t, caPem), stop.Token));
            output.WriteLine($"berth server: controllers {string.Join(",", controllers.Select(c => c.Name))} (lease kube-system/kube-controller-manager)");
        }
        output.Flush();
        components.Add(new IdleMemoryTrimmer().RunAsync(stop.Token));
        var previous = store.CurrentRevision;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(options.CompactionInterval, ct);
                await store.CompactAsync(previous, ct);
                previous = store.CurrentRevision;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        stop.Cancel();
        try { await Task.WhenAll(components).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException) { }
        return 0;
    }
}
