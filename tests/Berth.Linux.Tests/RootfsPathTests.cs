namespace Berth.Linux.Tests;

public sealed class RootfsPathTests
{
    [Theory]
    [InlineData("/a/b/../c", "/a/c")]
    [InlineData("/../../etc/passwd", "/etc/passwd")]
    [InlineData("a/./b//c/", "/a/b/c")]
    [InlineData("/a/../../..", "/")]
    [InlineData("", "/")]
    public void Dot_dot_never_climbs_above_the_root(string path, string expected) =>
        Assert.Equal(expected, RootfsPath.CleanInRoot(path));

    [Fact]
    public void Creates_through_a_dangling_symlink_inside_the_root_only()
    {
        var dir = Directory.CreateTempSubdirectory("berth-rootfs-").FullName;
        var outside = Directory.CreateTempSubdirectory("berth-outside-").FullName;
        try
        {
            var rootfs = Path.Combine(dir, "rootfs");
            Directory.CreateDirectory(rootfs);
            // absolute link to a host directory: inside the root it means rootfs + that path
            File.CreateSymbolicLink(Path.Combine(rootfs, "evil"), outside + "/sub");
            using var root = Sys.Open(rootfs, Interop.Libc.O_PATH | Interop.Libc.O_DIRECTORY);
            using (RootfsPath.OpenOrCreate(root, "/evil/x", file: true)) { }
            Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
            Assert.True(File.Exists(Path.Combine(rootfs, outside.TrimStart('/'), "sub", "x")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            Directory.Delete(outside, recursive: true);
        }
    }
}

public sealed class MountInfoTests
{
    [Theory]
    [InlineData(@"/mnt/my\040dir", "/mnt/my dir")]
    [InlineData(@"/a\011b\134c", "/a\tb\\c")]
    [InlineData("/plain", "/plain")]
    [InlineData(@"/trailing\04", @"/trailing\04")]
    public void Unescapes_octal_sequences(string raw, string expected) => Assert.Equal(expected, MountInfo.Unescape(raw));

    [Fact]
    public void The_root_mount_holds_everything() => Assert.NotNull(MountInfo.MountPointOf("/some/where/unmounted"));
}
