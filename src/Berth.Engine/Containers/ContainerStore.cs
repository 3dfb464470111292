using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>The engine's metadata store for containers. Persistent data under
/// <c>&lt;root&gt;/containers/&lt;id&gt;/</c> (container.json written atomically, a lock file for
/// read-modify-write, the log, /etc files, the bundle's config.json) and a name index
/// <c>&lt;root&gt;/names/&lt;name&gt;</c> (a file holding the id, created with O_EXCL: reserving a name
/// takes no lock). Runtime state, which a reboot empties, under <c>&lt;runroot&gt;</c>. Unrelated
/// containers never share a lock.</summary>
public sealed class ContainerStore
{
    public string Root { get; }
    public string RunRoot { get; }
    public string ContainersDir { get; }
    public string NamesDir { get; }
    /// <summary>berth-runc's --root: the runtime's own state.</summary>
    public string RuntimeRoot { get; }

    public ContainerStore(string root, string runRoot)
    {
        Root = Path.GetFullPath(root);
        RunRoot = Path.GetFullPath(runRoot);
        ContainersDir = Path.Combine(Root, "containers");
        NamesDir = Path.Combine(Root, "names");
        RuntimeRoot = Path.Combine(RunRoot, "runc");
    }

    public string Dir(string id) => Path.Combine(ContainersDir, id);
    public string RunDir(string id) => Path.Combine(RunRoot, "containers", id);
    public string RecordPath(string id) => Path.Combine(Dir(id), "container.json");
    public string BundleDir(string id) => Path.Combine(Dir(id), "bundle");

    /// <summary>64 random hex digits, from the kernel's CSPRNG (/dev/urandom, as docker's crypto/rand):
    /// RandomNumberGenerator would load and initialise OpenSSL in every `run`/`create` (measured: the
    /// one use of libssl/libcrypto on that path).</summary>
    public static string NewId()
    {
        Span<byte> b = stackalloc byte[32];
        using (var f = new FileStream("/dev/urandom", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0))
            f.ReadExactly(b);
        return Convert.ToHexStringLower(b);
    }

