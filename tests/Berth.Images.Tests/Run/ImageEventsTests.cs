using System.Text.Json.Nodes;
using Berth.Images.Tests.Support;

namespace Berth.Images.Tests.Run;

/// <summary>
/// `berth events` for images (here because this project has the registry fixture): pull, tag, push,
/// save, rmi (untag, delete) and load each write docker's event, with the actor dockerd puts there
/// (the reference for pull/push, the image ID otherwise) and name=… as dockerd fills it in.
/// </summary>
public sealed class ImageEventsTests(RegistryFixture fx) : IClassFixture<RegistryFixture>, IDisposable
{
    readonly BerthCli _berth = new();

    public void Dispose() => _berth.Dispose();

    List<JsonObject> Events(string since, params string[] filters)
    {
        var args = new List<string> { "events", "--since", since, "--until", DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString(), "--format", "{{json .}}" };
        foreach (var f in filters) { args.Add("--filter"); args.Add(f); }
        return _berth.Ok([.. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
    }

    static (string Action, string Id, string Name) Row(JsonObject e) =>
        ((string)e["Action"]!, (string)e["Actor"]!["ID"]!, (string)e["Actor"]!["Attributes"]!["name"]!);

    [Fact]
    public void Pull_tag_push_save_rmi_load_write_dockers_image_events()
    {
        var since = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds().ToString();
        var img = TestImage.Build("image-events", configure: c => c.Labels = new() { ["team"] = "ev" });
        var name = $"{fx.Host}/ev/image:v1";
        Skopeo.PushLayout(img, name);
        _berth.Ok("pull", "-q", "--tls-verify=false", name);
        var id = _berth.Ok("images", "-q", "--no-trunc").Trim();
        Assert.StartsWith("sha256:", id);
        _berth.Ok("tag", name, "ev/local:v2");
        var pushed = $"{fx.Host}/ev/pushed:v3";
        _berth.Ok("push", "-q", "--tls-verify=false", "ev/local:v2", pushed);
        var tar = Path.Combine(Path.GetDirectoryName(_berth.Root)!, "ev.tar");
        _berth.Ok("save", "-o", tar, "ev/local:v2");
        _berth.Ok("rmi", "ev/local:v2");                   // one name of two: untag only
        // the last tag of its repository: it and that repository's digest go (as dockerd); the digest the
        // registry confirmed for the push still names the image, so it stays
        var untagged = _berth.Ok("rmi", name);
        Assert.Contains("Untagged: " + name, untagged);
        Assert.DoesNotContain("Deleted:", untagged);
        var pushedDigest = Assert.Single(JsonNode.Parse(_berth.Ok("image", "inspect", id))![0]!["RepoDigests"]!.AsArray()).ToString();
        Assert.StartsWith($"{fx.Host}/ev/pushed@sha256:", pushedDigest);
        Assert.Contains("Deleted: " + id, _berth.Ok("rmi", pushedDigest)); // the last name: untag + delete
        _berth.Ok("load", "-i", tar);

        var all = Events(since, "type=image");
        Assert.Equal(
        [
            ("pull", name, $"{fx.Host}/ev/image"),
            ("tag", id, "ev/local:v2"),
            ("push", pushed, $"{fx.Host}/ev/pushed"),
            ("save", id, id),
            ("untag", id, id),                              // ev/local:v2
            ("untag", id, id),                              // the pulled tag
            ("untag", id, id),                              // and its repository's digest with it
            ("untag", id, id),                              // the pushed repository's digest
            ("delete", id, id),
            ("load", id, id),
        ], all.Select(Row));
        Assert.All(all, e => Assert.Equal("image", (string)e["Type"]!));
        // docker's legacy fields, and the image's labels on every event but delete (the image is gone)
        Assert.All(all, e => { Assert.Equal((string)e["Action"]!, (string)e["status"]!); Assert.Equal((string)e["Actor"]!["ID"]!, (string)e["id"]!); });
        Assert.All(all.Where(e => (string)e["Action"]! != "delete"), e => Assert.Equal("ev", (string)e["Actor"]!["Attributes"]!["team"]!));
        Assert.Null(all.Single(e => (string)e["Action"]! == "delete")["Actor"]!["Attributes"]!["team"]);

        // filters: event=, image= (by the actor or its name), --until before them: nothing
        Assert.Equal([("tag", id, "ev/local:v2")], Events(since, "type=image", "event=tag").Select(Row));
        Assert.Equal(["tag"], Events(since, "image=ev/local:v2").Select(e => (string)e["Action"]!));
        Assert.Equal(["pull"], Events(since, "image=" + name).Select(e => (string)e["Action"]!));
        Assert.Empty(_berth.Ok("events", "--since", "0", "--until", since, "--filter", "type=image").Trim());
        // the default line: TIME image ACTION ID (name=…, team=ev)
        var line = _berth.Ok("events", "--since", since, "--until", DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString(), "--filter", "event=tag").Trim();
        Assert.Matches($@"^\S+Z image tag {id} \(name=ev/local:v2, team=ev\)$", line);
        // a failed action writes nothing
        _berth.Fails("rmi", "ev/no-such:v1");
        _berth.Fails("tag", "ev/no-such:v1", "ev/x:v1");
        Assert.Equal(10, Events(since, "type=image").Count);
    }
}
