using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cluster.Api;
using Berth.Cluster.Security;
using Berth.Cluster.Storage.Sqlite;

namespace Berth.Cluster.Tests.Api;

/// <summary>An in-process API server over a temporary SQLite store, and an authenticated HTTPS client.</summary>
public sealed class ApiFixture : IAsyncLifetime
{
    readonly string dir = Directory.CreateTempSubdirectory("berth-api-").FullName;
    public SqliteStore Store = null!;
    ApiServer server = null!;
    public ApiServer Server => server;
    public HttpClient Client = null!;
    public HttpClient Anonymous = null!;
    public Uri Base = null!;

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async Task InitializeAsync()
    {
        var port = FreePort();
        var creds = Pki.Ensure(dir, "127.0.0.1", port);
        Store = SqliteStore.Open(Path.Combine(dir, "state.db"));
        server = ApiServer.Create(Store, creds, new IPEndPoint(IPAddress.Loopback, port), new ApiLimits { MaxWatches = 50 });
        await server.BootstrapAsync(default);
        await server.StartAsync(default);
        Base = new Uri($"https://127.0.0.1:{port}");
        HttpClient Make(bool auth)
        {
            var h = new HttpClientHandler
            {
                ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert is not null && cert.Issuer == creds.Ca.Subject,
            };
            var c = new HttpClient(h) { BaseAddress = Base, Timeout = TimeSpan.FromSeconds(30) };
            if (auth) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", creds.AdminToken);
            return c;
        }
        Client = Make(true);
        Anonymous = Make(false);
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        Anonymous.Dispose();
        await server.DisposeAsync();
        await Store.DisposeAsync();
        Directory.Delete(dir, true);
    }
}

public class ApiServerTests(ApiFixture f) : IClassFixture<ApiFixture>
{
    static StringContent Body(string json, string type = "application/json") => new(json, Encoding.UTF8, type);

    async Task<(HttpStatusCode Code, JsonObject Body)> Send(HttpMethod method, string path, string? json = null, string type = "application/json", string? accept = null)
    {
        using var req = new HttpRequestMessage(method, path);
        if (json is not null) req.Content = new StringContent(json, Encoding.UTF8);
        if (json is not null) req.Content!.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        if (accept is not null) req.Headers.TryAddWithoutValidation("Accept", accept);
        using var resp = await f.Client.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        return (resp.StatusCode, text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!.AsObject());
    }

    [Fact]
    public async Task Anonymous_requests_get_a_401_status()
    {
        var resp = await f.Anonymous.GetAsync("/api/v1/namespaces");
        Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
        var s = JsonNode.Parse(await resp.Content.ReadAsStringAsync())!;
        Assert.Equal("Status", s.Str("kind"));
        Assert.Equal("Unauthorized", s.Str("reason"));
    }

