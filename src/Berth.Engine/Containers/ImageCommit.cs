using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Snapshots;
using Berth.Linux;
using Berth.Oci.Image;
using static Berth.Linux.Interop.Libc;
using OciConfig = Berth.Oci.Image.ContainerConfig;

namespace Berth.Engine.Containers;

/// <summary>One line of `docker diff`: A (added), C (changed), D (deleted).</summary>
public sealed record FileChange(char Kind, string Path)
{
    /// <summary>Docker API /containers/ID/changes: Kind 0 modified, 1 added, 2 deleted.</summary>
    public int ApiKind => Kind switch { 'C' => 0, 'A' => 1, _ => 2 };
    /// <summary>A directory the container made opaque (overlay): the layer carries .wh..wh..opq.</summary>
    public bool Opaque { get; init; }
}

/// <summary>
/// What a container changed in its image's filesystem (`diff`, the Docker API's /changes) and the
/// images made from it (`commit`, `import`). Overlay: the upper directory is the change set
/// (whiteout devices are deletions, trusted.overlay.opaque dirs are opaque); copy snapshots are
/// compared with a tree of the image. The paths docker keeps in its init layer (the /etc files
/// bind-mounted over, /dev, /proc, /sys mount points) are not changes.
/// </summary>
public static class ContainerChanges
{
    static readonly HashSet<string> InitPaths = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys", "/.dockerenv"];

    public static List<FileChange> Compute(ContainerManager mgr, ContainerRecord c)
    {
        if (c.ImageLayer is null) throw new EngineException(ErrorKind.FailedPrecondition, $"container {c.BareName} has no image (--rootfs): nothing to compare with");
        mgr.MountRootfs(c);
        var snapshots = OverlaySnapshotter.Create(mgr.Store.Root);
        using var parent = ParentView.Open(snapshots, c);
        using var rootfs = Sys.Open(c.Rootfs, O_PATH | O_DIRECTORY);
        using var parentFd = Sys.Open(parent.Path, O_PATH | O_DIRECTORY);
        var changes = new List<FileChange>();
        var skip = new HashSet<string>(InitPaths);
        foreach (var m in c.Mounts) skip.Add(RootfsPath.CleanInRoot(m.Destination));
        foreach (var t in c.HostConfig.Tmpfs.Keys) skip.Add(RootfsPath.CleanInRoot(t));
        if (snapshots.Driver == "overlay")
        {
            using var upper = Sys.Open(snapshots.UpperDirectory(c.Id), O_RDONLY | O_DIRECTORY);
            WalkUpper(upper, parentFd, rootfs, "", changes, skip);
        }
        else WalkCompare(rootfs, parentFd, "", changes, skip);
        return changes;
    }

    static bool Skipped(string path, HashSet<string> skip) => skip.Contains(path) || path.StartsWith("/dev/", StringComparison.Ordinal) || path.StartsWith("/proc/", StringComparison.Ordinal) || path.StartsWith("/sys/", StringComparison.Ordinal);

    /// <summary>Returns true when anything under <paramref name="rel"/> was reported.</summary>
    /// <remarks>Each level is opened from its parent's fd by one name, never following a symlink, so a
    /// running container swapping a directory for a symlink cannot lead the walk out of the upper dir.</remarks>
    static bool WalkUpper(Fd dir, Fd parentRoot, Fd merged, string rel, List<FileChange> changes, HashSet<string> skip)
    {
        var any = false;
        foreach (var name in FileAt.ListNames(dir).Order(StringComparer.Ordinal))
        {
            var path = "/" + (rel.Length == 0 ? name : rel + "/" + name);
            var st = FileAt.TryStat(dir, name);
            if (st is null) continue;
            if (st.Value.Type == S_IFCHR && st.Value.RdevMajor == 0 && st.Value.RdevMinor == 0)
            {
                if (Skipped(path, skip)) continue;
                changes.Add(new FileChange('D', path)); any = true;
                continue;
            }
            var lower = StatIn(parentRoot, path);
            var childRel = path[1..];
            if (st.Value.IsDirectory)
            {
                var opaque = lower is { IsDirectory: true } && IsOpaque(dir, name);
                var index = changes.Count;
                bool below;
                using (var sub = FileAt.OpenDirectory(dir, name)) below = WalkUpper(sub, parentRoot, merged, childRel, changes, skip);
                if (opaque)
                {
                    // Everything the image had below is gone unless the container wrote it again.
                    using var ld = RootfsPath.OpenDirectory(parentRoot, childRel, create: false);
                    if (ld is not null)
                        foreach (var gone in FileAt.ListNames(ld).Order(StringComparer.Ordinal))
                            if (FileAt.TryStat(dir, name + "/" + gone) is null) { changes.Add(new FileChange('D', path + "/" + gone)); below = true; }
                }
                if (Skipped(path, skip) && !below) continue;
                if (lower is null) { changes.Insert(index, new FileChange('A', path)); any = true; }
                else if (below || opaque || MetaDiffers(st.Value, lower.Value)) { changes.Insert(index, new FileChange('C', path) { Opaque = opaque }); any = true; }
                continue;
            }
            if (Skipped(path, skip)) continue;
            changes.Add(new FileChange(lower is null ? 'A' : 'C', path)); any = true;
        }
        return any;
    }

