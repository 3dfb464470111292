using System.Formats.Tar;
using System.Text;
using System.Text.RegularExpressions;
using Berth.Linux;
using Berth.Images.Unpack;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Build;

/// <summary>
/// The files a build may copy from: a directory (the CLI's context) or a tar extracted into a
/// temporary directory (the API's body), with the .dockerignore patterns applied. Paths are the
/// context's own: "../x" and absolute paths are cleaned to stay inside, and every source is opened
/// with openat2(RESOLVE_IN_ROOT), so a symlink in the context cannot lead a COPY out of it.
/// </summary>
public sealed class BuildContext : IDisposable
{
    public string Root { get; }
    readonly bool _owned;
    readonly List<(Regex Pattern, bool Exclude)> _ignore = [];

    BuildContext(string root, bool owned)
    {
        Root = root;
        _owned = owned;
        var ignoreFile = Path.Combine(root, ".dockerignore");
        if (File.Exists(ignoreFile)) LoadIgnore(File.ReadAllText(ignoreFile));
    }

    public static BuildContext FromDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new EngineException(ErrorKind.NotFound, $"unable to prepare context: path \"{dir}\" not found");
        return new BuildContext(Path.GetFullPath(dir), owned: false);
    }

    /// <summary>Extracts a tar (optionally gzip) context into a temporary directory, every member
    /// resolved inside it.</summary>
    public static BuildContext FromTar(Stream tar, string tempParent)
    {
        Directory.CreateDirectory(tempParent);
        var dir = Path.Combine(tempParent, "ctx-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            var buffered = new BufferedStream(tar, 1 << 16);
            var head = new byte[2];
            var n = buffered.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            if (n == 0) return new BuildContext(dir, owned: true);
            Stream input = new Containers.ImageCommitter.ConcatStream(head.AsMemory(0, n), buffered);
            var compression = n == 2 && head[0] == 0x1f && head[1] == 0x8b ? Oci.Image.LayerCompression.Gzip : Oci.Image.LayerCompression.None;
            LayerUnpacker.Unpack(input, compression, dir, new UnpackOptions { Whiteouts = WhiteoutMode.None, Chown = false }, expectedDiffId: null);
            return new BuildContext(dir, owned: true);
        }
        catch (Exception e) when (e is LayerException or InvalidDataException or IOException)
        {
            Directory.Delete(dir, true);
            throw EngineException.Invalid($"the build context is not a valid tar archive: {e.Message}");
        }
        catch
        {
            Directory.Delete(dir, true);
            throw;
        }
    }

    public void Dispose()
    {
        if (_owned && Directory.Exists(Root)) Directory.Delete(Root, true);
    }

    // ------------------------------------------------------------------ .dockerignore

    void LoadIgnore(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var exclude = true;
            if (line.StartsWith('!')) { exclude = false; line = line[1..].Trim(); }
            var clean = CleanRel(line);
            if (clean.Length == 0) continue;
            _ignore.Add((GlobRegex(clean, matchDeep: true), exclude));
        }
    }

    /// <summary>Whether a context path (relative, cleaned) is excluded by .dockerignore: the last
    /// pattern matching it or one of its parents decides.</summary>
    public bool IsIgnored(string rel)
    {
        if (_ignore.Count == 0 || rel.Length == 0) return false;
        var ignored = false;
        foreach (var (re, exclude) in _ignore)
        {
            if (Matches(re, rel)) ignored = exclude;
        }
        return ignored;
    }

    static bool Matches(Regex re, string rel)
    {
        if (re.IsMatch(rel)) return true;
        // a pattern matching a parent directory excludes everything below it
        for (var i = rel.IndexOf('/'); i > 0; i = rel.IndexOf('/', i + 1))
            if (re.IsMatch(rel[..i])) return true;
        return false;
    }

    /// <summary>Go's filepath.Match syntax (*, ?, [..], \) plus "**" for any number of directories.</summary>
    public static Regex GlobRegex(string pattern, bool matchDeep = false)
    {
        var sb = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                i++;
                if (i + 1 < pattern.Length && pattern[i + 1] == '/') { i++; sb.Append("(.*/)?"); }
                else sb.Append(".*");
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else if (c == '[')
            {
                var end = pattern.IndexOf(']', i + 1);
                if (end < 0) { sb.Append("\\["); continue; }
                var cls = pattern[(i + 1)..end];
                if (cls.StartsWith('^') || cls.StartsWith('!')) cls = "^" + cls[1..];
                sb.Append('[').Append(cls.Replace("\\", "\\\\")).Append(']');
                i = end;
            }
            else if (c == '\\' && i + 1 < pattern.Length) { sb.Append(Regex.Escape(pattern[i + 1].ToString())); i++; }
            else sb.Append(Regex.Escape(c.ToString()));
        }
        sb.Append('$');
        _ = matchDeep;
        return new Regex(sb.ToString(), RegexOptions.CultureInvariant);
    }

    public static bool HasWildcards(string s) => s.IndexOfAny(['*', '?', '[']) >= 0;

    /// <summary>A context path cleaned lexically: no leading "/", no "." or ".." climbing out.</summary>
    public static string CleanRel(string path)
    {
        var parts = new List<string>();
        foreach (var p in path.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (p == ".") continue;
            if (p == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(p);
        }
        return string.Join('/', parts);
    }

    /// <summary>True when a relative source names something above the context ("../x").</summary>
    public static bool Escapes(string path)
    {
        var depth = 0;
        foreach (var p in path.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (p == ".") continue;
            if (p == "..") { if (--depth < 0) return true; }
            else depth++;
        }
        return false;
    }
}

