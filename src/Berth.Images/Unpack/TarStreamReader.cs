using System.Buffers.Text;
using System.Text;

namespace Berth.Images.Unpack;

public enum TarKind { File, Directory, Symlink, HardLink, CharDevice, BlockDevice, Fifo }

/// <summary>One tar member as the unpacker needs it. Extended attributes keep their raw bytes
/// (PAX values are bytes, and security.capability is binary).</summary>
public sealed class TarHeader
{
    public string Name = "";
    public string LinkName = "";
    public TarKind Kind;
    public uint Mode;
    public uint Uid, Gid;
    public long Size;
    public long MtimeSec, AtimeSec = long.MinValue;
    public uint MtimeNsec, AtimeNsec;
    public uint DevMajor, DevMinor;
    public List<KeyValuePair<string, byte[]>>? Xattrs;
}

/// <summary>
/// A forward-only tar reader over any stream (ustar, GNU long names/links, PAX local headers,
/// base-256 numbers). Written here rather than using System.Formats.Tar because that one decodes
/// PAX values as UTF-8 text, which corrupts binary xattrs such as security.capability. File data is
/// handed out as spans of the reader's own buffer: one copy from the decompressor to write(2).
/// Sparse members (GNU 'S', PAX GNU.sparse.*) are refused: image tools never write them.
/// </summary>
public sealed class TarStreamReader
{
    const int Block = 512;
    const int MaxSpecialSize = 1 << 20; // PAX / long-name members, as Go's archive/tar limits them
    readonly Stream _s;
    readonly byte[] _buf;
    int _pos, _len;
    long _remaining;   // data bytes of the current member not yet handed out
    long _padding;     // bytes to skip after the data
    long _offset;      // stream offset of _buf[_pos], for messages

    public TarStreamReader(Stream s, int bufferSize = 1 << 20)
    {
        _s = s;
        _buf = new byte[Math.Max(bufferSize, 64 * 1024)];
    }

    /// <summary>The next member, or null at the end-of-archive marker (or a clean end of stream).</summary>
    public TarHeader? Next()
    {
        Skip(_remaining + _padding);
        _remaining = _padding = 0;
        string? longName = null, longLink = null;
        Dictionary<string, byte[]>? pax = null;
        while (true)
        {
            if (!Fill(Block))
            {
                if (_len - _pos == 0 && longName is null && longLink is null && pax is null) return null;
                throw Corrupt("unexpected end of layer inside a tar header");
            }
            var hdrStart = _offset;
            var h = _buf.AsSpan(_pos, Block);
            if (h.IndexOfAnyExcept((byte)0) < 0)
            {
                Consume(Block);
                return null;
            }
            VerifyChecksum(h, hdrStart);
            var type = h[156];
            var size = ParseNumber(h.Slice(124, 12), "size", hdrStart);
            if (size < 0) throw Corrupt($"negative member size at offset {hdrStart}");
            switch (type)
            {
                case (byte)'x':
                case (byte)'g':
                case (byte)'L':
                case (byte)'K':
                {
                    if (size > MaxSpecialSize) throw Corrupt($"tar extended header of {size} bytes at offset {hdrStart} is too large");
                    Consume(Block);
                    var data = ReadSmall((int)size);
                    if (type == 'x') pax = ParsePax(data, hdrStart);
                    else if (type == 'L') longName = CString(data);
                    else if (type == 'K') longLink = CString(data);
                    continue; // global headers ('g') are ignored, as containerd does
                }
            }
            var hdr = new TarHeader();
            var magic = h.Slice(257, 6);
            var isUstar = magic.SequenceEqual("ustar\0"u8);
            var isGnu = magic.SequenceEqual("ustar "u8);
            var name = CString(h[..100]);
            if (isUstar && h[345] != 0) name = CString(h.Slice(345, 155)) + "/" + name;
            hdr.Name = longName ?? name;
            hdr.LinkName = longLink ?? CString(h.Slice(157, 100));
            hdr.Mode = (uint)(ParseNumber(h.Slice(100, 8), "mode", hdrStart) & 0xfff);
            hdr.Uid = (uint)ParseNumber(h.Slice(108, 8), "uid", hdrStart);
            hdr.Gid = (uint)ParseNumber(h.Slice(116, 8), "gid", hdrStart);
            hdr.MtimeSec = ParseNumber(h.Slice(136, 12), "mtime", hdrStart);
            if (isUstar || isGnu)
            {
                hdr.DevMajor = (uint)ParseNumber(h.Slice(329, 8), "devmajor", hdrStart);
                hdr.DevMinor = (uint)ParseNumber(h.Slice(337, 8), "devminor", hdrStart);
            }
            if (isGnu && h[345] != 0) hdr.AtimeSec = ParseNumber(h.Slice(345, 12), "atime", hdrStart);
            hdr.Size = size;
            hdr.Kind = type switch
            {
                (byte)'0' or 0 or (byte)'7' => hdr.Name.EndsWith('/') ? TarKind.Directory : TarKind.File,
                (byte)'1' => TarKind.HardLink,
                (byte)'2' => TarKind.Symlink,
                (byte)'3' => TarKind.CharDevice,
                (byte)'4' => TarKind.BlockDevice,
                (byte)'5' => TarKind.Directory,
                (byte)'6' => TarKind.Fifo,
                (byte)'S' => throw Corrupt($"tar member \"{hdr.Name}\" is a GNU sparse file, which is not supported"),
                _ => throw Corrupt($"tar member \"{hdr.Name}\" has unsupported type '{(char)type}'"),
            };
            if (pax != null) ApplyPax(hdr, pax, hdrStart);
            Consume(Block);
            // Only regular files carry data; a size on anything else is skipped (hard links may
            // carry the target's size in some writers).
            var dataSize = hdr.Size;
            if (hdr.Kind != TarKind.File) hdr.Size = 0;
            _remaining = dataSize;
            if (hdr.Kind != TarKind.File) { _padding = dataSize + Pad(dataSize); _remaining = 0; }
            else _padding = Pad(dataSize);
            return hdr;
        }
    }

