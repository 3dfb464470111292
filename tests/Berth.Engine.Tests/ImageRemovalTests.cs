using System.Diagnostics;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`rmi` and `image prune` with dockerd's rules (the engine's ImageRemoval, shared with the
/// Docker API): children made by commit, containers running or stopped, several names.</summary>
public class ImageRemovalTests
{
    static string Import(EngineSandbox s, string reference)
    {
        var tar = Path.Combine(s.Dir, "rootfs.tar");
        if (!File.Exists(tar))
        {
            using var p = Process.Start(new ProcessStartInfo("tar", ["-C", s.Rootfs, "-cf", tar, "."]))!;
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
        }
        return s.Ok("import", tar, reference).Stdout.Trim();
    }

    static string Short(string id) => id[7..19];

    [Fact]
    public void Rmi_refuses_parents_and_images_of_running_containers_as_dockerd() => EngineSandbox.Run(s =>
    {
        var baseId = Import(s, "local/base:1");
        s.Ok("tag", "local/base:1", "local/base:2");
        s.Ok("run", "--name", "mk", "local/base:1", "sh", "-c", "echo hi > /hello");
        var child = s.Ok("commit", "mk", "local/child:1").Stdout.Trim();
        s.Ok("rm", "mk");
        // one of several tags: only untagged
        Assert.Equal(["Untagged: local/base:2"], s.Ok("rmi", "local/base:2").Lines);
        // by ID, with a child: a hard conflict, -f or not
        foreach (var args in new[] { new[] { "rmi", Short(baseId) }, ["rmi", "-f", Short(baseId)], ["rmi", baseId] })
            EngineSandbox.AssertOneLineError(s.Berth(args), 1, $"conflict: unable to delete {Short(baseId)} (cannot be forced) - image has dependent child images");
        // the last name of a parent: untagged, the image stays for its child
        Assert.Equal(["Untagged: local/base:1"], s.Ok("rmi", "local/base:1").Lines);
        s.Ok("tag", baseId, "local/base:1");

        // a running container's image, by name with one name: must force; -f untags only
        s.Ok("run", "-d", "--name", "run1", "local/child:1", "sleep", "1000");
        EngineSandbox.AssertOneLineError(s.Berth("rmi", "local/child:1"), 1, "(must force) - container");
        EngineSandbox.AssertOneLineError(s.Berth("rmi", Short(child)), 1, $"conflict: unable to delete {Short(child)} (cannot be forced) - image is being used by running container");
        Assert.Equal(["Untagged: local/child:1"], s.Ok("rmi", "-f", "local/child:1").Lines);
        Assert.Equal(child, s.Ok("image", "inspect", "--format", "{{.Id}}", child).Stdout.Trim());
        s.Ok("rm", "-f", "run1");
        s.Ok("tag", child, "local/child:1");

        // a stopped container's image: refused without -f; -f untags and deletes the image, the container stays
        s.Ok("run", "--name", "st", "local/child:1", "true");
        EngineSandbox.AssertOneLineError(s.Berth("rmi", "local/child:1"), 1, $"conflict: unable to remove repository reference \"local/child:1\" (must force) - container");
        var forced = s.Ok("rmi", "-f", "local/child:1").Lines;
        Assert.Equal(["Untagged: local/child:1", "Deleted: " + child], forced);
        Assert.Equal("exited", s.Ok("inspect", "--format", "{{.State.Status}}", "st").Stdout.Trim());
        s.Ok("rm", "st");

        // by ID with names in two repositories: must be forced; -f untags each (sorted) and deletes
        s.Ok("tag", "local/base:1", "other/name:x");
        EngineSandbox.AssertOneLineError(s.Berth("rmi", Short(baseId)), 1, $"conflict: unable to delete {Short(baseId)} (must be forced) - image is referenced in multiple repositories");
        var all = s.Ok("rmi", "-f", Short(baseId)).Lines;
        Assert.Equal(["Untagged: local/base:1", "Untagged: other/name:x", "Deleted: " + baseId], all.Take(3));
        Assert.Empty(s.Ok("images", "-q").Lines);
    });

    [Fact]
    public void Image_prune_keeps_parents_until_their_children_go() => EngineSandbox.Run(s =>
    {
        var parent = Import(s, "local/p:1");
        s.Ok("run", "--name", "m1", "local/p:1", "sh", "-c", "echo 1 > /one");
        var child = s.Ok("commit", "m1", "local/c:1").Stdout.Trim();
        s.Ok("rm", "m1");
        // the parent loses its name: dangling, but a child needs it
        s.Ok("rmi", "local/p:1");
        Assert.DoesNotContain("deleted:", s.Ok("image", "prune", "-f").Stdout);
        Assert.Equal(parent, s.Ok("image", "inspect", "--format", "{{.Id}}", parent).Stdout.Trim());
        // the child goes: its dangling parent goes with it (dockerd's prune of parents)
        var r = s.Ok("rmi", "local/c:1").Lines;
        Assert.Equal("Untagged: local/c:1", r[0]);
        Assert.Contains("Deleted: " + child, r);
        Assert.Contains("Deleted: " + parent, r);
        // prune -a: children first, then their parents
        var p2 = Import(s, "local/p:2");
        s.Ok("run", "--name", "m2", "local/p:2", "sh", "-c", "echo 2 > /two");
        var c2 = s.Ok("commit", "m2", "local/c:2").Stdout.Trim();
        s.Ok("rm", "m2");
        var pruned = s.Ok("image", "prune", "-a", "-f").Lines;
        Assert.True(Array.IndexOf(pruned, "deleted: " + c2) is >= 0 and var ci && Array.IndexOf(pruned, "deleted: " + p2) > ci, string.Join("\n", pruned));
        Assert.Empty(s.Ok("images", "-aq").Lines);
    });
}
