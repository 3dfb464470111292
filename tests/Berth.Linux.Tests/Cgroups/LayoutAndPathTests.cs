using Berth.Linux.Cgroups;

namespace Berth.Linux.Tests.Cgroups;

public class LayoutAndPathTests
{
    [Fact]
    public void V1_layout_maps_each_controller_to_its_mount_and_ignores_named_hierarchies()
    {
        using var f = new CgroupFixture();
        var layout = f.V1();
        Assert.Equal(CgroupMode.V1, layout.Mode);
        Assert.Null(layout.Unified);
        Assert.Equal(f.P("memory"), layout.For("memory")!.MountPoint);
        Assert.Equal("/process_api/abc", layout.For("memory")!.ProcessPath);
        Assert.Equal("/", layout.For("cpu")!.ProcessPath);
        Assert.Null(layout.For("hugetlb"));
        Assert.Contains(layout.Hierarchies, h => h.Name == "systemd");
        Assert.DoesNotContain(layout.Managed, h => h.Name == "systemd");
        Assert.Equal(8, layout.Managed.Count);
    }

    [Fact]
    public void Comounted_cpu_cpuacct_is_one_hierarchy()
    {
        using var f = new CgroupFixture();
        var layout = f.V1(cpuAcctTogether: true);
        Assert.Same(layout.For("cpu"), layout.For("cpuacct"));
        Assert.Equal(f.P("cpu,cpuacct"), layout.For("cpu")!.MountPoint);
        Assert.Equal(7, layout.Managed.Count);
    }

    [Fact]
    public void Hybrid_layout_binds_unified_controllers_to_the_cgroup2_mount()
    {
        using var f = new CgroupFixture();
        var layout = f.V1(unifiedControllers: "hugetlb");
        Assert.Equal(CgroupMode.Hybrid, layout.Mode);
        Assert.True(layout.For("hugetlb")!.IsUnified);
        Assert.False(layout.For("memory")!.IsUnified);
        Assert.Equal(f.P("unified"), layout.Unified!.MountPoint);
    }

    [Fact]
    public void Empty_cgroup2_mount_next_to_v1_is_plain_v1()
    {
        using var f = new CgroupFixture();
        var layout = f.V1(unifiedControllers: "");
        Assert.Equal(CgroupMode.V1, layout.Mode);
        Assert.Null(layout.Unified);
    }

    [Fact]
    public void V2_layout()
    {
        using var f = new CgroupFixture();
        var layout = f.V2();
        Assert.Equal(CgroupMode.V2, layout.Mode);
        Assert.Equal("/user.slice/session-1.scope", layout.Unified!.ProcessPath);
        Assert.Same(layout.Unified, layout.For("memory"));
        Assert.Single(layout.Managed);
    }

    [Fact]
    public void This_machine_layout_parses()
    {
        if (!File.Exists("/proc/self/cgroup")) return;
        var layout = CgroupLayout.Discover();
        Assert.NotEmpty(layout.Managed);
    }

    [Fact]
    public void Mountinfo_octal_escapes_and_mount_roots_are_honoured()
    {
        using var f = new CgroupFixture();
        f.File("my cg/cgroup.controllers", "memory pids\n");
        string mi = $"35 22 0:30 /sub {f.Root}/my\\040cg rw - cgroup2 cgroup2 rw\n";
        var layout = CgroupLayout.Parse(mi, "0::/sub/x\n");
        Assert.Equal(f.P("my cg"), layout.Unified!.MountPoint);
        Assert.Equal(f.P("my cg") + "/x/y", layout.Unified.DirOf("/sub/x/y"));
    }

    [Theory]
    [InlineData("/a/b", "/", "/a/b")]
    [InlineData("/a/b", "/process_api/h", "/a/b")]
    [InlineData("/process_api/h/a", "/process_api/h", "/process_api/h/a")]
    [InlineData("a/b", "/", "/a/b")]
    [InlineData("a/b", "/process_api/h", "/process_api/h/a/b")]
    [InlineData("//a/./b/", "/", "/a/b")]
    public void Path_rules(string cgroupsPath, string caller, string expected)
    {
        var (p, abs) = CgroupPaths.Parse(cgroupsPath, "/berth/x");
        Assert.Equal(expected, CgroupPaths.InHierarchy(p, abs, caller));
    }

    [Fact]
    public void Empty_path_uses_the_default_and_the_manager_nests_per_hierarchy()
    {
        using var f = new CgroupFixture();
        var m = CgroupManagerFactory.Create("", "ctr1", f.V1(), options: f.Options());
        Assert.Equal(f.P("memory/process_api/abc/berth/ctr1"), m.Paths["memory"]);
        Assert.Equal(f.P("cpu/berth/ctr1"), m.Paths["cpu"]);
        var m2 = CgroupManagerFactory.Create(null, "ctr1", f.V1(), defaultPath: "mine/ctr1", options: f.Options());
        Assert.Equal(f.P("pids/mine/ctr1"), m2.Paths["pids"]);
    }

    [Fact]
    public void Systemd_paths_are_refused()
    {
        using var f = new CgroupFixture();
        var e = Assert.Throws<CgroupException>(() => CgroupManagerFactory.Create("system.slice:berth:abc", "abc", f.V1(), options: f.Options()));
        Assert.Equal("cgroup: systemd cgroup driver requested but systemd is not running", e.Message);
        Directory.CreateDirectory(f.P("run-systemd-system"));
        e = Assert.Throws<CgroupException>(() => CgroupManagerFactory.Create("system.slice:berth:abc", "abc", f.V1(), options: f.Options()));
        Assert.Contains("does not implement", e.Message);
    }

    [Theory]
    [InlineData("/a/../b")]
    [InlineData("/")]
    public void Bad_paths_are_refused(string path) =>
        Assert.Throws<CgroupException>(() => CgroupPaths.Parse(path, "/berth/x"));
}
