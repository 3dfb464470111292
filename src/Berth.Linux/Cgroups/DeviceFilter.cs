using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Berth.Linux.Interop;
using Berth.Oci.Runtime;

namespace Berth.Linux.Cgroups;

/// <summary>One eBPF instruction (struct bpf_insn, 8 bytes).</summary>
public readonly record struct BpfInsn(byte Code, byte Dst, byte Src, short Off, int Imm)
{
    public void WriteTo(Span<byte> dest)
    {
        dest[0] = Code;
        dest[1] = (byte)((Src << 4) | (Dst & 0xf)); // dst_reg is the low nibble on little-endian
        BinaryPrimitives.WriteInt16LittleEndian(dest[2..], Off);
        BinaryPrimitives.WriteInt32LittleEndian(dest[4..], Imm);
    }
}

/// <summary>A BPF_PROG_TYPE_CGROUP_DEVICE program built from OCI device rules.</summary>
public sealed class DeviceFilterProgram
{
    public required IReadOnlyList<BpfInsn> Instructions { get; init; }

    /// <summary>True when devices not named by an exception are allowed.</summary>
    public required bool DefaultAllow { get; init; }

    /// <summary>The instructions in the kernel's encoding, 8 bytes each.</summary>
    public byte[] ToBytes()
    {
        var bytes = new byte[Instructions.Count * 8];
        for (int i = 0; i < Instructions.Count; i++) Instructions[i].WriteTo(bytes.AsSpan(i * 8, 8));
        return bytes;
    }
}

/// <summary>
/// Device rules: v1 file lines, and for cgroup v2 an eBPF device program generated the way runc's
/// devicefilter does: the rules first go through a v1 emulator (so v2 behaves exactly like v1,
/// including refusing to punch holes in wildcard rules), then each remaining exception becomes a
/// block that jumps to the next block on mismatch and returns its verdict on match; the last block
/// returns the default.
/// </summary>
public static class DeviceFilter
{
    const int DevBlock = 1, DevChar = 2;           // BPF_DEVCG_DEV_*
    const int AccMknod = 1, AccRead = 2, AccWrite = 4; // BPF_DEVCG_ACC_*
    const int AccAll = AccMknod | AccRead | AccWrite;

    // Opcodes (class | op | source).
    const byte LdxMemW = 0x61;   // BPF_LDX | BPF_MEM | BPF_W
    const byte AndImm32 = 0x54;  // BPF_ALU | BPF_AND | BPF_K
    const byte RshImm32 = 0x74;  // BPF_ALU | BPF_RSH | BPF_K
    const byte MovReg32 = 0xbc;  // BPF_ALU | BPF_MOV | BPF_X
    const byte MovImm32 = 0xb4;  // BPF_ALU | BPF_MOV | BPF_K
    const byte JneImm = 0x55;    // BPF_JMP | BPF_JNE | BPF_K
    const byte JneReg = 0x5d;    // BPF_JMP | BPF_JNE | BPF_X
    const byte Exit = 0x95;      // BPF_JMP | BPF_EXIT

    /// <summary>"a", "b" or "c" (null means "a"); other OCI types cannot be expressed in cgroups.</summary>
    public static string TypeOf(DeviceCgroup rule) => rule.Type switch
    {
        null or "" or "a" => "a",
        "b" or "c" => rule.Type,
        _ => throw new CgroupException($"cannot set devices: invalid device type \"{rule.Type}\" (a, b or c)"),
    };

    static int AccessOf(DeviceCgroup rule)
    {
        if (string.IsNullOrEmpty(rule.Access)) return AccAll;
        int acc = 0;
        foreach (char ch in rule.Access)
            acc |= ch switch
            {
                'r' => AccRead, 'w' => AccWrite, 'm' => AccMknod,
                _ => throw new CgroupException($"cannot set devices: invalid access \"{rule.Access}\" (r, w, m)"),
            };
        return acc;
    }

