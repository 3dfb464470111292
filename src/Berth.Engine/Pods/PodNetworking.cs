using System.Net;
using Berth.Engine.Containers;
using Berth.Engine.Networking;

namespace Berth.Engine.Pods;

/// <summary>What `pod create` asks of the pod's network, in podman's `pod inspect` InfraConfig names:
/// the network (bridge, a user network, none or host), published ports, a static address, extra hosts
/// and DNS servers. The containers of the pod share it; they publish nothing of their own.</summary>
public sealed class PodInfraConfig
{
    /// <summary>"bridge" (the default, as podman's), a user network's name, "none" or "host".</summary>
    public string NetworkMode { get; set; } = "bridge";
    public Dictionary<string, List<PortBinding>> PortBindings { get; set; } = [];
    public bool HostNetwork { get; set; }
    public string StaticIP { get; set; } = "";
    public List<string> DNSServer { get; set; } = [];
    public List<string> HostAdd { get; set; } = [];
    public List<string> Networks { get; set; } = [];
}

/// <summary>
/// A pod's network, podman's model with Berth's network library: the pod's infra process holds the
/// network namespace; on the pod's start it is connected like a container's (veth on the bridge, an
/// address from the network's IPAM, NAT, the published ports, and — on a user network — the pod's name
/// in the network's DNS, as podman registers the infra under the pod's name); on stop/kill/rm it is
/// disconnected (veth, address, port rules go). The pod's containers join the namespace and get
/// /etc/hosts and /etc/resolv.conf written from the pod's settings before each start.
/// </summary>
public static class PodNetworking
{
    /// <summary>The endpoint id the pod's attachment is kept under on its network: the pod's id.</summary>
    public static bool IsNetworked(PodInfraConfig c) => c.NetworkMode is not ("none" or "host");

