using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Engine.Containers;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`berth stats` on the real kernel: the figures come from the container's cgroup and its
/// network namespace, computed as the docker CLI computes them.</summary>
public class StatsTests
{
    [Fact]
    public void No_stream_reports_cpu_memory_pids_and_the_memory_limit() => EngineSandbox.Run(s =>
    {
        // A busy loop (cpu), 3 processes (sh + the loop's subshell + sleep), a 64 MiB limit.
        s.RunDetached(["--name", "busy", "--memory", "64m", "--network", "none"], "sh", "-c", "(while true; do :; done) & sleep 1000; wait");
        var idle = s.RunDetached(["--name", "idle"], "sleep", "1000");
        EngineSandbox.WaitUntil(() => s.Ok("top", "busy").Lines.Length >= 4, "busy's processes");
        var r = s.Ok("stats", "--no-stream", "--format", "{{json .}}", "busy", "idle");
        Assert.Equal(2, r.Lines.Length);
        var busy = JsonNode.Parse(r.Lines[0])!.AsObject();
        Assert.Equal("busy", (string)busy["Name"]!);
        Assert.Equal(12, ((string)busy["ID"]!).Length);
        Assert.Equal("3", (string)busy["PIDs"]!);
        var cpu = double.Parse(((string)busy["CPUPerc"]!).TrimEnd('%'), CultureInfo.InvariantCulture);
        Assert.True(cpu > 1, "a busy loop uses cpu: " + r.Stdout);
        Assert.EndsWith(" / 64MiB", (string)busy["MemUsage"]!);
        Assert.Matches(@"^\d+(\.\d+)?(B|KiB|MiB) / 64MiB$", (string)busy["MemUsage"]!);
        Assert.Matches(@"^\d+\.\d\d%$", (string)busy["MemPerc"]!);
        Assert.Equal("0B / 0B", (string)busy["NetIO"]!); // --network none: no interface but lo
        var quiet = JsonNode.Parse(r.Lines[1])!.AsObject();
        Assert.Equal("1", (string)quiet["PIDs"]!);
        Assert.True(double.Parse(((string)quiet["CPUPerc"]!).TrimEnd('%'), CultureInfo.InvariantCulture) < cpu);
        // no limit: the machine's memory, as docker reports it
        var total = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        Assert.EndsWith(" / " + Berth.Images.Units.BytesSize(double.Parse(total, CultureInfo.InvariantCulture) * 1024), (string)quiet["MemUsage"]!);
        Assert.Equal(idle[..12], (string)quiet["ID"]!);
    });

