using System.Net;
using System.Security.Cryptography;
using System.Text;
using Berth.Linux;
using Berth.Linux.Netlink;

namespace Berth.Engine.Networking;

public sealed class NetworkOptions
{
    /// <summary>Where network state lives (DIR/networks/NAME.json); e.g. /var/lib/berth.</summary>
    public required string DataDir { get; init; }
    /// <summary>Name of Berth's iptables chains (PREFIX, PREFIX-POSTROUTING).</summary>
    public string ChainPrefix { get; init; } = "BERTH";
    /// <summary>Subnets handed to new networks without --subnet, in order (Docker's default pools).</summary>
    public IReadOnlyList<Subnet> Pools { get; init; } = DefaultPools();
    public string DefaultNetwork { get; init; } = "bridge";
    public string DefaultBridge { get; init; } = "berth0";
    /// <summary>Docker's default bridge subnet; if the host already uses it (a docker0), the next free pool is taken.</summary>
    public string DefaultSubnet { get; init; } = "172.17.0.0/16";

    /// <summary>The options of a data root: defaults, overridden by DIR/network-options.json if present
    /// (<c>{"defaultBridge": "bt0", "defaultSubnet": "10.1.2.0/24", "chainPrefix": "BT", "pools": ["10.1.3.0/24"]}</c>),
    /// so a test (or a second Berth on the host) can use its own bridge, subnets and iptables chains.</summary>
    public static NetworkOptions ForRoot(string dataDir)
    {
        var path = Path.Combine(dataDir, "network-options.json");
        if (!File.Exists(path)) return new NetworkOptions { DataDir = dataDir };
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(path));
            var r = doc.RootElement;
            string? Str(string k) => r.TryGetProperty(k, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() : null;
            var d = new NetworkOptions { DataDir = dataDir };
            return new NetworkOptions
            {
                DataDir = dataDir,
                DefaultBridge = Str("defaultBridge") ?? d.DefaultBridge,
                DefaultSubnet = Str("defaultSubnet") ?? d.DefaultSubnet,
                ChainPrefix = Str("chainPrefix") ?? d.ChainPrefix,
                Pools = r.TryGetProperty("pools", out var pools) && pools.ValueKind == System.Text.Json.JsonValueKind.Array
                    ? pools.EnumerateArray().Select(e => Subnet.Parse(e.GetString() ?? "")).ToList() : d.Pools,
            };
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or ArgumentException or InvalidOperationException)
        {
            throw NetworkException.Invalid($"{path}: {e.Message}");
        }
    }

    public static List<Subnet> DefaultPools()
    {
        var list = new List<Subnet>();
        for (var b = 18; b <= 31; b++) list.Add(Subnet.Parse($"172.{b}.0.0/16"));
        for (var c = 0; c < 256; c += 16) list.Add(Subnet.Parse($"192.168.{c}.0/20"));
        return list;
    }
}

public sealed record NetworkCreateRequest(string Name)
{
    public string? Subnet { get; init; }
    public string? Gateway { get; init; }
    public string? Bridge { get; init; }
    public bool Internal { get; init; }
    /// <summary>Embedded DNS for container names (user-defined networks have it, the default bridge does not).</summary>
    public bool? Dns { get; init; }
    public int Mtu { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
}

public sealed record AttachRequest(string Network, string ContainerId, string NetnsPath)
{
    public string ContainerName { get; init; } = "";
    public IReadOnlyList<string> Aliases { get; init; } = [];
    public string InterfaceName { get; init; } = "eth0";
    public IPAddress? StaticAddress { get; init; }
    public IReadOnlyList<PortMapping> Ports { get; init; } = [];
    /// <summary>Install the default route through this network's gateway (the container's first network).</summary>
    public bool DefaultRoute { get; init; } = true;
}

/// <summary>What the engine records and shows (inspect's NetworkSettings) and uses for resolv.conf.</summary>
public sealed record Attachment(string Network, string ContainerId, IPAddress Address, int PrefixLength, IPAddress Gateway,
    string Mac, string InterfaceName, string HostVeth, IReadOnlyList<PortMapping> Ports, IPAddress? DnsServer);

/// <summary>The native bridge driver: a network is a Linux bridge with the gateway address, a subnet managed by
/// <see cref="Ipam"/>, and Berth's netfilter rules (<see cref="Firewall"/>); attaching a container makes a veth
/// pair whose inner end is created directly in the container's network namespace.</summary>
public sealed class NetworkManager
{
    readonly NetworkOptions _opt;
    public NetworkStore Store { get; }
    public Firewall Firewall { get; }

