using System.Formats.Tar;
using System.Text;
using Berth.Images.Tests.Support;
using Berth.Images.Unpack;
using Berth.Linux;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Unpack;

public class UnpackTests
{
    static UnpackResult Unpack(byte[] blob, string root, LayerCompression c = LayerCompression.None, UnpackOptions? o = null, string? diffId = null) =>
        LayerUnpacker.Unpack(new MemoryStream(blob), c, root, o ?? new UnpackOptions(), diffId);

    static FileStat Stat(string path) => FileAt.TryStat(path) ?? throw new FileNotFoundException(path);

    [Fact]
    public void Files_directories_links_owners_modes_times_and_xattrs_are_applied()
    {
        using var t = new TempDir();
        var tar = new TarBuilder()
            .Dir("etc", mode: 0x1ed, mtime: DateTimeOffset.FromUnixTimeSeconds(1_500_000_000))
            .File("etc/hostname", "box\n", mode: 0x180, uid: 1000, gid: 1001)
            .File("etc/setuid", "x", mode: 0x9ed, uid: 5, gid: 6)       // 04755 after a chown
            .Symlink("etc/link", "/nowhere/at/all", uid: 7, gid: 8)
            .HardLink("etc/hard", "etc/hostname")
            .Fifo("etc/fifo", 0x180)
            .Dir("./tmp", mode: 0x3ff)                                   // 01777
            .FileWithPax("etc/cap", "bin"u8.ToArray(), ("SCHILY.xattr.user.bin", [0x00, 0xff, 0x80, 0x01]), ("mtime", "1234567890.5"u8.ToArray()))
            .Build();
        var r = Unpack(tar, t.Root);
        Assert.Equal(TarBuilder.DiffId(tar), r.DiffId);
        Assert.Equal(tar.Length, r.UncompressedSize);

        var host = Stat(Path.Combine(t.Root, "etc/hostname"));
        Assert.Equal((1000u, 1001u, 0x8180u), (host.Uid, host.Gid, host.Mode));
        Assert.Equal("box\n", File.ReadAllText(Path.Combine(t.Root, "etc/hostname")));
        Assert.Equal(2u, host.Nlink);
        Assert.Equal(host.Ino, Stat(Path.Combine(t.Root, "etc/hard")).Ino);
        var suid = Stat(Path.Combine(t.Root, "etc/setuid"));
        Assert.Equal((5u, 6u, 0x89edu), (suid.Uid, suid.Gid, suid.Mode));
        var link = Stat(Path.Combine(t.Root, "etc/link"));
        Assert.True(link.IsSymlink);
        Assert.Equal((7u, 8u), (link.Uid, link.Gid));
        Assert.Equal("/nowhere/at/all", new FileInfo(Path.Combine(t.Root, "etc/link")).LinkTarget);
        Assert.Equal(1_600_000_000, link.MtimeSec);
        Assert.Equal(0x1180u, Stat(Path.Combine(t.Root, "etc/fifo")).Mode);
        Assert.Equal(0x43ffu, Stat(Path.Combine(t.Root, "tmp")).Mode);
        // Directory times are set after the directory's children were written.
        Assert.Equal(1_500_000_000, Stat(Path.Combine(t.Root, "etc")).MtimeSec);
        var cap = Stat(Path.Combine(t.Root, "etc/cap"));
        Assert.Equal((1234567890L, 500_000_000u), (cap.MtimeSec, cap.MtimeNsec));
        var xattrs = FileAt.ListXattrs(Path.Combine(t.Root, "etc/cap"));
        Assert.Equal(new byte[] { 0x00, 0xff, 0x80, 0x01 }, Assert.Single(xattrs, x => x.Key == "user.bin").Value);
    }

