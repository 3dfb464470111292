using System.Text.RegularExpressions;

namespace Berth.DockerApi.Tests;

/// <summary>More of the Docker user's day (see <see cref="DockerDayTests"/>): volumes with the local
/// driver's options (tmpfs, a bind of a host directory, --mount volume-opt, --mount tmpfs) mounted while
/// used and unmounted after the last user, and image removal with children, containers and several
/// names, compared with dockerd.</summary>
public sealed partial class DockerDayTests
{
    /// <summary>The side's mounts at a volume's _data, as the host sees them (/proc/self/mountinfo).</summary>
    int VolumeMounts(DaySide s, string volume)
    {
        var root = s.IsBerth ? berth.Root : Path.Combine(dockerd.Dir, "data");
        var path = Path.Combine(root, "volumes", volume, "_data");
        return File.ReadLines("/proc/self/mountinfo").Count(l => l.Split(' ') is { Length: > 4 } f && f[4] == path);
    }

    /// <summary>A volume's path under the side's data root reads the same on both sides.</summary>
    static string VolumePaths(string s) => VolumePathRe().Replace(s, "ROOT/volumes/");
    [GeneratedRegex(@"/[^\s':]*/volumes/")] private static partial Regex VolumePathRe();

    const string MountOf = "| sed 's/.* - //'"; // the filesystem part of a mountinfo line (the peer group before it differs)

