using System.Net;
using Berth.Engine.Networking;
using Berth.Linux.Netlink;

namespace Berth.Network.Tests.Support;

/// <summary>One test's private world: a temp data dir, its own iptables chain prefix, a unique bridge name and
/// a 10.213.x.0/24 subnet no other test uses. Dispose removes what the test left and then asserts that
/// nothing of it remains (links, rules, state).</summary>
public sealed class TestNet : IDisposable
{
    static int _next = Random.Shared.Next(0, 200);

    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "berth-net-test-" + Sh.RandomSuffix(10));
    public string Prefix { get; } = "BT" + Sh.RandomSuffix(6).ToUpperInvariant();
    public NetworkManager Manager { get; }
    readonly List<TestNetns> _netns = [];

    public TestNet()
    {
        Directory.CreateDirectory(DataDir);
        Manager = NewManager();
    }

    /// <summary>A second manager over the same state (another process, or the engine after a restart).</summary>
    public NetworkManager NewManager() => new(new NetworkOptions
    {
        DataDir = DataDir, ChainPrefix = Prefix, DefaultBridge = "bd" + Sh.RandomSuffix(8),
        Pools = [NextSubnet(), NextSubnet()], DefaultSubnet = NextSubnet().ToString(),
    });

    public static Subnet NextSubnet() => Subnet.Parse($"10.213.{Interlocked.Increment(ref _next) % 250}.0/24");
    /// <summary>A /30 for point-to-point links, from 10.213.250-253.x (apart from the /24 pool).</summary>
    public static Subnet Subnet30()
    {
        var n = Interlocked.Increment(ref _next30);
        return new Subnet(Subnet.ToUInt(IPAddress.Parse("10.213.250.0")) + (uint)(n % 256) * 4, 30);
    }
    static int _next30 = Random.Shared.Next(0, 256);

    public static string BridgeName() => "bt" + Sh.RandomSuffix(8);

    public NetworkRecord CreateNetwork(string? name = null, bool dns = true) =>
        Manager.Create(new NetworkCreateRequest(name ?? "n" + Sh.RandomSuffix(6)) { Subnet = NextSubnet().ToString(), Bridge = BridgeName(), Dns = dns });

    public TestNetns Container()
    {
        var ns = new TestNetns();
        lock (_netns) _netns.Add(ns);
        return ns;
    }

    /// <summary>Everything of this test that the kernel or iptables still shows (empty when torn down).</summary>
    public List<string> Leftovers(IEnumerable<NetworkRecord> networks)
    {
        var left = new List<string>();
        var links = Sh.Run("ip", "-o", "link").Out;
        foreach (var n in networks)
        {
            if (links.Contains(n.Bridge + ":") || links.Contains(n.Bridge + "@")) left.Add("bridge " + n.Bridge);
            foreach (var e in n.Endpoints.Values)
                if (links.Contains(e.HostVeth)) left.Add("veth " + e.HostVeth);
            if (Sh.Run("ip", "-o", "addr").Out.Contains(n.Gateway + "/")) left.Add("address " + n.Gateway);
        }
        foreach (var table in new[] { "nat", "filter" })
            foreach (var line in Sh.Run("iptables-save", "-t", table).Out.Split('\n'))
                if (line.Contains(Prefix)) left.Add($"{table}: {line}");
        return left;
    }

    public void Dispose()
    {
        foreach (var n in Manager.List())
        {
            foreach (var e in n.Endpoints.Keys.ToList())
                try { Manager.Detach(n.Name, e); } catch { }
            try { Manager.Remove(n.Name); } catch { }
        }
        foreach (var ns in _netns) ns.Dispose();
        try { Directory.Delete(DataDir, true); } catch { }
    }

    /// <summary>The host's own address on its uplink (not loopback, not a Berth bridge).</summary>
    public static IPAddress HostAddress()
    {
        using var nl = RtNetlink.Open();
        var def = nl.GetRoutes().FirstOrDefault(r => r.Destination is null)
            ?? throw new InvalidOperationException("host has no default route");
        return nl.GetAddresses().First(a => a.Index == def.OutIndex && a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork).Address;
    }
}
