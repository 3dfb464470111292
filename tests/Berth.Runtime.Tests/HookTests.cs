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

    [Fact]
    public void CreateContainer_and_startContainer_hooks_run_in_init_with_the_state() => Sandbox.Run(s =>
    {
        var id = s.NewId("hooksin");
        var dir = s.HostDir("hooks");
        // Run by init in the container's namespaces: createContainer before pivot_root (the host's
        // paths are still there), startContainer after it (the rootfs' busybox, its /dev/shm).
        JsonObject InContainer(string stage, string file) => new()
        {
            ["path"] = "/bin/sh",
            ["args"] = ConfigJson.Arr("sh", "-c", $"cat > {file}"),
            ["env"] = ConfigJson.Arr("PATH=/usr/bin:/bin"),
        };
        var b = s.NewBundle(id, "exec sleep 1000", c => c["hooks"] = new JsonObject
        {
            ["createContainer"] = new JsonArray(InContainer("createContainer", $"{dir}/createContainer.json")),
            ["startContainer"] = new JsonArray(InContainer("startContainer", "/dev/shm/startContainer.json")),
        });
        s.Ok("create", "-b", b.Dir, id);
        var pid = (int)s.State(id)["pid"]!;
        var st = Read(dir, "createContainer.json");
        Assert.Equal("created", (string)st["status"]!);
        Assert.Equal(pid, (int)st["pid"]!);
        Assert.Equal(id, (string)st["id"]!);
        var started = $"/proc/{pid}/root/dev/shm/startContainer.json";
        Assert.False(File.Exists(started), "startContainer ran before start");
        s.Ok("start", id);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        JsonObject? state = null;
        while (state is null && DateTime.UtcNow < deadline)
        {
            // The hook writes the file while init waits for it: read it once it parses whole.
            try { state = JsonNode.Parse(File.ReadAllText(started))!.AsObject(); }
            catch (Exception e) when (e is IOException or System.Text.Json.JsonException) { Thread.Sleep(20); }
        }
        Assert.NotNull(state);
        Assert.Equal("running", (string)state["status"]!);
        Assert.Equal(pid, (int)state["pid"]!);
        s.Ok("delete", "--force", id);
    });

    [Fact]
    public void A_failing_createContainer_hook_fails_create_and_leaves_nothing() => Sandbox.Run(s =>
    {
        var id = s.NewId("hookcc");
        var b = s.NewBundle(id, "exec sleep 1000", c => c["hooks"] = new JsonObject
        {
            ["createContainer"] = new JsonArray(new JsonObject { ["path"] = "/bin/false" }),
        });
        var r = s.Runc("create", "-b", b.Dir, id);
        Sandbox.AssertOneLineError(r, "createContainer hook /bin/false: exit status 1");
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void A_createContainer_hook_that_cannot_be_started_names_it() => Sandbox.Run(s =>
    {
        var id = s.NewId("hookmiss");
        var b = s.NewBundle(id, "exec sleep 1000", c => c["hooks"] = new JsonObject
        {
            ["createContainer"] = new JsonArray(new JsonObject { ["path"] = "/no/such/hook" }),
        });
        var r = s.Runc("create", "-b", b.Dir, id);
        Sandbox.AssertOneLineError(r, "createContainer hook /no/such/hook: posix_spawn /no/such/hook: No such file or directory");
        s.AssertNothingLeft(id);
    });
}