    /// <summary>fchown/fchmod are skipped only when the new entry already has the member's owner and
    /// mode: every case where the kernel's choice differs (umask, set-gid parent, set-id bits, other
    /// owners, an existing directory) still ends with exactly the member's metadata.</summary>
    [Fact]
    public void Owner_and_mode_are_exact_when_the_create_already_matches_and_when_it_does_not()
    {
        using var t = new TempDir();
        var tar = new TarBuilder()
            .Dir("plain", mode: 0x1ed)                                   // 0755 root: created as is
            .File("plain/f644", "x", mode: 0x1a4)                         // 0644 root: created as is
            .File("plain/f666", "x", mode: 0x1b6)                         // 0666: the umask would strip it
            .File("plain/f000", "x", mode: 0)
            .Dir("sgid", mode: 0x5fd, gid: 7)                             // 02775, group 7
            .File("sgid/root", "x", mode: 0x1a4)                          // kernel gives group 7; member wants 0
            .File("sgid/seven", "x", mode: 0x1a4, gid: 7)
            .Dir("sgid/sub", mode: 0x1ed)                                 // kernel adds set-gid; member has none
            .Symlink("sgid/link", "root")
            .Dir("plain", mode: 0x1c0, uid: 3)                            // again: existing directory changes
            .File("plain/f644b", "x", mode: 0x1a4)
            .Build();
        Unpack(tar, t.Root);
        (uint, uint, uint) Meta(string p) { var st = Stat(Path.Combine(t.Root, p)); return (st.Uid, st.Gid, st.Mode & 0xfff); }
        Assert.Equal((3u, 0u, 0x1c0u), Meta("plain"));
        Assert.Equal((0u, 0u, 0x1a4u), Meta("plain/f644"));
        Assert.Equal((0u, 0u, 0x1b6u), Meta("plain/f666"));
        Assert.Equal((0u, 0u, 0u), Meta("plain/f000"));
        Assert.Equal((0u, 7u, 0x5fdu), Meta("sgid"));
        Assert.Equal((0u, 0u, 0x1a4u), Meta("sgid/root"));
        Assert.Equal((0u, 7u, 0x1a4u), Meta("sgid/seven"));
        Assert.Equal((0u, 0u, 0x1edu), Meta("sgid/sub"));
        var link = Stat(Path.Combine(t.Root, "sgid/link"));
        Assert.Equal((0u, 0u), (link.Uid, link.Gid));
        Assert.Equal((0u, 0u, 0x1a4u), Meta("plain/f644b"));
    }

