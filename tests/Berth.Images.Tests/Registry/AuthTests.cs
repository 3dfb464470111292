using System.Text;
using Berth.Images.Registry;

namespace Berth.Images.Tests.Registry;

public class AuthTests
{
    [Fact]
    public void Parses_a_bearer_challenge()
    {
        var c = Assert.Single(AuthChallenge.Parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\""));
        Assert.True(c.IsBearer);
        Assert.Equal("https://auth.docker.io/token", c.Realm);
        Assert.Equal("registry.docker.io", c.Service);
        Assert.Equal("repository:library/busybox:pull", c.Scope);
    }

    [Fact]
    public void Parses_several_challenges_tokens_and_escapes()
    {
        var cs = AuthChallenge.Parse("Basic realm=\"Registry Realm\", Bearer realm=\"http://x/t\",error=insufficient_scope,scope=\"repository:a:pull,push\" , Custom k=\"a\\\"b\"");
        Assert.Equal(3, cs.Count);
        Assert.True(cs[0].IsBasic);
        Assert.Equal("Registry Realm", cs[0].Realm);
        Assert.Equal("http://x/t", cs[1].Realm);
        Assert.Equal("insufficient_scope", cs[1].Error);
        Assert.Equal("repository:a:pull,push", cs[1].Scope);
        Assert.Equal("a\"b", cs[2].Parameters["k"]);
    }

    [Fact]
    public void Parses_lone_scheme_and_garbage()
    {
        Assert.True(Assert.Single(AuthChallenge.Parse("Basic")).IsBasic);
        Assert.Empty(AuthChallenge.Parse(""));
        Assert.Empty(AuthChallenge.Parse(" , ,"));
    }

    [Fact]
    public void Auth_file_round_trips_in_docker_format_and_keeps_other_members()
    {
        var dir = Directory.CreateTempSubdirectory("berth-auth-");
        try
        {
            var path = Path.Combine(dir.FullName, "sub", "config.json");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, "{\"credsStore\":\"\",\"auths\":{\"other:1\":{\"auth\":\"" + Convert.ToBase64String(Encoding.UTF8.GetBytes("o:p")) + "\"}},\"psFormat\":\"x\"}");
            var f = new AuthFile(path);
            f.Set("127.0.0.1:5000", new RegistryCredentials("alice", "s3:cret"));
            f.Set("docker.io", new RegistryCredentials("bob", "pw"));
            var text = File.ReadAllText(path);
            Assert.Contains("\"psFormat\": \"x\"", text);
            Assert.Contains("\"https://index.docker.io/v1/\"", text);
            Assert.Contains(Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3:cret")), text);
            Assert.Equal(new RegistryCredentials("alice", "s3:cret"), f.Get("127.0.0.1:5000"));
            Assert.Equal(new RegistryCredentials("bob", "pw"), f.Get("docker.io"));
            Assert.Equal(new RegistryCredentials("o", "p"), f.Get("other:1"));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.True(f.Remove("127.0.0.1:5000"));
            Assert.False(f.Remove("127.0.0.1:5000"));
            Assert.Null(f.Get("127.0.0.1:5000"));
            Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!)); // no temp file left
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Auth_file_reads_https_keys_and_rejects_bad_base64()
    {
        var dir = Directory.CreateTempSubdirectory("berth-auth-");
        try
        {
            var path = Path.Combine(dir.FullName, "auth.json");
            File.WriteAllText(path, "{\"auths\":{\"https://reg.example:443\":{\"auth\":\"" + Convert.ToBase64String(Encoding.UTF8.GetBytes("u:p")) + "\"},\"bad\":{\"auth\":\"!!!\"}}}");
            var f = new AuthFile(path);
            Assert.Equal("u", f.Get("reg.example:443")!.Username);
            var e = Assert.Throws<ImageException>(() => f.Get("bad"));
            Assert.Contains("not base64", e.Message);
            File.WriteAllText(path, "{not json");
            Assert.Contains("malformed JSON", Assert.Throws<ImageException>(() => f.Get("x")).Message);
        }
        finally { dir.Delete(true); }
    }

    [Theory]
    [InlineData("linux/amd64", "linux", "amd64", null)]
    [InlineData("linux/x86_64", "linux", "amd64", null)]
    [InlineData("linux/arm64/v8", "linux", "arm64", null)]
    [InlineData("linux/aarch64", "linux", "arm64", null)]
    [InlineData("linux/arm/v7", "linux", "arm", "v7")]
    public void Platform_normalisation(string s, string os, string arch, string? variant)
    {
        Assert.Equal(new PlatformSpec(os, arch, variant), PlatformSpec.Parse(s));
    }

    [Theory]
    [InlineData("linux")]
    [InlineData("linux/")]
    [InlineData("a/b/c/d")]
    [InlineData("linux/am d64")]
    public void Platform_rejects_garbage(string s) =>
        Assert.Equal(ImageErrorKind.InvalidArgument, Assert.Throws<ImageException>(() => PlatformSpec.Parse(s)).Kind);
}
