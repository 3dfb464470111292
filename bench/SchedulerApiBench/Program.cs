// Scheduling throughput through the real API (kube's scheduler_perf SchedulingThroughput, measured
// from outside): N Nodes and M Pods are created over HTTPS against a running `berth server`, whose
// in-server scheduler binds them; one watch on pods counts the bindings. Throughput = pods bound per
// second from the first pod create to the last binding. Also the create latency under that load.
// Usage: SchedulerApiBench --server https://127.0.0.1:PORT --data-dir DIR [--nodes 5000] [--pods 50000] [--clients 16]
//        [--http 1.1|2] [--connections 1]
// --http 1.1: CLIENTS keep-alive HTTPS connections, one request at a time on each.
// --http 2: CLIENTS concurrent streams multiplexed over CONNECTIONS TLS connections (ALPN h2), as
// client-go (kube-scheduler's scheduler_perf) talks to the API server.
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;

string server = "", dataDir = "";
int nodes = 5000, pods = 50000, clients = 16, serverPid = 0;
string http = "1.1";
int connections = 1;
string phase = "all"; // all | create (nodes and pods only) | bind (wait for the pods already created to be bound)
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--server": server = args[++i]; break;
        case "--data-dir": dataDir = args[++i]; break;
        case "--nodes": nodes = int.Parse(args[++i]); break;
        case "--pods": pods = int.Parse(args[++i]); break;
        case "--clients": clients = int.Parse(args[++i]); break;
        case "--phase": phase = args[++i]; break;
        case "--server-pid": serverPid = int.Parse(args[++i]); break;
        case "--http": http = args[++i]; break;
        case "--connections": connections = int.Parse(args[++i]); break;
        default: Console.Error.WriteLine($"scheduler-api bench: unknown argument \"{args[i]}\""); return 2;
    }
}
if (server.Length == 0 || dataDir.Length == 0) { Console.Error.WriteLine("scheduler-api bench: --server and --data-dir are required"); return 2; }
if (http is not ("1.1" or "2")) { Console.Error.WriteLine($"scheduler-api bench: --http must be 1.1 or 2, not \"{http}\""); return 2; }
if (connections < 1) { Console.Error.WriteLine("scheduler-api bench: --connections must be at least 1"); return 2; }
var h2 = http == "2";

var ca = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(dataDir, "ca.crt")));
var handler = new SocketsHttpHandler
{
    // HTTP/1.1: one connection per client and one for the watch. HTTP/2: without
    // EnableMultipleHttp2Connections the handler keeps to one connection per server; with it, at most
    // CONNECTIONS. (MaxConnectionsPerServer = 1 with HTTP/2 stalled every request once the watch was open.)
    MaxConnectionsPerServer = h2 ? (connections > 1 ? connections : int.MaxValue) : clients + 1,
    EnableMultipleHttp2Connections = h2 && connections > 1,
    PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
    SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.Issuer == ca.Subject },
};
var client = new HttpClient(handler)
{
    BaseAddress = new Uri(server),
    Timeout = TimeSpan.FromMinutes(5),
    DefaultRequestVersion = h2 ? HttpVersion.Version20 : HttpVersion.Version11,
    DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
};
client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(dataDir, "token")).Trim());

var jsonType = new MediaTypeHeaderValue("application/json");
async Task<double> PostAsync(string path, string json)
{
    var t = Stopwatch.GetTimestamp();
    using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
    content.Headers.ContentType = jsonType;
    using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
    // the answer (the created object) is read and dropped, as a client that does not look at it
    using var resp = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
    if (resp.StatusCode != HttpStatusCode.Created)
        throw new InvalidOperationException($"POST {path}: {(int)resp.StatusCode} {await resp.Content.ReadAsStringAsync()}");
    await using (var body = await resp.Content.ReadAsStreamAsync())
    {
        var buf = System.Buffers.ArrayPool<byte>.Shared.Rent(4096);
        while (await body.ReadAsync(buf) > 0) { }
        System.Buffers.ArrayPool<byte>.Shared.Return(buf);
    }
    return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
}

async Task<List<double>> ParallelAsync(int n, Func<int, string> path, Func<int, string> body)
{
    var lat = new List<double>(n);
    var next = -1;
    var workers = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
    {
        var mine = new List<double>();
        int i;
        while ((i = Interlocked.Increment(ref next)) < n) mine.Add(await PostAsync(path(i), body(i)));
        lock (lat) lat.AddRange(mine);
    })).ToArray();
    await Task.WhenAll(workers);
    return lat;
}

