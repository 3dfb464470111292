using System.Text.Json.Serialization;
using Berth.Engine.Containers;
using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Volumes;

/// <summary>A named volume as `docker volume inspect` shows it.</summary>
public sealed class VolumeInfo
{
    public string CreatedAt { get; set; } = "";
    public string Driver { get; set; } = "local";
    /// <summary>null in JSON when empty, as dockerd answers.</summary>
    [JsonConverter(typeof(NullWhenEmptyConverter))]
    public Dictionary<string, string> Labels { get; set; } = [];
    public string Mountpoint { get; set; } = "";
    public string Name { get; set; } = "";
    [JsonConverter(typeof(NullWhenEmptyConverter))]
    public Dictionary<string, string> Options { get; set; } = [];
    public string Scope { get; set; } = "local";
    /// <summary>Only in `system df` answers (docker's Volume.UsageData); never stored.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public VolumeUsageData? UsageData { get; set; }
}

/// <summary>A string map that is JSON null when empty (and read back from null as empty).</summary>
public sealed class NullWhenEmptyConverter : JsonConverter<Dictionary<string, string>>
{
    public override bool HandleNull => true;

    public override Dictionary<string, string> Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options)
    {
        var map = new Dictionary<string, string>();
        if (reader.TokenType == System.Text.Json.JsonTokenType.Null) return map;
        if (reader.TokenType != System.Text.Json.JsonTokenType.StartObject) throw new System.Text.Json.JsonException("expected an object of strings");
        while (reader.Read() && reader.TokenType != System.Text.Json.JsonTokenType.EndObject)
        {
            var key = reader.GetString()!;
            reader.Read();
            map[key] = reader.GetString() ?? "";
        }
        return map;
    }

    public override void Write(System.Text.Json.Utf8JsonWriter writer, Dictionary<string, string>? value, System.Text.Json.JsonSerializerOptions options)
    {
        if (value is null || value.Count == 0) { writer.WriteNullValue(); return; }
        writer.WriteStartObject();
        foreach (var (k, v) in value) writer.WriteString(k, v);
        writer.WriteEndObject();
    }
}

public sealed class VolumeUsageData
{
    public long Size { get; set; }
    public long RefCount { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, IndentSize = 4)]
[JsonSerializable(typeof(List<VolumeInfo>))]
[JsonSerializable(typeof(VolumeInfo))]
[JsonSerializable(typeof(Dictionary<string, string>))]
public sealed partial class VolumeJsonContext : JsonSerializerContext;

/// <summary>Local named volumes: &lt;root&gt;/volumes/NAME/_data, bind-mounted into containers. Creating
/// one is a mkdir (atomic: two creators cannot both win); no lock. A volume created with the local
/// driver's options (type, device, o: docker's `volume create -o`) keeps them in opts.json beside
/// _data; <see cref="VolumeMounts"/> mounts it at _data while containers use it.</summary>
public sealed class VolumeStore(string root)
{
    public string Dir { get; } = Path.Combine(Path.GetFullPath(root), "volumes");

    public string DataPath(string name) => Path.Combine(Dir, name, "_data");

    /// <summary>The local driver's option keys (dockerd 20.10's validOpts) and the keys each one needs.</summary>
    static readonly string[] ValidOptions = ["type", "o", "device", "size"];
    static readonly (string Key, string[] Needs)[] RequiredWith =
        [("device", ["type"]), ("type", ["device"]), ("o", ["device", "type"])];

    /// <summary>Checks a volume request as dockerd's local driver does (driver name, option keys, the
    /// options each needs); messages are dockerd's, prefixed with "create NAME: ".</summary>
    public static void Validate(string name, string? driver, IReadOnlyDictionary<string, string>? options)
    {
        if (driver is { Length: > 0 } d && d != "local")
            throw new EngineException(ErrorKind.NotFound, $"create {name}: error looking up volume plugin {d}: plugin \"{d}\" not found");
        if (options is null || options.Count == 0) return;
        foreach (var key in options.Keys.Order(StringComparer.Ordinal))
            if (!ValidOptions.Contains(key)) throw EngineException.Invalid($"create {name}: invalid option: \"{key}\"");
        if (options.TryGetValue("size", out var size))
        {
            long bytes;
            try { bytes = HostResources.ParseRam(size); }
            catch (EngineException) { throw EngineException.Invalid($"create {name}: invalid size: '{size}'"); }
            // dockerd has project quotas on xfs only; this store has none
            if (bytes > 0) throw EngineException.Invalid($"create {name}: quota size requested but no quota support");
        }
        foreach (var (key, needs) in RequiredWith)
            if (options.ContainsKey(key))
                foreach (var n in needs)
                    if (!options.ContainsKey(n)) throw EngineException.Invalid($"create {name}: missing required option: \"{n}\"");
    }

