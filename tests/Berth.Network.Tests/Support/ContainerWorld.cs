using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Tests.Shared;

namespace Berth.Network.Tests.Support;

/// <summary>One test's containers: temp --root/--runroot, a busybox rootfs, and a network-options.json giving the
/// default network its own bridge, a 10.213.x.0/24 subnet and iptables chain prefix (so tests never touch berth0,
/// 172.17.0.0/16 or the BERTH chains). Dispose removes every container and network, then fails the test if a
/// veth, bridge, address, iptables rule, DNS server, process or endpoint of it remains.</summary>
public sealed class ContainerWorld : IDisposable
{
    public static readonly string Berth = LocateBerth();
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "berth-cnet-" + Sh.RandomSuffix(10));
    public string Root => Path.Combine(Dir, "root");
    public string RunRoot => Path.Combine(Dir, "run");
    public string Rootfs => Path.Combine(Dir, "rootfs");
    public string Prefix { get; } = "BT" + Sh.RandomSuffix(6).ToUpperInvariant();
    public string DefaultBridge { get; } = TestNet.BridgeName();
    readonly List<string> _bridges = [];
    readonly List<string> _gateways = [];

    static string LocateBerth()
    {
        if (Environment.GetEnvironmentVariable("BERTH_RUNC") is { Length: > 0 } env) return Path.Combine(Path.GetDirectoryName(env)!, "berth");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "out", "berth");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException("berth not found: set BERTH_RUNC or run `make build`");
    }

    public ContainerWorld()
    {
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(RunRoot);
        var subnet = TestNet.NextSubnet();
        File.WriteAllText(Path.Combine(Root, "network-options.json"),
            $$"""{"defaultBridge": "{{DefaultBridge}}", "defaultSubnet": "{{subnet}}", "chainPrefix": "{{Prefix}}", "pools": ["{{TestNet.NextSubnet()}}", "{{TestNet.NextSubnet()}}"]}""");
        MakeRootfs(Rootfs);
    }

    static void MakeRootfs(string dir)
    {
        var bin = Path.Combine(dir, "bin");
        Directory.CreateDirectory(bin);
        foreach (var d in new[] { "etc", "tmp", "root", "proc", "sys", "dev", "www" }) Directory.CreateDirectory(Path.Combine(dir, d));
        File.Copy("/bin/busybox", Path.Combine(bin, "busybox"));
        foreach (var applet in new[] { "sh", "ip", "ping", "wget", "nc", "httpd", "cat", "sleep", "nslookup", "hostname", "echo", "true", "false", "grep", "ifconfig", "route", "readlink" })
            File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");
        File.WriteAllText(Path.Combine(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        File.WriteAllText(Path.Combine(dir, "etc/group"), "root:x:0:\n");
        File.WriteAllText(Path.Combine(dir, "www/index.html"), "hello from berth\n");
    }

    public Sh.Result Run(params string[] args) => Sh.RunWithTimeout(TimeSpan.FromSeconds(60), Berth, ["--root", Root, "--runroot", RunRoot, .. args]);

    public Sh.Result Ok(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.Code == 0, $"berth {string.Join(' ', args)} exited {r.Code}: {r.Err} {r.Out}");
        return r;
    }

    /// <summary>`run OPTS --rootfs ROOTFS CMD…`</summary>
    public Sh.Result RunC(string[] options, params string[] command) => Run(["run", .. options, "--rootfs", Rootfs, .. command]);

    public string RunDetached(string[] options, params string[] command)
    {
        var r = RunC(["-d", .. options], command);
        Assert.True(r.Code == 0, $"run -d exited {r.Code}: {r.Err}");
        return r.Out.Trim();
    }

    public JsonObject Inspect(string name) => JsonNode.Parse(Ok("inspect", name).Out)!.AsArray()[0]!.AsObject();

    public string CreateNetwork(string name)
    {
        var bridge = TestNet.BridgeName();
        var subnet = TestNet.NextSubnet();
        Ok("network", "create", "--subnet", subnet.ToString(), "-o", $"com.docker.network.bridge.name={bridge}", name);
        _bridges.Add(bridge);
        _gateways.Add(subnet.At(1).ToString());
        return subnet.ToString();
    }

    /// <summary>The network's state file as JSON (endpoints by container id).</summary>
    public JsonObject NetworkState(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "networks", name + ".json")))!.AsObject();

    public int Endpoints(string network) => NetworkState(network)["endpoints"]!.AsObject().Count;

    public static void WaitUntil(Func<bool> cond, string what, int timeoutMs = 20_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!cond())
        {
            if (Environment.TickCount64 > deadline) Assert.Fail("timed out waiting for " + what);
            Thread.Sleep(50);
        }
    }

    /// <summary>Host veths ("vb…") enslaved to this world's bridges.</summary>
    public List<string> Veths()
    {
        var list = new List<string>();
        var links = Sh.Run("ip", "-o", "link").Out;
        foreach (var bridge in _bridges.Append(DefaultBridge))
            foreach (var line in links.Split('\n'))
                if (line.Contains($"master {bridge} ")) list.Add(line.Split(':')[1].Trim());
        return list;
    }

    public List<string> Leftovers()
    {
        var left = new List<string>();
        var links = Sh.Run("ip", "-o", "link").Out;
        foreach (var b in _bridges.Append(DefaultBridge))
            if (links.Contains($": {b}:")) left.Add("bridge " + b);
        foreach (var v in Veths()) left.Add("veth " + v);
        var addrs = Sh.Run("ip", "-o", "-4", "addr").Out;
        foreach (var g in _gateways) if (addrs.Contains(" " + g + "/")) left.Add("address " + g);
        foreach (var table in new[] { "nat", "filter" })
            foreach (var line in Sh.Run("iptables-save", "-t", table).Out.Split('\n'))
                if (line.Contains(Prefix)) left.Add($"{table}: {line}");
        foreach (var pid in Processes()) left.Add($"process {pid}: {Cmdline(pid)}");
        return left;
    }

    public List<int> Processes() => ProcessScan.Find(Dir, Rootfs);

    public static string Cmdline(int pid) => ProcessScan.Cmdline(pid);

    public void Dispose()
    {
        var problems = new List<string>();
        foreach (var id in Run("pod", "ps", "-q", "--no-trunc").Out.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var r = Run("pod", "rm", "-f", id.Trim());
            if (r.Code != 0) problems.Add($"pod rm -f {id}: {r.Err}");
        }
        foreach (var id in Run("ps", "-aq", "--no-trunc").Out.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var r = Run("rm", "-f", id.Trim());
            if (r.Code != 0) problems.Add($"rm -f {id}: {r.Err}");
        }
        var netDir = Path.Combine(Root, "networks");
        if (Directory.Exists(netDir))
            foreach (var f in Directory.GetFiles(netDir, "*.json"))
            {
                var n = JsonNode.Parse(File.ReadAllText(f))!;
                if (n["endpoints"]!.AsObject().Count > 0) problems.Add($"network {n["name"]}: endpoints left: {n["endpoints"]!.ToJsonString()}");
                var r = Run("network", "rm", (string)n["name"]!);
                if (r.Code != 0) problems.Add($"network rm {n["name"]}: {r.Err}");
            }
        var deadline = Environment.TickCount64 + 10_000;
        List<string> left;
        while ((left = Leftovers()).Count > 0 && Environment.TickCount64 < deadline) Thread.Sleep(100);
        problems.AddRange(left);
        foreach (var pid in Processes()) try { Process.GetProcessById(pid).Kill(); } catch (Exception) { }
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
            if (line.Contains(Dir, StringComparison.Ordinal)) problems.Add("mount: " + line);
        try { Directory.Delete(Dir, true); } catch (Exception e) { problems.Add("temp dir: " + e.Message); }
        Assert.True(problems.Count == 0, "left behind:\n" + string.Join("\n", problems));
    }
}
