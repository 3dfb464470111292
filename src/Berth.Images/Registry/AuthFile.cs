using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Images.Registry;

/// <summary>A user name and password (or identity token) for one registry.</summary>
public sealed record RegistryCredentials(string Username, string Password);

/// <summary>
/// Credentials in Docker's config.json format (`{"auths": {"host": {"auth": base64(user:password)}}}`,
/// which containers' auth.json shares). The file is $REGISTRY_AUTH_FILE when set (podman's variable),
/// else $DOCKER_CONFIG/config.json, else ~/.docker/config.json. Writing keeps every other member of
/// the file, and replaces it atomically with mode 0600.
/// </summary>
public sealed class AuthFile(string path)
{
    public string Path { get; } = path;

    public static AuthFile Default()
    {
        if (Environment.GetEnvironmentVariable("REGISTRY_AUTH_FILE") is { Length: > 0 } f) return new AuthFile(f);
        if (Environment.GetEnvironmentVariable("DOCKER_CONFIG") is { Length: > 0 } d) return new AuthFile(System.IO.Path.Combine(d, "config.json"));
        var home = Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return new AuthFile(System.IO.Path.Combine(home, ".docker", "config.json"));
    }

    /// <summary>The key docker writes for a registry: Docker Hub's legacy URL, else the host[:port].</summary>
    public static string KeyFor(string registry) =>
        registry is "docker.io" or "index.docker.io" or "registry-1.docker.io" ? "https://index.docker.io/v1/" : registry;

    static IEnumerable<string> CandidateKeys(string registry)
    {
        yield return KeyFor(registry);
        yield return registry;
        yield return "https://" + registry;
        yield return "http://" + registry;
        yield return "https://" + registry + "/v1/";
        yield return "https://" + registry + "/v2/";
        if (registry == "docker.io") { yield return "index.docker.io"; yield return "registry-1.docker.io"; }
    }

    JsonObject Load()
    {
        if (!File.Exists(Path)) return new JsonObject();
        try
        {
            return JsonNode.Parse(File.ReadAllBytes(Path)) as JsonObject
                   ?? throw ImageException.Invalid($"credentials file {Path}: not a JSON object");
        }
        catch (JsonException e) { throw ImageException.Invalid($"credentials file {Path}: malformed JSON: {e.Message}"); }
    }

    /// <summary>The stored credentials for a registry host, or null.</summary>
    public RegistryCredentials? Get(string registry)
    {
        if (Load()["auths"] is not JsonObject auths) return null;
        foreach (var key in CandidateKeys(registry))
        {
            if (auths[key] is not JsonObject entry) continue;
            if (entry["auth"]?.GetValue<string>() is { Length: > 0 } b64)
            {
                string text;
                try { text = Encoding.UTF8.GetString(Convert.FromBase64String(b64)); }
                catch (FormatException) { throw ImageException.Invalid($"credentials file {Path}: entry \"{key}\" has an auth value that is not base64"); }
                var colon = text.IndexOf(':');
                if (colon < 0) throw ImageException.Invalid($"credentials file {Path}: entry \"{key}\" is not user:password");
                return new RegistryCredentials(text[..colon], text[(colon + 1)..]);
            }
            if (entry["username"]?.GetValue<string>() is { } u && entry["password"]?.GetValue<string>() is { } p)
                return new RegistryCredentials(u, p);
        }
        return null;
    }

    public void Set(string registry, RegistryCredentials creds)
    {
        var root = Load();
        if (root["auths"] is not JsonObject auths) root["auths"] = auths = new JsonObject();
        foreach (var key in CandidateKeys(registry)) auths.Remove(key);
        auths[KeyFor(registry)] = new JsonObject
        {
            ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{creds.Username}:{creds.Password}")),
        };
        Save(root);
    }

    /// <summary>Removes a registry's credentials; false when there were none.</summary>
    public bool Remove(string registry)
    {
        var root = Load();
        if (root["auths"] is not JsonObject auths) return false;
        var removed = false;
        foreach (var key in CandidateKeys(registry)) removed |= auths.Remove(key);
        if (removed) Save(root);
        return removed;
    }

    void Save(JsonObject root)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path + $".{Environment.ProcessId}.tmp";
        var bytes = Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        using (var fs = new FileStream(tmp, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, Path, overwrite: true);
    }
}
