using System.Runtime.InteropServices;

namespace Berth.Linux.Seccomp;

/// <summary>A refused seccomp profile: one line naming the offending field.</summary>
public sealed class SeccompException(string message) : Exception(message);

/// <summary>One classic-BPF instruction, laid out as the kernel's <c>struct sock_filter</c> (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct SockFilter(ushort Code, byte Jt, byte Jf, uint K)
{
    public override string ToString() => $"{{0x{Code:x2}, {Jt}, {Jf}, 0x{K:x8}}}";
}

/// <summary>A compiled filter ready for <see cref="SeccompLoader.Load"/>: the instructions, the
/// SECCOMP_FILTER_FLAG_* bits to load it with, and what was skipped while compiling.</summary>
public sealed class SeccompProgram(SockFilter[] instructions, uint flags, bool needsListener, IReadOnlyList<string> warnings)
{
    public IReadOnlyList<SockFilter> Instructions { get; } = instructions;
    /// <summary>SECCOMP_FILTER_FLAG_* from the profile; the loader adds NEW_LISTENER when <see cref="NeedsListener"/>.</summary>
    public uint Flags { get; } = flags;
    /// <summary>Some rule returns SECCOMP_RET_USER_NOTIF: loading yields a listener fd.</summary>
    public bool NeedsListener { get; } = needsListener;
    /// <summary>System call names skipped (unknown on an architecture) and architectures not handled.</summary>
    public IReadOnlyList<string> Warnings { get; } = warnings;
}

/// <summary>Kernel constants of seccomp(2) and its BPF input (<c>struct seccomp_data</c>).</summary>
public static class SeccompAbi
{
    // SECCOMP_RET_* (action in the high 16 bits, data in the low 16)
    public const uint RetKillProcess = 0x80000000, RetKillThread = 0x00000000, RetTrap = 0x00030000,
        RetErrno = 0x00050000, RetUserNotif = 0x7fc00000, RetTrace = 0x7ff00000, RetLog = 0x7ffc0000,
        RetAllow = 0x7fff0000, RetActionFull = 0xffff0000, RetData = 0x0000ffff;

    // SECCOMP_FILTER_FLAG_*
    public const uint FlagTsync = 1, FlagLog = 2, FlagSpecAllow = 4, FlagNewListener = 8, FlagTsyncEsrch = 16,
        FlagWaitKillableRecv = 32;

    public const int SetModeFilter = 1;

    // AUDIT_ARCH_* as seen in seccomp_data.arch
    public const uint AuditArchX86_64 = 0xC000003E, AuditArchI386 = 0x40000003, AuditArchAarch64 = 0xC00000B7;
    public const uint X32SyscallBit = 0x40000000;

    // struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
    public const uint OffsetNr = 0, OffsetArch = 4, OffsetArgs = 16;
}
