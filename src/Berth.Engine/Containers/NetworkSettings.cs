using Berth.Oci.Image;

namespace Berth.Engine.Containers;

/// <summary>docker's PortBinding: a host address and port (strings, as docker writes them; "" = any/choose).</summary>
public sealed class PortBinding
{
    public string HostIp { get; set; } = "";
    public string HostPort { get; set; } = "";
}

/// <summary>docker's IPAMConfig of an endpoint (a static --ip).</summary>
public sealed class EndpointIpamConfig
{
    public string? IPv4Address { get; set; }
}

/// <summary>docker's EndpointSettings: the request (Aliases, IPAMConfig) and, while the container runs, what it got.</summary>
public sealed class EndpointSettings
{
    public EndpointIpamConfig? IPAMConfig { get; set; }
    public List<string>? Links { get; set; }
    public List<string>? Aliases { get; set; }
    public string MacAddress { get; set; } = "";
    public string NetworkID { get; set; } = "";
    public string EndpointID { get; set; } = "";
    public string Gateway { get; set; } = "";
    public string IPAddress { get; set; } = "";
    public int IPPrefixLen { get; set; }
    public string IPv6Gateway { get; set; } = "";
    public string GlobalIPv6Address { get; set; } = "";
    public int GlobalIPv6PrefixLen { get; set; }
    public List<string>? DNSNames { get; set; }
}

/// <summary>The create request's NetworkingConfig (POST /containers/create); moved into
/// <see cref="NetworkSettings.Networks"/> at create.</summary>
public sealed class NetworkingConfig
{
    public Dictionary<string, EndpointSettings> EndpointsConfig { get; set; } = [];
}

/// <summary>docker inspect's NetworkSettings. Networks holds one entry per network the container is
/// connected to (its request while stopped, its addresses while running); the top-level address fields
/// mirror the default bridge's endpoint, as docker's deprecated fields do.</summary>
public sealed class NetworkSettings
{
    public string Bridge { get; set; } = "";
    public string SandboxID { get; set; } = "";
    public string SandboxKey { get; set; } = "";
    /// <summary>"80/tcp" → bindings; null for an exposed port that is not published.</summary>
    public Dictionary<string, List<PortBinding>?> Ports { get; set; } = [];
    public string EndpointID { get; set; } = "";
    public string Gateway { get; set; } = "";
    public string IPAddress { get; set; } = "";
    public int IPPrefixLen { get; set; }
    public string MacAddress { get; set; } = "";
    public Dictionary<string, EndpointSettings> Networks { get; set; } = [];
}
