using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Images.Tests.Support;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// docker-registry with htpasswd Basic auth, and with token auth backed by an in-test token server
/// (RS256 JWTs whose x5c certificate is the registry's rootcertbundle): login, pull, push, logout.
/// </summary>
public sealed class AuthRegistryTests : IDisposable
{
    readonly BerthCli _berth = new();
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("berth-authreg-");
    public void Dispose() { _berth.Dispose(); _dir.Delete(true); }

    [Fact]
    public void Htpasswd_basic_auth_login_pull_push_logout()
    {
        var htpasswd = Path.Combine(_dir.FullName, "htpasswd");
        var h = Tools.Run("htpasswd", ["-Bbn", "alice", "wonderland"]);
        Assert.Equal(0, h.ExitCode);
        File.WriteAllText(htpasswd, h.Stdout);
        using var reg = RegistryProcess.Start($"auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n");
        var img = TestImage.Build("basic-auth");
        var name = $"{reg.Host}/secure/app:1";
        Skopeo.PushLayout(img, name, "--dest-creds", "alice:wonderland");

        var denied = _berth.Fails("pull", "--tls-verify=false", name);
        Assert.Contains("401", denied);
        Assert.False(File.Exists(_berth.AuthFile));

        Assert.Contains("401", _berth.Fails("login", "--tls-verify=false", "-u", "alice", "-p", "wrong", reg.Host));
        Assert.False(File.Exists(_berth.AuthFile));

        var login = _berth.RunWithInput("wonderland\n", "login", "--tls-verify=false", "-u", "alice", "--password-stdin", reg.Host);
        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Equal("Login Succeeded\n", login.Stdout);
        var auth = JsonNode.Parse(File.ReadAllText(_berth.AuthFile))!["auths"]![reg.Host]!["auth"]!.GetValue<string>();
        Assert.Equal("alice:wonderland", Encoding.UTF8.GetString(Convert.FromBase64String(auth)));

        _berth.Ok("pull", "-q", "--tls-verify=false", name);
        _berth.Ok("tag", name, $"{reg.Host}/secure/copy:2");
        _berth.Ok("push", "--tls-verify=false", $"{reg.Host}/secure/copy:2");
        Assert.Equal(img.Manifest.Digest, Skopeo.Digest($"{reg.Host}/secure/copy:2", "--creds", "alice:wonderland"));

        Assert.Equal($"Removing login credentials for {reg.Host}\n", _berth.Ok("logout", reg.Host));
        Assert.Equal($"Not logged in to {reg.Host}\n", _berth.Ok("logout", reg.Host));
        Assert.Contains("401", _berth.Fails("pull", "--tls-verify=false", name));
    }

    [Fact]
    public void Token_auth_with_an_in_test_token_server()
    {
        using var rsa = RSA.Create(2048);
        var req = new CertificateRequest("CN=berth-test-token", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var bundle = Path.Combine(_dir.FullName, "token.pem");
        File.WriteAllText(bundle, cert.ExportCertificatePem());
        var scopesAsked = new List<string>();

        using var tokens = new TinyHttpServer(async (r, s) =>
        {
            var q = System.Web.HttpUtility.ParseQueryString(r.Target.Contains('?') ? r.Target[(r.Target.IndexOf('?') + 1)..] : "");
            var basic = r.Header("Authorization");
            if (basic is null || Encoding.UTF8.GetString(Convert.FromBase64String(basic["Basic ".Length..])) != "bob:builder")
            {
                await TinyHttpServer.Json(s, 401, "{\"details\":\"bad credentials\"}");
                return true;
            }
            var access = new JsonArray();
            foreach (var scope in q.GetValues("scope") ?? [])
            {
                lock (scopesAsked) scopesAsked.Add(scope);
                var first = scope.IndexOf(':');
                var last = scope.LastIndexOf(':');
                access.Add(new JsonObject
                {
                    ["type"] = scope[..first], ["name"] = scope[(first + 1)..last],
                    ["actions"] = new JsonArray(scope[(last + 1)..].Split(',').Select(a => (JsonNode)a!).ToArray()),
                });
            }
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var header = new JsonObject { ["alg"] = "RS256", ["typ"] = "JWT", ["x5c"] = new JsonArray(Convert.ToBase64String(cert.RawData)) };
            var claims = new JsonObject
            {
                ["iss"] = "berth-test-issuer", ["sub"] = "bob", ["aud"] = q["service"], ["exp"] = now + 300, ["nbf"] = now - 10,
                ["iat"] = now, ["jti"] = Guid.NewGuid().ToString("N"), ["access"] = access,
            };
            var signing = B64(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + B64(Encoding.UTF8.GetBytes(claims.ToJsonString()));
            var sig = rsa.SignData(Encoding.ASCII.GetBytes(signing), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            await TinyHttpServer.Json(s, 200, JsonSerializer.Serialize(new Dictionary<string, string> { ["token"] = signing + "." + B64(sig) }));
            return true;
        });

        using var reg = RegistryProcess.Start(
            $"auth:\n  token:\n    realm: http://{tokens.Host}/token\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: {bundle}\n");
        var img = TestImage.Build("token-auth");
        var name = $"{reg.Host}/tok/app:1";

        // Berth cannot get in without credentials: the token server refuses it.
        Assert.Contains("token server", _berth.Fails("pull", "--tls-verify=false", name));
        Assert.Contains("refused", _berth.Fails("login", "--tls-verify=false", "-u", "bob", "-p", "nope", reg.Host));
        Assert.Equal("Login Succeeded\n", _berth.Ok("login", "--tls-verify=false", "-u", "bob", "-p", "builder", reg.Host));

        // Get the image into berth's store via a first registry push by skopeo, then push/pull through tokens.
        Skopeo.PushLayout(img, name, "--dest-creds", "bob:builder");
        _berth.Ok("pull", "-q", "--tls-verify=false", name);
        _berth.Ok("tag", name, $"{reg.Host}/tok/other:2");
        Assert.Contains("Mounted from tok/app", _berth.Ok("push", "--tls-verify=false", $"{reg.Host}/tok/other:2"));
        Assert.Equal(img.Manifest.Digest, Skopeo.Digest($"{reg.Host}/tok/other:2", "--creds", "bob:builder"));
        lock (scopesAsked)
        {
            Assert.Contains("repository:tok/app:pull", scopesAsked);
            Assert.Contains("repository:tok/other:pull,push", scopesAsked);
        }
    }

    static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
