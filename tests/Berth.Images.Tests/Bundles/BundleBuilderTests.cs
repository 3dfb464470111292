using Berth.Images.Bundles;
using Berth.Images.Tests.Support;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Bundles;

public class BundleBuilderTests : IDisposable
{
    readonly TempDir _t = new();

    public BundleBuilderTests()
    {
        Directory.CreateDirectory(Path.Combine(_t.Root, "etc"));
        File.WriteAllText(Path.Combine(_t.Root, "etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000:App:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        File.WriteAllText(Path.Combine(_t.Root, "etc/group"),
            "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:app\naudio:x:29:app\n");
    }

    public void Dispose() => _t.Dispose();

    static ImageConfigFile Image(Action<ContainerConfig> f)
    {
        var c = new ContainerConfig();
        f(c);
        return new ImageConfigFile { Architecture = "amd64", Os = "linux", Config = c };
    }

    [Fact]
    public void Entrypoint_and_cmd_follow_docker_override_rules()
    {
        var img = Image(c => { c.Entrypoint = ["/bin/ep", "-x"]; c.Cmd = ["default"]; });
        Assert.Equal(["/bin/ep", "-x", "default"], BundleBuilder.Build(img, _t.Root).Spec.Process!.Args);
        Assert.Equal(["/bin/ep", "-x", "a", "b"], BundleBuilder.Build(img, _t.Root, new() { Cmd = ["a", "b"] }).Spec.Process!.Args);
        // --entrypoint replaces the entrypoint and drops the image's Cmd.
        Assert.Equal(["/bin/other"], BundleBuilder.Build(img, _t.Root, new() { Entrypoint = ["/bin/other"] }).Spec.Process!.Args);
        Assert.Equal(["sh", "-c", "x"], BundleBuilder.Build(img, _t.Root, new() { Entrypoint = [""], Cmd = ["sh", "-c", "x"] }).Spec.Process!.Args);
        var cmdOnly = Image(c => c.Cmd = ["sh"]);
        Assert.Equal(["echo", "hi"], BundleBuilder.Build(cmdOnly, _t.Root, new() { Cmd = ["echo", "hi"] }).Spec.Process!.Args);
        var e = Assert.Throws<BundleException>(() => BundleBuilder.Build(Image(_ => { }), _t.Root));
        Assert.Contains("no command specified", e.Message);
    }

    [Fact]
    public void Env_is_merged_with_path_and_home_defaults()
    {
        var img = Image(c => { c.Cmd = ["x"]; c.Env = ["A=1", "B=2"]; c.User = "app"; });
        var env = BundleBuilder.Build(img, _t.Root, new() { Env = ["B=3", "C=4", "A"] }).Spec.Process!.Env!;
        Assert.Equal([BundleBuilder.DefaultPath, "B=3", "C=4", "HOME=/home/app"], env);
        var withPath = Image(c => { c.Cmd = ["x"]; c.Env = ["PATH=/custom", "HOME=/h"]; });
        Assert.Equal(["PATH=/custom", "HOME=/h"], BundleBuilder.Build(withPath, _t.Root).Spec.Process!.Env);
    }

    [Theory]
    [InlineData("", 0u, 0u, new uint[] { 10 })]
    [InlineData("root", 0u, 0u, new uint[] { 10 })]
    [InlineData("app", 1000u, 1000u, new uint[] { 10, 50, 29 })]
    [InlineData("1000", 1000u, 1000u, new uint[] { 10, 50, 29 })]
    [InlineData("4242", 4242u, 0u, new uint[0])]
    [InlineData("app:staff", 1000u, 50u, new uint[0])]
    [InlineData("app:777", 1000u, 777u, new uint[0])]
    [InlineData("4242:4343", 4242u, 4343u, new uint[0])]
    [InlineData("nobody", 65534u, 65534u, new uint[0])]
    public void Users_resolve_against_the_image_passwd_and_group(string user, uint uid, uint gid, uint[] sgids)
    {
        var u = BundleBuilder.Build(Image(c => { c.Cmd = ["x"]; c.User = user; }), _t.Root).Spec.Process!.User;
        Assert.Equal((uid, gid), (u.Uid, u.Gid));
        Assert.Equal(sgids, u.AdditionalGids ?? []);
    }

    [Theory]
    [InlineData("ghost", "unable to find user ghost")]
    [InlineData("app:ghosts", "unable to find group ghosts")]
    public void Unknown_names_are_errors(string user, string message)
    {
        var e = Assert.Throws<BundleException>(() => BundleBuilder.Build(Image(c => { c.Cmd = ["x"]; c.User = user; }), _t.Root));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_passwd_symlink_cannot_make_the_host_passwd_be_read()
    {
        File.Delete(Path.Combine(_t.Root, "etc/passwd"));
        File.CreateSymbolicLink(Path.Combine(_t.Root, "etc/passwd"), "../../../../../../../../etc/passwd");
        // In-root, the link names the rootfs's own /etc/passwd: itself, a loop, never the host's file.
        var e = Assert.Throws<BundleException>(() => BundleBuilder.Build(Image(c => { c.Cmd = ["x"]; c.User = "root"; }), _t.Root));
        Assert.Matches("passwd", e.Message);
        File.Delete(Path.Combine(_t.Root, "etc/passwd"));
        File.CreateSymbolicLink(Path.Combine(_t.Root, "etc/passwd"), "/missing");
        e = Assert.Throws<BundleException>(() => BundleBuilder.Build(Image(c => { c.Cmd = ["x"]; c.User = "root"; }), _t.Root));
        Assert.Contains("unable to find user root", e.Message);
    }

    [Fact]
    public void A_fifo_passwd_is_an_error_not_a_hang()
    {
        File.Delete(Path.Combine(_t.Root, "etc/passwd"));
        Assert.Equal(0, Berth.Linux.Interop.Libc.mkfifo(Path.Combine(_t.Root, "etc/passwd"), 0x1a4));
        var e = Assert.Throws<BundleException>(() => BundleBuilder.Build(Image(c => { c.Cmd = ["x"]; c.User = "app"; }), _t.Root));
        Assert.Contains("not a regular file", e.Message);
    }

    [Fact]
    public void Image_data_comes_back_for_the_engine()
    {
        var img = Image(c =>
        {
            c.Cmd = ["x"];
            c.WorkingDir = "/srv/../app";
            c.Volumes = new() { ["/data"] = new(), ["/cache"] = new() };
            c.ExposedPorts = new() { ["80/tcp"] = new(), ["53/udp"] = new() };
            c.Labels = new() { ["org.example.k"] = "v" };
            c.StopSignal = "SIGQUIT";
        });
        var b = BundleBuilder.Build(img, _t.Root);
        Assert.Equal("/app", b.Spec.Process!.Cwd);
        Assert.False(b.Spec.Process.Terminal);
        Assert.DoesNotContain(b.Spec.Process.Env!, e => e.StartsWith("TERM="));
        Assert.Equal(["/cache", "/data"], b.Volumes);
        Assert.Equal(["53/udp", "80/tcp"], b.ExposedPorts);
        Assert.Equal("v", b.Labels["org.example.k"]);
        Assert.Equal("v", b.Spec.Annotations!["org.example.k"]);
        Assert.Equal("SIGQUIT", b.StopSignal);
        Assert.Equal(_t.Root, b.Spec.Root!.Path);
        Assert.False(b.Spec.Root.Readonly);
        Assert.Equal("/work", BundleBuilder.Build(img, _t.Root, new() { WorkingDir = "/work" }).Spec.Process!.Cwd);
    }
}
