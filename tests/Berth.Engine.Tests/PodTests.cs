using System.Text.Json.Nodes;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>Pods: containers sharing the infra's network, IPC and UTS namespaces; the pod verbs.</summary>
public class PodTests
{
    /// <summary>Runs the body, then removes every pod it made (their infra processes would leak).</summary>
    static void WithPods(Action<EngineSandbox> body) => EngineSandbox.Run(s =>
    {
        try { body(s); }
        finally
        {
            foreach (var id in s.Berth("pod", "ps", "-q", "--no-trunc").Lines) s.Berth("pod", "rm", "-f", id);
        }
    });

    const string Serve = "mkdir -p /www && echo hello-from-the-pod > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www";

    static string Fetch(EngineSandbox s, params string[] opts)
    {
        // the server may need a moment to listen (busybox-static's wget -T crashes: no timeout option)
        for (var i = 0; ; i++)
        {
            var r = s.RunC(["--rm", .. opts], "wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html");
            if (r.ExitCode == 0 || i == 20) return r.ExitCode == 0 ? r.Stdout.Trim() : "failed: " + r;
            Thread.Sleep(100);
        }
    }

    [Fact]
    public void Containers_of_a_pod_share_localhost_and_the_hostname() => WithPods(s =>
    {
        var id = s.Ok("pod", "create", "--name", "web", "--hostname", "podhost", "--label", "tier=front").Stdout.Trim();
        Assert.Equal(64, id.Length);
        Assert.Equal(0, s.Berth("pod", "exists", "web").ExitCode);
        Assert.Equal(1, s.Berth("pod", "exists", "nope").ExitCode);
        Assert.Equal("web Created 0", s.Ok("pod", "ps", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}}").Stdout.Trim());

        s.RunDetached(["--pod", "web", "--name", "srv", "--tmpfs", "/www"], "sh", "-c", Serve);
        Assert.Equal("hello-from-the-pod", Fetch(s, "--pod", "web"));
        Assert.Equal("podhost", s.RunC(["--rm", "--pod", "web"], "hostname").Stdout.Trim());
        // the same network, IPC and UTS namespaces as the server, but its own PID and mount ones
        var srvPid = (int)s.Inspect("srv")["State"]!["Pid"]!;
        var mine = s.RunC(["--rm", "--pod", "web"], "sh", "-c", "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done").Lines;
        Assert.Equal(new FileInfo($"/proc/{srvPid}/ns/net").LinkTarget, mine[0]);
        Assert.Equal(new FileInfo($"/proc/{srvPid}/ns/ipc").LinkTarget, mine[1]);
        Assert.Equal(new FileInfo($"/proc/{srvPid}/ns/uts").LinkTarget, mine[2]);
        Assert.NotEqual(new FileInfo($"/proc/{srvPid}/ns/pid").LinkTarget, mine[3]);
        // a container outside the pod cannot reach it, and has its own hostname
        Assert.StartsWith("failed", Fetch(s));
        Assert.NotEqual("podhost", s.RunC(["--rm"], "hostname").Stdout.Trim());

        Assert.Equal("web Running 1", s.Ok("pod", "ps", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}}").Stdout.Trim());
        // podman 4: one pod is printed as an object; none, or several, as an array
        var insp = JsonNode.Parse(s.Ok("pod", "inspect", "web").Stdout)!;
        Assert.Equal(id, (string?)insp["Id"]);
        Assert.Equal("front", (string?)insp["Labels"]!["tier"]);
        Assert.Equal("srv", (string?)insp["Containers"]!.AsArray()[0]!["Name"]);
        Assert.Equal(id, (string?)s.Inspect("srv")["Pod"]);
        Assert.Equal(2, JsonNode.Parse(s.Ok("pod", "inspect", "web", id).Stdout)!.AsArray().Count);
        // on the default bridge: the pod's address where podman shows it on its infra container
        Assert.Equal("""["bridge"]""", insp["InfraConfig"]!["Networks"]!.ToJsonString());
        Assert.Matches(@"^\d+\.\d+\.\d+\.\d+$", (string?)insp["NetworkSettings"]!["Networks"]!["bridge"]!["IPAddress"]);
        // podman's default columns and headers
        var ls = s.Ok("pod", "ls").Lines;
        Assert.Matches(@"^POD ID\s+NAME\s+STATUS\s+CREATED\s+INFRA ID\s+# OF CONTAINERS$", ls[0]);
        Assert.Matches(@"^[0-9a-f]{12}\s+web\s+Running\s+.* ago\s+1$", ls[1]);
        Assert.Matches(@"^POD ID\s+NAME\s+STATUS\s+CREATED\s+INFRA ID\s+IDS\s+NAMES\s+STATUS$", s.Ok("pod", "ps", "--ctr-ids", "--ctr-names", "--ctr-status").Lines[0]);
        Assert.Equal("srv running map[tier:front] front", s.Ok("pod", "ps", "--format", "{{.ContainerNames}} {{.ContainerStatuses}} {{.Labels}} {{.Labels.tier}}").Stdout.Trim());
        Assert.Matches(@"^web\s+1$", Assert.Single(s.Ok("pod", "ps", "--noheading", "--format", "table {{.Name}}\t{{.NumberOfContainers}}").Lines));
        var json = JsonNode.Parse(s.Ok("pod", "ps", "--format", "json").Stdout)!.AsArray();
        Assert.Equal(id, (string?)json[0]!["Id"]);
        Assert.Equal("srv", (string?)json[0]!["Containers"]![0]!["Names"]);
        Assert.Equal("web", s.Ok("pod", "ps", "--filter", "label=tier=front", "--filter", "ctr-names=^srv$", "--format", "{{.Name}}").Stdout.Trim());
        Assert.Empty(s.Ok("pod", "ps", "--filter", "status=exited", "-q").Lines);
        EngineSandbox.AssertOneLineError(s.Berth("pod", "ps", "--filter", "colour=red"), 125, "invalid filter");
        EngineSandbox.AssertOneLineError(s.Berth("pod", "ps", "--format", "{{.Nope}}"), 125, "Nope");

        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--pod", "web", "-h", "other"], "true"), 125, "cannot set hostname");
        EngineSandbox.AssertOneLineError(s.RunC(["--rm", "--pod", "nope"], "true"), 125, "no such pod: nope");
        EngineSandbox.AssertOneLineError(s.Berth("pod", "create", "--name", "web"), 125, "already in use");

        // rm needs -f while a container runs; -f removes the containers and the infra
        var rm = s.Berth("pod", "rm", "web");
        Assert.NotEqual(0, rm.ExitCode);
        Assert.Contains("stop them or use -f", rm.Stderr);
        s.Ok("pod", "rm", "-f", "web");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
        Assert.Empty(s.Ok("pod", "ps", "-q").Lines);
        Assert.Equal(1, s.Berth("pod", "exists", id).ExitCode);
    });

