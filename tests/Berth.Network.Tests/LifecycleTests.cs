using System.Net;
using Berth.Engine.Networking;
using Berth.Linux.Netlink;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

public class LifecycleTests
{
    [Fact]
    public async Task Eight_containers_attached_at_once_get_distinct_addresses_and_all_work()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork();
        var containers = Enumerable.Range(0, 8).Select(_ => t.Container()).ToList();
        var attachments = await Task.WhenAll(containers.Select((c, i) => Task.Run(() =>
            t.NewManager().Attach(new AttachRequest(net.Name, $"par{i}-{Sh.RandomSuffix()}", c.Path) { ContainerName = $"c{i}", Ports = [PortSpec.Parse("127.0.0.1::80")] }))));
        Assert.Equal(8, attachments.Select(a => a.Address).Distinct().Count());
        Assert.Equal(8, attachments.Select(a => a.Ports[0].HostPort).Distinct().Count());
        Assert.Equal(8, t.Manager.Inspect(net.Name).Endpoints.Count);
        BridgeTests.Ping(containers[0], attachments[7].Address.ToString());
        BridgeTests.Ping(containers[7], net.Gateway);
        var final = t.Manager.Inspect(net.Name);
        await Task.WhenAll(attachments.Select(a => Task.Run(() => t.NewManager().Detach(net.Name, a.ContainerId))));
        t.Manager.Remove(net.Name);
        Assert.Empty(t.Leftovers([final]));
    }

    [Fact]
    public void A_container_whose_namespace_died_detaches_cleanly()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork();
        var c = new TestNetns();
        var att = t.Manager.Attach(new AttachRequest(net.Name, "dead" + Sh.RandomSuffix(), c.Path) { Ports = [PortSpec.Parse("127.0.0.1::80")] });
        c.Dispose(); // the namespace goes, and the kernel takes the veth pair with it
        for (var i = 0; i < 50 && Sh.Run("ip", "-o", "link").Out.Contains(att.HostVeth); i++) Thread.Sleep(20);
        var final = t.Manager.Inspect(net.Name);
        // Someone flushed the DNAT rule already: the batched delete fails and the rule-by-rule path finishes.
        Sh.Run("iptables", "-w", "-t", "nat", "-F", t.Prefix).Check("flush");
        t.Manager.Detach(net.Name, att.ContainerId);
        Assert.Empty(t.Manager.Inspect(net.Name).Endpoints);
        Assert.DoesNotContain($"{att.Address}:80", Sh.Run("iptables-save", "-t", "nat").Out);
        t.Manager.Remove(net.Name);
        Assert.Empty(t.Leftovers([final]));
    }

    [Fact]
    public void After_a_simulated_reboot_restore_rebuilds_bridges_and_rules_and_drops_dead_endpoints()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork();
        var old = new TestNetns();
        var oldAtt = t.Manager.Attach(new AttachRequest(net.Name, "old" + Sh.RandomSuffix(), old.Path) { Ports = [PortSpec.Parse("127.0.0.1::80")] });
        // "Reboot": the namespace, the bridge and the rules are gone; the state on disk stays.
        old.Dispose();
        t.Manager.Firewall.RemovePorts(net.Bridge, oldAtt.Address.ToString(), oldAtt.Ports);
        t.Manager.Firewall.RemoveNetwork(net.Bridge, net.Subnet, net.Internal);
        using (var nl = RtNetlink.Open()) nl.DeleteLink(net.Bridge);
        Assert.DoesNotContain(t.Prefix, Sh.Run("iptables-save").Out);

        var fresh = t.NewManager();
        Assert.Equal([oldAtt.ContainerId], fresh.Restore());
        Assert.Empty(fresh.Inspect(net.Name).Endpoints);
        using (var nl = RtNetlink.Open())
        {
            Assert.True(nl.GetLink(net.Bridge)!.IsUp);
            Assert.Contains(nl.GetAddresses(net.Bridge), a => a.Address.Equals(net.GatewayAddress));
        }
        Assert.Contains($"-A {t.Prefix}-POSTROUTING -s {net.Subnet} ! -o {net.Bridge} -j MASQUERADE", Sh.Run("iptables-save", "-t", "nat").Out);

        var c = t.Container();
        var att = fresh.Attach(new AttachRequest(net.Name, "new" + Sh.RandomSuffix(), c.Path));
        BridgeTests.Ping(c, net.Gateway);
        var final = fresh.Inspect(net.Name);
        fresh.Detach(net.Name, att.ContainerId);
        fresh.Remove(net.Name);
        Assert.Empty(t.Leftovers([final]));
    }

    [Fact]
    public void A_published_port_answers_a_client_from_another_host()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork();
        var server = t.Container();
        var client = t.Container();
        // The "other host": a namespace linked to this host by its own point-to-point veth.
        var link = TestNet.Subnet30();
        var hostEnd = "vc" + Sh.RandomSuffix(8);
        using var nl = RtNetlink.Open();
        nl.CreateVeth(hostEnd, "eth0", client.Path);
        try
        {
            nl.AddAddress(hostEnd, link.At(1), 30);
            nl.SetUp(hostEnd);
            using (var inner = RtNetlink.OpenIn(client.Path))
            {
                inner.SetUp("lo");
                inner.AddAddress("eth0", link.At(2), 30);
                inner.SetUp("eth0");
            }
            var port = PortSpec.FreePort("0.0.0.0", "tcp");
            var att = t.Manager.Attach(new AttachRequest(net.Name, "srv" + Sh.RandomSuffix(), server.Path) { Ports = [PortSpec.Parse($"{port}:7000")] });
            using var nc = BridgeTests.StartInNetns(server.Name, "busybox", "nc", "-l", "-p", "7000", "-e", "echo", "pong-from-container");
            try
            {
                BridgeTests.WaitListening(server, 7000);
                // The client reaches the host's address on its link; PREROUTING DNAT forwards to the container.
                var r = client.Exec("busybox", "sh", "-c", $"echo ping | busybox nc -w 3 {link.At(1)} {port}");
                Assert.Contains("pong-from-container", r.Out);
            }
            finally { nc.Kill(); nc.WaitForExit(); }
            var final = t.Manager.Inspect(net.Name);
            t.Manager.Detach(net.Name, att.ContainerId);
            t.Manager.Remove(net.Name);
            Assert.Empty(t.Leftovers([final]));
        }
        finally { nl.TryDeleteLink(hostEnd); }
    }
}
