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
}
