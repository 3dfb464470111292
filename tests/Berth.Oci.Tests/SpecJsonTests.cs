using System.Text;
using Berth.Oci.Runtime;

namespace Berth.Oci.Tests;

public sealed class SpecJsonTests
{
    static Spec Parse(string json) => SpecJson.ParseSpec(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void Parses_the_fields_of_a_runtime_spec_config()
    {
        var s = Parse("""
        {"ociVersion":"1.2.0","process":{"terminal":false,"user":{"uid":1,"gid":2,"umask":18,"additionalGids":[3]},
         "args":["sh"],"env":["A=b"],"cwd":"/w","capabilities":{"bounding":["CAP_KILL"]},
         "rlimits":[{"type":"RLIMIT_NOFILE","hard":10,"soft":5}],"noNewPrivileges":true,"oomScoreAdj":7},
         "root":{"path":"rootfs","readonly":true},"hostname":"h","domainname":"d",
         "mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid"]}],
         "hooks":{"poststop":[{"path":"/bin/true","args":["true"],"timeout":3}]},
         "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"}],
          "resources":{"memory":{"limit":1048576,"swap":-1},"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},
                       "pids":{"limit":10},"devices":[{"allow":false,"access":"rwm"}]},
          "cgroupsPath":"/a/b","sysctl":{"net.ipv4.ip_forward":"1"},"maskedPaths":["/proc/kcore"],
          "readonlyPaths":["/proc/sys"],"devices":[{"type":"c","path":"/dev/x","major":1,"minor":3,"fileMode":438}]}}
        """);
        Assert.Equal("1.2.0", s.OciVersion);
        Assert.Equal(1u, s.Process!.User.Uid);
        Assert.Equal([3u], s.Process.User.AdditionalGids!);
        Assert.Equal(18u, s.Process.User.Umask);
        Assert.Equal(7, s.Process.OomScoreAdj);
        Assert.Equal(5ul, s.Process.Rlimits![0].Soft);
        Assert.True(s.Root!.Readonly);
        Assert.Equal("/proc/1/ns/net", s.Linux!.Namespaces![1].Path);
        Assert.Equal(1048576, s.Linux.Resources!.Memory!.Limit);
        Assert.Equal(-1, s.Linux.Resources.Memory.Swap);
        Assert.Equal(512ul, s.Linux.Resources.Cpu!.Shares);
        Assert.Equal(10, s.Linux.Resources.Pids!.Limit);
        Assert.False(s.Linux.Resources.Devices![0].Allow);
        Assert.Equal(3, s.Hooks!.Poststop![0].Timeout);
        Assert.Equal(438u, s.Linux.Devices![0].FileMode);
    }

    [Fact]
    public void Unknown_properties_are_ignored_as_the_spec_requires()
    {
        var s = Parse("""{"ociVersion":"1.2.0","somethingNew":{"x":1},"root":{"path":"r","future":true}}""");
        Assert.Equal("r", s.Root!.Path);
    }

    [Theory]
    [InlineData("{\"ociVersion\": ", "invalid JSON")]
    [InlineData("{\"ociVersion\":\"1.0.0\",\"hostname\":5}", "$.hostname")]
    [InlineData("{\"ociVersion\":\"1.0.0\",\"process\":{\"user\":{\"uid\":-1}}}", "$.process.user.uid")]
    [InlineData("{\"ociVersion\":\"1.0.0\",\"linux\":{\"resources\":{\"memory\":{\"limit\":\"big\"}}}}", "$.linux.resources.memory.limit")]
    [InlineData("null", "document is null")]
    public void Malformed_documents_give_one_line_naming_the_place(string json, string expected)
    {
        var e = Assert.Throws<SpecException>(() => Parse(json));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("config.json:", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void State_serializes_with_the_spec_field_names()
    {
        var json = Encoding.UTF8.GetString(SpecJson.Serialize(new State { Id = "c", Pid = 5, Status = "running", Bundle = "/b" }));
        Assert.Contains("\"ociVersion\": \"1.2.0\"", json);
        Assert.Contains("\"id\": \"c\"", json);
        Assert.Contains("\"pid\": 5", json);
        Assert.Contains("\"status\": \"running\"", json);
        Assert.Contains("\"bundle\": \"/b\"", json);
        Assert.DoesNotContain("annotations", json); // null fields are left out
    }

    [Fact]
    public void Process_json_for_exec_parses_alone()
    {
        var p = SpecJson.ParseProcess("""{"args":["ls"],"cwd":"/","user":{"uid":0,"gid":0},"terminal":true}"""u8);
        Assert.True(p.Terminal);
        Assert.Equal(["ls"], p.Args!);
    }
}