    [Fact]
    public void Table_lists_running_containers_and_all_with_a() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "up", "--network", "none"], "sleep", "1000");
        s.Ok("create", "--name", "down", "--rootfs", s.Rootfs, "true");
        var r = s.Ok("stats", "--no-stream");
        Assert.Equal(2, r.Lines.Length);
        Assert.Matches(@"^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$", r.Lines[0]);
        Assert.Matches(@"^[0-9a-f]{12} +up +\d+\.\d\d% +\S+ / \S+ +\d+\.\d\d% +0B / 0B +\S+ / \S+ +1$", r.Lines[1]);
        var a = s.Ok("stats", "--no-stream", "-a", "--no-trunc", "--format", "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.PIDs}}");
        Assert.Equal(3, a.Lines.Length);
        Assert.Contains(a.Lines, l => l.Contains("down") && l.EndsWith("--") && l.Split(' ')[0].Length == 64);
        var j = s.Ok("stats", "--no-stream", "--format", "json", "up");
        Assert.Equal("up", (string)JsonNode.Parse(j.Stdout)!["Name"]!);
    });

    [Fact]
    public void Block_io_is_what_the_containers_blkio_or_io_cgroup_reports() => EngineSandbox.Run(s =>
    {
        var vol = Path.Combine(s.Dir, "vol");
        Directory.CreateDirectory(vol);
        // O_DIRECT writes; whether the kernel charges them to the cgroup depends on the kernel (v1
        // blkio on this one counts nothing without a throttle rule): berth must show what it reports.
        s.RunDetached(["--name", "w", "-v", vol + ":/data"], "sh", "-c", "dd if=/dev/zero of=/data/f bs=1M count=8 oflag=direct 2>/dev/null; sleep 1000");
        EngineSandbox.WaitUntil(() => File.Exists(Path.Combine(vol, "f")) && new FileInfo(Path.Combine(vol, "f")).Length == 8 << 20, "the write");
        Thread.Sleep(300);
        var pid = (int)s.Inspect("w")["State"]!["Pid"]!;
        double read = 0, write = 0;
        var lines = File.ReadAllLines($"/proc/{pid}/cgroup");
        if (lines.FirstOrDefault(l => l.Split(':')[1].Split(',').Contains("blkio")) is { } v1)
        {
            var dir = "/sys/fs/cgroup/blkio" + v1.Split(':')[2];
            var cfq = Path.Combine(dir, "blkio.io_service_bytes_recursive");
            var text = File.Exists(cfq) ? File.ReadAllText(cfq) : "";
            if (!text.Split('\n').Any(l => l.Split(' ').Length == 3)) text = File.ReadAllText(Path.Combine(dir, "blkio.throttle.io_service_bytes_recursive"));
            foreach (var f in text.Split('\n').Select(l => l.Split(' ')).Where(f => f.Length == 3))
            {
                if (f[1] == "Read") read += double.Parse(f[2]);
                if (f[1] == "Write") write += double.Parse(f[2]);
            }
        }
        else
        {
            var dir = "/sys/fs/cgroup" + lines.Single(l => l.StartsWith("0::")).Split(':')[2];
            foreach (var f in File.ReadAllLines(Path.Combine(dir, "io.stat")).SelectMany(l => l.Split(' ').Skip(1)))
            {
                if (f.StartsWith("rbytes=")) read += double.Parse(f[7..]);
                if (f.StartsWith("wbytes=")) write += double.Parse(f[7..]);
            }
        }
        var r = s.Ok("stats", "--no-stream", "--format", "{{.BlockIO}}", "w");
        Assert.Equal(Berth.Images.Units.HumanSizeWithPrecision(read, 3) + " / " + Berth.Images.Units.HumanSizeWithPrecision(write, 3), r.Stdout.Trim());
    });

    [Fact]
    public void Bad_input_is_one_line() => EngineSandbox.Run(s =>
    {
        EngineSandbox.AssertOneLineError(s.Berth("stats", "--no-stream", "nosuch"), 125, "no such container: nosuch");
        s.RunDetached(["--name", "x"], "sleep", "1000");
        EngineSandbox.AssertOneLineError(s.Berth("stats", "--no-stream", "--format", "{{.Nope}}", "x"), 125, "Nope");
    });

    [Fact]
    public void Sample_has_dockers_json_shape_and_docker_cli_arithmetic()
    {
        var prev = new ContainerStatsSample();
        prev.CpuStats.CpuUsage.TotalUsage = 1_000_000_000;
        prev.CpuStats.SystemCpuUsage = 100_000_000_000;
        var cur = new ContainerStatsSample { Id = new string('a', 64), Name = "/n", PreCpuStats = prev.CpuStats };
        cur.CpuStats.CpuUsage.TotalUsage = 1_500_000_000;
        cur.CpuStats.SystemCpuUsage = 102_000_000_000;
        cur.CpuStats.OnlineCpus = 2;
        cur.MemoryStats.Usage = 10 << 20;
        cur.MemoryStats.Limit = 100 << 20;
        cur.MemoryStats.Stats = new() { ["inactive_file"] = 2 << 20 };
        cur.BlkioStats.IoServiceBytesRecursive = [new() { Major = 8, Op = "read", Value = 1500 }, new() { Major = 8, Op = "Write", Value = 2_000_000 }];
        var row = ContainerStats.Row(cur, running: true);
        Assert.Equal(50.0, row.CpuPercent, 6); // 0.5 s of 2 s system time × 2 cpus
        Assert.Equal(8 << 20, row.Memory);
        var f = ContainerStats.Fields(row, truncate: true);
        Assert.Equal("50.00%", f["CPUPerc"]);
        Assert.Equal("8MiB / 100MiB", f["MemUsage"]);
        Assert.Equal("8.00%", f["MemPerc"]);
        Assert.Equal("1.5kB / 2MB", f["BlockIO"]);
        var json = JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(cur, StatsJsonContext.Default.ContainerStatsSample))!;
        Assert.Equal(1_500_000_000UL, (ulong)json["cpu_stats"]!["cpu_usage"]!["total_usage"]!);
        Assert.Equal(1_000_000_000UL, (ulong)json["precpu_stats"]!["cpu_usage"]!["total_usage"]!);
        Assert.Equal(2u, (uint)json["cpu_stats"]!["online_cpus"]!);
        Assert.Equal("read", (string)json["blkio_stats"]!["io_service_bytes_recursive"]![0]!["op"]!);
        Assert.True(json["blkio_stats"]!.AsObject().ContainsKey("io_queue_recursive"));
        Assert.False(json.AsObject().ContainsKey("networks"));
        // v1: total_inactive_file is subtracted
        cur.MemoryStats.Stats = new() { ["total_inactive_file"] = 4 << 20, ["inactive_file"] = 1 };
        Assert.Equal(6 << 20, ContainerStats.Row(cur, true).Memory);
    }
}
