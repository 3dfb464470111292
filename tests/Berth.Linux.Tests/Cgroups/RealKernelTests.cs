using System.Diagnostics;
using Process = System.Diagnostics.Process;
using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;

namespace Berth.Linux.Tests.Cgroups;

/// <summary>
/// Real cgroups on this machine (root, v1 hierarchies, possibly hybrid). Each test uses a unique
/// top-level name and removes everything it made, even on failure. Only processes started by the
/// test are ever killed.
/// </summary>
public class RealKernelTests
{
    static CgroupLayout? V1Layout()
    {
        if (Environment.UserName != "root" || !File.Exists("/proc/self/cgroup")) return null;
        var layout = CgroupLayout.Discover();
        return layout.For("memory") is { IsUnified: false } && layout.For("freezer") is { IsUnified: false } ? layout : null;
    }

    static string Read(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();

    static void RemoveParents(CgroupLayout layout, string top)
    {
        foreach (var h in layout.Managed)
        {
            string dir = h.DirOf(CgroupPaths.InHierarchy(top, true, h.ProcessPath));
            try { if (Directory.Exists(dir)) Directory.Delete(dir); } catch (IOException) { }
        }
    }

    [Fact]
    public void V1_lifecycle_with_a_real_process()
    {
        var layout = V1Layout();
        if (layout is null) return; // needs root and v1 memory/freezer hierarchies
        string top = "/berth-test-" + Guid.NewGuid().ToString("N")[..8];
        var m = CgroupManagerFactory.Create(top + "/ctr", "ctr", layout);
        Process? p = null;
        try
        {
            m.Create();
            m.Create();
            Assert.True(m.Exists());
            string mem = m.Paths["memory"], cpu = Layout(layout, "cpu"), cpuset = Layout(layout, "cpuset");
            string Layout(CgroupLayout l, string c) => m.Paths[string.Join(',', l.For(c)!.Controllers)];
            // nested under this process's memory cgroup when that is not the root
            string memCg = CgroupPaths.InHierarchy(top + "/ctr", true, layout.For("memory")!.ProcessPath);
            Assert.EndsWith(memCg, mem);

            bool memsw = File.Exists(Path.Combine(mem, "memory.memsw.limit_in_bytes"));
            var resources = new LinuxResources
            {
                Memory = new() { Limit = 64 << 20, Swap = memsw ? 128 << 20 : null, Reservation = 32 << 20 },
                Cpu = new() { Shares = 512, Quota = 50000, Period = 100000, Cpus = "0", Mems = "0" },
                Pids = new() { Limit = 32 },
                Devices =
                [
                    new() { Allow = false, Access = "rwm" },
                    new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" },
                    new() { Allow = true, Type = "c", Major = 1, Minor = 5, Access = "r" },
                ],
            };
            if (layout.For("hugetlb") is { } hh && File.Exists(Path.Combine(m.Paths[hh.IsUnified ? "unified" : "hugetlb"], hh.IsUnified ? "hugetlb.2MB.max" : "hugetlb.2MB.limit_in_bytes")))
                resources.HugepageLimits = [new() { PageSize = "2MB", Limit = 4 << 20 }];
            Assert.Empty(m.Apply(resources));

            Assert.Equal("67108864", Read(mem, "memory.limit_in_bytes"));
            Assert.Equal("33554432", Read(mem, "memory.soft_limit_in_bytes"));
            if (memsw) Assert.Equal("134217728", Read(mem, "memory.memsw.limit_in_bytes"));
            Assert.Equal("512", Read(cpu, "cpu.shares"));
            Assert.Equal("50000", Read(cpu, "cpu.cfs_quota_us"));
            Assert.Equal("100000", Read(cpu, "cpu.cfs_period_us"));
            Assert.Equal("0", Read(cpuset, "cpuset.cpus"));
            Assert.Equal("32", Read(m.Paths["pids"], "pids.max"));
            Assert.Equal("c 1:3 rwm\nc 1:5 r", Read(m.Paths["devices"], "devices.list"));
            if (resources.HugepageLimits is not null && m.Paths.TryGetValue("unified", out var uni))
                Assert.Equal("4194304", Read(uni, "hugetlb.2MB.max"));

            // The shell waits for a line, then execs sleep: the new image's pages are charged to the
            // container's memory cgroup (v1 does not move charges of pages touched before joining).
            p = Process.Start(new ProcessStartInfo("sh", ["-c", "read x; exec sleep 10"]) { UseShellExecute = false, RedirectStandardInput = true })!;
            m.AddProcess(p.Id, includeMemory: false);
            Assert.DoesNotContain(p.Id.ToString(), Read(mem, "cgroup.procs").Split('\n'));
            m.AddProcessToMemory(p.Id);
            Assert.Equal([p.Id], m.GetPids());
            p.StandardInput.WriteLine("go");
            p.StandardInput.Flush();
            for (int i = 0; i < 200 && File.ReadAllText($"/proc/{p.Id}/comm").Trim() != "sleep"; i++) Thread.Sleep(10);
            string procCg = File.ReadAllText($"/proc/{p.Id}/cgroup");
            Assert.Contains($":memory:{memCg}\n", procCg);
            Assert.Contains($":pids:{top}/ctr\n", procCg);

            m.Freeze();
            Assert.Equal("FROZEN", Read(m.Paths["freezer"], "freezer.state"));
            Assert.True(m.IsFrozen());
            m.Thaw();
            Assert.Equal("THAWED", Read(m.Paths["freezer"], "freezer.state"));
            Assert.False(m.IsFrozen());

            var stats = m.GetStats();
            Assert.Equal(1UL, stats.Pids.Current);
            Assert.Equal(32UL, stats.Pids.Limit);
            Assert.Equal(67108864UL, stats.Memory.Usage.Limit);
            Assert.True(stats.Memory.Usage.Usage > 0);
            Assert.NotNull(stats.Memory.Raw);
            string json = CgroupStatsJson.Serialize("ctr", stats);
            Assert.StartsWith("{\"type\":\"stats\",\"id\":\"ctr\",\"data\":{\"cpu\":{\"usage\":{", json);

            // The kernel refuses a limit below the current usage (no swap to push pages to).
            var e = Assert.Throws<CgroupException>(() => m.Apply(new LinuxResources { Memory = new() { Limit = 4096 } }));
            Assert.Equal($"cgroup: writing \"4096\" to {mem}/memory.limit_in_bytes: Device or resource busy", e.Message);
            Assert.Equal(Errno.EBUSY, e.Errno);

            p.Kill();
            p.WaitForExit();
            m.Destroy();
            Assert.False(m.Exists());
            foreach (var dir in m.Paths.Values) Assert.False(Directory.Exists(dir), dir);
            m.Destroy(); // idempotent
        }
        finally
        {
            if (p is { HasExited: false })
            {
                try { m.Thaw(); } catch (CgroupException) { } // a frozen process cannot die
                p.Kill();
                p.WaitForExit();
            }
            try { m.Destroy(); } catch (CgroupException) { }
            RemoveParents(layout, top);
        }
    }

    [Fact]
    public void V2_device_program_loads_attaches_replaces_and_denies()
    {
        if (Environment.UserName != "root" || !File.Exists("/proc/self/cgroup")) return;
        var unified = CgroupLayout.Discover().Hierarchies.FirstOrDefault(h => h.IsUnified);
        if (unified is null || !DeviceFilter.KernelSupportsDeviceFilter()) return; // needs cgroup2 and bpf(2)
        string dir = unified.DirOf("/berth-bpf-" + Guid.NewGuid().ToString("N")[..8]);
        Process? p = null;
        Directory.CreateDirectory(dir);
        try
        {
            var rules = new List<DeviceCgroup>
            {
                new() { Allow = false, Access = "rwm" },
                new() { Allow = true, Type = "c", Major = 1, Minor = 5, Access = "rwm" }, // /dev/zero only
            };
            DeviceFilter.Attach(dir, DeviceFilter.Build(rules));
            Assert.Single(DeviceFilter.AttachedPrograms(dir));
            DeviceFilter.Attach(dir, DeviceFilter.Build(rules)); // re-applying replaces, not stacks
            Assert.Single(DeviceFilter.AttachedPrograms(dir));

            p = Process.Start(new ProcessStartInfo("sh", ["-c", "read x; (echo hi > /dev/null) 2>/dev/zero && echo allowed || echo denied; head -c1 /dev/zero >/dev/zero && echo zero-ok"])
            { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true })!;
            File.WriteAllText(Path.Combine(dir, "cgroup.procs"), p.Id.ToString());
            p.StandardInput.WriteLine("go");
            p.StandardInput.Close();
            string output = p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(10_000));
            Assert.Equal("denied\nzero-ok\n", output);
        }
        finally
        {
            if (p is { HasExited: false }) { p.Kill(); p.WaitForExit(); }
            for (int i = 0; i < 50 && Directory.Exists(dir); i++)
            {
                try { Directory.Delete(dir); } catch (IOException) { Thread.Sleep(20); }
            }
        }
    }
}
