using System.Diagnostics;
using System.Net.Http;

namespace Berth.Images.Tests.Support;

/// <summary>
/// Debian's docker-registry on 127.0.0.1:&lt;free port&gt; with filesystem storage in a temp dir,
/// optionally with htpasswd Basic auth or token auth (realm + rootcertbundle). Started by the test,
/// stopped (by its pid) and removed after.
/// </summary>
public sealed class RegistryProcess : IDisposable
{
    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    public string Dir { get; }
    readonly Process _process;

    RegistryProcess(int port, string dir, Process p) { Port = port; Dir = dir; _process = p; }

    public static RegistryProcess Start(string? authYaml = null, (string Cert, string Key)? tls = null)
    {
        var dir = Directory.CreateTempSubdirectory("berth-registry-").FullName;
        for (var attempt = 0; ; attempt++)
        {
            var port = Tools.FreePort();
            var config = Path.Combine(dir, "config.yml");
            var tlsYaml = tls is null ? "" : $"  tls:\n    certificate: {tls.Value.Cert}\n    key: {tls.Value.Key}\n";
            File.WriteAllText(config, $"""
                version: 0.1
                log:
                  level: warn
                storage:
                  filesystem:
                    rootdirectory: {dir}/data
                  delete:
                    enabled: true
                  maintenance:
                    uploadpurging:
                      enabled: false
                http:
                  addr: 127.0.0.1:{port}
                {tlsYaml}
                {authYaml ?? ""}
                """);
            var psi = new ProcessStartInfo("docker-registry") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add("serve");
            psi.ArgumentList.Add(config);
            var p = Process.Start(psi)!;
            var log = File.CreateText(Path.Combine(dir, "registry.log"));
            p.ErrorDataReceived += (_, e) => { lock (log) { if (e.Data is not null) log.WriteLine(e.Data); log.Flush(); } };
            p.OutputDataReceived += (_, e) => { lock (log) { if (e.Data is not null) log.WriteLine(e.Data); log.Flush(); } };
            p.BeginErrorReadLine();
            p.BeginOutputReadLine();
            using var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true });
            var scheme = tls is null ? "http" : "https";
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !p.HasExited)
            {
                try
                {
                    using var r = http.GetAsync($"{scheme}://127.0.0.1:{port}/v2/").Result;
                    return new RegistryProcess(port, dir, p);
                }
                catch (AggregateException) { Thread.Sleep(100); }
            }
            try { p.Kill(); } catch (InvalidOperationException) { }
            p.WaitForExit();
            if (attempt >= 2) throw new InvalidOperationException("docker-registry did not start: " + File.ReadAllText(Path.Combine(dir, "registry.log")));
        }
    }

    public void Dispose()
    {
        try { _process.Kill(); } catch (InvalidOperationException) { }
        _process.WaitForExit();
        _process.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

/// <summary>One plain registry shared by the tests of a class.</summary>
public sealed class RegistryFixture : IDisposable
{
    public RegistryProcess Registry { get; } = RegistryProcess.Start();
    public string Host => Registry.Host;
    public void Dispose() => Registry.Dispose();
}
