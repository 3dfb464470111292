using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.Json;
using Berth.Engine.Networking;
using Berth.Linux;

namespace Berth.Cli.Network;

/// <summary>`berth network create|ls|inspect|rm|prune` (docker's verbs and output shapes) over
/// <see cref="NetworkManager"/>; `berth network dns NAME` runs a network's embedded DNS server in the
/// foreground (what a daemonless host keeps running, like podman's aardvark-dns).</summary>
public static partial class NetworkCommands
{
    public static void Register(RootCommand root)
    {
        var net = new Command("network", "manage networks (bridge networks with NAT, published ports and DNS)");
        net.Subcommands.Add(Create());
        net.Subcommands.Add(Ls());
        net.Subcommands.Add(Inspect());
        net.Subcommands.Add(Rm());
        net.Subcommands.Add(Prune());
        net.Subcommands.Add(Connect());
        net.Subcommands.Add(Disconnect());
        net.Subcommands.Add(Dns());
        net.Subcommands.Add(AttachNetns());
        net.Subcommands.Add(DetachNetns());
        root.Subcommands.Add(net);
    }

    static NetworkManager Manager(ParseResult p) => new(NetworkOptions.ForRoot(p.GetValue(BerthCli.DataRoot)!));

    static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (NetworkException e) { return Fail(e.Message, 1); }
        catch (Exception e) when (e is SyscallException or IOException or UnauthorizedAccessException or JsonException)
        { return Fail(e.Message, 125); }
    }

    static int Fail(string msg, int code)
    {
        Console.Error.WriteLine("berth: " + msg.Replace('\n', ' '));
        return code;
    }

    static Command Create()
    {
        var c = new Command("create", "create a network");
        var name = new Argument<string>("name");
        var driver = new Option<string>("--driver", "-d") { Description = "network driver (bridge)", DefaultValueFactory = _ => "bridge" };
        var subnet = new Option<string?>("--subnet") { Description = "subnet in CIDR form (default: a free one from the pools)" };
        var gateway = new Option<string?>("--gateway") { Description = "gateway address (default: the first host address)" };
        var isInternal = new Option<bool>("--internal") { Description = "no outbound NAT" };
        var labels = new Option<string[]>("--label") { Description = "KEY=VALUE", AllowMultipleArgumentsPerToken = false };
        var opts = new Option<string[]>("--opt", "-o") { Description = "driver options (com.docker.network.bridge.name, com.docker.network.driver.mtu)" };
        c.Arguments.Add(name);
        foreach (var o in new Option[] { driver, subnet, gateway, isInternal, labels, opts }) c.Options.Add(o);
        c.SetAction(p => Guard(() =>
        {
            if (p.GetValue(driver) != "bridge") throw NetworkException.Invalid($"network driver \"{p.GetValue(driver)}\" is not supported (bridge)");
            string? bridge = null;
            var mtu = 0;
            foreach (var kv in p.GetValue(opts) ?? [])
            {
                var (k, v) = Split(kv, "--opt");
                if (k == "com.docker.network.bridge.name") bridge = v;
                else if (k == "com.docker.network.driver.mtu" && int.TryParse(v, out var m) && m is >= 68 and <= 65535) mtu = m;
                else throw NetworkException.Invalid($"unsupported network option \"{kv}\"");
            }
            var rec = Manager(p).Create(new NetworkCreateRequest(p.GetValue(name)!)
            {
                Subnet = p.GetValue(subnet), Gateway = p.GetValue(gateway), Internal = p.GetValue(isInternal), Bridge = bridge, Mtu = mtu,
                Labels = (p.GetValue(labels) ?? []).Select(l => Split(l, "--label")).ToDictionary(x => x.Key, x => x.Value),
            });
            Console.Out.Write(rec.Id + "\n");
            return 0;
        }));
        return c;
    }

    static (string Key, string Value) Split(string kv, string flag)
    {
        var i = kv.IndexOf('=');
        if (i <= 0) throw NetworkException.Invalid($"invalid {flag} \"{kv}\": expected KEY=VALUE");
        return (kv[..i], kv[(i + 1)..]);
    }

    static Command Ls()
    {
        var c = new Command("ls", "list networks");
        c.Aliases.Add("list");
        var quiet = new Option<bool>("--quiet", "-q") { Description = "only ids" };
        c.Options.Add(quiet);
        c.SetAction(p => Guard(() =>
        {
            var list = Manager(p).List();
            var sb = new StringBuilder();
            if (p.GetValue(quiet)) foreach (var n in list) sb.Append(n.Id[..12]).Append('\n');
            else
            {
                sb.Append($"{"NETWORK ID",-15}{"NAME",-20}{"DRIVER",-10}SCOPE\n");
                foreach (var n in list) sb.Append($"{n.Id[..12],-15}{n.Name,-20}{n.Driver,-10}local\n");
            }
            Console.Out.Write(sb.ToString());
            return 0;
        }));
        return c;
    }

    static Command Inspect()
    {
        var c = new Command("inspect", "show networks as JSON (docker's shape)");
        var names = new Argument<string[]>("network") { Arity = ArgumentArity.OneOrMore };
        c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var found = new List<NetworkRecord>();
            var rc = 0;
            foreach (var n in p.GetValue(names)!)
            {
                try { found.Add(Find(mgr, n)); }
                catch (NetworkException e) { Fail(e.Message, 1); rc = 1; }
            }
            Console.Out.Write(InspectJson(found) + "\n");
            return rc;
        }));
        return c;
    }

    static NetworkRecord Find(NetworkManager mgr, string nameOrId) => NetworkFormat.Find(mgr, nameOrId);

    public static string InspectJson(IEnumerable<NetworkRecord> networks) => NetworkFormat.InspectJson(networks);

    static Command Rm()
    {
        var c = new Command("rm", "remove networks (they must have no containers)");
        c.Aliases.Add("remove");
        var names = new Argument<string[]>("network") { Arity = ArgumentArity.OneOrMore };
        c.Arguments.Add(names);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var rc = 0;
            foreach (var n in p.GetValue(names)!)
            {
                try
                {
                    mgr.Remove(Find(mgr, n).Name);
                    Console.Out.Write(n + "\n");
                }
                catch (NetworkException e) { Fail(e.Message, 1); rc = 1; }
            }
            return rc;
        }));
        return c;
    }

    static Command Prune()
    {
        var c = new Command("prune", "remove all networks without containers (not the default one)");
        var force = new Option<bool>("--force", "-f") { Description = "do not ask (berth never asks)" };
        c.Options.Add(force);
        c.SetAction(p => Guard(() =>
        {
            var removed = Manager(p).Prune();
            if (removed.Count > 0) Console.Out.Write("Deleted Networks:\n" + string.Concat(removed.Select(r => r + "\n")));
            return 0;
        }));
        return c;
    }

    /// <summary>Plumbing (hidden): connects a network namespace by path, as the engine does for a container.</summary>
    static Command AttachNetns()
    {
        var c = new Command("attach-netns", "connect a network namespace (by path) to a network; prints the address") { Hidden = true };
        var network = new Argument<string>("network");
        var netns = new Argument<string>("netns-path");
        var id = new Option<string>("--id") { Required = true, Description = "owner id (container id)" };
        var cname = new Option<string?>("--name") { Description = "DNS name" };
        var aliases = new Option<string[]>("--alias") { Description = "extra DNS names" };
        var ip = new Option<string?>("--ip") { Description = "static address" };
        var ports = new Option<string[]>("--publish", "-p") { Description = "[IP:][HOST:]CONTAINER[/PROTO]" };
        c.Arguments.Add(network); c.Arguments.Add(netns);
        foreach (var o in new Option[] { id, cname, aliases, ip, ports }) c.Options.Add(o);
        c.SetAction(p => Guard(() =>
        {
            IPAddress? addr = null;
            if (p.GetValue(ip) is { } s && !IPAddress.TryParse(s, out addr)) throw NetworkException.Invalid($"invalid --ip \"{s}\"");
            var mgr = Manager(p);
            var name = Find(mgr, p.GetValue(network)!).Name;
            var a = mgr.Attach(new AttachRequest(name, p.GetValue(id)!, p.GetValue(netns)!)
            {
                ContainerName = p.GetValue(cname) ?? "", Aliases = p.GetValue(aliases) ?? [], StaticAddress = addr,
                Ports = (p.GetValue(ports) ?? []).Select(PortSpec.Parse).ToList(),
            });
            Console.Out.Write($"{a.Address}/{a.PrefixLength} {string.Join(' ', a.Ports)}".TrimEnd() + "\n");
            return 0;
        }));
        return c;
    }

    static Command DetachNetns()
    {
        var c = new Command("detach-netns", "disconnect what attach-netns connected") { Hidden = true };
        var network = new Argument<string>("network");
        var id = new Option<string>("--id") { Required = true };
        c.Arguments.Add(network);
        c.Options.Add(id);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            mgr.Detach(Find(mgr, p.GetValue(network)!).Name, p.GetValue(id)!);
            return 0;
        }));
        return c;
    }

    static Command Dns()
    {
        var c = new Command("dns", "run a network's embedded DNS server in the foreground (until SIGTERM/SIGINT)") { Hidden = true };
        var name = new Argument<string>("network");
        var port = new Option<int>("--port") { Description = "port (53)", DefaultValueFactory = _ => 53 };
        c.Arguments.Add(name);
        c.Options.Add(port);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var server = mgr.StartDns(Find(mgr, p.GetValue(name)!).Name, port: p.GetValue(port));
            using var done = new ManualResetEventSlim();
            using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; done.Set(); });
            using var intr = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, ctx => { ctx.Cancel = true; done.Set(); });
            Console.Out.Write($"listening on {server.LocalEndPoint}\n");
            Console.Out.Flush();
            done.Wait();
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }));
        return c;
    }
}
