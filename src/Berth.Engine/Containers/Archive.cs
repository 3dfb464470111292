using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Images.Unpack;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>What docker's HEAD/GET /containers/ID/archive report about a path (the
/// X-Docker-Container-Path-Stat header is this, as base64 JSON). Mode is Go's os.FileMode.</summary>
public sealed class PathStat
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("size")] public long Size { get; set; }
    [JsonPropertyName("mode")] public uint Mode { get; set; }
    [JsonPropertyName("mtime")] public string Mtime { get; set; } = "";
    [JsonPropertyName("linkTarget")] public string LinkTarget { get; set; } = "";

    public const uint ModeDir = 1u << 31, ModeSymlink = 1u << 27, ModeDevice = 1u << 26, ModeNamedPipe = 1u << 25, ModeSocket = 1u << 24,
        ModeSetuid = 1u << 23, ModeSetgid = 1u << 22, ModeCharDevice = 1u << 21, ModeSticky = 1u << 20;

    public bool IsDir => (Mode & ModeDir) != 0;
    public bool IsSymlink => (Mode & ModeSymlink) != 0;

    /// <summary>The value of docker's X-Docker-Container-Path-Stat header.</summary>
    public string ToHeader() => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(this, ArchiveJsonContext.Default.PathStat));

    public static uint GoMode(uint unixMode)
    {
        var m = unixMode & 0x1ff;
        switch (unixMode & S_IFMT)
        {
            case S_IFDIR: m |= ModeDir; break;
            case S_IFLNK: m |= ModeSymlink; break;
            case S_IFIFO: m |= ModeNamedPipe; break;
            case S_IFSOCK: m |= ModeSocket; break;
            case S_IFCHR: m |= ModeDevice | ModeCharDevice; break;
            case S_IFBLK: m |= ModeDevice; break;
        }
        if ((unixMode & 0x800) != 0) m |= ModeSetuid;
        if ((unixMode & 0x400) != 0) m |= ModeSetgid;
        if ((unixMode & 0x200) != 0) m |= ModeSticky;
        return m;
    }
}

[JsonSerializable(typeof(PathStat))]
public sealed partial class ArchiveJsonContext : JsonSerializerContext;

/// <summary>
/// Files in and out of a container as tar streams (library API for `berth cp`/`export` and the
/// Docker API's HEAD/GET/PUT /containers/ID/archive and /containers/ID/export), for running and
/// stopped containers alike. Every container path is resolved with openat2(RESOLVE_IN_ROOT) below
/// the container's root, and the final component is acted on with *at calls that do not follow it,
/// so no symlink in the container can lead a read or a write out of it. A running container's root
/// is /proc/PID/root, so its bind and volume mounts are seen (and written) as the container sees
/// them; a stopped one's is its rootfs, with bind/volume destinations mapped to their sources.
/// </summary>
public static class ContainerArchive
{
    /// <summary>One resolved place: the directory fd of the base (container root or a mount's source)
    /// and the path relative to it.</summary>
    sealed class View(Fd root, string rel, string containerPath) : IDisposable
    {
        public Fd Root { get; } = root;
        public string Rel { get; } = rel;
        public string ContainerPath { get; } = containerPath;
        public void Dispose() => Root.Dispose();
    }

    static View Open(ContainerManager mgr, ContainerRecord c, string path)
    {
        var clean = RootfsPath.CleanInRoot("/" + path);
        if (c.State.Running && c.State.Pid > 0)
        {
            if (ProcStat.Read(c.State.Pid) is { } st && (c.Monitor is not { InitStartTime: > 0 } m || m.InitStartTime == st.StartTime))
            {
                try { return new View(Sys.Open($"/proc/{c.State.Pid}/root", O_PATH | O_DIRECTORY), clean.TrimStart('/'), clean); }
                catch (SyscallException) { /* exited meanwhile: the stopped view below */ }
            }
        }
        mgr.MountRootfs(c);
        // The longest bind/volume destination that holds the path maps it to the mount's source.
        foreach (var mnt in c.Mounts.Where(x => x.Type is "bind" or "volume" && x.Source.Length > 0).OrderByDescending(x => x.Destination.Length))
        {
            var dest = RootfsPath.CleanInRoot(mnt.Destination);
            if (clean == dest || clean.StartsWith(dest + "/", StringComparison.Ordinal))
                return new View(Sys.Open(mnt.Source, O_PATH | O_DIRECTORY), clean[dest.Length..].TrimStart('/'), clean);
        }
        return new View(Sys.Open(c.Rootfs, O_PATH | O_DIRECTORY), clean.TrimStart('/'), clean);
    }

