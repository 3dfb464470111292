using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Networking;

/// <summary>A published port: host address and port to a container port (<c>-p [IP:]HOST:CONTAINER[/proto]</c>).</summary>
public sealed record PortMapping(string HostIp, int HostPort, int ContainerPort, string Protocol)
{
    public override string ToString() => $"{(HostIp is "" or "0.0.0.0" ? "" : HostIp + ":")}{HostPort}:{ContainerPort}/{Protocol}";
}

/// <summary>A container's place on one network: its address, interfaces, names and published ports.</summary>
public sealed class Endpoint
{
    public string ContainerId { get; set; } = "";
    public string ContainerName { get; set; } = "";
    public List<string> Aliases { get; set; } = [];
    public string Address { get; set; } = "";
    public string HostVeth { get; set; } = "";
    public string InterfaceName { get; set; } = "eth0";
    public string Mac { get; set; } = "";
    public string NetnsPath { get; set; } = "";
    public List<PortMapping> Ports { get; set; } = [];
}

/// <summary>One network as persisted: its config plus the IPAM state (endpoints by container id).</summary>
public sealed class NetworkRecord
{
    public string Name { get; set; } = "";
    public string Id { get; set; } = "";
    public string Driver { get; set; } = "bridge";
    public string Bridge { get; set; } = "";
    public string Subnet { get; set; } = "";
    public string Gateway { get; set; } = "";
    public bool Internal { get; set; }
    public bool Dns { get; set; }
    public int Mtu { get; set; }
    public Dictionary<string, string> Labels { get; set; } = [];
    public DateTimeOffset Created { get; set; }
    /// <summary>Last address handed out, so release/reuse goes round the subnet (as host-local does).</summary>
    public string LastAllocated { get; set; } = "";
    public Dictionary<string, Endpoint> Endpoints { get; set; } = [];

    [JsonIgnore] public Subnet ParsedSubnet => Networking.Subnet.Parse(Subnet);
    [JsonIgnore] public IPAddress GatewayAddress => IPAddress.Parse(Gateway);
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NetworkRecord))]
internal sealed partial class NetworkJsonContext : JsonSerializerContext;

/// <summary>An exclusive flock(2) on a lock file, released on dispose. Separate opens conflict, so it
/// serialises threads of one process as well as processes.</summary>
public sealed class FileLock : IDisposable
{
    readonly Fd _fd;

    FileLock(Fd fd) => _fd = fd;

    public static FileLock Acquire(string path)
    {
        var fd = Sys.Open(path, O_RDWR | O_CREAT, 0x180 /*0600*/);
        while (flock(fd.Value, LOCK_EX) != 0)
        {
            var e = SyscallException.Last("flock", path);
            if (e.Errno == Errno.EINTR) continue;
            fd.Dispose();
            throw e;
        }
        return new FileLock(fd);
    }

    public void Dispose() => _fd.Dispose(); // closing the last descriptor releases the lock
}

/// <summary>Networks on disk: <c>DIR/NAME.json</c> per network, changed only under <c>DIR/NAME.lock</c>
/// (read, modify, write temp + fsync + rename); creation/removal under <c>DIR/.lock</c>.</summary>
public sealed class NetworkStore
{
    public string Dir { get; }

    public NetworkStore(string dataDir)
    {
        Dir = Path.Combine(dataDir, "networks");
        Directory.CreateDirectory(Dir);
    }

    string FileOf(string name) => Path.Combine(Dir, name + ".json");

    /// <summary>Holds the store-wide lock (network create/remove, subnet choice).</summary>
    public FileLock LockAll() => FileLock.Acquire(Path.Combine(Dir, ".lock"));

    public FileLock Lock(string name) => FileLock.Acquire(Path.Combine(Dir, name + ".lock"));

    public NetworkRecord? TryGet(string name)
    {
        ValidateName(name);
        try
        {
            var json = File.ReadAllBytes(FileOf(name));
            return JsonSerializer.Deserialize(json, NetworkJsonContext.Default.NetworkRecord)
                ?? throw new NetworkException(NetworkErrorKind.Internal, $"network \"{name}\": empty state file {FileOf(name)}");
        }
        catch (FileNotFoundException) { return null; }
        catch (JsonException e) { throw new NetworkException(NetworkErrorKind.Internal, $"network \"{name}\": corrupt state file {FileOf(name)}: {e.Message}", e); }
    }

