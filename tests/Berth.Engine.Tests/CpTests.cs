using System.Formats.Tar;
using Berth.Engine.Tests.Support;

namespace Berth.Engine.Tests;

/// <summary>`berth cp` both ways, with docker's path rules, on running and stopped containers; every
/// container path stays inside the container even through hostile symlinks.</summary>
public class CpTests
{
    static string Host(EngineSandbox s, string rel, string? content = null)
    {
        var p = Path.Combine(s.Dir, rel);
        if (content is not null) { Directory.CreateDirectory(Path.GetDirectoryName(p)!); File.WriteAllText(p, content); }
        return p;
    }

    [Fact]
    public void Copies_both_ways_with_a_running_container() => EngineSandbox.Run(s =>
    {
        s.RunDetached(["--name", "c"], "sleep", "1000");
        var src = Host(s, "in/hello.txt", "hello\n");
        s.Ok("cp", src, "c:/tmp/");
        Assert.Equal("hello\n", s.Ok("exec", "c", "cat", "/tmp/hello.txt").Stdout);
        s.Ok("cp", src, "c:/tmp/renamed.txt");                       // new name
        Assert.Equal("hello\n", s.Ok("exec", "c", "cat", "/tmp/renamed.txt").Stdout);
        s.Ok("exec", "c", "sh", "-c", "mkdir -p /out/sub && echo a > /out/a && echo b > /out/sub/b && chmod 640 /out/a && ln -s a /out/link");
        var dst = Host(s, "dst");
        Directory.CreateDirectory(dst);
        s.Ok("cp", "c:/out", dst);                                   // dir into existing dir
        Assert.Equal("a\n", File.ReadAllText(Path.Combine(dst, "out/a")));
        Assert.Equal("b\n", File.ReadAllText(Path.Combine(dst, "out/sub/b")));
        Assert.Equal("a", new FileInfo(Path.Combine(dst, "out/link")).LinkTarget);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(Path.Combine(dst, "out/a")));
        s.Ok("cp", "c:/out/.", Host(s, "contents"));                 // "/." copies the contents, dst created
        Assert.True(File.Exists(Host(s, "contents/a")) && File.Exists(Host(s, "contents/sub/b")));
        s.Ok("cp", "c:/out/a", Host(s, "single"));                   // file to a new name
        Assert.Equal("a\n", File.ReadAllText(Host(s, "single")));
        s.Ok("cp", "c:/out/sub/b", Host(s, "single"));               // file over an existing file
        Assert.Equal("b\n", File.ReadAllText(Host(s, "single")));
        s.Ok("cp", "-L", "c:/out/link", Host(s, "followed"));         // -L copies the link's target
        Assert.Equal("a\n", File.ReadAllText(Host(s, "followed")));
        s.Ok("cp", Host(s, "dst/out"), "c:/copied");                 // a host dir to a new container dir
        Assert.Equal("b\n", s.Ok("exec", "c", "cat", "/copied/sub/b").Stdout);
        Assert.Equal("root\n", s.Ok("exec", "c", "stat", "-c", "%U", "/copied/a").Stdout); // owned by the container's root
    });

    [Fact]
    public void Docker_path_errors_are_one_line() => EngineSandbox.Run(s =>
    {
        s.Ok("create", "--name", "c", "--rootfs", s.Rootfs, "true");
        var src = Host(s, "f.txt", "x");
        EngineSandbox.AssertOneLineError(s.Berth("cp", "c:/nope", Host(s, "o")), 125, "Could not find the file /nope in container c");
        EngineSandbox.AssertOneLineError(s.Berth("cp", src, "c:/nodir/"), 125, "no such directory");
        EngineSandbox.AssertOneLineError(s.Berth("cp", "c:/etc/passwd", Host(s, "nodir") + "/"), 125, "no such directory");
        EngineSandbox.AssertOneLineError(s.Berth("cp", "c:/etc", src), 125, "cannot copy directory");
        EngineSandbox.AssertOneLineError(s.Berth("cp", src, "nosuch:/tmp"), 125, "no such container: nosuch");
        EngineSandbox.AssertOneLineError(s.Berth("cp", src, Host(s, "g")), 125, "must specify at least one container source");
        EngineSandbox.AssertOneLineError(s.Berth("cp", Host(s, "missing"), "c:/tmp"), 125, "no such file or directory");
        EngineSandbox.AssertOneLineError(s.Berth("cp", "-", "c:/etc/passwd"), 125, "must be a directory");
        Assert.False(File.Exists(Host(s, "o")));
    });

    [Fact]
    public void Stopped_container_and_tar_streams_on_stdin_and_stdout() => EngineSandbox.Run(s =>
    {
        s.Ok("create", "--name", "c", "--rootfs", s.Rootfs, "cat", "/data/in.txt");
        // a tar on stdin into a stopped container
        var tarPath = Host(s, "in.tar");
        using (var f = File.Create(tarPath))
        using (var w = new TarWriter(f, TarEntryFormat.Pax))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "data/") { Mode = (UnixFileMode)0x1ed });
            var e = new PaxTarEntry(TarEntryType.RegularFile, "data/in.txt") { Mode = (UnixFileMode)0x1a4, Uid = 1234, Gid = 99 };
            e.DataStream = new MemoryStream("from tar\n"u8.ToArray());
            w.WriteEntry(e);
        }
        var r = s.BerthBinary(tarPath, "cp", "-a", "-", "c:/");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("from tar\n", s.Ok("start", "-a", "c").Stdout);
        Assert.Equal("1234", s.Ok("run", "--rm", "--rootfs", s.Rootfs, "stat", "-c", "%u", "/data/in.txt").Stdout.Trim()); // -a keeps ids
        // the tar of a path on stdout, named by its base name
        var o = s.BerthBinary(null, "cp", "c:/data", "-");
        Assert.Equal(0, o.ExitCode);
        using var tr = new TarReader(new MemoryStream(o.Stdout));
        var names = new List<string>();
        while (tr.GetNextEntry() is { } entry) names.Add(entry.Name);
        Assert.Equal(["data/", "data/in.txt"], names);
    });

    [Fact]
    public void Symlinks_in_the_container_cannot_lead_out_of_it() => EngineSandbox.Run(s =>
    {
        // The container's /esc points at the host's root (absolute and by climbing): inside the
        // container both resolve to the container's own root.
        File.CreateSymbolicLink(Path.Combine(s.Rootfs, "esc"), "/");
        File.CreateSymbolicLink(Path.Combine(s.Rootfs, "up"), "../../../../../../../../..");
        var secret = Host(s, "secret.txt", "host secret\n");
        s.RunDetached(["--name", "c"], "sleep", "1000");
        foreach (var link in new[] { "esc", "up" })
        {
            // reads: the host file is not reachable
            EngineSandbox.AssertOneLineError(s.Berth("cp", $"c:/{link}{secret}", Host(s, "got-" + link)), 125, "Could not find the file");
            Assert.False(File.Exists(Host(s, "got-" + link)));
            // writes: land inside the container, never on the host
            var name = $"payload-{link}-{Path.GetFileName(s.Dir)}";
            var payload = Host(s, name, "pwned\n");
            s.Ok("cp", payload, $"c:/{link}/tmp/");
            Assert.False(File.Exists("/tmp/" + name));
            Assert.Equal("pwned\n", File.ReadAllText(Path.Combine(s.Rootfs, "tmp", name)));
            s.Ok("cp", payload, $"c:/{link}/tmp/renamed-{name}");
            Assert.False(File.Exists("/tmp/renamed-" + name));
            Assert.True(File.Exists(Path.Combine(s.Rootfs, "tmp", "renamed-" + name)));
        }
        Assert.Equal("host secret\n", File.ReadAllText(secret));
        // a tar on stdin with a symlink member followed by a write through it stays inside too
        var tarPath = Host(s, "evil.tar");
        using (var f = File.Create(tarPath))
        using (var w = new TarWriter(f, TarEntryFormat.Pax))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "evil") { LinkName = "/" });
            var e = new PaxTarEntry(TarEntryType.RegularFile, $"evil/tmp/evil-{Path.GetFileName(s.Dir)}") { Mode = (UnixFileMode)0x1a4 };
            e.DataStream = new MemoryStream("x"u8.ToArray());
            w.WriteEntry(e);
        }
        s.BerthBinary(tarPath, "cp", "-", "c:/tmp");
        Assert.False(File.Exists($"/tmp/evil-{Path.GetFileName(s.Dir)}"));
    });

    [Fact]
    public void Writes_into_a_bind_mount_go_to_its_source() => EngineSandbox.Run(s =>
    {
        var vol = Host(s, "vol");
        Directory.CreateDirectory(vol);
        var src = Host(s, "f.txt", "to the mount\n");
        s.RunDetached(["--name", "run", "-v", vol + ":/data"], "sleep", "1000");
        s.Ok("cp", src, "run:/data/running.txt");
        Assert.Equal("to the mount\n", File.ReadAllText(Path.Combine(vol, "running.txt")));
        s.Ok("create", "--name", "stopped", "-v", vol + ":/data", "--rootfs", s.Rootfs, "true");
        s.Ok("cp", src, "stopped:/data/stopped.txt");
        Assert.Equal("to the mount\n", File.ReadAllText(Path.Combine(vol, "stopped.txt")));
        Assert.False(File.Exists(Path.Combine(s.Rootfs, "data", "stopped.txt")));
        s.Ok("cp", "stopped:/data/running.txt", Host(s, "back.txt"));
        Assert.Equal("to the mount\n", File.ReadAllText(Host(s, "back.txt")));
    });
}
