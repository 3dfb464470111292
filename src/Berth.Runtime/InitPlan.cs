using Berth.Oci.Runtime;

namespace Berth.Runtime;

/// <summary>What the runtime (the parent) knows about the init it is about to set up: the input of
/// the plan compiler (<see cref="Init.ContainerInit"/>), whose op list goes over the sync socket to
/// native/initexec.c, which makes no policy decisions of its own.</summary>
public sealed class InitPlan
{
    public string Id { get; set; } = "";
    /// <summary>Set for `exec`: join the container whose init has this host pid.</summary>
    public int ExecInitPid { get; set; }
    /// <summary>exec: where to open the container's mount namespace, when not /proc/PID/ns/mnt (an
    /// inherited descriptor: a process in a user namespace may not open the container init's).</summary>
    public string? ExecMntNs { get; set; }
    public Spec? SpecOrNull { get; set; }
    public Process? ProcessOrNull { get; set; }
    public Spec Spec { get => SpecOrNull!; set => SpecOrNull = value; }
    public Process Process { get => ProcessOrNull!; set => ProcessOrNull = value; }
    public string Rootfs { get; set; } = "";
    public string Bundle { get; set; } = "";
    public string? Fifo { get; set; }
    /// <summary>`run`: no fifo; after "ready" init waits for "start" on the sync socket (and exits
    /// if the runtime closes it instead).</summary>
    public bool StartOnSocket { get; set; }
    public bool NoPivot { get; set; }
    public bool NoNewKeyring { get; set; }
    /// <summary>No mount namespace in the config: the container shares the host's, its mounts are
    /// made there (under the rootfs, undone by delete) and it is entered with chroot, as runc does.</summary>
    public bool HostMountNs { get; set; }
    /// <summary>The spawning thread made "/" rslave in init's new mount namespace already.</summary>
    public bool RootSlaveDone { get; set; }
    public bool NewUtsNs { get; set; }
    public bool NewCgroupNs { get; set; }
    /// <summary>Init runs in a new user namespace: no mknod (device nodes are bind-mounted from the host).</summary>
    public bool UserNs { get; set; }
    public int PreserveFds { get; set; }
    /// <summary>cgroup.procs files init writes itself into right before execve (the memory
    /// cgroup, so init's own pages are never charged to the container).</summary>
    public List<string> LateCgroupProcs { get; set; } = new();
    /// <summary>The runtime sends the plan before the cgroups exist and "cgroups-ready" once they
    /// do: init mounts meanwhile and waits for it before it first needs them.</summary>
    public bool CgroupsLater { get; set; }
    /// <summary>v1 `tasks` files init writes "0" to first thing (every hierarchy but memory).</summary>
    public List<string> EarlyCgroupTasks { get; set; } = new();
    /// <summary>Host paths of the container's cgroup in each v1 hierarchy, for the cgroup mount.</summary>
    public List<CgroupMountSource> CgroupMounts { get; set; } = new();
    public string? CgroupV2Path { get; set; }
    /// <summary>The compiled seccomp filter (8-byte sock_filter records) and its flags; compiled by the
    /// runtime so a bad profile fails create/exec with a clear error, loaded by initexec.</summary>
    public byte[]? Seccomp { get; set; }
    public uint SeccompFlags { get; set; }
    /// <summary>With SCMP_ACT_NOTIFY: the OCI ContainerProcessState to send with the listener fd. The
    /// runtime connects to linux.seccomp.listenerPath and passes the socket right after the config
    /// ("seccomp-listener"); init sends this text and the fd over it once the filter is loaded.</summary>
    public string? SeccompListenerState { get; set; }
}

public sealed class CgroupMountSource
{
    /// <summary>Directory name under /sys/fs/cgroup in the container (e.g. "memory", "cpu,cpuacct").</summary>
    public string Name { get; set; } = "";
    /// <summary>Host directory of the container's cgroup in that hierarchy.</summary>
    public string HostPath { get; set; } = "";
    public string Options { get; set; } = "";
}

/// <summary>Messages on the sync socket. Parent→init: the plan (binary, see
/// <see cref="Init.InitProgram"/>), then "seccomp-listener" (+fd) with SCMP_ACT_NOTIFY, "cgroups-ready"
/// (when the plan went ahead of the cgroups), "hooks-done", "start" (`run`, after "ready"). Init→parent: "hooks" (run prestart/createRuntime now), "pty" (+fd),
/// "ready", "error:msg".</summary>
public static class SyncMessages
{
    public const string Hooks = "hooks", HooksDone = "hooks-done", Pty = "pty", Ready = "ready", ErrorPrefix = "error:",
        SeccompListener = "seccomp-listener", Start = "start", CgroupsReady = "cgroups-ready";
}
