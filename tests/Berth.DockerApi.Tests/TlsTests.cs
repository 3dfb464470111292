using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>
/// `berth system service -H tcp://127.0.0.1:PORT --tlsverify …` with certificates made here (a CA, a
/// server certificate for 127.0.0.1, a client certificate from that CA and one from another CA), and
/// the real docker CLI with --tlsverify. A second service process on the fixture's root.
/// </summary>
public sealed class TlsTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    sealed record Pki(string Dir)
    {
        public string Ca => Path.Combine(Dir, "ca.pem");
        public string ServerCert => Path.Combine(Dir, "server-cert.pem");
        public string ServerKey => Path.Combine(Dir, "server-key.pem");
        /// <summary>DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem.</summary>
        public string ClientDir => Path.Combine(Dir, "client");
        public string RogueDir => Path.Combine(Dir, "rogue");
    }

    static Pki MakePki(string dir)
    {
        var pki = new Pki(dir);
        Directory.CreateDirectory(pki.ClientDir);
        Directory.CreateDirectory(pki.RogueDir);
        using var ca = MakeCa("berth test CA");
        File.WriteAllText(pki.Ca, ca.ExportCertificatePem());
        var (serverCert, serverKey) = Issue(ca, "127.0.0.1", server: true);
        File.WriteAllText(pki.ServerCert, serverCert);
        File.WriteAllText(pki.ServerKey, serverKey);
        var (clientCert, clientKey) = Issue(ca, "client", server: false);
        File.WriteAllText(Path.Combine(pki.ClientDir, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(pki.ClientDir, "cert.pem"), clientCert);
        File.WriteAllText(Path.Combine(pki.ClientDir, "key.pem"), clientKey);
        // a client certificate from another CA: the server must refuse it
        using var rogueCa = MakeCa("rogue CA");
        var (rogueCert, rogueKey) = Issue(rogueCa, "client", server: false);
        File.WriteAllText(Path.Combine(pki.RogueDir, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(pki.RogueDir, "cert.pem"), rogueCert);
        File.WriteAllText(Path.Combine(pki.RogueDir, "key.pem"), rogueKey);
        return pki;
    }

    static X509Certificate2 MakeCa(string cn)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    static (string Cert, string Key) Issue(X509Certificate2 ca, string cn, bool server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            req.CertificateExtensions.Add(san.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using var cert = req.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(12), serial);
        return (cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>A second `berth system service` on the fixture's root, killed by PID.</summary>
    sealed class TcpService : IDisposable
    {
        public Process Process { get; }
        public int Port { get; }
        public System.Text.StringBuilder Stderr { get; } = new();

        public TcpService(ServiceFixture fx, int port, params string[] extra)
        {
            Port = port;
            var psi = new ProcessStartInfo(Tools.Berth) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { "--root", fx.Root, "--runroot", fx.RunRoot, "system", "service", "--host", $"tcp://127.0.0.1:{port}" }) psi.ArgumentList.Add(a);
            foreach (var a in extra) psi.ArgumentList.Add(a);
            psi.Environment["BERTH_INSECURE_REGISTRIES"] = "";
            Process = Process.Start(psi)!;
            Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (Stderr) Stderr.AppendLine(e.Data); };
            Process.BeginErrorReadLine();
            Process.BeginOutputReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                if (Process.HasExited) throw new InvalidOperationException($"berth system service exited with {Process.ExitCode}: {Stderr}");
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try { s.Connect(IPAddress.Loopback, port); return; } catch (SocketException) { }
                Thread.Sleep(50);
            }
            throw new TimeoutException("the tcp service did not listen in 30 s");
        }

        public void Dispose()
        {
            if (!Process.HasExited) { Process.Kill(); Process.WaitForExit(10_000); }
            Process.Dispose();
        }
    }

    ToolResult Docker(int port, string? certDir, params string[] args)
    {
        var env = new Dictionary<string, string> { ["HOME"] = fx.Home, ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker"), ["DOCKER_HOST"] = "" };
        string[] tls = certDir is null ? [] : ["--tlsverify", "--tlscacert", Path.Combine(certDir, "ca.pem"), "--tlscert", Path.Combine(certDir, "cert.pem"), "--tlskey", Path.Combine(certDir, "key.pem")];
        return Tools.Run(ServiceFixture.DockerCli, [.. tls, "-H", $"tcp://127.0.0.1:{port}", .. args], env, stdin: "");
    }

    [Fact]
    public void Mutual_tls_serves_the_docker_cli_with_a_client_certificate_and_refuses_others()
    {
        var dir = Directory.CreateTempSubdirectory("berth-tls-").FullName;
        try
        {
            var pki = MakePki(dir);
            using var svc = new TcpService(fx, Tools.FreePort(), "--tlsverify", "--tlscacert", pki.Ca, "--tlscert", pki.ServerCert, "--tlskey", pki.ServerKey);
            var v = Docker(svc.Port, pki.ClientDir, "version", "--format", "{{.Server.APIVersion}}");
            Assert.True(v.ExitCode == 0, v.ToString());
            Assert.Equal("1.47", v.Stdout.Trim());
            var pull = Docker(svc.Port, pki.ClientDir, "pull", fx.Image);
            Assert.True(pull.ExitCode == 0, pull.ToString());
            var run = Docker(svc.Port, pki.ClientDir, "run", "--rm", "--network", "none", fx.Image, "sh", "-c", "echo over-tls");
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Equal("over-tls\n", run.Stdout);
            var id = Docker(svc.Port, pki.ClientDir, "run", "-d", "--network", "none", "--name", "tlsps", fx.Image, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done");
            Assert.True(id.ExitCode == 0, id.ToString());
            try
            {
                Assert.Contains("tlsps", Docker(svc.Port, pki.ClientDir, "ps", "--format", "{{.Names}}").Stdout);
                // the same engine as the unix socket's service
                Assert.Contains("tlsps", fx.DockerOk("ps", "--format", "{{.Names}}"));
            }
            finally { Docker(svc.Port, pki.ClientDir, "rm", "-f", "tlsps"); }

            // no client certificate: the handshake is refused
            var noCert = Tools.Run(ServiceFixture.DockerCli, ["--tls", "--tlscacert", pki.Ca, "-H", $"tcp://127.0.0.1:{svc.Port}", "version"],
                new Dictionary<string, string> { ["HOME"] = fx.Home, ["DOCKER_HOST"] = "" }, stdin: "");
            Assert.NotEqual(0, noCert.ExitCode);
            Assert.DoesNotContain("1.47", noCert.Stdout);
            // a certificate from another CA: refused
            var rogue = Docker(svc.Port, pki.RogueDir, "ps");
            Assert.NotEqual(0, rogue.ExitCode);
            // plain HTTP on the TLS port: no answer in docker's API
            var plain = Docker(svc.Port, null, "version", "--format", "{{.Server.APIVersion}}");
            Assert.NotEqual(0, plain.ExitCode);
            // the same from .NET: a handshake without a client certificate fails
            using (var tcp = new TcpClient())
            {
                tcp.Connect(IPAddress.Loopback, svc.Port);
                using var ssl = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
                var ex = Record.Exception(() =>
                {
                    ssl.AuthenticateAsClient("127.0.0.1");
                    // TLS 1.3: the server's refusal arrives with the first read
                    ssl.Write("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"u8);
                    var buf = new byte[64];
                    if (ssl.Read(buf) == 0) throw new IOException("closed");
                });
                Assert.NotNull(ex);
            }
            Assert.False(svc.Process.HasExited, "a refused client took the service down");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Plain_tcp_only_when_asked_and_with_a_warning()
    {
        var port = Tools.FreePort();
        // tcp:// without TLS and without --tls=false: refused in one line, nothing listens
        var refused = fx.Berth("system", "service", "--host", $"tcp://127.0.0.1:{port}");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("without TLS", refused.Stderr);
        Assert.Single(refused.Stderr.Trim().Split('\n'));
        // --tlsverify without files
        var noFiles = fx.Berth("system", "service", "--host", $"tcp://127.0.0.1:{port}", "--tlsverify");
        Assert.NotEqual(0, noFiles.ExitCode);
        Assert.Contains("--tlscert", noFiles.Stderr);
        var bad = fx.Berth("system", "service", "--host", "tcp://nowhere");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("tcp://IP:PORT", bad.Stderr);
        using var svc = new TcpService(fx, port, "--tls=false");
        var v = Docker(port, null, "version", "--format", "{{.Server.APIVersion}}");
        Assert.True(v.ExitCode == 0, v.ToString());
        Assert.Equal("1.47", v.Stdout.Trim());
        lock (svc.Stderr) Assert.Contains("without --tlsverify is insecure", svc.Stderr.ToString());
    }
}
