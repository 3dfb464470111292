using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>Refusals: each exits non-zero with one "berth-runc:" line on stderr and leaves nothing behind.</summary>
public class BadInputTests
{
    static void CreateIsRefused(Action<Bundle> spoil, string expected) => Sandbox.Run(s =>
    {
        var id = s.NewId("bad");
        var b = s.NewBundle(id, "exec sleep 1000");
        spoil(b);
        var r = s.Runc("create", "-b", b.Dir, id);
        Sandbox.AssertOneLineError(r, expected);
        s.AssertNothingLeft(id);
        Sandbox.AssertOneLineError(s.Runc("state", id));
    });

    static Action<Bundle> Edit(Action<JsonObject> e) => b => { e(b.Config); b.Save(); };

    [Fact]
    public void Invalid_json() => CreateIsRefused(b => File.WriteAllText(b.ConfigPath, "{ \"ociVersion\": \"1.2.0\", "), "config.json");

    [Fact]
    public void Wrong_type_for_a_field() => CreateIsRefused(Edit(c => c["hostname"] = 5), "hostname");

    [Fact]
    public void Missing_rootfs() => CreateIsRefused(Edit(c => c["root"]!["path"] = "no-such-rootfs"), "no-such-rootfs");

    [Fact]
    public void Namespace_path_that_does_not_exist() =>
        CreateIsRefused(Edit(c => c.SetNamespace("network", "/proc/999999999/ns/net")), "/proc/999999999/ns/net");

    [Fact]
    public void Unknown_mount_type() => CreateIsRefused(Edit(c => c.AddMount("/weird", "nosuchfs", "none")), "nosuchfs");

    [Fact]
    public void Cgroup_value_the_kernel_refuses() => CreateIsRefused(Edit(c => c.Resources()["cpu"] = new JsonObject { ["cpus"] = "99" }), "cpuset");

    [Fact]
    public void Unknown_capability() => CreateIsRefused(Edit(c => c.SetCaps("CAP_CHOWN", "CAP_NOPE")), "CAP_NOPE");

