using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux.Netlink;

public sealed record LinkInfo(int Index, string Name, string? Kind, int Mtu, bool IsUp, int MasterIndex, byte[]? Mac);
public sealed record AddressInfo(int Index, IPAddress Address, int PrefixLength);
public sealed record RouteInfo(IPNetwork? Destination, IPAddress? Gateway, int OutIndex, int Table);

/// <summary>rtnetlink operations (what `ip link/addr/route` do) over one <see cref="NetlinkSocket"/>. Links are
/// named by the caller and resolved to an index first, so a missing link fails with its name.</summary>
public sealed class RtNetlink : IDisposable
{
    const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_SETLINK = 19,
        RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22, RTM_NEWROUTE = 24, RTM_DELROUTE = 25, RTM_GETROUTE = 26;
    const ushort NLM_F_REQUEST = 1, NLM_F_ACK = 4, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400, NLM_F_DUMP = 0x300;
    const ushort IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_MASTER = 10, IFLA_LINKINFO = 18,
        IFLA_NET_NS_FD = 28, IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, VETH_INFO_PEER = 1;
    const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_BROADCAST = 4, IFA_FLAGS = 8;
    const ushort RTA_DST = 1, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_TABLE = 15;
    const uint IFF_UP = 1, IFA_F_NODAD = 0x02;
    const byte RT_TABLE_MAIN = 254, RTPROT_BOOT = 3, RT_SCOPE_UNIVERSE = 0, RT_SCOPE_LINK = 253, RTN_UNICAST = 1;
    const ushort Create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    const ushort Change = NLM_F_REQUEST | NLM_F_ACK;

    readonly NetlinkSocket _sock;
    RtNetlink(NetlinkSocket sock) => _sock = sock;

    /// <summary>rtnetlink in the caller's (the host's) network namespace.</summary>
    public static RtNetlink Open() => new(NetlinkSocket.Open());

    /// <summary>rtnetlink inside the network namespace at <paramref name="netnsPath"/>.</summary>
    public static RtNetlink OpenIn(string netnsPath) => new(NetlinkSocket.OpenIn(netnsPath));

    string Where(string what) => _sock.Namespace == "host" ? what : $"{what} in {_sock.Namespace}";

    // ---- links ----

    public void CreateBridge(string name, int mtu = 0)
    {
        CheckName(name);
        var r = new NetlinkRequest(RTM_NEWLINK, Create);
        r.IfInfo(AF_UNSPEC, 0);
        r.AttrString(IFLA_IFNAME, name);
        if (mtu > 0) r.AttrU32(IFLA_MTU, (uint)mtu);
        var li = r.BeginNest(IFLA_LINKINFO);
        r.AttrString(IFLA_INFO_KIND, "bridge");
        r.EndNest(li);
        _sock.Execute(r, Where($"bridge \"{name}\""));
    }

    /// <summary>Creates a veth pair; the peer is created directly inside the network namespace at
    /// <paramref name="peerNetnsPath"/> when given (so it may be named eth0 at once).</summary>
    public void CreateVeth(string name, string peerName, string? peerNetnsPath = null, int mtu = 0)
    {
        CheckName(name);
        CheckName(peerName);
        using var ns = peerNetnsPath is null ? null : Sys.Open(peerNetnsPath, O_RDONLY);
        var r = new NetlinkRequest(RTM_NEWLINK, Create);
        r.IfInfo(AF_UNSPEC, 0);
        r.AttrString(IFLA_IFNAME, name);
        if (mtu > 0) r.AttrU32(IFLA_MTU, (uint)mtu);
        var li = r.BeginNest(IFLA_LINKINFO);
        r.AttrString(IFLA_INFO_KIND, "veth");
        var data = r.BeginNest(IFLA_INFO_DATA);
        var peer = r.BeginNest(VETH_INFO_PEER);
        r.IfInfo(AF_UNSPEC, 0);
        r.AttrString(IFLA_IFNAME, peerName);
        if (mtu > 0) r.AttrU32(IFLA_MTU, (uint)mtu);
        if (ns is not null) r.AttrU32(IFLA_NET_NS_FD, (uint)ns.Value);
        r.EndNest(peer);
        r.EndNest(data);
        r.EndNest(li);
        var target = peerNetnsPath is null ? $"veth \"{name}\" peer \"{peerName}\"" : $"veth \"{name}\" peer \"{peerName}\" in {peerNetnsPath}";
        _sock.Execute(r, Where(target));
    }

    public void DeleteLink(string name)
    {
        var index = IndexOf(name);
        var r = new NetlinkRequest(RTM_DELLINK, Change);
        r.IfInfo(AF_UNSPEC, index);
        _sock.Execute(r, Where($"link \"{name}\""));
    }

