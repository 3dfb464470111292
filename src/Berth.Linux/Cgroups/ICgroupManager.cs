using Berth.Oci.Runtime;

namespace Berth.Linux.Cgroups;

/// <summary>
/// Owns the lifecycle of one container's cgroup across every managed hierarchy (cgroupfs driver;
/// v1, hybrid and v2). Obtain one from <see cref="CgroupManagerFactory.Create"/>.
/// </summary>
public interface ICgroupManager
{
    /// <summary>The layout this manager works on.</summary>
    CgroupLayout Layout { get; }

    /// <summary>The container's cgroup directory in each managed hierarchy, keyed by
    /// controller list ("cpu,cpuacct", "memory", …) or "unified".</summary>
    IReadOnlyDictionary<string, string> Paths { get; }

    /// <summary>The container's cgroup path inside each managed hierarchy (same keys as
    /// <see cref="Paths"/>): what a runtime records to reopen the cgroup later.</summary>
    IReadOnlyDictionary<string, string> HierarchyPaths { get; }

    /// <summary>Creates the cgroup in every managed hierarchy (idempotent). v1 cpuset levels get
    /// cpuset.cpus/mems copied from their parent; v2 parents get controllers enabled in
    /// cgroup.subtree_control.</summary>
    void Create();

    /// <summary>Writes every requested resource. A value the hierarchy cannot honour throws
    /// <see cref="CgroupException"/>; deprecated settings that runc ignores (kernel memory) are
    /// ignored and reported in the returned warnings.</summary>
    IReadOnlyList<string> Apply(LinuxResources resources);

    /// <summary>Moves a process into the cgroup in every managed hierarchy; with
    /// <paramref name="includeMemory"/> false the hierarchy holding the memory controller is
    /// skipped (join it last with <see cref="AddProcessToMemory"/>).</summary>
    void AddProcess(int pid, bool includeMemory = true);

    /// <summary>Moves a process into the hierarchy that holds the memory controller.</summary>
    void AddProcessToMemory(int pid);

    /// <summary>The processes directly in the container's cgroup (not recursive).</summary>
    IReadOnlyList<int> GetPids();

    /// <summary>Freezes the cgroup and waits until the kernel reports it frozen.</summary>
    void Freeze();

    /// <summary>Thaws the cgroup and waits until the kernel reports it thawed.</summary>
    void Thaw();

    bool IsFrozen();

    /// <summary>The file <see cref="IsFrozen"/> reads (v1 freezer.state, v2 cgroup.events), or null
    /// without a freezer: recorded at create so `state` needs no layout discovery (mountinfo).</summary>
    string? FreezerStateFile { get; }

    /// <summary>Usage statistics (see <see cref="CgroupStatsJson"/> for runc's `events --stats` shape).</summary>
    CgroupStats GetStats();

    /// <summary>Removes the cgroup from every hierarchy, retrying briefly while busy; already-gone
    /// directories are fine (idempotent).</summary>
    void Destroy();

    /// <summary>True when the cgroup directory exists in any managed hierarchy.</summary>
    bool Exists();
}

/// <summary>Tunables for a <see cref="ICgroupManager"/>.</summary>
public sealed class CgroupManagerOptions
{
    /// <summary>Called after each successful cgroup file write with (path, value): for debug logging
    /// and for tests that assert what was written where.</summary>
    public Action<string, string>? OnWrite { get; init; }

    /// <summary>Directory whose existence means systemd is running (default /run/systemd/system).</summary>
    public string SystemdProbe { get; init; } = "/run/systemd/system";

    /// <summary>How long Freeze/Thaw wait for the kernel to report the new state.</summary>
    public TimeSpan FreezeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long Destroy retries rmdir while the kernel reports EBUSY.</summary>
    public TimeSpan RemoveTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Attaches v2 device programs; replaceable so fixture tests can observe the program.</summary>
    public Action<string, DeviceFilterProgram>? AttachDeviceFilter { get; init; }
}

public static class CgroupManagerFactory
{
    /// <summary>
    /// A manager for <paramref name="containerId"/>'s cgroup at <paramref name="cgroupsPath"/> (OCI
    /// linux.cgroupsPath; empty means <paramref name="defaultPath"/>, which defaults to
    /// "/berth/&lt;id&gt;"). <paramref name="layout"/> defaults to the calling process's layout.
    /// </summary>
    public static ICgroupManager Create(string? cgroupsPath, string containerId, CgroupLayout? layout = null,
        string? defaultPath = null, CgroupManagerOptions? options = null)
    {
        if (string.IsNullOrEmpty(containerId) || containerId.Contains('/'))
            throw new CgroupException($"invalid container id \"{containerId}\"");
        options ??= new CgroupManagerOptions();
        var (path, absolute) = CgroupPaths.Parse(cgroupsPath, defaultPath ?? "berth/" + containerId, options.SystemdProbe);
        return new CgroupManager(containerId, layout ?? CgroupLayout.Discover(), path, absolute, options);
    }

    /// <summary>Reopens a container's cgroup from the <see cref="ICgroupManager.HierarchyPaths"/>
    /// recorded when it was created.</summary>
    public static bool ReadFrozenFile(string file) => CgroupManager.ReadFrozenFile(file);

    public static ICgroupManager Open(string containerId, IReadOnlyDictionary<string, string> hierarchyPaths,
        CgroupLayout? layout = null, CgroupManagerOptions? options = null) =>
        new CgroupManager(containerId, layout ?? CgroupLayout.Discover(), hierarchyPaths, options ?? new CgroupManagerOptions());
}
