using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Runtime.Tests.Support;

/// <summary>An OCI bundle on disk: a busybox-static rootfs and a config.json kept as a JsonObject
/// (so tests can also write what the typed model would refuse, e.g. a wrong field type).</summary>
public sealed class Bundle
{
    public string Dir { get; }
    public string Rootfs => Path.Combine(Dir, "rootfs");
    public string ConfigPath => Path.Combine(Dir, "config.json");
    public JsonObject Config { get; }

    public Bundle(string dir)
    {
        Dir = dir;
        var bin = Path.Combine(Rootfs, "bin");
        Directory.CreateDirectory(bin);
        foreach (var d in new[] { "etc", "tmp", "root" }) Directory.CreateDirectory(Path.Combine(Rootfs, d));
        File.Copy("/bin/busybox", Path.Combine(bin, "busybox"));
        foreach (var applet in Applets.Value)
        {
            var link = Path.Combine(bin, applet);
            if (!File.Exists(link)) File.CreateSymbolicLink(link, "busybox");
        }
        File.WriteAllText(Path.Combine(Rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        File.WriteAllText(Path.Combine(Rootfs, "etc/group"), "root:x:0:\n");
        Config = JsonNode.Parse(DefaultConfig.Value)!.AsObject();
    }

    public void Save() => File.WriteAllText(ConfigPath, Config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    static readonly Lazy<string[]> Applets = new(() =>
    {
        var psi = new ProcessStartInfo("/bin/busybox", "--list") { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var list = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        p.WaitForExit();
        return list;
    });

    /// <summary>What `berth-runc spec` writes, generated once.</summary>
    static readonly Lazy<string> DefaultConfig = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "berth-test-spec-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            var psi = new ProcessStartInfo(Runc.Binary) { WorkingDirectory = dir, RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add("spec");
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException("berth-runc spec failed: " + err);
            return File.ReadAllText(Path.Combine(dir, "config.json"));
        }
        finally { Directory.Delete(dir, true); }
    });
}

/// <summary>Small editing helpers for a config.json held as JSON.</summary>
public static class ConfigJson
{
    public static JsonObject Proc(this JsonObject c) => Obj(c, "process");
    public static JsonObject Linux(this JsonObject c) => Obj(c, "linux");
    public static JsonObject Resources(this JsonObject c) => Obj(c.Linux(), "resources");

    public static JsonObject Obj(JsonObject parent, string name)
    {
        if (parent[name] is JsonObject o) return o;
        var n = new JsonObject();
        parent[name] = n;
        return n;
    }

    public static void SetArgs(this JsonObject c, params string[] args) => c.Proc()["args"] = Arr(args);

    public static JsonArray Arr(params string[] items) => new(items.Select(i => (JsonNode)JsonValue.Create(i)!).ToArray());

    public static void AddMount(this JsonObject c, string destination, string type, string source, params string[] options)
    {
        if (c["mounts"] is not JsonArray mounts) c["mounts"] = mounts = [];
        mounts.Add(new JsonObject { ["destination"] = destination, ["type"] = type, ["source"] = source, ["options"] = Arr(options) });
    }

    /// <summary>Replaces (or adds) a namespace entry; path null means a new namespace.</summary>
    public static void SetNamespace(this JsonObject c, string type, string? path)
    {
        var list = (JsonArray)c.Linux()["namespaces"]!;
        foreach (var n in list.ToList())
            if ((string?)n!["type"] == type) list.Remove(n);
        var e = new JsonObject { ["type"] = type };
        if (path is not null) e["path"] = path;
        list.Add(e);
    }

    public static void RemoveNamespace(this JsonObject c, string type)
    {
        var list = (JsonArray)c.Linux()["namespaces"]!;
        foreach (var n in list.ToList())
            if ((string?)n!["type"] == type) list.Remove(n);
    }

    public static void SetCaps(this JsonObject c, params string[] caps)
    {
        var o = new JsonObject();
        foreach (var set in new[] { "bounding", "effective", "permitted", "inheritable", "ambient" }) o[set] = Arr(caps);
        c.Proc()["capabilities"] = o;
    }
}
