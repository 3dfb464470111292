using System.Net;
using System.Net.Sockets;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

/// <summary>Containers on networks through the built `berth` (run/create --network, -p, -P, --ip, aliases,
/// DNS, teardown on every path). Each test has its own <see cref="ContainerWorld"/>.</summary>
public class ContainerNetworkTests
{
    static string Eth0Address(string ipAddrOutput)
    {
        var line = ipAddrOutput.Split('\n').First(l => l.TrimStart().StartsWith("inet ") && !l.Contains("127.0.0.1"));
        return line.Trim().Split(' ')[1].Split('/')[0];
    }

    [Fact]
    public void Default_bridge_gives_an_address_route_hosts_and_resolv_conf_and_run_rm_leaves_nothing()
    {
        using var w = new ContainerWorld();
        var r = w.RunC(["--rm", "--hostname", "box", "--add-host", "db.local:10.9.8.7", "--dns", "10.1.1.1", "--dns-search", "example.test", "--dns-option", "ndots:2"],
            "sh", "-c", "ip -4 addr show eth0; ip route; echo ==; cat /etc/hosts; echo ==; cat /etc/resolv.conf");
        Assert.True(r.Code == 0, r.Err);
        var parts = r.Out.Split("==\n");
        var ip = Eth0Address(parts[0]);
        var net = w.NetworkState("bridge");
        Assert.True(Berth.Engine.Networking.Subnet.Parse((string)net["subnet"]!).Contains(IPAddress.Parse(ip)), r.Out);
        Assert.Contains($"default via {net["gateway"]}", parts[0]);
        Assert.Contains($"{ip}\tbox", parts[1]);
        Assert.Contains("10.9.8.7\tdb.local", parts[1]);
        Assert.Contains("nameserver 10.1.1.1", parts[2]);
        Assert.Contains("search example.test", parts[2]);
        Assert.Contains("options ndots:2", parts[2]);
        Assert.Equal(0, w.Endpoints("bridge"));
        Assert.Empty(w.Veths());
        Assert.Equal((string)net["bridge"]!, w.DefaultBridge);
    }

    [Fact]
    public void Containers_on_a_user_network_reach_each_other_by_name_and_alias_and_not_on_the_default_bridge()
    {
        using var w = new ContainerWorld();
        var net = "tn" + Sh.RandomSuffix(6);
        w.CreateNetwork(net);
        var srv = "srv" + Sh.RandomSuffix(4);
        w.RunDetached(["--name", srv, "--network", net, "--network-alias", "db"], "sleep", "60");
        var r = w.RunC(["--rm", "--network", net], "sh", "-c", $"cat /etc/resolv.conf; ping -c1 -W2 {srv} && ping -c1 -W2 db && nslookup {srv}");
        Assert.True(r.Code == 0, $"exit {r.Code}: {r.Out} {r.Err}");
        var gateway = (string)w.NetworkState(net)["gateway"]!;
        Assert.Contains($"nameserver {gateway}", r.Out);
        var srvIp = (string)w.Inspect(srv)["NetworkSettings"]!["Networks"]![net]!["IPAddress"]!;
        Assert.Contains(srvIp, r.Out);

        // The default bridge resolves no container names (docker's behaviour).
        var b = w.RunDetached(["--name", "b" + srv], "sleep", "60");
        var none = w.RunC(["--rm"], "ping", "-c1", "-W1", "b" + srv);
        Assert.NotEqual(0, none.Code);

        w.Ok("rm", "-f", srv, b);
        Assert.Equal(0, w.Endpoints(net));
        ContainerWorld.WaitUntil(() => !File.Exists(Path.Combine(w.Root, "networks", net + ".dns.pid")) && w.Processes().Count == 0, "the DNS server to exit with the last container");
    }

    [Fact]
    public void Published_ports_answer_on_loopback_and_a_host_address_and_P_picks_a_free_port()
    {
        using var w = new ContainerWorld();
        var port = FreePort();
        var web = "web" + Sh.RandomSuffix(4);
        w.RunDetached(["--name", web, "-p", $"{port}:80", "--expose", "81", "-P"], "httpd", "-f", "-p", "80", "-h", "/www");
        Assert.Equal($"0.0.0.0:{port}", w.Ok("port", web, "80").Out.Trim());
        Assert.Equal("hello from berth\n", Get($"http://127.0.0.1:{port}/index.html"));
        var hostIp = HostAddress();
        if (hostIp is not null) Assert.Equal("hello from berth\n", Get($"http://{hostIp}:{port}/index.html"));
        // -P published the exposed 81 on a port the kernel chose.
        var p81 = w.Ok("port", web, "81/tcp").Out.Trim();
        Assert.Matches(@"^0\.0\.0\.0:\d+$", p81);
        Assert.NotEqual(port, int.Parse(p81.Split(':')[1]));
        var ports = w.Inspect(web)["NetworkSettings"]!["Ports"]!;
        Assert.Equal(port.ToString(), (string)ports["80/tcp"]![0]!["HostPort"]!);
        Assert.Contains($"0.0.0.0:{port}->80/tcp", w.Ok("ps").Out);

        // A second container cannot take the same host port: one line, nothing connected.
        var clash = w.RunC(["-d", "-p", $"{port}:80"], "sleep", "5");
        Assert.Equal(125, clash.Code);
        Assert.Single(clash.Err.Trim().Split('\n'));
        Assert.Contains("port is already allocated", clash.Err);
        Assert.Equal(1, w.Endpoints("bridge"));

        w.Ok("stop", "-t", "1", web);
        Assert.Equal(0, w.Endpoints("bridge"));
        Assert.DoesNotContain($"--dport {port}", Sh.Run("iptables-save", "-t", "nat").Out.Split('\n').Where(l => l.Contains(w.Prefix)).FirstOrDefault() ?? "");
        Assert.Empty(w.Veths());
    }

