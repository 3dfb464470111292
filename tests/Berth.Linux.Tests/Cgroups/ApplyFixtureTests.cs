using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;

namespace Berth.Linux.Tests.Cgroups;

public class ApplyFixtureTests
{
    const string Unlimited = "9223372036854771712";

    static (CgroupFixture F, ICgroupManager M) V1(bool hybrid = false)
    {
        var f = new CgroupFixture();
        var layout = f.V1(unifiedControllers: hybrid ? "hugetlb" : null);
        f.File("memory/process_api/abc/berth/c1/memory.limit_in_bytes", Unlimited + "\n");
        f.Files("memory/process_api/abc/berth/c1", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
            "memory.swappiness", "memory.oom_control", "memory.use_hierarchy", "cgroup.procs");
        f.Files("cpu/berth/c1", "cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us",
            "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.idle", "cgroup.procs");
        f.Files("cpuset/berth", "cpuset.cpus", "cpuset.mems");
        f.Files("cpuset/berth/c1", "cpuset.cpus", "cpuset.mems", "cgroup.procs");
        f.Files("pids/berth/c1", "pids.max", "cgroup.procs");
        f.Files("blkio/berth/c1", "blkio.bfq.weight", "blkio.bfq.weight_device", "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device", "cgroup.procs");
        f.Files("devices/berth/c1", "devices.allow", "devices.deny", "cgroup.procs");
        f.Files("freezer/berth/c1", "freezer.state", "cgroup.procs");
        f.Files("cpuacct/berth/c1", "cgroup.procs");
        if (hybrid)
        {
            f.File("unified/berth/cgroup.controllers", "hugetlb");
            f.File("unified/berth/cgroup.subtree_control", "hugetlb");
            f.Files("unified/berth/c1", "hugetlb.2MB.max", "hugetlb.1GB.max", "cgroup.procs");
        }
        return (f, CgroupManagerFactory.Create("berth/c1", "c1", layout, options: f.Options()));
    }

    [Fact]
    public void V1_writes_every_field_to_its_file_in_order()
    {
        var (f, m) = V1();
        using var _ = f;
        var warnings = m.Apply(new LinuxResources
        {
            Devices =
            [
                new() { Allow = false, Access = "rwm" },
                new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" },
                new() { Allow = true, Type = "c", Access = "m" },
                new() { Allow = false, Type = "b", Major = 8, Minor = 0, Access = "w" },
            ],
            Memory = new() { Limit = 67108864, Swap = 134217728, Reservation = 33554432, Swappiness = 10, DisableOomKiller = true, UseHierarchy = true, Kernel = 1 << 20 },
            Cpu = new() { Shares = 512, Quota = 50000, Period = 100000, Burst = 1000, RealtimePeriod = 1000000, RealtimeRuntime = 950000, Idle = 0, Cpus = "0-1", Mems = "0" },
            Pids = new() { Limit = 100 },
            BlockIO = new()
            {
                Weight = 500,
                WeightDevice = [new() { Major = 8, Minor = 0, Weight = 300 }],
                ThrottleReadBpsDevice = [new() { Major = 8, Minor = 0, Rate = 1048576 }],
                ThrottleWriteBpsDevice = [new() { Major = 8, Minor = 0, Rate = 2097152 }],
                ThrottleReadIopsDevice = [new() { Major = 8, Minor = 16, Rate = 200 }],
                ThrottleWriteIopsDevice = [new() { Major = 8, Minor = 16, Rate = 100 }],
            },
        });
        const string mem = "/memory/process_api/abc/berth/c1/";
        Assert.Equal(new (string, string)[]
        {
            ("/cpuset/berth/c1/cpuset.cpus", "0-1"),
            ("/cpuset/berth/c1/cpuset.mems", "0"),
            ("/devices/berth/c1/devices.deny", "a"),
            ("/devices/berth/c1/devices.allow", "c 1:3 rwm"),
            ("/devices/berth/c1/devices.allow", "c *:* m"),
            ("/devices/berth/c1/devices.deny", "b 8:0 w"),
            // shrinking from unlimited: the limit goes first so memsw >= limit holds throughout
            (mem + "memory.limit_in_bytes", "67108864"),
            (mem + "memory.memsw.limit_in_bytes", "134217728"),
            (mem + "memory.soft_limit_in_bytes", "33554432"),
            (mem + "memory.swappiness", "10"),
            (mem + "memory.oom_control", "1"),
            (mem + "memory.use_hierarchy", "1"),
            ("/cpu/berth/c1/cpu.shares", "512"),
            ("/cpu/berth/c1/cpu.cfs_period_us", "100000"),
            ("/cpu/berth/c1/cpu.cfs_quota_us", "50000"),
            ("/cpu/berth/c1/cpu.cfs_burst_us", "1000"),
            ("/cpu/berth/c1/cpu.rt_period_us", "1000000"),
            ("/cpu/berth/c1/cpu.rt_runtime_us", "950000"),
            ("/cpu/berth/c1/cpu.idle", "0"),
            ("/pids/berth/c1/pids.max", "100"),
            // no blkio.weight on this "kernel": the BFQ names are used
            ("/blkio/berth/c1/blkio.bfq.weight", "500"),
            ("/blkio/berth/c1/blkio.bfq.weight_device", "8:0 300"),
            ("/blkio/berth/c1/blkio.throttle.read_bps_device", "8:0 1048576"),
            ("/blkio/berth/c1/blkio.throttle.write_bps_device", "8:0 2097152"),
            ("/blkio/berth/c1/blkio.throttle.read_iops_device", "8:16 200"),
            ("/blkio/berth/c1/blkio.throttle.write_iops_device", "8:16 100"),
        }, f.Writes);
        Assert.Equal(["memory.kernel (kernel memory limit) is deprecated and was ignored"], warnings);
        Assert.Equal("67108864", f.Read(mem + "memory.limit_in_bytes"));
    }