    static string AccessString(int acc) =>
        ((acc & AccRead) != 0 ? "r" : "") + ((acc & AccWrite) != 0 ? "w" : "") + ((acc & AccMknod) != 0 ? "m" : "");

    static string Num(long? n) => n is null or < 0 ? "*" : n.Value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The v1 devices.allow/deny line: "TYPE MAJ:MIN ACCESS", * for a wildcard number.</summary>
    public static string V1Line(DeviceCgroup rule) =>
        $"{TypeOf(rule)} {Num(rule.Major)}:{Num(rule.Minor)} {AccessString(AccessOf(rule))}";

    readonly record struct Key(char Type, long Major, long Minor); // -1 = wildcard

    /// <summary>Emulates the v1 devices controller applying <paramref name="rules"/> to a cgroup that
    /// starts as deny-all; returns the default and the exceptions, ordered by (major, minor, type).</summary>
    static (bool DefaultAllow, List<(Key Key, int Access)> Exceptions) Emulate(IEnumerable<DeviceCgroup> rules)
    {
        bool defaultAllow = false;
        var map = new Dictionary<Key, int>();
        foreach (var rule in rules)
        {
            string type = TypeOf(rule);
            int access = AccessOf(rule);
            if (type == "a")
            {
                // Like v1: "a" resets everything to allow-all or deny-all.
                defaultAllow = rule.Allow;
                map.Clear();
                continue;
            }
            var key = new Key(type[0], rule.Major is null or < 0 ? -1 : rule.Major.Value, rule.Minor is null or < 0 ? -1 : rule.Minor.Value);
            if (key.Major > uint.MaxValue || key.Minor > uint.MaxValue)
                throw new CgroupException($"cannot set devices: device number out of range in \"{V1Line(rule)}\"");
            if (rule.Allow != defaultAllow)
            {
                map[key] = map.GetValueOrDefault(key) | access;
                continue;
            }
            // Removing an exception: v1 silently ignores removing part of a wider wildcard exception,
            // which would leave the device reachable; refuse instead (as runc does).
            foreach (var wider in new[] { key with { Major = -1 }, key with { Minor = -1 }, key with { Major = -1, Minor = -1 } })
            {
                if (wider == key) continue;
                if ((map.GetValueOrDefault(wider) & access) != 0)
                    throw new CgroupException($"cannot set devices: rule \"{V1Line(rule)}\" overlaps the wildcard exception " +
                                              $"\"{wider.Type} {Num(wider.Major)}:{Num(wider.Minor)} {AccessString(map[wider])}\"");
            }
            if (map.TryGetValue(key, out int cur))
            {
                if ((cur & ~access) == 0) map.Remove(key);
                else map[key] = cur & ~access;
            }
        }
        var list = map.Select(kv => (kv.Key, kv.Value))
            .OrderBy(e => e.Key.Major).ThenBy(e => e.Key.Minor).ThenBy(e => e.Key.Type).ToList();
        return (defaultAllow, list);
    }

