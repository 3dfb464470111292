using System.Text.Json.Nodes;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>The checks the kubectl transcript tests share: exit status and exact output, and polling the server through kubectl.</summary>
public static class KubectlChecks
{
    public static void Ok(BerthServer.Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    /// <summary>Exit status 1 and exactly this on stderr, nothing on stdout.</summary>
    public static void FailsWith(BerthServer.Result r, string stderr)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Equal(stderr, r.Stderr.TrimEnd('\n'));
        Assert.Equal("", r.Stdout);
    }

    public static void Lines(BerthServer.Result r, params string[] expected)
    {
        Ok(r);
        Assert.Equal(expected, r.Stdout.TrimEnd('\n').Split('\n'));
    }

    /// <summary>The value of a `describe` field ("Replicas:   3 desired | …" → "3 desired | …").</summary>
    public static string Field(string describe, string name)
    {
        var m = System.Text.RegularExpressions.Regex.Match(describe, $@"(?m)^{System.Text.RegularExpressions.Regex.Escape(name)}:[ \t]+(.*?)[ \t]*$");
        Assert.True(m.Success, $"no \"{name}:\" in\n{describe}");
        return m.Groups[1].Value;
    }

    public static string[] Rows(string stdout) => stdout.TrimEnd('\n').Split('\n');

    public static List<JsonObject> Live(JsonObject list) => list.Objects("items").Where(p => p.Str("metadata.deletionTimestamp") is null).ToList();

    /// <summary>`kubectl ARGS -o json`, which must succeed.</summary>
    public static async Task<JsonObject> Json(BerthServer s, string args)
    {
        var r = await s.Kubectl(args + " -o json");
        Ok(r);
        return JsonNode.Parse(r.Stdout)!.AsObject();
    }

    /// <summary>Polls `kubectl ARGS -o json` until <paramref name="ok"/> holds.</summary>
    public static async Task<JsonObject> Until(BerthServer s, string args, Func<JsonObject, bool> ok, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonObject? last = null;
        while (DateTime.UtcNow < deadline)
        {
            var r = await s.Kubectl(args + " -o json");
            if (r.ExitCode == 0 && (last = JsonNode.Parse(r.Stdout)!.AsObject()) is { } o && ok(o)) return o;
            await Task.Delay(200);
        }
        throw new TimeoutException($"timed out waiting for {what}; last: {last}");
    }
}
