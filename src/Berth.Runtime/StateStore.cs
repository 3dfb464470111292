using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Linux;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Runtime;

/// <summary>What the runtime persists about one container (state.json in its directory).</summary>
public sealed class ContainerRecord
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("bundle")] public string Bundle { get; set; } = "";
    [JsonPropertyName("rootfs")] public string Rootfs { get; set; } = "";
    [JsonPropertyName("initPid")] public int InitPid { get; set; }
    [JsonPropertyName("initStartTime")] public ulong InitStartTime { get; set; }
    [JsonPropertyName("created")] public DateTimeOffset Created { get; set; }
    [JsonPropertyName("owner")] public string Owner { get; set; } = "";
    [JsonPropertyName("cgroupsPath")] public string CgroupsPath { get; set; } = "";
    /// <summary>The container's cgroup in each hierarchy, resolved once at create.</summary>
    [JsonPropertyName("cgroupPaths")] public Dictionary<string, string>? CgroupPaths { get; set; }
    [JsonPropertyName("systemdCgroup")] public bool SystemdCgroup { get; set; }
    [JsonPropertyName("started")] public bool Started { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContainerRecord))]
internal sealed partial class StateJsonContext : JsonSerializerContext;

/// <summary>The runtime's state directory (--root): one directory per container holding state.json,
/// config.json (the spec as created), the exec fifo and a lock file. Commands on one id are
/// serialised with flock on that lock file.</summary>
public sealed class StateStore(string root)
{

    public string Root { get; } = root;

    public string Dir(string id) => Path.Combine(Root, id);
    public string FifoPath(string id) => Path.Combine(Dir(id), "exec.fifo");
    public string ConfigPath(string id) => Path.Combine(Dir(id), "config.json");
    string StatePath(string id) => Path.Combine(Dir(id), "state.json");

    public static void ValidateId(string id)
    {
        if (string.IsNullOrEmpty(id)) throw RuntimeException.Invalid("container id cannot be empty");
        // runc's rule: ^[\w+-\.]+$ (letters, digits, '_', '+', '-', '.').
        if (id.Length > 1024 || id is "." or ".." || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '+' or '-' or '.'))
            throw RuntimeException.Invalid($"invalid container id \"{id}\"");
    }

    /// <summary>Creates the container's directory; fails if the id is taken. Returns the held lock.</summary>
    public ContainerLock CreateDir(string id)
    {
        ValidateId(id);
        Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (mkdirat(AT_FDCWD, Dir(id), 0x1c0) != 0)
        {
            var e = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (e == Errno.EEXIST) throw new RuntimeException(ErrorKind.AlreadyExists, $"container \"{id}\" already exists");
            throw new SyscallException("mkdir", Dir(id), e);
        }
        return ContainerLock.Acquire(Dir(id));
    }

    /// <summary>Locks an existing container; NotFound when it does not exist (or vanished meanwhile).</summary>
    public ContainerLock Lock(string id)
    {
        ValidateId(id);
        if (!Directory.Exists(Dir(id))) throw RuntimeException.NotFound(id);
        ContainerLock l;
        try { l = ContainerLock.Acquire(Dir(id)); }
        catch (SyscallException e) when (e.Errno is Errno.ENOENT) { throw RuntimeException.NotFound(id); }
        if (!File.Exists(StatePath(id)))
        {
            l.Dispose();
            throw RuntimeException.NotFound(id);
        }
        return l;
    }

    public ContainerRecord Load(string id)
    {
        try
        {
            var bytes = File.ReadAllBytes(StatePath(id));
            return JsonSerializer.Deserialize(bytes, StateJsonContext.Default.ContainerRecord)
                ?? throw RuntimeException.NotFound(id);
        }
        catch (FileNotFoundException) { throw RuntimeException.NotFound(id); }
        catch (DirectoryNotFoundException) { throw RuntimeException.NotFound(id); }
        catch (JsonException e) { throw new RuntimeException(ErrorKind.Internal, $"container \"{id}\": corrupt state: {e.Message}"); }
    }

    public Spec LoadSpec(string id) => SpecJson.ParseSpec(File.ReadAllBytes(ConfigPath(id)), ConfigPath(id));

    public void Save(ContainerRecord r) =>
        AtomicFile.Write(StatePath(r.Id), JsonSerializer.SerializeToUtf8Bytes(r, StateJsonContext.Default.ContainerRecord));

    public void SaveSpec(string id, Spec spec) => AtomicFile.Write(ConfigPath(id), SpecJson.Serialize(spec));

    /// <summary>Keeps the bundle's config.json as it was given (create must not pay for re-serializing it).</summary>
    public void SaveSpecBytes(string id, byte[] config) => AtomicFile.Write(ConfigPath(id), config);

    public IEnumerable<string> ListIds()
    {
        if (!Directory.Exists(Root)) yield break;
        foreach (var d in Directory.EnumerateDirectories(Root).Order(StringComparer.Ordinal))
            if (File.Exists(Path.Combine(d, "state.json"))) yield return Path.GetFileName(d);
    }

    public void Remove(string id)
    {
        try { Directory.Delete(Dir(id), recursive: true); }
        catch (DirectoryNotFoundException) { }
    }
}

/// <summary>An exclusive flock on a container directory's lock file.</summary>
public sealed class ContainerLock : IDisposable
{
    readonly Fd _fd;
    ContainerLock(Fd fd) => _fd = fd;

    public static ContainerLock Acquire(string dir)
    {
        var fd = Sys.Open(Path.Combine(dir, "lock"), O_RDWR | O_CREAT, 0x180);
        if (flock(fd.Value, LOCK_EX) != 0)
        {
            fd.Dispose();
            throw SyscallException.Last("flock", dir);
        }
        return new ContainerLock(fd);
    }

    public void Dispose() => _fd.Dispose();
}

public static class AtomicFile
{
    /// <summary>Write to a temp file and rename it over the target: readers never see half a file.
    /// <paramref name="durable"/> adds an fsync before the rename, for state that must survive a
    /// power loss. The runtime's own state lives under /run, which a reboot empties anyway, so it
    /// skips the fsync (as runc and crun do).</summary>
    public static void Write(string path, ReadOnlySpan<byte> data, bool durable = false)
    {
        var tmp = path + ".tmp";
        using (var fd = Sys.Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0x180))
        {
            Sys.WriteAll(fd.Value, data, tmp);
            if (durable && fsync(fd.Value) != 0) throw SyscallException.Last("fsync", tmp);
        }
        if (rename(tmp, path) != 0) throw SyscallException.Last("rename", path);
    }
}
