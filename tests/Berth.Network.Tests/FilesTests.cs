using System.Net;
using Berth.Engine.Networking;

namespace Berth.Network.Tests;

public class FilesTests
{
    static string HostConf(string text)
    {
        var f = Path.GetTempFileName();
        File.WriteAllText(f, text);
        return f;
    }

    [Fact]
    public void Resolv_conf_follows_dockers_rules()
    {
        var host = HostConf("search corp.example\nnameserver 127.0.0.53\nnameserver 10.1.1.1\noptions edns0\n");
        try
        {
            Assert.Equal("search corp.example\nnameserver 10.1.1.1\noptions edns0\n", ContainerNetworkFiles.ResolvConf(null, hostResolvConf: host));
            Assert.Equal("search corp.example\nnameserver 10.213.5.1\noptions edns0\n", ContainerNetworkFiles.ResolvConf(IPAddress.Parse("10.213.5.1"), hostResolvConf: host));
            Assert.Equal("search a.b\nnameserver 9.9.9.9\noptions ndots:2\n",
                ContainerNetworkFiles.ResolvConf(IPAddress.Parse("10.213.5.1"), ["9.9.9.9"], ["a.b"], ["ndots:2"], host));
            Assert.Throws<NetworkException>(() => ContainerNetworkFiles.ResolvConf(null, ["not-an-ip"], hostResolvConf: host));
        }
        finally { File.Delete(host); }
        var loopOnly = HostConf("nameserver 127.0.0.1\n");
        try { Assert.Equal("nameserver 8.8.8.8\nnameserver 8.8.4.4\n", ContainerNetworkFiles.ResolvConf(null, hostResolvConf: loopOnly)); }
        finally { File.Delete(loopOnly); }
    }

    [Fact]
    public void Hosts_and_add_host()
    {
        var gw = IPAddress.Parse("10.213.5.1");
        Assert.Equal(("db", IPAddress.Parse("10.0.0.9")), ContainerNetworkFiles.ParseAddHost("db:10.0.0.9", gw));
        Assert.Equal(("gw", gw), ContainerNetworkFiles.ParseAddHost("gw:host-gateway", gw));
        Assert.Equal(("v6", IPAddress.Parse("fd00::1")), ContainerNetworkFiles.ParseAddHost("v6=[fd00::1]", gw));
        foreach (var bad in new[] { "nohost", ":1.2.3.4", "x:1.2.3", "x:abc" })
            Assert.Throws<NetworkException>(() => ContainerNetworkFiles.ParseAddHost(bad, gw));
        var hosts = ContainerNetworkFiles.Hosts("web", IPAddress.Parse("10.213.5.2"), [("db", IPAddress.Parse("10.0.0.9"))]);
        Assert.StartsWith("127.0.0.1\tlocalhost\n", hosts);
        Assert.Contains("10.0.0.9\tdb\n", hosts);
        Assert.EndsWith("10.213.5.2\tweb\n", hosts);
    }
}