    [Fact]
    public void Static_ip_is_honoured_and_conflicts_and_bad_values_are_refused_in_one_line()
    {
        using var w = new ContainerWorld();
        var net = "ip" + Sh.RandomSuffix(6);
        var subnet = Berth.Engine.Networking.Subnet.Parse(w.CreateNetwork(net));
        var ip = subnet.At(77).ToString();
        var a = w.RunDetached(["--network", net, "--ip", ip], "sleep", "60");
        Assert.Equal(ip, (string)w.Inspect(a)["NetworkSettings"]!["Networks"]![net]!["IPAddress"]!);
        Assert.Contains($"inet {ip}/24", w.Ok("exec", a, "ip", "-4", "addr", "show", "eth0").Out);

        var clash = w.RunC(["--rm", "--network", net, "--ip", ip], "true");
        OneLine(clash, 125, "already in use");

        OneLine(w.RunC(["--rm", "--network", "nosuch" + Sh.RandomSuffix(3)], "true"), 125, "not found");
        var nosuch = w.RunC(["--rm", "--network", "nosuch"], "true");
        OneLine(nosuch, 125, "network nosuch not found");
        foreach (var bad in new[] { "80/sctp", "a:80", "1.2.3:80:80", "70000:80", "8000-8001:80", "0", "1:2:3:4" })
            OneLine(w.RunC(["--rm", "-p", bad], "true"), 125, "port");
        OneLine(w.RunC(["--rm", "--ip", "10.0.0.5"], "true"), 125, "user defined networks");
        OneLine(w.RunC(["--rm", "--network", net, "--ip", "192.0.2.1"], "true"), 125, "does not belong");
        OneLine(w.RunC(["--rm", "--add-host", "nohost"], "true"), 125, "add-host");
        OneLine(w.RunC(["--rm", "--network", "container:nosuch"], "true"), 125, "no such container");
        // Nothing but the first container exists.
        Assert.Single(w.Ok("ps", "-aq").Out.Trim().Split('\n'));
        Assert.Equal(1, w.Endpoints(net));
    }