/// <summary>Sources of a COPY/ADD as a tar of entries named by their destination (relative to the
/// image root), owners and modes as the instruction says, from a root fd walked without following
/// symlinks below the named source (the named source itself is resolved in-root).</summary>
internal sealed class CopyTar(Stream output) : IDisposable
{
    readonly TarWriter _tar = new(output, TarEntryFormat.Pax, leaveOpen: true);
    public int? Uid { get; init; }
    public int? Gid { get; init; }
    public uint? Mode { get; init; }
    public Func<string, bool>? Ignored { get; init; }
    public IncrementalHashSink? Hash { get; init; }

    /// <summary>Adds <paramref name="fd"/> (O_PATH of the resolved source; <paramref name="srcRel"/> its
    /// context path for .dockerignore) as <paramref name="dest"/>; a directory adds its contents below dest.</summary>
    public void Add(Fd parent, string name, string srcRel, string dest, bool contentsOnly, bool skipTop = false)
    {
        var st = FileAt.TryStat(parent, name) ?? throw new SyscallException("statx", srcRel, Errno.ENOENT);
        if (st.IsDirectory && contentsOnly)
        {
            if (dest.Length > 0 && !skipTop) Entry(parent, name, srcRel, dest, st, recurse: false);
            using var d = FileAt.OpenDirectory(parent, name);
            foreach (var child in FileAt.ListNames(d).Order(StringComparer.Ordinal))
            {
                var cst = FileAt.TryStat(d, child);
                if (cst is null) continue;
                Entry(d, child, Join(srcRel, child), Join(dest, child), cst.Value, recurse: true);
            }
            return;
        }
        Entry(parent, name, srcRel, dest, st, recurse: true);
    }

    static string Join(string a, string b) => a.Length == 0 ? b : a + "/" + b;

    void Entry(Fd dir, string name, string srcRel, string dest, FileStat st, bool recurse)
    {
        if (Ignored is not null && srcRel.Length > 0 && Ignored(srcRel)) return;
        PaxTarEntry e;
        if (st.IsDirectory) e = new PaxTarEntry(TarEntryType.Directory, dest + "/");
        else if (st.Type == S_IFLNK) e = new PaxTarEntry(TarEntryType.SymbolicLink, dest) { LinkName = FileAt.ReadLink(dir, name) ?? "" };
        else if (st.IsRegular) e = new PaxTarEntry(TarEntryType.RegularFile, dest);
        else return; // devices, fifos, sockets are not copied from a context
        e.Mode = (UnixFileMode)(Mode ?? (st.Mode & 0xfff));
        e.Uid = Uid ?? 0;
        e.Gid = Gid ?? 0;
        e.ModificationTime = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec).AddTicks(st.MtimeNsec / 100);
        Hash?.Add($"{e.EntryType} {dest} {(uint)e.Mode} {e.Uid}:{e.Gid} {e.LinkName}\n");
        if (e.EntryType == TarEntryType.RegularFile)
        {
            using var f = FileAt.OpenRead(dir, name);
            using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(f.Value, ownsHandle: false);
            using var data = new FileStream(handle, FileAccess.Read, 1, isAsync: false);
            var ms = new MemoryStream();
            if (st.Size > 64L << 20)
            {
                // large files: hash while streaming from a second read
                if (Hash is not null) { Hash.AddStream(data); data.Seek(0, SeekOrigin.Begin); }
                e.DataStream = data;
                _tar.WriteEntry(e);
                return;
            }
            data.CopyTo(ms);
            ms.Position = 0;
            Hash?.Add(ms.GetBuffer().AsSpan(0, (int)ms.Length));
            e.DataStream = ms;
            _tar.WriteEntry(e);
            return;
        }
        _tar.WriteEntry(e);
        if (st.IsDirectory && recurse)
        {
            using var sub = FileAt.OpenDirectory(dir, name);
            foreach (var child in FileAt.ListNames(sub).Order(StringComparer.Ordinal))
            {
                var cst = FileAt.TryStat(sub, child);
                if (cst is null) continue;
                Entry(sub, child, Join(srcRel, child), dest + "/" + child, cst.Value, recurse: true);
            }
        }
    }

    /// <summary>A directory entry for a missing parent of the destination (0755, root or the --chown owner).</summary>
    public void AddParent(string dest)
    {
        var e = new PaxTarEntry(TarEntryType.Directory, dest + "/") { Mode = (UnixFileMode)0x1ed, Uid = Uid ?? 0, Gid = Gid ?? 0, ModificationTime = DateTimeOffset.UtcNow };
        _tar.WriteEntry(e);
    }

    public void Dispose() => _tar.Dispose();
}

/// <summary>The digest of what a COPY/ADD copies (names, modes, owners, contents): its cache key.</summary>
internal sealed class IncrementalHashSink
{
    readonly System.Security.Cryptography.IncrementalHash _h = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
    public void Add(string s) => _h.AppendData(Encoding.UTF8.GetBytes(s));
    public void Add(ReadOnlySpan<byte> b) => _h.AppendData(b);
    public void AddStream(Stream s)
    {
        var buf = new byte[1 << 16];
        int n;
        while ((n = s.Read(buf)) > 0) _h.AppendData(buf.AsSpan(0, n));
    }
    public string Hex() => Convert.ToHexStringLower(_h.GetHashAndReset());
}
