using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Berth.DockerApi.Tests;

/// <summary>The HTTP surface directly: versions, errors in docker's shape, bounded bodies, and a
/// service that survives bad requests and clients that leave mid-stream.</summary>
public sealed class ProtocolTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    HttpClient Client() => fx.ApiClient();

    static async Task<(int Status, string Body)> Send(HttpClient c, HttpMethod m, string path, string? body = null)
    {
        using var req = new HttpRequestMessage(m, path);
        if (body is not null) req.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var resp = await c.SendAsync(req);
        return ((int)resp.StatusCode, await resp.Content.ReadAsStringAsync());
    }

    static string Message(string body) => JsonNode.Parse(body)!["message"]!.GetValue<string>();

    [Fact]
    public async Task Ping_and_versions()
    {
        using var c = Client();
        using var resp = await c.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/_ping"));
        Assert.Equal(200, (int)resp.StatusCode);
        Assert.Equal("1.47", resp.Headers.GetValues("API-Version").Single());
        Assert.Equal("linux", resp.Headers.GetValues("Ostype").Single());
        Assert.Equal((200, "OK"), await Send(c, HttpMethod.Get, "/v1.41/_ping"));
        var tooNew = await Send(c, HttpMethod.Get, "/v1.99/version");
        Assert.Equal(400, tooNew.Status);
        Assert.Equal("client version 1.99 is too new. Maximum supported API version is 1.47", Message(tooNew.Body));
        var tooOld = await Send(c, HttpMethod.Get, "/v1.12/version");
        Assert.Equal(400, tooOld.Status);
        Assert.StartsWith("client version 1.12 is too old. Minimum supported API version is 1.24", Message(tooOld.Body));
        var v = JsonNode.Parse((await Send(c, HttpMethod.Get, "/version")).Body)!;
        Assert.Equal("1.47", v["ApiVersion"]!.GetValue<string>());
    }

    [Fact]
    public async Task Errors_in_dockers_shape()
    {
        using var c = Client();
        var nf = await Send(c, HttpMethod.Get, "/v1.47/containers/nosuch/json");
        Assert.Equal(404, nf.Status);
        Assert.Equal("No such container: nosuch", Message(nf.Body));
        var img = await Send(c, HttpMethod.Post, "/v1.47/containers/create", """{"Image":"127.0.0.1:1/none/such"}""");
        Assert.Equal(404, img.Status);
        Assert.Equal("No such image: 127.0.0.1:1/none/such:latest", Message(img.Body));
        var bad = await Send(c, HttpMethod.Post, "/v1.47/containers/create", "{not json");
        Assert.Equal(400, bad.Status);
        Assert.StartsWith("malformed JSON", Message(bad.Body));
        Assert.Equal(404, (await Send(c, HttpMethod.Get, "/v1.47/nothing/here")).Status);
        var filters = await Send(c, HttpMethod.Get, "/v1.47/containers/json?filters=%7Bbad");
        Assert.Equal(400, filters.Status);
        var big = await Send(c, HttpMethod.Post, "/v1.47/containers/create", "{\"Image\":\"" + new string('a', 11 << 20) + "\"}");
        Assert.Equal(413, big.Status);
        // 304 for a stop of a stopped container, 409 for a name in use
        fx.DockerOk("pull", fx.Image);
        var created = await Send(c, HttpMethod.Post, "/v1.47/containers/create?name=proto1", $$"""{"Image":"{{fx.Image}}","Cmd":["true"]}""");
        Assert.Equal(201, created.Status);
        try
        {
            Assert.Equal(304, (await Send(c, HttpMethod.Post, "/v1.47/containers/proto1/stop")).Status);
            var dup = await Send(c, HttpMethod.Post, "/v1.47/containers/create?name=proto1", $$"""{"Image":"{{fx.Image}}","Cmd":["true"]}""");
            Assert.Equal(409, dup.Status);
            Assert.Contains("already in use", Message(dup.Body));
            // POST /containers/ID/update: dockerd's codes (400 for a bad value, 409 against what is set, 404)
            // and body; a stopped container's limits are kept for its start
            var tiny = await Send(c, HttpMethod.Post, "/v1.47/containers/proto1/update", """{"Memory":1024}""");
            Assert.Equal((400, "Minimum memory limit allowed is 6MB"), (tiny.Status, Message(tiny.Body)));
            var noSwap = await Send(c, HttpMethod.Post, "/v1.47/containers/proto1/update", """{"Memory":209715200}""");
            Assert.Equal(409, noSwap.Status);
            Assert.EndsWith("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", Message(noSwap.Body));
            var missing = await Send(c, HttpMethod.Post, "/v1.47/containers/nosuch/update", """{"CpuShares":512}""");
            Assert.Equal((404, "No such container: nosuch"), (missing.Status, Message(missing.Body)));
            // dockerd takes a realtime budget on update into HostConfig (for the next start), unchecked against the period
            var rt = await Send(c, HttpMethod.Post, "/v1.47/containers/proto1/update", """{"CpuRealtimeRuntime":1000}""");
            Assert.Equal(200, rt.Status);
            var rtHc = JsonNode.Parse((await Send(c, HttpMethod.Get, "/v1.47/containers/proto1/json")).Body)!["HostConfig"]!;
            Assert.Equal(1000L, rtHc["CpuRealtimeRuntime"]!.GetValue<long>());
            var ok = await Send(c, HttpMethod.Post, "/v1.47/containers/proto1/update",
                """{"Memory":67108864,"MemorySwap":134217728,"CpuShares":512,"PidsLimit":30,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}""");
            Assert.Equal(200, ok.Status);
            Assert.Empty(JsonNode.Parse(ok.Body)!["Warnings"]!.AsArray());
            var hc = JsonNode.Parse((await Send(c, HttpMethod.Get, "/v1.47/containers/proto1/json")).Body)!["HostConfig"]!;
            Assert.Equal((67108864L, 134217728L, 512L, 30L), (hc["Memory"]!.GetValue<long>(), hc["MemorySwap"]!.GetValue<long>(),
                hc["CpuShares"]!.GetValue<long>(), hc["PidsLimit"]!.GetValue<long>()));
        }
        finally { await Send(c, HttpMethod.Delete, "/v1.47/containers/proto1?force=1"); }
    }

    [Fact]
    public async Task Survives_a_burst_of_bad_requests_and_clients_that_leave()
    {
        var garbage = new[]
        {
            "GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n" + new string('X', 100_000) + "\r\n\r\n",
            "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Ima", "\0\0\0\0\0\0",
        };
        var tasks = Enumerable.Range(0, 200).Select(async i =>
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(fx.Socket));
            await s.SendAsync(Encoding.ASCII.GetBytes(garbage[i % garbage.Length]));
            s.Shutdown(SocketShutdown.Send);
            var buf = new byte[4096];
            try { await s.ReceiveAsync(buf).WaitAsync(TimeSpan.FromSeconds(10)); } catch (Exception e) when (e is SocketException or TimeoutException) { }
        });
        await Task.WhenAll(tasks);
        // a client that leaves in the middle of a followed log stream
        fx.DockerOk("pull", fx.Image);
        fx.DockerOk("run", "-d", "--name", "chatty", fx.Image, "sh", "-c", "while true; do echo line; sleep 0.05; done");
        try
        {
            for (var i = 0; i < 5; i++)
            {
                using var c = Client();
                using var resp = await c.GetAsync("/v1.47/containers/chatty/logs?follow=1&stdout=1", HttpCompletionOption.ResponseHeadersRead);
                var st = await resp.Content.ReadAsStreamAsync();
                await st.ReadAsync(new byte[64]);
            }
        }
        finally { fx.Docker("rm", "-f", "chatty"); }
        Assert.True(fx.ServiceAlive);
        using var ok = Client();
        Assert.Equal((200, "OK"), await Send(ok, HttpMethod.Get, "/_ping"));
    }

    /// <summary>--debug logs each request (method, path, status, milliseconds) on stderr; and the service,
    /// started in a directory with subdirectories, watches none of them (ASP.NET's configuration reload
    /// watched the whole tree under the working directory with inotify).</summary>
    [Fact]
    public async Task Debug_logs_requests_and_the_working_directory_is_not_watched()
    {
        var dir = Directory.CreateTempSubdirectory("berth-dapi-debug-").FullName;
        var sock = Path.Combine(dir, "d.sock");
        for (var i = 0; i < 5; i++) Directory.CreateDirectory(Path.Combine(dir, "tree", $"d{i}", "sub"));
        var psi = new System.Diagnostics.ProcessStartInfo(Berth.Images.Tests.Support.Tools.Berth) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true, WorkingDirectory = dir };
        foreach (var a in new[] { "--root", Path.Combine(dir, "root"), "--runroot", Path.Combine(dir, "run"), "system", "service", "--debug", "--host", "unix://" + sock })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = new StringBuilder();
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (err) err.AppendLine(e.Data); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            using var c = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(sock), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            }) { BaseAddress = new Uri("http://docker") };
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!File.Exists(sock) && DateTime.UtcNow < deadline && !p.HasExited) await Task.Delay(50);
            Assert.Equal((200, "OK"), await Send(c, HttpMethod.Get, "/_ping"));
            Assert.Equal(404, (await Send(c, HttpMethod.Get, "/v1.47/containers/nosuch/json")).Status);
            var inotifyWatches = 0;
            foreach (var fd in Directory.GetFiles($"/proc/{p.Id}/fdinfo"))
            {
                try { inotifyWatches += File.ReadLines(fd).Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal)); }
                catch (IOException) { } // closed meanwhile
            }
            Assert.Equal(0, inotifyWatches);
            deadline = DateTime.UtcNow.AddSeconds(10);
            while (DateTime.UtcNow < deadline && !err.ToString().Contains("/containers/nosuch/json 404")) await Task.Delay(50);
            var log = err.ToString();
            Assert.Matches(@"GET /_ping 200 [0-9]+\.[0-9] ms", log);
            Assert.Matches(@"GET /v1\.47/containers/nosuch/json 404 [0-9]+\.[0-9] ms", log);
        }
        finally
        {
            if (!p.HasExited) { p.Kill(); p.WaitForExit(10_000); }
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_second_service_on_a_live_socket_is_refused()
    {
        var r = Berth.Images.Tests.Support.Tools.Run(Berth.Images.Tests.Support.Tools.Berth,
            ["--root", fx.Root, "--runroot", fx.RunRoot, "system", "service", "--host", "unix://" + fx.Socket]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("another service is listening", r.Stderr);
        var tcp = Berth.Images.Tests.Support.Tools.Run(Berth.Images.Tests.Support.Tools.Berth,
            ["--root", fx.Root, "--runroot", fx.RunRoot, "system", "service", "--host", "tcp://127.0.0.1:2375"]);
        Assert.NotEqual(0, tcp.ExitCode);
        Assert.Contains("without TLS", tcp.Stderr);
    }
}
