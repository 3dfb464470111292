using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Berth.Engine.Networking;

/// <summary>An IPv4 subnet (address math on 32-bit integers). IPv4 only: Berth's bridge networks are
/// IPv4 like Docker's default ones.</summary>
public readonly record struct Subnet(uint Base, int PrefixLength)
{
    public static Subnet Parse(string cidr)
    {
        if (!TryParse(cidr, out var s)) throw NetworkException.Invalid($"invalid subnet \"{cidr}\" (expected an IPv4 CIDR such as 10.89.0.0/24)");
        return s;
    }

    public static bool TryParse(string cidr, out Subnet subnet)
    {
        subnet = default;
        var slash = cidr.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(cidr[..slash], out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
            || !int.TryParse(cidr[(slash + 1)..], out var len) || len is < 8 or > 30) return false;
        subnet = new Subnet(ToUInt(ip) & Mask(len), len);
        return true;
    }

    static uint Mask(int len) => len == 0 ? 0 : uint.MaxValue << (32 - len);
    public uint Size => 1u << (32 - PrefixLength);
    public uint Last => Base + Size - 1;

    public bool Contains(IPAddress ip) => ip.AddressFamily == AddressFamily.InterNetwork && (ToUInt(ip) & Mask(PrefixLength)) == Base;
    public bool Overlaps(Subnet o) => Base <= o.Last && o.Base <= Last;

    /// <summary>The n-th address of the subnet (1 = first host).</summary>
    public IPAddress At(uint n) => FromUInt(Base + n);

    /// <summary>Usable host addresses: not the network or broadcast address.</summary>
    public bool IsHost(IPAddress ip) => Contains(ip) && ToUInt(ip) != Base && ToUInt(ip) != Last;

    public IPNetwork ToIPNetwork() => new(FromUInt(Base), PrefixLength);
    public override string ToString() => $"{FromUInt(Base)}/{PrefixLength}";

    public static uint ToUInt(IPAddress ip) => BinaryPrimitives.ReadUInt32BigEndian(ip.GetAddressBytes());

    public static IPAddress FromUInt(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return new IPAddress(b);
    }
}
