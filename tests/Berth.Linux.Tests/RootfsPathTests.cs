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

public sealed class RootfsPathCreateTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("berth-rootfs-").FullName;
    string Rootfs => Path.Combine(_dir, "rootfs");

    public RootfsPathCreateTests() => Directory.CreateDirectory(Path.Combine(Rootfs, "dev"));
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    Fd OpenRoot() => Sys.Open(Rootfs, Interop.Libc.O_PATH | Interop.Libc.O_DIRECTORY);

    [Fact]
    public void Creates_a_missing_last_component_a_missing_chain_and_a_file()
    {
        using var root = OpenRoot();
        using (var fd = RootfsPath.OpenOrCreate(root, "/dev/pts", file: false)) Assert.True(RootfsPath.IsDirectory(fd));
        using (RootfsPath.OpenOrCreate(root, "a/b/c", file: false)) { }
        using (RootfsPath.OpenOrCreate(root, "/dev/null", file: true)) { }
        using (RootfsPath.OpenOrCreate(root, "/dev/pts", file: false)) { } // exists now: opened as is
        Assert.True(Directory.Exists(Path.Combine(Rootfs, "dev/pts")));
        Assert.True(Directory.Exists(Path.Combine(Rootfs, "a/b/c")));
        Assert.True(File.Exists(Path.Combine(Rootfs, "dev/null")));
    }

    [Fact]
    public void A_dangling_last_component_under_an_existing_parent_is_followed_inside_the_root()
    {
        File.CreateSymbolicLink(Path.Combine(Rootfs, "dev", "shm"), "/run/shm");
        using var root = OpenRoot();
        using (RootfsPath.OpenOrCreate(root, "/dev/shm", file: false)) { }
        Assert.True(Directory.Exists(Path.Combine(Rootfs, "run/shm")));
    }

    [Fact]
    public void Dot_dot_in_a_missing_path_is_refused()
    {
        using var root = OpenRoot();
        Assert.Throws<ArgumentException>(() => RootfsPath.OpenOrCreate(root, "/dev/x/../y", file: false).Dispose());
    }
}

public sealed class SysReadTextTests
{
    [Fact]
    public void Reads_a_file_larger_than_the_stack_buffer_whole()
    {
        var path = Path.GetTempFileName();
        try
        {
            var text = string.Concat(Enumerable.Range(0, 2000).Select(i => $"{i},"));
            File.WriteAllText(path, text);
            Assert.True(text.Length > 8192);
            Assert.Equal(text, Sys.ReadText(path));
            // a kernel file (size 4096 in stat, a few bytes to read)
            Assert.Equal(File.ReadAllText("/sys/devices/system/cpu/possible"), Sys.ReadText("/sys/devices/system/cpu/possible"));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_missing_file_or_a_directory_is_null_with_the_errno()
    {
        Assert.Null(Sys.TryReadText("/nonexistent-berth-test/x", out var e1));
        Assert.Equal(Errno.ENOENT, e1);
        Assert.Null(Sys.TryReadText("/tmp", out var e2));
        Assert.Equal(Errno.EISDIR, e2);
        var e = Assert.Throws<SyscallException>(() => Sys.ReadText("/nonexistent-berth-test/x"));
        Assert.Contains("/nonexistent-berth-test/x", e.Message);
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
