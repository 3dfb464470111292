using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Berth.Cluster.Security;

/// <summary>The server's credentials: CA, serving certificate, admin token, admin kubeconfig.</summary>
public sealed record ServerCredentials(X509Certificate2 Ca, X509Certificate2 Serving, string AdminToken, string KubeconfigPath);

/// <summary>
/// Generates (first start) and loads the server's PKI under its data directory: an ECDSA P-256 CA
/// (ca.crt/ca.key), an admin client certificate (CN=admin, O=system:masters) and a bearer token
/// (token), and on every start a serving certificate for 127.0.0.1, localhost and the bind address
/// (signed by the CA, so a changed --listen needs no new kubeconfig trust). Keys are written 0600.
/// </summary>
public static class Pki
{
    const string ServerAuth = "1.3.6.1.5.5.7.3.1", ClientAuth = "1.3.6.1.5.5.7.3.2";

    public static ServerCredentials Ensure(string dir, string host, int port)
    {
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var caCrt = Path.Combine(dir, "ca.crt");
        var caKey = Path.Combine(dir, "ca.key");
        if (!File.Exists(caCrt) || !File.Exists(caKey))
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var req = new CertificateRequest("CN=berth-ca", key, HashAlgorithmName.SHA256);
            req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
            req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
            using var ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddYears(10));
            WritePem(caKey, key.ExportPkcs8PrivateKeyPem(), secret: true);
            WritePem(caCrt, ca.ExportCertificatePem(), secret: false);
        }
        var caCert = X509Certificate2.CreateFromPemFile(caCrt, caKey);

        // Serving certificate: renewed each start for the current bind address.
        var sans = new SubjectAlternativeNameBuilder();
        sans.AddIpAddress(IPAddress.Loopback);
        sans.AddDnsName("localhost");
        if (IPAddress.TryParse(host, out var ip) && !ip.Equals(IPAddress.Loopback) && !ip.Equals(IPAddress.Any)) sans.AddIpAddress(ip);
        else if (!IPAddress.TryParse(host, out _) && host != "localhost") sans.AddDnsName(host);
        var servingCrt = Path.Combine(dir, "serving.crt");
        var servingKey = Path.Combine(dir, "serving.key");
        Issue(caCert, "CN=berth-apiserver", ServerAuth, sans.Build(), servingCrt, servingKey);

        var adminCrt = Path.Combine(dir, "admin.crt");
        var adminKey = Path.Combine(dir, "admin.key");
        if (!File.Exists(adminCrt) || !File.Exists(adminKey))
            Issue(caCert, "CN=admin, O=system:masters", ClientAuth, null, adminCrt, adminKey);

        var tokenPath = Path.Combine(dir, "token");
        if (!File.Exists(tokenPath)) WritePem(tokenPath, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), secret: true);
        var token = File.ReadAllText(tokenPath).Trim();

        var server = $"https://{(host is "0.0.0.0" or "::" or "[::]" ? "127.0.0.1" : host.Contains(':') ? $"[{host}]" : host)}:{port}";
        var kubeconfig = Path.Combine(dir, "admin.kubeconfig");
        WritePem(kubeconfig, Kubeconfig(server, File.ReadAllText(caCrt), File.ReadAllText(adminCrt), File.ReadAllText(adminKey)), secret: true);

        return new ServerCredentials(caCert, X509Certificate2.CreateFromPemFile(servingCrt, servingKey), token, kubeconfig);
    }

    static void Issue(X509Certificate2 ca, string subject, string usage, X509Extension? sans, string crtPath, string keyPath)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (sans is not null) req.CertificateExtensions.Add(sans);
        using var cert = req.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddYears(1), RandomNumberGenerator.GetBytes(16));
        WritePem(keyPath, key.ExportPkcs8PrivateKeyPem(), secret: true);
        WritePem(crtPath, cert.ExportCertificatePem(), secret: false);
    }

    /// <summary>Writes atomically (temp file, fsync, rename), 0600 for secrets.</summary>
    static void WritePem(string path, string text, bool secret)
    {
        var tmp = path + ".tmp";
        var opts = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (secret) opts.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var fs = new FileStream(tmp, opts))
        {
            var bytes = Encoding.UTF8.GetBytes(text.EndsWith('\n') ? text : text + "\n");
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        if (secret) File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, path, overwrite: true);
    }

    static string B64(string pem) => Convert.ToBase64String(Encoding.UTF8.GetBytes(pem));

    static string Kubeconfig(string server, string ca, string crt, string key) => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: berth
          cluster:
            server: {server}
            certificate-authority-data: {B64(ca)}
        users:
        - name: admin
          user:
            client-certificate-data: {B64(crt)}
            client-key-data: {B64(key)}
        contexts:
        - name: berth
          context:
            cluster: berth
            user: admin
            namespace: default
        current-context: berth

        """;

    /// <summary>Validates a client certificate against the server's CA (chain only; revocation is not used).</summary>
    public static bool IsIssuedBy(X509Certificate2 cert, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ClientAuth));
        return chain.Build(cert);
    }
}