    [Fact]
    public void Volumes_with_options() => Compare(s =>
    {
        var host = Path.Combine(Path.GetTempPath(), "berth-day-vol-host");
        if (Directory.Exists(host)) Directory.Delete(host, true);
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "f"), "hi\n");
        try
        {
            // options kept and shown; bad ones refused as the local driver does
            s.Do("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=64m,uid=1000", "vt");
            s.Do("volume", "inspect", "--format", "{{json .Options}} {{.Driver}} {{.Scope}}", "vt");
            s.Do("volume", "create", "-o", "foo=bar", "v0");
            s.Do("volume", "create", "-o", "type=tmpfs", "v0");
            s.Do("volume", "create", "-o", "size=1m", "v0");
            s.Do("volume", "create", "-d", "nosuch", "vx");
            s.Do("volume", "ls", "-q");

            // two users share one mount; it goes with the last one
            s.Ok("run", "-d", "--name", "c1", "-v", "vt:/d", I, "sleep", "1000");
            s.Ok("run", "-d", "--name", "c2", "-v", "vt:/d", I, "sleep", "1000");
            s.Note($"vt mounts with two users: {VolumeMounts(s, "vt")}");
            s.Do("exec", "c1", "sh", "-c", "echo x > /d/x");
            s.Do("exec", "c2", "sh", "-c", $"cat /d/x; stat -c '%u %a' /d; grep ' /d ' /proc/self/mountinfo {MountOf}");
            s.Do("stop", "-t", "0", "c1");
            s.Note($"vt mounts after one stopped: {VolumeMounts(s, "vt")}");
            s.Do("exec", "c2", "cat", "/d/x");
            s.Do("kill", "c2");
            s.WaitFor("vt unmounted", () => VolumeMounts(s, "vt") == 0);
            s.Note("vt mounts after the last was killed: 0");
            s.Do("start", "c2");
            s.Note($"vt mounts after a start: {VolumeMounts(s, "vt")}");
            s.Do("exec", "c2", "ls", "-a", "/d");
            s.Do("volume", "rm", "vt");
            s.Do("rm", "-f", "c1", "c2");
            s.WaitFor("vt unmounted", () => VolumeMounts(s, "vt") == 0);
            s.Do("volume", "rm", "vt");

            // a bind of a host directory; removing the volume leaves the directory alone
            s.Do("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=" + host, "vb");
            s.Do("run", "--rm", "-v", "vb:/d", I, "sh", "-c", "cat /d/f; echo new > /d/g; ls /d");
            s.Note($"vb mounts after: {VolumeMounts(s, "vb")}; host dir: {string.Join(",", Directory.EnumerateFiles(host).Select(Path.GetFileName).Order(StringComparer.Ordinal))} g={File.ReadAllText(Path.Combine(host, "g")).Trim()}");
            s.Do("volume", "rm", "vb");
            s.Note($"host dir after volume rm: {string.Join(",", Directory.EnumerateFiles(host).Select(Path.GetFileName).Order(StringComparer.Ordinal))}");
            // a device that does not exist: the start fails with dockerd's words
            s.Do("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/nonexistent-berth-day", "vbad");
            s.DoWith(null, VolumePaths, "run", "--name", "bad", "-v", "vbad:/d", I, "true");
            s.Note($"vbad mounts after: {VolumeMounts(s, "vbad")}");
            s.Do("rm", "bad");
            s.Do("volume", "rm", "vbad");

            // --mount: volume-driver/volume-opt create the volume with those options; tmpfs size and mode
            s.Do("run", "--rm", "--mount", "type=volume,src=mv,dst=/d,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m",
                I, "sh", "-c", $"grep ' /d ' /proc/self/mountinfo {MountOf}");
            s.Do("volume", "inspect", "--format", "{{json .Options}}", "mv");
            s.Note($"mv mounts after: {VolumeMounts(s, "mv")}");
            s.Do("run", "--rm", "--mount", "type=volume,src=mv2,dst=/d,volume-opt=foo=bar", I, "true");
            s.Do("run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", I, "sh", "-c", $"grep ' /t ' /proc/self/mountinfo {MountOf}; stat -c %a /t");
            s.Do("volume", "ls", "-q");
            s.Do("volume", "rm", "mv");
        }
        finally { Directory.Delete(host, true); }
    });

    [Fact]
    public void Image_removal_with_children_containers_and_names() => Compare(s =>
    {
        var baseId = s.Ok("image", "inspect", "--format", "{{.Id}}", I).Stdout.Trim()[7..19];
        s.Ok("tag", I, "base:1");
        s.Ok("tag", I, "base:2");
        s.Ok("run", "--name", "mk", I, "sh", "-c", "echo hi > /hello");
        var child = s.Ok("commit", "mk", "child:1").Stdout.Trim()[7..19];
        s.Ok("rm", "mk");
        s.Do("image", "inspect", "--format", "{{.Parent}}", "child:1");
        // one of several tags: untagged only
        s.Do("rmi", "base:2");
        // a parent, by ID, -f or not: dockerd's hard conflict
        s.Do("rmi", baseId);
        s.Do("rmi", "-f", baseId);
        s.Do("rmi", "base:1");

        // a running container's image
        s.Ok("run", "-d", "--name", "r1", "child:1", "sleep", "1000");
        s.Do("rmi", "child:1");
        s.Do("rmi", child);
        s.Do("rmi", "-f", "child:1");
        s.Do("image", "inspect", "--format", "{{.Id}}", child);
        s.Ok("rm", "-f", "r1");
        s.Ok("tag", child, "child:1");
        // names in several repositories, by ID
        s.Ok("tag", "child:1", "other:x");
        s.Do("rmi", child);
        s.Do("rmi", "other:x");
        // a stopped container's image: -f untags and deletes it, the container stays
        s.Ok("run", "--name", "st", "child:1", "true");
        s.Do("rmi", "child:1");
        s.Do("rmi", "-f", "child:1");
        s.Do("ps", "-a", "--filter", "name=st", "--format", "{{.Names}} {{.Status}}");
        s.Ok("rm", "st");

        // a parent without a name stays while its child needs it, and goes with it
        s.Ok("run", "--name", "m0", I, "sh", "-c", "echo 0 > /zero");
        var parent = s.Ok("commit", "m0", "p:1").Stdout.Trim()[7..19];
        s.Ok("rm", "m0");
        s.Ok("run", "--name", "m1", "p:1", "sh", "-c", "echo 1 > /one");
        s.Ok("commit", "m1", "c:1");
        s.Ok("rm", "m1");
        s.Do("rmi", "p:1");
        s.Quiet("image", "prune", "-f");
        s.Do("image", "inspect", "--format", "{{.Id}}", parent);
        s.Do("rmi", "c:1");
        // gone with its child; dockerd words a missing short ID as "no such image: ID: No such image: ID:latest"
        s.Known("inspect's message for a missing image ID", "image", "inspect", "--format", "{{.Id}}", parent);
        s.Do("images", "--filter", "reference=child", "--filter", "reference=p", "-q");
    });
}
