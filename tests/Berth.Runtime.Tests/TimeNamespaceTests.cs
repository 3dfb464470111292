using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>Time namespaces (nsexec unshares CLONE_NEWTIME and writes linux.timeOffsets before it
/// clones init): what the clocks read inside, exec and a second container joining by path, and the
/// refusals.</summary>
public class TimeNamespaceTests
{
    static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    static JsonObject Offsets(long monotonic, long boottime) => new()
    {
        ["monotonic"] = new JsonObject { ["secs"] = monotonic, ["nanosecs"] = 0 },
        ["boottime"] = new JsonObject { ["secs"] = boottime, ["nanosecs"] = 0 },
    };

    static double HostUptime() => double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Offsets_shift_the_clocks_inside_run_exec_and_a_joining_container() => Sandbox.Run(s =>
    {
        Assert.True(File.Exists("/proc/self/ns/time"), "this kernel has no time namespaces");
        var id = s.NewId("time");
        var b = s.NewBundle(id, "exec sleep 1000", c =>
        {
            c.SetNamespace("time", null);
            c.Linux()["timeOffsets"] = Offsets(1_000_000, 2_000_000);
        });
        s.Ok("run", "-d", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        Assert.NotEqual(new FileInfo("/proc/self/ns/time").LinkTarget, new FileInfo($"/proc/{pid}/ns/time").LinkTarget);
        var before = HostUptime();
        var ex = s.Runc("exec", id, "sh", "-c", "cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
        var after = HostUptime();
        Assert.True(ex.ExitCode == 0, ex.ToString());
        var lines = Lines(ex.Stdout);
        var inside = double.Parse(lines[0], System.Globalization.CultureInfo.InvariantCulture);
        // /proc/uptime is CLOCK_BOOTTIME: shifted by the boottime offset.
        Assert.InRange(inside - 2_000_000, before - 1, after + 1);
        Assert.Equal(["monotonic 1000000 0", "boottime 2000000 0"], lines[1..3].Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))).ToArray());
        Assert.Equal(new FileInfo($"/proc/{pid}/ns/time").LinkTarget, lines[3]);

        // A second container joins that time namespace by path: same clocks, no offsets of its own.
        var id2 = s.NewId("timejoin");
        var b2 = s.NewBundle(id2, "cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time", c => c.SetNamespace("time", $"/proc/{pid}/ns/time"));
        var r2 = s.Runc("run", "-b", b2.Dir, id2);
        Assert.True(r2.ExitCode == 0, r2.ToString());
        var l2 = Lines(r2.Stdout);
        Assert.InRange(double.Parse(l2[0], System.Globalization.CultureInfo.InvariantCulture) - 2_000_000, before - 1, HostUptime() + 1);
        Assert.Equal(new FileInfo($"/proc/{pid}/ns/time").LinkTarget, l2[1]);
        s.Ok("delete", "--force", id);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void Time_namespace_with_a_user_namespace() => Sandbox.Run(s =>
    {
        var id = s.NewId("timeuser");
        var b = s.NewBundle(id, "id -u; cut -d' ' -f1 /proc/uptime", c =>
        {
            c.SetNamespace("time", null);
            c.SetNamespace("user", null);
            c.Linux()["uidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = 0, ["size"] = 65536 });
            c.Linux()["gidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = 0, ["size"] = 65536 });
            c.Linux()["timeOffsets"] = Offsets(0, 5_000_000);
        });
        var before = HostUptime();
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = Lines(r.Stdout);
        Assert.Equal("0", lines[0]);
        Assert.InRange(double.Parse(lines[1], System.Globalization.CultureInfo.InvariantCulture) - 5_000_000, before - 1, HostUptime() + 1);
    });

    static void Refused(Action<JsonObject> spoil, string expected) => Sandbox.Run(s =>
    {
        var id = s.NewId("timebad");
        var b = s.NewBundle(id, "true", spoil);
        Sandbox.AssertOneLineError(s.Runc("create", "-b", b.Dir, id), expected);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void Offsets_without_a_time_namespace() =>
        Refused(c => c.Linux()["timeOffsets"] = Offsets(1, 1), "need a time namespace");

    [Fact]
    public void Offsets_when_joining_by_path() =>
        Refused(c => { c.SetNamespace("time", "/proc/self/ns/time"); c.Linux()["timeOffsets"] = Offsets(1, 1); }, "cannot be set when joining");

    [Fact]
    public void Unknown_clock() =>
        Refused(c => { c.SetNamespace("time", null); c.Linux()["timeOffsets"] = new JsonObject { ["realtime"] = new JsonObject { ["secs"] = 1 } }; }, "unknown clock \"realtime\"");

    [Fact]
    public void Nanoseconds_out_of_range() =>
        Refused(c => { c.SetNamespace("time", null); c.Linux()["timeOffsets"] = new JsonObject { ["monotonic"] = new JsonObject { ["secs"] = 1, ["nanosecs"] = 1_000_000_000 } }; }, "out of range");

    [Fact]
    public void A_time_path_that_is_another_namespace() =>
        Refused(c => c.SetNamespace("time", "/proc/self/ns/uts"), "is a namespace of another type");
}