    /// <summary>The next chunk of the current member's data (empty when it is all read).</summary>
    public ReadOnlySpan<byte> ReadData()
    {
        if (_remaining == 0) return default;
        if (_len == _pos && !Fill(1)) throw Corrupt("unexpected end of layer inside a file's data");
        var n = (int)Math.Min(_remaining, _len - _pos);
        var span = _buf.AsSpan(_pos, n);
        Consume(n);
        _remaining -= n;
        return span;
    }

    /// <summary>Reads whatever follows the end-of-archive marker (padding), so a digest covers it all.</summary>
    public void Drain()
    {
        _pos = _len = 0;
        while (_s.Read(_buf, 0, _buf.Length) > 0) { }
    }

    static long Pad(long size) => (Block - size % Block) % Block;

    void Consume(int n) { _pos += n; _offset += n; }

    void Skip(long n)
    {
        while (n > 0)
        {
            if (_len == _pos && !Fill(1)) throw Corrupt("unexpected end of layer inside a member");
            var k = (int)Math.Min(n, _len - _pos);
            Consume(k);
            n -= k;
        }
    }

    /// <summary>Ensures at least <paramref name="need"/> bytes are buffered; false at end of stream.</summary>
    bool Fill(int need)
    {
        if (_len - _pos >= need) return true;
        if (_pos > 0)
        {
            Buffer.BlockCopy(_buf, _pos, _buf, 0, _len - _pos);
            _len -= _pos;
            _pos = 0;
        }
        while (_len < need)
        {
            var n = _s.Read(_buf, _len, _buf.Length - _len);
            if (n == 0) return false;
            _len += n;
        }
        return true;
    }

    byte[] ReadSmall(int size)
    {
        var data = new byte[size];
        var off = 0;
        while (off < size)
        {
            if (_len == _pos && !Fill(1)) throw Corrupt("unexpected end of layer inside an extended header");
            var k = Math.Min(size - off, _len - _pos);
            _buf.AsSpan(_pos, k).CopyTo(data.AsSpan(off));
            Consume(k);
            off += k;
        }
        Skip(Pad(size));
        return data;
    }

    static LayerException Corrupt(string message) => new(message);

    static string CString(ReadOnlySpan<byte> b)
    {
        var z = b.IndexOf((byte)0);
        return Encoding.UTF8.GetString(z < 0 ? b : b[..z]);
    }

    static void VerifyChecksum(ReadOnlySpan<byte> h, long at)
    {
        long unsigned = 0, signed = 0;
        for (var i = 0; i < Block; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : h[i];
            unsigned += b;
            signed += (sbyte)b;
        }
        var want = ParseNumber(h.Slice(148, 8), "checksum", at);
        if (want != unsigned && want != signed) throw Corrupt($"invalid tar header checksum at offset {at}");
    }