    public NetworkManager(NetworkOptions options)
    {
        _opt = options;
        Store = new NetworkStore(options.DataDir);
        Firewall = new Firewall(options.ChainPrefix);
    }

    public List<NetworkRecord> List() => Store.List();
    public NetworkRecord Inspect(string name) => Store.Get(name);

    /// <summary>The default bridge network, created on first use.</summary>
    public NetworkRecord EnsureDefault()
    {
        if (Store.TryGet(_opt.DefaultNetwork) is { } n) return n;
        try
        {
            // predefined, as docker's "bridge": no create event
            return Create(new NetworkCreateRequest(_opt.DefaultNetwork) { Bridge = _opt.DefaultBridge, Subnet = "auto-default", Dns = false }, emitEvent: false);
        }
        catch (NetworkException e) when (e.Kind == NetworkErrorKind.AlreadyExists && Store.TryGet(_opt.DefaultNetwork) is { } raced) { return raced; }
    }

    public NetworkRecord Create(NetworkCreateRequest req) => Create(req, emitEvent: true);

    NetworkRecord Create(NetworkCreateRequest req, bool emitEvent)
    {
        NetworkStore.ValidateName(req.Name);
        using var all = Store.LockAll();
        if (Store.TryGet(req.Name) is not null) throw NetworkException.Exists($"network \"{req.Name}\" already exists");
        var others = Store.List();
        var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();
        var bridge = req.Bridge ?? "br-" + id[..12];
        if (bridge.Length > 15) throw NetworkException.Invalid($"bridge name \"{bridge}\" is longer than 15 characters");
        if (others.FirstOrDefault(o => o.Bridge == bridge) is { } sameBridge)
            throw NetworkException.Exists($"bridge \"{bridge}\" is already used by network \"{sameBridge.Name}\"");

        using var nl = RtNetlink.Open();
        if (nl.GetLink(bridge) is { } existing)
        {
            // The default network's own bridge with no record: a create killed half-way (bridge made, record not
            // yet written). It is Berth's, so take it down and start over; any other interface is the host's.
            if (req.Name != _opt.DefaultNetwork || bridge != _opt.DefaultBridge || existing.Kind != "bridge")
                throw NetworkException.Exists($"network \"{req.Name}\": interface \"{bridge}\" already exists on the host");
            RemoveStaleBridge(nl, bridge);
        }

        Subnet subnet;
        var taken = others.Select(o => o.ParsedSubnet).ToList();
        if (req.Subnet is null or "auto-default")
        {
            var hostTaken = HostSubnets(nl);
            var pool = req.Subnet is null ? _opt.Pools : [Subnet.Parse(_opt.DefaultSubnet), .. _opt.Pools];
            subnet = Ipam.ChooseSubnet(pool, taken.Concat(hostTaken));
        }
        else
        {
            subnet = Subnet.Parse(req.Subnet);
            if (others.FirstOrDefault(o => o.ParsedSubnet.Overlaps(subnet)) is { } clash)
                throw NetworkException.Exists($"subnet {subnet} overlaps network \"{clash.Name}\" ({clash.Subnet})");
        }
        IPAddress gateway;
        if (req.Gateway is null) gateway = subnet.At(1);
        else if (!IPAddress.TryParse(req.Gateway, out gateway!) || !subnet.IsHost(gateway))
            throw NetworkException.Invalid($"gateway \"{req.Gateway}\" is not a host address in subnet {subnet}");

        var record = new NetworkRecord
        {
            Name = req.Name, Id = id, Bridge = bridge, Subnet = subnet.ToString(), Gateway = gateway.ToString(),
            Internal = req.Internal, Dns = req.Dns ?? true, Mtu = req.Mtu, Labels = req.Labels ?? [],
            Created = DateTimeOffset.UtcNow,
        };
        try
        {
            SetUpKernel(nl, record);
            Store.Save(record);
        }
        catch (Exception e)
        {
            var cleanup = Try(() => Firewall.RemoveNetwork(bridge, record.Subnet, record.Internal))
                + Try(() => nl.TryDeleteLink(bridge));
            throw Wrap(e, $"create network \"{req.Name}\"", cleanup);
        }
        if (emitEvent) Events.ObjectEvents.Network(_opt.DataDir, "create", record.Id, record.Name, record.Driver);
        return record;
    }

