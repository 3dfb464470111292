using System.Net;
using Berth.Linux.Netlink;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

/// <summary>rtnetlink against the real kernel: every object is created by the test, checked with
/// both the library's queries and iproute2, and removed.</summary>
public class NetlinkTests
{
    [Fact]
    public void Bridge_and_veth_into_a_namespace_with_address_route_and_queries()
    {
        var br = "bt" + Sh.RandomSuffix(8);
        var veth = "vt" + Sh.RandomSuffix(8);
        using var ns = new TestNetns();
        using var nl = RtNetlink.Open();
        try
        {
            nl.CreateBridge(br);
            nl.SetMtu(br, 1400);
            nl.AddAddress(br, IPAddress.Parse("10.213.250.1"), 24);
            nl.SetUp(br);
            nl.CreateVeth(veth, "eth0", ns.Path, mtu: 1400);
            nl.SetMaster(veth, br);
            nl.SetUp(veth);

            var link = nl.GetLink(br)!;
            Assert.Equal("bridge", link.Kind);
            Assert.Equal(1400, link.Mtu);
            Assert.True(link.IsUp);
            Assert.Equal(link.Index, nl.GetLink(veth)!.MasterIndex);
            Assert.Contains(nl.GetAddresses(br), a => a.Address.Equals(IPAddress.Parse("10.213.250.1")) && a.PrefixLength == 24);
            Assert.Contains(nl.GetLinks(), l => l.Name == veth && l.Kind == "veth");
            Assert.Contains($"master {br}", Sh.Run("ip", "-o", "link", "show", veth).Out);

            using (var inner = RtNetlink.OpenIn(ns.Path))
            {
                inner.SetUp("lo");
                inner.AddAddress("eth0", IPAddress.Parse("10.213.250.2"), 24);
                inner.SetUp("eth0");
                inner.AddDefaultRoute(IPAddress.Parse("10.213.250.1"), "eth0");
                Assert.Contains(inner.GetRoutes(), r => r.Destination is null && IPAddress.Parse("10.213.250.1").Equals(r.Gateway));
                Assert.Null(inner.GetLink(veth)); // the host end is not in the namespace
                inner.Rename("eth0", "eth9");
                Assert.NotNull(inner.GetLink("eth9"));
                inner.Rename("eth9", "eth0");
            }
            Assert.Contains("default via 10.213.250.1 dev eth0", ns.Exec("ip", "route").Out);
            var ping = ns.Exec("busybox", "ping", "-c", "1", "-W", "2", "10.213.250.1");
            Assert.True(ping.Code == 0, ping.Out + ping.Err);
        }
        finally
        {
            nl.TryDeleteLink(veth);
            nl.TryDeleteLink(br);
        }
        Assert.Null(nl.GetLink(br));
        Assert.Null(nl.GetLink(veth));
        Assert.DoesNotContain(br, Sh.Run("ip", "-o", "link").Out);
    }

    [Fact]
    public void Move_to_namespace_and_ipv6_address()
    {
        var veth = "vt" + Sh.RandomSuffix(8);
        using var ns = new TestNetns();
        using var nl = RtNetlink.Open();
        try
        {
            nl.CreateVeth(veth, veth + "p");
            nl.MoveToNetns(veth + "p", ns.Path);
            Assert.Null(nl.GetLink(veth + "p"));
            using var inner = RtNetlink.OpenIn(ns.Path);
            inner.AddAddress(veth + "p", IPAddress.Parse("fd00:213::2"), 64);
            Assert.Contains(inner.GetAddresses(veth + "p"), a => a.Address.Equals(IPAddress.Parse("fd00:213::2")));
            inner.DeleteAddress(veth + "p", IPAddress.Parse("fd00:213::2"), 64);
            Assert.DoesNotContain(inner.GetAddresses(veth + "p"), a => a.Address.Equals(IPAddress.Parse("fd00:213::2")));
        }
        finally { nl.TryDeleteLink(veth); }
        // Deleting one end of a veth deletes the other, in the other namespace too.
        Assert.DoesNotContain(veth, ns.Exec("ip", "-o", "link").Out);
    }

    [Fact]
    public void Errors_name_the_object_and_errno()
    {
        using var nl = RtNetlink.Open();
        var missing = "nx" + Sh.RandomSuffix(8);
        var e = Assert.Throws<NetlinkException>(() => nl.SetUp(missing));
        Assert.Contains($"link \"{missing}\"", e.Message);
        Assert.True(e.IsNotFound);
        Assert.False(nl.TryDeleteLink(missing));

        var br = "bt" + Sh.RandomSuffix(8);
        nl.CreateBridge(br);
        try
        {
            var dup = Assert.Throws<NetlinkException>(() => nl.CreateBridge(br));
            Assert.True(dup.IsAlreadyExists);
            Assert.Contains($"bridge \"{br}\"", dup.Message);
            Assert.Throws<ArgumentException>(() => nl.CreateBridge("this-name-is-too-long"));
            var badMaster = Assert.Throws<NetlinkException>(() => nl.SetMaster(br, missing));
            Assert.Contains(missing, badMaster.Message);
        }
        finally { nl.DeleteLink(br); }
    }
}
