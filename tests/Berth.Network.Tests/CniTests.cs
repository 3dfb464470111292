using System.Net;
using Berth.Engine.Networking;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

/// <summary>Debian's reference plugins (containernetworking-plugins: bridge, host-local, portmap) driven by
/// Berth's CNI runtime.</summary>
public class CniTests
{
    static readonly string[] PluginDirs = ["/usr/lib/cni"];

    static string ConfList(string name, string bridge, Subnet subnet, string ipamDir) => $$"""
        {
          "cniVersion": "1.0.0",
          "name": "{{name}}",
          "plugins": [
            {
              "type": "bridge", "bridge": "{{bridge}}", "isGateway": true, "ipMasq": true, "hairpinMode": true,
              "ipam": {
                "type": "host-local", "dataDir": "{{ipamDir}}",
                "ranges": [[{ "subnet": "{{subnet}}" }]],
                "routes": [{ "dst": "0.0.0.0/0" }]
              }
            },
            { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }
          ]
        }
        """;

    [Fact]
    public async Task Bridge_host_local_and_portmap_add_check_and_del()
    {
        using var t = new TestNet();
        var subnet = TestNet.NextSubnet();
        var bridge = TestNet.BridgeName();
        var ipamDir = Path.Combine(t.DataDir, "host-local");
        var list = CniConfigList.Parse(ConfList("bt-cni-" + Sh.RandomSuffix(), bridge, subnet, ipamDir));
        var cni = new CniClient(PluginDirs, Path.Combine(t.DataDir, "cni-cache"));
        Assert.Contains("1.0.0", await cni.VersionsAsync("bridge"));

        var a = t.Container();
        var b = t.Container();
        var hostPort = PortSpec.FreePort("0.0.0.0", "tcp");
        var ida = "cnia" + Sh.RandomSuffix(12);
        var idb = "cnib" + Sh.RandomSuffix(12);
        var rta = new CniRuntimeConf(ida, a.Path)
        {
            Capabilities = new Dictionary<string, System.Text.Json.Nodes.JsonNode> { ["portMappings"] = CniRuntimeConf.PortMappings([new PortMapping("0.0.0.0", hostPort, 8080, "tcp")]) },
        };
        var rtb = new CniRuntimeConf(idb, b.Path);
        var ipt = new Iptables();
        var portmapChainsBefore = ipt.ChainExists("nat", "CNI-HOSTPORT-DNAT");
        try
        {
            var ra = await cni.AddAsync(list, rta);
            var rb = await cni.AddAsync(list, rtb);

            // Result parsed per the spec: the address is in the subnet on the sandbox's eth0, gateway .1.
            var ipa = Assert.Single(ra.Ips);
            Assert.True(subnet.Contains(ipa.Address));
            Assert.Equal(subnet.PrefixLength, ipa.PrefixLength);
            Assert.Equal(subnet.At(1), ipa.Gateway);
            var sandboxIf = ra.Interfaces[ipa.Interface!.Value];
            Assert.Equal("eth0", sandboxIf.Name);
            Assert.Equal(a.Path, sandboxIf.Sandbox);
            Assert.Contains(ra.Interfaces, i => i.Name == bridge);
            Assert.Contains(ra.Routes, r => r.Dst == "0.0.0.0/0");
            Assert.Contains($"{ipa.Address}/{ipa.PrefixLength}", a.Exec("ip", "-o", "-4", "addr", "show", "eth0").Out);

            BridgeTests.Ping(a, subnet.At(1).ToString());
            BridgeTests.Ping(a, rb.Ips[0].Address.ToString());

            // (No CHECK here: Debian's portmap 1.1.1 fails CHECK on IPv4-only attachments, upstream
            // containernetworking/plugins#819; CHECK is tested below with bridge + host-local.)

            // portmap: the published port answers on 127.0.0.1.
            var root = Path.Combine(t.DataDir, "www");
            Directory.CreateDirectory(root);
            var token = "cni-" + Sh.RandomSuffix(8);
            File.WriteAllText(Path.Combine(root, "index.html"), token);
            using (var httpd = BridgeTests.StartInNetns(a.Name, "busybox", "httpd", "-f", "-p", "8080", "-h", root))
            {
                try
                {
                    BridgeTests.WaitListening(a, 8080);
                    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
                    Assert.Equal(token, await http.GetStringAsync($"http://127.0.0.1:{hostPort}/index.html"));
                }
                finally { httpd.Kill(); httpd.WaitForExit(); }
            }

            await cni.DelAsync(list, rta);
            await cni.DelAsync(list, rtb);
            await cni.DelAsync(list, rtb); // DEL is idempotent

            // Nothing of the containers is left: interfaces, addresses reserved by host-local, rules.
            Assert.DoesNotContain("eth0", a.Exec("ip", "-o", "link").Out);
            Assert.DoesNotContain("eth0", b.Exec("ip", "-o", "link").Out);
            var reserved = Directory.Exists(ipamDir) ? Directory.GetFiles(ipamDir, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList() : [];
            Assert.DoesNotContain(ipa.Address.ToString(), reserved);
            Assert.DoesNotContain(rb.Ips[0].Address.ToString(), reserved);
            var rules = Sh.Run("iptables-save").Out;
            Assert.DoesNotContain(ipa.Address + "/", rules);
            Assert.DoesNotContain(ipa.Address + ":8080", rules);
            Assert.DoesNotContain(ida, rules);
            Assert.DoesNotContain(rb.Ips[0].Address + "/", rules);
            Assert.Empty(Directory.GetFiles(Path.Combine(t.DataDir, "cni-cache", "results")));
        }
        finally
        {
            try { await cni.DelAsync(list, rta); } catch { }
            try { await cni.DelAsync(list, rtb); } catch { }
            Sh.Run("ip", "link", "del", bridge); // the bridge belongs to the configuration, not a container
            // portmap keeps its shared top-level chains after DEL; remove them only if this test made them.
            if (!portmapChainsBefore && ipt.RuleCount("nat", "CNI-HOSTPORT-DNAT") == 0)
            {
                ipt.DeleteRule("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]);
                ipt.DeleteRule("nat", "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]);
                ipt.DeleteRule("nat", "POSTROUTING", ["-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"]);
                foreach (var chain in new[] { "CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK" }) ipt.DeleteChain("nat", chain);
            }
        }
        Assert.DoesNotContain(bridge, Sh.Run("ip", "-o", "link").Out);
    }

    [Fact]
    public async Task Check_passes_on_a_healthy_attachment_and_fails_once_it_is_broken()
    {
        using var t = new TestNet();
        var bridge = TestNet.BridgeName();
        var subnet = TestNet.NextSubnet();
        var json = $$$"""
            {"cniVersion":"1.0.0","name":"bt-chk-{{{Sh.RandomSuffix()}}}","plugins":[
              {"type":"bridge","bridge":"{{{bridge}}}","isGateway":true,
               "ipam":{"type":"host-local","dataDir":"{{{t.DataDir}}}/hl","ranges":[[{"subnet":"{{{subnet}}}"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}
            """;
        var list = CniConfigList.Parse(json);
        var cni = new CniClient(PluginDirs, Path.Combine(t.DataDir, "cni-cache"));
        var c = t.Container();
        var rt = new CniRuntimeConf("chk" + Sh.RandomSuffix(10), c.Path);
        try
        {
            var r = await cni.AddAsync(list, rt);
            await cni.CheckAsync(list, rt);
            c.Exec("ip", "addr", "del", $"{r.Ips[0].Address}/{r.Ips[0].PrefixLength}", "dev", "eth0").Check("ip addr del");
            var e = await Assert.ThrowsAsync<CniException>(() => cni.CheckAsync(list, rt));
            Assert.Equal("bridge", e.Plugin);
            await cni.DelAsync(list, rt);
            Assert.DoesNotContain("eth0", c.Exec("ip", "-o", "link").Out);
        }
        finally
        {
            try { await cni.DelAsync(list, rt); } catch { }
            Sh.Run("ip", "link", "del", bridge);
        }
    }

    [Fact]
    public async Task Plugin_errors_carry_the_plugin_code_and_message_and_leave_nothing()
    {
        using var t = new TestNet();
        var c = t.Container();
        var cni = new CniClient(PluginDirs, Path.Combine(t.DataDir, "cni-cache"));
        var bridge = TestNet.BridgeName();

        var missing = CniConfigList.Parse("""{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]}""");
        var e1 = await Assert.ThrowsAsync<CniException>(() => cni.AddAsync(missing, new CniRuntimeConf("c1", c.Path)));
        Assert.Contains("no-such-plugin", e1.Message);

        // host-local refuses a subnet without room; the bridge plugin reports it as its failure.
        var bad = CniConfigList.Parse($$$"""
            {"cniVersion":"1.0.0","name":"bad-{{{Sh.RandomSuffix()}}}","plugins":[
              {"type":"bridge","bridge":"{{{bridge}}}","ipam":{"type":"host-local","dataDir":"{{{t.DataDir}}}/hl","ranges":[[{"subnet":"10.213.255.0/31"}]]}}]}
            """);
        var e2 = await Assert.ThrowsAsync<CniException>(() => cni.AddAsync(bad, new CniRuntimeConf("c2", c.Path)));
        Assert.Equal("bridge", e2.Plugin);
        Assert.DoesNotContain("eth0", c.Exec("ip", "-o", "link").Out);
        Sh.Run("ip", "link", "del", bridge);

        foreach (var json in new[] { "{", """{"name":"x","plugins":[]}""", """{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../../bin/sh"}]}""", """{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}""" })
            Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => CniConfigList.Parse(json)).Kind);
        Assert.Equal(NetworkErrorKind.NotFound, Assert.Throws<NetworkException>(() => CniConfigList.Load("/nonexistent/x.conflist")).Kind);
        await Assert.ThrowsAsync<NetworkException>(() => cni.CheckAsync(missing, new CniRuntimeConf("never-added", c.Path)));
    }
}