    /// <summary>Adds a new container: its directory and record first, then the name. A CLI killed
    /// between the two leaves a record without a name, which <see cref="ListIds"/> skips and
    /// collects; a name never points at a container that does not exist.</summary>
    public void Add(ContainerRecord c)
    {
        Directory.CreateDirectory(ContainersDir);
        Directory.CreateDirectory(NamesDir);
        Directory.CreateDirectory(Dir(c.Id));
        try
        {
            Save(c, durable: !c.HostConfig.AutoRemove);
            ReserveName(c.BareName, c.Id);
        }
        catch
        {
            try { Directory.Delete(Dir(c.Id), true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Creates names/NAME holding the id (O_EXCL). A name whose container no longer exists
    /// is stale (a remove was interrupted): it is reclaimed under the names lock.</summary>
    public void ReserveName(string name, string id)
    {
        if (!ValidName(name))
            throw EngineException.Invalid($"invalid container name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        Directory.CreateDirectory(NamesDir);
        var path = Path.Combine(NamesDir, name);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0x1a4);
            if (fd >= 0)
            {
                using var f = new Fd(fd);
                Sys.WriteAll(f.Value, Encoding.ASCII.GetBytes(id), path);
                return;
            }
            var err = Marshal.GetLastPInvokeError();
            if (err != Errno.EEXIST) throw new SyscallException("open", path, err);
            var owner = ReadName(name);
            if (owner is not null && Exists(owner))
                throw new EngineException(ErrorKind.AlreadyExists,
                    $"the container name \"{name}\" is already in use by container \"{owner}\": remove (or rename) that container to be able to reuse that name");
            using (LockFile(Path.Combine(NamesDir, ".lock")))
            {
                if (ReadName(name) is { } again && !Exists(again)) File.Delete(path);
            }
        }
        throw new EngineException(ErrorKind.AlreadyExists, $"the container name \"{name}\" is already in use");
    }

    public void ReleaseName(string name, string id)
    {
        if (ReadName(name) == id) File.Delete(Path.Combine(NamesDir, name));
    }

    string? ReadName(string name)
    {
        try { return File.ReadAllText(Path.Combine(NamesDir, name)).Trim(); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
    }

    public static bool ValidName(string n) =>
        n.Length is > 0 and < 128 && char.IsAsciiLetterOrDigit(n[0]) && n.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '.' or '-');

    public bool Exists(string id) => File.Exists(RecordPath(id));

    /// <summary>Full id, name or unique id prefix → id.</summary>
    public string Resolve(string nameOrId)
    {
        if (nameOrId.Length == 0) throw EngineException.NoSuchContainer(nameOrId);
        if (nameOrId.Length == 64 && Exists(nameOrId)) return nameOrId;
        if (ValidName(nameOrId) && ReadName(nameOrId) is { } byName && Exists(byName)) return byName;
        if (nameOrId.All(char.IsAsciiHexDigitLower) && Directory.Exists(ContainersDir))
        {
            var matches = Directory.EnumerateDirectories(ContainersDir, nameOrId + "*").Select(System.IO.Path.GetFileName).Where(i => Exists(i!)).ToList();
            if (matches.Count == 1) return matches[0]!;
            if (matches.Count > 1) throw EngineException.Invalid($"container id prefix \"{nameOrId}\" is ambiguous ({matches.Count} containers)");
        }
        throw EngineException.NoSuchContainer(nameOrId);
    }

    public ContainerRecord Load(string id)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(RecordPath(id)); }
        catch (FileNotFoundException) { throw EngineException.NoSuchContainer(id); }
        catch (DirectoryNotFoundException) { throw EngineException.NoSuchContainer(id); }
        return JsonSerializer.Deserialize(bytes, EngineJsonContext.Default.ContainerRecord)
            ?? throw new EngineException(ErrorKind.Internal, $"container {id}: empty record");
    }

    /// <summary>Atomic always; <paramref name="durable"/> (fsync, ~14 ms on this machine's disk) for
    /// what must survive a power loss: the container's configuration. Run-time changes (monitor,
    /// running, exit) are not synced: after a crash the reconcile marks the container exited anyway.</summary>
    public void Save(ContainerRecord c, bool durable = false) =>
        WriteAtomic(RecordPath(c.Id), JsonSerializer.SerializeToUtf8Bytes(c, EngineJsonContext.Default.ContainerRecord), durable);

    /// <summary>Read-modify-write of one container's record under its own lock.</summary>
    public ContainerRecord Update(string id, Action<ContainerRecord> change, bool durable = false)
    {
        using var l = Lock(id);
        var c = Load(id);
        change(c);
        Save(c, durable);
        return c;
    }

    /// <summary>The container's lock (flock on its lock file); held only around record changes.</summary>
    public IDisposable Lock(string id)
    {
        if (!Directory.Exists(Dir(id))) throw EngineException.NoSuchContainer(id);
        return LockFile(Path.Combine(Dir(id), "lock"));
    }

    internal static Fd LockFile(string path)
    {
        var fd = Sys.Open(path, O_RDWR | O_CREAT, 0x180);
        while (flock(fd.Value, LOCK_EX) != 0)
        {
            if (Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
            var e = SyscallException.Last("flock", path);
            fd.Dispose();
            throw e;
        }
        return fd;
    }

    /// <summary>Ids of the containers that exist (have a record and own their name). Records that
    /// never got their name (a CLI killed during create) are collected once they are a minute old.</summary>
    public List<string> ListIds() => ListRecords().Select(c => c.Id).ToList();

    /// <summary>As <see cref="ListIds"/>, with the records read on the way (each read once).</summary>
    public List<ContainerRecord> ListRecords()
    {
        var records = new List<ContainerRecord>();
        if (!Directory.Exists(ContainersDir)) return records;
        foreach (var d in Directory.EnumerateDirectories(ContainersDir))
        {
            var id = System.IO.Path.GetFileName(d);
            if (id.StartsWith('.')) continue;
            ContainerRecord c;
            try { c = Load(id); }
            catch (EngineException) { CollectIfStale(d); continue; }
            catch (JsonException) { continue; }
            if (ReadName(c.BareName) != id) { CollectIfStale(d); continue; }
            records.Add(c);
        }
        return records;
    }

    static void CollectIfStale(string dir)
    {
        try
        {
            if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(dir) > TimeSpan.FromMinutes(1)) Directory.Delete(dir, true);
        }
        catch (IOException) { }
    }

    /// <summary>Removes the container: its directory is renamed away first (atomic: from then on it
    /// does not exist), then the name and the runtime directory go, then the files.</summary>
    public void Remove(string id, string name)
    {
        ReleaseRootfs(id);
        var trash = Path.Combine(ContainersDir, ".removing-" + id);
        try { Directory.Move(Dir(id), trash); }
        catch (DirectoryNotFoundException) { }
        ReleaseName(name, id);
        try { Directory.Delete(RunDir(id), true); } catch (DirectoryNotFoundException) { }
        try { Directory.Delete(trash, true); } catch (DirectoryNotFoundException) { }
    }

    /// <summary>Unmounts a container's image rootfs and removes its writable snapshot (nothing to do
    /// for a --rootfs container). Before any recursive delete: that must never walk into the image.</summary>
    public void ReleaseRootfs(string id)
    {
        var rootfs = Path.Combine(Dir(id), "rootfs");
        // A --rootfs container has no rootfs directory here: no need to read the mount table.
        while (Directory.Exists(rootfs) && MountInfo.IsMountPoint(rootfs))
            if (umount2(rootfs, MNT_DETACH) != 0) throw SyscallException.Last("umount2", rootfs);
        var images = Path.Combine(Root, "images", "snapshots");
        if (!File.Exists(Path.Combine(images, "driver"))) return;
        var snapshots = Berth.Images.Snapshots.OverlaySnapshotter.Create(Root);
        if (snapshots.Containers().Contains(id)) snapshots.Remove(id);
    }

    /// <summary>Temp file, (fsync,) rename: readers see the old or the new record, never half of one.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> data, bool durable)
    {
        var tmp = path + ".tmp-" + Environment.ProcessId;
        using (var fd = Sys.Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0x180))
        {
            Sys.WriteAll(fd.Value, data, tmp);
            if (durable) fsync(fd.Value);
        }
        if (rename(tmp, path) != 0) throw SyscallException.Last("rename", $"{tmp} to {path}");
    }
}
