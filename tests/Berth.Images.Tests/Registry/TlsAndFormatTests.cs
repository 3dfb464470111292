using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// A docker-registry serving HTTPS with a self-signed certificate: refused unless the certificate is
/// trusted (SSL_CERT_FILE, which OpenSSL and so .NET read) or `--tls-verify=false`. Docker schema 2
/// images (skopeo --format v2s2) and pulls by digest.
/// </summary>
public sealed class TlsAndFormatTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("berth-tls-");
    readonly BerthCli _berth = new();
    public void Dispose() { _berth.Dispose(); _dir.Delete(true); }

    [Fact]
    public void Https_registry_verified_against_trusted_CAs_or_explicitly_insecure()
    {
        using var rsa = RSA.Create(2048);
        var req = new CertificateRequest("CN=127.0.0.1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certPath = Path.Combine(_dir.FullName, "cert.pem");
        var keyPath = Path.Combine(_dir.FullName, "key.pem");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, rsa.ExportRSAPrivateKeyPem());
        using var reg = RegistryProcess.Start(tls: (certPath, keyPath));
        var img = TestImage.Build("tls");
        var name = $"{reg.Host}/tls/app:1";
        Skopeo.PushLayout(img, name);

        var refused = _berth.Fails("pull", name);
        Assert.Contains(reg.Host, refused);
        Assert.Contains("SSL", refused, StringComparison.OrdinalIgnoreCase);

        _berth.Ok("pull", "-q", "--tls-verify=false", name);
        _berth.Ok("rmi", name);

        // Trusted through the system's CA configuration: verification on, no flag needed.
        var r = Tools.Run(Tools.Berth, ["--root", _berth.Root, "pull", "-q", name], new Dictionary<string, string>
        {
            ["SSL_CERT_FILE"] = certPath, ["REGISTRY_AUTH_FILE"] = _berth.AuthFile, ["HOME"] = _dir.FullName,
        });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(img.Manifest.Digest, _berth.Ok("images", "--digests", "--format", "{{.Digest}}").Trim());
    }

    [Fact]
    public void Docker_schema2_image_and_pull_by_digest()
    {
        using var reg = RegistryProcess.Start();
        var img = TestImage.Build("v2s2");
        var name = $"{reg.Host}/v2s2/app:1";
        Skopeo.PushLayout(img, name, "--format", "v2s2");
        var digest = Skopeo.Digest(name);
        Assert.NotEqual(img.Manifest.Digest, digest); // converted by skopeo
        var raw = Skopeo.Ok("inspect", "--tls-verify=false", "--raw", $"docker://{name}");
        Assert.Contains(MediaTypes.DockerManifest, raw);

        var byDigest = $"{reg.Host}/v2s2/app@{digest}";
        var pull = _berth.Ok("pull", "--tls-verify=false", byDigest);
        Assert.EndsWith($"{byDigest}\n", pull);
        Assert.Equal($"{reg.Host}/v2s2/app <none> {digest}", _berth.Ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}").Trim());
        Assert.Equal(MediaTypes.DockerManifest, _berth.Ok("image", "inspect", "--format", "{{.Descriptor.mediaType}}", byDigest).Trim());
        // push it back under a tag: same bytes, same digest
        _berth.Ok("push", "--tls-verify=false", byDigest, $"{reg.Host}/v2s2/copy:1");
        Assert.Equal(digest, Skopeo.Digest($"{reg.Host}/v2s2/copy:1"));
        Assert.Contains("is not known", _berth.Fails("image", "inspect", $"{reg.Host}/v2s2/app:1"));
    }
}