// user+sys CPU seconds of a process (the server's, from /proc; this one's own)
double ServerCpu()
{
    if (serverPid == 0) return double.NaN;
    var stat = File.ReadAllText($"/proc/{serverPid}/stat");
    var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return (long.Parse(f[11]) + long.Parse(f[12])) / 100.0; // utime, stime in clock ticks (USER_HZ = 100)
}
double OwnCpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

static string Pct(List<double> l)
{
    l.Sort();
    double Q(double p) => l[Math.Min(l.Count - 1, (int)(p * l.Count))];
    return $"p50 {Q(0.50):F1} ms, p90 {Q(0.90):F1} ms, p99 {Q(0.99):F1} ms, max {l[^1]:F1} ms";
}

Console.WriteLine($"load before: {File.ReadAllText("/proc/loadavg").Trim()}  cores: {Environment.ProcessorCount}  " +
    (h2 ? $"HTTP/2: {clients} streams over {connections} connection(s)" : $"HTTP/1.1: {clients} connections"));
if (phase == "bind")
{
    // The pods exist already (created by --phase create with the scheduler off); the server was
    // restarted with its scheduler: count the pods bound from now until all are.
    var t = Stopwatch.StartNew();
    var seen = new HashSet<string>();
    string rv0;
    // Only the pods already bound are listed (spec.nodeName not empty), at one revision that the watch
    // then starts from: every pod bound after it arrives as an event, so the count stays exact without
    // transferring and parsing the 50,000 pending pods (the list used to take the whole namespace).
    {
        using var r = await client.GetAsync("/api/v1/namespaces/bench/pods?fieldSelector=spec.nodeName%21%3D");
        if (r.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"list of bound pods: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        var doc = System.Text.Json.JsonDocument.Parse(await r.Content.ReadAsStreamAsync());
        rv0 = doc.RootElement.GetProperty("metadata").GetProperty("resourceVersion").GetString()!;
        foreach (var item in doc.RootElement.GetProperty("items").EnumerateArray())
            if (item.GetProperty("spec").TryGetProperty("nodeName", out var nn) && nn.GetString() is { Length: > 0 })
                seen.Add(item.GetProperty("metadata").GetProperty("name").GetString()!);
    }
    Console.WriteLine($"listed in {t.Elapsed.TotalSeconds:F2} s: {seen.Count} of {pods} already bound");
    using var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/namespaces/bench/pods?watch=true&resourceVersion={rv0}");
    using var resp = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
    using var rd = new StreamReader(await resp.Content.ReadAsStreamAsync());
    string? l;
    while (seen.Count < pods && (l = await rd.ReadLineAsync()) is not null)
    {
        if (l.IndexOf("\"nodeName\":\"", StringComparison.Ordinal) < 0) continue;
        var nm = l.IndexOf("\"name\":\"", StringComparison.Ordinal);
        seen.Add(l.Substring(nm + 8, l.IndexOf('"', nm + 8) - nm - 8));
    }
    Console.WriteLine($"scheduling throughput (pre-created pods): {pods / t.Elapsed.TotalSeconds:F0} pods/s ({seen.Count} bound {t.Elapsed.TotalSeconds:F2} s after the scheduler's server started serving)");
    // CPU from the server's start (it served before this phase began) to the last binding.
    if (serverPid != 0)
        Console.WriteLine($"CPU per pod (server start to last binding): server {ServerCpu() * 1e6 / pods:F0} µs ({ServerCpu():F2} s), bench client {OwnCpu() * 1e6 / pods:F0} µs ({OwnCpu():F2} s)");
    return 0;
}
await PostAsync("/api/v1/namespaces", """{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}""");
var sw = Stopwatch.StartNew();
var nodeLat = await ParallelAsync(nodes, _ => "/api/v1/nodes", i => $$$"""
    {"apiVersion":"v1","kind":"Node","metadata":{"name":"node-{{{i}}}","labels":{"kubernetes.io/hostname":"node-{{{i}}}","topology.kubernetes.io/zone":"zone-{{{i % 3}}}"}},
     "status":{"capacity":{"cpu":"4","memory":"32Gi","pods":"110"},"allocatable":{"cpu":"4","memory":"32Gi","pods":"110"},
     "conditions":[{"type":"Ready","status":"True"}]}}
    """);
Console.WriteLine($"nodes: {nodes} created in {sw.Elapsed.TotalSeconds:F2} s ({nodes / sw.Elapsed.TotalSeconds:F0}/s); create {Pct(nodeLat)}");
await Task.Delay(1000); // the scheduler's node informer catches up

if (phase == "create")
{
    var tc = Stopwatch.StartNew();
    var lat = await ParallelAsync(pods, _ => "/api/v1/namespaces/bench/pods", i =>
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-" + i + "\",\"namespace\":\"bench\"}," +
        "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"registry.k8s.io/pause:3.10\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"500Mi\"}}}]}}");
    Console.WriteLine($"pods: {pods} created in {tc.Elapsed.TotalSeconds:F2} s ({pods / tc.Elapsed.TotalSeconds:F0}/s); create {Pct(lat)} (no scheduler running)");
    return 0;
}

// One watch on the namespace's pods counts bindings (MODIFIED events with a nodeName, once per pod).
using var listResp = await client.GetAsync("/api/v1/namespaces/bench/pods?limit=1");
var listJson = await listResp.Content.ReadAsStringAsync();
var rv = System.Text.Json.JsonDocument.Parse(listJson).RootElement.GetProperty("metadata").GetProperty("resourceVersion").GetString();
var bound = new HashSet<string>();
var allBound = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
var clock = new Stopwatch();
using var watchCts = new CancellationTokenSource();
var watch = Task.Run(async () =>
{
    using var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/namespaces/bench/pods?watch=true&resourceVersion={rv}");
    using var resp = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, watchCts.Token);
    using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync(watchCts.Token));
    string? line;
    while ((line = await reader.ReadLineAsync(watchCts.Token)) is not null)
    {
        var n = line.IndexOf("\"nodeName\":\"", StringComparison.Ordinal);
        if (n < 0) continue;
        var nm = line.IndexOf("\"name\":\"", StringComparison.Ordinal);
        var name = line.Substring(nm + 8, line.IndexOf('"', nm + 8) - nm - 8);
        if (bound.Add(name) && bound.Count == pods) { allBound.TrySetResult(clock.Elapsed); return; }
    }
});
await Task.Delay(200);
var (server0, own0) = (ServerCpu(), OwnCpu());
clock.Start();
var podLat = await ParallelAsync(pods, _ => "/api/v1/namespaces/bench/pods", i =>
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-" + i + "\",\"namespace\":\"bench\"}," +
    "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"registry.k8s.io/pause:3.10\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"500Mi\"}}}]}}");
