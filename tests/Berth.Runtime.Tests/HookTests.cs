using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>OCI hooks: each writes the state JSON it gets on stdin to a numbered file.</summary>
public class HookTests
{
    static JsonObject Recorder(string dir, string stage) => new()
    {
        ["path"] = "/bin/sh",
        ["args"] = ConfigJson.Arr("sh", "-c", $"n=$(ls {dir} | wc -l); cat > {dir}/$n-{stage}.json"),
        ["env"] = ConfigJson.Arr("PATH=/usr/bin:/bin"),
        ["timeout"] = 10,
    };

    static JsonObject Read(string dir, string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, name)))!.AsObject();

    [Fact]
    public void Hooks_run_in_order_with_the_container_state() => Sandbox.Run(s =>
    {
        var id = s.NewId("hooks");
        var dir = s.HostDir("hooks");
        var b = s.NewBundle(id, "exec sleep 1000", c => c["hooks"] = new JsonObject
        {
            ["prestart"] = new JsonArray(Recorder(dir, "prestart")),
            ["createRuntime"] = new JsonArray(Recorder(dir, "createRuntime")),
            ["poststart"] = new JsonArray(Recorder(dir, "poststart")),
            ["poststop"] = new JsonArray(Recorder(dir, "poststop")),
        });
        s.Ok("create", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        Assert.Equal(["0-prestart.json", "1-createRuntime.json"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        s.Ok("start", id);
        Assert.True(File.Exists(Path.Combine(dir, "2-poststart.json")), "poststart did not run by the time start returned");
        s.Ok("delete", "--force", id);
        Assert.Equal(["0-prestart.json", "1-createRuntime.json", "2-poststart.json", "3-poststop.json"],
            Directory.GetFiles(dir).Select(Path.GetFileName).Order());

        foreach (var (file, status) in new[] { ("0-prestart.json", "creating"), ("1-createRuntime.json", "creating"), ("2-poststart.json", "running"), ("3-poststop.json", "stopped") })
        {
            var st = Read(dir, file);
            Assert.Equal(id, (string)st["id"]!);
            Assert.Equal(status, (string)st["status"]!);
            Assert.Equal(b.Dir, (string)st["bundle"]!);
            if (status != "stopped") Assert.Equal(pid, (int)st["pid"]!);
        }
    });

    [Fact]
    public void A_failing_createRuntime_hook_fails_create_and_leaves_nothing() => Sandbox.Run(s =>
    {
        var id = s.NewId("hookfail");
        var dir = s.HostDir("hooks");
        var b = s.NewBundle(id, "exec sleep 1000", c => c["hooks"] = new JsonObject
        {
            ["prestart"] = new JsonArray(Recorder(dir, "prestart")),
            ["createRuntime"] = new JsonArray(new JsonObject { ["path"] = "/bin/false" }),
        });
        var r = s.Runc("create", "-b", b.Dir, id);
        Sandbox.AssertOneLineError(r, "createRuntime");
        s.AssertNothingLeft(id);
        var pid = (int)Read(dir, "0-prestart.json")["pid"]!;
        Assert.True(pid > 0);
        Assert.False(Sandbox.IsAlive(pid), $"init {pid} is still running");
    });
}
