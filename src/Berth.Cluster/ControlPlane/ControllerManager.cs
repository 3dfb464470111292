using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;

namespace Berth.Cluster.ControlPlane;

/// <summary>A controller the controller manager can run: kube's name for it and how to make it.
/// <paramref name="DefaultEnabled"/>: run without being named (kube's "*").</summary>
public sealed record ControllerDescriptor(string Name, Func<InformerFactory, Controller> Create, bool DefaultEnabled = true);

/// <summary>
/// kube-controller-manager's part of `berth server`: the controllers, sharing one informer per kind.
/// Registering a controller is one line in <see cref="All"/>.
/// </summary>
public static class ControllerManager
{
    public static readonly IReadOnlyList<ControllerDescriptor> All =
    [
        new("replicaset-controller", f => new ReplicaSetController(f)),
        new("deployment-controller", f => new DeploymentController(f)),
        new("garbage-collector-controller", f => new GarbageCollector(f)),
        new("endpoints-controller", f => new EndpointsController(f)),
        new("namespace-controller", f => new NamespaceController(f)),
        new("job-controller", f => new JobController(f)),
        new("ttl-after-finished-controller", f => new TtlAfterFinishedController(f)),
        new("cronjob-controller", f => new CronJobController(f)),
        new("daemonset-controller", f => new DaemonSetController(f)),
        new("statefulset-controller", f => new StatefulSetController(f)),
        new("serviceaccount-controller", f => new ServiceAccountController(f)),
        new("clusterrole-aggregation-controller", f => new ClusterRoleAggregationController(f)),
        new("root-ca-certificate-publisher-controller", f => new RootCaPublisher(f, f.RootCaPem)),
        new("disruption-controller", f => new DisruptionController(f)),
        new("resourcequota-controller", f => new ResourceQuotaController(f)),
        new("horizontal-pod-autoscaler-controller", f => new HorizontalPodAutoscalerController(f)),
        // Off unless named (--controllers=*,node-lifecycle): no node agent heartbeats yet, so every
        // node registered through the API would turn Unknown and be tainted after 40 s.
        new("node-lifecycle-controller", f => new NodeLifecycleController(f), DefaultEnabled: false),
    ];

    /// <summary>
    /// The controllers named by kube-controller-manager's --controllers syntax: "*" is all, "name"
    /// enables one, "-name" disables one (names with or without the "-controller" suffix).
    /// An unknown name is an <see cref="ArgumentException"/>.
    /// </summary>
    public static IReadOnlyList<ControllerDescriptor> Select(IReadOnlyList<string> spec)
    {
        if (spec.Count == 0) return All.Where(d => d.DefaultEnabled).ToList();
        var on = new HashSet<string>();
        var off = new HashSet<string>();
        var star = false;
        foreach (var raw in spec.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (raw == "*") { star = true; continue; }
            var neg = raw.StartsWith('-');
            var d = Find(neg ? raw[1..] : raw) ?? throw new ArgumentException(
                $"--controllers: unknown controller \"{raw.TrimStart('-')}\" (known: {string.Join(", ", All.Select(c => c.Name))})");
            (neg ? off : on).Add(d.Name);
        }
        return All.Where(d => !off.Contains(d.Name) && ((star && d.DefaultEnabled) || on.Contains(d.Name))).ToList();
    }

    static ControllerDescriptor? Find(string name) =>
        All.FirstOrDefault(d => d.Name == name || d.Name == name + "-controller");

    /// <summary>Starts the informers, then every controller's workers; returns when <paramref name="ct"/> is cancelled.</summary>
    /// <param name="rootCaPem">The cluster CA that every namespace's kube-root-ca.crt ConfigMap carries.</param>
    public static async Task RunAsync(IClusterClient client, IReadOnlyList<ControllerDescriptor> controllers, CancellationToken ct, string? rootCaPem = null)
    {
        var factory = new InformerFactory(client) { RootCaPem = rootCaPem };
        var running = controllers.Select(d => d.Create(factory)).ToList();
        try
        {
            await factory.StartAsync(ct).ConfigureAwait(false);
            await Task.WhenAll(running.Select(c => c.RunAsync(ct))).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        try { await factory.StoppedAsync().ConfigureAwait(false); } catch (OperationCanceledException) { }
    }

    /// <summary>kube-scheduler's part: runs the scheduler until <paramref name="ct"/> is cancelled.</summary>
    public static async Task RunSchedulerAsync(IClusterClient client, SchedulerOptions? options, CancellationToken ct)
    {
        await using var scheduler = new Scheduler(client, options);
        try
        {
            await scheduler.StartAsync(ct).ConfigureAwait(false);
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }
}