    static bool WalkCompare(Fd merged, Fd parentRoot, string rel, List<FileChange> changes, HashSet<string> skip)
    {
        var any = false;
        using var cur = rel.Length == 0 ? FileAt.OpenDirectory(merged, ".") : RootfsPath.OpenDirectory(merged, rel, create: false);
        using var old = rel.Length == 0 ? FileAt.OpenDirectory(parentRoot, ".") : RootfsPath.OpenDirectory(parentRoot, rel, create: false);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        if (cur is not null) foreach (var n in FileAt.ListNames(cur)) names.Add(n);
        if (old is not null) foreach (var n in FileAt.ListNames(old)) names.Add(n);
        foreach (var name in names)
        {
            var path = "/" + (rel.Length == 0 ? name : rel + "/" + name);
            var a = cur is null ? null : FileAt.TryStat(cur, name);
            var b = old is null ? null : FileAt.TryStat(old, name);
            if (a is null && b is null) continue;
            if (a is null)
            {
                if (!Skipped(path, skip)) { changes.Add(new FileChange('D', path)); any = true; }
                continue;
            }
            if (a.Value.IsDirectory)
            {
                var index = changes.Count;
                var below = WalkCompare(merged, parentRoot, path[1..], changes, skip);
                if (Skipped(path, skip) && !below) continue;
                if (b is null) { changes.Insert(index, new FileChange('A', path)); any = true; }
                else if (!b.Value.IsDirectory) { changes.Insert(index, new FileChange('C', path)); any = true; }
                else if (below || MetaDiffers(a.Value, b.Value)) { changes.Insert(index, new FileChange('C', path)); any = true; }
                continue;
            }
            if (Skipped(path, skip)) continue;
            if (b is null) { changes.Add(new FileChange('A', path)); any = true; }
            else if (a.Value.Type != b.Value.Type || a.Value.Size != b.Value.Size || a.Value.MtimeSec != b.Value.MtimeSec
                || a.Value.MtimeNsec != b.Value.MtimeNsec || MetaDiffers(a.Value, b.Value)) { changes.Add(new FileChange('C', path)); any = true; }
        }
        return any;
    }

    static bool MetaDiffers(FileStat a, FileStat b) => a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid;

    static FileStat? StatIn(Fd root, string path)
    {
        var i = path.LastIndexOf('/');
        var parent = path[1..Math.Max(1, i)];
        if (i == 0) parent = "";
        try
        {
            using var d = RootfsPath.OpenDirectory(root, parent, create: false);
            return d is null ? null : FileAt.TryStat(d, path[(i + 1)..]);
        }
        catch (SyscallException e) when (e.Errno == Errno.ENOTDIR) { return null; }
    }

    static bool IsOpaque(Fd dir, string name)
    {
        try
        {
            using var d = FileAt.OpenDirectory(dir, name);
            return FileAt.ListXattrs(d, name).Any(kv => kv.Key == "trusted.overlay.opaque" && kv.Value is [(byte)'y']);
        }
        catch (SyscallException) { return false; }
    }

    /// <summary>A read-only view of the image's filesystem under a container: overlay lowers mounted
    /// together (or the one lower itself); the copy snapshotter's parent tree via a scratch snapshot.</summary>
    sealed class ParentView : IDisposable
    {
        public string Path { get; private init; } = "";
        Action? _release;

