using System.Diagnostics;
using Berth.Images.Tests.Support;

namespace Berth.DockerApi.Tests;

/// <summary>
/// An image saved by a real dockerd (Debian's docker.io) loads into Berth and runs through Berth's API;
/// an image Berth made (docker commit through Berth's API), saved by `berth save`, loads into that dockerd and runs there.
/// The test starts its own dockerd on a private socket with its own data/exec roots and no bridge,
/// iptables or forwarding (it never touches the host's networking), and stops it by PID.
/// </summary>
public sealed class DockerdImageTests(ServiceFixture fx) : IClassFixture<ServiceFixture>
{
    const string Dockerd = "/usr/sbin/dockerd";

    [Fact]
    public void Docker_archives_go_both_ways_between_dockerd_and_berth()
    {
        if (!File.Exists(Dockerd)) Assert.Fail($"{Dockerd} is missing: scripts/install-deps.sh installs docker.io");
        var dir = Directory.CreateTempSubdirectory("berth-dockerd-").FullName;
        Process? dockerd = null;
        try
        {
            var sock = Path.Combine(dir, "docker.sock");
            var psi = new ProcessStartInfo(Dockerd) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { "-H", "unix://" + sock, "--data-root", Path.Combine(dir, "data"), "--exec-root", Path.Combine(dir, "exec"),
                "--pidfile", Path.Combine(dir, "docker.pid"), "--bridge", "none", "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false" })
                psi.ArgumentList.Add(a);
            dockerd = Process.Start(psi)!;
            dockerd.BeginErrorReadLine();
            dockerd.BeginOutputReadLine();
            var env = new Dictionary<string, string> { ["DOCKER_HOST"] = "unix://" + sock, ["HOME"] = fx.Home, ["DOCKER_CONFIG"] = Path.Combine(fx.Home, ".docker") };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Tools.Run(ServiceFixture.DockerCli, ["version"], env).ExitCode != 0)
            {
                Assert.False(dockerd.HasExited, $"dockerd exited with {(dockerd.HasExited ? dockerd.ExitCode : 0)}");
                Assert.True(DateTime.UtcNow < deadline, "dockerd did not answer in 60 s");
                Thread.Sleep(200);
            }
            // a busybox-static rootfs imported into dockerd, then saved by it
            var rootfs = Path.Combine(dir, "rootfs");
            Directory.CreateDirectory(Path.Combine(rootfs, "bin"));
            File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", "sh"), "busybox");
            var tar = Path.Combine(dir, "rootfs.tar");
            Assert.Equal(0, Tools.Run("tar", ["-C", rootfs, "-cf", tar, "."]).ExitCode);
            var imp = Tools.Run(ServiceFixture.DockerCli, ["import", "-c", "CMD [\"/bin/sh\"]", "-c", "ENV PATH=/bin", "-c", "LABEL made.by=dockerd", tar, "fromdockerd/busybox:1"], env);
            Assert.True(imp.ExitCode == 0, imp.ToString());
            var archive = Path.Combine(dir, "saved.tar");
            var save = Tools.Run(ServiceFixture.DockerCli, ["save", "-o", archive, "fromdockerd/busybox:1"], env);
            Assert.True(save.ExitCode == 0, save.ToString());

            var load = fx.Berth("load", "-i", archive);
            Assert.True(load.ExitCode == 0, load.ToString());
            Assert.Contains("fromdockerd/busybox:1", load.Stdout);
            Assert.Equal("dockerd", fx.DockerOk("image", "inspect", "--format", "{{index .Config.Labels \"made.by\"}}", "fromdockerd/busybox:1").Trim());
            Assert.Equal("ran /bin\n", fx.DockerOk("run", "--rm", "--network", "none", "fromdockerd/busybox:1", "sh", "-c", "echo ran $PATH"));

            // The other way: an image Berth made, saved by `berth save`, runs on dockerd.
            fx.DockerOk("run", "--name", "mk-dockerd", "--network", "none", "fromdockerd/busybox:1", "sh", "-c", "echo made-by-berth > /made");
            fx.DockerOk("commit", "mk-dockerd", "fromberth/busybox:1");
            fx.DockerOk("rm", "mk-dockerd");
            var back = Path.Combine(dir, "from-berth.tar");
            var bsave = fx.Berth("save", "-o", back, "fromberth/busybox:1");
            Assert.True(bsave.ExitCode == 0, bsave.ToString());
            var dload = Tools.Run(ServiceFixture.DockerCli, ["load", "-i", back], env);
            Assert.True(dload.ExitCode == 0, dload.ToString());
            var drun = Tools.Run(ServiceFixture.DockerCli, ["run", "--rm", "--network", "none", "fromberth/busybox:1", "sh", "-c", "read l </made; echo $l"], env);
            Assert.True(drun.ExitCode == 0, drun.ToString());
            Assert.Equal("made-by-berth\n", drun.Stdout);
            fx.DockerOk("rmi", "fromberth/busybox:1");
            fx.DockerOk("rmi", "fromdockerd/busybox:1");
        }
        finally
        {
            if (dockerd is not null)
            {
                if (!dockerd.HasExited)
                {
                    Tools.Run("kill", ["-TERM", dockerd.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                    if (!dockerd.WaitForExit(30_000)) { dockerd.Kill(); dockerd.WaitForExit(10_000); }
                }
                dockerd.Dispose();
            }
            foreach (var line in File.ReadAllLines("/proc/self/mountinfo").Reverse())
            {
                var mp = line.Split(' ')[4];
                if (mp.StartsWith(dir, StringComparison.Ordinal)) Tools.Run("umount", ["-l", mp]);
            }
            Directory.Delete(dir, true);
        }
    }
}
