namespace Berth.Runtime;

/// <summary>runtime-spec lifecycle states.</summary>
public enum ContainerStatus { Creating, Created, Running, Paused, Stopped }

public static class ContainerStatusExtensions
{
    public static string ToSpecString(this ContainerStatus s) => s switch
    {
        ContainerStatus.Creating => "creating",
        ContainerStatus.Created => "created",
        ContainerStatus.Running => "running",
        ContainerStatus.Paused => "paused",
        _ => "stopped",
    };

    public static bool CanStart(this ContainerStatus s) => s == ContainerStatus.Created;
    public static bool CanKill(this ContainerStatus s) => s is ContainerStatus.Created or ContainerStatus.Running or ContainerStatus.Paused;
    public static bool CanExec(this ContainerStatus s) => s is ContainerStatus.Created or ContainerStatus.Running;
    public static bool CanPause(this ContainerStatus s) => s is ContainerStatus.Running or ContainerStatus.Created;
    public static bool CanResume(this ContainerStatus s) => s == ContainerStatus.Paused;
    public static bool CanDeleteWithoutForce(this ContainerStatus s) => s is ContainerStatus.Stopped or ContainerStatus.Created;
}
