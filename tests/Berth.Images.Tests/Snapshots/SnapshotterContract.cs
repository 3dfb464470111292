using Berth.Images.Snapshots;
using Berth.Images.Tests.Support;
using Berth.Images.Unpack;
using Berth.Linux;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Snapshots;

/// <summary>The snapshotter contract, run against every implementation (real mounts, as root).</summary>
public abstract class SnapshotterContract : IDisposable
{
    protected readonly TempDir Temp = new();
    protected abstract ISnapshotter Create(string root);
    protected ISnapshotter S => _s ??= Create(Temp.Root);
    ISnapshotter? _s;

    public void Dispose() => Temp.Dispose();

    static readonly byte[] Base = new TarBuilder()
        .Dir("etc").File("etc/os-release", "base\n").File("etc/gone", "x").Dir("etc/gonedir").File("etc/gonedir/f", "y")
        .Dir("opq").File("opq/old", "old").Dir("bin").File("bin/tool", "#!/bin/sh\n", mode: 0x9ed, uid: 0, gid: 0)
        .FileWithPax("bin/capped", "c"u8.ToArray(), ("SCHILY.xattr.user.note", [0x01, 0x00, 0xfe]))
        .File("home", "owned", uid: 1234, gid: 4321).Symlink("link", "etc/os-release")
        .Build();

    static readonly byte[] Top = new TarBuilder()
        .Dir("etc").File("etc/.wh.gone", "").File("etc/.wh.gonedir", "").File("etc/os-release", "top\n")
        .Dir("opq").File("opq/.wh..wh..opq", "").File("opq/new", "new").HardLink("hard", "etc/os-release")
        .Build();

    async Task<(string Base, string Top)> ApplyTwo()
    {
        var b = await S.ApplyLayerAsync(null, TarBuilder.DiffId(Base), new MemoryStream(TarBuilder.Gzip(Base)), LayerCompression.Gzip, default);
        var t = await S.ApplyLayerAsync(b, TarBuilder.DiffId(Top), new MemoryStream(Top), LayerCompression.None, default);
        return (b, t);
    }

    string TmpDir => Path.Combine(Temp.Root, "images", "snapshots", S.Driver, "tmp");

    /// <summary>Mounts a container snapshot on a temp directory, runs the check, unmounts.</summary>
    void WithMounted(string key, Action<string> check)
    {
        var target = Path.Combine(Temp.Outer, "mnt-" + key);
        Directory.CreateDirectory(target);
        SnapshotMounter.Mount(S.Mounts(key), target);
        try { check(target); }
        finally { SnapshotMounter.Unmount(target); }
    }

    [Fact]
    public void New_trees_are_made_under_a_top_directory_where_the_file_system_has_the_flag()
    {
        _ = S;
        // Whether this file system takes FS_TOPDIR_FL at all (ext2/3/4 do; /tmp is the root's ext4 here).
        var probe = Path.Combine(Temp.Outer, "probe");
        Directory.CreateDirectory(probe);
        if (FileAt.TryAddInodeFlags(probe, FileAt.FS_TOPDIR_FL) != 0) return;
        Assert.Equal(0, FileAt.TryGetInodeFlags(TmpDir, out var flags));
        Assert.Equal(FileAt.FS_TOPDIR_FL, flags & FileAt.FS_TOPDIR_FL);
        // Not inherited: what is made inside a layer's tree is placed near that tree, as usual.
        var layer = Path.Combine(TmpDir, "x");
        Directory.CreateDirectory(layer);
        Assert.Equal(0, FileAt.TryGetInodeFlags(layer, out var child));
        Assert.Equal(0, child & FileAt.FS_TOPDIR_FL);
        Directory.Delete(layer);
    }

