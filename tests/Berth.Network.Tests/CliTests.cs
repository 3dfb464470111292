using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Berth.Engine.Networking;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests;

/// <summary>`berth network …` through the built binary (out/berth, or BERTH_RUNC's directory).</summary>
public class CliTests
{
    static readonly string Berth = ContainerWorld.Berth;

    static Sh.Result Run(string root, params string[] args) => Sh.Run(Berth, ["--root", root, .. args]);

    [Fact]
    public void Create_ls_inspect_rm_and_bad_input()
    {
        using var t = new TestNet();
        var bridge = TestNet.BridgeName();
        var subnet = TestNet.NextSubnet();
        var name = "cli" + Sh.RandomSuffix();
        var id = Run(t.DataDir, "network", "create", "--subnet", subnet.ToString(), "-o", $"com.docker.network.bridge.name={bridge}", "--label", "a=b", name).Check("create").Out.Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);
        try
        {
            Assert.Contains($"{id[..12]}   {name}", Run(t.DataDir, "network", "ls").Out);
            Assert.Equal(id[..12], Run(t.DataDir, "network", "ls", "-q").Out.Trim());
            var doc = JsonNode.Parse(Run(t.DataDir, "network", "inspect", id[..6]).Check("inspect").Out)!.AsArray();
            var n = doc.Single()!;
            Assert.Equal(name, (string?)n["Name"]);
            Assert.Equal(subnet.ToString(), (string?)n["IPAM"]!["Config"]![0]!["Subnet"]);
            Assert.Equal(subnet.At(1).ToString(), (string?)n["IPAM"]!["Config"]![0]!["Gateway"]);
            Assert.Equal(bridge, (string?)n["Options"]!["com.docker.network.bridge.name"]);
            Assert.Equal("b", (string?)n["Labels"]!["a"]);
            Assert.Contains($"{subnet.At(1)}/24", Sh.Run("ip", "-o", "addr", "show", bridge).Out);

            foreach (var bad in new[] { new[] { "create", name }, ["create", "--subnet", "10.213.300.0/24", "x" + Sh.RandomSuffix()],
                         ["create", "--driver", "overlay", "x" + Sh.RandomSuffix()], ["rm", "nope-" + Sh.RandomSuffix()], ["inspect", "nope-" + Sh.RandomSuffix()],
                         ["create", "-o", "color=blue", "x" + Sh.RandomSuffix()] })
            {
                var r = Run(t.DataDir, ["network", .. bad]);
                Assert.Equal(1, r.Code);
                Assert.Single(r.Err.Trim().Split('\n'));
                Assert.StartsWith("berth: ", r.Err);
            }
            Assert.Equal(125, Run(t.DataDir, "network", "frobnicate").Code);
            Assert.Single(Run(t.DataDir, "network", "ls", "-q").Out.Trim().Split('\n')); // bad input left nothing

            Assert.Equal(name, Run(t.DataDir, "network", "rm", name).Check("rm").Out.Trim());
        }
        finally { Run(t.DataDir, "network", "rm", name); }
        Assert.DoesNotContain(bridge, Sh.Run("ip", "-o", "link").Out);
        Assert.DoesNotContain(bridge, Sh.Run("iptables-save").Out);
        Assert.Equal("", Run(t.DataDir, "network", "ls", "-q").Out.Trim());
    }

    [Fact]
    public async Task Dns_runs_in_the_foreground_answers_and_stops_on_sigterm()
    {
        using var t = new TestNet();
        var net = t.CreateNetwork(dns: true);
        var c = t.Container();
        var att = t.Manager.Attach(new AttachRequest(net.Name, "dns" + Sh.RandomSuffix(12), c.Path) { ContainerName = "svc" });
        var psi = new ProcessStartInfo(Berth) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--root", t.DataDir, "network", "dns", net.Name, "--port", "0" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        try
        {
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.StartsWith($"listening on {net.Gateway}:", line);
            var port = int.Parse(line![(line.LastIndexOf(':') + 1)..]);
            using var udp = new UdpClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await udp.SendAsync(DnsMessage.Query(5, "svc"), new IPEndPoint(net.GatewayAddress, port), cts.Token);
            var reply = DnsMessage.ParseResponse((await udp.ReceiveAsync(cts.Token)).Buffer);
            Assert.Equal([att.Address], reply.Addresses);
            global::Berth.Linux.Interop.Libc.kill(p.Id, 15);
            Assert.True(p.WaitForExit(10_000));
            Assert.Equal(0, p.ExitCode);
        }
        finally { if (!p.HasExited) { p.Kill(); p.WaitForExit(); } }
    }
}
