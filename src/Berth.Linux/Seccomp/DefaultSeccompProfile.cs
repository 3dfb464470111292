using Berth.Oci.Runtime;

namespace Berth.Linux.Seccomp;

/// <summary>The default profile of Docker and podman (moby/profiles seccomp/default.json): errno EPERM
/// for everything not allowed, the large allow-list, namespace-creating clone flags and clone3 refused
/// without CAP_SYS_ADMIN, personality limited to the harmless personas, and the capability-gated groups
/// allowed only when the container holds that capability.</summary>
public static partial class DefaultSeccompProfile
{
    sealed record Arg(uint Index, ulong Value, ulong ValueTwo, string Op);

    /// <summary>A rule of the profile with its conditions of inclusion (capabilities held or not,
    /// native architecture as Go names it, minimum kernel).</summary>
    sealed record Rule(string[] Names, string Action, uint? ErrnoRet = null, Arg[]? Args = null,
        string[]? Caps = null, string[]? NotCaps = null, string[]? Arches = null, string[]? NotArches = null,
        string? MinKernel = null);

    /// <summary>The profile for a container holding <paramref name="capabilities"/> (its bounding set,
    /// CAP_* names), on <paramref name="nativeArch"/>. Rules with a minimum kernel are kept: Berth needs a
    /// newer kernel than any of them (4.8).</summary>
    public static Berth.Oci.Runtime.Seccomp Create(IEnumerable<string> capabilities, string nativeArch = "SCMP_ARCH_X86_64")
    {
        var caps = new HashSet<string>(capabilities, StringComparer.OrdinalIgnoreCase);
        var (goArch, architectures) = nativeArch switch
        {
            "SCMP_ARCH_X86_64" => ("amd64", new List<string> { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" }),
            "SCMP_ARCH_AARCH64" => ("arm64", new List<string> { "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM" }),
            _ => throw new SeccompException($"seccomp: no default profile for native architecture {nativeArch}"),
        };
        var syscalls = new List<SeccompSyscall>();
        foreach (var rule in Rules)
        {
            if (rule.Caps is { } need && !need.All(caps.Contains)) continue;
            if (rule.NotCaps is { } not && not.Any(caps.Contains)) continue;
            if (rule.Arches is { } arches && !arches.Contains(goArch)) continue;
            if (rule.NotArches is { } notArches && notArches.Contains(goArch)) continue;
            syscalls.Add(new SeccompSyscall
            {
                Names = [.. rule.Names],
                Action = rule.Action,
                ErrnoRet = rule.ErrnoRet,
                Args = rule.Args?.Select(a => new SeccompArg { Index = a.Index, Value = a.Value, ValueTwo = a.ValueTwo, Op = a.Op }).ToList(),
            });
        }
        return new Berth.Oci.Runtime.Seccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            DefaultErrnoRet = Errno.EPERM,
            Architectures = architectures,
            Syscalls = syscalls,
        };
    }
}
