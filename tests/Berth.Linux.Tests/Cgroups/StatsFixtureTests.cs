using Berth.Linux.Cgroups;

namespace Berth.Linux.Tests.Cgroups;

public class StatsFixtureTests
{
    [Fact]
    public void V1_stats_serialize_exactly_like_runc_events_stats()
    {
        using var f = new CgroupFixture();
        var layout = f.V1();
        const string big = "9223372036854771712";
        f.File("cpuacct/c/cpuacct.usage", "16053194\n");
        f.File("cpuacct/c/cpuacct.usage_percpu", "12000115 4053079 \n");
        f.File("cpuacct/c/cpuacct.usage_all", "cpu user system\n0 0 11765739\n1 0 3870996\n");
        f.File("cpuacct/c/cpuacct.stat", "user 0\nsystem 1\n");
        f.File("cpu/c/cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n");
        f.File("cpuset/c/cpuset.cpus", "0-1\n");
        f.File("cpuset/c/cpuset.mems", "0\n");
        foreach (var z in new[] { "cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page", "memory_spread_slab", "memory_pressure" })
            f.File("cpuset/c/cpuset." + z, "0\n");
        f.File("cpuset/c/cpuset.sched_load_balance", "1\n");
        f.File("cpuset/c/cpuset.sched_relax_domain_level", "-1\n");
        const string mem = "memory/process_api/abc/c/";
        f.File(mem + "memory.stat", "cache 12288\nrss 53248\nactive_anon 4096\n");
        f.File(mem + "memory.usage_in_bytes", "475136\n");
        f.File(mem + "memory.max_usage_in_bytes", "2777088\n");
        f.File(mem + "memory.limit_in_bytes", "99999744\n");
        f.File(mem + "memory.failcnt", "0\n");
        f.File(mem + "memory.memsw.usage_in_bytes", "475136\n");
        f.File(mem + "memory.memsw.max_usage_in_bytes", "2777088\n");
        f.File(mem + "memory.memsw.limit_in_bytes", big + "\n");
        f.File(mem + "memory.memsw.failcnt", "0\n");
        f.File(mem + "memory.kmem.usage_in_bytes", "249856\n");
        f.File(mem + "memory.kmem.max_usage_in_bytes", "610304\n");
        f.File(mem + "memory.kmem.limit_in_bytes", big + "\n");
        f.File(mem + "memory.kmem.failcnt", "0\n");
        f.File(mem + "memory.kmem.tcp.usage_in_bytes", "0\n");
        f.File(mem + "memory.kmem.tcp.max_usage_in_bytes", "0\n");
        f.File(mem + "memory.kmem.tcp.limit_in_bytes", big + "\n");
        f.File(mem + "memory.kmem.tcp.failcnt", "0\n");
        f.File("pids/c/pids.current", "1\n");
        f.File("pids/c/pids.max", "50\n");
        f.File("blkio/c/blkio.throttle.io_service_bytes_recursive", "Total 0\n");
        var m = CgroupManagerFactory.Create("c", "probe1", layout, options: f.Options());
        string json = CgroupStatsJson.Serialize("probe1", m.GetStats());
        // Recorded from runc 1.1.5 on this machine (raw trimmed to three keys).
        const string expected = """{"type":"stats","id":"probe1","data":{"cpu":{"usage":{"total":16053194,"percpu":[12000115,4053079],"percpu_kernel":[11765739,3870996],"percpu_user":[0,0],"kernel":10000000,"user":0},"throttling":{}},"cpuset":{"cpus":[0,1],"cpu_exclusive":0,"mems":[0],"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":1,"sched_relax_domain_level":-1},"memory":{"cache":12288,"usage":{"limit":99999744,"usage":475136,"max":2777088,"failcnt":0},"swap":{"limit":9223372036854771712,"usage":475136,"max":2777088,"failcnt":0},"kernel":{"limit":9223372036854771712,"usage":249856,"max":610304,"failcnt":0},"kernelTCP":{"limit":9223372036854771712,"failcnt":0},"raw":{"active_anon":4096,"cache":12288,"rss":53248}},"pids":{"current":1,"limit":50},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}}""";
        Assert.Equal(expected, json);
    }

    [Fact]
    public void V2_stats_convert_units_and_io_stat()
    {
        using var f = new CgroupFixture();
        var layout = f.V2(callerPath: "/");
        f.File("cg2/c/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30\n");
        f.File("cg2/c/memory.current", "4096\n");
        f.File("cg2/c/memory.max", "max\n");
        f.File("cg2/c/memory.stat", "anon 100\nfile 200\n");
        f.File("cg2/c/memory.events", "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n");
        f.File("cg2/c/pids.current", "2\n");
        f.File("cg2/c/pids.max", "max\n");
        f.File("cg2/c/io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        f.File("cg2/c/hugetlb.2MB.max", "max\n");
        f.File("cg2/c/hugetlb.2MB.current", "2097152\n");
        f.File("cg2/c/hugetlb.2MB.events", "max 1\n");
        var s = CgroupManagerFactory.Create("c", "c", layout, options: f.Options()).GetStats();
        Assert.Equal(1_500_000UL, s.Cpu.Usage.Total);
        Assert.Equal(500_000UL, s.Cpu.Usage.Kernel);
        Assert.Equal(30_000UL, s.Cpu.Throttling.ThrottledTime);
        Assert.Equal(2UL, s.Cpu.Throttling.ThrottledPeriods);
        Assert.Equal(ulong.MaxValue, s.Memory.Usage.Limit);
        Assert.Equal(3UL, s.Memory.Usage.Failcnt);
        Assert.Equal(200UL, s.Memory.Cache);
        Assert.Equal(0UL, s.Pids.Limit);
        Assert.Equal(2UL, s.Pids.Current);
        Assert.Equal(2, s.Blkio.IoServiceBytesRecursive!.Count);
        Assert.Equal("Write", s.Blkio.IoServiceBytesRecursive[1].Op);
        Assert.Equal(20UL, s.Blkio.IoServiceBytesRecursive[1].Value);
        Assert.Equal(2097152UL, s.Hugetlb["2MB"].Usage);
        Assert.Equal(1UL, s.Hugetlb["2MB"].Failcnt);
        Assert.Contains("\"hugetlb\":{\"2MB\":{\"usage\":2097152,\"failcnt\":1}}", CgroupStatsJson.Serialize("c", s));
    }
}