    /// <summary>Bridge, gateway address, sysctls and rules of a network. Idempotent: what exists is kept.</summary>
    void SetUpKernel(RtNetlink nl, NetworkRecord n)
    {
        var subnet = n.ParsedSubnet;
        if (nl.GetLink(n.Bridge) is null) nl.CreateBridge(n.Bridge, n.Mtu);
        if (!nl.GetAddresses(n.Bridge).Any(a => a.Address.Equals(n.GatewayAddress)))
            nl.AddAddress(n.Bridge, n.GatewayAddress, subnet.PrefixLength);
        nl.SetUp(n.Bridge);
        Sysctl.Ensure("net.ipv4.ip_forward", "1");
        // Lets DNAT from 127.0.0.1 reach containers (OUTPUT DNAT, then routed out of the bridge).
        Sysctl.Write($"net/ipv4/conf/{n.Bridge}/route_localnet", "1");
        Firewall.AddNetwork(n.Bridge, n.Subnet, n.Internal);
    }

    /// <summary>After a host reboot (bridges and rules gone, state on disk kept): re-creates every network's
    /// bridge and rules, and drops endpoints whose network namespace no longer exists (their containers are
    /// gone with the reboot), releasing their addresses. Returns the container ids dropped. What
    /// `berth system boot` calls.</summary>
    public List<string> Restore()
    {
        var dropped = new List<string>();
        using var nl = RtNetlink.Open();
        foreach (var n in Store.List())
        {
            var stale = Store.Update(n.Name, r =>
            {
                var gone = r.Endpoints.Values.Where(e => !File.Exists(e.NetnsPath) || nl.GetLink(e.HostVeth) is null).ToList();
                foreach (var e in gone) r.Endpoints.Remove(e.ContainerId);
                return gone;
            });
            foreach (var e in stale)
            {
                Try(() => Firewall.RemovePorts(n.Bridge, e.Address, e.Ports));
                Try(() => nl.TryDeleteLink(e.HostVeth));
                dropped.Add(e.ContainerId);
            }
            SetUpKernel(nl, n);
        }
        return dropped;
    }

    void RemoveStaleBridge(RtNetlink nl, string bridge)
    {
        foreach (var a in nl.GetAddresses(bridge))
            if (a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && a.PrefixLength < 32)
            {
                var subnet = new Subnet(Subnet.ToUInt(a.Address) & (uint.MaxValue << (32 - a.PrefixLength)), a.PrefixLength);
                Firewall.RemoveNetwork(bridge, subnet.ToString(), isInternal: false);
            }
        nl.TryDeleteLink(bridge);
    }

    static List<Subnet> HostSubnets(RtNetlink nl)
    {
        var list = new List<Subnet>();
        foreach (var a in nl.GetAddresses())
            if (a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && a.PrefixLength < 32)
                list.Add(new Subnet(Subnet.ToUInt(a.Address) & (uint.MaxValue << (32 - a.PrefixLength)), a.PrefixLength));
        foreach (var r in nl.GetRoutes())
            if (r.Destination is { } d && d.PrefixLength is > 0 and < 32) list.Add(Subnet.Parse(d.ToString()));
        return list;
    }

    /// <summary>Removes a network with no containers left: its rules, its bridge, its state.</summary>
    public void Remove(string name)
    {
        using var all = Store.LockAll();
        using var l = Store.Lock(name);
        var n = Store.Get(name);
        if (n.Endpoints.Count > 0)
            throw NetworkException.Precondition($"network \"{name}\" has active endpoints ({string.Join(", ", n.Endpoints.Values.Select(e => e.ContainerName is "" ? e.ContainerId : e.ContainerName))})");
        var errors = Try(() => Firewall.RemoveNetwork(n.Bridge, n.Subnet, n.Internal));
        errors += Try(() => { using var nl = RtNetlink.Open(); nl.TryDeleteLink(n.Bridge); });
        if (errors.Length > 0) throw new NetworkException(NetworkErrorKind.Internal, $"remove network \"{name}\":{errors}");
        NetworkDns.Stop(Store, name);
        Store.Delete(name);
        Events.ObjectEvents.Network(_opt.DataDir, "destroy", n.Id, n.Name, n.Driver);
    }