    [Fact]
    public void V1_growing_memory_writes_memsw_first_and_unlimited_lifts_memsw()
    {
        var (f, m) = V1();
        using var _ = f;
        const string mem = "/memory/process_api/abc/berth/c1/";
        f.File(mem + "memory.limit_in_bytes", "1048576\n");
        m.Apply(new LinuxResources { Memory = new() { Limit = 4194304, Swap = 8388608 } });
        Assert.Equal([(mem + "memory.memsw.limit_in_bytes", "8388608"), (mem + "memory.limit_in_bytes", "4194304")], f.Writes);
        f.Writes.Clear();
        m.Apply(new LinuxResources { Memory = new() { Limit = -1 } });
        Assert.Equal([(mem + "memory.memsw.limit_in_bytes", "-1"), (mem + "memory.limit_in_bytes", "-1")], f.Writes);
        f.Writes.Clear();
        m.Apply(new LinuxResources { Pids = new() { Limit = 0 }, Cpu = new() { Quota = -1 } });
        Assert.Equal([("/cpu/berth/c1/cpu.cfs_quota_us", "-1"), ("/pids/berth/c1/pids.max", "max")], f.Writes);
    }

    [Fact]
    public void V1_missing_files_and_controllers_are_errors_not_silence()
    {
        var (f, m) = V1();
        using var _ = f;
        const string mem = "memory/process_api/abc/berth/c1/";
        File.Delete(f.P(mem + "memory.memsw.limit_in_bytes"));
        var e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Memory = new() { Limit = 4096, Swap = 8192 } }));
        Assert.Equal("cgroup: cannot set memory.swap: memory.memsw.limit_in_bytes does not exist (swap accounting disabled)", e.Message);

        e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { HugepageLimits = [new() { PageSize = "2MB", Limit = 1 }] }));
        Assert.Equal("cgroup: cannot set hugepageLimits: the hugetlb controller is not mounted", e.Message);

        File.Delete(f.P("cpu/berth/c1/cpu.cfs_burst_us"));
        e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Cpu = new() { Burst = 5 } }));
        Assert.Equal("cgroup: cannot set cpu.burst: cpu.cfs_burst_us does not exist (kernel without CFS burst)", e.Message);

        e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { BlockIO = new() { LeafWeight = 10 } }));
        Assert.StartsWith("cgroup: cannot set blockIO.leafWeight: blkio.leaf_weight does not exist", e.Message);

        e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Network = new() { ClassId = 7 } }));
        Assert.Equal("cgroup: cannot set network.classID: the net_cls controller is not mounted", e.Message);

        e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Unified = new() { ["memory.high"] = "1" } }));
        Assert.Equal("cgroup: cannot set unified: cgroup v2 is not mounted", e.Message);

        e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Memory = new() { Swappiness = 101 } }));
        Assert.Contains("valid range is 0-100", e.Message);
        Assert.Empty(f.Writes);
    }

    [Fact]
    public void Write_errors_name_value_path_and_errno()
    {
        using var f = new CgroupFixture();
        var e = Assert.Throws<CgroupException>(() => CgroupFs.Write(f.P("nope/memory.limit_in_bytes"), "1"));
        Assert.Equal($"cgroup: writing \"1\" to {f.P("nope/memory.limit_in_bytes")}: No such file or directory", e.Message);
        Assert.Equal(Errno.ENOENT, e.Errno);
        // Never creates a file.
        Assert.False(File.Exists(f.P("nope/memory.limit_in_bytes")));
    }

    [Fact]
    public void Hybrid_sends_hugetlb_to_the_unified_hierarchy_and_the_rest_to_v1()
    {
        var (f, m) = V1(hybrid: true);
        using var _ = f;
        m.Apply(new LinuxResources
        {
            HugepageLimits = [new() { PageSize = "2MB", Limit = 4194304 }, new() { PageSize = "1GB", Limit = 0 }],
            Pids = new() { Limit = 5 },
        });
        Assert.Equal(new (string, string)[]
        {
            ("/pids/berth/c1/pids.max", "5"),
            ("/unified/berth/c1/hugetlb.2MB.max", "4194304"),
            ("/unified/berth/c1/hugetlb.1GB.max", "0"),
        }, f.Writes);
        var e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { HugepageLimits = [new() { PageSize = "64KB", Limit = 1 }] }));
        Assert.Equal("cgroup: cannot set hugepageLimits 64KB: hugetlb.64KB.max does not exist (page size not supported by the kernel)", e.Message);
        // unified keys only reach files that exist in the unified cgroup (memory is v1 here)
        e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Unified = new() { ["memory.high"] = "1" } }));
        Assert.StartsWith("cgroup: cannot set unified \"memory.high\": memory.high does not exist", e.Message);

        f.Writes.Clear();
        m.AddProcess(42, includeMemory: false);
        Assert.DoesNotContain(f.Writes, w => w.Path.StartsWith("/memory/"));
        Assert.Contains(("/unified/berth/c1/cgroup.procs", "42"), f.Writes);
        Assert.Equal(8, f.Writes.Count); // 7 v1 hierarchies without memory + unified
        f.Writes.Clear();
        m.AddProcessToMemory(42);
        Assert.Equal([("/memory/process_api/abc/berth/c1/cgroup.procs", "42")], f.Writes);
    }

    [Fact]
    public void V1_create_makes_every_hierarchy_and_copies_cpuset_from_parents()
    {
        using var f = new CgroupFixture();
        var layout = f.V1();
        f.Files("cpuset/berth", "cpuset.cpus", "cpuset.mems");
        f.Files("cpuset/berth/c1", "cpuset.cpus", "cpuset.mems");
        var m = CgroupManagerFactory.Create("berth/c1", "c1", layout, options: f.Options());
        m.Create();
        m.Create(); // idempotent: nothing new to copy
        Assert.Equal(new (string, string)[]
        {
            ("/cpuset/berth/cpuset.cpus", "0-3"), ("/cpuset/berth/cpuset.mems", "0"),
            ("/cpuset/berth/c1/cpuset.cpus", "0-3"), ("/cpuset/berth/c1/cpuset.mems", "0"),
        }, f.Writes);
        foreach (var h in new[] { "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids" })
            Assert.True(Directory.Exists(f.P(h + "/berth/c1")), h);
        Assert.True(Directory.Exists(f.P("memory/process_api/abc/berth/c1")));
        Assert.False(Directory.Exists(f.P("systemd/berth")));
        Assert.True(m.Exists());
    }

    [Fact]
    public void Freeze_and_thaw_v1_and_v2()
    {
        var (f, m) = V1();
        using var _ = f;
        m.Freeze();
        Assert.True(m.IsFrozen());
        m.Thaw();
        Assert.False(m.IsFrozen());
        Assert.Equal([("/freezer/berth/c1/freezer.state", "FROZEN"), ("/freezer/berth/c1/freezer.state", "THAWED")], f.Writes);

        using var g = new CgroupFixture();
        var m2 = CgroupManagerFactory.Create("/c2", "c2", g.V2(callerPath: "/"), options: g.Options());
        g.File("cg2/c2/cgroup.freeze");
        g.File("cg2/c2/cgroup.events", "populated 1\nfrozen 1\n");
        m2.Freeze();
        Assert.True(m2.IsFrozen());
        g.File("cg2/c2/cgroup.events", "populated 1\nfrozen 0\n");
        m2.Thaw();
        Assert.Equal([("/cg2/c2/cgroup.freeze", "1"), ("/cg2/c2/cgroup.freeze", "0")], g.Writes);
        // A freeze the kernel never confirms times out with a clear error.
        var e = Assert.Throws<CgroupException>(() => m2.Freeze());
        Assert.Contains("state did not change", e.Message);
    }
}
