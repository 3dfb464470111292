using System.Globalization;
using Berth.Engine.Containers;

namespace Berth.Engine.Events;

/// <summary>Events of volumes, networks and execs in docker's shapes (moby's daemon/events.go callers):
/// each is emitted by the engine method that performs the action, so the CLI and the Docker API
/// produce the same events.</summary>
public static class ObjectEvents
{
    /// <summary>volume create|destroy (driver), mount (container, destination, driver, propagation,
    /// read/write), unmount (container, driver); the actor is the volume's name.</summary>
    public static void Volume(string root, string action, string name, params (string Key, string Value)[] extra)
    {
        var attrs = new Dictionary<string, string>(StringComparer.Ordinal) { ["driver"] = "local" };
        foreach (var (k, v) in extra) attrs[k] = v;
        EventJournal.Emit(root, "volume", action, name, attrs);
    }

    /// <summary>A container's named volumes mounted (at its start) or unmounted (at its exit).</summary>
    public static void VolumeMounts(string root, ContainerRecord c, bool mount)
    {
        foreach (var m in c.Mounts.Where(m => m.Type == "volume" && m.Name is { Length: > 0 }))
        {
            if (mount)
                Volume(root, "mount", m.Name!, ("container", c.Id), ("destination", m.Destination),
                    ("propagation", m.Propagation), ("read/write", m.RW ? "true" : "false"));
            else
                Volume(root, "unmount", m.Name!, ("container", c.Id));
        }
    }

    /// <summary>network create|destroy (name, type), connect|disconnect (container, name, type); the actor
    /// is the network's id.</summary>
    public static void Network(string root, string action, string id, string name, string driver, string? container = null)
    {
        var attrs = new Dictionary<string, string>(StringComparer.Ordinal) { ["name"] = name, ["type"] = driver };
        if (container is not null) attrs["container"] = container;
        EventJournal.Emit(root, "network", action, id, attrs);
    }

    /// <summary>The command as docker puts it in exec_create/exec_start's Action ("exec_start: sh -c ls").</summary>
    static string Command(IReadOnlyList<string> cmd) => string.Join(' ', cmd);

    public static void ExecCreate(string root, ContainerRecord c, string execId, IReadOnlyList<string> cmd) =>
        ContainerEvents.Emit(root, c, "exec_create: " + Command(cmd), ("execID", execId));

    public static void ExecStart(string root, ContainerRecord c, string execId, IReadOnlyList<string> cmd) =>
        ContainerEvents.Emit(root, c, "exec_start: " + Command(cmd), ("execID", execId));

    public static void ExecDie(string root, ContainerRecord c, string execId, int exitCode) =>
        ContainerEvents.Emit(root, c, "exec_die", ("execID", execId), ("exitCode", exitCode.ToString(CultureInfo.InvariantCulture)));
}
