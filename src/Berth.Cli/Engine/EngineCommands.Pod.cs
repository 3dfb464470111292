using System.CommandLine;
using System.Text;
using System.Text.Json;
using Berth.Engine;
using Berth.Engine.Containers;
using Berth.Engine.Pods;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`berth pod create|ps|ls|inspect|start|stop|restart|kill|rm|exists`, as podman's.</summary>
    static Command PodCommand()
    {
        var pod = new Command("pod", "manage pods (containers sharing network, IPC and UTS namespaces)");
        PodManager Pods(ParseResult p) => new(Manager(p));
        Argument<string[]> PodNames() => new("pod") { Arity = ArgumentArity.OneOrMore, Description = "pod names or ids" };
        {
            var c = new Command("create", "create a pod");
            var name = new Option<string?>("--name") { Description = "the pod's name" };
            var hostname = new Option<string?>("--hostname") { Description = "the pod's hostname (default: its name)" };
            var label = new Option<string[]>("--label", "-l") { Description = "set a label (KEY=VALUE)" };
            // The pod's infra holds the network namespace its containers share, connected as podman's is.
            var network = new Option<string?>("--network", "--net") { Description = "bridge (default), a network's name, none (loopback only) or host" };
            var publish = new Option<string[]>("--publish", "-p") { Description = "publish a port of the pod: [IP:][HOST:]CONTAINER[/tcp|udp]" };
            var ip = new Option<string?>("--ip") { Description = "the pod's IPv4 address on its network" };
            var addHost = new Option<string[]>("--add-host") { Description = "add NAME:IP to the /etc/hosts of the pod's containers" };
            var dns = new Option<string[]>("--dns") { Description = "DNS servers of the pod's containers" };
            foreach (var o in new Option[] { name, hostname, label, network, publish, ip, addHost, dns }) c.Options.Add(o);
            c.SetAction(p => Guard(() =>
            {
                var net = PodNetworking.Prepare(p.GetValue(BerthCli.DataRoot)!, p.GetValue(network), p.GetValue(publish) ?? [], p.GetValue(ip),
                    p.GetValue(addHost) ?? [], p.GetValue(dns) ?? []);
                var labels = new Dictionary<string, string>();
                foreach (var l in p.GetValue(label) ?? [])
                {
                    var kv = l.Split('=', 2);
                    labels[kv[0]] = kv.Length > 1 ? kv[1] : "";
                }
                Console.Out.Write(Pods(p).Create(p.GetValue(name), p.GetValue(hostname), labels, net).Id + "\n");
                return 0;
            }));
            pod.Subcommands.Add(c);
        }
        foreach (var verb in new[] { "ps", "ls" })
        {
            var c = new Command(verb, "list pods");
            var quiet = new Option<bool>("--quiet", "-q") { Description = "only ids" };
            var noTrunc = new Option<bool>("--no-trunc") { Description = "do not truncate ids" };
            var format = new Option<string?>("--format") { Description = "table | json | a Go template ({{.ID}} {{.Name}} {{.Status}} {{.NumberOfContainers}}…)" };
            c.Options.Add(quiet); c.Options.Add(noTrunc); c.Options.Add(format);
            c.SetAction(p => Guard(() =>
            {
                var list = Pods(p).List();
                var trunc = !p.GetValue(noTrunc);
                if (p.GetValue(quiet))
                {
                    Console.Out.Write(string.Concat(list.Select(x => (trunc ? x.ShortId : x.Id) + "\n")));
                    return 0;
                }
                var now = DateTime.UtcNow;
                var rows = list.Select(x => new Dictionary<string, string>
                {
                    ["ID"] = trunc ? x.ShortId : x.Id,
                    ["Name"] = x.Name,
                    ["Status"] = x.State,
                    ["Created"] = Berth.Images.Units.HumanDuration(now - ContainerFormat.ParseTime(x.Created)) + " ago",
                    ["NumberOfContainers"] = x.NumContainers.ToString(),
                    ["Hostname"] = x.Hostname,
                    ["Labels"] = string.Join(',', x.Labels.OrderBy(k => k.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")),
                }).ToList();
                var f = p.GetValue(format);
                if (string.IsNullOrEmpty(f) || f == "table") f = "table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.NumberOfContainers}}";
                var text = ContainerFormat.RenderPs(rows, f);
                if (f.StartsWith("table", StringComparison.Ordinal))
                {
                    // Headers as podman prints them.
                    var nl = text.IndexOf('\n');
                    var head = text[..nl].Replace("CONTAINER ID", "POD ID").Replace("NUMBEROFCONTAINERS", "# OF CONTAINERS");
                    text = head + text[nl..];
                }
                Console.Out.Write(text);
                return 0;
            }));
            pod.Subcommands.Add(c);
        }
        {
            var c = new Command("inspect", "show pods' configuration and state");
            var names = PodNames();
            var format = new Option<string?>("--format", "-f") { Description = "a Go template, e.g. {{.State}}" };
            c.Arguments.Add(names); c.Options.Add(format);
            c.SetAction(p => Guard(() =>
            {
                var mgr = Pods(p);
                var found = new List<PodRecord>();
                var rc = 0;
                foreach (var n in p.GetValue(names)!)
                {
                    try { var r = mgr.Get(n); r.Infra = null; found.Add(r); }
                    catch (EngineException e) { Fail(e.Message, 1); rc = 125; }
                }
                if (p.GetValue(format) is { } f)
                    foreach (var r in found)
                        Console.Out.Write(ContainerFormat.RenderInspect(System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.SerializeToUtf8Bytes(r, PodJsonContext.Default.PodRecord))!, f) + "\n");
                else
                    Console.Out.Write(Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(found, PodJsonContext.Default.ListPodRecord)) + "\n");
                return rc;
            }));
            pod.Subcommands.Add(c);
        }
        {
            var c = new Command("start", "start pods (the infra, then their containers)");
            var names = PodNames();
            c.Arguments.Add(names);
            c.SetAction(p => Guard(() => { var m = Pods(p); return ForEach(p.GetValue(names)!, n => m.Start(n)); }));
            pod.Subcommands.Add(c);
        }
        foreach (var verb in new[] { "stop", "restart" })
        {
            var c = new Command(verb, verb == "stop" ? "stop pods (their containers, then the infra)" : "restart pods");
            var time = new Option<int?>("--time", "-t") { Description = "seconds to wait before killing the containers" };
            var names = PodNames();
            c.Options.Add(time); c.Arguments.Add(names);
            c.SetAction(p => Guard(() =>
            {
                var m = Pods(p);
                return ForEach(p.GetValue(names)!, n =>
                {
                    m.Stop(n, p.GetValue(time));
                    if (verb == "restart") m.Start(n);
                });
            }));
            pod.Subcommands.Add(c);
        }
        {
            var c = new Command("kill", "send a signal to the containers of pods (default SIGKILL)");
            var signal = new Option<string>("--signal", "-s") { DefaultValueFactory = _ => "SIGKILL", Description = "the signal" };
            var names = PodNames();
            c.Options.Add(signal); c.Arguments.Add(names);
            c.SetAction(p => Guard(() =>
            {
                try { Berth.Linux.Signals.Parse(p.GetValue(signal)!); }
                catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
                var m = Pods(p);
                return ForEach(p.GetValue(names)!, n => m.Kill(n, p.GetValue(signal)!));
            }));
            pod.Subcommands.Add(c);
        }
        {
            var c = new Command("rm", "remove pods (with -f, their running containers too)");
            var force = new Option<bool>("--force", "-f") { Description = "stop and remove running containers of the pod" };
            var names = PodNames();
            c.Options.Add(force); c.Arguments.Add(names);
            c.SetAction(p => Guard(() => { var m = Pods(p); return ForEach(p.GetValue(names)!, n => m.Remove(n, p.GetValue(force))); }));
            pod.Subcommands.Add(c);
        }
        {
            var c = new Command("exists", "exit 0 if the pod exists, 1 if not");
            var name = new Argument<string>("pod");
            c.Arguments.Add(name);
            c.SetAction(p => Guard(() => Pods(p).Exists(p.GetValue(name)!) ? 0 : 1));
            pod.Subcommands.Add(c);
        }
        return pod;
    }
}
