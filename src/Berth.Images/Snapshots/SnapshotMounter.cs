using Berth.Linux;
using static Berth.Linux.Interop.Libc;

namespace Berth.Images.Snapshots;

/// <summary>Performs the mounts a snapshotter returned (for the engine and for tests): overlay
/// through <see cref="OverlayMount"/> (no layer-count limit), binds with mount(2).</summary>
public static class SnapshotMounter
{
    public static void Mount(IReadOnlyList<SnapshotMount> mounts, string target)
    {
        foreach (var m in mounts)
        {
            switch (m.Type)
            {
                case "overlay":
                {
                    string? upper = null, work = null;
                    List<string> lowers = [], extra = [];
                    foreach (var o in m.Options)
                    {
                        if (o.StartsWith("lowerdir=", StringComparison.Ordinal)) lowers.AddRange(o["lowerdir=".Length..].Split(':'));
                        else if (o.StartsWith("upperdir=", StringComparison.Ordinal)) upper = o["upperdir=".Length..];
                        else if (o.StartsWith("workdir=", StringComparison.Ordinal)) work = o["workdir=".Length..];
                        else extra.Add(o);
                    }
                    OverlayMount.Mount(lowers, upper, work, target, extra);
                    break;
                }
                case "bind":
                {
                    var flags = MS_BIND | (m.Options.Contains("rbind") ? MS_REC : 0);
                    Sys.Mount(m.Source, target, null, flags, null, $"bind {m.Source} on {target}");
                    if (m.Options.Contains("ro"))
                        Sys.Mount(null, target, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null, $"read-only remount of {target}");
                    break;
                }
                default:
                    throw new SnapshotException(SnapshotError.InvalidArgument, $"unknown mount type \"{m.Type}\"");
            }
        }
    }

    public static void Unmount(string target) => OverlayMount.Unmount(target);
}
