using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Api;

/// <summary>The stored bytes with metadata.resourceVersion spliced in (watch events and lists are written this way).</summary>
public class StoredJsonTests
{
    static string Splice(string stored, long rv)
    {
        var bytes = Encoding.UTF8.GetBytes(stored);
        var at = StoredJson.MetadataStart(bytes);
        Assert.True(at >= 0);
        var w = new ArrayBufferWriter<byte>();
        StoredJson.Write(w, bytes, at, rv);
        return Encoding.UTF8.GetString(w.WrittenSpan);
    }

    [Fact]
    public void Puts_the_revision_into_the_top_level_metadata_only()
    {
        var s = Splice("""{"kind":"Pod","spec":{"metadata":{"x":1},"a":[{"metadata":{}}]},"metadata":{"name":"p","labels":{"a":"b"}}}""", 42);
        var o = JsonNode.Parse(s)!.AsObject();
        Assert.Equal("42", o["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal("p", o["metadata"]!["name"]!.GetValue<string>());
        Assert.Null(o["spec"]!["metadata"]!["resourceVersion"]);
        Assert.Equal(1, o["spec"]!["metadata"]!["x"]!.GetValue<int>());
    }

    [Fact]
    public void Empty_metadata_gets_no_trailing_comma()
    {
        Assert.Equal("""{"metadata":{"resourceVersion":"7"}}""", Splice("""{"metadata":{}}""", 7));
        Assert.Equal("""{"metadata":{"resourceVersion":"7"} }""", Splice("""{"metadata":{} }""", 7));
    }

    [Theory]
    [InlineData("""{"kind":"Pod"}""")]
    [InlineData("""{"metadata":null}""")]
    [InlineData("""{"metadata":[1]}""")]
    [InlineData("""[{"metadata":{}}]""")]
    [InlineData("""{"metadata":""")]
    [InlineData("")]
    public void Values_without_a_metadata_object_are_refused(string stored) =>
        Assert.Equal(-1, StoredJson.MetadataStart(Encoding.UTF8.GetBytes(stored)));

    // BindPodAsync's tree path, as it was before the byte path: the reference the bytes must equal
    static string TreeBind(string stored, string node, string now)
    {
        var pod = JsonNode.Parse(stored)!.AsObject();
        pod["spec"]!.AsObject()["nodeName"] = node;
        var status = pod["status"]!.AsObject();
        status["conditions"] = new JsonArray(new JsonObject { ["type"] = "PodScheduled", ["status"] = "True", ["lastProbeTime"] = null, ["lastTransitionTime"] = now });
        return pod.ToJsonString();
    }

    [Theory]
    [InlineData("""{"kind":"Pod","metadata":{"name":"p","uid":"u1"},"spec":{"containers":[{"name":"c"}],"schedulerName":"default-scheduler"},"status":{"phase":"Pending","qosClass":"Burstable"}}""")]
    [InlineData("""{"metadata":{"name":"p","uid":"u1"},"status":{},"spec":{}}""")]
    [InlineData("""{"status":{"phase":"Pending","x":{"conditions":[1]}},"metadata":{"uid":"u1","labels":{"nodeName":"no"}},"spec":{"nodeName":"","a":{"nodeName":"x"}}}""")]
    public void Binding_on_the_stored_bytes_equals_the_tree_path(string stored)
    {
        var now = "2026-11-29T07:30:00Z";
        foreach (var node in new[] { "node-1", "n\"<ö>" })
        {
            var bytes = StoredJson.BindPod(Encoding.UTF8.GetBytes(stored), node, now, out var uid, out var deleting, out var boundTo);
            if (stored.Contains("\"nodeName\":\"\"")) { Assert.Null(bytes); continue; } // an empty nodeName: the tree path decides
            Assert.NotNull(bytes);
            Assert.Equal(TreeBind(stored, node, now), Encoding.UTF8.GetString(bytes));
            Assert.Equal("u1", uid);
            Assert.False(deleting);
            Assert.Null(boundTo);
        }
    }

    [Fact]
    public void Binding_on_the_stored_bytes_reports_what_the_checks_need_or_leaves_it_to_the_tree()
    {
        var b = StoredJson.BindPod("""{"metadata":{"uid":"u","deletionTimestamp":"2026-01-01T00:00:00Z"},"spec":{},"status":{}}"""u8, "n", "t", out var uid, out var deleting, out _);
        Assert.NotNull(b);
        Assert.Equal("u", uid);
        Assert.True(deleting);
        Assert.Null(StoredJson.BindPod("""{"metadata":{"uid":"u"},"spec":{"nodeName":"n0"},"status":{}}"""u8, "n", "t", out _, out _, out var boundTo));
        Assert.Equal("n0", boundTo);
        // an existing condition list (an Unschedulable pod), a missing status, escaped keys, bad JSON: the tree path
        Assert.Null(StoredJson.BindPod("""{"metadata":{},"spec":{},"status":{"conditions":[{"type":"PodScheduled","status":"False"}]}}"""u8, "n", "t", out _, out _, out _));
        Assert.Null(StoredJson.BindPod("""{"metadata":{},"spec":{}}"""u8, "n", "t", out _, out _, out _));
        Assert.Null(StoredJson.BindPod("""{"metadata":{},"sp\u0065c":{},"status":{}}"""u8, "n", "t", out _, out _, out _));
        Assert.Null(StoredJson.BindPod("""{"metadata":{},"spec":{},"status":{"""u8, "n", "t", out _, out _, out _));
        Assert.Null(StoredJson.BindPod("""{"metadata":{},"spec":[],"status":{}}"""u8, "n", "t", out _, out _, out _));
    }
    // what FieldSelector.Matches compares for a path, from the tree
    static string TreeValue(string json, string path) => JsonNode.Parse(json).At(path) switch
    {
        null => "",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<bool>(out var b) => b ? "true" : "false",
        var n => n.ToJsonString(),
    };

    [Theory]
    [InlineData("""{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}],"nodeName":"node-1"},"status":{}}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]},"status":{"phase":"Pending"}}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p"},"spec":{"nodeName":""}}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p"},"spec":{"nodeName":null}}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p"}}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p"},"spec":null}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p"},"spec":"x"}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p"},"spec":[{"nodeName":"n"}]}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p","namespace":"ns"},"spec":{"x":{"nodeName":"no"},"nodeName":"yes"}}""", "spec.nodeName")]
    [InlineData("""{"metadata":{"name":"p\u0041","namespace":"ns"}}""", "metadata.name")]
    [InlineData("""{"metadata":{"n\u0061me":"esc"}}""", "metadata.name")]
    [InlineData("""{"spec":{"hostNetwork":true}}""", "spec.hostNetwork")]
    [InlineData("""{"spec":{"hostNetwork":false}}""", "spec.hostNetwork")]
    public void A_field_read_from_the_stored_bytes_is_what_the_tree_gives(string json, string path)
    {
        Assert.True(StoredJson.TryFieldValue(Encoding.UTF8.GetBytes(json), path.Split('.'), out var v));
        Assert.Equal(TreeValue(json, path), v);
    }

    [Theory]
    [InlineData("""{"spec":{"replicas":3}}""", "spec.replicas")]
    [InlineData("""{"spec":{"nodeName":{"a":1}}}""", "spec.nodeName")]
    [InlineData("""{"spec":{"nodeName":""", "spec.nodeName")]
    [InlineData("""[1]""", "spec.nodeName")]
    public void Numbers_objects_and_malformed_json_are_left_to_the_tree(string json, string path) =>
        Assert.False(StoredJson.TryFieldValue(Encoding.UTF8.GetBytes(json), path.Split('.'), out _));
}
