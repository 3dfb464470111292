using System.Net;
using Berth.Engine.Containers;
using Berth.Oci.Image;

namespace Berth.Engine.Networking;

/// <summary>
/// A container's networking, between the engine's container lifecycle and the network library. The
/// runtime creates the container's network namespace (spec linux.namespaces "network"); the container's
/// monitor connects it after `berth-runc create` and before `start` (libnetwork's and netavark's order: the
/// namespace exists, the process has not run), at /proc/INIT/ns/net, and disconnects it when the container
/// exits (before a restart too). No netns file exists to leak; a monitor killed with the container is
/// reconciled by the next berth command (<see cref="Release"/>).
/// </summary>
public static class ContainerNetworking
{
    public static NetworkManager Manager(string root) => new(NetworkOptions.ForRoot(root));

    /// <summary>True when the container gets its own namespace connected to Berth networks (bridge or a user network).</summary>
    public static bool IsNetworked(HostConfig hc) => hc.NetworkMode is not ("none" or "host") && !IsContainerMode(hc);

    public static bool IsContainerMode(HostConfig hc) => hc.NetworkMode.StartsWith("container:", StringComparison.Ordinal);

    // ------------------------------------------------------------------ create

    /// <summary>Completes and validates the network part of a create request (docker's rules and messages):
    /// NetworkMode ("" → bridge), NetworkingConfig → NetworkSettings.Networks, ExposedPorts (image's, -p's,
    /// --expose's), PortBindings (PublishAllPorts publishes every exposed port), DNS options, extra hosts.
    /// Runs before anything of the container exists.</summary>
    public static void Prepare(ContainerRecord c, Berth.Oci.Image.ContainerConfig? image, ContainerStore store)
    {
        var hc = c.HostConfig;
        var cfg = c.Config;
        var request = c.NetworkingConfig?.EndpointsConfig ?? [];
        // docker: with the default mode and one endpoint in the request, the container joins that network
        // only (Testcontainers' WithNetwork sends just NetworkingConfig); docker's CLI names the mode
        // itself ("default") as the endpoint's key
        if (hc.NetworkMode is "" or "default")
            hc.NetworkMode = request.Count == 1 && request.Keys.First() is { Length: > 0 } only && only != "default" ? only : "bridge";
        c.NetworkingConfig = null;

        var exposed = new Dictionary<string, EmptyObject>(StringComparer.Ordinal);
        foreach (var k in (image?.ExposedPorts ?? []).Keys.Concat((cfg.ExposedPorts ?? []).Keys).Concat(hc.PortBindings.Keys))
            exposed[NormalizePortKey(k)] = new EmptyObject();
        var bindings = new Dictionary<string, List<PortBinding>>(StringComparer.Ordinal);
        foreach (var (k, list) in hc.PortBindings)
        {
            var key = NormalizePortKey(k);
            foreach (var b in list ?? [])
            {
                if (b.HostIp.Length > 0 && (!IPAddress.TryParse(b.HostIp, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
                    throw EngineException.Invalid($"invalid host address \"{b.HostIp}\" for port {key}");
                if (b.HostPort.Length > 0 && (!int.TryParse(b.HostPort, out var hp) || hp is < 0 or > 65535))
                    throw EngineException.Invalid($"invalid host port \"{b.HostPort}\" for port {key}");
            }
            bindings[key] = [.. list ?? []];
        }
        if (hc.PublishAllPorts)
            foreach (var k in exposed.Keys)
                if (!bindings.ContainsKey(k)) bindings[k] = [new PortBinding()];
        hc.PortBindings = bindings;
        cfg.ExposedPorts = exposed.Count > 0 ? exposed : null;

        foreach (var d in hc.Dns)
            if (!IPAddress.TryParse(d, out _)) throw EngineException.Invalid($"invalid --dns \"{d}\": not an IP address");
        foreach (var h in hc.ExtraHosts) Wrap(() => ContainerNetworkFiles.ParseAddHost(h, IPAddress.Loopback));

        var settings = c.NetworkSettings = new NetworkSettings();
        switch (hc.NetworkMode)
        {
            case "none":
            case "host":
                if (hc.NetworkMode == "host" && bindings.Count > 0) bindings.Clear(); // docker: published ports are discarded in host mode
                if (hc.NetworkMode == "none" && bindings.Count > 0) throw EngineException.Invalid("conflicting options: port publishing and the container type network mode");
                NoEndpointOptions(request, hc.NetworkMode);
                settings.Networks[hc.NetworkMode] = new EndpointSettings();
                return;
        }
        if (IsContainerMode(hc))
        {
            var target = hc.NetworkMode["container:".Length..];
            if (target.Length == 0) throw EngineException.Invalid("invalid network mode \"container:\": a container name or id is required");
            if (bindings.Count > 0) throw EngineException.Invalid("conflicting options: port publishing and the container type network mode");
            if (hc.Dns.Count + hc.DnsSearch.Count + hc.DnsOptions.Count > 0) throw EngineException.Invalid("conflicting options: dns and the network mode");
            if (hc.ExtraHosts.Count > 0) throw EngineException.Invalid("conflicting options: custom host-to-IP mapping and the network mode");
            if (cfg.Hostname.Length > 0) throw EngineException.Invalid("conflicting options: hostname and the network mode");
            NoEndpointOptions(request, hc.NetworkMode);
            string id;
            try { id = store.Resolve(target); }
            catch (EngineException e) when (e.Kind == ErrorKind.NotFound) { throw new EngineException(ErrorKind.NotFound, $"no such container: {target}"); }
            var other = store.Load(id);
            if (IsContainerMode(other.HostConfig))
                throw EngineException.Invalid($"cannot join the network namespace of container {target}: it uses another container's");
            hc.NetworkMode = "container:" + id; // docker records the id
            return;
        }

        var mgr = Manager(store.Root);
        var isDefault = hc.NetworkMode == "bridge";
        var net = isDefault ? Wrap(mgr.EnsureDefault) : mgr.Store.TryGet(ValidNetworkName(hc.NetworkMode))
            ?? throw new EngineException(ErrorKind.NotFound, $"network {hc.NetworkMode} not found");
        var ep = request.TryGetValue(hc.NetworkMode, out var r) ? r : request.Count == 1 ? request.Values.First() : new EndpointSettings();
        ValidateEndpoint(net, ep, isDefault);
        settings.Networks[net.Name] = new EndpointSettings { IPAMConfig = ep.IPAMConfig, Aliases = ep.Aliases, NetworkID = net.Id };
        // as dockerd (API 1.44+): every other endpoint of the request is a network the container joins too,
        // after the mode's (its first interface and default route)
        if (request.Count < 2) return;
        foreach (var (name, other) in request)
        {
            if (name == hc.NetworkMode || name is "" or "default") continue;
            var isBridge = name == "bridge";
            var n = isBridge ? Wrap(mgr.EnsureDefault) : mgr.Store.TryGet(ValidNetworkName(name))
                ?? throw new EngineException(ErrorKind.NotFound, $"network {name} not found");
            if (settings.Networks.ContainsKey(n.Name)) continue;
            ValidateEndpoint(n, other ?? new EndpointSettings(), isBridge);
            settings.Networks[n.Name] = new EndpointSettings { IPAMConfig = other?.IPAMConfig, Aliases = other?.Aliases, NetworkID = n.Id };
        }
    }

    static string ValidNetworkName(string name)
    {
        try { NetworkStore.ValidateName(name); }
        catch (NetworkException) { throw new EngineException(ErrorKind.NotFound, $"network {name} not found"); }
        return name;
    }

    static void NoEndpointOptions(Dictionary<string, EndpointSettings> request, string mode)
    {
        foreach (var e in request.Values)
        {
            if (e.Aliases is { Count: > 0 }) throw EngineException.Invalid("network-scoped aliases are supported only for containers in user defined networks");
            if (e.IPAMConfig?.IPv4Address is { Length: > 0 }) throw EngineException.Invalid($"user specified IP address is supported only on user defined networks, not with network mode {mode}");
        }
    }

    static void ValidateEndpoint(NetworkRecord net, EndpointSettings ep, bool isDefault)
    {
        if (isDefault && ep.Aliases is { Count: > 0 })
            throw EngineException.Invalid("network-scoped aliases are supported only for containers in user defined networks");
        if (ep.IPAMConfig?.IPv4Address is { Length: > 0 } ip)
        {
            if (isDefault) throw EngineException.Invalid("user specified IP address is supported on user defined networks only");
            if (!IPAddress.TryParse(ip, out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || ip.Split('.').Length != 4)
                throw EngineException.Invalid($"invalid IPv4 address \"{ip}\"");
            if (!net.ParsedSubnet.IsHost(a) || a.Equals(net.GatewayAddress))
                throw EngineException.Invalid($"invalid address {ip}: it does not belong to network {net.Name} ({net.Subnet})");
        }
        foreach (var alias in ep.Aliases ?? [])
            if (alias.Length == 0 || alias.Length > 253 || alias.Any(ch => !(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '.' or '_')))
                throw EngineException.Invalid($"invalid network alias \"{alias}\"");
    }

    /// <summary>"80" → "80/tcp"; validates the port and protocol.</summary>
    public static string NormalizePortKey(string key)
    {
        var parts = key.Split('/', 2);
        var proto = parts.Length > 1 ? parts[1].ToLowerInvariant() : "tcp";
        if (!int.TryParse(parts[0], out var port) || port is < 1 or > 65535 || proto is not ("tcp" or "udp"))
            throw EngineException.Invalid($"invalid port \"{key}\": expected PORT[/tcp|udp]");
        return $"{port}/{proto}";
    }

    /// <summary>`-p` values in docker's PortBindings shape (ranges expanded); bad values fail with one line.</summary>
    public static Dictionary<string, List<PortBinding>> ParsePublish(IEnumerable<string> specs)
    {
        var result = new Dictionary<string, List<PortBinding>>(StringComparer.Ordinal);
        foreach (var spec in specs)
            foreach (var m in Wrap(() => PortSpec.ParseAll(spec)))
            {
                var key = $"{m.ContainerPort}/{m.Protocol}";
                if (!result.TryGetValue(key, out var list)) result[key] = list = [];
                list.Add(new PortBinding { HostIp = spec.Count(ch => ch == ':') == 2 ? m.HostIp : "", HostPort = m.HostPort == 0 ? "" : m.HostPort.ToString() });
            }
        return result;
    }

    /// <summary>/etc/hosts and /etc/resolv.conf of a container with its own namespace, written at create
    /// (the address is added to /etc/hosts when the container is connected).</summary>
    public static void WriteEtcFiles(ContainerRecord c, string root)
    {
        if (!IsNetworked(c.HostConfig) && c.HostConfig.NetworkMode != "none") return;
        IPAddress? embedded = null;
        if (IsNetworked(c.HostConfig) && Manager(root).Store.TryGet(c.NetworkSettings.Networks.Keys.First()) is { Dns: true } n) embedded = n.GatewayAddress;
        WriteResolvConf(c, embedded);
        WriteHosts(c, null, null);
    }

    static void WriteResolvConf(ContainerRecord c, IPAddress? embedded)
    {
        var hc = c.HostConfig;
        var text = Wrap(() => ContainerNetworkFiles.ResolvConf(embedded, hc.Dns, hc.DnsSearch, hc.DnsOptions));
        // In place (truncate + write): a running container has the file bind-mounted by inode.
        using var fs = new FileStream(c.ResolvConfPath, FileMode.Create, FileAccess.Write);
        fs.Write(System.Text.Encoding.UTF8.GetBytes(text));
    }

    /// <summary>A container whose resolver is not an embedded DNS server (it started on the default
    /// bridge) that joins a network with one gets that server as its resolver, as dockerd's containers
    /// get 127.0.0.11 when they join a user-defined network: the network's names resolve from it.</summary>
    static void UseEmbeddedDns(ContainerRecord c, NetworkManager mgr, string network)
    {
        if (!File.Exists(c.ResolvConfPath) || mgr.Store.TryGet(network) is not { Dns: true } net) return;
        foreach (var other in c.NetworkSettings.Networks.Keys)
            if (other != network && mgr.Store.TryGet(other) is { Dns: true }) return;
        WriteResolvConf(c, net.GatewayAddress);
    }

    static void WriteHosts(ContainerRecord c, IPAddress? address, IPAddress? gateway)
    {
        var extra = c.HostConfig.ExtraHosts.Select(h => Wrap(() => ContainerNetworkFiles.ParseAddHost(h, gateway ?? IPAddress.Loopback)));
        var text = ContainerNetworkFiles.Hosts(c.Config.Hostname, address, extra);
        if (address is null) text += $"127.0.1.1\t{c.Config.Hostname}\n";
        // In place (truncate + write): the file is bind-mounted into the container by inode.
        using var fs = new FileStream(c.HostsPath, FileMode.Create, FileAccess.Write);
        fs.Write(System.Text.Encoding.UTF8.GetBytes(text));
    }

    // ------------------------------------------------------------------ start (in the monitor)

    /// <summary>For container:ID: the spec's network namespace is the other container's, and its
    /// /etc/hosts, /etc/resolv.conf and /etc/hostname are shared (docker's behaviour). Rewrites the bundle's
    /// config.json before each create; fails when the other container is not running.</summary>
    public static void JoinTargetNamespace(ContainerRecord c, ContainerStore store)
    {
        if (!IsContainerMode(c.HostConfig)) return;
        var otherId = c.HostConfig.NetworkMode["container:".Length..];
        ContainerRecord other;
        try { other = store.Load(otherId); }
        catch (EngineException) { throw new EngineException(ErrorKind.NotFound, $"cannot join network of container {otherId[..Math.Min(12, otherId.Length)]}: no such container"); }
        if (!other.State.Running || other.State.Pid <= 0 || !File.Exists($"/proc/{other.State.Pid}/ns/net"))
            throw new EngineException(ErrorKind.FailedPrecondition, $"cannot join network of a non running container: {other.BareName}");
        var path = Path.Combine(store.BundleDir(c.Id), "config.json");
        var spec = Oci.Runtime.SpecJson.ParseSpec(File.ReadAllBytes(path));
        var ns = spec.Linux?.Namespaces ?? throw EngineException.Invalid("the container's spec has no namespaces");
        ns.RemoveAll(n => n.Type == "network");
        ns.Add(new Oci.Runtime.Namespace { Type = "network", Path = $"/proc/{other.State.Pid}/ns/net" });
        foreach (var m in spec.Mounts ?? [])
            m.Source = m.Destination switch
            {
                "/etc/hosts" => other.HostsPath, "/etc/resolv.conf" => other.ResolvConfPath, "/etc/hostname" => other.HostnamePath, _ => m.Source,
            };
        ContainerStore.WriteAtomic(path, Oci.Runtime.SpecJson.Serialize(spec), durable: false);
    }

    /// <summary>Connects the created (not yet started) container, whose init is <paramref name="pid"/>, to its
    /// networks: veth, address, routes, published ports; fills <paramref name="settings"/> (the record's
    /// NetworkSettings, persisted by the caller) and writes /etc/hosts. On failure nothing stays connected.
    /// <paramref name="previous"/>: the addresses the container had before a restart (kept when still free).</summary>
    public static void Connect(ContainerRecord c, int pid, string root, NetworkSettings settings, string monitorExe)
    {
        // docker's and podman's "none" (a namespace of its own whose loopback is up) needs nothing here: the
        // runtime brings the loopback of a new network namespace up, as runc and crun do.
        if (!IsNetworked(c.HostConfig)) return;
        var opt = NetworkOptions.ForRoot(root);
        var mgr = new NetworkManager(opt);
        var netns = $"/proc/{pid}/ns/net";
        var done = new List<string>();
        try
        {
            var i = 0;
            foreach (var (name, ep) in settings.Networks.ToList())
            {
                ConnectOne(mgr, c, name, name == opt.DefaultNetwork, ep, netns, $"eth{i}", primary: i == 0);
                done.Add(name);
                i++;
            }
        }
        catch (Exception e) when (e is NetworkException or EngineException or IOException)
        {
            foreach (var name in done) try { mgr.Detach(name, c.Id); } catch (NetworkException) { }
            ClearRuntime(settings);
            throw e is NetworkException ne ? ToEngine(ne) : e;
        }
        settings.SandboxKey = netns;
        settings.SandboxID = c.Id;
        var first = settings.Networks.Values.FirstOrDefault();
        var primaryNet = settings.Networks.Keys.FirstOrDefault();
        if (primaryNet == opt.DefaultNetwork && first is not null)
        {
            settings.IPAddress = first.IPAddress; settings.IPPrefixLen = first.IPPrefixLen; settings.Gateway = first.Gateway;
            settings.MacAddress = first.MacAddress; settings.EndpointID = first.EndpointID;
        }
        WriteHosts(c, first is null ? null : IPAddress.Parse(first.IPAddress), first is null ? null : IPAddress.Parse(first.Gateway));
        foreach (var name in done) NetworkDns.EnsureRunning(mgr, name, monitorExe);
    }

    static void ConnectOne(NetworkManager mgr, ContainerRecord c, string name, bool isDefault, EndpointSettings ep, string netns, string ifName, bool primary)
    {
        IPAddress? wanted = ep.IPAMConfig?.IPv4Address is { Length: > 0 } s ? IPAddress.Parse(s) : null;
        var ports = primary ? Mappings(c.HostConfig.PortBindings) : [];
        var net = mgr.Store.TryGet(name) ?? throw new EngineException(ErrorKind.NotFound, $"network {name} not found");
        AttachRequest Req(IPAddress? ip) => new(name, c.Id, netns)
        {
            ContainerName = isDefault ? "" : c.BareName,
            Aliases = isDefault ? [] : [.. ep.Aliases ?? []],
            InterfaceName = ifName, StaticAddress = ip, Ports = ports, DefaultRoute = primary,
        };
        Attachment a;
        // A restarted container keeps its address if it is still free (docker keeps it too).
        if (wanted is null && IPAddress.TryParse(ep.IPAddress, out var prev) && net.ParsedSubnet.IsHost(prev))
        {
            try { a = mgr.Attach(Req(prev)); }
            catch (NetworkException e) when (e.Kind is NetworkErrorKind.AlreadyExists && e.Message.Contains("address")) { a = mgr.Attach(Req(null)); }
        }
        else a = mgr.Attach(Req(wanted));
        ep.IPAddress = a.Address.ToString();
        ep.IPPrefixLen = a.PrefixLength;
        ep.Gateway = a.Gateway.ToString();
        ep.MacAddress = a.Mac;
        ep.NetworkID = net.Id;
        ep.EndpointID = EndpointId(net.Id, c.Id);
        ep.DNSNames = isDefault ? null : [c.BareName, .. ep.Aliases ?? [], c.ShortId];
        if (primary) PortsOf(c, a.Ports);
    }

    static void PortsOf(ContainerRecord c, IReadOnlyList<PortMapping> ports)
    {
        var p = c.NetworkSettings.Ports = [];
        foreach (var k in (c.Config.ExposedPorts ?? []).Keys) p[k] = null;
        foreach (var m in ports)
        {
            var key = $"{m.ContainerPort}/{m.Protocol}";
            (p[key] ??= []).Add(new PortBinding { HostIp = m.HostIp, HostPort = m.HostPort.ToString() });
        }
    }

    internal static List<PortMapping> Mappings(Dictionary<string, List<PortBinding>> bindings)
    {
        var list = new List<PortMapping>();
        foreach (var (key, bs) in bindings)
        {
            var parts = key.Split('/');
            var cport = int.Parse(parts[0]);
            foreach (var b in bs)
                list.Add(new PortMapping(b.HostIp is "" ? "0.0.0.0" : b.HostIp, b.HostPort is "" ? 0 : int.Parse(b.HostPort), cport, parts[1]));
        }
        return list;
    }

    static string EndpointId(string networkId, string containerId)
    {
        var h = 14695981039346656037ul;
        foreach (var ch in networkId + containerId) h = (h ^ ch) * 1099511628211ul;
        var h2 = 14695981039346656037ul;
        foreach (var ch in containerId + networkId) h2 = (h2 ^ ch) * 1099511628211ul;
        return (h.ToString("x16") + h2.ToString("x16") + networkId[..32])[..64];
    }

    // ------------------------------------------------------------------ network connect / disconnect

    /// <summary>`network connect`: a running container gets the next interface (ethN) at once; a stopped one is
    /// connected when it starts. Recorded in NetworkSettings.Networks either way.</summary>
    public static void ConnectContainer(ContainerStore store, string containerId, string network, IReadOnlyList<string> aliases, string? ip, string berthExe)
    {
        var opt = NetworkOptions.ForRoot(store.Root);
        var mgr = new NetworkManager(opt);
        using (store.Lock(containerId))
        {
            var c = store.Load(containerId);
            if (!IsNetworked(c.HostConfig))
                throw new EngineException(ErrorKind.FailedPrecondition, $"container {c.BareName} uses network mode {c.HostConfig.NetworkMode}: it cannot be connected to a network");
            var isDefault = network == opt.DefaultNetwork;
            var net = (isDefault ? Wrap(mgr.EnsureDefault) : mgr.Store.TryGet(ValidNetworkName(network))) ?? throw new EngineException(ErrorKind.NotFound, $"network {network} not found");
            if (c.NetworkSettings.Networks.ContainsKey(net.Name))
                throw new EngineException(ErrorKind.AlreadyExists, $"endpoint with name {c.BareName} already exists in network {net.Name}");
            var ep = new EndpointSettings { Aliases = aliases.Count > 0 ? [.. aliases] : null, IPAMConfig = ip is null ? null : new EndpointIpamConfig { IPv4Address = ip } };
            ValidateEndpoint(net, ep, isDefault);
            ep.NetworkID = net.Id;
            if (c.State.Running && c.State.Pid > 0)
            {
                var netns = $"/proc/{c.State.Pid}/ns/net";
                ConnectOne(mgr, c, net.Name, isDefault, ep, netns, $"eth{c.NetworkSettings.Networks.Count}", primary: false);
            }
            if (!isDefault) UseEmbeddedDns(c, mgr, net.Name);
            c.NetworkSettings.Networks[net.Name] = ep;
            store.Save(c, durable: true);
        }
        if (store.Load(containerId).State.Running) NetworkDns.EnsureRunning(mgr, network, berthExe);
    }

    /// <summary>`network disconnect`: the endpoint goes (the interface leaves the running container).</summary>
    public static void DisconnectContainer(ContainerStore store, string containerId, string network, bool force)
    {
        var mgr = Manager(store.Root);
        using (store.Lock(containerId))
        {
            var c = store.Load(containerId);
            if (!c.NetworkSettings.Networks.ContainsKey(network))
            {
                if (!force) throw new EngineException(ErrorKind.NotFound, $"container {c.BareName} is not connected to network {network}");
            }
            try { mgr.Detach(network, c.Id); }
            catch (NetworkException e) when (e.Kind == NetworkErrorKind.NotFound) { }
            catch (NetworkException e) { throw ToEngine(e); }
            c.NetworkSettings.Networks.Remove(network);
            store.Save(c, durable: true);
        }
    }

    /// <summary>Disconnects the container from every network it is connected to (its endpoints in the
    /// network store; <paramref name="networks"/> narrows the search when the caller knows them): port
    /// rules, veth, address. Idempotent; what a monitor does when its container exits, and what reconcile
    /// does after a monitor died.</summary>
    public static void Release(string containerId, string root, IEnumerable<string>? networks = null)
    {
        var mgr = Manager(root);
        var names = networks?.ToList() ?? mgr.Store.List().Where(n => n.Endpoints.ContainsKey(containerId)).Select(n => n.Name).ToList();
        var errors = new List<string>();
        foreach (var name in names)
        {
            try { mgr.Detach(name, containerId); }
            catch (NetworkException e) when (e.Kind == NetworkErrorKind.NotFound) { }
            catch (NetworkException e) { errors.Add(e.Message); }
        }
        if (errors.Count > 0) throw new EngineException(ErrorKind.Internal, string.Join("; ", errors));
    }

    /// <summary>Forgets what a stopped container had (docker clears addresses on stop; the request stays).</summary>
    public static void ClearRuntime(NetworkSettings s)
    {
        s.SandboxKey = ""; s.SandboxID = ""; s.IPAddress = ""; s.IPPrefixLen = 0; s.Gateway = ""; s.MacAddress = ""; s.EndpointID = "";
        s.Ports = [];
        foreach (var ep in s.Networks.Values)
        {
            ep.IPPrefixLen = 0; ep.Gateway = ""; ep.MacAddress = ""; ep.EndpointID = ""; ep.DNSNames = null;
            ep.IPAddress = "";
        }
    }

    /// <summary>ps's PORTS: "0.0.0.0:8080->80/tcp, 81/tcp" (published first, by container port).</summary>
    public static string PortsColumn(NetworkSettings s)
    {
        var parts = new List<string>();
        foreach (var (key, bindings) in s.Ports.OrderBy(kv => int.TryParse(kv.Key.Split('/')[0], out var n) ? n : 0).ThenBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (bindings is null || bindings.Count == 0) { parts.Add(key); continue; }
            foreach (var b in bindings) parts.Add($"{(b.HostIp is "" ? "0.0.0.0" : b.HostIp)}:{b.HostPort}->{key}");
        }
        return string.Join(", ", parts);
    }

    /// <summary>`port CONTAINER [PORT[/PROTO]]` lines, as docker prints them.</summary>
    public static List<string> PortLines(ContainerRecord c, string? port)
    {
        var lines = new List<string>();
        if (port is not null)
        {
            var key = NormalizePortKey(port);
            if (c.NetworkSettings.Ports.GetValueOrDefault(key) is not { Count: > 0 } bs)
                throw new EngineException(ErrorKind.NotFound, $"no public port '{key}' published for {c.BareName}", 1);
            foreach (var b in bs) lines.Add($"{(b.HostIp is "" ? "0.0.0.0" : b.HostIp)}:{b.HostPort}");
            return lines;
        }
        foreach (var (key, bs) in c.NetworkSettings.Ports.OrderBy(kv => int.TryParse(kv.Key.Split('/')[0], out var n) ? n : 0))
            foreach (var b in bs ?? []) lines.Add($"{key} -> {(b.HostIp is "" ? "0.0.0.0" : b.HostIp)}:{b.HostPort}");
        return lines;
    }

    public static EngineException ToEngine(NetworkException e) => new(e.Kind switch
    {
        NetworkErrorKind.NotFound => ErrorKind.NotFound,
        NetworkErrorKind.AlreadyExists => ErrorKind.AlreadyExists,
        NetworkErrorKind.InvalidArgument => ErrorKind.InvalidArgument,
        NetworkErrorKind.FailedPrecondition => ErrorKind.FailedPrecondition,
        NetworkErrorKind.Unavailable => ErrorKind.Unavailable,
        _ => ErrorKind.Internal,
    }, e.Message);

    static T Wrap<T>(Func<T> f)
    {
        try { return f(); }
        catch (NetworkException e) { throw ToEngine(e); }
    }
}
