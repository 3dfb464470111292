using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`berth events`: the daemonless journal, written by the engine's own methods and the
/// monitor (die), read back with docker's filters and formats, and followed live.</summary>
public class EventsTests
{
    static List<JsonObject> History(EngineSandbox s, params string[] filters)
    {
        var args = new List<string> { "events", "--since", "0", "--until", DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString(), "--format", "{{json .}}" };
        foreach (var f in filters) { args.Add("--filter"); args.Add(f); }
        return s.Ok([.. args]).Lines.Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
    }

    [Fact]
    public void Container_lifecycle_events_with_dockers_attributes() => EngineSandbox.Run(s =>
    {
        var id = s.RunDetached(["--name", "ev", "-l", "team=a"], "sh", "-c", "sleep 1000");
        s.Ok("pause", "ev"); s.Ok("unpause", "ev");
        s.Ok("rename", "ev", "ev2");
        s.Ok("stop", "-t", "1", "ev2");
        s.Ok("rm", "ev2");
        var all = History(s);
        var actions = all.Where(e => (string)e["Actor"]!["ID"]! == id).Select(e => (string)e["Action"]!).ToList();
        // as dockerd: the stop's SIGTERM and, its timeout passed, SIGKILL are "kill" events before the "die"
        Assert.Equal(["create", "start", "pause", "unpause", "rename", "kill", "kill", "die", "stop", "destroy"], actions);
        Assert.Equal(["15", "9"], all.Where(e => (string)e["Action"]! == "kill").Select(e => (string)e["Actor"]!["Attributes"]!["signal"]!));
        var die = all.Single(e => (string)e["Action"]! == "die");
        Assert.Equal("container", (string)die["Type"]!);
        Assert.Equal("137", (string)die["Actor"]!["Attributes"]!["exitCode"]!); // sh as pid 1 ignores SIGTERM: killed
        Assert.Equal("a", (string)die["Actor"]!["Attributes"]!["team"]!);
        Assert.Equal("ev2", (string)die["Actor"]!["Attributes"]!["name"]!);
        Assert.Equal("local", (string)die["scope"]!);
        Assert.True((long)die["timeNano"]! / 1_000_000_000 == (long)die["time"]!);
        Assert.Equal("/ev", (string)all.Single(e => (string)e["Action"]! == "rename")["Actor"]!["Attributes"]!["oldName"]!);
        // filters: keys ANDed, values ORed
        Assert.Equal(["die"], History(s, "type=container", "event=die").Select(e => (string)e["Action"]!));
        Assert.Equal(2, History(s, "event=pause", "event=unpause").Count);
        Assert.Empty(History(s, "type=image"));
        Assert.Equal(10, History(s, "label=team=a").Count);
        // templates read docker's Go field names (the JSON's status/id/from/scope/time are Status/ID/From/Scope/Time)
        var until = DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString();
        Assert.Equal($"die {id} container die local", s.Ok("events", "--since", "0", "--until", until, "--filter", "event=die",
            "--format", "{{.Status}} {{.ID}} {{.Type}} {{.Action}} {{.Scope}}").Stdout.Trim());
        // the default format: TIME TYPE ACTION ID (attrs)
        var line = s.Ok("events", "--since", "0", "--until", DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString(), "--filter", "event=create").Lines.Single();
        Assert.Matches($@"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{9}}Z container create {id} \(image=.*, name=ev, team=a\)$", line);
        EngineSandbox.AssertOneLineError(s.Berth("events", "--filter", "bogus=1", "--until", "1"), 125, "invalid filter 'bogus'");
        EngineSandbox.AssertOneLineError(s.Berth("events", "--since", "yesterday"), 125, "invalid timestamp");
    });

    [Fact]
    public void Follows_new_events_and_exits_at_until() => EngineSandbox.Run(s =>
    {
        var until = DateTimeOffset.UtcNow.AddSeconds(6).ToUnixTimeSeconds().ToString();
        var (p, o, _) = s.Start(null, "events", "--filter", "event=start", "--until", until, "--format", "{{.Actor.Attributes.name}} {{.Action}}");
        using (p)
        {
            Thread.Sleep(300);
            s.RunC(["--rm", "--name", "live"], "true");
            EngineSandbox.WaitUntil(() => File.ReadAllText(o).Contains("live start"), "the live event");
            Assert.True(p.WaitForExit(15_000), "events did not end at --until");
            Assert.Equal("live start\n", File.ReadAllText(o));
        }
    });

    [Fact]
    public void Concurrent_appends_from_many_processes_stay_whole_lines() => EngineSandbox.Run(s =>
    {
        var procs = Enumerable.Range(0, 12).Select(i => s.Start(null, "create", "--name", "c" + i, "--rootfs", s.Rootfs, "true")).ToList();
        foreach (var (p, _, _) in procs) { Assert.True(p.WaitForExit(60_000)); Assert.Equal(0, p.ExitCode); p.Dispose(); }
        var lines = File.ReadAllLines(Path.Combine(s.Root, "events", "events.jsonl"));
        Assert.Equal(12, lines.Length);
        foreach (var l in lines) Assert.Equal("create", (string)JsonNode.Parse(l)!["Action"]!);
        Assert.Equal(12, History(s, "event=create").Select(e => (string)e["Actor"]!["Attributes"]!["name"]!).Distinct().Count());
    });

