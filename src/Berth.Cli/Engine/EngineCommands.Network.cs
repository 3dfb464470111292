using System.CommandLine;
using Berth.Engine;
using Berth.Engine.Containers;
using Berth.Engine.Networking;

namespace Berth.Cli.Engine;

/// <summary>run/create's network flags, turned into docker's request fields (HostConfig.PortBindings,
/// PublishAllPorts, Dns*, ExtraHosts; Config.ExposedPorts; NetworkingConfig.EndpointsConfig[NET]); the
/// engine (ContainerNetworking) validates and applies them.</summary>
public static unsafe partial class EngineCommands
{
    static string[] NetworkValueOptions => ["-p", "--publish", "--expose", "--network-alias", "--ip", "--dns", "--dns-search", "--dns-option", "--add-host"];
    static string[] NetworkFlagOptions => ["-P", "--publish-all"];

    sealed class NetworkRunOptions
    {
        readonly Option<string[]> _publish = new("--publish", "-p") { Description = "publish a container's port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp] (ranges: 8000-8001:80-81)" };
        readonly Option<bool> _publishAll = new("--publish-all", "-P") { Description = "publish every exposed port (the image's and --expose's) on a free host port" };
        readonly Option<string[]> _expose = new("--expose") { Description = "expose a port (PORT[/tcp|udp], or a range)" };
        readonly Option<string[]> _alias = new("--network-alias") { Description = "another DNS name of the container on its (user-defined) network" };
        readonly Option<string?> _ip = new("--ip") { Description = "IPv4 address on a user-defined network" };
        readonly Option<string[]> _dns = new("--dns") { Description = "a DNS server for the container's resolv.conf" };
        readonly Option<string[]> _dnsSearch = new("--dns-search") { Description = "a DNS search domain" };
        readonly Option<string[]> _dnsOption = new("--dns-option") { Description = "a resolv.conf option (e.g. ndots:2)" };
        readonly Option<string[]> _addHost = new("--add-host") { Description = "an /etc/hosts entry HOST:IP (host-gateway = the network's gateway)" };

        public NetworkRunOptions(Command c)
        {
            foreach (var o in new Option[] { _publish, _publishAll, _expose, _alias, _ip, _dns, _dnsSearch, _dnsOption, _addHost }) c.Options.Add(o);
        }

        public void Apply(ParseResult p, ContainerRecord rec)
        {
            var hc = rec.HostConfig;
            hc.PortBindings = ContainerNetworking.ParsePublish(p.GetValue(_publish) ?? []);
            hc.PublishAllPorts = p.GetValue(_publishAll);
            foreach (var e in p.GetValue(_expose) ?? [])
            {
                var parts = e.Split('/', 2);
                var proto = parts.Length > 1 ? "/" + parts[1] : "";
                var range = parts[0].Split('-', 2);
                if (!int.TryParse(range[0], out var first) || !int.TryParse(range.Length > 1 ? range[1] : range[0], out var last) || last < first || last - first > 65535)
                    throw EngineException.Invalid($"invalid --expose \"{e}\": expected PORT[-PORT][/tcp|udp]");
                for (var port = first; port <= last; port++)
                    (rec.Config.ExposedPorts ??= [])[ContainerNetworking.NormalizePortKey(port + proto)] = new Berth.Oci.Image.EmptyObject();
            }
            hc.Dns = [.. p.GetValue(_dns) ?? []];
            hc.DnsSearch = [.. p.GetValue(_dnsSearch) ?? []];
            hc.DnsOptions = [.. p.GetValue(_dnsOption) ?? []];
            hc.ExtraHosts = [.. p.GetValue(_addHost) ?? []];
            var aliases = p.GetValue(_alias) ?? [];
            var ip = p.GetValue(_ip);
            if (aliases.Length > 0 || ip is not null)
            {
                var ep = new EndpointSettings { Aliases = aliases.Length > 0 ? [.. aliases] : null };
                if (ip is not null) ep.IPAMConfig = new EndpointIpamConfig { IPv4Address = ip };
                var net = hc.NetworkMode is "" or "default" ? "bridge" : hc.NetworkMode;
                rec.NetworkingConfig = new NetworkingConfig { EndpointsConfig = { [net] = ep } };
            }
        }
    }
}
