using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Berth.Images.Tests.Support;

/// <summary>Builds layer tars in memory for tests: well-formed members through System.Formats.Tar's
/// writer (PAX), and raw headers for what no writer produces (binary xattrs, hostile fields).</summary>
public sealed class TarBuilder
{
    readonly MemoryStream _out = new();
    readonly Entries _w;

    public TarBuilder() => _w = new Entries(_out);

    /// <summary>Writes each entry through its own TarWriter and keeps the bytes without the end marker.</summary>
    sealed class Entries(MemoryStream output)
    {
        public void WriteEntry(TarEntry e)
        {
            var ms = new MemoryStream();
            using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true)) w.WriteEntry(e);
            var b = ms.ToArray();
            output.Write(b, 0, b.Length - 1024);
        }
    }

    static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);

    public TarBuilder Dir(string name, int mode = 0x1ed, int uid = 0, int gid = 0, DateTimeOffset? mtime = null)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode, Uid = uid, Gid = gid, ModificationTime = mtime ?? T0 });
        return this;
    }

    public TarBuilder File(string name, string content, int mode = 0x1a4, int uid = 0, int gid = 0, DateTimeOffset? mtime = null) =>
        File(name, Encoding.UTF8.GetBytes(content), mode, uid, gid, mtime);

    public TarBuilder File(string name, byte[] content, int mode = 0x1a4, int uid = 0, int gid = 0, DateTimeOffset? mtime = null)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
        { Mode = (UnixFileMode)mode, Uid = uid, Gid = gid, ModificationTime = mtime ?? T0, DataStream = new MemoryStream(content) });
        return this;
    }

    public TarBuilder Symlink(string name, string target, int uid = 0, int gid = 0)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1ff, Uid = uid, Gid = gid, ModificationTime = T0 });
        return this;
    }

    public TarBuilder HardLink(string name, string target)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target, Mode = (UnixFileMode)0x1a4, ModificationTime = T0 });
        return this;
    }

    public TarBuilder Device(string name, TarEntryType type, int major, int minor, int mode = 0x1b6)
    {
        _w.WriteEntry(new PaxTarEntry(type, name) { DeviceMajor = major, DeviceMinor = minor, Mode = (UnixFileMode)mode, ModificationTime = T0 });
        return this;
    }

    public TarBuilder Fifo(string name, int mode = 0x1a4)
    {
        _w.WriteEntry(new PaxTarEntry(TarEntryType.Fifo, name) { Mode = (UnixFileMode)mode, ModificationTime = T0 });
        return this;
    }

    /// <summary>A regular file preceded by a hand-made PAX header carrying raw (binary) records.</summary>
    public TarBuilder FileWithPax(string name, byte[] content, params (string Key, byte[] Value)[] records)
    {
        var pax = new MemoryStream();
        foreach (var (k, v) in records)
        {
            var body = Encoding.UTF8.GetBytes(" " + k + "=").Concat(v).Append((byte)'\n').ToArray();
            var len = body.Length + 1;
            while ((len.ToString().Length + body.Length) != len) len = len.ToString().Length + body.Length;
            pax.Write(Encoding.ASCII.GetBytes(len.ToString()));
            pax.Write(body);
        }
        RawHeader("PaxHeaders/" + name, 'x', pax.ToArray());
        RawHeader(name, '0', content, mode: 0x1a4);
        return this;
    }

    /// <summary>A ustar header written byte by byte; <paramref name="corruptChecksum"/> breaks it.</summary>
    public TarBuilder RawHeader(string name, char type, byte[] data, int mode = 0x1a4, string link = "", bool corruptChecksum = false, long? declaredSize = null)
    {
        var h = new byte[512];
        Encoding.UTF8.GetBytes(name).CopyTo(h, 0);
        Octal(h, 100, 8, mode);
        Octal(h, 108, 8, 0);
        Octal(h, 116, 8, 0);
        Octal(h, 124, 12, declaredSize ?? data.Length);
        Octal(h, 136, 12, 1_600_000_000);
        h[156] = (byte)type;
        Encoding.UTF8.GetBytes(link).CopyTo(h, 157);
        "ustar\000"u8.CopyTo(h.AsSpan(257));
        for (var i = 148; i < 156; i++) h[i] = (byte)' ';
        var sum = h.Sum(b => (int)b);
        Octal(h, 148, 7, corruptChecksum ? sum + 1 : sum);
        _out.Write(h);
        _out.Write(data);
        _out.Write(new byte[(512 - data.Length % 512) % 512]);
        return this;
    }

    static void Octal(byte[] h, int off, int len, long v)
    {
        var s = Convert.ToString(v, 8).PadLeft(len - 1, '0');
        Encoding.ASCII.GetBytes(s).CopyTo(h, off);
    }

    /// <summary>The tar bytes (with end-of-archive marker unless <paramref name="terminate"/> is false).</summary>
    public byte[] Build(bool terminate = true)
    {
        var all = _out.ToArray();
        return terminate ? [.. all, .. new byte[1024]] : all;
    }

    public static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    public static byte[] Zstd(byte[] data)
    {
        using var c = new ZstdSharp.Compressor(3);
        return c.Wrap(data).ToArray();
    }

    public static string DiffId(byte[] tar) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar));
}