    /// <summary>Builds the device program for <paramref name="rules"/> (OCI order, first to last).</summary>
    public static DeviceFilterProgram Build(IEnumerable<DeviceCgroup> rules)
    {
        var (defaultAllow, exceptions) = Emulate(rules);
        var insns = new List<BpfInsn>
        {
            // R2 = type (low 16 bits of ctx->access_type), R3 = access (high 16 bits),
            // R4 = major, R5 = minor  (struct bpf_cgroup_dev_ctx { u32 access_type, major, minor; })
            new(LdxMemW, 2, 1, 0, 0),
            new(AndImm32, 2, 0, 0, 0xFFFF),
            new(LdxMemW, 3, 1, 0, 0),
            new(RshImm32, 3, 0, 0, 16),
            new(LdxMemW, 4, 1, 4, 0),
            new(LdxMemW, 5, 1, 8, 0),
        };
        // Every jump in a block goes to the start of the next block; fix offsets once it is known.
        var pending = new List<int>();
        void JumpToNext(BpfInsn insn) { pending.Add(insns.Count); insns.Add(insn); }

        // Last exception first, as runc does (all exceptions carry the same verdict, so order is moot).
        for (int i = exceptions.Count - 1; i >= 0; i--)
        {
            var (key, access) = exceptions[i];
            JumpToNext(new(JneImm, 2, 0, 0, key.Type == 'b' ? DevBlock : DevChar));
            if (access != AccAll)
            {
                // if ((R3 & access) != R3) goto next — the request must be within the allowed bits
                insns.Add(new(MovReg32, 1, 3, 0, 0));
                insns.Add(new(AndImm32, 1, 0, 0, access));
                JumpToNext(new(JneReg, 1, 3, 0, 0));
            }
            if (key.Major >= 0) JumpToNext(new(JneImm, 4, 0, 0, unchecked((int)(uint)key.Major)));
            if (key.Minor >= 0) JumpToNext(new(JneImm, 5, 0, 0, unchecked((int)(uint)key.Minor)));
            insns.Add(new(MovImm32, 0, 0, 0, defaultAllow ? 0 : 1));
            insns.Add(new(Exit, 0, 0, 0, 0));
            int next = insns.Count;
            foreach (int at in pending) insns[at] = insns[at] with { Off = checked((short)(next - at - 1)) };
            pending.Clear();
        }
        insns.Add(new(MovImm32, 0, 0, 0, defaultAllow ? 1 : 0));
        insns.Add(new(Exit, 0, 0, 0, 0));
        return new DeviceFilterProgram { Instructions = insns, DefaultAllow = defaultAllow };
    }

    /// <summary>True when this kernel can load cgroup device programs (bpf(2) usable by this process).</summary>
    public static bool KernelSupportsDeviceFilter()
    {
        try
        {
            using var fd = Bpf.ProgLoad(Bpf.PROG_TYPE_CGROUP_DEVICE, Build([new DeviceCgroup { Allow = true }]).ToBytes(), "Apache", "berth_probe");
            return true;
        }
        catch (SyscallException) { return false; }
        catch (PlatformNotSupportedException) { return false; }
    }

    /// <summary>
    /// Loads <paramref name="program"/> and attaches it to the v2 cgroup <paramref name="cgroupDir"/>
    /// (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI), then detaches the device programs that were attached
    /// before, so re-applying replaces the rules instead of stacking them.
    /// </summary>
    public static void Attach(string cgroupDir, DeviceFilterProgram program)
    {
        try
        {
            using var dir = Sys.Open(cgroupDir, Libc.O_RDONLY | Libc.O_DIRECTORY);
            var old = Bpf.ProgQuery(dir, Bpf.CGROUP_DEVICE, cgroupDir);
            using var prog = Bpf.ProgLoad(Bpf.PROG_TYPE_CGROUP_DEVICE, program.ToBytes(), "Apache", "berth_devices");
            Bpf.ProgAttach(dir, prog, Bpf.CGROUP_DEVICE, Bpf.F_ALLOW_MULTI, cgroupDir);
            foreach (uint id in old)
            {
                using var oldProg = Bpf.ProgGetFdById(id);
                Bpf.ProgDetach(dir, oldProg, Bpf.CGROUP_DEVICE, cgroupDir);
            }
        }
        catch (SyscallException e)
        {
            throw new CgroupException($"cannot set devices on {cgroupDir}: {e.Message}", cgroupDir, e.Errno, e);
        }
    }

    /// <summary>Attached device program ids of a v2 cgroup (for tests and diagnostics).</summary>
    public static IReadOnlyList<uint> AttachedPrograms(string cgroupDir)
    {
        try
        {
            using var dir = Sys.Open(cgroupDir, Libc.O_RDONLY | Libc.O_DIRECTORY);
            return Bpf.ProgQuery(dir, Bpf.CGROUP_DEVICE, cgroupDir);
        }
        catch (SyscallException e)
        {
            throw new CgroupException($"querying device programs of {cgroupDir}: {e.Message}", cgroupDir, e.Errno, e);
        }
    }
}