    /// <summary>Deletes the link if it exists; returns whether it did.</summary>
    public bool TryDeleteLink(string name)
    {
        try { DeleteLink(name); return true; }
        catch (NetlinkException e) when (e.IsNotFound) { return false; }
    }

    public void SetUp(string name, bool up = true)
    {
        var r = new NetlinkRequest(RTM_SETLINK, Change);
        r.IfInfo(AF_UNSPEC, IndexOf(name), up ? IFF_UP : 0, IFF_UP);
        _sock.Execute(r, Where($"link \"{name}\" {(up ? "up" : "down")}"));
    }

    public void SetMtu(string name, int mtu) => SetLinkU32(name, IFLA_MTU, (uint)mtu, $"mtu {mtu}");

    /// <summary>Enslaves the link to a bridge (<paramref name="master"/> null: releases it).</summary>
    public void SetMaster(string name, string? master) =>
        SetLinkU32(name, IFLA_MASTER, master is null ? 0u : (uint)IndexOf(master), master is null ? "nomaster" : $"master \"{master}\"");

    public void Rename(string name, string newName)
    {
        CheckName(newName);
        var r = new NetlinkRequest(RTM_SETLINK, Change);
        r.IfInfo(AF_UNSPEC, IndexOf(name));
        r.AttrString(IFLA_IFNAME, newName);
        _sock.Execute(r, Where($"link \"{name}\" rename to \"{newName}\""));
    }

    public void MoveToNetns(string name, string netnsPath)
    {
        using var ns = Sys.Open(netnsPath, O_RDONLY);
        var r = new NetlinkRequest(RTM_SETLINK, Change);
        r.IfInfo(AF_UNSPEC, IndexOf(name));
        r.AttrU32(IFLA_NET_NS_FD, (uint)ns.Value);
        _sock.Execute(r, Where($"link \"{name}\" to {netnsPath}"));
    }

    void SetLinkU32(string name, ushort attr, uint value, string what)
    {
        var r = new NetlinkRequest(RTM_SETLINK, Change);
        r.IfInfo(AF_UNSPEC, IndexOf(name));
        r.AttrU32(attr, value);
        _sock.Execute(r, Where($"link \"{name}\" {what}"));
    }

    public int IndexOf(string name) =>
        GetLink(name)?.Index ?? throw new NetlinkException("netlink RTM_GETLINK", Where($"link \"{name}\""), Errno.ENODEV, null);

    /// <summary>The link called <paramref name="name"/>, or null.</summary>
    public LinkInfo? GetLink(string name)
    {
        CheckName(name);
        var r = new NetlinkRequest(RTM_GETLINK, NLM_F_REQUEST);
        r.IfInfo(AF_UNSPEC, 0);
        r.AttrString(IFLA_IFNAME, name);
        try
        {
            var replies = _sock.Dump(r, Where($"link \"{name}\""));
            return replies.Count == 0 ? null : ParseLink(replies[0]);
        }
        catch (NetlinkException e) when (e.IsNotFound) { return null; }
    }

    public List<LinkInfo> GetLinks()
    {
        var r = new NetlinkRequest(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
        r.IfInfo(AF_UNSPEC, 0);
        return _sock.Dump(r, Where("links")).Select(ParseLink).ToList();
    }

    static LinkInfo ParseLink(byte[] p)
    {
        var index = BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(4));
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(p.AsSpan(8));
        var a = NetlinkAttributes.Parse(p.AsSpan(16));
        return new LinkInfo(index, a.String(IFLA_IFNAME) ?? "", a.Nested(IFLA_LINKINFO)?.String(IFLA_INFO_KIND),
            (int)(a.U32(IFLA_MTU) ?? 0), (flags & IFF_UP) != 0, (int)(a.U32(IFLA_MASTER) ?? 0), a.Bytes(IFLA_ADDRESS));
    }

    // ---- addresses ----

    public void AddAddress(string link, IPAddress address, int prefixLength) => ChangeAddress(RTM_NEWADDR, Create, link, address, prefixLength);
    public void DeleteAddress(string link, IPAddress address, int prefixLength) => ChangeAddress(RTM_DELADDR, Change, link, address, prefixLength);

    void ChangeAddress(ushort type, ushort flags, string link, IPAddress address, int prefixLength)
    {
        var v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        var r = new NetlinkRequest(type, flags);
        r.IfAddr((byte)(v6 ? AF_INET6 : AF_INET), (byte)prefixLength, RT_SCOPE_UNIVERSE, IndexOf(link));
        r.AttrAddress(IFA_LOCAL, address);
        r.AttrAddress(IFA_ADDRESS, address);
        if (!v6 && prefixLength < 31) r.AttrAddress(IFA_BROADCAST, Broadcast(address, prefixLength));
        if (v6 && type == RTM_NEWADDR) r.AttrU32(IFA_FLAGS, IFA_F_NODAD);
        _sock.Execute(r, Where($"address {address}/{prefixLength} on link \"{link}\""));
    }

