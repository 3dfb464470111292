using System.IO.Compression;
using Berth.Linux;
using Berth.Oci.Image;
using static Berth.Linux.Interop.Libc;

namespace Berth.Images.Unpack;

/// <summary>How whiteouts (.wh.NAME, .wh..wh..opq) are applied.</summary>
public enum WhiteoutMode
{
    /// <summary>The layer is applied on top of its parent's tree: whiteouts delete in place (copy snapshotter).</summary>
    Delete,
    /// <summary>The layer is unpacked alone: whiteouts become overlayfs whiteouts (char 0/0 device,
    /// trusted.overlay.opaque=y).</summary>
    Overlay,
    /// <summary>Not a layer (docker cp's archives): ".wh." names are ordinary files.</summary>
    None,
}

/// <summary>What to do with character/block device members. containerd and docker create them
/// (images carry /dev entries; a container's /dev is a fresh tmpfs and the devices cgroup denies
/// access anyway), so Create is the default when running as root.</summary>
public enum DeviceNodePolicy { Create, Skip, Reject }

public sealed record UnpackOptions
{
    public WhiteoutMode Whiteouts { get; init; } = WhiteoutMode.Delete;
    public DeviceNodePolicy Devices { get; init; } = DeviceNodePolicy.Create;
    /// <summary>Set owners from the layer (needs CAP_CHOWN); off leaves the unpacking user's ids.</summary>
    public bool Chown { get; init; } = geteuid() == 0;
    /// <summary>The decompression-bomb guard: the largest uncompressed stream accepted.</summary>
    public long MaxUncompressedBytes { get; init; } = 64L << 30;
    public long MaxEntries { get; init; } = 2_000_000;
    public int MaxPathLength { get; init; } = 4096;
}

/// <summary>What an unpack produced: the diffID (sha256 of the uncompressed tar) and its size.</summary>
public sealed record UnpackResult(string DiffId, long UncompressedSize, long Entries);

/// <summary>
/// Applies an image layer (a tar, optionally gzip or zstd) from a forward-only stream into a
/// directory, so unpacking can run while the blob is still downloading. Every name is resolved
/// inside the target with openat2(RESOLVE_IN_ROOT) and acted on with *at calls that never follow the
/// final component, so no member — "../x", "/abs", a symlink or hard link aimed outside — can touch
/// anything outside the target. On error the target is left partly written: callers unpack into a
/// fresh directory and delete it (the snapshotters do).
/// </summary>
public static class LayerUnpacker
{
    const string WhiteoutPrefix = ".wh.";
    const string OpaqueMarker = ".wh..wh..opq";

    public static Stream Decompress(Stream blob, LayerCompression compression) => compression switch
    {
        LayerCompression.None => blob,
        LayerCompression.Gzip => new GZipStream(blob, CompressionMode.Decompress, leaveOpen: true),
        LayerCompression.Zstd => new ZstdSharp.DecompressionStream(blob, leaveOpen: true),
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };

