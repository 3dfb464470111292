using System.Text.Json.Serialization;
using Berth.Engine.Containers;

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
/// one is a mkdir (atomic: two creators cannot both win); no lock.</summary>
public sealed class VolumeStore(string root)
{
    public string Dir { get; } = Path.Combine(Path.GetFullPath(root), "volumes");

    public string DataPath(string name) => Path.Combine(Dir, name, "_data");

    /// <summary>Creates the volume; with <paramref name="existingOk"/> (a `-v NAME:/path`), an
    /// existing one is fine.</summary>
    public VolumeInfo Create(string? name, bool existingOk, Dictionary<string, string>? labels = null)
    {
        name ??= ContainerStore.NewId();
        if (!ContainerStore.ValidName(name)) throw EngineException.Invalid($"invalid volume name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
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
        // mkdir of _data is the atomic step: whoever makes it created the volume
        var info = new DirectoryInfo(data);
        try { info.Create(); }
        catch (IOException) { }
        // labels (docker's volume create --label, compose's com.docker.compose.*) beside _data, written atomically
        if (labels is { Count: > 0 })
        {
            var tmp = Path.Combine(dir, $".labels.json.{Environment.ProcessId}");
            File.WriteAllBytes(tmp, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(labels, VolumeJsonContext.Default.DictionaryStringString));
            File.Move(tmp, Path.Combine(dir, "labels.json"), overwrite: true);
        }
        var v = Get(name);
        Events.ObjectEvents.Volume(root, "create", name);
        return v;
    }

    public VolumeInfo Get(string name)
    {
        var data = DataPath(name);
        if (!ContainerStore.ValidName(name) || !Directory.Exists(data)) throw new EngineException(ErrorKind.NotFound, $"no such volume: {name}");
        return new VolumeInfo
        {
            Name = name, Mountpoint = data,
            CreatedAt = Directory.GetCreationTimeUtc(data).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"),
            Labels = ReadLabels(name),
        };
    }

    Dictionary<string, string> ReadLabels(string name)
    {
        try { return System.Text.Json.JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(Dir, name, "labels.json")), VolumeJsonContext.Default.DictionaryStringString) ?? []; }
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
        Directory.Delete(Path.Combine(Dir, name), true);
        Events.ObjectEvents.Volume(root, "destroy", name);
    }
}
