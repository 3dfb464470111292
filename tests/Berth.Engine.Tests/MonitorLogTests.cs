using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>The json-file log as the native monitor (native/monitor.c) writes it: docker's line format,
/// the escapes, UTF-8 decoded as .NET decodes it (each ill-formed subsequence one U+FFFD), lines split
/// across reads joined, a last line without a newline flushed at the exit, 100 ns timestamps.</summary>
public class MonitorLogTests
{
    [Fact]
    public void Log_lines_escape_decode_join_partials_and_carry_stream_and_time() => EngineSandbox.Run(s =>
    {
        s.RunC(["--name", "fmt"], "sh", "-c",
            @"printf 'one\ntw'; sleep 0.3; printf 'o\n'; printf 'a ""q"" \\ \t\001\303\251\r\n'; printf '\377bad\342\202\n' >&2; printf 'partial'");
        var path = (string)s.Inspect("fmt")["LogPath"]!;
        var raw = File.ReadAllText(path);
        Assert.EndsWith("\n", raw);
        var lines = raw.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var entries = lines.Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        string[] Texts(string stream) => entries.Where(e => (string)e["stream"]! == stream).Select(e => (string)e["log"]!).ToArray();
        Assert.Equal(["one\n", "two\n", "a \"q\" \\ \t\u0001é\r\n", "partial"], Texts("stdout"));
        // what .NET's decoder makes of the same bytes (one U+FFFD per maximal ill-formed subpart)
        var expected = Encoding.UTF8.GetString([0xFF, (byte)'b', (byte)'a', (byte)'d', 0xE2, 0x82, (byte)'\n']);
        Assert.Equal([expected], Texts("stderr"));
        Assert.Equal("\uFFFDbad\uFFFD\n", expected);
        // the exact bytes of the escapes (lowercase \u00XX, U+FFFD as UTF-8)
        Assert.Contains("{\"log\":\"a \\\"q\\\" \\\\ \\t\\u0001é\\r\\n\",\"stream\":\"stdout\",\"time\":\"", raw);
        Assert.Contains("{\"log\":\"\uFFFDbad\uFFFD\\n\",\"stream\":\"stderr\",\"time\":\"", raw);
        foreach (var e in entries) Assert.Matches(new Regex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}00Z$"), (string)e["time"]!);
        Assert.All(lines, l => Assert.Matches(new Regex("^\\{\"log\":\".*\",\"stream\":\"std(out|err)\",\"time\":\"[^\"]+\"\\}$"), l));
        // what `logs` makes of it
        Assert.Equal("one\ntwo\na \"q\" \\ \t\u0001é\r\npartial", s.Ok("logs", "fmt").Stdout.TrimEnd('\n'));
    });
}
