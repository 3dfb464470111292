using System.Runtime.InteropServices;
using System.Text;

namespace Berth.Linux.Interop;

/// <summary>The bpf(2) commands Berth uses (cgroup device programs). Attributes are laid out by hand
/// in a zeroed 128-byte buffer, smaller than the kernel's union bpf_attr, which the kernel zero-extends.</summary>
internal static unsafe class Bpf
{
    const int PROG_LOAD = 5, PROG_ATTACH = 8, PROG_DETACH = 9, PROG_GET_FD_BY_ID = 13, PROG_QUERY = 16;
    public const uint PROG_TYPE_CGROUP_DEVICE = 15, CGROUP_DEVICE = 6, F_ALLOW_MULTI = 2;
    const int AttrSize = 128;

    static long Call(int cmd, byte* attr) => Libc.syscall(Libc.SysBpf, cmd, attr, AttrSize);

    /// <summary>BPF_PROG_LOAD; on a verifier error the exception message carries the verifier log.</summary>
    public static Fd ProgLoad(uint progType, ReadOnlySpan<byte> insns, string license, string name)
    {
        byte[] lic = Encoding.ASCII.GetBytes(license + "\0");
        byte[] log = new byte[65536];
        byte* attr = stackalloc byte[AttrSize];
        fixed (byte* pInsns = insns) fixed (byte* pLic = lic) fixed (byte* pLog = log)
        {
            for (int attempt = 0; attempt < 2; attempt++)
            {
                new Span<byte>(attr, AttrSize).Clear();
                *(uint*)(attr + 0) = progType;
                *(uint*)(attr + 4) = (uint)(insns.Length / 8);
                *(ulong*)(attr + 8) = (ulong)pInsns;
                *(ulong*)(attr + 16) = (ulong)pLic;
                if (attempt == 1) // retry with the verifier log to explain the failure
                {
                    *(uint*)(attr + 24) = 1;
                    *(uint*)(attr + 28) = (uint)log.Length;
                    *(ulong*)(attr + 32) = (ulong)pLog;
                }
                var nameBytes = Encoding.ASCII.GetBytes(name);
                nameBytes.AsSpan(0, Math.Min(nameBytes.Length, 15)).CopyTo(new Span<byte>(attr + 48, 15));
                long fd = Call(PROG_LOAD, attr);
                if (fd >= 0) return new Fd((int)fd);
                int errno = Marshal.GetLastPInvokeError();
                if (attempt == 1 || errno != Errno.EACCES && errno != Errno.EINVAL)
                {
                    string verifier = Encoding.ASCII.GetString(log, 0, Math.Max(0, Array.IndexOf(log, (byte)0))).Trim();
                    throw new SyscallException("bpf(BPF_PROG_LOAD)", verifier.Length > 0 ? $"{name} (verifier: {verifier.ReplaceLineEndings(" | ")})" : name, errno);
                }
            }
        }
        throw new InvalidOperationException("unreachable");
    }

    public static void ProgAttach(Fd target, Fd prog, uint attachType, uint flags, string what) =>
        AttachDetach(PROG_ATTACH, target, prog, attachType, flags, "bpf(BPF_PROG_ATTACH)", what);

    public static void ProgDetach(Fd target, Fd prog, uint attachType, string what) =>
        AttachDetach(PROG_DETACH, target, prog, attachType, 0, "bpf(BPF_PROG_DETACH)", what);

    static void AttachDetach(int cmd, Fd target, Fd prog, uint attachType, uint flags, string call, string what)
    {
        bool a = false, b = false;
        try
        {
            target.DangerousAddRef(ref a);
            prog.DangerousAddRef(ref b);
            byte* attr = stackalloc byte[AttrSize];
            new Span<byte>(attr, AttrSize).Clear();
            *(uint*)(attr + 0) = (uint)target.Value;
            *(uint*)(attr + 4) = (uint)prog.Value;
            *(uint*)(attr + 8) = attachType;
            *(uint*)(attr + 12) = flags;
            if (Call(cmd, attr) < 0) throw SyscallException.Last(call, what);
        }
        finally
        {
            if (b) prog.DangerousRelease();
            if (a) target.DangerousRelease();
        }
    }

    /// <summary>BPF_PROG_QUERY: ids of the programs attached to a cgroup for an attach type.</summary>
    public static uint[] ProgQuery(Fd target, uint attachType, string what)
    {
        bool added = false;
        try
        {
            target.DangerousAddRef(ref added);
            uint[] ids = new uint[64];
            byte* attr = stackalloc byte[AttrSize];
            fixed (uint* pIds = ids)
            {
                new Span<byte>(attr, AttrSize).Clear();
                *(uint*)(attr + 0) = (uint)target.Value;
                *(uint*)(attr + 4) = attachType;
                *(ulong*)(attr + 16) = (ulong)pIds;
                *(uint*)(attr + 24) = (uint)ids.Length;
                if (Call(PROG_QUERY, attr) < 0) throw SyscallException.Last("bpf(BPF_PROG_QUERY)", what);
                return ids.AsSpan(0, (int)Math.Min(*(uint*)(attr + 24), (uint)ids.Length)).ToArray();
            }
        }
        finally
        {
            if (added) target.DangerousRelease();
        }
    }

    public static Fd ProgGetFdById(uint id)
    {
        byte* attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(uint*)(attr + 0) = id;
        long fd = Call(PROG_GET_FD_BY_ID, attr);
        if (fd < 0) throw SyscallException.Last("bpf(BPF_PROG_GET_FD_BY_ID)", $"program {id}");
        return new Fd((int)fd);
    }
}
