namespace Berth.Images.Tests.Support;

/// <summary>The built `berth` binary with its own --root and credentials file (never ~/.docker).</summary>
public sealed class BerthCli : IDisposable
{
    public string Root { get; }
    public string AuthFile { get; }
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("berth-cli-");

    public BerthCli()
    {
        Root = Path.Combine(_dir.FullName, "root");
        AuthFile = Path.Combine(_dir.FullName, "auth.json");
    }

    public ToolResult Run(params string[] args) => RunWithInput(null, args);

    public ToolResult RunWithInput(string? stdin, params string[] args) =>
        Tools.Run(Tools.Berth, ["--root", Root, .. args], new Dictionary<string, string>
        {
            ["REGISTRY_AUTH_FILE"] = AuthFile,
            ["HOME"] = _dir.FullName,
            ["BERTH_INSECURE_REGISTRIES"] = "",
        }, stdin);

    /// <summary>Runs and asserts success, returning stdout.</summary>
    public string Ok(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.ExitCode == 0, $"berth {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    /// <summary>Runs and asserts a failure with exactly one `berth: ...` line on stderr.</summary>
    public string Fails(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.ExitCode != 0, $"berth {string.Join(' ', args)} should fail: {r}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("berth: ", line);
        return line;
    }

    public void Dispose() => _dir.Delete(true);
}

public static class Skopeo
{
    public static ToolResult Run(params string[] args) => Tools.Run("skopeo", args, new Dictionary<string, string> { ["REGISTRY_AUTH_FILE"] = "/nonexistent-berth-auth.json" });

    public static string Ok(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.ExitCode == 0, $"skopeo {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    public static string PushLayout(TestImage img, string dest, params string[] extra)
    {
        var dir = Directory.CreateTempSubdirectory("berth-layout-").FullName;
        try
        {
            img.WriteLayout(dir, "t");
            return Ok(["copy", "-q", "--dest-tls-verify=false", .. extra, $"oci:{dir}:t", $"docker://{dest}"]);
        }
        finally { Directory.Delete(dir, true); }
    }

    public static string Digest(string image, params string[] extra) =>
        Ok(["inspect", "--tls-verify=false", .. extra, "--format", "{{.Digest}}", $"docker://{image}"]).Trim();
}