    static (string Parent, string Name) Split(string rel)
    {
        var i = rel.LastIndexOf('/');
        return i < 0 ? ("", rel) : (rel[..i], rel[(i + 1)..]);
    }

    /// <summary>True when the path asks for a directory: "dir/" or "dir/.".</summary>
    public static bool AssertsDirectory(string path) => path.EndsWith('/') || path.EndsWith("/.", StringComparison.Ordinal) || path == ".";

    static EngineException NotFound(ContainerRecord c, string path) =>
        new(ErrorKind.NotFound, $"Could not find the file {path} in container {c.BareName}");

    /// <summary>HEAD /containers/ID/archive: the path's metadata, the final symlink not followed
    /// (its target is reported in LinkTarget, resolved inside the container).</summary>
    public static PathStat Stat(ContainerManager mgr, string nameOrId, string path)
    {
        var c = mgr.Get(nameOrId);
        return StatIn(mgr, c, path);
    }

    static PathStat StatIn(ContainerManager mgr, ContainerRecord c, string path)
    {
        using var v = Open(mgr, c, path);
        var (parent, name) = Split(v.Rel);
        FileStat st;
        if (name.Length == 0 || AssertsDirectory(path))
        {
            using var fd = RootfsPath.TryOpen(v.Root, v.Rel) ?? throw NotFound(c, path);
            st = FileAt.TryStat(fd, "") ?? throw NotFound(c, path);
            if (AssertsDirectory(path) && !st.IsDirectory) throw new EngineException(ErrorKind.InvalidArgument, $"{path}: not a directory");
        }
        else
        {
            using var dir = OpenParent(v.Root, parent) ?? throw NotFound(c, path);
            st = FileAt.TryStat(dir, name) ?? throw NotFound(c, path);
        }
        var stat = new PathStat
        {
            Name = name.Length == 0 ? "/" : name,
            Size = st.Size,
            Mode = PathStat.GoMode(st.Mode),
            Mtime = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec).AddTicks(st.MtimeNsec / 100).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
        };
        if (st.IsSymlink) stat.LinkTarget = ResolveLink(mgr, c, v.ContainerPath);
        return stat;
    }

    static Fd? OpenParent(Fd root, string parent)
    {
        try { return RootfsPath.OpenDirectory(root, parent, create: false); }
        catch (SyscallException e) when (e.Errno is Errno.ENOTDIR) { return null; }
    }

    /// <summary>A symlink chain followed inside the container (each hop's target taken relative to
    /// the container's root), to the first name that is not a symlink.</summary>
    static string ResolveLink(ContainerManager mgr, ContainerRecord c, string containerPath)
    {
        var cur = containerPath;
        for (var hop = 0; hop < 40; hop++)
        {
            using var v = Open(mgr, c, cur);
            var (parent, name) = Split(v.Rel);
            if (name.Length == 0) return cur;
            using var dir = OpenParent(v.Root, parent);
            if (dir is null || FileAt.TryStat(dir, name) is not { IsSymlink: true }) return cur;
            var target = FileAt.ReadLink(dir, name) ?? "";
            var containerDir = cur[..cur.LastIndexOf('/')];
            cur = RootfsPath.CleanInRoot(target.StartsWith('/') ? target : containerDir + "/" + target);
        }
        throw new EngineException(ErrorKind.InvalidArgument, $"{containerPath}: too many levels of symbolic links");
    }

    /// <summary>GET /containers/ID/archive: a tar of the path (a file, a symlink, or a directory with
    /// everything below it) named by its base name ("dir/." archives the contents as "./…"), or by
    /// <paramref name="rebaseName"/>. Returns the path's stat, as docker's header carries it.</summary>
    public static PathStat Get(ContainerManager mgr, string nameOrId, string path, Stream output, string? rebaseName = null)
    {
        var c = mgr.Get(nameOrId);
        var stat = StatIn(mgr, c, path);
        using var v = Open(mgr, c, path);
        using var tar = new TreeTar(output);
        var contents = path.EndsWith("/.", StringComparison.Ordinal) || path == ".";
        var (parent, name) = Split(v.Rel);
        if (name.Length == 0 || AssertsDirectory(path))
        {
            using var dir = RootfsPath.OpenDirectory(v.Root, v.Rel, create: false) ?? throw NotFound(c, path);
            var top = rebaseName ?? (contents ? "." : name.Length == 0 ? "." : name);
            tar.Add(dir, "", top);
        }
        else
        {
            using var dir = OpenParent(v.Root, parent) ?? throw NotFound(c, path);
            tar.Add(dir, name, rebaseName ?? name);
        }
        return stat;
    }

    /// <summary>PUT /containers/ID/archive: extracts a tar into the directory at
    /// <paramref name="path"/>, which must exist. The files get the owners the tar names, as dockerd's
    /// untar sets them (Testcontainers' CopyAsync sends its uid/gid so); <paramref name="copyUidGid"/>
    /// (docker cp -a) changes that only for a container with a configured user, which is not done here.</summary>
    public static void Put(ContainerManager mgr, string nameOrId, string path, Stream input, bool copyUidGid)
    {
        var c = mgr.Get(nameOrId);
        if (c.HostConfig.ReadonlyRootfs && !UnderWritableMount(c, path))
            throw new EngineException(ErrorKind.FailedPrecondition, $"container rootfs is marked read-only: {c.BareName}");
        using var v = Open(mgr, c, path);
        Fd? dir;
        try { dir = RootfsPath.OpenDirectory(v.Root, v.Rel, create: false); }
        catch (SyscallException e) when (e.Errno == Errno.ENOTDIR) { throw new EngineException(ErrorKind.InvalidArgument, $"extraction point is not a directory: {path}"); }
        if (dir is null) throw NotFound(c, path);
        using (dir)
        {
            try
            {
                LayerUnpacker.Unpack(input, Oci.Image.LayerCompression.None, RootfsPath.ProcFdPath(dir),
                    new UnpackOptions { Whiteouts = WhiteoutMode.None, Chown = true }, expectedDiffId: null);
            }
            catch (LayerException e) { throw new EngineException(ErrorKind.InvalidArgument, $"copying into container {c.BareName}: {e.Message.Replace("layer: ", "")}"); }
        }
    }

    static bool UnderWritableMount(ContainerRecord c, string path)
    {
        var clean = RootfsPath.CleanInRoot("/" + path);
        return c.Mounts.Any(m => m.RW && (clean == RootfsPath.CleanInRoot(m.Destination) || clean.StartsWith(RootfsPath.CleanInRoot(m.Destination) + "/", StringComparison.Ordinal)));
    }

    /// <summary>GET /containers/ID/export: the container's root filesystem as a tar (its own files,
    /// not its bind or volume mounts), names without a leading "./", as docker exports.</summary>
    public static void Export(ContainerManager mgr, string nameOrId, Stream output)
    {
        var c = mgr.Get(nameOrId);
        mgr.MountRootfs(c);
        using var root = Sys.Open(c.Rootfs, O_PATH | O_DIRECTORY);
        using var tar = new TreeTar(output);
        tar.AddContents(root, "");
    }

    /// <summary>Extracts a tar stream into a host directory (the local side of `cp` from a container),
    /// every member resolved inside <paramref name="dir"/>.</summary>
    public static void ExtractLocal(Stream input, string dir)
    {
        try
        {
            LayerUnpacker.Unpack(input, Oci.Image.LayerCompression.None, dir,
                new UnpackOptions { Whiteouts = WhiteoutMode.None, Chown = false }, expectedDiffId: null);
        }
        catch (LayerException e) { throw new EngineException(ErrorKind.InvalidArgument, e.Message.Replace("layer: ", "")); }
    }
}