        public static ParentView Open(ISnapshotter snapshots, ContainerRecord c)
        {
            if (snapshots.Driver == "overlay")
            {
                var opt = snapshots.Mounts(c.Id)[0].Options.FirstOrDefault(o => o.StartsWith("lowerdir=", StringComparison.Ordinal));
                if (opt is null) throw new EngineException(ErrorKind.Internal, $"container {c.BareName}: snapshot has no lower layers");
                var lowers = opt["lowerdir=".Length..].Split(':');
                if (lowers.Length == 1) return new ParentView { Path = lowers[0] };
                var target = Directory.CreateTempSubdirectory("berth-parent-").FullName;
                SnapshotMounter.Mount([new SnapshotMount("overlay", "overlay", [opt])], target);
                return new ParentView { Path = target, _release = () => { SnapshotMounter.Unmount(target); Directory.Delete(target); } };
            }
            var key = "parent-" + Guid.NewGuid().ToString("N")[..12];
            var m = snapshots.Prepare(key, c.ImageLayer);
            return new ParentView { Path = m[0].Source, _release = () => snapshots.Remove(key) };
        }

        public void Dispose() => _release?.Invoke();
    }

    /// <summary>The changes as an OCI layer tar: added/changed entries from the container's filesystem,
    /// deletions as .wh.NAME, opaque directories with .wh..wh..opq.</summary>
    public static void WriteLayer(ContainerRecord c, List<FileChange> changes, Stream output)
    {
        using var rootfs = Sys.Open(c.Rootfs, O_PATH | O_DIRECTORY);
        using var tar = new TreeTar(output);
        foreach (var ch in changes.OrderBy(x => x.Path, StringComparer.Ordinal))
        {
            var i = ch.Path.LastIndexOf('/');
            var parent = ch.Path[1..Math.Max(1, i)];
            if (i == 0) parent = "";
            var name = ch.Path[(i + 1)..];
            if (ch.Kind == 'D')
            {
                tar.AddEmptyFile((parent.Length == 0 ? "" : parent + "/") + ".wh." + name);
                continue;
            }
            using var dir = RootfsPath.OpenDirectory(rootfs, parent, create: false);
            if (dir is null || FileAt.TryStat(dir, name) is not { } st) continue;
            tar.AddSingle(dir, name, ch.Path[1..], st);
            if (ch.Opaque) tar.AddEmptyFile(ch.Path[1..] + "/.wh..wh..opq");
        }
    }
}

/// <summary>Images made from containers and tarballs: `commit` (the container's image plus one layer
/// of its changes) and `import` (one layer from a tar), written to the image store as OCI manifests
/// with docker's config (history, created, the --change instructions).</summary>
public static class ImageCommitter
{
    public static string Commit(ContainerManager mgr, string nameOrId, string? reference, string author, string message, IReadOnlyList<string> changes, bool pause)
    {
        var c = mgr.Get(nameOrId);
        var paused = false;
        if (pause && c.State.Running && !c.State.Paused) { mgr.Pause(c.Id, true); paused = true; }
        try
        {
            var store = new ImageStore(mgr.Store.Root);
            var list = ContainerChanges.Compute(mgr, c);
            var baseImage = store.Resolve(c.Image);
            var (baseLayers, config) = ImageLayers.ReadWithConfigAsync(store, baseImage.Record, CancellationToken.None).GetAwaiter().GetResult();
            config.Config ??= new OciConfig();
            // docker commit: the container's config becomes the image's (Cmd, Entrypoint, Env, …).
            var cc = config.Config;
            cc.Cmd = c.Config.Cmd is null ? null : [.. c.Config.Cmd];
            cc.Entrypoint = c.Config.Entrypoint is null ? null : [.. c.Config.Entrypoint];
            cc.Env = [.. c.Config.Env.Where(e => !e.StartsWith("HOSTNAME=", StringComparison.Ordinal))];
            cc.WorkingDir = c.Config.WorkingDir;
            cc.User = c.Config.User;
            cc.Labels = c.Config.Labels.Count > 0 ? new(c.Config.Labels) : null;
            cc.StopSignal = c.Config.StopSignal is "" or "SIGTERM" ? cc.StopSignal : c.Config.StopSignal;
            ApplyChanges(cc, changes);
            var rec = WriteImage(store, config, [.. baseLayers], w => ContainerChanges.WriteLayer(c, list, w), reference,
                new History { Created = Now(), CreatedBy = string.Join(' ', new[] { c.Path }.Concat(c.Args)), Author = author.Length > 0 ? author : null, Comment = message.Length > 0 ? message : null },
                author);
            var imageId = rec.Id;
            ImageParents.Set(mgr.Store.Root, rec, baseImage.Id);
            if (reference is { Length: > 0 }) Events.ImageEvents.Emit(mgr.Store.Root, "tag", imageId, ImageReference.Parse(reference).WithDefaultTag().FamiliarString, imageId);
            Events.ContainerEvents.Emit(mgr.Store.Root, c, "commit", ("comment", message));
            return imageId;
        }
        finally { if (paused) mgr.Pause(c.Id, false); }
    }