    static List<(string Action, string Id, JsonObject Attrs)> Of(EngineSandbox s, string type) =>
        History(s, "type=" + type).Select(e => ((string)e["Action"]!, (string)e["Actor"]!["ID"]!, e["Actor"]!["Attributes"]!.AsObject())).ToList();

    [Fact]
    public void Volume_network_and_exec_events() => EngineSandbox.Run(s =>
    {
        var since = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds().ToString();
        s.Ok("volume", "create", "data");
        s.Ok("network", "create", "evnet");
        var net = (string)JsonNode.Parse(s.Ok("network", "inspect", "evnet").Stdout)!.AsArray()[0]!["Id"]!;
        var id = s.RunDetached(["--name", "user", "--network", "evnet", "-v", "data:/data"], "sleep", "1000");
        Assert.Equal(3, s.Berth("exec", "user", "sh", "-c", "exit 3").ExitCode);
        s.Ok("stop", "-t", "0", "user");
        s.Ok("rm", "user");
        s.Ok("network", "rm", "evnet");
        s.Ok("volume", "rm", "data");

        var vols = Of(s, "volume").Where(e => e.Id == "data").ToList();
        Assert.Equal(["create", "mount", "unmount", "destroy"], vols.Select(e => e.Action));
        Assert.All(vols, e => Assert.Equal("local", (string)e.Attrs["driver"]!));
        var mount = vols[1].Attrs;
        Assert.Equal(id, (string)mount["container"]!);
        Assert.Equal("/data", (string)mount["destination"]!);
        Assert.Equal("true", (string)mount["read/write"]!);
        Assert.Equal(id, (string)vols[2].Attrs["container"]!);

        var nets = Of(s, "network").Where(e => e.Id == net).ToList();
        Assert.Equal(["create", "connect", "disconnect", "destroy"], nets.Select(e => e.Action));
        Assert.All(nets, e => { Assert.Equal("evnet", (string)e.Attrs["name"]!); Assert.Equal("bridge", (string)e.Attrs["type"]!); });
        Assert.Equal(id, (string)nets[1].Attrs["container"]!);
        Assert.Equal(id, (string)nets[2].Attrs["container"]!);

        // exec: docker's actions carry the command; the actor is the container
        var execs = Of(s, "container").Where(e => e.Action.StartsWith("exec_")).ToList();
        Assert.Equal(["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die"], execs.Select(e => e.Action));
        Assert.All(execs, e => Assert.Equal(id, e.Id));
        Assert.Equal("3", (string)execs[2].Attrs["exitCode"]!);
        Assert.Equal("user", (string)execs[2].Attrs["name"]!);
        var execId = (string)execs[0].Attrs["execID"]!;
        Assert.Equal(64, execId.Length);
        Assert.All(execs, e => Assert.Equal(execId, (string)e.Attrs["execID"]!));
        // --since/--until and type filters select them
        var until = DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString();
        var lines = s.Ok("events", "--since", since, "--until", until, "--filter", "type=volume", "--filter", "type=network", "--format", "{{.Type}} {{.Action}}").Lines;
        Assert.Equal(["network connect", "network create", "volume create", "volume mount"], lines.Take(4).Order(StringComparer.Ordinal));
        Assert.Equal(["volume create", "network create"], lines.Take(2));
        Assert.Empty(s.Ok("events", "--since", "0", "--until", since, "--filter", "type=volume").Lines);
    });
    [Fact]
    public void Import_commit_rmi_and_prune_write_dockers_image_events() => EngineSandbox.Run(s =>
    {
        var since = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds().ToString();
        var tar = Path.Combine(s.Dir, "rootfs.tar");
        using (var f = File.Create(tar)) System.Formats.Tar.TarFile.CreateFromDirectory(s.Rootfs, f, includeBaseDirectory: false);
        var id = s.Ok("import", "-c", "LABEL team=ev", tar, "local/ev:1").Stdout.Trim();
        s.Ok("run", "--name", "src", "local/ev:1", "true");
        var committed = s.Ok("commit", "src", "local/committed").Stdout.Trim();
        s.Ok("rm", "src");
        s.Ok("rmi", "local/committed");
        s.Ok("tag", "local/ev:1", "local/ev:2");
        s.Ok("image", "prune", "-a", "-f");
        var events = Of(s, "image");
        Assert.Equal(
        [
            ("tag", id, "local/ev:1"),          // dockerd tags the imported image, then reports the import by ID
            ("import", id, id),
            ("tag", committed, "local/committed:latest"),
            ("untag", committed, committed),
            ("delete", committed, committed),
            ("tag", id, "local/ev:2"),
            ("untag", id, id),                  // prune -a: both names, then the image
            ("untag", id, id),
            ("delete", id, id),
            ("prune", "", null),
        ], events.Select(e => (e.Action, e.Id, (string?)e.Attrs["name"])));
        // the image's labels ride along while its config is there (not on delete, as in docker)
        Assert.All(events.Where(e => e.Id == id && e.Action != "delete"), e => Assert.Equal("ev", (string)e.Attrs["team"]!));
        Assert.Null(events.Single(e => e.Id == id && e.Action == "delete").Attrs["team"]);
        var prune = History(s, "type=image", "event=prune").Single();
        Assert.True(long.Parse((string)prune["Actor"]!["Attributes"]!["reclaimed"]!) > 0);
        Assert.Empty(s.Ok("events", "--since", "0", "--until", since, "--filter", "type=image").Lines);
    });
}
