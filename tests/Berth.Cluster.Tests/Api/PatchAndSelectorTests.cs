using System.Text.Json.Nodes;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Api;

public class PatchAndSelectorTests
{
    static JsonObject O(string json) => JsonNode.Parse(json)!.AsObject();

    [Fact]
    public void Strategic_merge_merges_containers_by_name_ports_by_containerPort_env_by_name()
    {
        var live = O("""{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"x:1","ports":[{"containerPort":80},{"containerPort":81}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},{"name":"b","image":"y"}]}}}}""");
        var patch = O("""{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"x:2","ports":[{"containerPort":81,"name":"alt"}],"env":[{"name":"B","$patch":"delete"},{"name":"C","value":"3"}]},{"name":"c","image":"z"}]}}}}""");
        var r = StrategicMerge.Apply(live, patch);
        var cs = r.At("spec.template.spec.containers")!.AsArray();
        Assert.Equal(["a", "b", "c"], cs.Select(c => c!.Str("name")));
        Assert.Equal("x:2", cs[0].Str("image"));
        Assert.Equal(2, cs[0].Arr("ports").Count);
        Assert.Equal("alt", cs[0]!["ports"]![1].Str("name"));
        Assert.Equal(["A", "C"], cs[0].Arr("env").Select(e => e.Str("name")));
    }

    [Fact]
    public void Strategic_merge_directives_replace_retainKeys_order_and_primitive_deletes()
    {
        var live = O("""{"metadata":{"finalizers":["a","b"],"labels":{"x":"1","y":"2"}},"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},"containers":[{"name":"a"},{"name":"b"}],"args":["1","2"]}}""");
        var patch = O("""{"metadata":{"finalizers":["c"],"$deleteFromPrimitiveList/finalizers":["a"],"labels":{"$patch":"replace","z":"3"}},"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"},"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"args":["3"]}}""");
        var r = StrategicMerge.Apply(live, patch);
        Assert.Equal(["b", "c"], r.Arr("metadata.finalizers").Select(f => f!.GetValue<string>()));
        Assert.Equal("""{"z":"3"}""", r.At("metadata.labels")!.ToJsonString());
        Assert.Equal("""{"type":"Recreate"}""", r.At("spec.strategy")!.ToJsonString());
        Assert.Equal(["b", "a"], r.Arr("spec.containers").Select(c => c.Str("name")));
        Assert.Equal(["3"], r.Arr("spec.args").Select(f => f!.GetValue<string>()));
    }

    [Fact]
    public void Json_patch_and_merge_patch_follow_their_rfcs()
    {
        var doc = O("""{"a":{"b":[1,2,3]},"c":"x"}""");
        var r = JsonPatch.Apply(doc, JsonNode.Parse("""[{"op":"add","path":"/a/b/1","value":9},{"op":"remove","path":"/c"},{"op":"replace","path":"/a/b/0","value":0},{"op":"copy","from":"/a/b","path":"/d"},{"op":"test","path":"/d/1","value":9}]""")!.AsArray());
        Assert.Equal("""{"a":{"b":[0,9,2,3]},"d":[0,9,2,3]}""", r!.ToJsonString());
        var bad = Assert.Throws<ApiException>(() => JsonPatch.Apply(O("{}"), JsonNode.Parse("""[{"op":"remove","path":"/nope"}]""")!.AsArray()));
        Assert.Equal(400, bad.Code);
        var m = MergePatch.Apply(O("""{"a":{"b":1,"c":2},"l":[1,2]}"""), O("""{"a":{"b":null,"d":3},"l":[3]}"""));
        Assert.Equal("""{"a":{"c":2,"d":3},"l":[3]}""", m!.ToJsonString());
    }

    [Theory]
    [InlineData("app=web", true)]
    [InlineData("app==web,tier!=back", true)]
    [InlineData("app in (web, api)", true)]
    [InlineData("app notin (web)", false)]
    [InlineData("tier", true)]
    [InlineData("!tier", false)]
    [InlineData("!missing,app", true)]
    [InlineData("n>3", true)]
    [InlineData("n<3", false)]
    public void Label_selectors_equality_and_set_based(string selector, bool expected)
    {
        var labels = O("""{"app":"web","tier":"front","n":"5"}""");
        Assert.Equal(expected, LabelSelector.Parse(selector).Matches(labels));
    }

    [Theory]
    [InlineData("app in web")]
    [InlineData("a b")]
    [InlineData("-bad-=x")]
    [InlineData("n>x")]
    public void Malformed_selectors_are_bad_requests(string selector)
    {
        var e = Assert.Throws<ApiException>(() => LabelSelector.Parse(selector));
        Assert.Equal(400, e.Code);
    }

    [Fact]
    public void Names_and_labels_are_checked_with_kubernetes_messages()
    {
        Assert.Null(Validation.CheckDns1123Subdomain("web.example-1"));
        Assert.Contains("RFC 1123 subdomain", Validation.CheckDns1123Subdomain("Web_1"));
        Assert.Contains("RFC 1123 label", Validation.CheckDns1123Label("a.b"));
        Assert.Contains("DNS-1035", Validation.CheckDns1035Label("1abc"));
        Assert.Null(Validation.CheckLabelValue(""));
        Assert.NotNull(Validation.CheckLabelValue("-x"));
        Assert.Null(Validation.CheckQualifiedName("example.com/name"));
        Assert.NotNull(Validation.CheckQualifiedName("Bad_Prefix/name"));
        Assert.Equal("4m5s", Json.HumanDuration(TimeSpan.FromSeconds(245)));
        Assert.Equal("3h10m", Json.HumanDuration(TimeSpan.FromMinutes(190)));
    }
}
