using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>Two `berth server`s on one etcd serve one consistent cluster.</summary>
public sealed class TwoServersTests(EtcdBerthServer a) : IClassFixture<EtcdBerthServer>
{
    static void Ok(BerthServer.Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    [Fact]
    public async Task A_write_via_one_is_read_and_watched_via_the_other()
    {
        await using var b = new BerthServer { DatastoreEndpoint = a.Etcd.Endpoint };
        await b.InitializeAsync();

        Ok(await a.Kubectl("create namespace both"));
        Ok(await a.Kubectl("-n both create configmap first --from-literal=k=from-a"));
        var viaB = JsonNode.Parse((await b.Kubectl("-n both get cm first -o json")).Stdout)!;
        Assert.Equal("from-a", viaB["data"]!["k"]!.GetValue<string>());

        // the resourceVersion is etcd's revision, the same through both servers
        var viaA = JsonNode.Parse((await a.Kubectl("-n both get cm first -o json")).Stdout)!;
        Assert.Equal(viaA["metadata"]!["resourceVersion"]!.GetValue<string>(), viaB["metadata"]!["resourceVersion"]!.GetValue<string>());

        Ok(await b.Kubectl("-n both create configmap second --from-literal=k=from-b"));
        Assert.Contains("configmap/second", (await a.Kubectl("-n both get cm -o name")).Stdout);

        // optimistic concurrency across servers: a stale update through B after A's change is refused
        Ok(await a.Kubectl("-n both patch cm first --type merge -p '{\"data\":{\"k\":\"a2\"}}'"));
        viaB["data"]!["k"] = "stale";
        var stale = await b.Kubectl("replace -f -", viaB.ToJsonString());
        Assert.NotEqual(0, stale.ExitCode);
        Assert.Contains("the object has been modified", stale.Stderr);

        var events = await b.WatchEvents("both", "cm", "third", 3, async () =>
        {
            Ok(await a.Kubectl("-n both create configmap third --from-literal=k=v"));
            Ok(await a.Kubectl("-n both label cm third x=y"));
            Ok(await a.Kubectl("-n both delete cm third"));
        }, "--watch-only");
        Assert.Equal(["ADDED third", "MODIFIED third", "DELETED third"], events);
    }

    [Fact]
    public async Task A_bad_datastore_endpoint_is_one_line_and_a_non_zero_exit()
    {
        var dir = Directory.CreateTempSubdirectory("berth-bad-ds-").FullName;
        try
        {
            var psi = new ProcessStartInfo(BerthServer.Binary(), ["server", "--listen", $"127.0.0.1:{Api.ApiFixture.FreePort()}", "--data-dir", dir, "--datastore-endpoint", "mysql://x:1"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var err = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.NotEqual(0, p.ExitCode);
            Assert.Equal("berth server: --datastore-endpoint \"mysql://x:1\" is not etcd://HOST:PORT[,HOST:PORT…] (https:// is not supported)", err.Trim());
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
        finally { Directory.Delete(dir, true); }
    }
}