    public NetworkRecord Get(string name) => TryGet(name) ?? throw NetworkException.NotFound($"network \"{name}\" not found");

    public List<NetworkRecord> List()
    {
        var list = new List<NetworkRecord>();
        foreach (var f in Directory.EnumerateFiles(Dir, "*.json"))
            if (TryGet(Path.GetFileNameWithoutExtension(f)) is { } r) list.Add(r);
        return list.OrderBy(r => r.Created).ThenBy(r => r.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>Writes the record atomically (caller holds its lock). Not <paramref name="durable"/> (no fsync) is
    /// for endpoint changes: after a crash every endpoint is stale anyway, and rename keeps the file whole.</summary>
    public void Save(NetworkRecord record, bool durable = true)
    {
        var path = FileOf(record.Name);
        var tmp = path + ".tmp-" + Environment.ProcessId + "-" + Environment.CurrentManagedThreadId;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(record, NetworkJsonContext.Default.NetworkRecord);
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(bytes);
            fs.Flush(durable);
        }
        File.Move(tmp, path, true);
    }

    public void Delete(string name)
    {
        File.Delete(FileOf(name));
        File.Delete(Path.Combine(Dir, name + ".lock"));
    }

    /// <summary>Reads, changes and saves one network under its lock; returns what <paramref name="change"/> returns.</summary>
    public T Update<T>(string name, Func<NetworkRecord, T> change, bool durable = true)
    {
        using var l = Lock(name);
        var r = Get(name);
        var result = change(r);
        Save(r, durable);
        return result;
    }

    public static void ValidateName(string name)
    {
        if (name.Length is 0 or > 128 || !char.IsAsciiLetterOrDigit(name[0])
            || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            throw NetworkException.Invalid($"invalid network name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
}

/// <summary>Address management for one network (the record is read and saved under its lock by the caller).</summary>
public static class Ipam
{
    /// <summary>Allocates <paramref name="requested"/> (a static <c>--ip</c>) or the next free host address after
    /// the last one handed out. Never the network, gateway or broadcast address, never one in use.</summary>
    public static IPAddress Allocate(NetworkRecord n, string owner, IPAddress? requested)
    {
        var subnet = n.ParsedSubnet;
        var used = new HashSet<string>(n.Endpoints.Values.Select(e => e.Address)) { n.Gateway };
        if (requested is not null)
        {
            if (!subnet.IsHost(requested))
                throw NetworkException.Invalid($"address {requested} for container \"{owner}\" is not a host address in network \"{n.Name}\" ({n.Subnet})");
            if (used.Contains(requested.ToString()))
                throw NetworkException.Exists($"address {requested} is already in use in network \"{n.Name}\"");
            n.LastAllocated = requested.ToString();
            return requested;
        }
        var hosts = subnet.Size - 2;
        var start = IPAddress.TryParse(n.LastAllocated, out var last) && subnet.Contains(last) ? Subnet.ToUInt(last) - subnet.Base : 0;
        for (uint i = 1; i <= hosts; i++)
        {
            var off = (start + i - 1) % hosts + 1;
            var ip = subnet.At(off);
            if (used.Contains(ip.ToString())) continue;
            n.LastAllocated = ip.ToString();
            return ip;
        }
        throw new NetworkException(NetworkErrorKind.Unavailable, $"no free address left in network \"{n.Name}\" ({n.Subnet})");
    }

    /// <summary>Chooses the first subnet from <paramref name="pool"/> that overlaps neither a Berth network nor an
    /// address or route the host already has.</summary>
    public static Subnet ChooseSubnet(IEnumerable<Subnet> pool, IEnumerable<Subnet> taken)
    {
        var t = taken.ToList();
        foreach (var s in pool)
            if (!t.Any(x => x.Overlaps(s))) return s;
        throw new NetworkException(NetworkErrorKind.Unavailable, "no free subnet left in the address pools; give one with --subnet");
    }
}
