using System.Diagnostics;
using System.Net.Sockets;
using System.Net.Http;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>
/// A `berth system service` on a temp socket with temp --root/--runroot, a local registry
/// (Debian's docker-registry on 127.0.0.1) holding a busybox-static test image, and the real
/// docker CLI pointed at the service (DOCKER_HOST, its own HOME). The service is killed by PID.
/// </summary>
public sealed class ServiceFixture : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("berth-dapi-").FullName;
    public string Root => Path.Combine(Dir, "root");
    public string RunRoot => Path.Combine(Dir, "run");
    public string Socket => Path.Combine(Dir, "docker.sock");
    public string Home => Path.Combine(Dir, "home");
    public RegistryProcess Registry { get; }
    /// <summary>The test image in the registry: 127.0.0.1:PORT/test/busybox:v1.</summary>
    public string Image { get; }
    Process _service = null!;

    public ServiceFixture()
    {
        Directory.CreateDirectory(Home);
        // Containers default to the bridge network: this fixture's own bridge, subnet and iptables chains,
        // and user networks from two random /24s (a fixed pool collides with another run of these tests).
        Directory.CreateDirectory(Root);
        var sfx = Guid.NewGuid().ToString("N")[..8];
        File.WriteAllText(Path.Combine(Root, "network-options.json"),
            $$"""{"defaultBridge": "bd{{sfx}}", "defaultSubnet": "10.215.{{Random.Shared.Next(0, 250)}}.0/24", "chainPrefix": "BD{{sfx.ToUpperInvariant()}}", "pools": ["10.221.{{Random.Shared.Next(0, 250)}}.0/24", "10.222.{{Random.Shared.Next(0, 250)}}.0/24"]}""");
        Registry = RegistryProcess.Start();
        var img = TestImage.Build("docker-api");
        Image = $"{Registry.Host}/test/busybox:v1";
        Skopeo.PushLayout(img, Image);
        StartService();
    }

    public void StartService()
    {
        var psi = new ProcessStartInfo(Tools.Berth) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "--root", Root, "--runroot", RunRoot, "system", "service", "--host", "unix://" + Socket }) psi.ArgumentList.Add(a);
        psi.Environment["BERTH_INSECURE_REGISTRIES"] = "";
        _service = Process.Start(psi)!;
        _service.BeginErrorReadLine();
        _service.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_service.HasExited) throw new InvalidOperationException($"berth system service exited with {_service.ExitCode}");
            if (File.Exists(Socket))
            {
                using var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try { s.Connect(new UnixDomainSocketEndPoint(Socket)); return; } catch (SocketException) { }
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException("berth system service did not listen in 30 s");
    }

    public int ServicePid => _service.Id;
    public bool ServiceAlive => !_service.HasExited;

    public void StopService()
    {
        if (!_service.HasExited) { _service.Kill(); _service.WaitForExit(10_000); }
    }

    /// <summary>The docker CLI: the one on PATH first (/usr/local/bin/docker, 28.x, here), else docker.io's 20.10.</summary>
    public static string DockerCli { get; } = new[] { "/usr/local/bin/docker", "/usr/bin/docker" }.FirstOrDefault(File.Exists) ?? "docker";

    public ToolResult Docker(params string[] args) => DockerWithInput(null, args);

    public ToolResult DockerWithInput(string? stdin, params string[] args) =>
        Tools.Run(DockerCli, args, new Dictionary<string, string>
        {
            ["DOCKER_HOST"] = "unix://" + Socket,
            ["HOME"] = Home,
            ["DOCKER_CONFIG"] = Path.Combine(Home, ".docker"),
        }, stdin);

    public string DockerOk(params string[] args)
    {
        var r = Docker(args);
        Assert.True(r.ExitCode == 0, $"docker {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    /// <summary>An HTTP client on the service's socket.</summary>
    public HttpClient ApiClient() => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
            return new NetworkStream(s, ownsSocket: true);
        },
    }) { BaseAddress = new Uri("http://docker"), Timeout = TimeSpan.FromSeconds(60) };

    public ToolResult Berth(params string[] args) =>
        Tools.Run(Tools.Berth, ["--root", Root, "--runroot", RunRoot, .. args], new Dictionary<string, string> { ["BERTH_INSECURE_REGISTRIES"] = "" });

    public void Dispose()
    {
        foreach (var id in Berth("ps", "-aq", "--no-trunc").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Berth("rm", "-f", id);
        StopService();
        if (File.Exists(Path.Combine(Root, "networks", "bridge.json"))) Berth("network", "rm", "bridge");
        Registry.Dispose();
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
        {
            var mp = line.Split(' ')[4];
            if (mp.StartsWith(Dir, StringComparison.Ordinal)) Tools.Run("umount", ["-l", mp]);
        }
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