    /// <summary>Removes every network without containers except the default one; returns their names.</summary>
    public List<string> Prune()
    {
        var removed = new List<string>();
        foreach (var n in Store.List())
        {
            if (n.Name == _opt.DefaultNetwork || n.Endpoints.Count > 0) continue;
            try { Remove(n.Name); removed.Add(n.Name); }
            catch (NetworkException e) when (e.Kind is NetworkErrorKind.FailedPrecondition or NetworkErrorKind.NotFound) { }
        }
        return removed;
    }

    /// <summary>Connects a container (its network namespace) to a network: reserves the address and ports
    /// under the network's lock, then creates the veth pair, addresses, routes and port rules.</summary>
    public Attachment Attach(AttachRequest req)
    {
        if (!File.Exists(req.NetnsPath)) throw NetworkException.NotFound($"network namespace {req.NetnsPath} of container \"{Who(req)}\" not found");
        var hostVeth = VethName(req.Network, req.ContainerId, req.InterfaceName);
        var stale = new List<Endpoint>();
        var (net, ep) = Store.Update(req.Network, n =>
        {
            // Endpoints of engine containers whose init is gone (a reboot, a monitor killed with its container)
            // hold no address or port any more, even before a reconcile gets to them.
            foreach (var old in n.Endpoints.Values.Where(e => e.NetnsPath.StartsWith("/proc/", StringComparison.Ordinal) && !File.Exists(e.NetnsPath)).ToList())
            {
                n.Endpoints.Remove(old.ContainerId);
                stale.Add(old);
            }
            if (n.Endpoints.ContainsKey(req.ContainerId))
                throw NetworkException.Exists($"container \"{Who(req)}\" is already connected to network \"{n.Name}\"");
            var ip = Ipam.Allocate(n, Who(req), req.StaticAddress);
            var ports = ResolvePorts(n, req);
            var e = new Endpoint
            {
                ContainerId = req.ContainerId, ContainerName = req.ContainerName, Aliases = [.. req.Aliases],
                Address = ip.ToString(), HostVeth = hostVeth, InterfaceName = req.InterfaceName, NetnsPath = req.NetnsPath, Ports = ports,
            };
            n.Endpoints[req.ContainerId] = e;
            return (n, e);
        }, durable: false);

        foreach (var old in stale)
        {
            Try(() => Firewall.RemovePorts(net.Bridge, old.Address, old.Ports));
            Try(() => { using var nl = RtNetlink.Open(); nl.TryDeleteLink(old.HostVeth); });
        }
        var subnet = net.ParsedSubnet;
        var address = IPAddress.Parse(ep.Address);
        try
        {
            using (var nl = RtNetlink.Open())
            {
                if (nl.GetLink(net.Bridge) is null) SetUpKernel(nl, net); // e.g. after a reboot
                nl.CreateVeth(hostVeth, req.InterfaceName, req.NetnsPath, net.Mtu);
                nl.SetMaster(hostVeth, net.Bridge);
                nl.SetUp(hostVeth);
            }
            using (var inner = RtNetlink.OpenIn(req.NetnsPath))
            {
                inner.SetUp("lo");
                inner.AddAddress(req.InterfaceName, address, subnet.PrefixLength);
                inner.SetUp(req.InterfaceName);
                if (req.DefaultRoute) inner.AddDefaultRoute(net.GatewayAddress, req.InterfaceName);
                ep.Mac = inner.GetLink(req.InterfaceName)?.Mac is { } mac ? string.Join(':', mac.Select(b => b.ToString("x2"))) : "";
            }
            if (ep.Ports.Count > 0) Firewall.AddPorts(net.Bridge, ep.Address, ep.Ports);
            Store.Update(req.Network, n => { if (n.Endpoints.TryGetValue(req.ContainerId, out var e)) e.Mac = ep.Mac; return 0; }, durable: false);
        }
        catch (Exception e)
        {
            var cleanup = Try(() => Firewall.RemovePorts(net.Bridge, ep.Address, ep.Ports))
                + Try(() => { using var nl = RtNetlink.Open(); nl.TryDeleteLink(hostVeth); })
                + Try(() => Store.Update(req.Network, n => n.Endpoints.Remove(req.ContainerId), durable: false));
            throw Wrap(e, $"connect container \"{Who(req)}\" to network \"{req.Network}\"", cleanup);
        }
        Events.ObjectEvents.Network(_opt.DataDir, "connect", net.Id, net.Name, net.Driver, req.ContainerId);
        return new Attachment(net.Name, req.ContainerId, address, subnet.PrefixLength, net.GatewayAddress, ep.Mac,
            req.InterfaceName, hostVeth, ep.Ports, net.Dns ? net.GatewayAddress : null);
    }

