using Berth.Engine.Containers;

namespace Berth.Engine.Events;

/// <summary>Container events with docker's attributes: the container's labels, image and name,
/// plus what the action adds (exitCode for die, signal for kill, oldName for rename).</summary>
public static class ContainerEvents
{
    public static void Emit(string root, ContainerRecord c, string action, params (string Key, string Value)[] extra)
    {
        var attrs = new Dictionary<string, string>(c.Config.Labels, StringComparer.Ordinal)
        {
            ["image"] = c.Config.Image.Length > 0 ? c.Config.Image : c.Rootfs,
            ["name"] = c.BareName,
        };
        foreach (var (k, v) in extra) attrs[k] = v;
        EventJournal.Emit(root, "container", action, c.Id, attrs);
    }
}
