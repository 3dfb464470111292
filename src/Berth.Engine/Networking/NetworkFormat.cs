using System.Text;
using System.Text.Json;

namespace Berth.Engine.Networking;

/// <summary>Networks as docker shows them (`docker network inspect`, GET /networks): one writer for
/// the CLI and the Docker API, and docker's way of finding a network by name, id or id prefix.</summary>
public static class NetworkFormat
{
    /// <summary>By name, full id or unique id prefix (as docker resolves networks).</summary>
    public static NetworkRecord Find(NetworkManager mgr, string nameOrId)
    {
        var all = mgr.List();
        var hit = all.FirstOrDefault(n => n.Name == nameOrId) ?? all.FirstOrDefault(n => n.Id == nameOrId);
        if (hit is not null) return hit;
        var byPrefix = nameOrId.Length >= 1 ? all.Where(n => n.Id.StartsWith(nameOrId, StringComparison.Ordinal)).ToList() : [];
        return byPrefix.Count == 1 ? byPrefix[0] : throw NetworkException.NotFound($"network {nameOrId} not found");
    }

    /// <summary>A JSON array of networks in docker's inspect shape (indented, as the CLI prints it).</summary>
    public static string InspectJson(IEnumerable<NetworkRecord> networks) => Encoding.UTF8.GetString(Json(networks, array: true, indented: true));

    /// <summary>One network (<paramref name="array"/> false) or an array, as UTF-8 JSON.</summary>
    public static byte[] Json(IEnumerable<NetworkRecord> networks, bool array, bool indented)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            if (array) w.WriteStartArray();
            foreach (var n in networks)
            {
                Write(w, n);
                if (!array) break;
            }
            if (array) w.WriteEndArray();
        }
        return ms.ToArray();
    }

    static void Write(Utf8JsonWriter w, NetworkRecord n)
    {
        w.WriteStartObject();
        w.WriteString("Name", n.Name);
        w.WriteString("Id", n.Id);
        w.WriteString("Created", n.Created.ToString("O"));
        w.WriteString("Scope", "local");
        w.WriteString("Driver", n.Driver);
        w.WriteBoolean("EnableIPv6", false);
        w.WriteStartObject("IPAM");
        w.WriteString("Driver", "default");
        w.WriteStartObject("Options"); w.WriteEndObject();
        w.WriteStartArray("Config");
        if (n.Subnet.Length > 0) { w.WriteStartObject(); w.WriteString("Subnet", n.Subnet); w.WriteString("Gateway", n.Gateway); w.WriteEndObject(); }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteBoolean("Internal", n.Internal);
        w.WriteBoolean("Attachable", false);
        w.WriteBoolean("Ingress", false);
        w.WriteStartObject("ConfigFrom"); w.WriteString("Network", ""); w.WriteEndObject();
        w.WriteBoolean("ConfigOnly", false);
        w.WriteStartObject("Containers");
        foreach (var e in n.Endpoints.Values)
        {
            w.WriteStartObject(e.ContainerId);
            w.WriteString("Name", e.ContainerName);
            w.WriteString("EndpointID", e.ContainerId);
            w.WriteString("MacAddress", e.Mac);
            w.WriteString("IPv4Address", $"{e.Address}/{n.ParsedSubnet.PrefixLength}");
            w.WriteString("IPv6Address", "");
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteStartObject("Options");
        // as dockerd: the bridge's name is an option only when it was chosen (not the generated br-ID12);
        // compose compares these options with its file's and would recreate the network otherwise
        if (n.Bridge != "br-" + n.Id[..Math.Min(12, n.Id.Length)]) w.WriteString("com.docker.network.bridge.name", n.Bridge);
        if (n.Mtu > 0) w.WriteString("com.docker.network.driver.mtu", n.Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
        w.WriteStartObject("Labels");
        foreach (var (k, v) in n.Labels) w.WriteString(k, v);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
