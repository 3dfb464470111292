using System.Net;
using System.Net.Sockets;
using Berth.Engine.Networking;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

public class DnsTests
{
    /// <summary>A fake upstream on 127.0.0.1: knows one name, NXDOMAIN for the rest; counts queries.</summary>
    sealed class FakeUpstream : IDisposable
    {
        readonly UdpClient _udp = new(new IPEndPoint(IPAddress.Loopback, 0));
        readonly CancellationTokenSource _stop = new();
        public int Queries;
        public IPEndPoint EndPoint => (IPEndPoint)_udp.Client.LocalEndPoint!;

        public FakeUpstream(string name, IPAddress address) => _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                UdpReceiveResult r;
                try { r = await _udp.ReceiveAsync(_stop.Token); } catch { return; }
                Interlocked.Increment(ref Queries);
                var q = DnsMessage.ParseQuery(r.Buffer).Question;
                var reply = q.Name == name
                    ? DnsMessage.Response(r.Buffer, DnsMessage.NoError, q.Type == DnsMessage.TypeA ? [address] : [])
                    : DnsMessage.Response(r.Buffer, DnsMessage.NxDomain, []);
                await _udp.SendAsync(reply, r.RemoteEndPoint);
            }
        });

        public void Dispose() { _stop.Cancel(); _udp.Dispose(); }
    }

    [Fact]
    public async Task Containers_resolve_each_other_by_name_and_alias_and_other_names_are_forwarded()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork(dns: true);
        var a = t.Container();
        var b = t.Container();
        var aid = "a" + Sh.RandomSuffix(15);
        var at = t.Manager.Attach(new AttachRequest(net.Name, aid, a.Path) { ContainerName = "alpha", Aliases = ["db", "primary"] });
        var bt = t.Manager.Attach(new AttachRequest(net.Name, "b" + Sh.RandomSuffix(15), b.Path) { ContainerName = "beta" });
        Assert.Equal(net.GatewayAddress, at.DnsServer);

        using var upstream = new FakeUpstream("outside.test", IPAddress.Parse("203.0.113.7"));
        await using var dns = t.Manager.StartDns(net.Name, [upstream.EndPoint]);

        // From inside a container, with busybox's resolver, against the gateway.
        var r = b.Exec("busybox", "nslookup", "alpha", net.Gateway);
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.Contains($"Address: {at.Address}", r.Out);
        Assert.Contains(at.Address.ToString(), b.Exec("busybox", "nslookup", "db", net.Gateway).Out);
        Assert.Contains(at.Address.ToString(), b.Exec("busybox", "nslookup", "PRIMARY", net.Gateway).Out);
        Assert.Contains(at.Address.ToString(), b.Exec("busybox", "nslookup", aid[..12], net.Gateway).Out);
        Assert.Contains(bt.Address.ToString(), a.Exec("busybox", "nslookup", "beta", net.Gateway).Out);
        // Reaching a container by name: ping resolves through the embedded server.
        File.WriteAllText(Path.Combine(t.DataDir, "resolv.conf"), $"nameserver {net.Gateway}\n");
        var ping = a.Exec("busybox", "sh", "-c", $"mount --bind {t.DataDir}/resolv.conf /etc/resolv.conf && busybox ping -c 1 -W 3 beta");
        Assert.True(ping.Code == 0, ping.Out + ping.Err);

        // Not a container: forwarded to the upstream, whose answer (or NXDOMAIN) comes back.
        var fwd = a.Exec("busybox", "nslookup", "outside.test", net.Gateway);
        Assert.Contains("203.0.113.7", fwd.Out);
        var nx = a.Exec("busybox", "nslookup", "nosuch.test", net.Gateway);
        Assert.NotEqual(0, nx.Code);
        Assert.Contains("NXDOMAIN", nx.Out + nx.Err);
        Assert.True(upstream.Queries >= 2);
        var before = upstream.Queries;

        // Over TCP too, from the host.
        var tcp = await TcpQueryAsync(new IPEndPoint(net.GatewayAddress, 53), DnsMessage.Query(7, "beta"));
        Assert.Equal(0, tcp.Rcode);
        Assert.Equal([bt.Address], tcp.Addresses);
        Assert.Equal(before, upstream.Queries); // local names never go upstream

        // Garbage does not stop the server.
        using (var junk = new UdpClient())
        {
            await junk.SendAsync(new byte[] { 1, 2, 3 }, new IPEndPoint(net.GatewayAddress, 53));
            await junk.SendAsync(new byte[40], new IPEndPoint(net.GatewayAddress, 53));
        }

        // Detach: the name disappears (the server reloads the network's state).
        t.Manager.Detach(net.Name, bt.ContainerId);
        var gone = await UdpQueryAsync(new IPEndPoint(net.GatewayAddress, 53), DnsMessage.Query(9, "beta"));
        Assert.Equal(DnsMessage.NxDomain, gone.Rcode);
        Assert.Equal(0, (await UdpQueryAsync(new IPEndPoint(net.GatewayAddress, 53), DnsMessage.Query(10, "alpha"))).Rcode);
    }

    [Fact]
    public async Task Without_upstreams_unknown_names_are_nxdomain_and_aaaa_of_a_container_is_empty()
    {
        var names = new Dictionary<string, IReadOnlyList<IPAddress>> { ["web"] = [IPAddress.Parse("10.213.1.2"), IPAddress.Parse("10.213.1.3")] };
        await using var dns = new DnsServer(new IPEndPoint(IPAddress.Loopback, 0), n => names.GetValueOrDefault(n), []);
        dns.Start();
        var both = await UdpQueryAsync(dns.LocalEndPoint, DnsMessage.Query(1, "web."));
        Assert.Equal(2, both.Addresses.Count);
        var aaaa = await UdpQueryAsync(dns.LocalEndPoint, DnsMessage.Query(2, "web", DnsMessage.TypeAAAA));
        Assert.Equal(0, aaaa.Rcode);
        Assert.Empty(aaaa.Addresses);
        Assert.Equal(DnsMessage.NxDomain, (await UdpQueryAsync(dns.LocalEndPoint, DnsMessage.Query(3, "other"))).Rcode);
        Assert.Throws<FormatException>(() => DnsMessage.ParseQuery(new byte[5]));
    }

    [Fact]
    public void Resolv_conf_upstreams_skip_the_server_itself()
    {
        var f = Path.GetTempFileName();
        try
        {
            File.WriteAllText(f, "# comment\nsearch example\nnameserver 10.0.0.1\nnameserver\t10.213.9.1\noptions ndots:1\n");
            Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.1"), 53)], DnsServer.UpstreamsFrom(f, IPAddress.Parse("10.213.9.1")));
        }
        finally { File.Delete(f); }
    }

    static async Task<(int Rcode, List<IPAddress> Addresses)> UdpQueryAsync(IPEndPoint server, byte[] query)
    {
        using var udp = new UdpClient(server.AddressFamily);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await udp.SendAsync(query, server, cts.Token);
        var r = await udp.ReceiveAsync(cts.Token);
        return DnsMessage.ParseResponse(r.Buffer);
    }

    static async Task<(int Rcode, List<IPAddress> Addresses)> TcpQueryAsync(IPEndPoint server, byte[] query)
    {
        using var c = new TcpClient();
        await c.ConnectAsync(server);
        var s = c.GetStream();
        var msg = new byte[query.Length + 2];
        msg[0] = (byte)(query.Length >> 8); msg[1] = (byte)query.Length;
        query.CopyTo(msg, 2);
        await s.WriteAsync(msg);
        var len = new byte[2];
        await s.ReadExactlyAsync(len);
        var reply = new byte[(len[0] << 8) | len[1]];
        await s.ReadExactlyAsync(reply);
        return DnsMessage.ParseResponse(reply);
    }
}
