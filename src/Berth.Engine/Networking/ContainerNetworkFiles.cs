using System.Net;
using System.Text;

namespace Berth.Engine.Networking;

/// <summary>The /etc/resolv.conf and /etc/hosts a container gets, with Docker's rules: <c>--dns</c> wins; on a
/// network with embedded DNS the gateway's server is the nameserver; otherwise the host's servers minus
/// loopback ones (unreachable from the container's namespace), falling back to Docker's public defaults.</summary>
public static class ContainerNetworkFiles
{
    public static readonly string[] FallbackNameservers = ["8.8.8.8", "8.8.4.4"];

    public static string ResolvConf(IPAddress? embeddedDns, IReadOnlyList<string>? dns = null, IReadOnlyList<string>? search = null,
        IReadOnlyList<string>? options = null, string hostResolvConf = "/etc/resolv.conf")
    {
        var hostServers = new List<string>();
        var hostSearch = new List<string>();
        var hostOptions = new List<string>();
        if (File.Exists(hostResolvConf))
            foreach (var line in File.ReadLines(hostResolvConf))
            {
                var f = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 2 || f[0].StartsWith('#') || f[0].StartsWith(';')) continue;
                switch (f[0])
                {
                    case "nameserver": hostServers.Add(f[1]); break;
                    case "search": hostSearch.Clear(); hostSearch.AddRange(f[1..]); break;
                    case "domain": hostSearch.Clear(); hostSearch.Add(f[1]); break;
                    case "options": hostOptions.AddRange(f[1..]); break;
                }
            }
        foreach (var d in dns ?? [])
            if (!IPAddress.TryParse(d, out _)) throw NetworkException.Invalid($"invalid --dns address \"{d}\"");

        List<string> servers;
        if (dns is { Count: > 0 }) servers = [.. dns];
        else if (embeddedDns is not null) servers = [embeddedDns.ToString()];
        else
        {
            servers = hostServers.Where(s => IPAddress.TryParse(s, out var ip) && !IPAddress.IsLoopback(ip)).ToList();
            if (servers.Count == 0) servers = [.. FallbackNameservers];
        }
        var sb = new StringBuilder();
        var srch = search is { Count: > 0 } ? search : hostSearch;
        if (srch.Count > 0) sb.Append("search ").AppendJoin(' ', srch).Append('\n');
        foreach (var s in servers) sb.Append("nameserver ").Append(s).Append('\n');
        var opts = options is { Count: > 0 } ? options : hostOptions;
        if (opts.Count > 0) sb.Append("options ").AppendJoin(' ', opts).Append('\n');
        return sb.ToString();
    }

    /// <summary>Parses <c>--add-host NAME:IP</c> (or NAME=IP); <c>host-gateway</c> stands for <paramref name="hostGateway"/>.</summary>
    public static (string Name, IPAddress Address) ParseAddHost(string spec, IPAddress? hostGateway)
    {
        var sep = spec.IndexOfAny([':', '=']);
        if (sep <= 0) throw NetworkException.Invalid($"invalid --add-host \"{spec}\": expected NAME:IP");
        var name = spec[..sep];
        var value = spec[(sep + 1)..].Trim('[', ']');
        if (value == "host-gateway")
            return (name, hostGateway ?? throw NetworkException.Invalid($"--add-host \"{spec}\": no host gateway on this network"));
        if (!IPAddress.TryParse(value, out var ip) || (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && value.Split('.').Length != 4))
            throw NetworkException.Invalid($"invalid --add-host \"{spec}\": \"{value}\" is not an IP address");
        return (name, ip);
    }

    public static string Hosts(string hostname, IPAddress? address, IEnumerable<(string Name, IPAddress Address)> extra)
    {
        var sb = new StringBuilder();
        sb.Append("127.0.0.1\tlocalhost\n");
        sb.Append("::1\tlocalhost ip6-localhost ip6-loopback\n");
        sb.Append("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
        foreach (var (name, ip) in extra) sb.Append(ip).Append('\t').Append(name).Append('\n');
        if (address is not null) sb.Append(address).Append('\t').Append(hostname).Append('\n');
        return sb.ToString();
    }
}