var created = clock.Elapsed;
Console.WriteLine($"pods: {pods} created in {created.TotalSeconds:F2} s ({pods / created.TotalSeconds:F0}/s); create {Pct(podLat)}");
var done = await Task.WhenAny(allBound.Task, Task.Delay(TimeSpan.FromMinutes(10)));
if (done != allBound.Task) { Console.WriteLine($"timed out: {bound.Count}/{pods} bound"); return 1; }
var total = allBound.Task.Result;
var (server1, own1) = (ServerCpu(), OwnCpu());
Console.WriteLine($"scheduling throughput: {pods / total.TotalSeconds:F0} pods/s ({pods} pods bound {total.TotalSeconds:F2} s after the first create; last bound {(total - created).TotalSeconds:F2} s after the last create)");
Console.WriteLine($"CPU per pod (first create to last binding): server {(server1 - server0) * 1e6 / pods:F0} µs ({server1 - server0:F1} s), bench client {(own1 - own0) * 1e6 / pods:F0} µs");
watchCts.Cancel();
// The scheduler's Scheduled Events are written off the binding path: how many made it (a full buffer drops them).
await Task.Delay(2000);
using (var ev = await client.GetAsync("/api/v1/namespaces/bench/events"))
{
    var doc = System.Text.Json.JsonDocument.Parse(await ev.Content.ReadAsStreamAsync());
    Console.WriteLine($"events in namespace bench 2 s after: {doc.RootElement.GetProperty("items").GetArrayLength()}");
}
Console.WriteLine($"load after: {File.ReadAllText("/proc/loadavg").Trim()}");
return 0;