    [Fact]
    public void Pod_stop_and_start_bring_the_containers_back_in_new_namespaces() => WithPods(s =>
    {
        s.Ok("pod", "create", "--name", "p");
        s.RunDetached(["--pod", "p", "--name", "srv", "--tmpfs", "/www"], "sh", "-c", Serve);
        Assert.Equal("hello-from-the-pod", Fetch(s, "--pod", "p"));
        s.Ok("pod", "stop", "-t", "1", "p");
        Assert.Equal("Exited", s.Ok("pod", "inspect", "--format", "{{.State}}", "p").Stdout.Trim());
        Assert.Equal("exited", (string?)s.Inspect("srv")["State"]!["Status"]);
        s.Ok("pod", "start", "p");
        Assert.Equal("Running", s.Ok("pod", "inspect", "--format", "{{.State}}", "p").Stdout.Trim());
        Assert.Equal("hello-from-the-pod", Fetch(s, "--pod", "p"));
        Assert.Equal("p", s.RunC(["--rm", "--pod", "p"], "hostname").Stdout.Trim());
        s.Ok("pod", "kill", "p");
        EngineSandbox.WaitUntil(() => (string?)s.Inspect("srv")["State"]!["Status"] == "exited", "killed");
        // a stopped pod is removed with its stopped containers without -f
        s.Ok("pod", "rm", "p");
        Assert.Empty(s.Ok("ps", "-aq").Lines);
    });

    [Fact]
    public void Concurrent_runs_into_one_pod_share_one_infra() => WithPods(s =>
    {
        s.Ok("pod", "create", "--name", "many");
        var runs = Enumerable.Range(0, 6).Select(i => Task.Run(() => s.RunC(["-d", "--pod", "many", "--name", $"c{i}"], "sleep", "1000"))).ToArray();
        Task.WaitAll(runs);
        foreach (var r in runs) Assert.True(r.Result.ExitCode == 0, r.Result.ToString());
        var nets = Enumerable.Range(0, 6).Select(i => new FileInfo($"/proc/{(int)s.Inspect($"c{i}")["State"]!["Pid"]!}/ns/net").LinkTarget).Distinct().ToList();
        Assert.Single(nets);
        Assert.Equal("6", s.Ok("pod", "ps", "--format", "{{.NumberOfContainers}}").Stdout.Trim());
    });
}
