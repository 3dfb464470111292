using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Berth.Linux.Netlink;

/// <summary>Builds one netlink request: nlmsghdr, a fixed family header, then (nested) attributes,
/// each padded to 4 bytes as NLMSG_ALIGN/RTA_ALIGN require.</summary>
public sealed class NetlinkRequest
{
    byte[] _buf = new byte[256];
    int _len;

    public ushort Type { get; }
    public ushort Flags { get; }

    public NetlinkRequest(ushort type, ushort flags)
    {
        Type = type;
        Flags = flags;
        _len = 16; // nlmsghdr, filled in by Finish
    }

    void Ensure(int n)
    {
        if (_len + n <= _buf.Length) return;
        Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + n + 64));
    }

    static int Align(int n) => (n + 3) & ~3;

    public void PutBytes(ReadOnlySpan<byte> data)
    {
        Ensure(Align(data.Length));
        data.CopyTo(_buf.AsSpan(_len));
        _buf.AsSpan(_len + data.Length, Align(data.Length) - data.Length).Clear();
        _len += Align(data.Length);
    }

    /// <summary>struct ifinfomsg (16 bytes).</summary>
    public void IfInfo(byte family, int index, uint flags = 0, uint change = 0)
    {
        Span<byte> h = stackalloc byte[16];
        h.Clear();
        h[0] = family;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], change);
        PutBytes(h);
    }

    /// <summary>struct ifaddrmsg (8 bytes).</summary>
    public void IfAddr(byte family, byte prefixLen, byte scope, int index)
    {
        Span<byte> h = stackalloc byte[8];
        h.Clear();
        h[0] = family; h[1] = prefixLen; h[3] = scope;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        PutBytes(h);
    }

    /// <summary>struct rtmsg (12 bytes).</summary>
    public void RtMsg(byte family, byte dstLen, byte table, byte protocol, byte scope, byte type)
    {
        Span<byte> h = stackalloc byte[12];
        h.Clear();
        h[0] = family; h[1] = dstLen; h[4] = table; h[5] = protocol; h[6] = scope; h[7] = type;
        PutBytes(h);
    }

    public void Attr(ushort type, ReadOnlySpan<byte> data)
    {
        var total = 4 + data.Length;
        Ensure(Align(total));
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_len), (ushort)total);
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_len + 2), type);
        data.CopyTo(_buf.AsSpan(_len + 4));
        _buf.AsSpan(_len + total, Align(total) - total).Clear();
        _len += Align(total);
    }

    public void AttrU32(ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Attr(type, b);
    }

    public void AttrString(ushort type, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value + "\0");
        Attr(type, bytes);
    }

    public void AttrAddress(ushort type, IPAddress address) => Attr(type, address.GetAddressBytes());

    /// <summary>Opens a nested attribute; returns its offset for <see cref="EndNest"/>.</summary>
    public int BeginNest(ushort type)
    {
        Ensure(4);
        var at = _len;
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_len + 2), type);
        _len += 4;
        return at;
    }

    public void EndNest(int at) => BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(at), (ushort)(_len - at));

    /// <summary>The finished message with its header (length, type, flags, sequence).</summary>
    public ReadOnlySpan<byte> Finish(uint seq)
    {
        var h = _buf.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)_len);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], seq);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0);
        return _buf.AsSpan(0, _len);
    }
}

/// <summary>Attributes of one received message, by type (the last one wins for repeated types).</summary>
public sealed class NetlinkAttributes
{
    readonly Dictionary<ushort, byte[]> _attrs = new();

    public static NetlinkAttributes Parse(ReadOnlySpan<byte> data)
    {
        var a = new NetlinkAttributes();
        while (data.Length >= 4)
        {
            var len = BinaryPrimitives.ReadUInt16LittleEndian(data);
            var type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(data[2..]) & 0x3fff); // strip NLA_F_NESTED/NET_BYTEORDER
            if (len < 4 || len > data.Length) break;
            a._attrs[type] = data[4..len].ToArray();
            var step = (len + 3) & ~3;
            if (step >= data.Length) break;
            data = data[step..];
        }
        return a;
    }

    public bool Has(ushort type) => _attrs.ContainsKey(type);
    public byte[]? Bytes(ushort type) => _attrs.TryGetValue(type, out var v) ? v : null;

    public string? String(ushort type) =>
        _attrs.TryGetValue(type, out var v) ? Encoding.UTF8.GetString(v).TrimEnd('\0') : null;

    public uint? U32(ushort type) =>
        _attrs.TryGetValue(type, out var v) && v.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(v) : null;

    public IPAddress? Address(ushort type) =>
        _attrs.TryGetValue(type, out var v) && v.Length is 4 or 16 ? new IPAddress(v) : null;

    public NetlinkAttributes? Nested(ushort type) => _attrs.TryGetValue(type, out var v) ? Parse(v) : null;
}