    [Fact]
    public void Teardown_on_exit_stop_kill_of_the_monitor_and_restart_keeps_the_address()
    {
        using var w = new ContainerWorld();
        // Exits by itself: the monitor releases the endpoint with nobody running a berth command.
        var quick = w.RunDetached(["-p", "127.0.0.1::80"], "sleep", "1");
        ContainerWorld.WaitUntil(() => w.Endpoints("bridge") == 0, "the exited container's endpoint to go");
        ContainerWorld.WaitUntil(() => w.Veths().Count == 0, "the veth to go");
        Assert.DoesNotContain(w.Prefix + " ", string.Join('\n', Sh.Run("iptables-save", "-t", "nat").Out.Split('\n').Where(l => l.Contains("DNAT") && l.Contains(w.Prefix))));
        Assert.Equal("", (string)w.Inspect(quick)["NetworkSettings"]!["Networks"]!["bridge"]!["IPAddress"]!);

        // The monitor is killed: the next berth command reconciles (container killed, endpoint released).
        var victim = w.RunDetached(["-p", "127.0.0.1::80"], "sleep", "60");
        Assert.Equal(1, w.Endpoints("bridge"));
        var rec = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(w.Root, "containers", victim, "container.json")))!;
        var monitor = (int)rec["Monitor"]!["Pid"]!;
        Process_Kill(monitor);
        ContainerWorld.WaitUntil(() => Dead(monitor), "the monitor to die");
        var ps = w.Ok("ps", "-a", "--no-trunc");
        Assert.Contains(ps.Out.Split('\n'), l => l.StartsWith(victim) && l.Contains("Exited"));
        Assert.Equal(0, w.Endpoints("bridge"));
        ContainerWorld.WaitUntil(() => w.Veths().Count == 0, "the killed container's veth to go");

        // Monitor and container both die (as in a reboot) and nothing reconciles them: the next attach drops the
        // dead endpoint, so its fixed host port is free again.
        var port = FreePort();
        var dead = w.RunDetached(["-p", $"127.0.0.1:{port}:80"], "sleep", "60");
        rec = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(w.Root, "containers", dead, "container.json")))!;
        Process_Kill((int)rec["Monitor"]!["Pid"]!);
        Process_Kill((int)rec["State"]!["Pid"]!);
        ContainerWorld.WaitUntil(() => !Directory.Exists($"/proc/{(int)rec["State"]!["Pid"]!}/ns"), "the container to die");
        var heir = w.RunDetached(["-p", $"127.0.0.1:{port}:80"], "sleep", "60");
        Assert.Equal(1, w.Endpoints("bridge"));
        w.Ok("rm", "-f", heir, dead);
        Assert.Equal(0, w.Endpoints("bridge"));

        // A restart policy reconnects the container, with the address it had.
        var rs = w.RunDetached(["--restart", "on-failure:2"], "sh", "-c", "ip -4 addr show eth0 | grep inet; sleep 0.3; exit 3");
        ContainerWorld.WaitUntil(() => (string?)w.Inspect(rs)["State"]!["Status"] == "exited", "the restarts to end", 30_000);
        var addrs = w.Ok("logs", rs).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim().Split(' ')[1]).ToList();
        Assert.Equal(3, addrs.Count);
        Assert.Single(addrs.Distinct());
        Assert.Equal(0, w.Endpoints("bridge"));
    }

    [Fact]
    public void Container_mode_shares_the_namespace_hosts_and_resolv_conf()
    {
        using var w = new ContainerWorld();
        var srv = "s" + Sh.RandomSuffix(5);
        w.RunDetached(["--name", srv, "--hostname", "shared"], "sleep", "60");
        var ip = (string)w.Inspect(srv)["NetworkSettings"]!["Networks"]!["bridge"]!["IPAddress"]!;
        var r = w.RunC(["--rm", "--network", "container:" + srv], "sh", "-c", "ip -4 addr show eth0; cat /etc/hosts");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains($"inet {ip}/", r.Out);
        Assert.Contains($"{ip}\tshared", r.Out);
        OneLine(w.RunC(["--rm", "--network", "container:" + srv, "-p", "80"], "true"), 125, "conflicting options");
    }

    [Fact]
    public void Network_connect_and_disconnect_act_on_a_running_container()
    {
        using var w = new ContainerWorld();
        var net = "cn" + Sh.RandomSuffix(6);
        var subnet = Berth.Engine.Networking.Subnet.Parse(w.CreateNetwork(net));
        var peer = "p" + Sh.RandomSuffix(5);
        w.RunDetached(["--name", peer, "--network", net], "sleep", "60");
        var c = "c" + Sh.RandomSuffix(5);
        w.RunDetached(["--name", c], "sleep", "60");
        var ip = subnet.At(99).ToString();
        w.Ok("network", "connect", "--alias", "extra", "--ip", ip, net, c);
        Assert.Contains($"inet {ip}/24", w.Ok("exec", c, "ip", "-4", "addr", "show", "eth1").Out);
        var nets = w.Inspect(c)["NetworkSettings"]!["Networks"]!.AsObject();
        Assert.Equal(ip, (string)nets[net]!["IPAddress"]!);
        Assert.True(nets.ContainsKey("bridge"));
        // The peer reaches it by name and alias through the network's DNS.
        var r = w.Ok("exec", peer, "sh", "-c", $"ping -c1 -W2 {c} && ping -c1 -W2 extra");
        Assert.Contains(ip, r.Out);
        var twice = w.Run("network", "connect", net, c);
        Assert.Equal(1, twice.Code);
        Assert.Contains("already exists", twice.Err);

        w.Ok("network", "disconnect", net, c);
        Assert.NotEqual(0, w.Run("exec", c, "ip", "link", "show", "eth1").Code);
        Assert.False(w.Inspect(c)["NetworkSettings"]!["Networks"]!.AsObject().ContainsKey(net));
        Assert.Equal(1, w.Endpoints(net));
        var again = w.Run("network", "disconnect", net, c);
        Assert.Equal(1, again.Code);
        Assert.Single(again.Err.Trim().Split('\n'));
        Assert.Equal(0, w.Run("network", "disconnect", "-f", net, c).Code);
    }

    static void OneLine(Sh.Result r, int code, string contains)
    {
        Assert.True(r.Code == code, $"expected exit {code}, got {r.Code}: {r.Err} {r.Out}");
        var lines = r.Err.Trim().Split('\n');
        Assert.True(lines.Length == 1, "expected one line: " + r.Err);
        Assert.StartsWith("berth: ", lines[0]);
        Assert.Contains(contains, r.Err);
    }

    static void Process_Kill(int pid) => System.Diagnostics.Process.GetProcessById(pid).Kill();

    static bool Dead(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] is 'Z' or 'X';
        }
        catch (IOException) { return true; }
    }

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    static string? HostAddress()
    {
        foreach (var line in Sh.Run("ip", "-o", "-4", "addr", "show", "scope", "global").Out.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 3 && (f[1].StartsWith("eth") || f[1].StartsWith("en"))) return f[3].Split('/')[0];
        }
        return null;
    }

    static string Get(string url)
    {
        using var http = new HttpClient(new HttpClientHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };
        for (var i = 0; ; i++)
        {
            try { return http.GetStringAsync(url).GetAwaiter().GetResult(); }
            catch (HttpRequestException) when (i < 20) { Thread.Sleep(100); }
        }
    }
}
