using System.Formats.Tar;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Berth.DockerApi.Tests;

/// <summary>
/// Docker.DotNet 3.125 on the calls IDEs and tools make: pull with its progress stream, list filters,
/// stats (one sample and a stream), archive get/put, exec over the hijacked multiplexed stream, the
/// events stream with filters, network connect/disconnect with aliases, volume prune, ping and
/// version negotiation.
/// </summary>
public sealed class DockerDotNetMoreTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    DockerClient Client(System.Version? version = null) => new DockerClientConfiguration(new Uri("unix://" + fx.Socket)).CreateClient(version);

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    async Task Pull(DockerClient c)
    {
        var messages = new List<JSONMessage>();
        await c.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = fx.Image[..fx.Image.LastIndexOf(':')], Tag = "v1" },
            null, new SyncProgress<JSONMessage>(messages.Add));
        Assert.NotEmpty(messages);
        Assert.All(messages, m => Assert.Null(m.Error));
        Assert.Matches("^Status: (Downloaded newer image|Image is up to date) for " + System.Text.RegularExpressions.Regex.Escape(fx.Image) + "$", messages[^1].Status);
    }

    async Task<string> Run(DockerClient c, string name, string[] cmd, Dictionary<string, string>? labels = null, string? network = null)
    {
        var created = await c.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = fx.Image, Name = name, Cmd = cmd, Labels = labels,
            HostConfig = new HostConfig { NetworkMode = network },
        });
        await c.Containers.StartContainerAsync(created.ID, new ContainerStartParameters());
        return created.ID;
    }

    static readonly string[] Loop = ["sh", "-c", "trap 'exit 0' TERM; while true; do busybox sleep 0.2; done"];

    async Task RemoveAll(DockerClient c, IEnumerable<string> ids)
    {
        foreach (var id in ids)
            try { await c.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true }); }
            catch (DockerContainerNotFoundException) { }
    }

    [Fact]
    public async Task Pull_progress_list_filters_and_stats()
    {
        using var c = Client();
        await Pull(c);
        // a second pull of the same image says it is up to date
        var again = new List<JSONMessage>();
        await c.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = fx.Image }, null, new SyncProgress<JSONMessage>(again.Add));
        Assert.Equal($"Status: Image is up to date for {fx.Image}", again[^1].Status);
        // a missing image fails the pull with the registry's word
        var missing = $"{fx.Registry.Host}/test/nosuch:v1";
        var errors = new List<JSONMessage>();
        var thrown = await Record.ExceptionAsync(() => c.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = missing }, null, new SyncProgress<JSONMessage>(errors.Add)));
        Assert.True(thrown is DockerApiException || errors.Any(m => m.Error is not null), "the pull of a missing image did not fail");

        var tag = Unique("t");
        var ids = new List<string>();
        try
        {
            ids.Add(await Run(c, tag + "-run", Loop, new() { ["suite"] = tag, ["role"] = "runner" }));
            var exited = await c.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Image = fx.Image, Name = tag + "-done", Cmd = ["busybox", "true"], Labels = new Dictionary<string, string> { ["suite"] = tag, ["role"] = "oneshot" },
            });
            ids.Add(exited.ID);
            await c.Containers.StartContainerAsync(exited.ID, new ContainerStartParameters());
            Assert.Equal(0, (await c.Containers.WaitContainerAsync(exited.ID)).StatusCode);

            async Task<List<string>> Names(bool all, Dictionary<string, IDictionary<string, bool>> filters) =>
                (await c.Containers.ListContainersAsync(new ContainersListParameters { All = all, Filters = filters }))
                    .Select(x => x.Names.Single().TrimStart('/')).Order().ToList();
            static Dictionary<string, IDictionary<string, bool>> F(params (string Key, string Value)[] kv) =>
                kv.GroupBy(x => x.Key).ToDictionary(g => g.Key, g => (IDictionary<string, bool>)g.ToDictionary(x => x.Value, _ => true));

            Assert.Equal([tag + "-run"], await Names(false, F(("label", "suite=" + tag))));
            Assert.Equal([tag + "-done", tag + "-run"], await Names(true, F(("label", "suite=" + tag))));
            Assert.Equal([tag + "-done"], await Names(true, F(("label", "suite=" + tag), ("status", "exited"))));
            Assert.Equal([tag + "-run"], await Names(true, F(("label", "suite=" + tag), ("status", "running"))));
            Assert.Equal([tag + "-done"], await Names(true, F(("label", "role=oneshot"), ("label", "suite=" + tag))));
            Assert.Equal([tag + "-run"], await Names(true, F(("name", tag + "-run"))));
            Assert.Equal([tag + "-done"], await Names(true, F(("id", exited.ID[..12]))));
            Assert.Equal([tag + "-done", tag + "-run"], await Names(true, F(("ancestor", fx.Image), ("label", "suite=" + tag))));
            Assert.Equal([tag + "-done"], await Names(true, F(("exited", "0"), ("label", "suite=" + tag))));
            Assert.Empty(await Names(true, F(("label", "suite=" + tag), ("status", "paused"))));
            var bad = await Assert.ThrowsAsync<DockerApiException>(() => Names(true, F(("nosuchfilter", "x"))));
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);

            // stats: one sample (stream=false), then a stream of samples a second apart
            var one = new List<ContainerStatsResponse>();
            await c.Containers.GetContainerStatsAsync(ids[0], new ContainerStatsParameters { Stream = false }, new SyncProgress<ContainerStatsResponse>(one.Add));
            var s = Assert.Single(one);
            Assert.True(s.MemoryStats.Usage > 0, "memory usage");
            Assert.True(s.PidsStats.Current >= 1, "pids");
            Assert.True(s.CPUStats.CPUUsage.TotalUsage > 0, "cpu usage");
            Assert.Equal("/" + tag + "-run", s.Name);
            var samples = new List<ContainerStatsResponse>();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var stream = c.Containers.GetContainerStatsAsync(ids[0], new ContainerStatsParameters { Stream = true }, new SyncProgress<ContainerStatsResponse>(r =>
            {
                lock (samples) { samples.Add(r); if (samples.Count == 3) cts.Cancel(); }
            }), cts.Token);
            try { await stream; } catch (OperationCanceledException) { } catch (IOException) { }
            Assert.True(samples.Count >= 3, $"{samples.Count} stats samples in 30 s");
            // each sample carries the previous one's CPU counters
            Assert.Equal(samples[1].CPUStats.CPUUsage.TotalUsage, samples[2].PreCPUStats.CPUUsage.TotalUsage);
            Assert.True(samples[2].Read > samples[1].Read);
            // an exited container: one empty sample, as dockerd answers stream=false
            var stopped = new List<ContainerStatsResponse>();
            await c.Containers.GetContainerStatsAsync(exited.ID, new ContainerStatsParameters { Stream = false }, new SyncProgress<ContainerStatsResponse>(stopped.Add));
            Assert.Equal(0UL, Assert.Single(stopped).MemoryStats?.Usage ?? 0UL);
        }
        finally { await RemoveAll(c, ids); }
    }

    [Fact]
    public async Task Archive_get_put_and_exec_with_the_hijacked_multiplexed_stream()
    {
        using var c = Client();
        await Pull(c);
        var id = await Run(c, Unique("arch"), ["sh", "-c", "mkdir -p /data && echo inside > /data/in.txt && " + string.Join(' ', Loop[2])]);
        try
        {
            // GET archive: the stat header and the tar of the path, named by its base name
            GetArchiveFromContainerResponse got = null!;
            for (var i = 0; i < 50; i++)
            {
                try { got = await c.Containers.GetArchiveFromContainerAsync(id, new GetArchiveFromContainerParameters { Path = "/data/in.txt" }, statOnly: false); break; }
                catch (DockerContainerNotFoundException) when (i < 49) { await Task.Delay(100); }
            }
            Assert.Equal("in.txt", got.Stat.Name);
            Assert.Equal(7, got.Stat.Size);
            var tarBytes = new MemoryStream();
            await got.Stream.CopyToAsync(tarBytes);
            tarBytes.Position = 0;
            Assert.True(tarBytes.Length % 512 == 0 && tarBytes.Length >= 1024, $"GET archive: a tar of {tarBytes.Length} bytes");
            using (var reader = new TarReader(tarBytes))
            {
                var entry = reader.GetNextEntry()!;
                Assert.Equal("in.txt", entry.Name);
                Assert.Equal("inside\n", new StreamReader(entry.DataStream!).ReadToEnd());
                Assert.Null(reader.GetNextEntry());
            }
            var statOnly = await c.Containers.GetArchiveFromContainerAsync(id, new GetArchiveFromContainerParameters { Path = "/data" }, statOnly: true);
            Assert.Equal("data", statOnly.Stat.Name);
            Assert.True((statOnly.Stat.Mode & 0x80000000) != 0, $"mode {statOnly.Stat.Mode}: Go's ModeDir bit"); // Go's os.FileMode
            await Assert.ThrowsAnyAsync<DockerApiException>(() => c.Containers.GetArchiveFromContainerAsync(id, new GetArchiveFromContainerParameters { Path = "/no/such" }, false));

            // PUT archive: a tar with a directory, a file with its owner, extracted under /data
            var tar = new MemoryStream();
            using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            {
                w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "put/") { Mode = (UnixFileMode)0x1ed });
                w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "put/file.txt")
                {
                    Mode = (UnixFileMode)0x1a0, Uid = 123, Gid = 45, DataStream = new MemoryStream("put-by-dotnet\n"u8.ToArray()),
                });
            }
            tar.Position = 0;
            await c.Containers.ExtractArchiveToContainerAsync(id, new ContainerPathStatParameters { Path = "/data" }, tar);
            var (stdout, stderr, code) = await Exec(c, id, ["sh", "-c", "cat /data/put/file.txt; busybox stat -c '%u:%g %a' /data/put/file.txt"]);
            Assert.Equal(("put-by-dotnet\n123:45 640\n", "", 0L), (stdout, stderr, code));
            tar.Position = 0;
            await Assert.ThrowsAnyAsync<DockerApiException>(() => c.Containers.ExtractArchiveToContainerAsync(id, new ContainerPathStatParameters { Path = "/no/such/dir" }, tar));

            // exec: stdin in, stdout and stderr apart over the multiplexed stream, the exit code
            var exec = await c.Exec.ExecCreateContainerAsync(id, new ContainerExecCreateParameters
            {
                AttachStdin = true, AttachStdout = true, AttachStderr = true, Env = ["WHO=dotnet"],
                Cmd = ["sh", "-c", "read line; echo \"got $line from $WHO\"; echo to-stderr >&2; exit 5"],
            });
            using (var mux = await c.Exec.StartAndAttachContainerExecAsync(exec.ID, tty: false))
            {
                var input = "hello\n"u8.ToArray();
                await mux.WriteAsync(input, 0, input.Length, default);
                mux.CloseWrite();
                var (o, e) = await mux.ReadOutputToEndAsync(default);
                Assert.Equal("got hello from dotnet\n", o);
                Assert.Equal("to-stderr\n", e);
            }
            var inspect = await c.Exec.InspectContainerExecAsync(exec.ID);
            Assert.False(inspect.Running);
            Assert.Equal(5, inspect.ExitCode);
            Assert.Equal(id, inspect.ContainerID);
            // a large output arrives whole and in order
            var big = await Exec(c, id, ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done"]);
            var lines = big.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(20000, lines.Length);
            Assert.Equal("line-19999", lines[^1]);
            // exec in a missing container: 404
            await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => c.Exec.ExecCreateContainerAsync("nosuch-" + Guid.NewGuid().ToString("N")[..6], new ContainerExecCreateParameters { Cmd = ["busybox", "true"] }));
        }
        finally { await RemoveAll(c, [id]); }
    }

    static async Task<(string Stdout, string Stderr, long Code)> Exec(DockerClient c, string id, string[] cmd)
    {
        var exec = await c.Exec.ExecCreateContainerAsync(id, new ContainerExecCreateParameters { AttachStdout = true, AttachStderr = true, Cmd = cmd });
        using var mux = await c.Exec.StartAndAttachContainerExecAsync(exec.ID, tty: false);
        var (o, e) = await mux.ReadOutputToEndAsync(default);
        return (o, e, (await c.Exec.InspectContainerExecAsync(exec.ID)).ExitCode);
    }

    [Fact]
    public async Task Events_stream_with_filters()
    {
        using var c = Client();
        await Pull(c);
        var tag = Unique("ev");
        var seen = new List<Message>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var events = c.System.MonitorEventsAsync(new ContainerEventsParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["type"] = new Dictionary<string, bool> { ["container"] = true },
                ["label"] = new Dictionary<string, bool> { ["suite=" + tag] = true },
                ["event"] = new Dictionary<string, bool> { ["start"] = true, ["die"] = true, ["destroy"] = true },
            },
        }, new SyncProgress<Message>(m => { lock (seen) { seen.Add(m); if (m.Action == "destroy") cts.Cancel(); } }), cts.Token);
        await Task.Delay(300); // the stream is open before the events happen
        var ids = new List<string>();
        try
        {
            // an unlabelled container's events are filtered out
            ids.Add(await Run(c, tag + "-other", ["busybox", "true"]));
            await c.Containers.WaitContainerAsync(ids[0]);
            var id = await Run(c, tag, ["sh", "-c", "exit 3"], new() { ["suite"] = tag });
            ids.Add(id);
            await c.Containers.WaitContainerAsync(id);
            await c.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters());
            try { await events; } catch (OperationCanceledException) { } catch (IOException) { }
            List<Message> got;
            lock (seen) got = [.. seen];
            Assert.Equal(["start", "die", "destroy"], got.Select(m => m.Action));
            Assert.All(got, m => Assert.Equal(id, m.Actor.ID));
            Assert.All(got, m => Assert.Equal("container", m.Type));
            Assert.All(got, m => Assert.Equal(tag, m.Actor.Attributes["name"]));
            Assert.Equal("3", got[1].Actor.Attributes["exitCode"]);
            Assert.All(got, m => Assert.True(m.TimeNano > 0));
            // since/until: a bounded query replays the past and ends by itself
            var replay = new List<Message>();
            await c.System.MonitorEventsAsync(new ContainerEventsParameters
            {
                Since = (got[0].Time - 1).ToString(), Until = DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString(),
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["container"] = new Dictionary<string, bool> { [id] = true } },
            }, new SyncProgress<Message>(replay.Add), CancellationToken.None);
            Assert.Contains(replay, m => m.Action == "create");
            Assert.Contains(replay, m => m.Action == "destroy");
        }
        finally { await RemoveAll(c, ids); }
    }

    [Fact]
    public async Task Network_connect_with_alias_and_disconnect()
    {
        using var c = Client();
        await Pull(c);
        var tag = Unique("nc");
        var net = await c.Networks.CreateNetworkAsync(new NetworksCreateParameters { Name = tag, Labels = new Dictionary<string, string> { ["suite"] = tag } });
        var ids = new List<string>();
        try
        {
            // the server starts on the default bridge and is connected to the user network with an alias
            var server = await Run(c, tag + "-srv", ["sh", "-c", "mkdir -p /www && echo via-alias > /www/index.html && exec busybox httpd -f -p 8080 -h /www"]);
            ids.Add(server);
            var client = await Run(c, tag + "-cli", Loop, network: tag);
            ids.Add(client);
            await c.Networks.ConnectNetworkAsync(net.ID, new NetworkConnectParameters { Container = server, EndpointConfig = new EndpointSettings { Aliases = ["db-alias"] } });
            var inspect = await c.Containers.InspectContainerAsync(server);
            Assert.True(inspect.NetworkSettings.Networks.ContainsKey(tag), "connected network in inspect");
            Assert.Contains("db-alias", inspect.NetworkSettings.Networks[tag].Aliases ?? []);
            Assert.True(inspect.NetworkSettings.Networks.ContainsKey("bridge"));
            var netInspect = await c.Networks.InspectNetworkAsync(net.ID);
            Assert.Contains(server, netInspect.Containers.Keys);
            Assert.Contains(client, netInspect.Containers.Keys);
            foreach (var name in new[] { "db-alias", tag + "-srv" })
            {
                var r = await Eventually(() => Exec(c, client, ["busybox", "wget", "-qO-", $"http://{name}:8080/index.html"]), x => x.Code == 0);
                Assert.Equal("via-alias\n", r.Stdout);
            }
            // connecting twice is docker's 403 ... or 409; connecting a missing container is a 404
            await Assert.ThrowsAnyAsync<DockerApiException>(() => c.Networks.ConnectNetworkAsync(net.ID, new NetworkConnectParameters { Container = server }));
            await Assert.ThrowsAnyAsync<DockerApiException>(() => c.Networks.ConnectNetworkAsync(net.ID, new NetworkConnectParameters { Container = "nosuch-" + tag }));
            await c.Networks.DisconnectNetworkAsync(net.ID, new NetworkDisconnectParameters { Container = server });
            inspect = await c.Containers.InspectContainerAsync(server);
            Assert.False(inspect.NetworkSettings.Networks.ContainsKey(tag), "disconnected network still in inspect");
            Assert.DoesNotContain(server, (await c.Networks.InspectNetworkAsync(net.ID)).Containers.Keys);
            Assert.NotEqual(0, (await Exec(c, client, ["busybox", "wget", "-T", "2", "-qO-", "http://db-alias:8080/index.html"])).Code);
            // the network cannot go while the client uses it; after force-disconnecting it can
            await Assert.ThrowsAnyAsync<DockerApiException>(() => c.Networks.DeleteNetworkAsync(net.ID));
            await c.Networks.DisconnectNetworkAsync(net.ID, new NetworkDisconnectParameters { Container = client, Force = true });
        }
        finally
        {
            await RemoveAll(c, ids);
            try { await c.Networks.DeleteNetworkAsync(net.ID); } catch (DockerNetworkNotFoundException) { }
        }
        Assert.DoesNotContain(await c.Networks.ListNetworksAsync(), n => n.Name == tag);
    }

    [Fact]
    public async Task Volume_prune_with_label_filters_spares_volumes_in_use()
    {
        using var c = Client();
        await Pull(c);
        var tag = Unique("vp");
        VolumeResponse Create(string name, Dictionary<string, string> labels) =>
            c.Volumes.CreateAsync(new VolumesCreateParameters { Name = name, Labels = labels }).GetAwaiter().GetResult();
        Create(tag + "-a", new() { ["suite"] = tag, ["keep"] = "no" });
        Create(tag + "-b", new() { ["suite"] = tag, ["keep"] = "yes" });
        Create(tag + "-used", new() { ["suite"] = tag, ["keep"] = "no" });
        var other = Create(tag + "-other", new() { ["suite"] = "someone-else" });
        var created = await c.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = fx.Image, Cmd = ["busybox", "true"], HostConfig = new HostConfig { Binds = [tag + "-used:/v"] },
        });
        try
        {
            var pruned = await c.Volumes.PruneAsync(new VolumesPruneParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>>
                {
                    ["label"] = new Dictionary<string, bool> { ["suite=" + tag] = true },
                    ["label!"] = new Dictionary<string, bool> { ["keep=yes"] = true },
                },
            });
            Assert.Equal([tag + "-a"], pruned.VolumesDeleted);
            var left = (await c.Volumes.ListAsync()).Volumes.Select(v => v.Name).ToList();
            Assert.Contains(tag + "-b", left);
            Assert.Contains(tag + "-used", left);
            Assert.Contains(other.Name, left);
            Assert.DoesNotContain(tag + "-a", left);
            await Assert.ThrowsAsync<DockerApiException>(() => c.Volumes.PruneAsync(new VolumesPruneParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["dangling"] = new Dictionary<string, bool> { ["true"] = true } },
            }));
        }
        finally
        {
            await c.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters { Force = true });
            foreach (var v in new[] { "-b", "-used", "-other" }) await c.Volumes.RemoveAsync(tag + v);
        }
    }

    [Fact]
    public async Task Ping_and_version_negotiation()
    {
        using var unversioned = Client();
        await unversioned.System.PingAsync();
        var v = await unversioned.System.GetVersionAsync();
        Assert.Equal("1.47", v.APIVersion);
        Assert.Equal("1.24", v.MinAPIVersion);
        Assert.Equal("linux", v.Os);
        // every version from the minimum up works, as docker's clients pin one
        foreach (var (major, minor) in new[] { (1, 24), (1, 41), (1, 43), (1, 47) })
        {
            using var pinned = Client(new System.Version(major, minor));
            await pinned.System.PingAsync();
            Assert.Equal("1.47", (await pinned.System.GetVersionAsync()).APIVersion);
            Assert.NotNull((await pinned.Containers.ListContainersAsync(new ContainersListParameters { All = true })));
        }
        using var old = Client(new System.Version(1, 12));
        var tooOld = await Assert.ThrowsAsync<DockerApiException>(() => old.System.GetVersionAsync());
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, tooOld.StatusCode);
        Assert.Contains("client version 1.12 is too old. Minimum supported API version is 1.24", tooOld.ResponseBody);
        using var tooNewClient = Client(new System.Version(1, 99));
        var tooNew = await Assert.ThrowsAsync<DockerApiException>(() => tooNewClient.System.GetVersionAsync());
        Assert.Contains("client version 1.99 is too new. Maximum supported API version is 1.47", tooNew.ResponseBody);
        var info = await unversioned.System.GetSystemInfoAsync();
        Assert.Equal("linux", info.OSType);
        Assert.True(info.NCPU > 0);
    }

    static async Task<T> Eventually<T>(Func<Task<T>> f, Func<T, bool> ok)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var r = await f();
            if (ok(r) || DateTime.UtcNow > deadline) return r;
            await Task.Delay(200);
        }
    }

    /// <summary>An IProgress that reports on the caller's thread (Progress&lt;T&gt; posts to the pool, so
    /// reports could arrive after the call returned).</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
