using System.Text;
using System.Text.Json;
using Berth.Linux;

namespace Berth.Runtime;

/// <summary>Compiled seccomp filters kept in the state root (`ROOT/@seccomp-cache/`: '@' cannot be in
/// a container id, so no container can collide with it), keyed by the
/// profile's raw JSON and the runtime binary: every podman container carries the same ~30 KB default
/// profile, and parsing plus compiling it costs more than the rest of its share of `create`
/// (BERTH_TIMING: ~0.4 ms parse + ~0.45 ms compile). A hit must match the stored profile byte for
/// byte (the hash only names the file). Profiles with SCMP_ACT_NOTIFY are not cached (the runtime
/// needs their listener fields). At most <see cref="MaxEntries"/> programs are kept: a save beyond
/// that removes the least recently written ones.</summary>
public static class SeccompCache
{
    const int Magic = 0x42534331; // "BSC1"
    public const string DirName = "@seccomp-cache";
    public const int MaxEntries = 32;

    /// <summary>The raw bytes of linux.seccomp in a config.json, or null when there is none.</summary>
    public static ReadOnlyMemory<byte>? Section(byte[] config)
    {
        try
        {
            var r = new Utf8JsonReader(config, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                var isLinux = r.ValueTextEquals("linux"u8);
                r.Read();
                if (!isLinux || r.TokenType != JsonTokenType.StartObject) { r.Skip(); continue; }
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    var isSeccomp = r.ValueTextEquals("seccomp"u8);
                    r.Read();
                    if (!isSeccomp) { r.Skip(); continue; }
                    if (r.TokenType != JsonTokenType.StartObject) return null;
                    var start = (int)r.TokenStartIndex;
                    r.Skip();
                    return config.AsMemory(start, (int)r.BytesConsumed - start);
                }
                return null;
            }
        }
        catch (JsonException) { }
        return null; // malformed: the full parse reports it
    }

    /// <summary><paramref name="config"/> with the linux.seccomp object <paramref name="section"/> (a
    /// slice of it, from <see cref="Section"/>) replaced by null: what the runtime parses on a cache hit
    /// and what init receives (init gets the compiled program in its plan). A ~16 KB profile is most of
    /// a podman config; parsing it twice into a DOM only to skip it cost more than the rest.</summary>
    public static byte[] WithoutSection(byte[] config, ReadOnlyMemory<byte> section)
    {
        if (!System.Runtime.InteropServices.MemoryMarshal.TryGetArray(section, out var seg) || seg.Array != config) return config;
        var nul = "null"u8;
        var result = new byte[config.Length - seg.Count + nul.Length];
        config.AsSpan(0, seg.Offset).CopyTo(result);
        nul.CopyTo(result.AsSpan(seg.Offset));
        config.AsSpan(seg.Offset + seg.Count).CopyTo(result.AsSpan(seg.Offset + nul.Length));
        return result;
    }

    static string FileFor(string root, ReadOnlySpan<byte> profile, string exe)
    {
        // FNV-1a over the runtime binary's identity (a rebuilt compiler invalidates) and the profile.
        ulong h = 14695981039346656037UL;
        void Mix(ReadOnlySpan<byte> s) { foreach (var b in s) { h ^= b; h *= 1099511628211UL; } }
        var st = new FileInfo(exe);
        Mix(Encoding.UTF8.GetBytes($"{st.Length}:{st.LastWriteTimeUtc.Ticks}:{Berth.Linux.Seccomp.SeccompCompiler.NativeArchitecture}"));
        Mix(profile);
        return Path.Combine(root, DirName, h.ToString("x16") + ".bpf");
    }

    /// <summary>The cached program for this exact profile, or null.</summary>
    public static (byte[] Bytes, uint Flags)? TryLoad(string root, ReadOnlySpan<byte> profile, string exe)
    {
        byte[] data;
        try { data = File.ReadAllBytes(FileFor(root, profile, exe)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        // magic, flags, profile length, program length, profile, program
        if (data.Length < 16 || BitConverter.ToInt32(data, 0) != Magic) return null;
        var flags = BitConverter.ToUInt32(data, 4);
        var plen = BitConverter.ToInt32(data, 8);
        var blen = BitConverter.ToInt32(data, 12);
        if (plen < 0 || blen < 0 || 16L + plen + blen != data.Length) return null;
        if (!data.AsSpan(16, plen).SequenceEqual(profile)) return null;
        return (data.AsSpan(16 + plen, blen).ToArray(), flags);
    }

    public static void Save(string root, ReadOnlySpan<byte> profile, string exe, byte[] program, uint flags)
    {
        var dir = Path.Combine(root, DirName);
        try
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var data = new byte[16 + profile.Length + program.Length];
            BitConverter.TryWriteBytes(data.AsSpan(0), Magic);
            BitConverter.TryWriteBytes(data.AsSpan(4), flags);
            BitConverter.TryWriteBytes(data.AsSpan(8), profile.Length);
            BitConverter.TryWriteBytes(data.AsSpan(12), program.Length);
            profile.CopyTo(data.AsSpan(16));
            program.CopyTo(data, 16 + profile.Length);
            // Unique temp name: two creates may save the same profile at once.
            var path = FileFor(root, profile, exe);
            var tmp = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(tmp, data);
            File.Move(tmp, path, overwrite: true);
            Prune(dir, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a cache: best effort
    }

    /// <summary>Keeps the newest <see cref="MaxEntries"/> programs (<paramref name="keep"/>, just
    /// written, always stays); removes stale temp files of crashed saves.</summary>
    static void Prune(string dir, string keep)
    {
        var files = new DirectoryInfo(dir).GetFiles();
        if (files.Length <= MaxEntries) return;
        var old = DateTime.UtcNow.AddMinutes(-1);
        foreach (var f in files.Where(f => f.Name.EndsWith(".tmp", StringComparison.Ordinal) && f.LastWriteTimeUtc < old))
            try { f.Delete(); } catch (IOException) { }
        var programs = files.Where(f => f.Name.EndsWith(".bpf", StringComparison.Ordinal) && f.FullName != keep)
            .OrderByDescending(f => f.LastWriteTimeUtc).ToList();
        foreach (var f in programs.Skip(MaxEntries - 1))
            try { f.Delete(); } catch (IOException) { }
    }
}
