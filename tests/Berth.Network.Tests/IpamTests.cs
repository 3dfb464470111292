using System.Diagnostics;
using System.Net;
using Berth.Engine.Networking;
using Berth.Linux.Netlink;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

public class IpamTests
{
    static NetworkRecord Record(string subnet) => new() { Name = "n", Subnet = subnet, Gateway = Subnet.Parse(subnet).At(1).ToString() };

    [Fact]
    public void Allocation_skips_gateway_and_used_addresses_goes_round_and_runs_out()
    {
        var n = Record("10.213.250.0/29"); // hosts .1-.6, .1 is the gateway
        var got = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var ip = Ipam.Allocate(n, "c" + i, null).ToString();
            n.Endpoints["c" + i] = new Endpoint { ContainerId = "c" + i, Address = ip };
            got.Add(ip);
        }
        Assert.Equal(["10.213.250.2", "10.213.250.3", "10.213.250.4", "10.213.250.5", "10.213.250.6"], got);
        Assert.Equal(NetworkErrorKind.Unavailable, Assert.Throws<NetworkException>(() => Ipam.Allocate(n, "x", null)).Kind);
        n.Endpoints.Remove("c1"); // .3 released
        Assert.Equal("10.213.250.3", Ipam.Allocate(n, "y", null).ToString());
        Assert.Throws<NetworkException>(() => Ipam.Allocate(n, "z", IPAddress.Parse("10.213.250.7"))); // broadcast
        Assert.Throws<NetworkException>(() => Ipam.Allocate(n, "z", IPAddress.Parse("10.213.250.0"))); // network
        Assert.Throws<NetworkException>(() => Ipam.Allocate(n, "z", IPAddress.Parse("10.213.250.4"))); // in use
    }

    [Fact]
    public void Released_addresses_are_not_reused_at_once()
    {
        var n = Record("10.213.250.0/24");
        var a = Ipam.Allocate(n, "a", null);
        n.Endpoints["a"] = new Endpoint { Address = a.ToString() };
        n.Endpoints.Remove("a");
        Assert.NotEqual(a, Ipam.Allocate(n, "b", null));
    }

    [Fact]
    public async Task Parallel_allocations_never_hand_out_one_address_twice()
    {
        using var t = new TestNet();
        var store = new NetworkStore(t.DataDir);
        var subnet = TestNet.NextSubnet();
        using (store.LockAll())
            store.Save(new NetworkRecord { Name = "par", Subnet = subnet.ToString(), Gateway = subnet.At(1).ToString(), Created = DateTimeOffset.UtcNow });

        // Eight workers, each with its own store object (own lock descriptors, as separate processes would have).
        var tasks = Enumerable.Range(0, 8).Select(w => Task.Run(() =>
        {
            var s = new NetworkStore(t.DataDir);
            var mine = new List<string>();
            for (var i = 0; i < 25; i++)
            {
                var id = $"w{w}-{i}";
                mine.Add(s.Update("par", n =>
                {
                    var ip = Ipam.Allocate(n, id, null).ToString();
                    n.Endpoints[id] = new Endpoint { ContainerId = id, Address = ip };
                    return ip;
                }));
            }
            return mine;
        })).ToArray();
        var all = (await Task.WhenAll(tasks)).SelectMany(x => x).ToList();
        Assert.Equal(200, all.Count);
        Assert.Equal(200, all.Distinct().Count());
        var onDisk = new NetworkStore(t.DataDir).Get("par");
        Assert.Equal(200, onDisk.Endpoints.Count);
        Assert.Equal(200, onDisk.Endpoints.Values.Select(e => e.Address).Distinct().Count());
        Assert.DoesNotContain(subnet.At(1).ToString(), all);
    }

    [Fact]
    public void Another_process_holding_the_network_lock_blocks_changes_until_it_lets_go()
    {
        using var t = new TestNet();
        var store = new NetworkStore(t.DataDir);
        var subnet = TestNet.NextSubnet();
        store.Save(new NetworkRecord { Name = "locked", Subnet = subnet.ToString(), Gateway = subnet.At(1).ToString() });
        var lockFile = Path.Combine(store.Dir, "locked.lock");
        File.WriteAllText(lockFile, "");
        // flock(1) from util-linux takes the same flock(2) lock in a separate process.
        using var holder = Process.Start("flock", ["-x", lockFile, "-c", "sleep 1.5"]);
        Thread.Sleep(300);
        var sw = Stopwatch.StartNew();
        store.Update("locked", n => { n.Endpoints["c"] = new Endpoint { Address = Ipam.Allocate(n, "c", null).ToString() }; return 0; });
        Assert.True(sw.ElapsedMilliseconds >= 700, $"update did not wait for the other process's lock ({sw.ElapsedMilliseconds} ms)");
        holder.WaitForExit();
        Assert.Single(store.Get("locked").Endpoints);
    }

    [Fact]
    public void New_networks_take_the_first_free_pool_subnet_avoiding_the_hosts_and_the_default_exists_once()
    {
        using var nl = RtNetlink.Open();
        var hostV4 = nl.GetAddresses().First(a => a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a.Address));
        var hostSubnet = new Subnet(Subnet.ToUInt(hostV4.Address) & (uint.MaxValue << (32 - hostV4.PrefixLength)), hostV4.PrefixLength);
        using var t = new TestNet();
        var p1 = TestNet.NextSubnet();
        var p2 = TestNet.NextSubnet();
        var m = new NetworkManager(new NetworkOptions
        {
            DataDir = t.DataDir, ChainPrefix = t.Prefix, DefaultBridge = TestNet.BridgeName(),
            DefaultSubnet = hostSubnet.ToString(), Pools = [hostSubnet, p1, p2],
        });
        // The default's preferred subnet is the host's own: it moves to the next free pool.
        var def = m.EnsureDefault();
        Assert.Equal(p1.ToString(), def.Subnet);
        Assert.False(def.Dns);
        Assert.Equal(def.Id, m.EnsureDefault().Id);
        var user = m.Create(new NetworkCreateRequest("u" + Sh.RandomSuffix()) { Bridge = TestNet.BridgeName() });
        Assert.Equal(p2.ToString(), user.Subnet);
        Assert.Equal(p2.At(1).ToString(), user.Gateway);
        Assert.True(user.Dns);
        Assert.Equal(NetworkErrorKind.Unavailable,
            Assert.Throws<NetworkException>(() => m.Create(new NetworkCreateRequest("v" + Sh.RandomSuffix()) { Bridge = TestNet.BridgeName() })).Kind);
        Assert.Equal([user.Name], m.Prune()); // the default bridge stays
        m.Remove(def.Name);
        Assert.Empty(t.Leftovers([def, user]));
    }

    [Fact]
    public void A_default_bridge_left_by_a_killed_create_is_taken_over_and_a_host_bridge_never_is()
    {
        using var t = new TestNet();
        var m = new NetworkManager(new NetworkOptions
        {
            DataDir = t.DataDir, ChainPrefix = t.Prefix, DefaultBridge = TestNet.BridgeName(),
            DefaultSubnet = TestNet.NextSubnet().ToString(), Pools = [TestNet.NextSubnet()],
        });
        // A create killed after the kernel work, before the record: bridge, address and rules, no state file.
        var half = m.EnsureDefault();
        File.Delete(Path.Combine(m.Store.Dir, half.Name + ".json"));
        Assert.Contains(half.Bridge + ":", Sh.Run("ip", "-o", "link").Out);
        var def = m.EnsureDefault();
        Assert.Equal(half.Bridge, def.Bridge);
        Assert.NotEqual(half.Id, def.Id);
        m.Remove(def.Name);
        Assert.Empty(t.Leftovers([def]));

        // An interface Berth did not make is never touched, whatever the network.
        var host = TestNet.BridgeName();
        Sh.Run("ip", "link", "add", host, "type", "bridge");
        try
        {
            var m2 = new NetworkManager(new NetworkOptions
            {
                DataDir = t.DataDir + "-2", ChainPrefix = t.Prefix, DefaultBridge = host, Pools = [TestNet.NextSubnet()],
            });
            var e = Assert.Throws<NetworkException>(() => m2.Create(new NetworkCreateRequest("user") { Bridge = host }));
            Assert.Contains("already exists on the host", e.Message);
            Assert.Contains(host + ":", Sh.Run("ip", "-o", "link").Out);
        }
        finally { Sh.Run("ip", "link", "del", host); if (Directory.Exists(t.DataDir + "-2")) Directory.Delete(t.DataDir + "-2", true); }
    }
}
