using Berth.Images;
using Berth.Images.Reference;

namespace Berth.Images.Tests.Registry;

/// <summary>Reference normalisation, table taken from docker's behaviour (distribution/reference normalize_test.go cases and `docker pull` answers).</summary>
public class ReferenceTests
{
    [Theory]
    [InlineData("busybox", "docker.io/library/busybox:latest", "busybox")]
    [InlineData("busybox:1.36", "docker.io/library/busybox:1.36", "busybox")]
    [InlineData("library/busybox", "docker.io/library/busybox:latest", "busybox")]
    [InlineData("docker.io/busybox", "docker.io/library/busybox:latest", "busybox")]
    [InlineData("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox")]
    [InlineData("user/app:v1", "docker.io/user/app:v1", "user/app")]
    [InlineData("docker.io/user/app/sub", "docker.io/user/app/sub:latest", "user/app/sub")]
    [InlineData("localhost/foo", "localhost/foo:latest", "localhost/foo")]
    [InlineData("localhost:5000/foo/bar:tag", "localhost:5000/foo/bar:tag", "localhost:5000/foo/bar")]
    [InlineData("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x")]
    [InlineData("quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd")]
    [InlineData("Foo/bar", "Foo/bar:latest", "Foo/bar")] // an upper-case first component is a host
    [InlineData("a.b-c/d__e---f_g.h", "a.b-c/d__e---f_g.h:latest", "a.b-c/d__e---f_g.h")]
    [InlineData("a.b/c", "a.b/c:latest", "a.b/c")]
    [InlineData("docker.io/library/a_b.c-d", "docker.io/library/a_b.c-d:latest", "a_b.c-d")]
    [InlineData("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x")]
    [InlineData("busybox:A_tag.-9", "docker.io/library/busybox:A_tag.-9", "busybox")]
    public void Normalises_as_docker(string input, string normalised, string familiar)
    {
        var r = ImageReference.Parse(input);
        Assert.Equal(normalised, r.WithDefaultTag().ToString());
        Assert.Equal(familiar, r.FamiliarName);
    }

    const string Hex = "b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7";

    [Fact]
    public void Digest_references_keep_no_default_tag()
    {
        var r = ImageReference.Parse("busybox@sha256:" + Hex);
        Assert.Null(r.Tag);
        Assert.Equal("sha256:" + Hex, r.RegistryReference);
        Assert.Equal("docker.io/library/busybox@sha256:" + Hex, r.WithDefaultTag().ToString());
        var both = ImageReference.Parse("localhost:5000/x:1@sha256:" + Hex);
        Assert.Equal("1", both.Tag);
        Assert.Equal("sha256:" + Hex, both.RegistryReference); // digest wins
        Assert.Equal("localhost:5000/x:1@sha256:" + Hex, both.ToString());
    }

    [Theory]
    [InlineData("", "invalid reference format")]
    [InlineData(":latest", "invalid reference format")]
    [InlineData("Busybox", "must be lowercase")]
    [InlineData("docker.io/Library/busybox", "must be lowercase")]
    [InlineData("busybox:", "invalid reference format")]
    [InlineData("busybox:-tag", "invalid reference format")]
    [InlineData("busybox::tag", "invalid reference format")]
    [InlineData("bus//ybox", "invalid reference format")]
    [InlineData("busybox/", "invalid reference format")]
    [InlineData("-busybox", "invalid reference format")]
    [InlineData("busybox-", "invalid reference format")]
    [InlineData("a..b/c", "invalid reference format")]
    [InlineData("a_b.c/d", "invalid reference format")] // no _ in a host
    [InlineData("x/a___b", "invalid reference format")]
    [InlineData("localhost:port/x", "invalid reference format")]
    [InlineData("busybox@sha256:abc", "invalid reference format")]
    [InlineData("busybox@sha256:" + Hex + "0", "unsupported or invalid digest")]
    [InlineData("busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported or invalid digest")]
    [InlineData(Hex, "cannot specify 64-byte hexadecimal strings")]
    [InlineData("busybox:tag with space", "invalid reference format")]
    public void Rejects_what_docker_rejects(string input, string message)
    {
        Assert.False(ImageReference.TryParse(input, out _, out var error));
        Assert.Contains(message, error);
        var e = Assert.Throws<ImageException>(() => ImageReference.Parse(input));
        Assert.Equal(ImageErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public void Tag_length_and_name_length_limits()
    {
        Assert.True(ImageReference.TryParse("x:" + new string('a', 128), out _, out _));
        Assert.False(ImageReference.TryParse("x:" + new string('a', 129), out _, out _));
        Assert.False(ImageReference.TryParse("localhost/" + new string('a', 250), out _, out var e));
        Assert.Contains("255", e);
    }
}
