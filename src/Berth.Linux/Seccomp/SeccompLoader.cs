using System.Runtime.InteropServices;
using Berth.Linux.Interop;
using static Berth.Linux.Seccomp.SeccompAbi;

namespace Berth.Linux.Seccomp;

/// <summary>Installs a compiled filter on the calling thread (all threads with TSYNC) with
/// seccomp(SECCOMP_SET_MODE_FILTER). The caller must have set no_new_privs on this thread or hold
/// CAP_SYS_ADMIN; the filter then applies to everything the thread execs, irrevocably.</summary>
public static unsafe class SeccompLoader
{
    [StructLayout(LayoutKind.Sequential)]
    struct SockFprog
    {
        public ushort Len;
        public SockFilter* Filter;
    }

    public static long SysSeccomp => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 317,
        Architecture.Arm64 => 277,
        var a => throw new PlatformNotSupportedException($"seccomp(2): unsupported architecture {a}"),
    };

    /// <summary>Loads <paramref name="program"/>; returns the user-notification listener (O_CLOEXEC, as
    /// the kernel makes it) when a rule uses SCMP_ACT_NOTIFY, else null.</summary>
    public static Fd? Load(SeccompProgram program)
    {
        uint flags = program.Flags;
        if (program.NeedsListener)
        {
            flags |= FlagNewListener;
            // TSYNC and NEW_LISTENER together are EINVAL unless a TSYNC failure is reported as ESRCH.
            if ((flags & FlagTsync) != 0) flags |= FlagTsyncEsrch;
        }
        var instructions = program.Instructions as SockFilter[] ?? program.Instructions.ToArray();
        fixed (SockFilter* p = instructions)
        {
            var prog = new SockFprog { Len = (ushort)instructions.Length, Filter = p };
            long rc = Libc.syscall(SysSeccomp, SetModeFilter, flags, (long)&prog, 0, 0, 0);
            if (rc < 0) throw SyscallException.Last("seccomp(SECCOMP_SET_MODE_FILTER)", $"{instructions.Length} instructions, flags 0x{flags:x}");
            if ((flags & FlagTsync) != 0 && (flags & FlagNewListener) == 0 && rc > 0)
                throw new SyscallException("seccomp(SECCOMP_SET_MODE_FILTER)", $"TSYNC: thread {rc} could not be synchronized", Errno.ESRCH);
            return program.NeedsListener ? new Fd((int)rc) : null;
        }
    }
}