    /// <summary>An octal field (NUL/space padded) or GNU base-256 (high bit of the first byte set).</summary>
    static long ParseNumber(ReadOnlySpan<byte> f, string field, long at)
    {
        if (f.Length > 0 && (f[0] & 0x80) != 0)
        {
            if ((f[0] & 0x40) != 0) throw Corrupt($"negative base-256 {field} in tar header at offset {at}");
            long v = f[0] & 0x3f;
            for (var i = 1; i < f.Length; i++)
            {
                if (v > (long.MaxValue >> 8)) throw Corrupt($"{field} overflows in tar header at offset {at}");
                v = (v << 8) | f[i];
            }
            return v;
        }
        var s = 0;
        while (s < f.Length && (f[s] == ' ' || f[s] == 0)) s++;
        long r = 0;
        var any = false;
        for (var i = s; i < f.Length; i++)
        {
            var c = f[i];
            if (c == ' ' || c == 0) break;
            if (c is < (byte)'0' or > (byte)'7') throw Corrupt($"invalid {field} field in tar header at offset {at}");
            if (r > (long.MaxValue >> 3)) throw Corrupt($"{field} overflows in tar header at offset {at}");
            r = (r << 3) | (long)(c - '0');
            any = true;
        }
        return any ? r : 0;
    }

    static Dictionary<string, byte[]> ParsePax(byte[] data, long at)
    {
        var d = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var span = data.AsSpan();
        while (span.Length > 0)
        {
            if (span.IndexOfAnyExcept((byte)0) < 0) break;
            var sp = span.IndexOf((byte)' ');
            if (sp <= 0 || !Utf8Parser.TryParse(span[..sp], out int len, out var used) || used != sp || len <= sp + 1 || len > span.Length || span[len - 1] != '\n')
                throw Corrupt($"malformed PAX record in tar header at offset {at}");
            var rec = span[(sp + 1)..(len - 1)];
            var eq = rec.IndexOf((byte)'=');
            if (eq <= 0) throw Corrupt($"malformed PAX record in tar header at offset {at}");
            d[Encoding.UTF8.GetString(rec[..eq])] = rec[(eq + 1)..].ToArray();
            span = span[len..];
        }
        return d;
    }

    static void ApplyPax(TarHeader hdr, Dictionary<string, byte[]> pax, long at)
    {
        foreach (var (key, value) in pax)
        {
            switch (key)
            {
                case "path": hdr.Name = Encoding.UTF8.GetString(value); break;
                case "linkpath": hdr.LinkName = Encoding.UTF8.GetString(value); break;
                case "size": hdr.Size = ParseDecimal(value, key, at); break;
                case "uid": hdr.Uid = (uint)ParseDecimal(value, key, at); break;
                case "gid": hdr.Gid = (uint)ParseDecimal(value, key, at); break;
                case "mtime": (hdr.MtimeSec, hdr.MtimeNsec) = ParseTime(value, key, at); break;
                case "atime": (hdr.AtimeSec, hdr.AtimeNsec) = ParseTime(value, key, at); break;
                default:
                    if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                        (hdr.Xattrs ??= []).Add(new(key["SCHILY.xattr.".Length..], value));
                    else if (key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal))
                    {
                        // bsdtar: URL-encoded name, base64 value; SCHILY's form wins when both are present.
                        var name = Uri.UnescapeDataString(key["LIBARCHIVE.xattr.".Length..]);
                        if (pax.ContainsKey("SCHILY.xattr." + name)) break;
                        try { (hdr.Xattrs ??= []).Add(new(name, Convert.FromBase64String(Encoding.ASCII.GetString(value)))); }
                        catch (FormatException) { throw Corrupt($"invalid LIBARCHIVE.xattr value for \"{hdr.Name}\" at offset {at}"); }
                    }
                    else if (key.StartsWith("GNU.sparse.", StringComparison.Ordinal))
                        throw Corrupt($"tar member \"{hdr.Name}\" is a PAX sparse file, which is not supported");
                    break;
            }
        }
    }

    static long ParseDecimal(byte[] v, string key, long at)
    {
        if (!Utf8Parser.TryParse(v, out long r, out var used) || used != v.Length || r < 0)
            throw Corrupt($"invalid PAX {key} in tar header at offset {at}");
        return r;
    }

    static (long, uint) ParseTime(byte[] v, string key, long at)
    {
        var s = Encoding.ASCII.GetString(v);
        var neg = s.StartsWith('-');
        var dot = s.IndexOf('.');
        var secPart = dot < 0 ? s : s[..dot];
        if (!long.TryParse(secPart, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var sec))
            throw Corrupt($"invalid PAX {key} in tar header at offset {at}");
        uint ns = 0;
        if (dot >= 0)
        {
            var frac = s[(dot + 1)..];
            if (frac.Length == 0 || !frac.All(char.IsAsciiDigit)) throw Corrupt($"invalid PAX {key} in tar header at offset {at}");
            frac = frac.Length > 9 ? frac[..9] : frac.PadRight(9, '0');
            ns = uint.Parse(frac, System.Globalization.CultureInfo.InvariantCulture);
            if (neg && ns > 0) { sec -= 1; ns = 1_000_000_000 - ns; }
        }
        return (sec, ns);
    }
}
