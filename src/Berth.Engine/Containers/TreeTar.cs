using System.Formats.Tar;
using Berth.Linux;
using Microsoft.Win32.SafeHandles;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>Writes a tree as a tar stream (PAX), walking it by directory fds with *at calls that
/// never follow a symlink: a symlink is archived as a symlink, never read through, so nothing in the
/// tree can make the archive include files from outside it. Hard links within one walk are archived
/// as links. Used by cp (archive get), export and commit.</summary>
public sealed class TreeTar(Stream output) : IDisposable
{
    readonly TarWriter _tar = new(output, TarEntryFormat.Pax, leaveOpen: true);
    readonly Dictionary<(ulong Dev, ulong Ino), string> _links = [];

    /// <summary>Decides, per path relative to the walk's start, whether to archive it (and descend).</summary>
    public Func<string, bool>? Include { get; init; }

    /// <summary>Appends <paramref name="name"/> in <paramref name="dir"/> (a file, a symlink, or a
    /// directory with everything below it) under the archive name <paramref name="archiveName"/>.</summary>
    public void Add(Fd dir, string name, string archiveName)
    {
        var st = FileAt.TryStat(dir, name) ?? throw new SyscallException("statx", name, Errno.ENOENT);
        AddEntry(dir, name, archiveName, st, "");
    }

    /// <summary>Appends what a directory holds (not the directory itself) under <paramref name="prefix"/>.</summary>
    public void AddContents(Fd dir, string prefix)
    {
        foreach (var child in FileAt.ListNames(dir).Order(StringComparer.Ordinal))
        {
            var st = FileAt.TryStat(dir, child);
            if (st is null) continue; // removed meanwhile
            AddEntry(dir, child, Join(prefix, child), st.Value, child);
        }
    }

    static string Join(string prefix, string name) => prefix.Length == 0 || prefix == "." ? (prefix == "." ? "./" + name : name) : prefix.TrimEnd('/') + "/" + name;

    /// <summary>Appends one entry (a directory without its contents).</summary>
    public void AddSingle(Fd dir, string name, string archiveName, FileStat st) => AddEntry(dir, name, archiveName, st, "", recurse: false);

    /// <summary>An entry written by the caller (a whiteout, an opaque marker).</summary>
    public void AddEmptyFile(string archiveName, uint mode = 0)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, archiveName) { Mode = (UnixFileMode)mode, ModificationTime = DateTimeOffset.UnixEpoch };
        _tar.WriteEntry(e);
    }

    void AddEntry(Fd dir, string name, string archiveName, FileStat st, string rel, bool recurse = true)
    {
        if (Include is not null && !Include(rel.Length == 0 ? archiveName : rel)) return;
        PaxTarEntry e;
        var type = st.Type;
        if (type == S_IFDIR) e = new PaxTarEntry(TarEntryType.Directory, archiveName.TrimEnd('/') + "/");
        else if (type == S_IFLNK) e = new PaxTarEntry(TarEntryType.SymbolicLink, archiveName) { LinkName = FileAt.ReadLink(dir, name) ?? "" };
        else if (type == S_IFREG && st.Nlink > 1 && _links.TryGetValue((((ulong)st.DevMajor << 32) | st.DevMinor, st.Ino), out var first))
            e = new PaxTarEntry(TarEntryType.HardLink, archiveName) { LinkName = first };
        else if (type == S_IFREG) e = new PaxTarEntry(TarEntryType.RegularFile, archiveName);
        else if (type == S_IFCHR) e = new PaxTarEntry(TarEntryType.CharacterDevice, archiveName) { DeviceMajor = (int)st.RdevMajor, DeviceMinor = (int)st.RdevMinor };
        else if (type == S_IFBLK) e = new PaxTarEntry(TarEntryType.BlockDevice, archiveName) { DeviceMajor = (int)st.RdevMajor, DeviceMinor = (int)st.RdevMinor };
        else if (type == S_IFIFO) e = new PaxTarEntry(TarEntryType.Fifo, archiveName);
        else return; // sockets are not archived (as docker's archive skips them)
        e.Mode = (UnixFileMode)(st.Mode & 0xfff);
        e.Uid = (int)st.Uid;
        e.Gid = (int)st.Gid;
        e.ModificationTime = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec).AddTicks(st.MtimeNsec / 100);
        if (e.EntryType == TarEntryType.RegularFile)
        {
            if (st.Nlink > 1) _links[(((ulong)st.DevMajor << 32) | st.DevMinor, st.Ino)] = archiveName;
            using var f = FileAt.OpenRead(dir, name);
            using var handle = new SafeFileHandle(f.Value, ownsHandle: false);
            using var data = new FileStream(handle, FileAccess.Read, 1, isAsync: false);
            e.DataStream = new LimitedStream(data, st.Size);
            _tar.WriteEntry(e);
            return;
        }
        _tar.WriteEntry(e);
        if (e.EntryType == TarEntryType.Directory && recurse)
        {
            using var sub = FileAt.OpenDirectory(dir, name.Length == 0 ? "." : name);
            foreach (var child in FileAt.ListNames(sub).Order(StringComparer.Ordinal))
            {
                var cst = FileAt.TryStat(sub, child);
                if (cst is null) continue;
                AddEntry(sub, child, archiveName.TrimEnd('/') + "/" + child, cst.Value, rel.Length == 0 ? "" : rel + "/" + child);
            }
        }
    }

    public void Dispose() => _tar.Dispose();

    /// <summary>Exactly <paramref name="length"/> bytes of a file (the size stat saw: a file that grows
    /// while it is archived does not corrupt the tar; one that shrinks is padded with zeros).</summary>
    sealed class LimitedStream(Stream inner, long length) : Stream
    {
        long _pos;
        public override bool CanRead => true;
        // TarWriter takes the entry's size from Length when the stream says it can seek.
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            var want = (int)Math.Min(buffer.Length, length - _pos);
            if (want <= 0) return 0;
            var n = inner.Read(buffer[..want]);
            if (n == 0) { buffer[..want].Clear(); n = want; }
            _pos += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) =>
            (origin == SeekOrigin.Current && offset == 0) || (origin == SeekOrigin.Begin && offset == _pos) ? _pos : throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