    static IPAddress Broadcast(IPAddress a, int prefix)
    {
        var v = BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes());
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v | ~mask);
        return new IPAddress(b);
    }

    /// <summary>Addresses of one link (by name) or of all links (null).</summary>
    public List<AddressInfo> GetAddresses(string? link = null)
    {
        var index = link is null ? 0 : IndexOf(link);
        var r = new NetlinkRequest(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
        r.IfAddr(AF_UNSPEC, 0, 0, 0);
        var list = new List<AddressInfo>();
        foreach (var p in _sock.Dump(r, Where("addresses")))
        {
            var idx = BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(4));
            if (index != 0 && idx != index) continue;
            var a = NetlinkAttributes.Parse(p.AsSpan(8));
            var addr = a.Address(IFA_LOCAL) ?? a.Address(IFA_ADDRESS);
            if (addr is not null) list.Add(new AddressInfo(idx, addr, p[1]));
        }
        return list;
    }

    // ---- routes ----

    /// <summary>Adds a route in the main table: <paramref name="destination"/> null is the default route.</summary>
    public void AddRoute(IPNetwork? destination, IPAddress? gateway, string? link) =>
        ChangeRoute(RTM_NEWROUTE, Create, destination, gateway, link);

    public void DeleteRoute(IPNetwork? destination, IPAddress? gateway, string? link) =>
        ChangeRoute(RTM_DELROUTE, Change, destination, gateway, link);

    public void AddDefaultRoute(IPAddress gateway, string? link = null) => AddRoute(null, gateway, link);

    void ChangeRoute(ushort type, ushort flags, IPNetwork? destination, IPAddress? gateway, string? link)
    {
        var fam = (destination?.BaseAddress ?? gateway)?.AddressFamily == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;
        var r = new NetlinkRequest(type, flags);
        var dstLen = (byte)(destination?.PrefixLength ?? 0);
        r.RtMsg((byte)fam, dstLen, RT_TABLE_MAIN, RTPROT_BOOT, gateway is null ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE, RTN_UNICAST);
        if (destination is { } d && dstLen > 0) r.AttrAddress(RTA_DST, d.BaseAddress);
        if (gateway is not null) r.AttrAddress(RTA_GATEWAY, gateway);
        if (link is not null) r.AttrU32(RTA_OIF, (uint)IndexOf(link));
        var dst = destination?.ToString() ?? "default";
        _sock.Execute(r, Where($"route {dst}{(gateway is null ? "" : $" via {gateway}")}{(link is null ? "" : $" dev \"{link}\"")}"));
    }

    /// <summary>Routes of the main table for one family (AF_INET or AF_INET6).</summary>
    public List<RouteInfo> GetRoutes(int family = AF_INET)
    {
        var r = new NetlinkRequest(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
        r.RtMsg((byte)family, 0, 0, 0, 0, 0);
        var list = new List<RouteInfo>();
        foreach (var p in _sock.Dump(r, Where("routes")))
        {
            var a = NetlinkAttributes.Parse(p.AsSpan(12));
            var table = (int)(a.U32(RTA_TABLE) ?? p[4]);
            if (table != RT_TABLE_MAIN || p[0] != family) continue;
            var dstLen = p[1];
            IPNetwork? dst = a.Address(RTA_DST) is { } d ? new IPNetwork(d, dstLen) : dstLen == 0 ? null : null;
            list.Add(new RouteInfo(dst, a.Address(RTA_GATEWAY), (int)(a.U32(RTA_OIF) ?? 0), table));
        }
        return list;
    }

    static void CheckName(string name)
    {
        if (name.Length is 0 or > 15 || name.Contains('/') || name.Contains(' ') || name.Contains('\0') || name is "." or "..")
            throw new ArgumentException($"invalid interface name \"{name}\" (1-15 characters, no '/' or spaces)");
    }

    public void Dispose() => _sock.Dispose();
}

/// <summary>Kernel parameters under /proc/sys (of the caller's network namespace for net.*).</summary>
public static class Sysctl
{
    public static string Read(string key) => File.ReadAllText(PathOf(key)).Trim();

    public static void Write(string key, string value)
    {
        var path = PathOf(key);
        try { File.WriteAllText(path, value); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new IOException($"sysctl {key}={value}: {e.Message}", e); }
    }

    /// <summary>Writes only when the value differs (no needless writes to global settings).</summary>
    public static void Ensure(string key, string value)
    {
        if (Read(key) != value) Write(key, value);
    }

    static string PathOf(string key)
    {
        if (key.Contains("..")) throw new ArgumentException($"invalid sysctl key \"{key}\"");
        // "net.ipv4.ip_forward" or, when a component has dots (an interface name), "net/ipv4/conf/br.1/route_localnet".
        return "/proc/sys/" + (key.Contains('/') ? key : key.Replace('.', '/'));
    }
}
