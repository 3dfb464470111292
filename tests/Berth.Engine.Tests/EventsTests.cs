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
        Assert.Equal(["create", "start", "pause", "unpause", "rename", "die", "stop", "destroy"], actions);
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
        Assert.Equal(8, History(s, "label=team=a").Count);
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
}
