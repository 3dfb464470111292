using System.Diagnostics;
using System.Net;
using Berth.Engine.Networking;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

public class BridgeTests
{
    [Fact]
    public void Two_containers_reach_the_gateway_and_each_other_and_teardown_leaves_nothing()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork();
        var a = t.Container();
        var b = t.Container();
        var at = t.Manager.Attach(new AttachRequest(net.Name, "ca" + Sh.RandomSuffix(), a.Path) { ContainerName = "alpha" });
        var bt = t.Manager.Attach(new AttachRequest(net.Name, "cb" + Sh.RandomSuffix(), b.Path) { ContainerName = "beta" });

        Assert.NotEqual(at.Address, bt.Address);
        Assert.Equal(net.GatewayAddress, at.Gateway);
        Assert.Matches("^([0-9a-f]{2}:){5}[0-9a-f]{2}$", at.Mac);
        var addr = a.Exec("ip", "-o", "-4", "addr", "show", "eth0").Out;
        Assert.Contains($"{at.Address}/{at.PrefixLength}", addr);
        Assert.Contains($"default via {net.Gateway} dev eth0", a.Exec("ip", "route").Out);
        Assert.Contains("UP", a.Exec("ip", "-o", "link", "show", "lo").Out);

        Ping(a, net.Gateway);
        Ping(a, bt.Address.ToString());
        Ping(b, at.Address.ToString());

        // State survives a "restart": a new manager over the same data dir sees both endpoints.
        var again = t.NewManager().Inspect(net.Name);
        Assert.Equal(2, again.Endpoints.Count);

