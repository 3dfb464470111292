using System.Text.Json.Nodes;
using Berth.Engine.Formatting;

namespace Berth.Engine.Tests;

/// <summary>The one Go-template renderer behind every `--format`: the forms docker users write.</summary>
public class GoTemplateTests
{
    static readonly JsonNode Doc = JsonNode.Parse("""
        {"Name":"/web","State":{"Status":"running","Running":true,"Pid":42,"Health":null},
         "Config":{"Env":["A=1","PATH=/bin"],"Labels":{"com.example.tier":"front","b":"2"},"Cmd":["sleep","1"],"Entrypoint":[]},
         "NetworkSettings":{"Networks":{"bridge":{"IPAddress":"10.88.0.2"},"app":{"IPAddress":"10.89.0.5"}}},
         "Mounts":[{"Source":"/v","Destination":"/data"}],"Size":1.5}
        """)!;

    static string Run(string template, JsonNode? data = null) => GoTemplate.Parse(template, missingKeyIsError: true).Execute(data ?? Doc);

    [Theory]
    [InlineData("{{.State.Status}}", "running")]
    [InlineData("{{.State.Pid}} {{.State.Running}} {{.Size}}", "42 true 1.5")]
    [InlineData("{{.Config.Env}}", "[A=1 PATH=/bin]")]
    [InlineData("{{.Config.Labels}}", "map[b:2 com.example.tier:front]")]
    [InlineData("{{.State.Health}}", "<nil>")]
    [InlineData("{{json .Config.Cmd}}", "[\"sleep\",\"1\"]")]
    [InlineData("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.89.0.5 10.88.0.2 ")]
    [InlineData("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}};{{end}}", "app=10.89.0.5;bridge=10.88.0.2;")]
    [InlineData("{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}", "A=1,PATH=/bin")]
    [InlineData("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none")]
    [InlineData("{{index .Config.Labels \"com.example.tier\"}}", "front")]
    [InlineData("{{index .Config.Env 1}}", "PATH=/bin")]
    [InlineData("{{join .Config.Cmd \" \"}}|{{len .Config.Env}}", "sleep 1|2")]
    [InlineData("{{if eq .State.Status \"running\"}}up{{else if eq .State.Status \"exited\"}}down{{else}}?{{end}}", "up")]
    [InlineData("{{if and .State.Running (gt .State.Pid 1)}}yes{{end}}", "yes")]
    [InlineData("{{if not .State.Health}}no health{{end}}", "no health")]
    [InlineData("{{with .Mounts}}{{(index . 0).Destination}}{{end}}", "/data")]
    [InlineData("{{$n := .Name}}{{$n}}", "/web")]
    [InlineData("{{.Name | printf \"%-6s|\"}}", "/web  |")]
    [InlineData("{{printf \"%s has %d\" .Name .State.Pid}}", "/web has 42")]
    [InlineData("{{upper .State.Status}} {{title \"hello world\"}} {{lower \"AB\"}}", "RUNNING Hello World ab")]
    [InlineData("{{truncate .State.Status 3}}{{pad \"x\" 1 2}}|", "run x  |")]
    [InlineData("{{split \"a:b:c\" \":\"}}", "[a b c]")]
    [InlineData("a  {{- .State.Pid -}}  b", "a42b")]
    [InlineData("{{/* a comment */}}x", "x")]
    [InlineData("{{range .Config.Env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}", "PATH=/bin")]
    [InlineData("{{range .Config.Env}}{{.}}{{break}}{{end}}", "A=1")]
    [InlineData("{{println \"a\" 1}}", "a 1\n")]
    [InlineData("{{print \"a\" \"b\" 1 2}}", "ab1 2")]
    [InlineData("{{`raw \\n`}}", "raw \\n")]
    [InlineData("{{slice .State.Status 1 3}}", "un")]
    public void Renders_as_go_does(string template, string expected) => Assert.Equal(expected, Run(template));

    [Theory]
    [InlineData("{{.State.Nope}}", "can't evaluate field Nope")]
    [InlineData("{{.State.Health.Status}}", "nil pointer")]
    [InlineData("{{.Name", "unclosed action")]
    [InlineData("{{if .Name}}x", "missing {{end}}")]
    [InlineData("{{end}}", "unexpected {{end}}")]
    [InlineData("{{nosuch .Name}}", "function \"nosuch\" not defined")]
    [InlineData("{{$x}}", "undefined variable: $x")]
    [InlineData("{{.Name.Foo}}", "can't evaluate field Foo in a string")]
    [InlineData("{{\"unterminated}}", "unterminated quoted string")]
    [InlineData("{{index .Config.Env 5}}", "index out of range")]
    public void Bad_templates_fail_with_a_message(string template, string message)
    {
        var e = Assert.Throws<TemplateException>(() => Run(template));
        Assert.StartsWith("template: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Tables_take_headers_from_the_template_and_align_as_docker_does()
    {
        var rows = new List<JsonObject> { new() { ["ID"] = "abc", ["Names"] = "web" }, new() { ["ID"] = "defghijklmnop", ["Names"] = "db" } };
        Func<string, string> header = f => f == "ID" ? "CONTAINER ID" : f.ToUpperInvariant();
        Assert.Equal(
            "CONTAINER ID    NAMES\nabc             web\ndefghijklmnop   db\n",
            TemplateOutput.Rows(rows, "table {{.ID}}\\t{{.Names}}", "", header));
        // docker's minimum column width (10) for short columns
        Assert.Equal("NAMES     CONTAINER ID\nweb       abc\ndb        defghijklmnop\n", TemplateOutput.Rows(rows, "table {{.Names}}\t{{.ID}}", "", header));
        Assert.Equal("abc:web\ndefghijklmnop:db\n", TemplateOutput.Rows(rows, "{{.ID}}:{{.Names}}", "", header));
        Assert.Equal("{\"ID\":\"abc\",\"Names\":\"web\"}\n{\"ID\":\"defghijklmnop\",\"Names\":\"db\"}\n", TemplateOutput.Rows(rows, "json", "", header));
        Assert.Equal("NAMES\nweb\ndb\n", TemplateOutput.Rows(rows, "table", "{{.Names}}", header));
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(1_000_000_000L, "1s")]
    [InlineData(90_000_000_000L, "1m30s")]
    [InlineData(3_600_000_000_000L, "1h0m0s")]
    [InlineData(1_500_000_000L, "1.5s")]
    [InlineData(500_000_000L, "500ms")]
    [InlineData(1_500L, "1.5µs")]
    [InlineData(7L, "7ns")]
    [InlineData(-2_000_000_000L, "-2s")]
    public void Durations_print_as_go_does(long ns, string expected) => Assert.Equal(expected, new GoDuration(ns).ToString());

    [Fact]
    public void Inspect_healthcheck_durations_print_as_durations_and_stay_numbers_in_json()
    {
        var doc = JsonNode.Parse("""{"Config":{"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000,"Timeout":1500000000,"StartPeriod":0,"Retries":3}}}""")!;
        Assert.Equal("30s 1.5s 0s 3", TemplateOutput.Document(doc, "{{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Timeout}} {{.Config.Healthcheck.StartPeriod}} {{.Config.Healthcheck.Retries}}"));
        Assert.Equal("""{"Test":["CMD","true"],"Interval":30000000000,"Timeout":1500000000,"StartPeriod":0,"Retries":3}""", TemplateOutput.Document(doc, "{{json .Config.Healthcheck}}"));
        Assert.Equal("true", TemplateOutput.Document(doc, "{{gt .Config.Healthcheck.Interval 1}}"));
    }
}