    /// <summary>Unpacks on a dedicated thread (the work is blocking file-system calls).</summary>
    public static Task<UnpackResult> UnpackAsync(Stream blob, LayerCompression compression, string targetDir,
        UnpackOptions options, string? expectedDiffId, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() => Unpack(blob, compression, targetDir, options, expectedDiffId, cancellationToken),
            cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public static UnpackResult Unpack(Stream blob, LayerCompression compression, string targetDir,
        UnpackOptions options, string? expectedDiffId, CancellationToken cancellationToken = default)
    {
        var what = expectedDiffId is null ? "layer" : $"layer {expectedDiffId}";
        using var root = Sys.Open(targetDir, O_PATH | O_DIRECTORY);
        using var decompressed = Decompress(blob, compression);
        using var digesting = new DigestingStream(decompressed, options.MaxUncompressedBytes, what);
        var applier = new Applier(root, options, what, cancellationToken);
        try
        {
            // Decompression and hashing run on their own thread, ahead of the file creation.
            using var ahead = new ReadAheadStream(digesting);
            var tar = new TarStreamReader(ahead);
            applier.Run(tar);
            tar.Drain();
            // The source to its very end: a download's stream ends only once the blob is verified
            // (and throws when it is not), so nothing is committed from a blob that turns out bad.
            Span<byte> rest = stackalloc byte[512];
            while (blob.Read(rest) > 0) { }
        }
        catch (SyscallException e) { throw new LayerException($"{what}: {applier.Current}: {e.Message}", e); }
        finally { applier.Dispose(); }
        var diffId = digesting.Digest();
        if (expectedDiffId != null && diffId != expectedDiffId)
            throw new LayerException($"{what}: diffID mismatch: the uncompressed layer is {diffId}");
        return new UnpackResult(diffId, digesting.BytesRead, applier.Entries);
    }

    /// <summary>The process's umask, read from /proc (no umask(2) round trip that would change it for other threads).</summary>
    static readonly uint Umask = ReadUmask();

    static uint ReadUmask()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("Umask:", StringComparison.Ordinal)) return Convert.ToUInt32(line[6..].Trim(), 8);
        }
        catch (IOException) { }
        return 0x1ff; // unknown: predict nothing, so every mode is set explicitly
    }

    sealed class Applier(Fd root, UnpackOptions options, string what, CancellationToken ct) : IDisposable
    {
        readonly Dictionary<string, Fd> _dirs = new(StringComparer.Ordinal);
        // Mode and group of cached directories: what a new entry in them gets without chown/chmod.
        readonly Dictionary<Fd, (uint Mode, uint Gid)> _dirMeta = new(ReferenceEqualityComparer.Instance);
        readonly uint _euid = geteuid(), _egid = getegid();
        readonly List<(string Path, long ASec, uint ANsec, long MSec, uint MNsec)> _dirTimes = [];
        readonly HashSet<string> _created = new(StringComparer.Ordinal);
        public long Entries;
        public string Current = "";

        public void Run(TarStreamReader tar)
        {
            while (tar.Next() is { } h)
            {
                ct.ThrowIfCancellationRequested();
                if (++Entries > options.MaxEntries) throw new LayerException($"{what}: more than {options.MaxEntries} members");
                Current = h.Name;
                if (h.Name.Length > options.MaxPathLength || h.LinkName.Length > options.MaxPathLength)
                    throw new LayerException($"{what}: member name longer than {options.MaxPathLength} bytes");
                if (h.Name.Contains('\0') || h.LinkName.Contains('\0'))
                    throw new LayerException($"{what}: member \"{h.Name}\" has a NUL in its name");
                Apply(h, tar);
            }
            Current = "directory times";
            foreach (var (path, aSec, aNsec, mSec, mNsec) in _dirTimes)
            {
                var (parent, name) = Split(path);
                var dir = name.Length == 0 ? null : Existing(parent);
                if (name.Length == 0) FileAt.SetTimes(root, ".", aSec, aNsec, mSec, mNsec);
                else if (dir != null && FileAt.TryStat(dir, name) is { IsDirectory: true })
                    FileAt.SetTimes(dir, name, aSec, aNsec, mSec, mNsec);
            }
        }

        /// <summary>The member's path relative to the root: "/" and "./" prefixes dropped, "." parts
        /// removed; ".." may not climb above the root (docker's breakout check).</summary>
        string Clean(string name, string kind)
        {
            var stack = new List<string>();
            foreach (var c in name.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                if (c == ".") continue;
                if (c == "..")
                {
                    if (stack.Count == 0) throw new LayerException($"{what}: {kind} \"{name}\" points outside the layer root");
                    stack.RemoveAt(stack.Count - 1);
                    continue;
                }
                stack.Add(c);
            }
            return string.Join('/', stack);
        }

        static (string Parent, string Name) Split(string path)
        {
            var i = path.LastIndexOf('/');
            return i < 0 ? ("", path) : (path[..i], path[(i + 1)..]);
        }

        /// <summary>The directory fd for a parent path, resolved in-root and created if missing.
        /// Cached while nothing is removed or replaced (a removal may turn a cached path stale).</summary>
        Fd Parent(string parent)
        {
            if (_dirs.TryGetValue(parent, out var fd)) return fd;
            if (_dirs.Count > 256) Invalidate();
            fd = RootfsPath.OpenDirectory(root, parent, create: true)!;
            _dirs[parent] = fd;
            return fd;
        }

        /// <summary>An existing directory (never created), cached like <see cref="Parent"/>; null when it is gone.</summary>
        Fd? Existing(string path)
        {
            if (_dirs.TryGetValue(path, out var fd)) return fd;
            if (_dirs.Count > 256) Invalidate();
            fd = RootfsPath.OpenDirectory(root, path, create: false);
            if (fd != null) _dirs[path] = fd;
            return fd;
        }

        void Invalidate()
        {
            foreach (var fd in _dirs.Values) fd.Dispose();
            _dirs.Clear();
            _dirMeta.Clear();
        }

        /// <summary>
        /// Whether an entry just created in <paramref name="dir"/> with <paramref name="createMode"/>
        /// already has the member's owner and mode, so fchown/fchmod can be skipped (the common case
        /// of a root-owned rootfs unpacked as root): the kernel gives it our euid, the directory's
        /// group when the directory is set-gid (and to a new directory the set-gid bit) else our
        /// egid, and createMode less the umask.
        /// </summary>
        bool CreatedAsWanted(Fd dir, TarHeader h, uint createMode, bool isDirectory)
        {
            var (dirMode, _) = DirMeta(dir);
            var mode = (createMode & ~Umask & 0x1ff) | (isDirectory && (dirMode & 0x400) != 0 ? 0x400u : 0);
            return (h.Mode & 0xfff) == mode && OwnedAsWanted(dir, h);
        }

        /// <summary>Whether an entry just created in <paramref name="dir"/> already has the member's owner (or owners are not set).</summary>
        bool OwnedAsWanted(Fd dir, TarHeader h)
        {
            if (!options.Chown) return true;
            var (dirMode, dirGid) = DirMeta(dir);
            return h.Uid == _euid && h.Gid == ((dirMode & 0x400) != 0 ? dirGid : _egid);
        }

        /// <summary>A cached directory's owner or mode changed: its entry must be read again.</summary>
        void ForgetMeta(string path)
        {
            if (_dirs.TryGetValue(path, out var fd)) _dirMeta.Remove(fd);
        }

        (uint Mode, uint Gid) DirMeta(Fd dir)
        {
            if (!_dirMeta.TryGetValue(dir, out var meta))
            {
                var st = FileAt.TryStat(dir, "") ?? throw new LayerException($"{what}: a directory vanished while unpacking");
                _dirMeta[dir] = meta = (st.Mode, st.Gid);
            }
            return meta;
        }

        public void Dispose() => Invalidate();

        void Apply(TarHeader h, TarStreamReader tar)
        {
            var path = Clean(h.Name, "member");
            var (parentPath, name) = Split(path);

            if (options.Whiteouts != WhiteoutMode.None && name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
            {
                ApplyWhiteout(parentPath, name);
                return;
            }
            if (path.Length == 0)
            {
                // "./": the root directory's own metadata.
                if (h.Kind == TarKind.Directory)
                {
                    using var self = FileAt.OpenDirectory(root, ".");
                    SetOwnerMode(self, h, "/");
                    ForgetMeta("");
                    SetXattrs(self, h);
                    _dirTimes.Add(("", Atime(h).Sec, Atime(h).Nsec, h.MtimeSec, h.MtimeNsec));
                }
                return;
            }
            var dir = Parent(parentPath);
            if (options.Whiteouts == WhiteoutMode.Delete) _created.Add(path);
            switch (h.Kind)
            {
                case TarKind.Directory:
                {
                    // As root (permission checks do not apply) a directory is made with its final mode at
                    // once; otherwise owner-writable first, so its members can be created.
                    var createMode = _euid == 0 ? h.Mode & 0x1ff : 0x1c0;
                    var r = FileAt.TryMkdir(dir, name, createMode);
                    if (r == Errno.EEXIST && FileAt.TryStat(dir, name) is not { IsDirectory: true })
                    {
                        dir = Replace(dir, name, parentPath);
                        r = FileAt.TryMkdir(dir, name, createMode);
                    }
                    if (r != 0 && r != Errno.EEXIST) throw new SyscallException("mkdirat", path, r);
                    if (r == Errno.EEXIST || h.Xattrs is not null || !CreatedAsWanted(dir, h, createMode, isDirectory: true))
                    {
                        using (var d = FileAt.OpenDirectory(dir, name))
                        {
                            SetOwnerMode(d, h, path);
                            SetXattrs(d, h);
                        }
                        ForgetMeta(path);
                    }
                    var (aSec, aNsec) = Atime(h);
                    _dirTimes.Add((path, aSec, aNsec, h.MtimeSec, h.MtimeNsec));
                    break;
                }
                case TarKind.File:
                {
                    // Created with its permission bits (set-id bits only by fchmod, after fchown);
                    // the fd is open for writing whatever the mode says.
                    var createMode = h.Mode & 0x1ff;
                    var f = FileAt.TryCreate(dir, name, createMode, out var err);
                    if (f is null && err == Errno.EEXIST)
                    {
                        dir = Replace(dir, name, parentPath);
                        f = FileAt.TryCreate(dir, name, createMode, out err);
                    }
                    if (f is null) throw new SyscallException("openat", path, err);
                    using (f)
                    {
                        ReadOnlySpan<byte> chunk;
                        while ((chunk = tar.ReadData()).Length > 0) FileAt.WriteAll(f, chunk, path);
                        if (!CreatedAsWanted(dir, h, createMode, isDirectory: false)) SetOwnerMode(f, h, path);
                        SetXattrs(f, h);
                        var (aSec, aNsec) = Atime(h);
                        FileAt.SetTimes(f, aSec, aNsec, h.MtimeSec, h.MtimeNsec, path);
                    }
                    break;
                }
                case TarKind.Symlink:
                {
                    var r = FileAt.TrySymlink(h.LinkName, dir, name);
                    if (r == Errno.EEXIST)
                    {
                        dir = Replace(dir, name, parentPath);
                        r = FileAt.TrySymlink(h.LinkName, dir, name);
                    }
                    if (r != 0) throw new SyscallException("symlinkat", path, r);
                    // No cached directory path can lead through the new symlink: its name was free
                    // (symlinkat fails on an existing name), and every removal empties the cache.
                    NameMetadata(dir, name, h, path, chmod: false, created: true);
                    break;
                }
                case TarKind.HardLink:
                {
                    var target = Clean(h.LinkName, "hard link target");
                    if (target.Length == 0) throw new LayerException($"{what}: hard link \"{h.Name}\" points at the layer root");
                    var (tParent, tName) = Split(target);
                    using var tdir = RootfsPath.OpenDirectory(root, tParent, create: false)
                        ?? throw new LayerException($"{what}: hard link \"{h.Name}\": target \"{h.LinkName}\" is not in the layer");
                    var st = FileAt.TryStat(tdir, tName) ?? throw new LayerException($"{what}: hard link \"{h.Name}\": target \"{h.LinkName}\" is not in the layer");
                    if (st.IsDirectory) throw new LayerException($"{what}: hard link \"{h.Name}\": target \"{h.LinkName}\" is a directory");
                    if (target == path) break;
                    var r = FileAt.TryLink(tdir, tName, dir, name);
                    if (r == Errno.EEXIST)
                    {
                        dir = Replace(dir, name, parentPath);
                        r = FileAt.TryLink(tdir, tName, dir, name);
                    }
                    if (r != 0) throw new SyscallException("linkat", $"{path} -> {target}", r);
                    break;
                }
                case TarKind.CharDevice:
                case TarKind.BlockDevice:
                case TarKind.Fifo:
                {
                    if (h.Kind != TarKind.Fifo)
                    {
                        if (options.Devices == DeviceNodePolicy.Skip) { _created.Remove(path); break; }
                        if (options.Devices == DeviceNodePolicy.Reject)
                            throw new LayerException($"{what}: member \"{h.Name}\" is a device node, which this unpack refuses");
                    }
                    var type = h.Kind switch { TarKind.CharDevice => S_IFCHR, TarKind.BlockDevice => S_IFBLK, _ => S_IFIFO };
                    var r = FileAt.TryMknod(dir, name, type | 0x180, h.DevMajor, h.DevMinor);
                    if (r == Errno.EEXIST)
                    {
                        dir = Replace(dir, name, parentPath);
                        r = FileAt.TryMknod(dir, name, type | 0x180, h.DevMajor, h.DevMinor);
                    }
                    if (r != 0) throw new SyscallException("mknodat", path, r);
                    NameMetadata(dir, name, h, path, chmod: true);
                    break;
                }
            }
        }

        void ApplyWhiteout(string parentPath, string name)
        {
            if (name == OpaqueMarker)
            {
                var dir = Parent(parentPath);
                if (options.Whiteouts == WhiteoutMode.Overlay)
                {
                    using var d = FileAt.OpenDirectory(dir, ".");
                    FileAt.SetXattr(d, "trusted.overlay.opaque", "y"u8, parentPath.Length == 0 ? "/" : parentPath);
                    return;
                }
                var removed = false;
                foreach (var child in FileAt.ListNames(dir))
                {
                    var childPath = parentPath.Length == 0 ? child : parentPath + "/" + child;
                    if (_created.Contains(childPath)) continue;
                    FileAt.RemoveAll(dir, child);
                    removed = true;
                }
                if (removed) Invalidate();
                return;
            }
            if (name.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal)) return; // other AUFS metadata
            var victim = name[WhiteoutPrefix.Length..];
            if (victim is "" or "." or "..") throw new LayerException($"{what}: invalid whiteout \"{name}\"");
            var victimPath = parentPath.Length == 0 ? victim : parentPath + "/" + victim;
            if (_created.Contains(victimPath)) return; // a whiteout hides lower layers only
            if (options.Whiteouts == WhiteoutMode.Overlay)
            {
                var dir = Parent(parentPath);
                var r = FileAt.TryMknod(dir, victim, S_IFCHR, 0, 0);
                if (r != 0 && r != Errno.EEXIST) throw new SyscallException("mknodat", victimPath + " (whiteout)", r);
                return;
            }
            // Delete mode: the parent must already exist; a missing one means nothing to delete.
            var existing = RootfsPath.OpenDirectory(root, parentPath, create: false);
            if (existing is null) return;
            using (existing)
            {
                if (FileAt.TryStat(existing, victim) is null) return;
                FileAt.RemoveAll(existing, victim);
            }
            Invalidate();
        }

        /// <summary>Removes what is in the way of a new member (a directory only when the new member is not one).</summary>
        Fd Replace(Fd dir, string name, string parentPath)
        {
            FileAt.RemoveAll(dir, name);
            Invalidate();
            return Parent(parentPath);
        }

        static (long Sec, uint Nsec) Atime(TarHeader h) =>
            h.AtimeSec == long.MinValue || h.AtimeSec < h.MtimeSec ? (h.MtimeSec, h.MtimeNsec) : (h.AtimeSec, h.AtimeNsec);

        void SetOwnerMode(Fd f, TarHeader h, string path)
        {
            if (options.Chown) FileAt.Chown(f, h.Uid, h.Gid, path);
            FileAt.Chmod(f, h.Mode, path); // after chown, which clears set-id bits
        }

        void SetXattrs(Fd f, TarHeader h)
        {
            if (h.Xattrs is null) return;
            foreach (var (k, v) in h.Xattrs) FileAt.SetXattr(f, k, v, h.Name);
        }

        void NameMetadata(Fd dir, string name, TarHeader h, string path, bool chmod, bool created = false)
        {
            // a new symlink is owned by our euid and the directory's group rule: chown only when that is not the member's owner
            if (options.Chown && !(created && OwnedAsWanted(dir, h))) FileAt.Chown(dir, name, h.Uid, h.Gid);
            if (chmod) FileAt.Chmod(dir, name, h.Mode);
            if (h.Xattrs != null)
                foreach (var (k, v) in h.Xattrs) FileAt.SetXattr(dir, name, k, v);
            var (aSec, aNsec) = Atime(h);
            FileAt.SetTimes(dir, name, aSec, aNsec, h.MtimeSec, h.MtimeNsec);
        }
    }
}
