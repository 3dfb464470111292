using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;

namespace Berth.Linux.Tests.Cgroups;

public class V2FixtureTests
{
    const string Dir = "cg2/user.slice/session-1.scope/berth/c2";

    static (CgroupFixture F, ICgroupManager M, List<DeviceFilterProgram> Attached) Setup()
    {
        var f = new CgroupFixture();
        var layout = f.V2();
        f.Files(Dir, "memory.max", "memory.low", "memory.swap.max", "memory.high", "cpu.weight", "cpu.max", "cpu.max.burst",
            "cpu.idle", "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight", "io.max", "hugetlb.2MB.max", "cgroup.procs");
        var attached = new List<DeviceFilterProgram>();
        var m = CgroupManagerFactory.Create("berth/c2", "c2", layout, options: f.Options((dir, p) => { Assert.Equal(f.P(Dir), dir); attached.Add(p); }));
        return (f, m, attached);
    }

    [Fact]
    public void Nests_under_the_callers_cgroup()
    {
        var (f, m, _) = Setup();
        using var _f = f;
        Assert.Equal(f.P(Dir), m.Paths["unified"]);
    }

    [Fact]
    public void Writes_v2_files_with_runc_conversions()
    {
        var (f, m, attached) = Setup();
        using var _f = f;
        m.Apply(new LinuxResources
        {
            Devices = [new() { Allow = false, Access = "rwm" }, new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" }],
            Memory = new() { Limit = 67108864, Swap = 100663296, Reservation = 33554432 },
            Cpu = new() { Shares = 1024, Quota = 50000, Period = 100000, Burst = 1000, Idle = 1, Cpus = "0-1", Mems = "0" },
            Pids = new() { Limit = -1 },
            BlockIO = new()
            {
                Weight = 500,
                WeightDevice = [new() { Major = 8, Minor = 0, Weight = 300 }],
                ThrottleReadBpsDevice = [new() { Major = 8, Minor = 0, Rate = 1048576 }],
                ThrottleWriteIopsDevice = [new() { Major = 8, Minor = 0, Rate = 100 }, new() { Major = 8, Minor = 16, Rate = 7 }],
            },
            HugepageLimits = [new() { PageSize = "2MB", Limit = 2097152 }],
            Unified = new() { ["memory.high"] = "50331648" },
        });
        const string d = "/" + Dir + "/";
        Assert.Equal(new (string, string)[]
        {
            (d + "cpuset.cpus", "0-1"),
            (d + "cpuset.mems", "0"),
            (d + "memory.swap.max", "33554432"), // OCI swap is memory+swap: 96 MiB - 64 MiB
            (d + "memory.max", "67108864"),
            (d + "memory.low", "33554432"),
            (d + "cpu.weight", "39"),            // 1 + (1024-2)*9999/262142
            (d + "cpu.max", "50000 100000"),
            (d + "cpu.max.burst", "1000"),
            (d + "cpu.idle", "1"),
            (d + "pids.max", "max"),
            (d + "io.weight", "4950"),           // 1 + (500-10)*9999/990
            (d + "io.weight", "8:0 2930"),
            (d + "io.max", "8:0 rbps=1048576 wiops=100"),
            (d + "io.max", "8:16 wiops=7"),
            (d + "hugetlb.2MB.max", "2097152"),
            (d + "memory.high", "50331648"),
        }, f.Writes);
        var prog = Assert.Single(attached);
        Assert.False(prog.DefaultAllow);
    }

    [Fact]
    public void Cpu_max_and_swap_edge_cases()
    {
        var (f, m, _) = Setup();
        using var _f = f;
        const string d = "/" + Dir + "/";
        m.Apply(new LinuxResources { Cpu = new() { Quota = -1, Period = 250000 } });
        m.Apply(new LinuxResources { Cpu = new() { Quota = 20000 } });
        m.Apply(new LinuxResources { Memory = new() { Limit = -1 } });
        m.Apply(new LinuxResources { Memory = new() { Limit = 1000, Swap = -1 } });
        Assert.Equal(new (string, string)[]
        {
            (d + "cpu.max", "max 250000"), (d + "cpu.max", "20000"),
            (d + "memory.swap.max", "max"), (d + "memory.max", "max"),
            (d + "memory.swap.max", "max"), (d + "memory.max", "1000"),
        }, f.Writes);
        Assert.Equal(1UL, CgroupManager.SharesToWeight(2));
        Assert.Equal(10000UL, CgroupManager.SharesToWeight(262144));
        Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Memory = new() { Limit = 1000, Swap = 500 } }));
        Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Memory = new() { Swap = 500 } }));
    }

    [Fact]
    public void Refuses_what_v2_cannot_do()
    {
        var (f, m, _) = Setup();
        using var _f = f;
        string Err(LinuxResources r) => Assert.Throws<CgroupException>(() => m.Apply(r)).Message;
        Assert.Equal("cgroup: cannot set unified \"../x\": not a cgroup file name", Err(new() { Unified = new() { ["../x"] = "1" } }));
        Assert.Equal("cgroup: cannot set unified \"a/b\": not a cgroup file name", Err(new() { Unified = new() { ["a/b"] = "1" } }));
        Assert.Equal("cgroup: cannot set unified \"..\": not a cgroup file name", Err(new() { Unified = new() { [".."] = "1" } }));
        Assert.StartsWith("cgroup: cannot set unified \"memory.nonsense\": memory.nonsense does not exist", Err(new() { Unified = new() { ["memory.nonsense"] = "1" } }));
        Assert.Equal("cgroup: cannot set memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer", Err(new() { Memory = new() { DisableOomKiller = true } }));
        Assert.StartsWith("cgroup: cannot set memory.swappiness: memory.swappiness does not exist (not supported on cgroup v2)", Err(new() { Memory = new() { Swappiness = 5 } }));
        Assert.StartsWith("cgroup: cannot set cpu.realtimePeriod", Err(new() { Cpu = new() { RealtimePeriod = 5 } }));
        Assert.StartsWith("cgroup: cannot set blockIO leafWeight", Err(new() { BlockIO = new() { LeafWeight = 5 } }));
        Assert.StartsWith("cgroup: cannot set network.classID", Err(new() { Network = new() { ClassId = 5 } }));
        Assert.Empty(f.Writes);
    }

    [Fact]
    public void Create_enables_controllers_in_parents()
    {
        using var f = new CgroupFixture();
        var layout = f.V2(controllers: "cpu memory pids");
        f.File("cg2/cgroup.subtree_control", "cpu memory pids\n");
        f.File("cg2/user.slice/cgroup.controllers", "cpu memory pids\n");
        f.File("cg2/user.slice/cgroup.subtree_control", "cpu memory\n");
        f.File("cg2/user.slice/session-1.scope/cgroup.controllers", "cpu memory\n");
        f.File("cg2/user.slice/session-1.scope/cgroup.subtree_control", "");
        f.File("cg2/user.slice/session-1.scope/berth/cgroup.controllers", "cpu memory\n");
        f.File("cg2/user.slice/session-1.scope/berth/cgroup.subtree_control", "cpu memory\n");
        var m = CgroupManagerFactory.Create("berth/c3", "c3", layout, options: f.Options());
        m.Create();
        Assert.Equal(new (string, string)[]
        {
            ("/cg2/user.slice/cgroup.subtree_control", "+pids"),
            ("/cg2/user.slice/session-1.scope/cgroup.subtree_control", "+cpu +memory"),
        }, f.Writes);
        Assert.True(Directory.Exists(f.P("cg2/user.slice/session-1.scope/berth/c3")));
        m.Destroy();
        Assert.False(m.Exists());
        m.Destroy(); // idempotent
    }
}