    /// <summary>Completes and checks `pod create`'s network options (messages as for containers);
    /// runs before the pod exists.</summary>
    public static PodInfraConfig Prepare(string root, string? network, IEnumerable<string> publish, string? ip, IEnumerable<string> addHosts, IEnumerable<string> dns)
    {
        var c = new PodInfraConfig { NetworkMode = network is null or "" or "default" ? "bridge" : network };
        if (c.NetworkMode.StartsWith("container:", StringComparison.Ordinal) || c.NetworkMode is "slirp4netns" or "pasta" or "private")
            throw EngineException.Invalid($"invalid pod network \"{c.NetworkMode}\": use bridge, a network name, none or host");
        c.PortBindings = ContainerNetworking.ParsePublish(publish);
        foreach (var (key, list) in c.PortBindings)
            foreach (var b in list)
                if (b.HostIp.Length > 0 && (!IPAddress.TryParse(b.HostIp, out var hip) || hip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
                    throw EngineException.Invalid($"invalid host address \"{b.HostIp}\" for port {key}");
        foreach (var d in dns)
        {
            if (!IPAddress.TryParse(d, out _)) throw EngineException.Invalid($"invalid --dns \"{d}\": not an IP address");
            c.DNSServer.Add(d);
        }
        foreach (var h in addHosts)
        {
            try { ContainerNetworkFiles.ParseAddHost(h, IPAddress.Loopback); }
            catch (NetworkException e) { throw ContainerNetworking.ToEngine(e); }
            c.HostAdd.Add(h);
        }
        switch (c.NetworkMode)
        {
            case "none":
                if (c.PortBindings.Count > 0) throw EngineException.Invalid("conflicting options: port publishing and the none network mode of the pod");
                if (ip is { Length: > 0 }) throw EngineException.Invalid("conflicting options: --ip and the none network mode of the pod");
                return c;
            case "host":
                if (c.PortBindings.Count > 0) throw EngineException.Invalid("conflicting options: port publishing and the host network mode of the pod (its ports are the host's)");
                if (ip is { Length: > 0 }) throw EngineException.Invalid("conflicting options: --ip and the host network mode of the pod");
                c.HostNetwork = true;
                return c;
        }
        var mgr = ContainerNetworking.Manager(root);
        NetworkRecord net;
        try
        {
            if (c.NetworkMode != "bridge") NetworkStore.ValidateName(c.NetworkMode);
            net = c.NetworkMode == "bridge" ? mgr.EnsureDefault() : mgr.Store.TryGet(c.NetworkMode) ?? throw new EngineException(ErrorKind.NotFound, $"network {c.NetworkMode} not found");
        }
        catch (NetworkException e) when (e.Kind == NetworkErrorKind.InvalidArgument) { throw new EngineException(ErrorKind.NotFound, $"network {c.NetworkMode} not found"); }
        catch (NetworkException e) { throw ContainerNetworking.ToEngine(e); }
        if (ip is { Length: > 0 })
        {
            if (!IPAddress.TryParse(ip, out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || ip.Split('.').Length != 4)
                throw EngineException.Invalid($"invalid IPv4 address \"{ip}\"");
            if (!net.ParsedSubnet.IsHost(a) || a.Equals(net.GatewayAddress))
                throw EngineException.Invalid($"invalid address {ip}: it does not belong to network {net.Name} ({net.Subnet})");
            c.StaticIP = ip;
        }
        c.Networks = [net.Name];
        return c;
    }

    /// <summary>Connects the infra's namespace (/proc/PID/ns/net) to the pod's network; returns what the
    /// pod got. On failure nothing stays connected.</summary>
    public static PodInfraInfo Connect(PodRecord p, int infraPid, string root, string berthExe, PodInfraInfo info)
    {
        var cfg = p.InfraConfig;
        if (!IsNetworked(cfg)) return info;
        var mgr = ContainerNetworking.Manager(root);
        var network = cfg.Networks.FirstOrDefault() ?? cfg.NetworkMode;
        // A pod whose infra died (killed, a reboot) may still be on the network: start afresh.
        Release(p, root);
        Attachment a;
        try
        {
            var isDefault = network == NetworkOptions.ForRoot(root).DefaultNetwork;
            a = mgr.Attach(new AttachRequest(network, p.Id, $"/proc/{infraPid}/ns/net")
            {
                // podman registers the pod's infra under the pod's name (the default bridge resolves no names)
                ContainerName = isDefault ? "" : p.Name,
                StaticAddress = cfg.StaticIP.Length > 0 ? IPAddress.Parse(cfg.StaticIP) : null,
                Ports = ContainerNetworking.Mappings(cfg.PortBindings),
            });
            NetworkDns.EnsureRunning(mgr, network, berthExe);
        }
        catch (NetworkException e) { throw ContainerNetworking.ToEngine(e); }
        info.Network = network;
        info.IPAddress = a.Address.ToString();
        info.IPPrefixLen = a.PrefixLength;
        info.Gateway = a.Gateway.ToString();
        info.MacAddress = a.Mac;
        info.NetworkID = mgr.Store.TryGet(network)?.Id;
        info.Dns = a.DnsServer?.ToString();
        info.Ports = a.Ports.Select(m => $"{(m.HostIp is "" ? "0.0.0.0" : m.HostIp)}:{m.HostPort}->{m.ContainerPort}/{m.Protocol}").ToList();
        return info;
    }

    /// <summary>Disconnects the pod from its network (idempotent: nothing connected is fine).</summary>
    public static void Release(PodRecord p, string root)
    {
        if (!IsNetworked(p.InfraConfig)) return;
        ContainerNetworking.Release(p.Id, root, p.InfraConfig.Networks.Count > 0 ? p.InfraConfig.Networks : null);
    }

    /// <summary>/etc/hosts and /etc/resolv.conf of a container of the pod, from the pod's network (written
    /// in place before each start: the files are bind-mounted by inode). As podman: the pod's address
    /// under its hostname, the container's own name on 127.0.0.1, the pod's --add-host entries; the
    /// network's DNS server (user networks) unless the pod has --dns.</summary>
    public static void WriteContainerFiles(ContainerRecord c, PodRecord p)
    {
        var info = p.Infra;
        var cfg = p.InfraConfig;
        var gateway = info?.Gateway is { Length: > 0 } g ? IPAddress.Parse(g) : null;
        var address = info?.IPAddress is { Length: > 0 } ip ? IPAddress.Parse(ip) : null;
        IPAddress? embedded = info?.Dns is { Length: > 0 } d ? IPAddress.Parse(d) : null;
        string resolv, hosts;
        try
        {
            resolv = ContainerNetworkFiles.ResolvConf(embedded, cfg.DNSServer.Count > 0 ? cfg.DNSServer : c.HostConfig.Dns, c.HostConfig.DnsSearch, c.HostConfig.DnsOptions);
            var extra = cfg.HostAdd.Concat(c.HostConfig.ExtraHosts).Select(h => ContainerNetworkFiles.ParseAddHost(h, gateway ?? IPAddress.Loopback)).ToList();
            hosts = ContainerNetworkFiles.Hosts(p.Hostname, address, extra);
            if (address is null) hosts += $"127.0.1.1\t{p.Hostname}\n";
            hosts += $"127.0.0.1\t{c.BareName}\n";
        }
        catch (NetworkException e) { throw ContainerNetworking.ToEngine(e); }
        if (cfg.HostNetwork) return; // host: the files written at create stay
        WriteInPlace(c.ResolvConfPath, resolv);
        WriteInPlace(c.HostsPath, hosts);
    }

    static void WriteInPlace(string path, string text)
    {
        if (path.Length == 0) return;
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        fs.Write(System.Text.Encoding.UTF8.GetBytes(text));
    }
}