    /// <summary>Creates the volume; with <paramref name="existingOk"/> (a `-v NAME:/path`), an
    /// existing one is fine (its options stay as they were).</summary>
    public VolumeInfo Create(string? name, bool existingOk, Dictionary<string, string>? labels = null,
        Dictionary<string, string>? options = null, string? driver = null)
    {
        name ??= ContainerStore.NewId();
        if (!ContainerStore.ValidName(name)) throw EngineException.Invalid($"invalid volume name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        Validate(name, driver, options);
        Directory.CreateDirectory(Dir);
        var dir = Path.Combine(Dir, name);
        try { Directory.CreateDirectory(dir); }
        catch (IOException e) { throw new EngineException(ErrorKind.Internal, $"volume {name}: {e.Message}"); }
        var data = DataPath(name);
        if (Directory.Exists(data))
        {
            if (!existingOk) throw new EngineException(ErrorKind.AlreadyExists, $"volume with name {name} already exists");
            return Get(name);
        }
        // labels (docker's volume create --label, compose's com.docker.compose.*) and the driver's
        // options beside _data, written atomically before _data: once _data exists, they are there
        if (labels is { Count: > 0 }) WriteMap(dir, "labels.json", labels);
        if (options is { Count: > 0 }) WriteMap(dir, "opts.json", options);
        // mkdir of _data is the atomic step: whoever makes it created the volume
        var info = new DirectoryInfo(data);
        try { info.Create(); }
        catch (IOException) { }
        var v = Get(name);
        Events.ObjectEvents.Volume(root, "create", name);
        return v;
    }

    static void WriteMap(string dir, string file, Dictionary<string, string> map)
    {
        var tmp = Path.Combine(dir, $".{file}.{Environment.ProcessId}");
        File.WriteAllBytes(tmp, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(map, VolumeJsonContext.Default.DictionaryStringString));
        File.Move(tmp, Path.Combine(dir, file), overwrite: true);
    }

    public VolumeInfo Get(string name)
    {
        var data = DataPath(name);
        if (!ContainerStore.ValidName(name) || !Directory.Exists(data)) throw new EngineException(ErrorKind.NotFound, $"no such volume: {name}");
        return new VolumeInfo
        {
            Name = name, Mountpoint = data,
            CreatedAt = Directory.GetCreationTimeUtc(data).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"),
            Labels = ReadMap(name, "labels.json"),
            Options = Options(name),
        };
    }

    /// <summary>The local driver's options the volume was created with (empty: a plain directory), by key.</summary>
    public Dictionary<string, string> Options(string name) =>
        ReadMap(name, "opts.json").OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value);

    Dictionary<string, string> ReadMap(string name, string file)
    {
        try { return System.Text.Json.JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(Dir, name, file)), VolumeJsonContext.Default.DictionaryStringString) ?? []; }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or System.Text.Json.JsonException) { return []; }
    }

    public List<VolumeInfo> List() =>
        !Directory.Exists(Dir) ? [] :
        Directory.EnumerateDirectories(Dir).Select(Path.GetFileName).Where(n => Directory.Exists(DataPath(n!)))
            .Order(StringComparer.Ordinal).Select(n => Get(n!)).ToList();

    /// <summary>Removes a volume no container uses (docker refuses, even with -f, while one does).</summary>
    public void Remove(string name, IEnumerable<ContainerRecord> containers)
    {
        Get(name);
        var user = containers.FirstOrDefault(c => c.Mounts.Any(m => m.Type == "volume" && m.Name == name));
        if (user is not null)
            throw new EngineException(ErrorKind.FailedPrecondition, $"remove {name}: volume is in use by container {user.ShortId}");
        DeleteDirectory(name);
        Events.ObjectEvents.Volume(root, "destroy", name);
    }

    /// <summary>Deletes the volume's directory. A mount left at _data (a crash while a container used
    /// it) is detached first, and never recursed into: a bind volume's host directory stays as it is.</summary>
    public void DeleteDirectory(string name)
    {
        var data = DataPath(name);
        if (MountInfo.IsMountPoint(data)) umount2(data, MNT_DETACH);
        if (MountInfo.IsMountPoint(data))
            throw new EngineException(ErrorKind.FailedPrecondition, $"remove {name}: its mount at {data} cannot be detached");
        Directory.Delete(Path.Combine(Dir, name), true);
    }
}
