using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

/// <summary>`pod create --network/-p/--ip/--add-host/--dns` as podman's: the pod's infra holds the
/// network namespace, connected to the bridge or a user network; the pod's containers share it; its
/// published ports reach them; stop/rm release the veth, the address and the port rules.</summary>
public class PodNetworkTests
{
    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    static string Get(string url)
    {
        using var http = new HttpClient(new HttpClientHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };
        for (var i = 0; ; i++)
        {
            try { return http.GetStringAsync(url).GetAwaiter().GetResult(); }
            catch (HttpRequestException) when (i < 30) { Thread.Sleep(100); }
        }
    }

    static bool Answers(string url)
    {
        using var http = new HttpClient(new HttpClientHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
        try { http.GetStringAsync(url).GetAwaiter().GetResult(); return true; }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
    }

    static List<string> PortRules(ContainerWorld w, int port) =>
        Sh.Run("iptables-save", "-t", "nat").Out.Split('\n').Where(l => l.Contains(w.Prefix) && l.Contains($"--dport {port}")).ToList();

    [Fact]
    public void A_pod_on_the_default_bridge_shares_localhost_publishes_its_port_and_releases_everything()
    {
        using var w = new ContainerWorld();
        var pod = "pd" + Sh.RandomSuffix(5);
        var port = FreePort();
        w.Ok("pod", "create", "--name", pod, "-p", $"127.0.0.1:{port}:80", "--add-host", "db.local:10.9.8.7", "--dns", "10.1.1.1");
        Assert.Equal(0, w.Endpoints("bridge")); // connected when it starts
        w.RunDetached(["--pod", pod, "--name", "web" + pod], "httpd", "-f", "-p", "80", "-h", "/www");
        // the second container of the pod reaches the first on 127.0.0.1
        var r = w.RunC(["--rm", "--pod", pod], "sh", "-c", "wget -qO- http://127.0.0.1:80/index.html; echo ==; ip -4 addr show eth0; ip route; echo ==; cat /etc/hosts; echo ==; cat /etc/resolv.conf");
        Assert.True(r.Code == 0, $"exit {r.Code}: {r.Out} {r.Err}");
        var parts = r.Out.Split("==\n");
        Assert.Equal("hello from berth\n", parts[0]);
        // the pod's own address on the default bridge, its default route, /etc/hosts and resolv.conf
        var net = w.NetworkState("bridge");
        var ep = Assert.Single(net["endpoints"]!.AsObject()).Value!;
        var ip = (string)ep["address"]!;
        Assert.True(Berth.Engine.Networking.Subnet.Parse((string)net["subnet"]!).Contains(IPAddress.Parse(ip)));
        Assert.Contains($"inet {ip}/", parts[1]);
        Assert.Contains($"default via {net["gateway"]}", parts[1]);
        Assert.Contains($"{ip}\t{pod}", parts[2]);
        Assert.Contains("10.9.8.7\tdb.local", parts[2]);
        Assert.Contains("nameserver 10.1.1.1", parts[3]);
        // the outside reaches the pod's published port on 127.0.0.1
        Assert.Equal("hello from berth\n", Get($"http://127.0.0.1:{port}/index.html"));
        Assert.Single(w.Veths());
        Assert.NotEmpty(PortRules(w, port));
        // pod inspect: podman's InfraConfig (nulls for what was not set), and the pod's address, gateway and
        // ports where podman shows them on its infra container's inspect
        var insp = JsonNode.Parse(w.Ok("pod", "inspect", pod).Out)!;
        var cfg = insp["InfraConfig"]!.AsObject();
        Assert.Equal($$"""{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"{{port}}"}]}""", cfg["PortBindings"]!.ToJsonString());
        Assert.Equal("""["bridge"]""", cfg["Networks"]!.ToJsonString());
        Assert.Equal("""["10.1.1.1"]""", cfg["DNSServer"]!.ToJsonString());
        Assert.Equal("""["db.local:10.9.8.7"]""", cfg["HostAdd"]!.ToJsonString());
        Assert.True(cfg.ContainsKey("DNSSearch") && cfg["DNSSearch"] is null && cfg["StaticIP"]!.ToString() == "" && (bool)cfg["HostNetwork"]! == false);
        Assert.Equal("private", (string?)cfg["uts_ns"]);
        var endpoint = insp["NetworkSettings"]!["Networks"]!["bridge"]!;
        Assert.Equal(ip, (string?)endpoint["IPAddress"]);
        Assert.Equal((string?)net["gateway"], (string?)endpoint["Gateway"]);
        Assert.Matches("^([0-9a-f]{2}:){5}[0-9a-f]{2}$", (string?)endpoint["MacAddress"]);
        Assert.Equal($"{ip} 127.0.0.1 {port}", w.Ok("pod", "inspect", "--format",
            "{{(index .NetworkSettings.Networks \"bridge\").IPAddress}} {{range (index .NetworkSettings.Ports \"80/tcp\")}}{{.HostIp}} {{.HostPort}}{{end}}", pod).Out.Trim());
        Assert.Equal($"{pod} bridge 1", w.Ok("pod", "ps", "--filter", "network=bridge", "--filter", $"name=^{pod}$", "--format", "{{.Name}} {{.Networks}} {{.NumberOfContainers}}").Out.Trim());

        // a container of the pod publishes nothing and joins no network of its own (podman's errors)
        var pub = w.RunC(["--rm", "--pod", pod, "-p", "8081:81"], "true");
        Assert.Equal(125, pub.Code);
        Assert.Equal("berth: invalid config provided: published or exposed ports must be defined when the pod is created: network cannot be configured when it is shared with a pod", pub.Err.Trim());
        var own = w.RunC(["--rm", "--pod", pod, "--network", "bridge"], "true");
        Assert.Equal(125, own.Code);
        Assert.Contains("networks must be defined when the pod is created", own.Err);
        Assert.Single(own.Err.Trim().Split('\n'));

        // stop releases the veth, the address and the port rules; start connects again
        w.Ok("pod", "stop", "-t", "1", pod);
        Assert.Equal(0, w.Endpoints("bridge"));
        Assert.Null(JsonNode.Parse(w.Ok("pod", "inspect", pod).Out)!["NetworkSettings"]);
        Assert.Empty(w.Veths());
        Assert.Empty(PortRules(w, port));
        Assert.False(Answers($"http://127.0.0.1:{port}/index.html"));
        w.Ok("pod", "start", pod);
        Assert.Equal("hello from berth\n", Get($"http://127.0.0.1:{port}/index.html"));
        // rm -f leaves nothing
        w.Ok("pod", "rm", "-f", pod);
        Assert.Equal(0, w.Endpoints("bridge"));
        Assert.Empty(w.Veths());
        Assert.Empty(PortRules(w, port));
        Assert.Empty(w.Processes());
        Assert.Empty(w.Ok("pod", "ps", "-q").Out.Trim());
    }

    [Fact]
    public void A_container_on_a_user_network_reaches_the_pod_by_name_and_kill_releases_it()
    {
        using var w = new ContainerWorld();
        var net = "tn" + Sh.RandomSuffix(6);
        var subnet = Berth.Engine.Networking.Subnet.Parse(w.CreateNetwork(net));
        var pod = "pd" + Sh.RandomSuffix(5);
        var ip = subnet.At(77).ToString();
        w.Ok("pod", "create", "--name", pod, "--network", net, "--ip", ip);
        w.RunDetached(["--pod", pod, "--name", "web" + pod], "httpd", "-f", "-p", "80", "-h", "/www");
        // by the pod's name, through the network's DNS (podman registers the pod's infra under it)
        var r = w.RunC(["--rm", "--network", net], "sh", "-c", $"nslookup {pod}; wget -qO- http://{pod}:80/index.html");
        Assert.True(r.Code == 0, $"exit {r.Code}: {r.Out} {r.Err}");
        Assert.Contains(ip, r.Out);
        Assert.EndsWith("hello from berth\n", r.Out);
        // the pod's containers use the network's DNS server too
        var gateway = (string)w.NetworkState(net)["gateway"]!;
        Assert.Contains($"nameserver {gateway}", w.RunC(["--rm", "--pod", pod], "cat", "/etc/resolv.conf").Out);
        Assert.Equal(1, w.Endpoints(net));
        Assert.Equal($"{ip} {ip} [{net}]", w.Ok("pod", "inspect", "--format",
            $"{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}} {{{{.InfraConfig.StaticIP}}}} {{{{.InfraConfig.Networks}}}}", pod).Out.Trim());

        // kill stops the infra: the pod leaves the network
        w.Ok("pod", "kill", pod);
        Assert.Equal(0, w.Endpoints(net));
        Assert.Empty(w.Veths());
        w.Ok("pod", "rm", "-f", pod);
        ContainerWorld.WaitUntil(() => !File.Exists(Path.Combine(w.Root, "networks", net + ".dns.pid")) && w.Processes().Count == 0, "the DNS server to exit with the pod");
    }

    [Fact]
    public void Bad_pod_network_options_fail_in_one_line_and_leave_no_pod()
    {
        using var w = new ContainerWorld();
        foreach (var (args, msg) in new (string[], string)[]
        {
            (["--network", "nosuchnet"], "network nosuchnet not found"),
            (["--network", "none", "-p", "8080:80"], "port publishing"),
            (["--ip", "1.2.3"], "invalid IPv4 address"),
            (["--ip", "192.0.2.10"], "does not belong to network"),
            (["-p", "99999:80"], "invalid"),
            (["--dns", "nameserver"], "invalid --dns"),
            (["--add-host", "nohost"], "invalid --add-host"),
        })
        {
            var r = w.Run(["pod", "create", "--name", "bad", .. args]);
            Assert.True(r.Code == 125, $"pod create {string.Join(' ', args)}: exit {r.Code}: {r.Err}");
            Assert.Single(r.Err.Trim().Split('\n'));
            Assert.Contains(msg, r.Err);
        }
        Assert.Empty(w.Ok("pod", "ps", "-q").Out.Trim());
        // --network none: loopback only; host: the host's interfaces
        w.Ok("pod", "create", "--name", "lo", "--network", "none");
        Assert.DoesNotContain("eth0", w.RunC(["--rm", "--pod", "lo"], "ip", "-o", "link").Out);
        w.Ok("pod", "create", "--name", "hostnet", "--network", "host");
        var hostLinks = w.RunC(["--rm", "--pod", "hostnet"], "readlink", "/proc/self/ns/net").Out.Trim();
        Assert.Equal(new FileInfo("/proc/self/ns/net").LinkTarget, hostLinks);
        w.Ok("pod", "rm", "-f", "lo", "hostnet");
        Assert.Empty(w.Processes());
    }
}