    [Fact]
    public void Seccomp_profile_with_an_unknown_action() =>
        CreateIsRefused(Edit(c => c.Linux()["seccomp"] = new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ALLOW",
            ["syscalls"] = new JsonArray(new JsonObject { ["names"] = new JsonArray("mkdir"), ["action"] = "SCMP_ACT_EXPLODE" }),
        }), "SCMP_ACT_EXPLODE");

    [Fact]
    public void Seccomp_profile_with_an_unknown_operator() =>
        CreateIsRefused(Edit(c => c.Linux()["seccomp"] = new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ALLOW",
            ["syscalls"] = new JsonArray(new JsonObject
            {
                ["names"] = new JsonArray("mkdir"), ["action"] = "SCMP_ACT_ERRNO",
                ["args"] = new JsonArray(new JsonObject { ["index"] = 1, ["value"] = 1, ["op"] = "SCMP_CMP_SOMETIMES" }),
            }),
        }), "SCMP_CMP_SOMETIMES");

    // Init's ops (native/initexec.c) name the mount, path or object that failed.
    [Fact]
    public void Mount_point_under_a_regular_file_names_the_path() => CreateIsRefused(b =>
    {
        File.WriteAllText(Path.Combine(b.Rootfs, "afile"), "x");
        b.Config.AddMount("/afile/sub", "tmpfs", "tmpfs");
        b.Save();
    }, "/afile/sub: Not a directory");

    [Fact]
    public void Mount_that_fails_while_the_runtime_still_makes_the_cgroups_reports_its_own_error() => CreateIsRefused(Edit(c =>
    {
        // First in the list: init gets there before it waits for "cgroups-ready".
        var mounts = (JsonArray)c["mounts"]!;
        mounts.Insert(0, new JsonObject { ["destination"] = "/early", ["type"] = "tmpfs", ["source"] = "tmpfs", ["options"] = ConfigJson.Arr("size=nonsense") });
    }), "mount tmpfs to /early: Invalid argument");

    [Fact]
    public void Bind_source_that_does_not_exist_names_the_mount() =>
        CreateIsRefused(Edit(c => c.AddMount("/data", "bind", "/no/such/source", "rbind")), "/no/such/source");

    [Fact]
    public void Mount_the_kernel_refuses_names_source_and_destination() =>
        CreateIsRefused(Edit(c => c.AddMount("/mnt/t", "tmpfs", "tmpfs", "size=nonsense")), "mount tmpfs to /mnt/t: Invalid argument");

    [Fact]
    public void Sysctl_the_kernel_does_not_have_names_the_file() =>
        CreateIsRefused(Edit(c => c.Linux()["sysctl"] = new JsonObject { ["net.ipv4.no_such_knob"] = "1" }), "open /proc/sys/net/ipv4/no_such_knob: No such file or directory");

    [Fact]
    public void Sysctl_value_the_kernel_refuses_names_value_and_file() =>
        CreateIsRefused(Edit(c => c.Linux()["sysctl"] = new JsonObject { ["net.ipv4.ip_forward"] = "banana" }), "write \"banana\" to /proc/sys/net/ipv4/ip_forward: Invalid argument");

    [Fact]
    public void Rlimit_the_kernel_refuses_names_the_limit() =>
        CreateIsRefused(Edit(c => c.Proc()["rlimits"] = new JsonArray(new JsonObject
        {
            ["type"] = "RLIMIT_NOFILE", ["soft"] = 1024, ["hard"] = 1UL << 40,
        })), "setrlimit RLIMIT_NOFILE soft=1024 hard=1099511627776: Operation not permitted");

    [Fact]
    public void Working_directory_that_is_a_file() => CreateIsRefused(b =>
    {
        File.WriteAllText(Path.Combine(b.Rootfs, "afile"), "x");
        b.Config.Proc()["cwd"] = "/afile";
        b.Save();
    }, "cannot change to working directory /afile: Not a directory");

    [Fact]
    public void Command_that_is_a_directory() => CreateIsRefused(Edit(c => c.SetArgs("/dev")), "exec: \"/dev\": is a directory");

    [Fact]
    public void Command_not_found_in_the_rootfs() => CreateIsRefused(Edit(c => c.SetArgs("no-such-command")), "no-such-command");

    [Theory]
    [InlineData("start")]
    [InlineData("state")]
    [InlineData("kill")]
    [InlineData("delete")]
    [InlineData("exec")]
    [InlineData("pause")]
    public void Unknown_container_id(string verb) => Sandbox.Run(s =>
    {
        var id = s.NewId("ghost");
        string[] args = verb switch { "kill" => ["kill", id, "KILL"], "exec" => ["exec", id, "true"], _ => [verb, id] };
        Sandbox.AssertOneLineError(s.Runc(args), id);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void Errors_are_logged_as_json_lines_for_conmon() => Sandbox.Run(s =>
    {
        // conmon and containerd pass --log FILE --log-format json and read the last error from it.
        var id = s.NewId("log");
        var log = Path.Combine(s.HostDir("logs"), "runtime.log");
        Sandbox.AssertOneLineError(s.Runc("--log", log, "--log-format", "json", "start", id), id);
        var entry = JsonNode.Parse(File.ReadAllLines(log).Last())!.AsObject();
        Assert.Equal("error", (string)entry["level"]!);
        Assert.Contains(id, (string)entry["msg"]!);
        Assert.True(DateTimeOffset.TryParse((string)entry["time"]!, out _));
    });

    [Fact]
    public void Systemd_cgroup_driver_without_systemd_is_refused() => Sandbox.Run(s =>
    {
        if (Directory.Exists("/run/systemd/system")) return; // this host runs systemd: nothing to refuse
        var id = s.NewId("sysd");
        var b = s.NewBundle(id, "true");
        Sandbox.AssertOneLineError(s.Runc("--systemd-cgroup", "create", "-b", b.Dir, id), "systemd");
        s.AssertNothingLeft(id);
    });

    [Theory]
    [InlineData("kill", "--bogus")]
    [InlineData("create")]
    [InlineData("list", "--format", "yaml")]
    [InlineData("--log-format", "xml", "list")]
    public void Bad_flags_and_missing_arguments(params string[] args) => Sandbox.Run(s =>
    {
        var r = s.Runc(args);
        Assert.NotEqual(0, r.ExitCode);
        Assert.StartsWith("berth-runc:", r.Stderr.Trim());
    });

    [Fact]
    public void Duplicate_id_on_create() => Sandbox.Run(s =>
    {
        var id = s.NewId("dup");
        var b = s.NewBundle(id, "exec sleep 1000");
        s.Ok("create", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        Sandbox.AssertOneLineError(s.Runc("create", "-b", b.Dir, id), "already exists");
        var st = s.State(id);
        Assert.Equal("created", (string)st["status"]!);
        Assert.Equal(pid, (int)st["pid"]!);
        Assert.True(Sandbox.IsAlive(pid));
        Assert.True(Directory.Exists(Sandbox.CgroupDir("pids", id)));
    });

    [Fact]
    public void Start_twice() => Sandbox.Run(s =>
    {
        var id = s.NewId("twice");
        var b = s.NewBundle(id, "exec sleep 1000");
        s.Ok("create", "-b", b.Dir, id);
        s.Ok("start", id);
        Sandbox.AssertOneLineError(s.Runc("start", id), "running");
        Assert.Equal("running", s.Status(id));
    });
}
