using Berth.Linux.Seccomp;
using static Berth.Linux.Seccomp.SeccompAbi;

namespace Berth.Linux.Tests.Seccomp;

public sealed class DefaultProfileTests
{
    // Docker's default capability set.
    internal static readonly string[] DockerCaps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
        "CAP_KILL", "CAP_AUDIT_WRITE"];

    const uint Eperm = RetErrno | 1;
    const int Getpid = 39, Mount = 165, Clone = 56, Clone3 = 435, Personality = 135, Socket = 41, Chroot = 161,
        Reboot = 169, ArchPrctl = 158;

    static uint X64(SeccompProgram p, int nr, params ulong[] args) => BpfInterpreter.Run(p.Instructions, nr, AuditArchX86_64, args);

    [Fact]
    public void Default_caps_allow_ordinary_calls_and_refuse_namespaces_and_mounts()
    {
        var p = SeccompCompiler.Compile(DefaultSeccompProfile.Create(DockerCaps));
        Assert.InRange(p.Instructions.Count, 300, SeccompCompiler.MaxInstructions);
        Assert.Equal(RetAllow, X64(p, Getpid));
        Assert.Equal(RetAllow, X64(p, ArchPrctl));
        Assert.Equal(RetAllow, X64(p, Chroot));       // CAP_SYS_CHROOT is held
        Assert.Equal(Eperm, X64(p, Reboot));           // CAP_SYS_BOOT is not
        Assert.Equal(Eperm, X64(p, Mount));
        Assert.Equal(RetErrno | 38, X64(p, 999));                   // newer than every call named: ENOSYS
        Assert.Equal(RetAllow, X64(p, Clone, 0x3d0f00));            // pthread_create's flags
        Assert.Equal(RetAllow, X64(p, Clone, 0x1200011));           // fork
        Assert.Equal(Eperm, X64(p, Clone, 0x3d0f00 | 0x20000000));  // + CLONE_NEWPID
        Assert.Equal(Eperm, X64(p, Clone, 0x10000000 | 17));        // CLONE_NEWUSER
        Assert.Equal(RetErrno | 38, X64(p, Clone3));                // ENOSYS: libc falls back to clone
        Assert.Equal(RetAllow, X64(p, Personality, 0));
        Assert.Equal(RetAllow, X64(p, Personality, 0xffffffff));    // query
        Assert.Equal(Eperm, X64(p, Personality, 0x0040000));        // ADDR_NO_RANDOMIZE
        Assert.Equal(RetAllow, X64(p, Socket, 2));                  // AF_INET
        Assert.Equal(Eperm, X64(p, Socket, 40));                    // AF_VSOCK
        Assert.Equal(RetAllow, BpfInterpreter.Run(p.Instructions, 20, AuditArchI386));          // i386 getpid
        Assert.Equal(RetAllow, X64(p, Getpid | (int)X32SyscallBit));                            // x32 getpid
        Assert.Equal(RetKillThread, BpfInterpreter.Run(p.Instructions, 20, AuditArchAarch64));
        Assert.Contains(p.Warnings, w => w.Contains("\"chown32\""));
    }

    [Fact]
    public void Capabilities_open_their_groups()
    {
        var p = SeccompCompiler.Compile(DefaultSeccompProfile.Create([.. DockerCaps, "CAP_SYS_ADMIN", "CAP_SYS_BOOT"]));
        Assert.Equal(RetAllow, X64(p, Mount));
        Assert.Equal(RetAllow, X64(p, Clone, 0x20000000));
        Assert.Equal(RetAllow, X64(p, Clone3));
        Assert.Equal(RetAllow, X64(p, Reboot));
    }

    [Fact]
    public void Aarch64_profile_compiles_for_its_own_abi()
    {
        var p = SeccompCompiler.Compile(DefaultSeccompProfile.Create(DockerCaps, "SCMP_ARCH_AARCH64"), "SCMP_ARCH_AARCH64");
        Assert.Equal(RetAllow, BpfInterpreter.Run(p.Instructions, 172, AuditArchAarch64)); // getpid
        Assert.Equal(Eperm, BpfInterpreter.Run(p.Instructions, 40, AuditArchAarch64));     // mount
        Assert.Equal(RetErrno | 38, BpfInterpreter.Run(p.Instructions, 435, AuditArchAarch64));
        Assert.Contains(p.Warnings, w => w.Contains("SCMP_ARCH_ARM is not handled"));
    }
}