    [Fact]
    public void Bsdtar_xattrs_are_decoded()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().FileWithPax("f", "x"u8.ToArray(), ("LIBARCHIVE.xattr.user.a%20b", "AP8B"u8.ToArray())).Build();
        Unpack(tar, t.Root);
        Assert.Equal(new byte[] { 0x00, 0xff, 0x01 }, FileAt.ListXattrs(Path.Combine(t.Root, "f")).Single(x => x.Key == "user.a b").Value);
    }

    [Theory]
    [InlineData(LayerCompression.Gzip)]
    [InlineData(LayerCompression.Zstd)]
    [InlineData(LayerCompression.None)]
    public void Compressed_layers_unpack_and_the_diffid_is_of_the_uncompressed_tar(LayerCompression c)
    {
        using var t = new TempDir();
        var big = new byte[3 << 20];
        new Random(1).NextBytes(big);
        var tar = new TarBuilder().Dir("d").File("d/big", big).File("d/small", "s").Build();
        var blob = c switch { LayerCompression.Gzip => TarBuilder.Gzip(tar), LayerCompression.Zstd => TarBuilder.Zstd(tar), _ => tar };
        var r = Unpack(blob, t.Root, c, diffId: TarBuilder.DiffId(tar));
        Assert.Equal(TarBuilder.DiffId(tar), r.DiffId);
        Assert.Equal(big, File.ReadAllBytes(Path.Combine(t.Root, "d/big")));
    }

    [Fact]
    public void Unpacking_reads_a_forward_only_stream_in_small_pieces()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().Dir("a").File("a/f", new string('x', 100_000)).Build();
        using var slow = new TrickleStream(TarBuilder.Gzip(tar), 7);
        var r = LayerUnpacker.Unpack(slow, LayerCompression.Gzip, t.Root, new UnpackOptions(), TarBuilder.DiffId(tar));
        Assert.Equal(100_000, new FileInfo(Path.Combine(t.Root, "a/f")).Length);
        Assert.Equal(2, r.Entries);
    }

    [Fact]
    public void Diffid_mismatch_is_an_error()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().File("f", "x").Build();
        var e = Assert.Throws<LayerException>(() => Unpack(tar, t.Root, diffId: "sha256:" + new string('0', 64)));
        Assert.Contains("diffID mismatch", e.Message);
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/../../escape")]
    [InlineData("./../escape")]
    public void Dot_dot_names_that_climb_out_are_refused(string name)
    {
        using var t = new TempDir();
        var tar = new TarBuilder().RawHeader(name, '0', "pwned"u8.ToArray()).Build();
        var e = Assert.Throws<LayerException>(() => Unpack(tar, t.Root));
        Assert.Contains("outside the layer root", e.Message);
        Assert.Equal(["root"], t.OuterEntries());
    }

    [Fact]
    public void Absolute_names_land_inside_the_root()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().RawHeader(t.Outer + "/abs", '0', "x"u8.ToArray()).Build();
        Unpack(tar, t.Root);
        Assert.True(File.Exists(Path.Combine(t.Root, t.Outer.TrimStart('/'), "abs")));
        Assert.Equal(["root"], t.OuterEntries());
    }

    [Theory]
    [InlineData("/")]
    [InlineData("../../../../../../..")]
    [InlineData("..")]
    public void Writes_through_a_symlink_pointing_outside_stay_inside(string target)
    {
        using var t = new TempDir();
        // The symlink names the outer directory (absolute) or climbs with "..": both must resolve in-root.
        var linkTarget = target == "/" ? t.Outer : target;
        var tar = new TarBuilder().Symlink("evil", linkTarget).File("evil/pwned", "x").Dir("evil/sub").File("evil/sub/deeper", "y").Build();
        Unpack(tar, t.Root);
        Assert.Equal(["root"], t.OuterEntries());
        var landed = target == "/" ? Path.Combine(t.Root, t.Outer.TrimStart('/')) : t.Root;
        Assert.True(File.Exists(Path.Combine(landed, "pwned")));
        Assert.True(File.Exists(Path.Combine(landed, "sub/deeper")));
    }

    [Fact]
    public void A_file_member_replaces_a_symlink_instead_of_writing_through_it()
    {
        using var t = new TempDir();
        File.WriteAllText(Path.Combine(t.Outer, "victim"), "safe");
        var tar = new TarBuilder().Symlink("f", Path.Combine(t.Outer, "victim")).File("f", "pwned").Build();
        Unpack(tar, t.Root);
        Assert.Equal("safe", File.ReadAllText(Path.Combine(t.Outer, "victim")));
        Assert.Equal("pwned", File.ReadAllText(Path.Combine(t.Root, "f")));
        Assert.False(Stat(Path.Combine(t.Root, "f")).IsSymlink);
    }

    [Theory]
    [InlineData("../../outside")]
    [InlineData("/etc/passwd")]
    [InlineData("via/passwd")]
    public void Hard_links_to_files_outside_the_layer_are_refused(string target)
    {
        using var t = new TempDir();
        var before = Stat("/etc/passwd").Nlink;
        var tar = new TarBuilder().Symlink("via", "/etc").HardLink("h", target).Build();
        var e = Assert.Throws<LayerException>(() => Unpack(tar, t.Root));
        Assert.Matches("outside the layer root|not in the layer", e.Message);
        Assert.Equal(before, Stat("/etc/passwd").Nlink);
        Assert.Equal(["root"], t.OuterEntries());
    }

    [Fact]
    public void Device_nodes_follow_the_policy()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().Dir("dev").Device("dev/null", TarEntryType.CharacterDevice, 1, 3).Device("dev/sda", TarEntryType.BlockDevice, 8, 0, 0x1b0).Build();
        Unpack(tar, t.Root);
        var n = Stat(Path.Combine(t.Root, "dev/null"));
        Assert.Equal((0x21b6u, 1u, 3u), (n.Mode, n.RdevMajor, n.RdevMinor));
        Assert.Equal(0x61b0u, Stat(Path.Combine(t.Root, "dev/sda")).Mode);

        using var t2 = new TempDir();
        Unpack(tar, t2.Root, o: new UnpackOptions { Devices = DeviceNodePolicy.Skip });
        Assert.Null(FileAt.TryStat(Path.Combine(t2.Root, "dev/null")));

        using var t3 = new TempDir();
        var e = Assert.Throws<LayerException>(() => Unpack(tar, t3.Root, o: new UnpackOptions { Devices = DeviceNodePolicy.Reject }));
        Assert.Contains("dev/null", e.Message);
    }

    [Fact]
    public void A_decompression_bomb_stops_at_the_limit()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().File("zeros", new byte[64 << 20]).Build();
        var gz = TarBuilder.Gzip(tar);
        Assert.True(gz.Length < 1 << 20);
        var e = Assert.Throws<LayerException>(() => Unpack(gz, t.Root, LayerCompression.Gzip, new UnpackOptions { MaxUncompressedBytes = 8 << 20 }));
        Assert.Contains("exceeds the limit", e.Message);
    }

    [Fact]
    public void Too_many_members_is_an_error()
    {
        using var t = new TempDir();
        var b = new TarBuilder();
        for (var i = 0; i < 20; i++) b.File($"f{i}", "x");
        var e = Assert.Throws<LayerException>(() => Unpack(b.Build(), t.Root, o: new UnpackOptions { MaxEntries = 10 }));
        Assert.Contains("more than 10 members", e.Message);
    }

    [Theory]
    [InlineData(LayerCompression.Gzip, "truncate")]
    [InlineData(LayerCompression.Gzip, "corrupt")]
    [InlineData(LayerCompression.Zstd, "truncate")]
    [InlineData(LayerCompression.Zstd, "corrupt")]
    public void Truncated_or_corrupt_compressed_layers_are_errors(LayerCompression c, string damage)
    {
        using var t = new TempDir();
        var data = new byte[1 << 20];
        new Random(2).NextBytes(data);
        var tar = new TarBuilder().File("a", data).File("b", "tail").Build();
        var blob = c == LayerCompression.Gzip ? TarBuilder.Gzip(tar) : TarBuilder.Zstd(tar);
        if (damage == "truncate") blob = blob[..(blob.Length / 2)];
        else for (var i = blob.Length / 3; i < blob.Length / 3 + 64; i++) blob[i] ^= 0x5a;
        Assert.Throws<LayerException>(() => Unpack(blob, t.Root, c, diffId: TarBuilder.DiffId(tar)));
    }

    [Fact]
    public void A_truncated_tar_is_an_error_even_without_a_diffid()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().File("a", new byte[10000]).Build(terminate: false);
        var e = Assert.Throws<LayerException>(() => Unpack(tar[..6000], t.Root));
        Assert.Contains("unexpected end", e.Message);
    }

    [Fact]
    public void A_header_with_a_bad_checksum_is_an_error()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().RawHeader("f", '0', "x"u8.ToArray(), corruptChecksum: true).Build();
        var e = Assert.Throws<LayerException>(() => Unpack(tar, t.Root));
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public void An_enormous_declared_size_is_an_error_not_an_allocation()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().RawHeader("f", '0', new byte[512], declaredSize: 1L << 36).Build();
        var e = Assert.Throws<LayerException>(() => Unpack(tar, t.Root));
        Assert.Contains("unexpected end", e.Message);
        var pax = new TarBuilder().RawHeader("PaxHeaders/f", 'x', new byte[512], declaredSize: 1L << 40).Build();
        Assert.Contains("too large", Assert.Throws<LayerException>(() => Unpack(pax, t.Root)).Message);
    }

    [Fact]
    public void Sparse_members_are_refused()
    {
        using var t = new TempDir();
        var tar = new TarBuilder().RawHeader("s", 'S', new byte[0]).Build();
        Assert.Contains("sparse", Assert.Throws<LayerException>(() => Unpack(tar, t.Root)).Message);
    }

    [Fact]
    public void Whiteouts_delete_in_place_on_a_merged_tree()
    {
        using var t = new TempDir();
        Unpack(new TarBuilder().Dir("a").File("a/gone", "1").File("a/kept", "2").Dir("a/dir").File("a/dir/x", "3")
            .Dir("opq").File("opq/old", "4").Dir("opq/olddir").File("opq/olddir/y", "5").Build(), t.Root);
        Unpack(new TarBuilder().File("a/.wh.gone", "").File("a/.wh.dir", "").File("a/.wh.missing", "")
            .Dir("opq").File("opq/new", "6").File("opq/.wh..wh..opq", "").Build(), t.Root);
        Assert.Equal(["kept"], Directory.GetFileSystemEntries(Path.Combine(t.Root, "a")).Select(Path.GetFileName));
        Assert.Equal(["new"], Directory.GetFileSystemEntries(Path.Combine(t.Root, "opq")).Select(Path.GetFileName));
    }

    [Fact]
    public void Whiteouts_become_overlay_whiteouts_in_overlay_mode()
    {
        using var t = new TempDir();
        Unpack(new TarBuilder().Dir("a").File("a/.wh.gone", "").Dir("opq").File("opq/.wh..wh..opq", "").File("opq/new", "n").Build(),
            t.Root, o: new UnpackOptions { Whiteouts = WhiteoutMode.Overlay });
        var wh = Stat(Path.Combine(t.Root, "a/gone"));
        Assert.Equal((0x2000u, 0u, 0u), (wh.Type, wh.RdevMajor, wh.RdevMinor));
        var x = FileAt.ListXattrs(Path.Combine(t.Root, "opq"));
        Assert.Equal("y"u8.ToArray(), Assert.Single(x, kv => kv.Key == "trusted.overlay.opaque").Value);
        Assert.False(File.Exists(Path.Combine(t.Root, "opq/.wh..wh..opq")));
    }

    [Fact]
    public void Later_members_replace_earlier_ones_of_another_type()
    {
        using var t = new TempDir();
        Unpack(new TarBuilder().Dir("x").File("x/in", "1").File("y", "2").Symlink("z", "/").Build(), t.Root);
        Unpack(new TarBuilder().File("x", "now a file").Dir("y").Dir("z").File("z/f", "3").Build(), t.Root);
        Assert.Equal("now a file", File.ReadAllText(Path.Combine(t.Root, "x")));
        Assert.True(Stat(Path.Combine(t.Root, "y")).IsDirectory);
        Assert.True(Stat(Path.Combine(t.Root, "z")).IsDirectory);
        Assert.True(File.Exists(Path.Combine(t.Root, "z/f")));
    }

    [Fact]
    public void Cancellation_stops_the_unpack()
    {
        using var t = new TempDir();
        var b = new TarBuilder();
        for (var i = 0; i < 100; i++) b.File($"f{i}", "x");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => LayerUnpacker.Unpack(new MemoryStream(b.Build()), LayerCompression.None, t.Root, new UnpackOptions(), null, cts.Token));
    }

    /// <summary>Hands out at most a few bytes per read, like a slow network stream.</summary>
    sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(chunk, buffer.Length)]);
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(chunk, count));
        public override bool CanSeek => false;
    }
}