    public static string Import(string dataRoot, Stream tar, string source, string? reference, string message, IReadOnlyList<string> changes)
    {
        var store = new ImageStore(dataRoot);
        var config = new ImageConfigFile { Architecture = Arch(), Os = "linux", Config = new OciConfig() };
        ApplyChanges(config.Config, changes);
        // Compressed input (gzip) is accepted, as docker import does.
        var buffered = new BufferedStream(tar, 1 << 16);
        // Peek at the first bytes, then read through a wrapper that replays them.
        var head = new byte[2];
        var n = buffered.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        Stream input = new ConcatStream(head.AsMemory(0, n), buffered);
        if (n == 2 && head[0] == 0x1f && head[1] == 0x8b) input = new GZipStream(input, CompressionMode.Decompress);
        var id = Write(store, config, [], w => input.CopyTo(w), reference,
            new History { Created = Now(), Comment = message.Length > 0 ? message : "Imported from " + source }, "");
        // dockerd tags the new image first (a tag event), then reports the import by ID.
        if (reference is { Length: > 0 }) Events.ImageEvents.Emit(dataRoot, "tag", id, ImageReference.Parse(reference).WithDefaultTag().FamiliarString, id);
        Events.ImageEvents.Emit(dataRoot, "import", id, id, id);
        return id;
    }

