using System.Diagnostics;
using System.Globalization;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>
/// A private Debian dockerd (20.10) for side-by-side transcripts: its own data root, exec root, socket and
/// pidfile under a temp dir; its default bridge is a bridge this fixture creates (own name, 10.219.N.0/24),
/// user-defined networks come from 10.220.N.0/24; no iptables, masquerade or forwarding changes (published
/// ports go through docker-proxy, the userland proxy), so it never touches the host's firewall or the other
/// tests' bridges. It also holds the day's image: a busybox-static rootfs (every applet linked in /bin, a
/// passwd/group, /www/index.html) imported into this dockerd and saved as a docker archive
/// (<see cref="Archive"/>) that Berth loads. Stopped by PID; its bridges and mounts are removed after.
/// </summary>
public sealed class DockerdFixture : IDisposable
{
    const string Dockerd = "/usr/sbin/dockerd";
    public const string Image = "day/busybox:1";
    // short: the containerd sockets under the exec root must fit sun_path
    public string Dir { get; } = Path.Combine("/tmp", "bdd-" + Guid.NewGuid().ToString("N")[..8]);
    public string Socket => Path.Combine(Dir, "d.sock");
    public string Home => Path.Combine(Dir, "home");
    public string Archive => Path.Combine(Dir, "day-busybox.tar");
    public string Bridge { get; }
    readonly Process _dockerd;

    public DockerdFixture()
    {
        if (!File.Exists(Dockerd)) throw new InvalidOperationException($"{Dockerd} is missing: scripts/install-deps.sh installs docker.io");
        Directory.CreateDirectory(Home);
        var sfx = Guid.NewGuid().ToString("N")[..8];
        Bridge = "dd" + sfx;
        var n = Random.Shared.Next(0, 250);
        Sh($"ip link add name {Bridge} type bridge && ip addr add 10.219.{n}.1/24 dev {Bridge} && ip link set {Bridge} up");
        var psi = new ProcessStartInfo(Dockerd) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-H", "unix://" + Socket, "--data-root", Path.Combine(Dir, "data"), "--exec-root", Path.Combine(Dir, "x"),
            "--pidfile", Path.Combine(Dir, "docker.pid"), "--bridge", Bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            "--userland-proxy=true", "--userland-proxy-path=/usr/sbin/docker-proxy",
            "--default-address-pool", $"base=10.220.{Random.Shared.Next(0, 250)}.0/24,size=26" })
            psi.ArgumentList.Add(a);
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        _dockerd = Process.Start(psi)!;
        _dockerd.BeginErrorReadLine();
        _dockerd.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Docker("version").ExitCode != 0)
        {
            if (_dockerd.HasExited) throw new InvalidOperationException($"dockerd exited with {_dockerd.ExitCode}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException("dockerd did not answer in 60 s");
            Thread.Sleep(200);
        }
        BuildImage();
    }

    void BuildImage()
    {
        var rootfs = Path.Combine(Dir, "rootfs");
        foreach (var d in new[] { "bin", "etc", "tmp", "www", "root" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        foreach (var applet in Sh("/bin/busybox --list").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            if (applet != "busybox") File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        File.WriteAllText(Path.Combine(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n");
        File.WriteAllText(Path.Combine(rootfs, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
        File.WriteAllText(Path.Combine(rootfs, "www", "index.html"), "hello from busybox httpd\n");
        Sh($"chmod 1777 {rootfs}/tmp");
        var tar = Path.Combine(Dir, "rootfs.tar");
        Sh($"tar --numeric-owner --owner=0 --group=0 -C {rootfs} -cf {tar} .");
        var imp = Docker("import", "-c", "CMD [\"/bin/sh\"]", "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            tar, Image);
        if (imp.ExitCode != 0) throw new InvalidOperationException("docker import: " + imp);
        var save = Docker("save", "-o", Archive, Image);
        if (save.ExitCode != 0) throw new InvalidOperationException("docker save: " + save);
    }

    public Dictionary<string, string> Env => new()
    {
        ["DOCKER_HOST"] = "unix://" + Socket, ["HOME"] = Home, ["DOCKER_CONFIG"] = Path.Combine(Home, ".docker"),
    };

    public ToolResult Docker(params string[] args) => Tools.Run(ServiceFixture.DockerCli, args, Env);

    static string Sh(string command)
    {
        var r = Tools.Run("/bin/sh", ["-c", command]);
        if (r.ExitCode != 0) throw new InvalidOperationException($"{command}: {r}");
        return r.Stdout;
    }

    public void Dispose()
    {
        // user networks' bridges are named br-<first 12 of the network id>
        var bridges = new List<string> { Bridge };
        try
        {
            var ids = Docker("ps", "-aq").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (ids.Length > 0) Docker(["rm", "-f", .. ids]);
            bridges.AddRange(Docker("network", "ls", "-q", "--filter", "driver=bridge").Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(id => "br-" + id[..12]));
            Docker("network", "prune", "-f");
            Docker("volume", "prune", "-f");
        }
        catch (TimeoutException) { }
        if (!_dockerd.HasExited)
        {
            Tools.Run("kill", ["-TERM", _dockerd.Id.ToString(CultureInfo.InvariantCulture)]);
            if (!_dockerd.WaitForExit(30_000)) { _dockerd.Kill(); _dockerd.WaitForExit(10_000); }
        }
        _dockerd.Dispose();
        foreach (var b in bridges)
            if (Directory.Exists("/sys/class/net/" + b)) Tools.Run("ip", ["link", "del", b]);
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo").Reverse())
        {
            var mp = line.Split(' ')[4];
            if (mp.StartsWith(Dir, StringComparison.Ordinal)) Tools.Run("umount", ["-l", mp]);
        }
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
