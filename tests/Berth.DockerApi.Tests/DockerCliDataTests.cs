using System.Diagnostics;
using System.Formats.Tar;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>The real docker CLI on stats, cp, export, diff, commit, events, system df, save/load and
/// history; the same endpoints' bad input (404/409/400 in docker's shape) over HTTP.</summary>
public sealed class DockerCliDataTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    const string Loop = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

    void Pull() => fx.DockerOk("pull", fx.Image);

    string Temp()
    {
        var d = Path.Combine(fx.Dir, "t-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }

    HttpClient Client() => fx.ApiClient();

    static async Task<(int Status, string Body)> Send(HttpClient c, HttpMethod m, string path, HttpContent? content = null)
    {
        using var req = new HttpRequestMessage(m, path) { Content = content };
        using var resp = await c.SendAsync(req);
        return ((int)resp.StatusCode, await resp.Content.ReadAsStringAsync());
    }

    static string Message(string body) => JsonNode.Parse(body)!["message"]!.GetValue<string>();

    [Fact]
    public async Task Stats_no_stream_and_streaming_frames()
    {
        Pull();
        fx.DockerOk("run", "-d", "--name", "st1", fx.Image, "sh", "-c", Loop);
        try
        {
            var row = fx.DockerOk("stats", "--no-stream", "--format", "{{.Name}}|{{.PIDs}}|{{.MemUsage}}|{{.CPUPerc}}", "st1").Trim();
            var f = row.Split('|');
            Assert.Equal("st1", f[0]);
            Assert.True(int.Parse(f[1]) >= 1, row);
            Assert.Contains(" / ", f[2]);
            Assert.EndsWith("%", f[3]);
            // the CLI's live table: a few redraws, then stopped
            var live = Tools.Run("timeout", ["-s", "KILL", "5", ServiceFixture.DockerCli, "stats", "--format", "{{.Name}} {{.PIDs}}", "st1"], Env());
            Assert.True(live.Stdout.Split("st1").Length - 1 >= 2, live.ToString());
            // the stream itself: a frame a second, each with the previous one's cpu as precpu
            using var c = Client();
            using var resp = await c.GetAsync("/v1.47/containers/st1/stats?stream=1", HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(200, (int)resp.StatusCode);
            using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
            var first = JsonNode.Parse((await reader.ReadLineAsync())!)!;
            var second = JsonNode.Parse((await reader.ReadLineAsync())!)!;
            Assert.Equal("/st1", first["name"]!.GetValue<string>());
            Assert.True(first["cpu_stats"]!["cpu_usage"]!["total_usage"]!.GetValue<ulong>() > 0);
            Assert.Equal(first["cpu_stats"]!["cpu_usage"]!["total_usage"]!.GetValue<ulong>(), second["precpu_stats"]!["cpu_usage"]!["total_usage"]!.GetValue<ulong>());
            Assert.Equal(first["read"]!.GetValue<string>(), second["preread"]!.GetValue<string>());
            // one-shot: at once, no precpu
            var once = await Send(c, HttpMethod.Get, "/v1.47/containers/st1/stats?stream=0&one-shot=1");
            Assert.Equal(200, once.Status);
            Assert.True(JsonNode.Parse(once.Body)!["memory_stats"]!["usage"]!.GetValue<ulong>() > 0);
            var bad = await Send(c, HttpMethod.Get, "/v1.47/containers/st1/stats?stream=1&one-shot=1");
            Assert.Equal(400, bad.Status);
            var missing = await Send(c, HttpMethod.Get, "/v1.47/containers/nosuch/stats?stream=0");
            Assert.Equal(404, missing.Status);
            Assert.Equal("No such container: nosuch", Message(missing.Body));
        }
        finally { fx.Docker("rm", "-f", "st1"); }
        var gone = fx.Docker("stats", "--no-stream", "st1");
        Assert.NotEqual(0, gone.ExitCode);
        Assert.Contains("No such container: st1", gone.Stderr);
    }

    Dictionary<string, string> Env() => new()
    {
        ["DOCKER_HOST"] = "unix://" + fx.Socket, ["HOME"] = fx.Home, ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker"),
    };

    [Fact]
    public async Task Cp_both_ways_files_directories_and_missing_paths()
    {
        Pull();
        fx.DockerOk("run", "-d", "--name", "cp1", fx.Image, "sh", "-c", "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && " + Loop);
        var tmp = Temp();
        try
        {
            Wait(() => fx.Docker("exec", "cp1", "sh", "-c", "test -f /data/sub/b").ExitCode == 0);
            // out of the container: a file, then a directory
            fx.DockerOk("cp", "cp1:/data/a", Path.Combine(tmp, "a.txt"));
            Assert.Equal("one\n", File.ReadAllText(Path.Combine(tmp, "a.txt")));
            fx.DockerOk("cp", "cp1:/data", Path.Combine(tmp, "data"));
            Assert.Equal("two\n", File.ReadAllText(Path.Combine(tmp, "data", "sub", "b")));
            // into it: a file to a new name, a directory into an existing one
            File.WriteAllText(Path.Combine(tmp, "in.txt"), "from host\n");
            Directory.CreateDirectory(Path.Combine(tmp, "indir", "deep"));
            File.WriteAllText(Path.Combine(tmp, "indir", "deep", "c"), "three\n");
            fx.DockerOk("cp", Path.Combine(tmp, "in.txt"), "cp1:/data/renamed.txt");
            fx.DockerOk("cp", Path.Combine(tmp, "indir"), "cp1:/data/");
            Assert.Equal("from host\nthree\n", fx.DockerOk("exec", "cp1", "sh", "-c", "cat /data/renamed.txt /data/indir/deep/c"));
            // a missing path, a missing container
            var missing = fx.Docker("cp", "cp1:/nope", Path.Combine(tmp, "x"));
            Assert.NotEqual(0, missing.ExitCode);
            // docker 20.10 stats the path first (HEAD: no body) and words the 404 itself; docker 28 shows
            // the daemon's message (dockerd's words) from the archive request
            Assert.True(missing.Stderr.Contains("No such container:path: cp1:/nope") || missing.Stderr.Contains("Could not find the file /nope in container cp1"), missing.ToString());
            Assert.False(File.Exists(Path.Combine(tmp, "x")));
            var into = fx.Docker("cp", Path.Combine(tmp, "in.txt"), "cp1:/no/such/dir/");
            Assert.NotEqual(0, into.ExitCode);
            var noContainer = fx.Docker("cp", "nosuch:/etc/passwd", tmp);
            Assert.NotEqual(0, noContainer.ExitCode);
            Assert.Contains("No such container", noContainer.Stderr);

            // the HTTP surface: stat header, 400s, a directory over a file refused
            using var c = Client();
            using (var head = await c.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v1.47/containers/cp1/archive?path=/data")))
            {
                Assert.Equal(200, (int)head.StatusCode);
                var stat = JsonNode.Parse(Convert.FromBase64String(head.Headers.GetValues("X-Docker-Container-Path-Stat").Single()))!;
                Assert.Equal("data", stat["name"]!.GetValue<string>());
                Assert.True((stat["mode"]!.GetValue<uint>() & (1u << 31)) != 0, "a directory's mode has Go's ModeDir");
            }
            using (var head = await c.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v1.47/containers/cp1/archive?path=/nope")))
                Assert.Equal(404, (int)head.StatusCode);
            var nope = await Send(c, HttpMethod.Get, "/v1.47/containers/cp1/archive?path=/nope");
            Assert.Equal(404, nope.Status);
            Assert.Equal("Could not find the file /nope in container cp1", Message(nope.Body));
            Assert.Equal(400, (await Send(c, HttpMethod.Get, "/v1.47/containers/cp1/archive")).Status);
            var garbage = await Send(c, HttpMethod.Put, "/v1.47/containers/cp1/archive?path=/data", new ByteArrayContent(Encoding.ASCII.GetBytes(new string('x', 2000))));
            Assert.Equal(400, garbage.Status);
            var noDir = await Send(c, HttpMethod.Put, "/v1.47/containers/cp1/archive?path=/missing", new ByteArrayContent(TarOf(("f", "x", false))));
            Assert.Equal(404, noDir.Status);
            var clash = await Send(c, HttpMethod.Put, "/v1.47/containers/cp1/archive?path=/data&noOverwriteDirNonDir=1", new ByteArrayContent(TarOf(("sub", "x", false))));
            Assert.Equal(400, clash.Status);
            Assert.Contains("cannot overwrite directory", Message(clash.Body));
            Assert.Equal("", fx.DockerOk("exec", "cp1", "sh", "-c", "test -d /data/sub && test -f /data/sub/b"));
            var notFound = await Send(c, HttpMethod.Put, "/v1.47/containers/nosuch/archive?path=/", new ByteArrayContent(TarOf(("f", "x", false))));
            Assert.Equal(404, notFound.Status);
            Assert.Equal("No such container: nosuch", Message(notFound.Body));
        }
        finally { fx.Docker("rm", "-f", "cp1"); }
    }

    static byte[] TarOf(params (string Name, string Text, bool Dir)[] entries)
    {
        using var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, text, dir) in entries)
            {
                var e = new PaxTarEntry(dir ? TarEntryType.Directory : TarEntryType.RegularFile, name);
                if (!dir) e.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text));
                w.WriteEntry(e);
            }
        }
        return ms.ToArray();
    }

    [Fact]
    public async Task Export_diff_commit_and_history()
    {
        Pull();
        fx.DockerOk("run", "-d", "--name", "ch1", fx.Image, "sh", "-c", "echo new > /added && mkdir /bin/extra; " + Loop);
        var tmp = Temp();
        var repo = "berth-test/committed";
        try
        {
            Wait(() => fx.Docker("exec", "ch1", "sh", "-c", "test -f /added").ExitCode == 0);
            var diff = fx.DockerOk("diff", "ch1");
            Assert.Contains("A /added", diff);
            Assert.Contains("A /bin/extra", diff);
            Assert.Contains("C /bin", diff);
            // export: the container's filesystem as the CLI writes it
            var tar = Path.Combine(tmp, "fs.tar");
            fx.DockerOk("export", "-o", tar, "ch1");
            var names = new List<string>();
            using (var f = File.OpenRead(tar))
            using (var r = new TarReader(f))
                while (r.GetNextEntry() is { } e) names.Add(e.Name);
            Assert.Contains("added", names);
            Assert.Contains("bin/busybox", names);
            // commit with a message, an author and a change; the image runs with them
            var id = fx.DockerOk("commit", "-m", "my change", "-a", "Tester <t@example.com>", "-c", "ENV COMMITTED=yes", "ch1", repo + ":v1").Trim();
            Assert.StartsWith("sha256:", id);
            Assert.Equal("my change|Tester <t@example.com>", fx.DockerOk("image", "inspect", "--format", "{{.Comment}}|{{.Author}}", repo + ":v1").Trim());
            Assert.Equal("new\nyes\n", fx.DockerOk("run", "--rm", repo + ":v1", "sh", "-c", "cat /added; echo $COMMITTED"));
            // history: the commit on top, with its comment and the image ID
            var history = fx.DockerOk("history", "--no-trunc", "--format", "{{.ID}}|{{.Comment}}", repo + ":v1").Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal($"{id}|my change", history[0]);
            var bad = fx.Docker("history", "no-such-image:v9");
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("No such image", bad.Stderr);

            using var c = Client();
            var changes = await Send(c, HttpMethod.Get, "/v1.47/containers/ch1/changes");
            Assert.Equal(200, changes.Status);
            Assert.Contains(JsonNode.Parse(changes.Body)!.AsArray(), n => n!["Path"]!.GetValue<string>() == "/added" && n["Kind"]!.GetValue<int>() == 1);
            Assert.Equal(404, (await Send(c, HttpMethod.Get, "/v1.47/containers/nosuch/changes")).Status);
            Assert.Equal(404, (await Send(c, HttpMethod.Get, "/v1.47/containers/nosuch/export")).Status);
            var noContainer = await Send(c, HttpMethod.Post, "/v1.47/commit?container=nosuch&repo=x");
            Assert.Equal(404, noContainer.Status);
            Assert.Equal("No such container: nosuch", Message(noContainer.Body));
            Assert.Equal(400, (await Send(c, HttpMethod.Post, "/v1.47/commit")).Status);
            Assert.Equal(400, (await Send(c, HttpMethod.Post, "/v1.47/commit?container=ch1&repo=UPPER/Case")).Status);
            Assert.Equal(400, (await Send(c, HttpMethod.Post, "/v1.47/commit?container=ch1&changes=FROM%20x")).Status);
            Assert.Equal(400, (await Send(c, HttpMethod.Post, "/v1.47/commit?container=ch1", new StringContent("{bad", Encoding.UTF8, "application/json"))).Status);
            // a commit body's config applies to the image
            var body = await Send(c, HttpMethod.Post, $"/v1.47/commit?container=ch1&repo={repo}&tag=v2&pause=0",
                new StringContent("""{"Cmd":["sh","-c","echo from body"],"Env":["BODY=1"]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(201, body.Status);
            Assert.Equal("from body\n", fx.DockerOk("run", "--rm", repo + ":v2"));
        }
        finally
        {
            fx.Docker("rm", "-f", "ch1");
            fx.Docker("rmi", repo + ":v1", repo + ":v2");
        }
    }

    [Fact]
    public async Task Events_with_since_until_filters_and_follow()
    {
        Pull();
        var t0 = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds().ToString();
        fx.DockerOk("run", "--name", "ev1", "-l", "evlabel=yes", fx.Image, "sh", "-c", "exit 0");
        fx.DockerOk("rm", "ev1");
        var t1 = DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString();
        var all = fx.DockerOk("events", "--since", t0, "--until", t1, "--filter", "container=ev1", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}");
        foreach (var action in new[] { "create", "start", "die", "destroy" }) Assert.Contains($"container {action} ev1", all);
        var starts = fx.DockerOk("events", "--since", t0, "--until", t1, "--filter", "event=start", "--filter", "label=evlabel=yes", "--format", "{{.Action}} {{.Actor.Attributes.name}}");
        Assert.Equal("start ev1\n", starts);
        Assert.Equal("", fx.DockerOk("events", "--since", t0, "--until", t1, "--filter", "type=volume", "--filter", "container=ev1"));
        var json = fx.DockerOk("events", "--since", t0, "--until", t1, "--filter", "image=" + fx.Image, "--filter", "event=create", "--format", "{{json .}}");
        var ev = JsonNode.Parse(json.Split('\n')[0])!;
        Assert.Equal("container", ev["Type"]!.GetValue<string>());
        Assert.True(ev["timeNano"]!.GetValue<long>() > 0);
        var bad = fx.Docker("events", "--since", t0, "--until", t1, "--filter", "bogus=1");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("invalid filter", bad.Stderr);

        // follow: a `docker events` that runs until stopped sees a container started after it
        var psi = new ProcessStartInfo(ServiceFixture.DockerCli) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "events", "--filter", "event=start", "--format", "{{.Action}} {{.Actor.Attributes.name}}" }) psi.ArgumentList.Add(a);
        foreach (var (k, v) in Env()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        try
        {
            await Task.Delay(500);
            fx.DockerOk("run", "--rm", "--name", "ev2", fx.Image, "sh", "-c", "exit 0");
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal("start ev2", line);
        }
        finally { if (!p.HasExited) { p.Kill(); p.WaitForExit(5000); } }
    }

    [Fact]
    public async Task System_df_and_verbose()
    {
        Pull();
        fx.DockerOk("volume", "create", "dfvol");
        fx.DockerOk("run", "--name", "df1", "-v", "dfvol:/v", fx.Image, "sh", "-c", "head -c 100000 /dev/zero > /v/zeros; head -c 50000 /dev/zero > /written");
        try
        {
            var table = fx.DockerOk("system", "df");
            foreach (var kind in new[] { "Images", "Containers", "Local Volumes", "Build Cache" }) Assert.Contains(kind, table);
            var verbose = fx.DockerOk("system", "df", "-v");
            Assert.Contains("df1", verbose);
            Assert.Contains("dfvol", verbose);
            Assert.Contains(fx.Image[..fx.Image.LastIndexOf(':')], verbose);
            using var c = Client();
            var df = JsonNode.Parse((await Send(c, HttpMethod.Get, "/v1.47/system/df")).Body)!;
            var vol = df["Volumes"]!.AsArray().Single(v => v!["Name"]!.GetValue<string>() == "dfvol")!;
            Assert.Equal(100000, vol["UsageData"]!["Size"]!.GetValue<long>());
            Assert.Equal(1, vol["UsageData"]!["RefCount"]!.GetValue<long>());
            var ctr = df["Containers"]!.AsArray().Single(x => x!["Names"]![0]!.GetValue<string>() == "/df1")!;
            Assert.True(ctr["SizeRw"]!.GetValue<long>() >= 50000);
            Assert.True(df["LayersSize"]!.GetValue<long>() > 0);
            var only = JsonNode.Parse((await Send(c, HttpMethod.Get, "/v1.47/system/df?type=volume")).Body)!;
            Assert.Null(only["Images"]);
            Assert.Equal(400, (await Send(c, HttpMethod.Get, "/v1.47/system/df?type=bogus")).Status);
        }
        finally
        {
            fx.Docker("rm", "-f", "df1");
            fx.Docker("volume", "rm", "dfvol");
        }
    }

    /// <summary>Unix seconds with milliseconds, as `docker events --since/--until` takes them.</summary>
    static string EventStamp(DateTimeOffset t) => (t.ToUnixTimeMilliseconds() / 1000.0).ToString("F3", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Image_events_pull_tag_save_untag_load_delete_as_dockerd_reports_them()
    {
        Pull();
        var t0 = EventStamp(DateTimeOffset.UtcNow);
        fx.DockerOk("pull", fx.Image);
        var id = fx.DockerOk("image", "inspect", "--format", "{{.Id}}", fx.Image).Trim();
        fx.DockerOk("tag", fx.Image, "evtest/img:v1");
        var tar = Path.Combine(fx.Dir, "events.tar");
        fx.DockerOk("save", "-o", tar, "evtest/img:v1");
        fx.DockerOk("rmi", "evtest/img:v1");
        fx.DockerOk("load", "-i", tar);
        fx.DockerOk("rmi", "evtest/img:v1");
        var t1 = EventStamp(DateTimeOffset.UtcNow.AddMilliseconds(500));
        var lines = fx.DockerOk("events", "--since", t0, "--until", t1, "--filter", "type=image",
            "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var repo = fx.Image[..fx.Image.LastIndexOf(':')];
        Assert.Equal(
        [
            $"image pull {fx.Image} {repo}",
            $"image tag {id} evtest/img:v1",
            $"image save {id} {id}",
            $"image untag {id} {id}",
            $"image load {id} {id}",
            $"image untag {id} {id}",
        ], lines);
        // the same journal as `berth events`, and the filters docker's CLI sends
        Assert.Equal($"tag {id}\n", fx.DockerOk("events", "--since", t0, "--until", t1, "--filter", "image=evtest/img:v1", "--format", "{{.Action}} {{.Actor.ID}}"));
        Assert.Contains($"image tag {id}", fx.Berth("events", "--since", t0.Split('.')[0], "--until", DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString(), "--filter", "type=image").Stdout);
        // a tag and an rmi that fail write nothing
        Assert.NotEqual(0, fx.Docker("tag", "evtest/none:v1", "evtest/x:v1").ExitCode);
        Assert.NotEqual(0, fx.Docker("rmi", "evtest/none:v1").ExitCode);
        Assert.Equal(lines.Length, fx.DockerOk("events", "--since", t0, "--until", EventStamp(DateTimeOffset.UtcNow.AddMilliseconds(500)), "--filter", "type=image", "--format", "{{.Action}}")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task Save_load_round_trips_and_garbage_leaves_nothing()
    {
        Pull();
        var tmp = Temp();
        var copy = $"{fx.Registry.Host}/test/saved:v1";
        fx.DockerOk("tag", fx.Image, copy);
        var id = fx.DockerOk("image", "inspect", "--format", "{{.Id}}", copy).Trim();
        // save -o, rmi, load -i
        var file = Path.Combine(tmp, "img.tar");
        fx.DockerOk("save", "-o", file, copy);
        using (var f = File.OpenRead(file))
        using (var r = new TarReader(f))
        {
            var names = new List<string>();
            while (r.GetNextEntry() is { } e) names.Add(e.Name);
            Assert.Contains("manifest.json", names);
        }
        fx.DockerOk("rmi", copy);
        Assert.Contains("Loaded image: " + copy, fx.DockerOk("load", "-i", file));
        Assert.Equal(id, fx.DockerOk("image", "inspect", "--format", "{{.Id}}", copy).Trim());
        // save | load through a pipe
        var env = Env();
        var piped = Tools.Run("bash", ["-c", $"set -o pipefail; {ServiceFixture.DockerCli} save {copy} | {ServiceFixture.DockerCli} load"], env);
        Assert.True(piped.ExitCode == 0, piped.ToString());
        Assert.Contains("Loaded image: " + copy, piped.Stdout);
        Assert.Equal("hi\n", fx.DockerOk("run", "--rm", copy, "sh", "-c", "echo hi"));
        // GET /images/get?names=… holds both names
        using var c = Client();
        using (var resp = await c.GetAsync($"/v1.47/images/get?names={Uri.EscapeDataString(copy)}&names={Uri.EscapeDataString(fx.Image)}"))
        {
            Assert.Equal(200, (int)resp.StatusCode);
            using var r = new TarReader(await resp.Content.ReadAsStreamAsync());
            while (r.GetNextEntry() is { } e)
                if (e.Name == "manifest.json")
                {
                    var m = new StreamReader(e.DataStream!).ReadToEnd();
                    Assert.Contains(copy, m);
                    Assert.Contains(fx.Image, m);
                }
        }
        fx.DockerOk("rmi", copy);
        // garbage and a hostile archive: docker's error message, nothing stored, no staging left
        var before = fx.DockerOk("images", "-q", "--no-trunc");
        var garbage = Path.Combine(tmp, "garbage.tar");
        File.WriteAllBytes(garbage, Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("not a tar at all ", 1000))));
        var g = fx.Docker("load", "-i", garbage);
        Assert.NotEqual(0, g.ExitCode);
        Assert.NotEmpty(g.Stderr.Trim());
        var hostile = Path.Combine(tmp, "hostile.tar");
        File.WriteAllBytes(hostile, TarOf(("manifest.json", """[{"Config":"../../../etc/passwd","RepoTags":["evil:1"],"Layers":["../x.tar"]}]""", false)));
        var h = fx.Docker("load", "-i", hostile);
        Assert.NotEqual(0, h.ExitCode);
        Assert.NotEmpty(h.Stderr.Trim());
        Assert.Equal(before, fx.DockerOk("images", "-q", "--no-trunc"));
        Assert.DoesNotContain("evil", fx.DockerOk("images", "--format", "{{.Repository}}"));
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(fx.Root, "images"), "load-*", SearchOption.AllDirectories));
        // the error is the stream's last message
        var raw = await Send(c, HttpMethod.Post, "/v1.47/images/load?quiet=1", new ByteArrayContent(File.ReadAllBytes(garbage)));
        Assert.Equal(200, raw.Status);
        Assert.NotNull(JsonNode.Parse(raw.Body.Trim().Split('\n')[^1])!["errorDetail"]!["message"]);
        // unknown images
        var nosave = fx.Docker("save", "-o", Path.Combine(tmp, "none.tar"), "no-such-image:v9");
        Assert.NotEqual(0, nosave.ExitCode);
        Assert.Contains("No such image", nosave.Stderr);
        var notFound = await Send(c, HttpMethod.Get, "/v1.47/images/no-such-image:v9/get");
        Assert.Equal(404, notFound.Status);
        Assert.Equal("No such image: no-such-image:v9", Message(notFound.Body));
        Assert.Equal(400, (await Send(c, HttpMethod.Get, "/v1.47/images/get")).Status);
    }

    static void Wait(Func<bool> cond)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!cond()) { if (DateTime.UtcNow > deadline) Assert.Fail("timed out"); Thread.Sleep(50); }
    }
}