    /// <summary>Disconnects a container: port rules, the veth pair (both ends) and its address go. Idempotent
    /// about the kernel side (a namespace that died already took its end of the pair with it).</summary>
    public void Detach(string network, string containerId)
    {
        var n = Store.Get(network);
        if (!n.Endpoints.TryGetValue(containerId, out var ep))
            throw NetworkException.NotFound($"container \"{containerId}\" is not connected to network \"{network}\"");
        var errors = Try(() => Firewall.RemovePorts(n.Bridge, ep.Address, ep.Ports))
            + Try(() => { using var nl = RtNetlink.Open(); nl.TryDeleteLink(ep.HostVeth); });
        if (errors.Length > 0) throw new NetworkException(NetworkErrorKind.Internal, $"disconnect container \"{containerId}\" from network \"{network}\":{errors}");
        Store.Update(network, r => r.Endpoints.Remove(containerId), durable: false);
        Events.ObjectEvents.Network(_opt.DataDir, "disconnect", n.Id, n.Name, n.Driver, containerId);
    }

    /// <summary>Starts the embedded DNS server of a network on its gateway address (the caller owns and disposes
    /// it; daemonless use needs a long-lived host for it, as podman runs aardvark-dns). Upstreams default to the
    /// host's /etc/resolv.conf.</summary>
    public DnsServer StartDns(string network, IReadOnlyList<IPEndPoint>? upstreams = null, int port = 53)
    {
        var n = Store.Get(network);
        if (!n.Dns) throw NetworkException.Precondition($"network \"{network}\" has no embedded DNS (the default bridge resolves no names, as Docker's)");
        var names = new NetworkNames(Store, network);
        var server = new DnsServer(new IPEndPoint(n.GatewayAddress, port), names.Lookup,
            upstreams ?? DnsServer.UpstreamsFrom("/etc/resolv.conf", n.GatewayAddress));
        server.Start();
        return server;
    }

    List<PortMapping> ResolvePorts(NetworkRecord self, AttachRequest req)
    {
        var existing = Store.List().Where(o => o.Name != self.Name).Append(self)
            .SelectMany(o => o.Endpoints.Values.SelectMany(e => e.Ports)).ToList();
        var result = new List<PortMapping>();
        foreach (var p0 in req.Ports)
        {
            var p = p0;
            if (p.HostPort == 0)
            {
                for (var i = 0; i < 32 && (p.HostPort == 0 || existing.Concat(result).Any(x => PortSpec.Conflicts(x, p))); i++)
                    p = p with { HostPort = PortSpec.FreePort(p.HostIp, p.Protocol) };
            }
            else if (existing.Concat(result).Any(x => PortSpec.Conflicts(x, p)) || PortSpec.InUseOnHost(p))
                throw NetworkException.Exists($"Bind for {p.HostIp}:{p.HostPort} failed: port is already allocated");
            result.Add(p);
        }
        return result;
    }

    /// <summary>Host end of the pair: "vb" + 8 hex of a hash of network, container and interface (stable, so a
    /// retried teardown finds it).</summary>
    public static string VethName(string network, string containerId, string ifName)
    {
        // FNV-1a (not SHA-256: that would load OpenSSL, ~10 ms of every attach, for a name).
        var h = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes($"{network}\0{containerId}\0{ifName}")) h = (h ^ b) * 16777619u;
        return "vb" + h.ToString("x8");
    }

    static string Who(AttachRequest r) => r.ContainerName is "" ? r.ContainerId : r.ContainerName;

    static string Try(Action a)
    {
        try { a(); return ""; }
        catch (Exception e) { return " cleanup also failed: " + e.Message; }
    }

    static NetworkException Wrap(Exception e, string what, string cleanup) => e switch
    {
        NetworkException ne when cleanup.Length == 0 => ne,
        NetworkException ne => new NetworkException(ne.Kind, ne.Message + ";" + cleanup, ne),
        NetlinkException nle when nle.IsAlreadyExists => new NetworkException(NetworkErrorKind.AlreadyExists, $"{what}: {e.Message}{cleanup}", e),
        _ => new NetworkException(NetworkErrorKind.Internal, $"{what}: {e.Message}{cleanup}", e),
    };
}
