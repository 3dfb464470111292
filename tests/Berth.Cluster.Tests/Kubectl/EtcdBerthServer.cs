namespace Berth.Cluster.Tests.Kubectl;

/// <summary>`berth server --datastore-endpoint etcd://…` on a real etcd started for it.</summary>
public sealed class EtcdBerthServer : BerthServer
{
    public Storage.EtcdServer Etcd { get; } = new();

    public override async Task InitializeAsync()
    {
        await Etcd.InitializeAsync();
        DatastoreEndpoint = Etcd.Endpoint;
        await StartAsync();
    }

    public override async Task DisposeAsync()
    {
        try { await base.DisposeAsync(); }
        finally { await Etcd.DisposeAsync(); }
    }
}