    [Fact]
    public async Task A_file_system_without_the_top_directory_flag_still_holds_snapshots()
    {
        var dir = Path.Combine("/dev/shm", "berth-images-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            // tmpfs refuses FS_TOPDIR_FL: the hint is skipped and nothing else changes.
            Assert.NotEqual(0, FileAt.TryAddInodeFlags(dir, FileAt.FS_TOPDIR_FL));
            var s = Create(Path.Combine(dir, "root"));
            var id = await s.ApplyLayerAsync(null, TarBuilder.DiffId(Base), new MemoryStream(Base), LayerCompression.None, default);
            Assert.True(s.HasLayer(id));
            Assert.Equal("base\n", File.ReadAllText(Path.Combine(dir, "root", "images", "snapshots", s.Driver, "layers", id["sha256:".Length..], "fs", "etc", "os-release")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task Layers_are_keyed_by_chain_id_and_listed()
    {
        var (b, t) = await ApplyTwo();
        Assert.Equal(TarBuilder.DiffId(Base), b);
        Assert.Equal(ChainId.Next(b, TarBuilder.DiffId(Top)), t);
        Assert.True(S.HasLayer(b) && S.HasLayer(t));
        Assert.Equal(new[] { b, t }.Order(StringComparer.Ordinal), S.Layers());
        Assert.Empty(Directory.GetFileSystemEntries(TmpDir));
    }

    [Fact]
    public async Task A_prepared_container_sees_the_merged_layers_and_writes_only_its_own_layer()
    {
        var (_, t) = await ApplyTwo();
        S.Prepare("c1", t);
        WithMounted("c1", root =>
        {
            Assert.Equal("top\n", File.ReadAllText(Path.Combine(root, "etc/os-release")));
            Assert.False(File.Exists(Path.Combine(root, "etc/gone")));
            Assert.False(Directory.Exists(Path.Combine(root, "etc/gonedir")));
            Assert.Equal(["new"], Directory.GetFileSystemEntries(Path.Combine(root, "opq")).Select(Path.GetFileName));
            var tool = FileAt.TryStat(Path.Combine(root, "bin/tool"))!.Value;
            Assert.Equal(0x89edu, tool.Mode);
            var home = FileAt.TryStat(Path.Combine(root, "home"))!.Value;
            Assert.Equal((1234u, 4321u), (home.Uid, home.Gid));
            Assert.Equal(new byte[] { 1, 0, 0xfe }, FileAt.ListXattrs(Path.Combine(root, "bin/capped")).Single(x => x.Key == "user.note").Value);
            Assert.Equal("top\n", File.ReadAllText(Path.Combine(root, "link")));
            Assert.Equal("top\n", File.ReadAllText(Path.Combine(root, "hard")));
            File.WriteAllText(Path.Combine(root, "written"), "by container");
            File.Delete(Path.Combine(root, "home"));
        });
        Assert.True(File.Exists(Path.Combine(S.UpperDirectory("c1"), "written")));
        // The shared layers did not change: a second container sees the image as it was.
        S.Prepare("c2", t);
        WithMounted("c2", root =>
        {
            Assert.False(File.Exists(Path.Combine(root, "written")));
            Assert.Equal("owned", File.ReadAllText(Path.Combine(root, "home")));
        });
    }

    [Fact]
    public async Task A_container_without_a_parent_gets_an_empty_writable_tree()
    {
        S.Prepare("scratch", null);
        WithMounted("scratch", root =>
        {
            Assert.Empty(Directory.GetFileSystemEntries(root));
            File.WriteAllText(Path.Combine(root, "x"), "1");
        });
        Assert.True(File.Exists(Path.Combine(S.UpperDirectory("scratch"), "x")));
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Concurrent_unpacks_of_one_layer_leave_one_intact_copy()
    {
        var big = new TarBuilder();
        for (var i = 0; i < 300; i++) big.File($"f{i}", new string('a', i * 10));
        var tar = big.Build();
        var gz = TarBuilder.Gzip(tar);
        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Run(() => S.ApplyLayerAsync(null, TarBuilder.DiffId(tar), new MemoryStream(gz), LayerCompression.Gzip, default))).ToArray();
        var ids = await Task.WhenAll(tasks);
        Assert.Single(ids.Distinct());
        Assert.Single(S.Layers());
        Assert.Empty(Directory.GetFileSystemEntries(TmpDir));
        S.Prepare("c", ids[0]);
        WithMounted("c", root =>
        {
            Assert.Equal(300, Directory.GetFiles(root).Length);
            Assert.Equal(2990, new FileInfo(Path.Combine(root, "f299")).Length);
        });
    }

    [Fact]
    public async Task A_hostile_or_corrupt_layer_leaves_no_snapshot_behind()
    {
        var evil = new TarBuilder().File("ok", "1").RawHeader("../../escape", '0', "x"u8.ToArray()).Build();
        await Assert.ThrowsAsync<LayerException>(() => S.ApplyLayerAsync(null, TarBuilder.DiffId(evil), new MemoryStream(evil), LayerCompression.None, default));
        var good = new TarBuilder().File("ok", "1").Build();
        await Assert.ThrowsAsync<LayerException>(() => S.ApplyLayerAsync(null, TarBuilder.DiffId(good), new MemoryStream(TarBuilder.Gzip(good)[..40]), LayerCompression.Gzip, default));
        await Assert.ThrowsAsync<LayerException>(() => S.ApplyLayerAsync(null, "sha256:" + new string('1', 64), new MemoryStream(good), LayerCompression.None, default));
        Assert.Empty(S.Layers());
        Assert.Empty(Directory.GetFileSystemEntries(TmpDir));
        Assert.Equal(["root"], Temp.OuterEntries());
        Assert.Equal(["images"], Directory.GetFileSystemEntries(Temp.Root).Select(Path.GetFileName));
        Assert.False(File.Exists(Path.Combine(Temp.Outer, "escape")));
        Assert.False(File.Exists(Path.Combine(Temp.Root, "escape")));
    }

    [Fact]
    public async Task Keys_and_layers_are_checked()
    {
        var (b, t) = await ApplyTwo();
        S.Prepare("web", t);
        Assert.Equal(SnapshotError.AlreadyExists, Assert.Throws<SnapshotException>(() => S.Prepare("web", t)).Kind);
        Assert.Equal(SnapshotError.InvalidArgument, Assert.Throws<SnapshotException>(() => S.Prepare("../x", t)).Kind);
        Assert.Equal(SnapshotError.NotFound, Assert.Throws<SnapshotException>(() => S.Prepare("other", "sha256:" + new string('2', 64))).Kind);
        Assert.Equal(SnapshotError.NotFound, Assert.Throws<SnapshotException>(() => S.Remove("nope")).Kind);
        Assert.Equal(SnapshotError.FailedPrecondition, Assert.Throws<SnapshotException>(() => S.RemoveLayer(b)).Kind);
        Assert.Equal(SnapshotError.FailedPrecondition, Assert.Throws<SnapshotException>(() => S.RemoveLayer(t)).Kind);
        Assert.Equal(["web"], S.Containers());
        S.Remove("web");
        S.RemoveLayer(t);
        S.RemoveLayer(b);
        Assert.Empty(S.Layers());
        Assert.Empty(S.Containers());
        Assert.Empty(Directory.GetFileSystemEntries(TmpDir));
    }

    [Fact]
    public async Task Many_layers_mount()
    {
        string? parent = null;
        for (var i = 0; i < 70; i++)
        {
            var tar = new TarBuilder().File($"layer{i:D3}", i.ToString()).File("top", i.ToString()).Build();
            parent = await S.ApplyLayerAsync(parent, TarBuilder.DiffId(tar), new MemoryStream(tar), LayerCompression.None, default);
        }
        var mounts = S.Prepare("deep", parent);
        if (mounts[0].Type == "overlay") Assert.True(string.Join(',', mounts[0].Options).Length > OverlayMount.MaxDataLength);
        WithMounted("deep", root =>
        {
            Assert.Equal(71, Directory.GetFiles(root).Length);
            Assert.Equal("69", File.ReadAllText(Path.Combine(root, "top")));
        });
    }
}

public sealed class OverlaySnapshotterTests : SnapshotterContract
{
    protected override ISnapshotter Create(string root) => new OverlaySnapshotter(root);

    [Fact]
    public void Overlay_is_detected_on_this_file_system() => Assert.True(OverlaySnapshotter.IsSupported(Temp.Root));

    [Fact]
    public async Task Layers_unpack_independently_of_their_parents()
    {
        var child = new TarBuilder().File("c", "1").Build();
        var parent = "sha256:" + new string('3', 64);
        var id = await S.ApplyLayerAsync(parent, TarBuilder.DiffId(child), new MemoryStream(child), LayerCompression.None, default);
        Assert.True(S.HasLayer(id));
        Assert.Equal(SnapshotError.NotFound, Assert.Throws<SnapshotException>(() => S.Prepare("c", id)).Kind);
    }
}

public sealed class CopySnapshotterTests : SnapshotterContract
{
    protected override ISnapshotter Create(string root) => new CopySnapshotter(root);

    [Fact]
    public async Task A_layer_needs_its_parent_first()
    {
        var child = new TarBuilder().File("c", "1").Build();
        var e = await Assert.ThrowsAsync<SnapshotException>(() => S.ApplyLayerAsync("sha256:" + new string('3', 64), TarBuilder.DiffId(child), new MemoryStream(child), LayerCompression.None, default));
        Assert.Equal(SnapshotError.FailedPrecondition, e.Kind);
    }
}
