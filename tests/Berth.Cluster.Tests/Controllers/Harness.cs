using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;

namespace Berth.Cluster.Tests.Controllers;

/// <summary>An in-memory cluster with controllers running and a fake kubelet that makes pods Running and Ready (unless told to hold some back).</summary>
internal sealed class Harness : IAsyncDisposable
{
    public readonly InMemoryClusterClient Client;
    public readonly InformerFactory Factory;
    readonly CancellationTokenSource _cts = new();
    readonly List<Task> _tasks = [];
    readonly List<Controller> _controllers = [];
    /// <summary>Pods for which this returns false stay not ready.</summary>
    public volatile Func<V1Pod, bool> MakeReady = _ => true;
    public bool Kubelet { get; init; } = true;

    public Harness(TimeProvider? time = null)
    {
        Client = new InMemoryClusterClient(time: time);
        Factory = new InformerFactory(Client);
    }

    public T Add<T>(T c) where T : Controller { _controllers.Add(c); return c; }

    public async Task StartAsync()
    {
        Informer<V1Pod>? pods = null;
        if (Kubelet)
        {
            pods = Factory.For<V1Pod>();
            pods.AddHandler(new InformerHandler<V1Pod>(p => { _ = KubeletAsync(p); }, (o, p) => { _ = KubeletAsync(p); }));
        }
        await Factory.StartAsync(_cts.Token);
        foreach (var c in _controllers) _tasks.Add(c.RunAsync(_cts.Token));
    }

    async Task KubeletAsync(V1Pod p)
    {
        if (p.Metadata.DeletionTimestamp is not null || PodConditionsReady(p) || !MakeReady(p)) return;
        var u = Kinds.Clone(p);
        u.Status ??= new V1PodStatus();
        u.Status.Phase = "Running";
        u.Status.Conditions = [new V1PodCondition { Type = "Ready", Status = "True", LastTransitionTime = DateTime.UtcNow }];
        u.Metadata.ResourceVersion = null;
        try { await Client.UpdateStatusAsync(u); } catch (ClusterException) { }
    }

    static bool PodConditionsReady(V1Pod p) => PodConditions.IsReady(p);

    /// <summary>Re-runs the kubelet over all pods (after MakeReady changed).</summary>
    public async Task KickKubeletAsync()
    {
        foreach (var p in (await Client.ListAsync<V1Pod>()).Items) await KubeletAsync(p);
    }

    public async Task<List<V1Pod>> PodsAsync(string ns = "default") =>
        (await Client.ListAsync<V1Pod>(ns)).Items.Where(p => p.Metadata.DeletionTimestamp is null).ToList();

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        try { await Task.WhenAll(_tasks).WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
        _cts.Dispose();
    }

    public static V1PodTemplateSpec Template(string app, string image = "nginx:1") => new()
    {
        Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = app } },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "c", Image = image }] },
    };

    public static V1LabelSelector Selector(string app) => new() { MatchLabels = new Dictionary<string, string> { ["app"] = app } };
}
