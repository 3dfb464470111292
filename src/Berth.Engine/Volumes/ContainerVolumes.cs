using Berth.Engine.Containers;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Volumes;

/// <summary>
/// The volumes of one container, as docker treats them: the image's Config.Volumes become anonymous
/// volumes (named by a random id, marked anonymous, removed by `rm -v` and by --rm); a volume mounted
/// for the first time while empty receives a copy of what the image has at the mount's destination
/// (unless nocopy).
/// </summary>
public static class ContainerVolumes
{
    const string AnonymousMarker = "anonymous";

    /// <summary>One anonymous volume mount point per image volume the request does not mount itself.</summary>
    public static void AddImageVolumes(ContainerRecord c, Dictionary<string, Berth.Oci.Image.EmptyObject>? volumes)
    {
        if (volumes is null) return;
        c.Config.Volumes = volumes;
        foreach (var path in volumes.Keys.Order(StringComparer.Ordinal))
        {
            var dest = path.Length > 1 ? path.TrimEnd('/') : path;
            if (!dest.StartsWith('/') || c.Mounts.Any(m => m.Destination.TrimEnd('/') == dest)) continue;
            c.Mounts.Add(new MountPoint { Type = "volume", Name = "", Destination = dest, Mode = "", RW = true, Propagation = "" });
        }
    }

    /// <summary>Creates the container's volumes that do not exist yet (anonymous ones get a name) and
    /// copies the image's content into empty ones. The rootfs must be mounted.</summary>
    public static void Prepare(ContainerRecord c, string dataRoot)
    {
        var store = new VolumeStore(dataRoot);
        foreach (var mp in c.Mounts.Where(m => m.Type == "volume" && m.Source.Length == 0))
        {
            var anonymous = string.IsNullOrEmpty(mp.Name);
            var with = mp.CreateWith;
            var vol = store.Create(anonymous ? null : mp.Name, existingOk: !anonymous, with?.Labels, with?.DriverConfig?.Options, with?.DriverConfig?.Name);
            if (anonymous) File.WriteAllText(Path.Combine(store.Dir, vol.Name, AnonymousMarker), c.Id);
            mp.Name = vol.Name;
            mp.Source = vol.Mountpoint;
        }
        // a volume with mount options is filled when it is mounted, at start (VolumeMounts)
        foreach (var mp in c.Mounts.Where(m => m.Type == "volume" && m.Mode != "nocopy" && store.Options(m.Name!).Count == 0))
            FillIfEmpty(c, mp);
    }

    /// <summary>docker's copy of the image's content at the mount's destination into an empty volume.</summary>
    internal static void FillIfEmpty(ContainerRecord c, MountPoint mp)
    {
        if (Directory.Exists(mp.Source) && !Directory.EnumerateFileSystemEntries(mp.Source).Any())
            CopyUp(c.Rootfs, mp.Destination, mp.Source);
    }

    /// <summary>Removes the anonymous volumes created for this container (`rm -v`, --rm, a failed create).</summary>
    public static void RemoveAnonymous(ContainerRecord c, string dataRoot)
    {
        var store = new VolumeStore(dataRoot);
        foreach (var mp in c.Mounts.Where(m => m.Type == "volume" && !string.IsNullOrEmpty(m.Name)))
        {
            var dir = Path.Combine(store.Dir, mp.Name!);
            var marker = Path.Combine(dir, AnonymousMarker);
            try
            {
                if (File.Exists(marker) && File.ReadAllText(marker).Trim() == c.Id) store.DeleteDirectory(mp.Name!);
            }
            catch (Exception e) when (e is IOException or EngineException) { }
        }
    }

    /// <summary>Copies the directory at <paramref name="dest"/> inside the rootfs (resolved in-root)
    /// into <paramref name="target"/>: files, directories and symlinks (never followed) with their
    /// modes and owners.</summary>
    static void CopyUp(string rootfs, string dest, string target)
    {
        if (rootfs.Length == 0 || !Directory.Exists(rootfs)) return;
        using var root = Sys.Open(rootfs, O_PATH | O_DIRECTORY);
        using var src = RootfsPath.TryOpen(root, dest);
        if (src is null || !RootfsPath.IsDirectory(src)) return;
        var from = RootfsPath.ProcFdPath(src);
        if (FileAt.TryStat(src, "") is { } st)
        {
            fchownat(AT_FDCWD, target, st.Uid, st.Gid, 0);
            File.SetUnixFileMode(target, (UnixFileMode)(st.Mode & 0xfff));
        }
        CopyTree(new DirectoryInfo(from), target);
    }

    static void CopyTree(DirectoryInfo from, string to)
    {
        foreach (var e in from.EnumerateFileSystemInfos())
        {
            var dst = Path.Combine(to, e.Name);
            if (e.LinkTarget is { } link) File.CreateSymbolicLink(dst, link);
            else if (e is DirectoryInfo d)
            {
                Directory.CreateDirectory(dst);
                CopyTree(d, dst);
            }
            else if (e is FileInfo f && (f.Attributes & FileAttributes.Device) == 0) f.CopyTo(dst);
            else continue;
            CopyOwnerAndMode(e, dst);
        }
    }

    static void CopyOwnerAndMode(FileSystemInfo e, string dst)
    {
        var st = FileAt.TryStat(e.FullName);
        if (st is null) return;
        fchownat(AT_FDCWD, dst, st.Value.Uid, st.Value.Gid, AT_SYMLINK_NOFOLLOW);
        if (e.LinkTarget is null) File.SetUnixFileMode(dst, (UnixFileMode)(st.Value.Mode & 0xfff));
    }
}
