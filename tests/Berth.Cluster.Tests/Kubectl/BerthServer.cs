using System.Diagnostics;
using System.Net.Sockets;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// `out/berth server` started on a free port with a temporary data directory, and the real kubectl
/// pointed at the kubeconfig it writes. Stopped (by PID) and cleaned up after.
/// </summary>
public class BerthServer : IAsyncLifetime
{
    public string DataDir { get; } = Directory.CreateTempSubdirectory("berth-server-").FullName;
    public int Port { get; } = FreePort();
    public string Kubeconfig => Path.Combine(DataDir, "admin.kubeconfig");
    static int FreePort()
    {
        using var l = new TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>--datastore-endpoint, when set (etcd); SQLite in <see cref="DataDir"/> otherwise.</summary>
    public string? DatastoreEndpoint { get; set; }
    Process? process;

    public static string Binary()
    {
        if (Environment.GetEnvironmentVariable("BERTH_RUNC") is { Length: > 0 } runc)
            return Path.Combine(Path.GetDirectoryName(runc)!, "berth");
        if (Environment.GetEnvironmentVariable("BERTH_REPO") is { Length: > 0 } repo)
            return Path.Combine(repo, "out", "berth");
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "out", "berth"))) return Path.Combine(d.FullName, "out", "berth");
        throw new InvalidOperationException("out/berth not found: run `make build` or set BERTH_REPO");
    }

    /// <summary>More `berth server` flags (e.g. --disable-scheduler).</summary>
    public string[] ExtraArgs { get; init; } = [];

    public virtual Task InitializeAsync() => StartAsync();

    public async Task StartAsync()
    {
        var psi = new ProcessStartInfo(Binary(), ["server", "--listen", $"127.0.0.1:{Port}", "--data-dir", DataDir, .. ExtraArgs])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (DatastoreEndpoint is not null) { psi.ArgumentList.Add("--datastore-endpoint"); psi.ArgumentList.Add(DatastoreEndpoint); }
        process = Process.Start(psi)!;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"berth server exited {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync("127.0.0.1", Port);
                if (File.Exists(Kubeconfig)) return;
            }
            catch (SocketException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException("berth server did not start listening within 30 s");
    }

    /// <summary>SIGKILL, as a crash: nothing gets to flush.</summary>
    public void Kill()
    {
        if (process is null || process.HasExited) return;
        process.Kill();
        process.WaitForExit();
        process.Dispose();
        process = null;
    }

    /// <summary>The server's process id while it runs (tests kill only that).</summary>
    public int? Pid => process is { HasExited: false } ? process.Id : null;

    public bool Running => process is { HasExited: false };

    public virtual async Task DisposeAsync()
    {
        if (process is { HasExited: false })
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
        process?.Dispose();
        Directory.Delete(DataDir, true);
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
    }

    public async Task<Result> Kubectl(string args, string? stdin = null, IDictionary<string, string>? env = null, int timeoutSeconds = 60)
    {
        var psi = new ProcessStartInfo("kubectl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in SplitArgs(args)) psi.ArgumentList.Add(a);
        psi.Environment["KUBECONFIG"] = Kubeconfig;
        psi.Environment["HOME"] = DataDir; // kubectl's discovery cache stays in the temp dir
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        if (stdin is not null) await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { p.Kill(); throw new TimeoutException($"kubectl {args} did not finish in {timeoutSeconds} s"); }
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Runs `kubectl -n NS get RESOURCE -w --output-watch-events` (plus <paramref name="extra"/>), does
    /// <paramref name="act"/> once the watch is up, and returns the first <paramref name="count"/> "TYPE NAME"
    /// pairs of lines naming <paramref name="name"/> (fewer if they do not come within 20 s).
    /// </summary>
    public async Task<List<string>> WatchEvents(string ns, string resource, string name, int count, Func<Task> act, params string[] extra)
    {
        var psi = new ProcessStartInfo("kubectl", ["-n", ns, "get", resource, "-w", "--output-watch-events", .. extra])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["KUBECONFIG"] = Kubeconfig;
        psi.Environment["HOME"] = DataDir;
        using var watch = Process.Start(psi)!;
        try
        {
            var lines = new List<string>();
            var reader = Task.Run(async () =>
            {
                while (await watch.StandardOutput.ReadLineAsync() is { } l)
                    if (l.Contains(name, StringComparison.Ordinal)) lock (lines) lines.Add(string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(2)));
            });
            await Task.Delay(1500);
            await act();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                lock (lines) if (lines.Count >= count) break;
                await Task.Delay(100);
            }
            lock (lines) return [.. lines.Take(count)];
        }
        finally
        {
            watch.Kill();
            await watch.WaitForExitAsync();
        }
    }

    /// <summary>Splits on spaces, keeping '…' quoted parts together (test arguments only).</summary>
    static IEnumerable<string> SplitArgs(string s)
    {
        var cur = new System.Text.StringBuilder();
        var quoted = false;
        var any = false;
        foreach (var ch in s)
        {
            if (ch == '\'') { quoted = !quoted; any = true; continue; }
            if (ch == ' ' && !quoted)
            {
                if (cur.Length > 0 || any) yield return cur.ToString();
                cur.Clear(); any = false;
                continue;
            }
            cur.Append(ch);
        }
        if (cur.Length > 0 || any) yield return cur.ToString();
    }
}
