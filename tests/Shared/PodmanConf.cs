namespace Berth.Tests.Shared;

/// <summary>The containers.conf a root podman needs on these machines (shared/DESIGN.md): root lacks
/// CAP_SYS_RESOURCE, so podman's default ulimits must stay within the hard limits; no systemd, so
/// cgroupfs and file events.</summary>
public static class PodmanConf
{
    /// <summary>Writes DIR/containers.conf; returns the environment that points podman at it.</summary>
    public static Dictionary<string, string> Write(string dir)
    {
        var conf = Path.Combine(dir, "containers.conf");
        File.WriteAllText(conf, """
            [containers]
            default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            """);
        return new() { ["CONTAINERS_CONF"] = conf };
    }
}