    [Fact]
    public async Task Aggregated_discovery_lists_every_group_and_subresource()
    {
        var (code, apis) = await Send(HttpMethod.Get, "/apis", accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("APIGroupDiscoveryList", apis.Str("kind"));
        var groups = apis.Objects("items").Select(i => i.Str("metadata.name")).ToList();
        Assert.Equal(["apps", "batch", "discovery.k8s.io", "networking.k8s.io", "policy", "coordination.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "rbac.authorization.k8s.io"], groups);
        // namespaces have no deletecollection (kube's namespace storage has none): not listed, and refused with 405
        var (_, coreV1) = await Send(HttpMethod.Get, "/api/v1");
        Assert.DoesNotContain("deletecollection", coreV1.Objects("resources").Single(r => r.Str("name") == "namespaces").Arr("verbs").Select(v => v!.GetValue<string>()));
        var (deleteAll, refused) = await Send(HttpMethod.Delete, "/api/v1/namespaces?dryRun=All");
        Assert.Equal((HttpStatusCode.MethodNotAllowed, "MethodNotAllowed"), (deleteAll, refused.Str("reason")));
        var deploy = apis.Objects("items").First().Objects("versions").First().Objects("resources").First(r => r.Str("resource") == "deployments");
        Assert.Contains(deploy.Objects("subresources"), s => s.Str("subresource") == "scale" && s.Str("responseKind.kind") == "Scale");
        var (_, core) = await Send(HttpMethod.Get, "/api", accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
        Assert.Contains(core.Objects("items").Single().Objects("versions").Single().Objects("resources"), r => r.Str("resource") == "pods");
        var (_, legacy) = await Send(HttpMethod.Get, "/api/v1");
        Assert.Contains(legacy.Objects("resources"), r => r.Str("name") == "pods/binding");
    }

    [Fact]
    public async Task Create_get_update_with_optimistic_concurrency()
    {
        var (code, cm) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", """{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"cfg-"},"data":{"a":"1"}}""");
        Assert.Equal(HttpStatusCode.Created, code);
        var name = cm.Str("metadata.name")!;
        Assert.StartsWith("cfg-", name);
        Assert.Equal(9, name.Length);
        Assert.NotNull(cm.Str("metadata.uid"));
        Assert.NotNull(cm.Str("metadata.creationTimestamp"));
        var rv = cm.Str("metadata.resourceVersion")!;
        cm["data"]!["a"] = "2";
        var (c2, updated) = await Send(HttpMethod.Put, $"/api/v1/namespaces/default/configmaps/{name}", cm.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, c2);
        Assert.NotEqual(rv, updated.Str("metadata.resourceVersion"));
        cm.Meta()["resourceVersion"] = rv;
        var (c3, conflict) = await Send(HttpMethod.Put, $"/api/v1/namespaces/default/configmaps/{name}", cm.ToJsonString());
        Assert.Equal(HttpStatusCode.Conflict, c3);
        Assert.Equal("Conflict", conflict.Str("reason"));
        Assert.Contains("the object has been modified", conflict.Str("message"));
        var (c4, dup) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", $$$"""{"metadata":{"name":"{{{name}}}"}}""");
        Assert.Equal(HttpStatusCode.Conflict, c4);
        Assert.Equal("AlreadyExists", dup.Str("reason"));
    }

    [Fact]
    public async Task A_create_answers_the_stored_object_as_a_get_returns_it()
    {
        // the answer is the stored bytes with the revision spliced in, not a second serialisation
        var (code, created) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/pods",
            """{"metadata":{"name":"stored-answer","labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"100m"}}}]}}""");
        Assert.Equal(HttpStatusCode.Created, code);
        var (_, got) = await Send(HttpMethod.Get, "/api/v1/namespaces/default/pods/stored-answer");
        Assert.True(JsonNode.DeepEquals(got, created), $"{created.ToJsonString()}\n{got.ToJsonString()}");
        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", created.Str("metadata.uid")!);
        Assert.Equal("b", created.Str("metadata.labels.a"));
        Assert.False(string.IsNullOrEmpty(created.Str("metadata.resourceVersion")));
        // the other shapes still come from the tree
        var (c2, meta) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", """{"metadata":{"name":"stored-meta"}}""",
            accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
        Assert.Equal(HttpStatusCode.Created, c2);
        Assert.Equal("PartialObjectMetadata", meta.Str("kind"));
    }

    [Fact]
    public async Task A_body_with_invalid_utf8_is_read_as_replacement_characters()
    {
        // Kubernetes' decoder reads invalid UTF-8 in strings as U+FFFD; the body is parsed from its bytes
        var body = Encoding.UTF8.GetBytes("""{"metadata":{"name":"utf8"},"data":{"k":"a?b"}}""");
        body[Array.IndexOf(body, (byte)'?')] = 0xff;
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json");
        using var resp = await f.Client.PostAsync("/api/v1/namespaces/default/configmaps", content);
        Assert.Equal(HttpStatusCode.Created, resp.StatusCode);
        Assert.Equal("a\uFFFDb", JsonNode.Parse(await resp.Content.ReadAsStringAsync())!.Str("data.k"));
    }

    [Fact]
    public async Task Invalid_names_and_labels_are_422_with_causes()
    {
        var (code, s) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", """{"metadata":{"name":"Bad_Name","labels":{"ok":"-nope-"}}}""");
        Assert.Equal((HttpStatusCode)422, code);
        Assert.Equal("Invalid", s.Str("reason"));
        var fields = s.Objects("details.causes").Select(c => c.Str("field")).ToList();
        Assert.Contains("metadata.name", fields);
        Assert.Contains("metadata.labels", fields);
        var (c2, s2) = await Send(HttpMethod.Post, "/api/v1/namespaces/nope/configmaps", """{"metadata":{"name":"x"}}""");
        Assert.Equal(HttpStatusCode.NotFound, c2);
        Assert.Equal("namespaces \"nope\" not found", s2.Str("message"));
        var (c3, _) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", "{not json");
        Assert.Equal(HttpStatusCode.BadRequest, c3);
        var (c4, _) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", """{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, c4);
        var (c5, _) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", "metadata:\n  name: from-yaml\ndata:\n  n: \"1\"\n", "application/yaml");
        Assert.Equal(HttpStatusCode.Created, c5);
        var big = new string('x', 4 * 1024 * 1024);
        var (c6, s6) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", $$$"""{"metadata":{"name":"big"},"data":{"a":"{{{big}}}"}}""");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, c6);
        Assert.Equal("RequestEntityTooLarge", s6.Str("reason"));
    }

    [Fact]
    public async Task Table_output_has_kubectl_columns()
    {
        await Send(HttpMethod.Post, "/api/v1/namespaces/default/pods", """{"metadata":{"name":"tp","labels":{"t":"1"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}""");
        var (code, t) = await Send(HttpMethod.Get, "/api/v1/namespaces/default/pods?labelSelector=t%3D1", accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("Table", t.Str("kind"));
        Assert.Equal(["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"], t.Objects("columnDefinitions").Select(c => c.Str("name")));
        var cells = t.Objects("rows").Single().Arr("cells").Select(c => c!.ToString()).ToList();
        Assert.Equal(["tp", "0/1", "Pending", "0"], cells.Take(4));
        Assert.Equal("PartialObjectMetadata", t.Objects("rows").Single().Str("object.kind"));
    }

    [Fact]
    public async Task List_pagination_with_continue_and_field_selectors()
    {
        await Send(HttpMethod.Post, "/api/v1/namespaces", """{"metadata":{"name":"pages"}}""");
        for (var i = 0; i < 5; i++) await Send(HttpMethod.Post, "/api/v1/namespaces/pages/configmaps", $$$"""{"metadata":{"name":"c{{{i}}}"}}""");
        var names = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var (_, l) = await Send(HttpMethod.Get, "/api/v1/namespaces/pages/configmaps?limit=2" + (token is null ? "" : "&continue=" + Uri.EscapeDataString(token)));
            names.AddRange(l.Objects("items").Select(o => o.Str("metadata.name")!));
            token = l.Str("metadata.continue");
            pages++;
        } while (token is not null);
        Assert.Equal(["c0", "c1", "c2", "c3", "c4"], names);
        Assert.Equal(3, pages);
        var (_, one) = await Send(HttpMethod.Get, "/api/v1/namespaces/pages/configmaps?fieldSelector=metadata.name%3Dc3");
        Assert.Equal(["c3"], one.Objects("items").Select(o => o.Str("metadata.name")));
        var (bad, _) = await Send(HttpMethod.Get, "/api/v1/namespaces/pages/configmaps?fieldSelector=spec.nope%3Dx");
        Assert.Equal(HttpStatusCode.BadRequest, bad);
    }

    [Fact]
    public async Task Watch_streams_changes_from_a_resource_version_and_410_after_compaction()
    {
        var (_, first) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", """{"metadata":{"name":"w1"}}""");
        var rv = first.Str("metadata.resourceVersion")!;
        var watchTask = ReadEventsAsync($"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dw1", 2);
        await Task.Delay(300);
        await Send(HttpMethod.Patch, "/api/v1/namespaces/default/configmaps/w1", """{"data":{"x":"y"}}""", "application/merge-patch+json");
        await Send(HttpMethod.Delete, "/api/v1/namespaces/default/configmaps/w1");
        var events = await watchTask;
        Assert.Equal(["MODIFIED", "DELETED"], events.Select(e => e.Str("type")));
        Assert.Equal("y", events[0].Str("object.data.x"));

        await f.Store.CompactAsync(f.Store.CurrentRevision);
        var expired = await ReadEventsAsync($"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}", 1);
        Assert.Equal("ERROR", expired[0].Str("type"));
        Assert.Equal(410L, expired[0].Long("object.code"));
        Assert.Contains("too old resource version", expired[0].Str("object.message"));
    }

    async Task<List<JsonObject>> ReadEventsAsync(string path, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var resp = await f.Client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync(cts.Token));
        var events = new List<JsonObject>();
        while (events.Count < count && await reader.ReadLineAsync(cts.Token) is { } line)
        {
            var e = JsonNode.Parse(line)!.AsObject();
            Assert.True(e["type"] is not null, $"{resp.StatusCode}: {line}");
            events.Add(e);
        }
        return events;
    }

    [Fact]
    public async Task Finalizers_and_graceful_pod_deletion_and_binding()
    {
        await Send(HttpMethod.Post, "/api/v1/namespaces/default/configmaps", """{"metadata":{"name":"fin","finalizers":["example.com/keep"]}}""");
        var (c1, deleting) = await Send(HttpMethod.Delete, "/api/v1/namespaces/default/configmaps/fin");
        Assert.Equal(HttpStatusCode.Accepted, c1);
        Assert.NotNull(deleting.Str("metadata.deletionTimestamp"));
        var (c2, _) = await Send(HttpMethod.Patch, "/api/v1/namespaces/default/configmaps/fin", """{"metadata":{"finalizers":null}}""", "application/merge-patch+json");
        Assert.Equal(HttpStatusCode.OK, c2);
        var (c3, _) = await Send(HttpMethod.Get, "/api/v1/namespaces/default/configmaps/fin");
        Assert.Equal(HttpStatusCode.NotFound, c3);

        await Send(HttpMethod.Post, "/api/v1/namespaces/default/pods", """{"metadata":{"name":"gp"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}""");
        var (b1, _) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/pods/gp/binding", """{"apiVersion":"v1","kind":"Binding","metadata":{"name":"gp"},"target":{"kind":"Node","name":"n1"}}""");
        Assert.Equal(HttpStatusCode.Created, b1);
        var (b2, again) = await Send(HttpMethod.Post, "/api/v1/namespaces/default/pods/gp/binding", """{"target":{"kind":"Node","name":"n2"}}""");
        Assert.Equal(HttpStatusCode.Conflict, b2);
        var (d1, pod) = await Send(HttpMethod.Delete, "/api/v1/namespaces/default/pods/gp");
        Assert.Equal(HttpStatusCode.Accepted, d1);
        Assert.Equal(30L, pod.Long("metadata.deletionGracePeriodSeconds"));
        var (d2, _) = await Send(HttpMethod.Delete, "/api/v1/namespaces/default/pods/gp?gracePeriodSeconds=0");
        Assert.Equal(HttpStatusCode.OK, d2);
        var (g, _) = await Send(HttpMethod.Get, "/api/v1/namespaces/default/pods/gp");
        Assert.Equal(HttpStatusCode.NotFound, g);
    }

    [Fact]
    public async Task Scale_status_generation_dry_run_and_orphan_policy()
    {
        var dep = """{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d1"},"spec":{"replicas":1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}""";
        var (dry, _) = await Send(HttpMethod.Post, "/apis/apps/v1/namespaces/default/deployments?dryRun=All", dep);
        Assert.Equal(HttpStatusCode.Created, dry);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Get, "/apis/apps/v1/namespaces/default/deployments/d1")).Code);
        var (c, d) = await Send(HttpMethod.Post, "/apis/apps/v1/namespaces/default/deployments", dep);
        Assert.Equal(HttpStatusCode.Created, c);
        Assert.Equal(1L, d.Long("metadata.generation"));
        var (_, scale) = await Send(HttpMethod.Patch, "/apis/apps/v1/namespaces/default/deployments/d1/scale", """{"spec":{"replicas":4}}""", "application/merge-patch+json");
        Assert.Equal("Scale", scale.Str("kind"));
        Assert.Equal(4L, scale.Long("spec.replicas"));
        Assert.Equal("a=b", scale.Str("status.selector"));
        var (_, after) = await Send(HttpMethod.Get, "/apis/apps/v1/namespaces/default/deployments/d1");
        Assert.Equal(2L, after.Long("metadata.generation"));
        var (_, st) = await Send(HttpMethod.Patch, "/apis/apps/v1/namespaces/default/deployments/d1/status", """{"status":{"replicas":4},"spec":{"replicas":9}}""", "application/merge-patch+json");
        Assert.Equal(4L, st.Long("status.replicas"));
        Assert.Equal(4L, st.Long("spec.replicas"));
        var (_, main) = await Send(HttpMethod.Patch, "/apis/apps/v1/namespaces/default/deployments/d1", """{"status":{"replicas":0}}""", "application/merge-patch+json");
        Assert.Equal(4L, main.Long("status.replicas"));
        var (_, orphaned) = await Send(HttpMethod.Delete, "/apis/apps/v1/namespaces/default/deployments/d1", """{"propagationPolicy":"Orphan"}""");
        Assert.Contains("orphan", orphaned.Arr("metadata.finalizers").Select(x => x!.GetValue<string>()));
        var (bad, invalid) = await Send(HttpMethod.Post, "/apis/apps/v1/namespaces/default/deployments", dep.Replace("\"a\":\"b\"}},\"template", "\"a\":\"x\"}},\"template").Replace("d1", "d2"));
        Assert.Equal((HttpStatusCode)422, bad);
        Assert.Contains("`selector` does not match template `labels`", invalid.Str("message"));
    }

    [Fact]
    public async Task Server_side_apply_creates_then_merges_and_records_the_manager()
    {
        var cfg = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
        var (c1, created) = await Send(HttpMethod.Patch, "/api/v1/namespaces/default/configmaps/ssa?fieldManager=test", cfg, "application/apply-patch+yaml");
        Assert.Equal(HttpStatusCode.Created, c1);
        Assert.Equal("test", created.Objects("metadata.managedFields").Single().Str("manager"));
        var (c2, merged) = await Send(HttpMethod.Patch, "/api/v1/namespaces/default/configmaps/ssa?fieldManager=test", cfg.Replace("a: \"1\"", "b: \"2\""), "application/apply-patch+yaml");
        Assert.Equal(HttpStatusCode.OK, c2);
        Assert.Equal("2", merged.Str("data.b"));
        var (c3, _) = await Send(HttpMethod.Patch, "/api/v1/namespaces/default/configmaps/ssa", cfg, "application/apply-patch+yaml");
        Assert.Equal(HttpStatusCode.BadRequest, c3);
    }

    [Fact]
    public async Task Too_many_watches_get_429_and_the_server_stays_up()
    {
        var streams = new List<HttpResponseMessage>();
        try
        {
            HttpStatusCode last = HttpStatusCode.OK;
            for (var i = 0; i < 60 && last == HttpStatusCode.OK; i++)
            {
                var r = await f.Client.GetAsync("/api/v1/namespaces/default/events?watch=1", HttpCompletionOption.ResponseHeadersRead);
                streams.Add(r);
                last = r.StatusCode;
            }
            Assert.Equal(HttpStatusCode.TooManyRequests, last);
        }
        finally { foreach (var s in streams) s.Dispose(); }
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "/api/v1/namespaces")).Code);
        // closed watches are released
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (f.Server.Handler.WatchCount > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(0, f.Server.Handler.WatchCount);
    }
}
