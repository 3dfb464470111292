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
    /// <summary>Whether config.json has poststart/poststop hooks: start and delete then need to read it.</summary>
    [JsonPropertyName("hasPostHooks")] public bool HasPostHooks { get; set; }
    /// <summary>The cgroup file that says whether the container is frozen (null: no freezer, or a
    /// record from before it was kept): status reads it without discovering the cgroup layout.</summary>
    public string? FreezerStateFile { get; set; }
    /// <summary>The container shares the host's mount namespace: delete unmounts what create mounted.</summary>
    public bool HostMountNs { get; set; }
    /// <summary>Created by a rootless runtime: cgroups it could not write were skipped.</summary>
    public bool Rootless { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
}

/// <summary>state.json, written and read by hand: every runtime command reads it on a cold start,
/// where the serializer's metadata would cost more than the rest of the command.</summary>
internal static class RecordJson
{
    public static byte[] Write(ContainerRecord r)
    {
        var buf = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buf))
        {
            w.WriteStartObject();
            w.WriteString("id", r.Id);
            w.WriteString("bundle", r.Bundle);
            w.WriteString("rootfs", r.Rootfs);
            w.WriteNumber("initPid", r.InitPid);
            w.WriteNumber("initStartTime", r.InitStartTime);
            w.WriteString("created", r.Created);
            w.WriteString("owner", r.Owner);
            w.WriteString("cgroupsPath", r.CgroupsPath);
            WriteMap(w, "cgroupPaths", r.CgroupPaths);
            w.WriteBoolean("systemdCgroup", r.SystemdCgroup);
            w.WriteBoolean("hasPostHooks", r.HasPostHooks);
            if (r.FreezerStateFile is not null) w.WriteString("freezerStateFile", r.FreezerStateFile);
            w.WriteBoolean("hostMountNs", r.HostMountNs);
            if (r.Rootless) w.WriteBoolean("rootless", true);
            WriteMap(w, "annotations", r.Annotations);
            w.WriteEndObject();
        }
        return buf.WrittenSpan.ToArray();
    }

    static void WriteMap(Utf8JsonWriter w, string name, Dictionary<string, string>? map)
    {
        if (map is null) return;
        w.WriteStartObject(name);
        foreach (var (k, v) in map) w.WriteString(k, v);
        w.WriteEndObject();
    }

    public static ContainerRecord Read(byte[] bytes)
    {
        using var doc = JsonDocument.Parse(bytes);
        var r = new ContainerRecord();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            var v = p.Value;
            switch (p.Name)
            {
                case "id": r.Id = v.GetString()!; break;
                case "bundle": r.Bundle = v.GetString()!; break;
                case "rootfs": r.Rootfs = v.GetString()!; break;
                case "initPid": r.InitPid = v.GetInt32(); break;
                case "initStartTime": r.InitStartTime = v.GetUInt64(); break;
                case "created": r.Created = v.GetDateTimeOffset(); break;
                case "owner": r.Owner = v.GetString()!; break;
                case "cgroupsPath": r.CgroupsPath = v.GetString()!; break;
                case "cgroupPaths": r.CgroupPaths = ReadMap(v); break;
                case "systemdCgroup": r.SystemdCgroup = v.GetBoolean(); break;
                case "hasPostHooks": r.HasPostHooks = v.GetBoolean(); break;
                case "freezerStateFile": r.FreezerStateFile = v.GetString(); break;
                case "hostMountNs": r.HostMountNs = v.GetBoolean(); break;
                case "rootless": r.Rootless = v.GetBoolean(); break;
                case "annotations": r.Annotations = ReadMap(v); break;
            }
        }
        return r;
    }

    static Dictionary<string, string> ReadMap(JsonElement e)
    {
        var d = new Dictionary<string, string>();
        foreach (var p in e.EnumerateObject()) d[p.Name] = p.Value.GetString()!;
        return d;
    }
}

/// <summary>The runtime's state directory (--root): one directory per container holding state.json,
/// config.json (the spec as created) and, between create and start, the exec fifo. Commands on one
/// id are serialised with flock on the container's directory itself (no lock file: a file created
/// and removed per container costs an inode allocation on the state filesystem).</summary>
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
            return RecordJson.Read(bytes);
        }
        catch (FileNotFoundException) { throw RuntimeException.NotFound(id); }
        catch (DirectoryNotFoundException) { throw RuntimeException.NotFound(id); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException) { throw new RuntimeException(ErrorKind.Internal, $"container \"{id}\": corrupt state: {e.Message}"); }
    }

    public Spec LoadSpec(string id) => SpecJson.ParseSpec(File.ReadAllBytes(ConfigPath(id)), ConfigPath(id));

    public void Save(ContainerRecord r) =>
        AtomicFile.Write(StatePath(r.Id), RecordJson.Write(r));

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

/// <summary>An exclusive flock on a container's directory.</summary>
public sealed class ContainerLock : IDisposable
{
    readonly Fd _fd;
    ContainerLock(Fd fd) => _fd = fd;

    public static ContainerLock Acquire(string dir)
    {
        var fd = Sys.Open(dir, O_RDONLY | O_DIRECTORY);
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