    internal static string Now() => DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    internal static string Arch() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        _ => "amd64",
    };

    static string Write(ImageStore store, ImageConfigFile config, List<Descriptor> baseLayers, Action<Stream> writeLayer, string? reference, History history, string author) =>
        WriteImage(store, config, baseLayers, writeLayer, reference, history, author).Id;

    /// <summary>Writes the new layer (gzip, digest and diffID computed while writing), the config and
    /// the manifest to the content store, the image record, and the name. Without
    /// <paramref name="writeLayer"/> the image has its base's layers only and the history entry is an
    /// empty layer (a build's metadata step). <paramref name="config"/> is completed in place.</summary>
    public static ImageRecord WriteImage(ImageStore store, ImageConfigFile config, List<Descriptor> baseLayers, Action<Stream>? writeLayer, string? reference, History history, string author)
    {
        ImageReference? name = null;
        if (reference is { Length: > 0 })
        {
            try { name = ImageReference.Parse(reference).WithDefaultTag(); }
            catch (Berth.Images.ImageException e) { throw EngineException.Invalid(e.Message); }
        }
        var tmp = Path.Combine(store.Content.Root, "ingest", "layer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.GetDirectoryName(tmp)!);
        try
        {
            var layers = new List<Descriptor>(baseLayers);
            if (writeLayer is null) history.EmptyLayer = true;
            else layers.Add(WriteLayer(store, tmp, writeLayer, config));
            return WriteConfigAndManifest(store, config, layers, name, history, author);
        }
        finally { File.Delete(tmp); }
    }

    static Descriptor WriteLayer(ImageStore store, string tmp, Action<Stream> writeLayer, ImageConfigFile config)
    {
        string diffId;
        using (var file = File.Create(tmp))
        {
            using var gz = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true);
            using var hashing = new HashingStream(gz);
            writeLayer(hashing);
            hashing.Flush();
            diffId = "sha256:" + hashing.Hex();
        }
        var layerBytes = new FileInfo(tmp).Length;
        string layerDigest;
        using (var f = File.OpenRead(tmp)) layerDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(f));
        using (var f = File.OpenRead(tmp))
            store.Content.IngestAsync(f, Digest.Parse(layerDigest), layerBytes).GetAwaiter().GetResult();
        config.RootFs.DiffIds.Add(diffId);
        return new Descriptor { MediaType = "application/vnd.oci.image.layer.v1.tar+gzip", Digest = layerDigest, Size = layerBytes };
    }

    static ImageRecord WriteConfigAndManifest(ImageStore store, ImageConfigFile config, List<Descriptor> layers, ImageReference? name, History history, string author)
    {
        config.Created = history.Created;
        if (author.Length > 0) config.Author = author;
        (config.History ??= []).Add(history);
        var configBytes = ImageJson.Serialize(config);
        var configDigest = store.Content.WriteBlobAsync(configBytes).GetAwaiter().GetResult();
        var manifest = new Manifest
        {
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = configDigest.ToString(), Size = configBytes.Length },
            Layers = layers,
        };
        var manifestBytes = ImageJson.Serialize(manifest);
        var manifestDigest = store.Content.WriteBlobAsync(manifestBytes).GetAwaiter().GetResult();
        var md = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = manifestDigest.ToString(), Size = manifestBytes.Length };
        var record = new ImageRecord
        {
            Target = md, Manifest = md, Config = manifest.Config,
            Blobs = [md.Digest, manifest.Config.Digest, .. manifest.Layers.Select(l => l.Digest)],
            Created = config.Created, Architecture = config.Architecture, Os = config.Os,
            Size = configBytes.Length + manifest.Layers.Sum(l => l.Size),
            Stored = Now(),
        };
        using (store.LockShared())
        {
            store.PutRecord(record);
            if (name is not null) store.SetName(name, md.Digest);
        }
        return record;
    }

    /// <summary>docker's --change: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME,
    /// STOPSIGNAL (JSON or shell form where the Dockerfile allows both).</summary>
    public static void ApplyChanges(OciConfig cfg, IReadOnlyList<string> changes)
    {
        foreach (var raw in changes)
        {
            var line = raw.Trim();
            var sp = line.IndexOfAny([' ', '\t']);
            var instr = (sp < 0 ? line : line[..sp]).ToUpperInvariant();
            var arg = sp < 0 ? "" : line[(sp + 1)..].Trim();
            switch (instr)
            {
                case "CMD": cfg.Cmd = ExecOrShell(arg); break;
                case "ENTRYPOINT": cfg.Entrypoint = ExecOrShell(arg); break;
                case "ENV":
                    foreach (var (k, v) in KeyValues(arg, instr))
                    {
                        cfg.Env ??= [];
                        cfg.Env.RemoveAll(e => e.StartsWith(k + "=", StringComparison.Ordinal));
                        cfg.Env.Add(k + "=" + v);
                    }
                    break;
                case "LABEL":
                    foreach (var (k, v) in KeyValues(arg, instr)) (cfg.Labels ??= [])[k] = v;
                    break;
                case "EXPOSE":
                    foreach (var p in arg.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                        (cfg.ExposedPorts ??= [])[p.Contains('/') ? p : p + "/tcp"] = new EmptyObject();
                    break;
                case "USER": cfg.User = arg; break;
                case "WORKDIR": cfg.WorkingDir = arg; break;
                case "STOPSIGNAL": cfg.StopSignal = arg; break;
                case "VOLUME":
                    foreach (var v in arg.StartsWith('[') ? Json(arg) : [.. arg.Split(' ', StringSplitOptions.RemoveEmptyEntries)])
                        (cfg.Volumes ??= [])[v] = new EmptyObject();
                    break;
                default:
                    throw EngineException.Invalid($"{instr} is not a valid change command");
            }
        }
    }

    static List<string> ExecOrShell(string arg) => arg.StartsWith('[') ? Json(arg) : ["/bin/sh", "-c", arg];

    static List<string> Json(string arg)
    {
        try { return JsonSerializer.Deserialize(arg, EngineListJsonContext.Default.ListString) ?? []; }
        catch (JsonException) { throw EngineException.Invalid($"invalid JSON array in change: {arg}"); }
    }

    static IEnumerable<(string, string)> KeyValues(string arg, string instr)
    {
        if (!arg.Contains('='))
        {
            var sp = arg.IndexOf(' ');
            if (sp < 0) throw EngineException.Invalid($"{instr} requires a value: {arg}");
            yield return (arg[..sp], arg[(sp + 1)..].Trim());
            yield break;
        }
        foreach (var kv in arg.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var i = kv.IndexOf('=');
            if (i <= 0) throw EngineException.Invalid($"{instr} names must be followed by =VALUE: {kv}");
            yield return (kv[..i], kv[(i + 1)..].Trim('"'));
        }
    }

    sealed class HashingStream(Stream inner) : Stream
    {
        readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public string Hex() => Convert.ToHexStringLower(_hash.GetCurrentHash());
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer) { _hash.AppendData(buffer); inner.Write(buffer); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>Replays bytes already read (a peek at a magic number), then reads the rest.</summary>
    internal sealed class ConcatStream(ReadOnlyMemory<byte> head, Stream rest) : Stream
    {
        ReadOnlyMemory<byte> _head = head;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (_head.Length > 0)
            {
                var n = Math.Min(buffer.Length, _head.Length);
                _head.Span[..n].CopyTo(buffer);
                _head = _head[n..];
                return n;
            }
            return rest.Read(buffer);
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<string>))]
internal sealed partial class EngineListJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
