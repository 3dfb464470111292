using System.Diagnostics;
using Berth.Cluster.Tests.Api;

namespace Berth.Cluster.Tests.Storage;

/// <summary>
/// A real etcd (Debian's etcd-server) on free 127.0.0.1 client and peer ports with a temporary data
/// directory (on /dev/shm when there is one: fsync there is cheap), started for the tests, waited for
/// until /health says so, and killed by its PID after.
/// </summary>
public sealed class EtcdServer : IAsyncLifetime
{
    public string DataDir { get; } = Directory.CreateTempSubdirectory("berth-etcd-").FullName;
    public int ClientPort { get; } = ApiFixture.FreePort();
    public int PeerPort { get; } = ApiFixture.FreePort();
    public string Endpoint => $"etcd://127.0.0.1:{ClientPort}";
    Process? process;

    static string TempRoot() => Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();

    public EtcdServer()
    {
        Directory.Delete(DataDir);
        DataDir = Path.Combine(TempRoot(), "berth-etcd-" + Guid.NewGuid().ToString("N")[..12]);
    }

    public async Task InitializeAsync()
    {
        var client = $"http://127.0.0.1:{ClientPort}";
        var peer = $"http://127.0.0.1:{PeerPort}";
        var psi = new ProcessStartInfo("etcd",
        [
            "--name", "berth-test", "--data-dir", DataDir,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", $"berth-test={peer}", "--initial-cluster-state", "new",
            "--log-level", "error",
        ])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"etcd exited {process.ExitCode} at start");
            try
            {
                var body = await http.GetStringAsync($"{client}/health");
                if (body.Contains("\"health\":\"true\"")) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException("etcd did not become healthy within 30 s");
    }

    public async Task DisposeAsync()
    {
        if (process is { HasExited: false })
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
        process?.Dispose();
        if (Directory.Exists(DataDir)) Directory.Delete(DataDir, true);
    }
}
