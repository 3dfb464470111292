using System.Net;
using System.Net.Sockets;

namespace Berth.Engine.Networking;

/// <summary>Parses <c>-p [IP:][HOST:]CONTAINER[/tcp|udp]</c> as docker does; a missing or 0 host port is chosen
/// at attach time from the kernel's ephemeral range (what <c>-P</c> asks for every exposed port).</summary>
public static class PortSpec
{
    public static PortMapping Parse(string spec)
    {
        var all = ParseAll(spec);
        if (all.Count != 1) throw Bad(spec, "port ranges are not supported here");
        return all[0];
    }

    /// <summary>One -p value, ranges included: <c>8000-8002:80-82</c> (equal lengths) or <c>80-82</c> (host ports chosen).</summary>
    public static List<PortMapping> ParseAll(string spec)
    {
        var s = spec.Trim();
        var proto = "tcp";
        var slash = s.LastIndexOf('/');
        if (slash >= 0)
        {
            proto = s[(slash + 1)..].ToLowerInvariant();
            s = s[..slash];
            if (proto is not ("tcp" or "udp")) throw Bad(spec, $"unsupported protocol \"{proto}\" (tcp or udp)");
        }
        if (s.StartsWith('[')) throw Bad(spec, "IPv6 host addresses are not supported");
        var parts = s.Split(':');
        string ip = "", host = "", container;
        switch (parts.Length)
        {
            case 1: container = parts[0]; break;
            case 2: host = parts[0]; container = parts[1]; break;
            case 3: ip = parts[0]; host = parts[1]; container = parts[2]; break;
            default: throw Bad(spec, "expected [IP:][HOST:]CONTAINER[/PROTOCOL]");
        }
        if (ip != "" && (ip.Split('.').Length != 4 || !IPAddress.TryParse(ip, out var addr) || addr.AddressFamily != AddressFamily.InterNetwork))
            throw Bad(spec, $"invalid host address \"{ip}\"");
        var (cFirst, cLast) = Range(spec, container, "container port", allowZero: false);
        var (hFirst, hLast) = host == "" ? (0, 0) : Range(spec, host, "host port", allowZero: true);
        var n = cLast - cFirst + 1;
        if (host != "" && hLast - hFirst + 1 != n)
            throw Bad(spec, "the host port range and the container port range must have the same length");
        var list = new List<PortMapping>(n);
        for (var i = 0; i < n; i++)
            list.Add(new PortMapping(ip == "" ? "0.0.0.0" : ip, hFirst == 0 ? 0 : hFirst + i, cFirst + i, proto));
        return list;
    }

    static (int First, int Last) Range(string spec, string s, string what, bool allowZero)
    {
        var dash = s.IndexOf('-');
        if (dash < 0) { var p = Port(spec, s, what, allowZero); return (p, p); }
        var a = Port(spec, s[..dash], what, false);
        var b = Port(spec, s[(dash + 1)..], what, false);
        if (b < a) throw Bad(spec, $"invalid {what} range \"{s}\"");
        return (a, b);
    }

    static int Port(string spec, string s, string what, bool allowZero)
    {
        if (!int.TryParse(s, out var p) || p < (allowZero ? 0 : 1) || p > 65535) throw Bad(spec, $"invalid {what} \"{s}\"");
        return p;
    }

    static NetworkException Bad(string spec, string why) => NetworkException.Invalid($"invalid port mapping \"{spec}\": {why}");

    /// <summary>A free host port for the protocol on the address, from the kernel's ephemeral range.</summary>
    public static int FreePort(string hostIp, string protocol)
    {
        using var s = Open(protocol);
        s.Bind(new IPEndPoint(IPAddress.Parse(hostIp), 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>Whether a host program already holds the port (a DNAT rule would silently hide it).</summary>
    public static bool InUseOnHost(PortMapping p)
    {
        try
        {
            using var s = Open(p.Protocol);
            // TCP: SO_REUSEADDR so that connections in TIME_WAIT do not count; a listener still does.
            if (p.Protocol == "tcp") s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(new IPEndPoint(IPAddress.Parse(p.HostIp), p.HostPort));
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse) { return true; }
        catch (SocketException) { return false; }
    }

    static Socket Open(string protocol) => protocol == "udp"
        ? new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)
        : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public static bool Conflicts(PortMapping a, PortMapping b) =>
        a.Protocol == b.Protocol && a.HostPort == b.HostPort
        && (a.HostIp == b.HostIp || a.HostIp == "0.0.0.0" || b.HostIp == "0.0.0.0");
}
