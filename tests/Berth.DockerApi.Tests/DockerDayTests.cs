using System.Globalization;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;
using Berth.Images.Tests.Support;
using Xunit.Abstractions;

namespace Berth.DockerApi.Tests;

/// <summary>
/// A Docker user's day, typed identically with the real docker CLI (and docker-compose) against a private
/// Debian dockerd and against `berth system service`. Each command's exit code, stdout and stderr are
/// observations (normalised for ids, digests, times, sizes and addresses: <see cref="DaySide.Normalise"/>);
/// the two lists must be equal. Both transcripts and the differences are in the test output. Where the
/// two daemons differ by design (storage driver, process ids), the scenario normalises that and says so.
/// The image is busybox-static imported into dockerd, saved, and `docker load`ed into Berth.
/// </summary>
public sealed partial class DockerDayTests(DockerdFixture dockerd, ServiceFixture berth, ITestOutputHelper output)
    : IClassFixture<DockerdFixture>, IClassFixture<ServiceFixture>
{
    const string I = DockerdFixture.Image;

    void Compare(Action<DaySide> day)
    {
        var d = new DaySide("dockerd", dockerd.Env);
        var b = new DaySide("berth", new Dictionary<string, string>
        {
            ["DOCKER_HOST"] = "unix://" + berth.Socket, ["HOME"] = berth.Home, ["DOCKER_CONFIG"] = Path.Combine(berth.Home, ".docker"),
        });
        foreach (var s in new[] { d, b }) s.Alias(berth.Registry.Host, "REGISTRY");
        try { day(d); }
        finally { output.WriteLine("==================== dockerd\n" + d.Transcript); Clean(d); }
        if (b.Quiet("image", "inspect", I).ExitCode != 0) b.Ok("load", "-i", dockerd.Archive);
        Exception? failed = null;
        try { day(b); }
        catch (Exception e) { failed = e; }
        finally { output.WriteLine("==================== berth\n" + b.Transcript); Clean(b); }

        var diff = new StringBuilder();
        var known = new StringBuilder();
        for (var i = 0; i < Math.Max(d.Observations.Count, b.Observations.Count); i++)
        {
            var x = i < d.Observations.Count ? d.Observations[i] : "(none)";
            var y = i < b.Observations.Count ? b.Observations[i] : "(none)";
            if (x == y) continue;
            (x.StartsWith(DaySide.KnownPrefix, StringComparison.Ordinal) && y.StartsWith(DaySide.KnownPrefix, StringComparison.Ordinal) ? known : diff)
                .Append("--- dockerd: ").Append(x).Append("\n+++ berth:   ").Append(y).Append("\n\n");
        }
        output.WriteLine("==================== known differences (not fixed)\n" + (known.Length == 0 ? "(none)" : known.ToString()));
        output.WriteLine("==================== differences\n" + (diff.Length == 0 ? "(none)" : diff.ToString()));
        if (failed is not null) throw new Xunit.Sdk.XunitException("berth failed mid-scenario: " + failed.Message + "\n" + diff);
        Assert.True(diff.Length == 0, "Berth differs from dockerd:\n" + diff);
    }

    /// <summary>Removes what a scenario left: containers, custom networks, volumes, tags other than the day's image.</summary>
    static void Clean(DaySide s)
    {
        var ids = s.Quiet("ps", "-aq").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (ids.Length > 0) s.Quiet(["rm", "-f", .. ids]);
        foreach (var n in s.Quiet("network", "ls", "--format", "{{.Name}}").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            if (n is not ("bridge" or "host" or "none")) s.Quiet("network", "rm", n);
        foreach (var v in s.Quiet("volume", "ls", "-q").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)) s.Quiet("volume", "rm", "-f", v);
        foreach (var t in s.Quiet("images", "--format", "{{.Repository}}:{{.Tag}}").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            if (t != I && !t.StartsWith("REGISTRY", StringComparison.Ordinal) && !t.Contains("/test/busybox")) s.Quiet("rmi", "-f", t);
    }

    static string SortLines(string s) => string.Join('\n', s.Split('\n').OrderBy(l => l, StringComparer.Ordinal));
    static string Digits(string s) => DigitsRe().Replace(s, "N");
    [GeneratedRegex(@"\d+")] private static partial Regex DigitsRe();

    static string Fetch(string url)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                var r = http.GetAsync(url).GetAwaiter().GetResult();
                return $"{(int)r.StatusCode} {r.Content.ReadAsStringAsync().GetAwaiter().GetResult().Trim()}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                if (DateTime.UtcNow > deadline) return "failed: " + e.Message;
                Thread.Sleep(200);
            }
        }
    }

    [Fact]
    public void Foreground_runs_exit_codes_env_workdir_user_entrypoint() => Compare(s =>
    {
        s.Do("run", "--rm", I, "echo", "hello world");
        s.Do("run", "--rm", I, "sh", "-c", "echo out; echo err >&2; exit 3");
        s.Do("run", "--rm", I, "nosuchcmd");
        s.Do("run", "--rm", I, "/etc/passwd");
        s.Do("run", "--rm", I, "/nosuch/path");
        s.Do("run", "--rm", "--nosuchflag", I, "true");
        s.Do("run", "--rm", "-e", "GREETING=hi there", "-e", "EMPTY=", I, "sh", "-c", "echo \"$GREETING [$EMPTY] $HOME\"; echo $PATH");
        s.Do("run", "--rm", "-w", "/tmp", I, "pwd");
        s.Do("run", "--rm", "-w", "/new/dir", I, "sh", "-c", "pwd; ls -ld /new/dir | cut -c1-10");
        s.Do("run", "--rm", "-u", "nobody", I, "id");
        s.Do("run", "--rm", "-u", "1234:5678", I, "sh", "-c", "id; echo $HOME");
        s.Do("run", "--rm", "-u", "nosuchuser", I, "id");
        s.Do("run", "--rm", "--entrypoint", "/bin/echo", I, "via", "entrypoint");
        s.Do("run", "--rm", "--entrypoint", "nosuch", I);
        s.DoWith("piped in\n", null, "run", "--rm", "-i", I, "sh", "-c", "cat; echo done");
        s.Do("run", "--rm", I, "sh", "-c", "echo ${#HOSTNAME}; cat /etc/hostname | wc -c; hostname | wc -c");
        s.Do("run", "--rm", "--hostname", "myhost", I, "sh", "-c", "hostname; cat /etc/hosts | grep -c myhost");
        s.Do("run", "--name", "once", I, "sh", "-c", "echo once; exit 2");
        s.Do("ps", "-a", "--format", "{{.Names}} {{.Status}}");
        s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", "once");
        s.Do("start", "-a", "once");
        s.Do("logs", "once");
        s.Do("rm", "once");
        s.Do("ps", "-aq");
    });

    [Fact]
    public void Web_server_published_port_ps_exec_inspect_lifecycle() => Compare(s =>
    {
        var port = Tools.FreePort();
        s.Alias(port.ToString(CultureInfo.InvariantCulture), "PORT");
        s.Do("run", "-d", "--name", "web", "-p", $"127.0.0.1:{port}:80", "-e", "MODE=prod", I, "httpd", "-f", "-p", "80", "-h", "/www");
        s.Note("GET from the host: " + Fetch($"http://127.0.0.1:{port}/"));
        s.Do("ps");
        s.Do("ps", "-a");
        s.Do("ps", "-q");
        s.Do("ps", "--no-trunc", "--format", "{{.ID}} {{.Image}} {{.Command}} {{.Names}}");
        s.Do("ps", "--format", "{{.Names}} {{.Status}}");
        s.Do("ps", "--format", "{{.Names}}\t{{.Ports}}");
        s.Do("ps", "--format", "table {{.Names}}\t{{.Image}}\t{{.Ports}}");
        s.Do("port", "web");
        s.Do("port", "web", "80");
        s.Do("port", "web", "81");
        s.Do("exec", "web", "sh", "-c", "echo $MODE; pwd; id -u");
        s.Do("exec", "-e", "X=1", "-w", "/www", "-u", "nobody", "web", "sh", "-c", "echo $X; pwd; id -u; id -g");
        // berth-runc's exec (like runc's) adds --additional-gids to the container process's groups (root's 0);
        // dockerd hands its runtime a whole process with only the user's groups
        s.Do("exec", "-u", "nobody", "web", "id");
        s.Do("exec", "web", "nosuchcmd");
        s.Do("exec", "web", "sh", "-c", "exit 4");
        s.Do("inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.State.Paused}} {{.State.ExitCode}}", "web");
        s.Do("inspect", "--format", "{{json .Config.Env}}", "web");
        s.Do("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "web");
        s.Do("inspect", "--format", "{{json .Mounts}}", "web");
        s.Do("inspect", "--format", "{{json .HostConfig.RestartPolicy}}", "web");
        s.Do("inspect", "--format", "{{json .HostConfig.PortBindings}}", "web");
        s.Do("inspect", "--format", "{{json .NetworkSettings.Ports}}", "web");
        s.Do("inspect", "--format", "{{.Name}} {{.Config.Image}} {{json .Config.Cmd}} {{json .Config.Entrypoint}} {{.Config.Hostname}}", "web");
        // dockerd 20.10 keeps the request's "default"; docker 23+ says "bridge", as Berth does
        s.DoWith(null, t => t.Replace("default bridge", "bridge bridge", StringComparison.Ordinal),
            "inspect", "--format", "{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", "web");
        s.Do("container", "inspect", "--format", "{{.Path}} {{json .Args}} {{.RestartCount}}", "web");
        // process ids and start times differ: the columns and the command line must not
        s.DoWith(null, Digits, "top", "web");
        s.DoWith(null, t => Regex.Replace(t, @"\d+(\.\d+)?%", "<pct>"), "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemPerc}}", "web");
        s.Do("pause", "web");
        s.Do("ps", "--format", "{{.Names}} {{.Status}}");
        s.Do("inspect", "--format", "{{.State.Status}} {{.State.Paused}}", "web");
        s.Do("exec", "web", "true");
        s.Do("unpause", "web");
        s.Do("rename", "web", "www");
        s.Do("ps", "--format", "{{.Names}}");
        s.Do("rename", "www", "www");
        s.Do("stop", "-t", "1", "www");
        s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "www");
        s.Do("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}");
        s.Do("ps", "--filter", "status=running", "-q");
        s.Do("port", "www");
        s.Do("exec", "www", "true");
        s.Do("start", "www");
        s.Note("GET after start: " + Fetch($"http://127.0.0.1:{port}/"));
        s.Do("restart", "-t", "1", "www");
        s.Do("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", "www");
        s.Do("kill", "-s", "KILL", "www");
        s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "www");
        s.Do("kill", "www");
        s.Do("start", "www");
        s.Do("kill", "-s", "NOSUCHSIG", "www");
        s.Do("rm", "www");
        s.Do("rm", "-f", "www");
        s.Do("ps", "-a", "-q");
    });

    [Fact]
    public void Logs_tail_and_timestamps() => Compare(s =>
    {
        // stdout and stderr are two pipes (read by two readers in both daemons): the pause keeps their order in the log
        s.Ok("run", "-d", "--name", "talker", I, "sh", "-c", "echo warn >&2; sleep 0.5; for i in 1 2 3 4 5; do echo line $i; done; exec sleep 1000");
        s.WaitFor("the log lines", () => s.Quiet("logs", "talker") is { Stdout: var o, Stderr: var e } && o.Contains("line 5") && e.Contains("warn"));
        s.Do("logs", "talker");
        s.Do("logs", "--tail", "2", "talker");
        s.Do("logs", "--tail", "0", "talker");
        s.Do("logs", "-t", "--tail", "1", "talker");
        s.Do("logs", "--since", "1h", "talker");
        s.Do("container", "logs", "-n", "1", "talker");
        s.Do("rm", "-f", "talker");
    });

    [Fact]
    public void Cp_diff_commit_history_tag_images_rmi_save_load() => Compare(s =>
    {
        var tmp = Directory.CreateTempSubdirectory("berth-day-").FullName;
        s.Alias(tmp, "<tmp>");
        try
        {
            File.WriteAllText(Path.Combine(tmp, "host.txt"), "from the host\n");
            s.Ok("run", "-d", "--name", "box", I, "sleep", "1000");
            s.Do("cp", Path.Combine(tmp, "host.txt"), "box:/tmp/");
            s.Do("exec", "box", "cat", "/tmp/host.txt");
            s.Do("exec", "box", "sh", "-c", "echo made > /root/made.txt; rm /etc/group; mkdir -p /opt/new");
            s.Do("cp", "box:/root/made.txt", Path.Combine(tmp, "back.txt"));
            s.Note("copied back: " + File.ReadAllText(Path.Combine(tmp, "back.txt")).Trim());
            s.Do("cp", "box:/nosuch", tmp);
            s.Do("cp", Path.Combine(tmp, "nosuch"), "box:/tmp/");
            // dockerd lists the changes in its overlay walk's (directory) order: compared sorted
            s.DoWith(null, SortLines, "diff", "box");
            s.Do("commit", "-m", "made a file", "box", "day/committed:1");
            // history of an imported image: dockerd and Berth record the import differently (comment, size)
            s.Do("history", "--format", "{{.CreatedBy}}|{{.Comment}}|{{.Size}}", "day/committed:1");
            // the parent (the image committed from) is named on its layers' line
            s.Do("history", "day/committed:1");
            s.Do("history", "-q", "day/committed:1");
            s.Do("history", "--no-trunc", "--format", "{{.ID}} {{.CreatedBy}} {{.Comment}}", "day/committed:1");
            s.Do("image", "inspect", "--format", "{{.Parent}}", "day/committed:1");
            s.Do("run", "--rm", "day/committed:1", "cat", "/root/made.txt");
            s.Do("tag", "day/committed:1", "day/committed:latest");
            s.DoWith(null, SortLines, "images", "--format", "{{.Repository}}:{{.Tag}}");
            s.Do("images", "day/committed");
            s.Do("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}", "day/committed:1");
            s.Do("image", "inspect", "--format", "{{json .RepoTags}} {{.Comment}} {{json .Config.Cmd}}", "day/committed:1");
            s.Do("rmi", "day/committed:1");
            s.Do("save", "-o", Path.Combine(tmp, "c.tar"), "day/committed:latest");
            s.Do("rmi", "day/committed:latest");
            s.Do("load", "-i", Path.Combine(tmp, "c.tar"));
            s.Do("run", "--rm", "day/committed:latest", "cat", "/root/made.txt");
            // a loaded image has no parent: its lower lines are <missing>
            s.Do("history", "day/committed:latest");
            s.Do("rmi", I);
            s.Do("rm", "-f", "box");
            s.Do("rmi", "day/committed:latest");
            s.Do("rmi", "day/committed:latest");
        }
        finally { Directory.Delete(tmp, true); }
    });

    [Fact]
    public void Volume_survives_its_container() => Compare(s =>
    {
        s.Do("volume", "create", "data");
        s.Do("volume", "ls");
        s.Do("volume", "ls", "-q");
        s.Do("volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", "data");
        s.Do("run", "--name", "wr", "-v", "data:/data", I, "sh", "-c", "echo kept > /data/f");
        s.Do("inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}} {{.Driver}}{{end}}", "wr");
        s.Do("rm", "wr");
        s.Do("run", "--rm", "-v", "data:/data", I, "cat", "/data/f");
        s.Do("run", "--rm", "-v", "data:/data:ro", I, "touch", "/data/g");
        s.Ok("create", "--name", "holder", "-v", "data:/data", I, "true");
        s.Do("volume", "rm", "data");
        s.Do("rm", "holder");
        s.Do("volume", "rm", "data");
        s.Do("volume", "rm", "data");
        s.Do("volume", "inspect", "data");
        s.Do("volume", "ls", "-q");
    });

    [Fact]
    public void User_network_two_containers_by_name_connect_disconnect() => Compare(s =>
    {
        s.Do("network", "create", "appnet");
        s.Do("network", "create", "appnet");
        s.Do("network", "ls", "--filter", "name=appnet", "--format", "{{.Name}} {{.Driver}} {{.Scope}}");
        s.Do("network", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Internal}} {{.Attachable}} {{.Scope}}", "appnet");
        s.Ok("run", "-d", "--name", "srv", "--network", "appnet", I, "httpd", "-f", "-p", "80", "-h", "/www");
        s.Ok("run", "-d", "--name", "cli", I, "sleep", "1000");
        s.Do("exec", "cli", "wget", "-T", "2", "-qO-", "http://srv/");
        s.Do("network", "connect", "appnet", "cli");
        s.Do("exec", "cli", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -T 2 -qO- http://srv/ && exit 0; sleep 0.3; done; exit 1");
        s.Do("exec", "srv", "sh", "-c", "ping -c 1 -W 2 cli >/dev/null && echo cli reachable");
        s.Do("inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "cli");
        s.DoWith(null, t => string.Join(' ', t.Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)),
            "network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", "appnet");
        s.Do("network", "rm", "appnet");
        s.Do("network", "disconnect", "appnet", "cli");
        s.Do("exec", "cli", "wget", "-T", "2", "-qO-", "http://srv/");
        s.Do("network", "disconnect", "appnet", "cli");
        s.Do("rm", "-f", "srv", "cli");
        s.Do("network", "rm", "appnet");
        s.Do("network", "rm", "appnet");
        s.Do("network", "ls", "--format", "{{.Name}}");
    });

    [Fact]
    public void Events_df_and_prune() => Compare(s =>
    {
        var since = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1;
        s.Alias(since.ToString(CultureInfo.InvariantCulture), "<since>");
        s.Ok("run", "--name", "ev", I, "true");
        s.Ok("rm", "ev");
        Thread.Sleep(1100);
        var until = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        s.Alias(until.ToString(CultureInfo.InvariantCulture), "<until>");
        s.Do("events", "--since", since.ToString(CultureInfo.InvariantCulture), "--until", until.ToString(CultureInfo.InvariantCulture),
            "--filter", "container=ev", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}");
        s.Do("events", "--since", since.ToString(CultureInfo.InvariantCulture), "--until", until.ToString(CultureInfo.InvariantCulture),
            "--filter", "type=container", "--filter", "container=ev", "--filter", "event=die", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}");
        s.Ok("run", "--name", "done1", I, "true");
        s.Ok("create", "--name", "made", I, "true");
        s.Ok("run", "-d", "--name", "live", I, "sleep", "1000");
        s.Do("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}");
        s.Do("container", "prune", "-f");
        s.Do("ps", "-a", "--format", "{{.Names}}");
        s.Do("image", "prune", "-f");
        s.Do("rm", "-f", "live");
    });

    [Fact]
    public void Errors_on_bad_input() => Compare(s =>
    {
        s.Do("rm", "nosuch");
        s.Do("start", "nosuch");
        s.Do("stop", "nosuch");
        s.Do("logs", "nosuch");
        s.Do("inspect", "nosuch");
        s.Do("exec", "nosuch", "true");
        s.Do("rename", "nosuch", "other");
        s.Do("port", "nosuch");
        s.Ok("create", "--name", "dup", I, "true");
        s.Do("run", "--name", "dup", I, "true");
        s.Do("create", "--name", "dup", I, "true");
        s.Do("exec", "dup", "true");
        s.Ok("create", "--name", "dup2", I, "true");
        s.Do("rename", "dup2", "dup");
        s.Do("rm", "dup", "dup2");
        s.Do("run", "--name", "x", I, "true");
        s.Do("run", "--name", "bad/name", I, "true");
        s.Do("run", "--rm", $"{berth.Registry.Host}/no/such:1", "true");
        s.Do("pull", $"{berth.Registry.Host}/no/such:1");
        s.Do("rmi", "nosuch:1");
        // dockerd 20.10 says "no such image: nosuch:1: No such image: nosuch:1"; docker 23+ (and Berth) "No such image: nosuch:1"
        s.Known("20.10's doubled wording", "image", "inspect", "nosuch:1");
        s.Do("volume", "inspect", "nosuch");
        s.Do("network", "inspect", "nosuch");
        s.Do("network", "rm", "nosuch");
        s.Do("run", "--rm", "-p", "notaport", I, "true");
        s.Do("run", "--rm", "--network", "nosuchnet", I, "true");
        s.Do("run", "--rm", "-v", "relative/path:/x", I, "true");
        s.Do("ps", "-aq");
    });

    [Fact]
    public void Wait_update_export_import_and_prunes() => Compare(s =>
    {
        var tmp = Directory.CreateTempSubdirectory("berth-day-").FullName;
        s.Alias(tmp, "<tmp>");
        try
        {
            s.Ok("run", "-d", "--name", "quick", I, "sh", "-c", "sleep 1; echo bye; exit 3");
            s.Do("wait", "quick");
            s.Do("logs", "-f", "quick");
            s.Do("ps", "-l", "--format", "{{.Names}} {{.Status}}");
            s.Do("ps", "-a", "-n", "1", "--format", "{{.Names}}");
            s.Do("ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}");
            s.Do("update", "--restart", "on-failure:2", "quick");
            s.Do("inspect", "--format", "{{json .HostConfig.RestartPolicy}}", "quick");
            s.Do("export", "-o", Path.Combine(tmp, "fs.tar"), "quick");
            s.Note("exported rootfs has bin/busybox: " + (Tools.Run("tar", ["-tf", Path.Combine(tmp, "fs.tar")]).Stdout.Split('\n').Any(l => l.TrimStart('.', '/') == "bin/busybox")));
            s.Do("import", Path.Combine(tmp, "fs.tar"), "day/imported:1");
            s.Do("run", "--rm", "--pull", "never", "day/imported:1", "/bin/busybox", "echo", "imported runs");
            s.Do("images", "-q", "day/imported");
            s.Do("rmi", "day/imported:1");
            s.Do("inspect", "--type", "image", "--format", "{{.Os}} {{.Architecture}} {{json .Config.Cmd}}", I);
            s.Do("inspect", "--type", "container", "--format", "{{.Name}}", "quick");
            s.Do("inspect", "--type", "volume", "quick");
            s.Do("rm", "quick");
            s.Ok("volume", "create", "unused");
            s.Ok("network", "create", "unusednet");
            s.Do("volume", "prune", "-f");
            s.Do("volume", "ls", "-q");
            s.Do("network", "prune", "-f");
            s.Do("network", "ls", "--format", "{{.Name}}");
            s.Do("images", "--filter", "dangling=true", "-q");
        }
        finally { Directory.Delete(tmp, true); }
    });

    [Fact]
    public void Compose_two_services_up_ps_logs_down() => Compare(s =>
    {
        var dir = Directory.CreateTempSubdirectory("berth-day-compose-").FullName;
        s.Alias(dir, "<dir>");
        var port = Tools.FreePort();
        s.Alias(port.ToString(CultureInfo.InvariantCulture), "PORT");
        var file = Path.Combine(dir, "docker-compose.yml");
        File.WriteAllText(file, $$"""
            version: "3.8"
            services:
              web:
                image: {{I}}
                command: ["sh", "-c", "echo web ready; exec httpd -f -p 80 -h /www"]
                ports:
                  - "127.0.0.1:{{port}}:80"
                volumes:
                  - site:/srv
              client:
                image: {{I}}
                depends_on: [web]
                command: ["sh", "-c", "until wget -qO- http://web/ >/dev/null 2>&1; do sleep 0.2; done; echo client reached web; exec sleep 1000"]
            volumes:
              site:
            """);
        try
        {
            s.Compose(file, "dday", "up", "-d");
            s.Note("GET from the host: " + Fetch($"http://127.0.0.1:{port}/"));
            s.WaitFor("the client's line", () => s.Quiet("logs", "dday_client_1").Stdout.Contains("client reached web"));
            s.Compose(file, "dday", "ps");
            s.Compose(file, "dday", "logs", "--no-color", "client");
            s.Do("ps", "--format", "{{.Names}}\t{{.Label \"com.docker.compose.service\"}}");
            s.Do("network", "ls", "--filter", "name=dday", "--format", "{{.Name}}");
            s.Do("volume", "ls", "--filter", "name=dday", "--format", "{{.Name}}");
            s.Compose(file, "dday", "down", "-v", "-t", "1");
            s.Do("ps", "-aq");
            s.Do("network", "ls", "--filter", "name=dday", "--format", "{{.Name}}");
        }
        finally { Directory.Delete(dir, true); }
    });
}
