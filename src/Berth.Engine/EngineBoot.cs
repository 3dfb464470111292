using Berth.Engine.Containers;

namespace Berth.Engine;

/// <summary>`berth system boot`: what a systemd unit runs once after the host boots (docker's
/// daemon start, podman's podman-restart.service). Networks get their bridges and rules back, then
/// every container whose restart policy is `always`, or `unless-stopped` and was not stopped by the
/// user, is started; a pod comes back with its containers (its infra starts with the first one).
/// Idempotent: running containers are left alone, so a second run starts nothing.</summary>
public static class EngineBoot
{
    /// <summary>One line per object started ("container NAME", "pod NAME"), reported as it happens;
    /// failures are reported and the rest still started. Returns the number of failures.</summary>
    public static int Run(ContainerManager mgr, Action<string> started, Action<string> failed)
    {
        if (Directory.Exists(Path.Combine(mgr.Store.Root, "networks")))
        {
            try { new Networking.NetworkManager(Networking.NetworkOptions.ForRoot(mgr.Store.Root)).Restore(); }
            catch (Exception e) when (e is EngineException or IOException or Networking.NetworkException or Linux.SyscallException)
            { failed("networks: " + e.Message); }
        }
        var pods = new Pods.PodManager(mgr);
        var podsBefore = new HashSet<string>(StringComparer.Ordinal);
        var failures = 0;
        // Oldest first, as they were created (a container another one joins comes up first).
        foreach (var c in mgr.List().AsEnumerable().Reverse())
        {
            if (!ShouldStart(c)) continue;
            string? podName = null;
            var podWasUp = true;
            if (c.Pod is not null)
            {
                try
                {
                    var p = pods.Store.Load(c.Pod);
                    podName = p.Name;
                    podWasUp = Pods.PodManager.InfraAlive(p) || podsBefore.Contains(p.Id);
                    podsBefore.Add(p.Id);
                }
                catch (EngineException) { }
            }
            try
            {
                mgr.Start(c.Id, hold: false);
                if (!podWasUp && podName is not null) started("pod " + podName);
                started("container " + c.BareName);
            }
            catch (EngineException e)
            {
                failures++;
                failed($"container {c.BareName}: {e.Message}");
            }
        }
        return failures;
    }

    /// <summary>Docker's rule at daemon start: `always`, and `unless-stopped` unless stopped by the user.
    /// A container the user stopped with an `always` policy comes back too, as with docker.</summary>
    public static bool ShouldStart(ContainerRecord c) =>
        !c.State.Running && !c.State.Paused && c.State.Status != "created" &&
        c.HostConfig.RestartPolicy.Name switch
        {
            "always" => true,
            "unless-stopped" => c.ManuallyStopped != true,
            _ => false,
        };
}
