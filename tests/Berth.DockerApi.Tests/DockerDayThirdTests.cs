using System.Globalization;
using System.Text.RegularExpressions;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>A third round of the Docker user's day (see <see cref="DockerDayTests"/>): logs windows and
/// drivers, event filters and formats, images through a local registry and archives, the system verbs,
/// and the run flags of everyday use.</summary>
public sealed partial class DockerDayTests
{
    static string Rfc3339Now(double addSeconds = 0) =>
        DateTimeOffset.UtcNow.AddSeconds(addSeconds).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    static string UnixNow() => DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);

    [Fact]
    public void Logs_windows_streams_drivers_and_tty() => Compare(s =>
    {
        // stdout and stderr are two pipes with a reader each (in both daemons): the pauses keep their order in the log
        s.Ok("run", "-d", "--name", "lg", I, "sh", "-c",
            "echo early; echo early-err >&2; sleep 3; echo late; echo late-err >&2; sleep 0.3; for i in 1 2 3 4; do echo n$i; done; exec sleep 1000");
        s.WaitFor("the early lines", () => s.Quiet("logs", "lg") is { Stdout: var o, Stderr: var e } && o.Contains("early") && e.Contains("early-err"));
        var mid = Rfc3339Now(0.5);
        s.WaitFor("the late lines", () => s.Quiet("logs", "lg") is { Stdout: var o, Stderr: var e } && o.Contains("n4") && e.Contains("late-err"), 10_000);
        // the early lines are about three seconds old, the late ones fresh
        s.Do("logs", "--since", "2s", "lg");
        s.Do("logs", "--until", "2s", "lg");
        s.Do("logs", "--since", mid, "lg");
        s.Do("logs", "--until", mid, "lg");
        s.Do("logs", "--since", mid, "--until", Rfc3339Now(60), "lg");
        s.Do("logs", "lg");
        s.Do("logs", "--tail", "0", "lg");
        s.Do("logs", "--tail", "3", "lg");
        s.Do("logs", "--tail", "all", "lg");
        s.Do("logs", "--timestamps", "--tail", "2", "lg");
        s.Do("logs", "--details", "--tail", "2", "lg");
        s.Do("logs", "--tail", "nonsense", "lg");
        s.Do("logs", "--since", "nonsense", "lg");
        s.Do("rm", "-f", "lg");

        // -f ends when the container does
        s.Ok("run", "-d", "--name", "fin", I, "sh", "-c", "echo first; sleep 1; echo second >&2; sleep 0.3; echo third; exit 4");
        s.Do("logs", "-f", "fin");
        s.Do("logs", "-f", "--tail", "1", "fin");
        s.Do("rm", "fin");

        s.Do("run", "--name", "nolog", "--log-driver", "none", I, "sh", "-c", "echo not kept; echo nor this >&2");
        s.Do("logs", "nolog");
        s.Do("inspect", "--format", "{{.HostConfig.LogConfig.Type}}", "nolog");
        s.Do("rm", "nolog");

        // rotation: 300 lines of json log (about 20 kB) in files of 1 kB, two kept; where a file is cut is the
        // driver's own business, so what is compared is that the log is short, the old lines gone, the last kept
        s.Do("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", I, "sh", "-c",
            "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line $i; done");
        var rot = s.Quiet("logs", "rot").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        s.Note($"rotated log: under 40 lines {rot.Length is > 0 and < 40}, first line gone {!rot.Contains("line 1")}, ends with {rot.LastOrDefault()}");
        s.Do("inspect", "--format", "{{json .HostConfig.LogConfig}}", "rot");
        s.Do("run", "--rm", "--log-opt", "max-size=nonsense", I, "true");
        s.Do("rm", "rot");

        // a terminal joins the streams and ends lines with CRLF
        s.Ok("run", "-d", "-t", "--name", "tt", I, "sh", "-c", "echo to-out; echo to-err >&2");
        s.WaitFor("tt to exit", () => s.Quiet("inspect", "--format", "{{.State.Status}}", "tt").Stdout.Trim() == "exited");
        s.Do("logs", "tt");
        s.Do("logs", "--tail", "1", "tt");
        s.Do("rm", "tt");
    });

    [Fact]
    public void Events_windows_filters_and_formats() => Compare(s =>
    {
        // the window opens on a new second: nothing before the scenario (Berth's load of the image) is in it
        Thread.Sleep(1050 - DateTime.UtcNow.Millisecond);
        var since = UnixNow();
        s.Alias(since, "<since>");
        s.Ok("volume", "create", "evvol");
        s.Ok("network", "create", "evnet");
        s.Ok("run", "-d", "--name", "ev1", "--label", "team=x", I, "sleep", "1000");
        s.Ok("network", "connect", "evnet", "ev1");
        Thread.Sleep(1100);
        var mid = UnixNow();
        s.Alias(mid, "<mid>");
        Thread.Sleep(1100);
        s.Ok("stop", "-t", "1", "ev1");
        s.Ok("rm", "ev1");
        s.Ok("tag", I, "day/evtag:1");
        s.Ok("rmi", "day/evtag:1");
        s.Ok("network", "rm", "evnet");
        s.Ok("volume", "rm", "evvol");
        Thread.Sleep(1100);
        var until = UnixNow();
        s.Alias(until, "<until>");
        string[] W(string from, string to, params string[] rest) => ["events", "--since", from, "--until", to, .. rest];
        const string F = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
        s.Do(W(since, until, "--filter", "type=container", "--format", F));
        s.Do(W(since, mid, "--filter", "type=container", "--format", F));
        s.Do(W(mid, until, "--filter", "type=container", "--format", F));
        s.Do(W(since, until, "--filter", "type=image", "--format", F));
        // dockerd releases a container's networks in its Go map's order, which varies: compared sorted
        s.DoWith(null, SortLines, W(since, until, "--filter", "type=network", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}}"));
        s.Do(W(since, until, "--filter", "type=volume", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}"));
        s.Do(W(since, until, "--filter", "event=die", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"));
        s.Do(W(since, until, "--filter", "container=ev1", "--filter", "event=start", "--filter", "event=stop", "--format", "{{.Action}} {{.Actor.Attributes.name}}"));
        s.Do(W(since, until, "--filter", "label=team=x", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.team}}"));
        s.Do(W(since, until, "--filter", "label=team=y", "--format", "{{.Action}}"));
        s.Do(W(since, until, "--filter", "type=network", "--filter", "event=connect", "--format", "{{.Action}} {{.Actor.Attributes.name}}"));
        // the whole event as JSON: its times differ, and an image event's id is the image's
        string Json(string t) => Regex.Replace(t, "\"(time|timeNano)\":[^,}]+", "\"$1\":N");
        s.DoWith(null, Json, W(since, until, "--filter", "container=ev1", "--filter", "event=die", "--format", "{{json .}}"));
        s.DoWith(null, Json, W(since, until, "--filter", "type=volume", "--filter", "event=create", "--format", "{{json .}}"));
        s.DoWith(null, Json, W(since, until, "--filter", "type=image", "--filter", "event=tag", "--format", "{{json .}}"));
        s.Do(W(since, until, "--filter", "type=nonsense"));
        s.Do(W(until, since));
    });

    [Fact]
    public void Images_through_a_registry_and_archives() => Compare(s =>
    {
        var tmp = Directory.CreateTempSubdirectory("berth-day-").FullName;
        s.Alias(tmp, "<tmp>");
        // each daemon pushes to its own repository of the one registry
        var repo = $"{berth.Registry.Host}/day/pushed-{s.Name}";
        s.Alias("pushed-" + s.Name, "pushed-SIDE");
        // what a push or pull names by size (its compressed layers: gzip differs between daemons)
        string Sizes(string t) => Regex.Replace(t, @"size: \d+", "size: N");
        try
        {
            s.Do("tag", I, repo + ":1");
            s.DoWith(null, Sizes, "push", repo + ":1");
            s.DoWith(null, Sizes, "push", repo + ":1");
            s.Do("push", repo + ":nosuchtag");
            // a repo digest only for a repository a registry confirmed it for (the push, then the pulls)
            s.Do("image", "inspect", "--format", "{{len .RepoDigests}}", repo + ":1");
            var digest = s.Quiet("image", "inspect", "--format", "{{index .RepoDigests 0}}", repo + ":1").Stdout.Trim();
            s.Do("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", repo);
            s.Do("rmi", repo + ":1");
            // a pull of a stored image lists no layers
            s.Do("pull", repo + ":1");
            s.Do("image", "inspect", "--format", "{{.RepoDigests}}", repo + ":1");
            s.Do("image", "inspect", "--format", "{{.RepoTags}}", repo + ":1");
            s.Do("pull", digest);
            s.Do("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", repo);
            s.Do("run", "--rm", digest, "echo", "by digest");
            s.Do("rmi", repo + ":1");
            s.Do("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", repo);
            s.Do("rmi", digest);
            s.Do("pull", repo + ":nosuchtag");

            // archives through pipes and files
            s.Ok("run", "--name", "mk", I, "sh", "-c", "echo v1 > /made");
            s.Ok("commit", "mk", "day/arch:1");
            s.Ok("rm", "mk");
            s.Note("save | load: " + s.Shell($"{ServiceFixture.DockerCli} save day/arch:1 | {ServiceFixture.DockerCli} load").ToString());
            s.Note("save to stdout is a tar: " + s.Shell($"{ServiceFixture.DockerCli} save day/arch:1 | tar -t | grep -c manifest.json").Stdout.Trim());
            s.Do("save", "-o", Path.Combine(tmp, "arch.tar"), "day/arch:1");
            s.Do("rmi", "day/arch:1");
            s.Do("load", "-i", Path.Combine(tmp, "arch.tar"));
            s.Do("load", "-q", "-i", Path.Combine(tmp, "arch.tar"));
            s.Known("dockerd names its temp directory", "load");
            s.Do("load", "-i", Path.Combine(tmp, "nosuch.tar"));
            s.Do("run", "--rm", "day/arch:1", "cat", "/made");

            // filters: by reference, age (before/since an image) and dangling
            Thread.Sleep(1100);
            s.Ok("run", "--name", "mk2", I, "sh", "-c", "echo v2 > /made");
            s.Ok("commit", "mk2", "day/arch:2");
            s.Ok("commit", "mk2", "day/arch:1");
            s.Ok("rm", "mk2");
            s.DoWith(null, SortLines, "image", "ls", "--filter", "reference=day/arch", "--format", "{{.Repository}}:{{.Tag}}");
            s.DoWith(null, SortLines, "image", "ls", "--filter", "reference=day/*:1", "--format", "{{.Repository}}:{{.Tag}}");
            s.DoWith(null, SortLines, "image", "ls", "--filter", "reference=*/arch:2", "--format", "{{.Repository}}:{{.Tag}}");
            s.Do("image", "ls", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}");
            s.Do("image", "ls", "--filter", "dangling=true", "--filter", "reference=day/arch", "-q");
            s.DoWith(null, SortLines, "image", "ls", "--filter", "since=" + I, "--format", "{{.Repository}}:{{.Tag}}");
            s.DoWith(null, SortLines, "image", "ls", "--filter", "before=day/arch:2", "--filter", "reference=day/*", "--format", "{{.Repository}}:{{.Tag}}");
            s.Do("image", "ls", "--filter", "before=nosuch:1");
            s.Do("image", "ls", "--filter", "nonsense=1");
            s.Do("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "day/arch:1");
            s.Do("history", "--format", "{{.ID}} {{.CreatedSince}}", "day/arch:2");
            // dockerd counts a layer's file bytes, Berth its tar
            s.Known("layer sizes", "history", "--human=false", "--format", "{{.Size}}", "day/arch:2");
            // each layer that went with an image is listed, unpacked or not (these never ran)
            s.Do("image", "prune", "-f");
            s.Do("rmi", "day/arch:1", "day/arch:2");
        }
        finally { Directory.Delete(tmp, true); }
    });

    [Fact]
    public void System_df_prune_info_version() => Compare(s =>
    {
        s.Ok("image", "prune", "-f");
        // a running container keeps the day's image from `prune -a`
        s.Ok("run", "-d", "--name", "keeper", I, "sleep", "1000");
        s.Ok("run", "--name", "old1", I, "true");
        Thread.Sleep(1100);
        var cut = Rfc3339Now();
        Thread.Sleep(1100);
        s.Ok("run", "--name", "new1", I, "true");
        s.Do("container", "prune", "-f", "--filter", "until=" + cut);
        s.Do("ps", "-a", "--format", "{{.Names}}");
        s.Do("container", "prune", "-f", "--filter", "until=nonsense");
        s.Ok("volume", "create", "named");
        s.Ok("run", "--name", "anon", "-v", "/data", I, "true");
        s.Ok("network", "create", "spare");
        s.Ok("run", "--name", "mk", I, "touch", "/x");
        s.Ok("commit", "mk", "day/unused:1");
        s.Do("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}");
        s.Do("system", "df");
        s.Do("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}");
        // the verbose listing names volumes by the daemon's own volume names: anonymous ones differ
        s.Do("system", "df", "-v", "--format", "{{range .Images}}{{.Repository}}:{{.Tag}} {{.Containers}}\n{{end}}");
        s.DoWith(null, SortLines, "system", "df", "-v", "--format", "{{range .Containers}}{{.Names}} {{.Image}} {{.Status}}\n{{end}}");
        s.Do("system", "df", "-v", "--format", "{{range .Volumes}}{{if eq .Name \"named\"}}{{.Name}} {{.Links}}{{end}}{{end}}");
        s.Do("system", "prune", "-f");
        s.DoWith(null, SortLines, "ps", "-a", "--format", "{{.Names}}");
        s.Do("network", "ls", "--filter", "name=spare", "-q");
        s.Do("volume", "ls", "--filter", "name=named", "-q");
        s.DoWith(null, SortLines, "images", "--format", "{{.Repository}}:{{.Tag}}");
        // with the layer that went with the image (this one never ran); dockerd lists the volumes in its
        // map's order: compared sorted
        s.DoWith(null, SortVolumes, "system", "prune", "-a", "-f", "--volumes");
        s.Do("volume", "ls", "-q");
        s.DoWith(null, SortLines, "images", "--format", "{{.Repository}}:{{.Tag}}");
        s.Do("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.Images}}");
        // Berth serves API 1.47; Debian's dockerd 20.10 serves 1.41
        s.Known("API version", "version", "--format", "{{.Server.APIVersion}}");
        // dockerd 20.10 still serves API 1.12; docker 25+ (and Berth) from 1.24
        s.Known("oldest API version", "version", "--format", "{{.Server.MinAPIVersion}}");
        s.Do("version", "--format", "{{.Server.Os}} {{.Server.Arch}}");
        s.Do("rm", "-f", "keeper");
        if (s.Quiet("image", "inspect", I).ExitCode != 0) s.Ok("load", "-i", dockerd.Archive);
    });

    /// <summary>A prune's "Deleted Volumes:" block, its lines sorted.</summary>
    static string SortVolumes(string t) => Regex.Replace(t, @"(?<=Deleted Volumes:\n)(.+\n)+", m => string.Concat(m.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).Select(l => l + "\n")));

    [Fact]
    public void Run_flags_of_everyday_use() => Compare(s =>
    {
        var tmp = Directory.CreateTempSubdirectory("berth-day-").FullName;
        s.Alias(tmp, "<tmp>");
        s.Env["DAY_INHERITED"] = "from the shell";
        s.Env.Remove("DAY_UNSET");
        try
        {
            var envFile = Path.Combine(tmp, "app.env");
            File.WriteAllText(envFile, "# settings\nA=1\nB=two words\n\nQUOTED=\"kept quotes\"\nDAY_INHERITED\nDAY_UNSET\n");
            const string Show = "echo \"A=$A B=$B Q=$QUOTED I=${DAY_INHERITED-unset} U=${DAY_UNSET-unset}\"";
            s.Do("run", "--rm", "--env-file", envFile, I, "sh", "-c", Show);
            s.Do("run", "--rm", "-e", "DAY_INHERITED", "-e", "DAY_UNSET", I, "sh", "-c", Show);
            s.Do("run", "--rm", "--env-file", Path.Combine(tmp, "nosuch.env"), I, "true");
            s.Do("run", "--rm", "--hostname", "box.example", "--workdir", "/srv/app", "--user", "1000:1000", I,
                "sh", "-c", "hostname; pwd; id; touch x 2>&1 | head -c 40; echo");
            s.Do("run", "--rm", "--entrypoint", "", I, "echo", "no entrypoint");
            s.Do("run", "--rm", "--entrypoint", "", I);
            s.Do("run", "--rm", I, "sh", "-c", "exit 7");
            s.Do("ps", "-a", "-q");

            // stop signals and timeouts
            s.Ok("run", "-d", "--name", "sig", "--stop-signal", "USR1", "--stop-timeout", "5", I,
                "sh", "-c", "trap 'echo got usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done");
            s.WaitFor("sig ready", () => s.Quiet("logs", "sig").Stdout.Contains("ready"));
            s.Do("inspect", "--format", "{{.Config.StopSignal}} {{.Config.StopTimeout}}", "sig");
            s.Do("stop", "sig");
            s.Do("logs", "sig");
            s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "sig");
            s.Ok("run", "-d", "--name", "stubborn", "--stop-timeout", "1", I, "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done");
            s.WaitFor("stubborn ready", () => s.Quiet("logs", "stubborn").Stdout.Contains("ready"));
            s.Do("stop", "stubborn");
            s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}", "stubborn");
            s.Ok("run", "-d", "--name", "hup", I, "sh", "-c", "trap 'echo got hup' HUP; echo ready; while true; do sleep 0.1; done");
            s.WaitFor("hup ready", () => s.Quiet("logs", "hup").Stdout.Contains("ready"));
            s.Do("kill", "-s", "HUP", "hup");
            s.WaitFor("the hup line", () => s.Quiet("logs", "hup").Stdout.Contains("got hup"));
            s.Do("logs", "hup");
            s.Do("kill", "-s", "SIGHUP", "hup");
            s.Do("kill", "-s", "1", "hup");
            s.Do("inspect", "--format", "{{.State.Status}}", "hup");
            s.Do("pause", "hup");
            s.Do("ps", "--filter", "name=hup", "--format", "{{.Names}} {{.Status}} {{.State}}");
            s.Do("ps", "--filter", "status=paused", "--format", "{{.Names}}");
            s.Do("pause", "hup");
            s.Do("kill", "-s", "HUP", "hup");
            s.Do("unpause", "hup");
            s.Do("unpause", "hup");
            s.Do("ps", "--filter", "name=hup", "--format", "{{.Names}} {{.Status}} {{.State}}");
            s.Do("pause", "sig");

            // create, then start and attach
            s.Do("create", "--name", "made", I, "sh", "-c", "echo made ran; echo made err >&2; exit 3");
            s.Do("ps", "-a", "--filter", "name=made", "--format", "{{.Names}} {{.Status}} {{.State}}");
            s.Do("start", "-a", "made");
            s.Do("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "made");
            s.Ok("create", "-i", "--name", "reader", I, "sh", "-c", "while read l; do echo got $l; done; echo eof");
            s.DoWith("one\ntwo\n", null, "start", "-ai", "reader");
            s.Do("diff", "sig");
            s.Ok("run", "--name", "changer", I, "sh", "-c", "mkdir /opt/d; echo x > /opt/d/f; rm /www/index.html; echo y >> /etc/passwd");
            s.DoWith(null, SortLines, "diff", "changer");
            s.Do("diff", "nosuch");

            // inspect by type, ls as JSON, ps with sizes
            s.Ok("volume", "create", "hup");
            s.Do("inspect", "--type", "container", "--format", "{{.Name}}", "hup");
            s.Do("inspect", "--type", "volume", "--format", "{{.Name}} {{.Driver}}", "hup");
            s.Do("inspect", "--type", "network", "--format", "{{.Name}} {{.Driver}}", "bridge");
            s.Do("inspect", "--type", "image", "--format", "{{json .RepoTags}}", I);
            // dockerd 20.10 says "no such image: hup: No such image: hup:latest"; docker 23+ (and Berth) "No such image: hup"
            s.Known("20.10's doubled wording", "inspect", "--type", "image", "hup");
            s.Do("inspect", "--type", "nonsense", "hup");
            s.Do("inspect", "--format", "{{.Name}}", "hup");
            // json lines; CreatedAt is Go's time.String() of the creation (not RFC3339)
            string Created(string t) => Regex.Replace(t, @"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \w+", "<created>");
            s.DoWith(null, Created, "container", "ls", "--filter", "name=hup", "--format", "json");
            s.DoWith(null, Created, "container", "ls", "-a", "--filter", "name=made", "--format", "{{json .}}");
            s.Do("ps", "-s", "--filter", "name=hup");
            s.Do("ps", "-a", "-s", "--filter", "name=changer", "--format", "{{.Names}} {{.Size}}");
            s.Do("rm", "-f", "sig", "stubborn", "hup", "made", "reader", "changer");
            s.Do("volume", "rm", "hup");
        }
        finally { Directory.Delete(tmp, true); }
    });
}
