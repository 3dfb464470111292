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
        foreach (var verb in new[] { "ps", "ls", "list" })
        {
            var c = new Command(verb, "list pods");
            var quiet = new Option<bool>("--quiet", "-q") { Description = "only ids" };
            var noTrunc = new Option<bool>("--no-trunc") { Description = "do not truncate ids" };
            var noHeading = new Option<bool>("--noheading") { Description = "do not print the header row" };
            var format = new Option<string?>("--format") { Description = "table | json | a Go template ({{.ID}} {{.Name}} {{.Status}} {{.Created}} {{.InfraID}} {{.NumberOfContainers}} {{.Networks}} {{.Labels}} {{.ContainerNames}}…)" };
            var filter = new Option<string[]>("--filter", "-f") { Description = "id=, name=REGEX, label=KEY[=VALUE], status=, network=, ctr-names=, ctr-ids=, ctr-status=, ctr-number=" };
            var sort = new Option<string?>("--sort") { Description = "created (default), id, name or number" };
            var latest = new Option<bool>("--latest", "-l") { Description = "only the pod created last" };
            var ctrIds = new Option<bool>("--ctr-ids") { Description = "show the ids of the pod's containers" };
            var ctrNames = new Option<bool>("--ctr-names") { Description = "show the names of the pod's containers" };
            var ctrStatus = new Option<bool>("--ctr-status") { Description = "show the states of the pod's containers" };
            var ns = new Option<bool>("--ns") { Description = "show the pod's cgroup and namespace columns" };
            foreach (var o in new Option[] { quiet, noTrunc, noHeading, format, filter, sort, latest, ctrIds, ctrNames, ctrStatus, ns }) c.Options.Add(o);
            c.SetAction(p => Guard(() =>
            {
                var list = PodFormat.Sort(PodFormat.Filter(Pods(p).List(), p.GetValue(filter) ?? []), p.GetValue(sort));
                if (p.GetValue(latest)) list = list.OrderByDescending(x => x.Created, StringComparer.Ordinal).Take(1).ToList();
                var trunc = !p.GetValue(noTrunc);
                if (p.GetValue(quiet))
                {
                    Console.Out.Write(string.Concat(list.Select(x => (trunc ? x.ShortId : x.Id) + "\n")));
                    return 0;
                }
                var f = p.GetValue(format);
                if (f == "json")
                {
                    Console.Out.Write(PodFormat.Json(list));
                    return 0;
                }
                // podman's default columns: the container columns asked for replace the count
                var cols = new List<string> { "{{.ID}}", "{{.Name}}", "{{.Status}}", "{{.Created}}", "{{.InfraID}}" };
                if (p.GetValue(ctrIds)) cols.Add("{{.ContainerIds}}");
                if (p.GetValue(ctrNames)) cols.Add("{{.ContainerNames}}");
                if (p.GetValue(ctrStatus)) cols.Add("{{.ContainerStatuses}}");
                if (p.GetValue(ns)) { cols.Add("{{.Cgroup}}"); cols.Add("{{.Namespace}}"); }
                if (!p.GetValue(ctrIds) && !p.GetValue(ctrNames) && !p.GetValue(ctrStatus)) cols.Add("{{.NumberOfContainers}}");
                if (string.IsNullOrEmpty(f) || f == "table") f = "table " + string.Join("\t", cols);
                var now = DateTime.UtcNow;
                string text;
                try { text = Berth.Engine.Formatting.TemplateOutput.Rows(list.Select(x => PodFormat.Row(x, now, trunc)).ToList(), f, f, PodFormat.Header); }
                catch (Berth.Engine.Formatting.TemplateException e) { throw EngineException.Invalid(e.Message); }
                if (p.GetValue(noHeading) && f.TrimStart().StartsWith("table", StringComparison.Ordinal)) text = text[(text.IndexOf('\n') + 1)..];
                Console.Out.Write(text);
                return 0;
            }));
            pod.Subcommands.Add(c);
        }
        {
            var c = new Command("inspect", "show pods' configuration and state (podman's shape)");
            var names = PodNames();
            var format = new Option<string?>("--format", "-f") { Description = "json or a Go template, e.g. {{.State}} {{.InfraConfig.Networks}} {{(index .NetworkSettings.Networks \"bridge\").IPAddress}}" };
            c.Arguments.Add(names); c.Options.Add(format);
            c.SetAction(p => Guard(() =>
            {
                var mgr = Pods(p);
                var found = new List<PodInspect>();
                var rc = 0;
                foreach (var n in p.GetValue(names)!)
                {
                    try { found.Add(PodFormat.Inspect(mgr.Get(n))); }
                    catch (EngineException e) { Fail(e.Message, 1); rc = 125; }
                }
                var f = p.GetValue(format);
                if (f is not null && f != "json")
                    foreach (var r in found)
                        Console.Out.Write(ContainerFormat.RenderInspect(System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.SerializeToUtf8Bytes(r, PodInspectJsonContext.Relaxed.PodInspect))!, f) + "\n");
                // podman 4 prints one pod as an object, several (or none) as an array
                else if (found.Count == 1)
                    Console.Out.Write(Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(found[0], PodInspectJsonContext.Relaxed.PodInspect)) + "\n");
                else
                    Console.Out.Write(Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(found, PodInspectJsonContext.Relaxed.ListPodInspect)) + "\n");
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