        var final = t.Manager.Inspect(net.Name);
        t.Manager.Detach(net.Name, at.ContainerId);
        Assert.DoesNotContain("eth0", a.Exec("ip", "-o", "link").Out);
        Assert.Throws<NetworkException>(() => t.Manager.Remove(net.Name)); // b is still attached
        t.Manager.Detach(net.Name, bt.ContainerId);
        t.Manager.Remove(net.Name);
        Assert.Empty(t.Leftovers([final]));
        Assert.Empty(t.Manager.List());
    }

    [Fact]
    public void Published_ports_answer_on_loopback_and_the_host_address_and_go_away()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork();
        var c = t.Container();
        var fixedPort = PortSpec.FreePort("0.0.0.0", "tcp");
        var att = t.Manager.Attach(new AttachRequest(net.Name, "cp" + Sh.RandomSuffix(), c.Path)
        {
            ContainerName = "web",
            Ports = [PortSpec.Parse($"{fixedPort}:8080"), PortSpec.Parse("127.0.0.1::8080")],
        });
        Assert.Equal(fixedPort, att.Ports[0].HostPort);
        var ephemeral = att.Ports[1].HostPort;
        Assert.InRange(ephemeral, 1024, 65535);
        Assert.NotEqual(fixedPort, ephemeral);

        var root = Path.Combine(t.DataDir, "www");
        Directory.CreateDirectory(root);
        var token = "hello-" + Sh.RandomSuffix(8);
        File.WriteAllText(Path.Combine(root, "index.html"), token);
        using var httpd = StartInNetns(c.Name, "busybox", "httpd", "-f", "-p", "8080", "-h", root);
        try
        {
            WaitListening(c, 8080);
            Assert.Equal(token, Get($"http://127.0.0.1:{fixedPort}/index.html"));
            Assert.Equal(token, Get($"http://{TestNet.HostAddress()}:{fixedPort}/index.html"));
            Assert.Equal(token, Get($"http://127.0.0.1:{ephemeral}/index.html"));
            // Bound to 127.0.0.1 only: the host address does not answer on that port.
            Assert.ThrowsAny<Exception>(() => Get($"http://{TestNet.HostAddress()}:{ephemeral}/index.html", TimeSpan.FromSeconds(2)));
            // Outbound NAT rule for the subnet is in Berth's chain.
            Assert.Contains($"-A {t.Prefix}-POSTROUTING -s {net.Subnet} ! -o {net.Bridge} -j MASQUERADE", Sh.Run("iptables-save", "-t", "nat").Out);
        }
        finally { httpd.Kill(); httpd.WaitForExit(); }

        var final = t.Manager.Inspect(net.Name);
        t.Manager.Detach(net.Name, att.ContainerId);
        Assert.DoesNotContain(fixedPort.ToString(), Sh.Run("iptables-save", "-t", "nat").Out.Split('\n').Where(l => l.Contains(t.Prefix)).FirstOrDefault() ?? "");
        t.Manager.Remove(net.Name);
        Assert.Empty(t.Leftovers([final]));
    }

    [Fact]
    public void Bad_input_fails_with_one_clear_message_and_leaves_nothing()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork();
        var c = t.Container();

        Assert.Equal(NetworkErrorKind.AlreadyExists, Assert.Throws<NetworkException>(() => t.CreateNetwork(net.Name)).Kind);
        var overlap = Assert.Throws<NetworkException>(() => t.Manager.Create(new NetworkCreateRequest("o" + Sh.RandomSuffix()) { Subnet = net.Subnet, Bridge = TestNet.BridgeName() }));
        Assert.Contains(net.Name, overlap.Message);
        Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => t.Manager.Create(new NetworkCreateRequest("bad/name"))).Kind);
        Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => t.Manager.Create(new NetworkCreateRequest("x" + Sh.RandomSuffix()) { Subnet = "10.213.0.0/33" })).Kind);
        Assert.Equal(NetworkErrorKind.NotFound, Assert.Throws<NetworkException>(() => t.Manager.Inspect("nope-" + Sh.RandomSuffix())).Kind);

        foreach (var spec in new[] { "80/sctp", "a:80", "1.2.3:80:80", "70000:80", "80-81:80-81", "0", "", "1:2:3:4" })
            Assert.Throws<NetworkException>(() => PortSpec.Parse(spec));
        Assert.Equal(new PortMapping("127.0.0.1", 8080, 80, "udp"), PortSpec.Parse("127.0.0.1:8080:80/udp"));

        var outside = Assert.Throws<NetworkException>(() => t.Manager.Attach(new AttachRequest(net.Name, "c1", c.Path) { StaticAddress = IPAddress.Parse("10.99.0.5") }));
        Assert.Contains("10.99.0.5", outside.Message);
        var gw = Assert.Throws<NetworkException>(() => t.Manager.Attach(new AttachRequest(net.Name, "c1", c.Path) { StaticAddress = net.GatewayAddress }));
        Assert.Contains("already in use", gw.Message);
        Assert.Equal(NetworkErrorKind.NotFound, Assert.Throws<NetworkException>(() => t.Manager.Attach(new AttachRequest(net.Name, "c1", "/proc/999999999/ns/net"))).Kind);

        // A port a host program holds is refused before anything is created.
        using var holder = new System.Net.Sockets.TcpListener(IPAddress.Any, 0);
        holder.Start();
        var held = ((IPEndPoint)holder.LocalEndpoint).Port;
        var busy = Assert.Throws<NetworkException>(() => t.Manager.Attach(new AttachRequest(net.Name, "c1", c.Path) { Ports = [new PortMapping("0.0.0.0", held, 80, "tcp")] }));
        Assert.Contains("port is already allocated", busy.Message);

        // The interface name is already taken inside the namespace: the veth fails, nothing stays behind.
        Sh.Run("ip", "netns", "exec", c.Name, "ip", "link", "add", "eth0", "type", "bridge").Check("bridge eth0 in the namespace");
        Assert.Throws<NetworkException>(() => t.Manager.Attach(new AttachRequest(net.Name, "c1", c.Path)));

        var final = t.Manager.Inspect(net.Name);
        Assert.Empty(final.Endpoints);
        Assert.DoesNotContain(NetworkManager.VethName(net.Name, "c1", "eth0"), Sh.Run("ip", "-o", "link").Out);
        t.Manager.Remove(net.Name);
        Assert.Empty(t.Leftovers([final]));
    }

    internal static void Ping(TestNetns from, string ip)
    {
        var r = from.Exec("busybox", "ping", "-c", "1", "-W", "3", ip);
        Assert.True(r.Code == 0, $"ping {ip} from {from.Name}: {r.Out}{r.Err}");
    }

    internal static Process StartInNetns(string netns, params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["netns", "exec", netns, .. args]) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    internal static void WaitListening(TestNetns ns, int port, string proto = "t")
    {
        for (var i = 0; i < 100; i++)
        {
            if (ns.Exec("ss", $"-ln{proto}").Out.Contains($":{port} ")) return;
            Thread.Sleep(50);
        }
        throw new TimeoutException($"nothing listens on port {port} in {ns.Name}");
    }

    static string Get(string url, TimeSpan? timeout = null)
    {
        using var http = new HttpClient { Timeout = timeout ?? TimeSpan.FromSeconds(10) };
        return http.GetStringAsync(url).GetAwaiter().GetResult();
    }
}
