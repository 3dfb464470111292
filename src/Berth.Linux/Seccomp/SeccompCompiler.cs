using Berth.Oci.Runtime;
using static Berth.Linux.Seccomp.SeccompAbi;

namespace Berth.Linux.Seccomp;

/// <summary>Compiles an OCI <c>linux.seccomp</c> profile into a classic-BPF seccomp filter, with the
/// semantics runc gets from libseccomp: the native architecture is always handled, calls from an
/// architecture the filter does not handle are killed (KILL_THREAD), rules are tried in profile order
/// and the first whose conditions all hold decides, names unknown on an architecture are skipped with
/// a warning.</summary>
public static class SeccompCompiler
{
    public const int MaxInstructions = 4096;

    /// <summary>The architecture names of runtime-spec (libseccomp's).</summary>
    static readonly HashSet<string> KnownArchitectures =
    [
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
    ];

    /// <summary>An ABI the filter can tell apart: its AUDIT_ARCH, its table and the bit its numbers carry.</summary>
    sealed record Abi(string Name, uint AuditArch, Func<string, int> Table, uint NrBit);

    static readonly Abi X86_64 = new("SCMP_ARCH_X86_64", AuditArchX86_64, SyscallTables.X86_64, 0);
    static readonly Abi X32 = new("SCMP_ARCH_X32", AuditArchX86_64, SyscallTables.X32, X32SyscallBit);
    static readonly Abi X86 = new("SCMP_ARCH_X86", AuditArchI386, SyscallTables.I386, 0);
    static readonly Abi Aarch64 = new("SCMP_ARCH_AARCH64", AuditArchAarch64, SyscallTables.Aarch64, 0);

    sealed record Condition(int Index, string Op, ulong Value, ulong ValueTwo);
    sealed record Rule(uint Action, Condition[] Conditions);

    /// <summary>The native architecture of this process, as a SCMP_ARCH_* name.</summary>
    public static string NativeArchitecture => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "SCMP_ARCH_X86_64",
        System.Runtime.InteropServices.Architecture.Arm64 => "SCMP_ARCH_AARCH64",
        var a => throw new PlatformNotSupportedException($"seccomp: unsupported architecture {a}"),
    };

    public static SeccompProgram Compile(Berth.Oci.Runtime.Seccomp profile, string nativeArch = "SCMP_ARCH_X86_64")
    {
        var warnings = new List<string>();
        if (string.IsNullOrEmpty(profile.DefaultAction))
            throw new SeccompException("seccomp: defaultAction is required");
        if (profile.DefaultAction == "SCMP_ACT_NOTIFY")
            throw new SeccompException("seccomp: defaultAction SCMP_ACT_NOTIFY is not allowed (the listener's own calls would be trapped)");
        uint defaultRet = ParseAction(profile.DefaultAction, profile.DefaultErrnoRet, "defaultAction", "defaultErrnoRet");
        uint flags = ParseFlags(profile.Flags);

        // The native ABI is always handled; the listed ones when this filter can tell them apart.
        var abis = new List<Abi>();
        switch (nativeArch)
        {
            case "SCMP_ARCH_X86_64": abis.Add(X86_64); break;
            case "SCMP_ARCH_AARCH64": abis.Add(Aarch64); break;
            default: throw new SeccompException($"seccomp: native architecture {nativeArch} is not supported (SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64)");
        }
        foreach (var arch in profile.Architectures ?? [])
        {
            if (!KnownArchitectures.Contains(arch)) throw new SeccompException($"seccomp: unknown architecture \"{arch}\"");
            Abi? abi = (nativeArch, arch) switch
            {
                ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86_64") => X86_64,
                ("SCMP_ARCH_X86_64", "SCMP_ARCH_X32") => X32,
                ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86") => X86,
                ("SCMP_ARCH_AARCH64", "SCMP_ARCH_AARCH64") => Aarch64,
                _ => null,
            };
            if (abi is null) warnings.Add($"seccomp: architecture {arch} is not handled on {nativeArch}: its system calls are killed");
            else if (!abis.Contains(abi)) abis.Add(abi);
        }

        // Per ABI: system call number → its rules in profile order (first that matches decides).
        var byAbi = abis.ToDictionary(a => a, _ => new List<(uint Nr, List<Rule> Rules)>());
        bool needsListener = false;
        var syscalls = profile.Syscalls ?? [];
        for (int i = 0; i < syscalls.Count; i++)
        {
            var entry = syscalls[i];
            string where = $"syscalls[{i}]";
            if (entry.Names is null || entry.Names.Count == 0) throw new SeccompException($"seccomp: {where}: names is empty");
            if (entry.Action == "SCMP_ACT_NOTIFY") needsListener = true;
            var rule = new Rule(ParseAction(entry.Action, entry.ErrnoRet, $"{where}.action", $"{where}.errnoRet"),
                ParseConditions(entry.Args, where));
            foreach (var name in entry.Names)
            {
                var missing = new List<string>();
                foreach (var abi in abis)
                {
                    int nr = abi.Table(name);
                    if (nr < 0) { missing.Add(abi.Name); continue; }
                    var list = byAbi[abi];
                    uint key = (uint)nr | abi.NrBit;
                    int at = list.FindIndex(e => e.Nr == key);
                    if (at < 0) list.Add((key, [rule]));
                    else if (!list[at].Rules.Exists(r => ReferenceEquals(r, rule))) list[at].Rules.Add(rule);
                }
                if (missing.Count == abis.Count) warnings.Add($"seccomp: unknown system call \"{name}\": skipped");
                else if (missing.Count > 0) warnings.Add($"seccomp: system call \"{name}\" does not exist on {string.Join(", ", missing)}: skipped there");
            }
        }

        var program = Emit(abis, byAbi, defaultRet);
        if (program.Length > MaxInstructions)
            throw new SeccompException($"seccomp: the filter needs {program.Length} instructions, more than the kernel's {MaxInstructions}");
        return new SeccompProgram(program, flags, needsListener, warnings);
    }

    static SockFilter[] Emit(List<Abi> abis, Dictionary<Abi, List<(uint Nr, List<Rule> Rules)>> byAbi, uint defaultRet)
    {
        var b = new BpfBuilder();
        var rets = new Dictionary<uint, int>();
        int Ret(uint action) => rets.TryGetValue(action, out var l) ? l : rets[action] = b.Ret(action);

        int badArch = b.Ret(RetKillThread);
        // One section per AUDIT_ARCH value; x86_64 and x32 share one, told apart by __X32_SYSCALL_BIT.
        var sections = new List<(uint AuditArch, int Entry)>();
        foreach (var audit in abis.Select(a => a.AuditArch).Distinct().Reverse())
        {
            int entry;
            if (audit == AuditArchX86_64)
            {
                int x32 = abis.Contains(X32)
                    ? Syscalls(b, byAbi[X32], Ret, defaultRet)
                    : -1;
                int native = abis.Contains(X86_64) ? Syscalls(b, byAbi[X86_64], Ret, defaultRet) : badArch;
                // nr -1 (a tracer skipping the call) is not an x32 call: it goes to the native rules.
                if (x32 < 0) x32 = b.Jump(BpfBuilder.Jeq, 0xFFFFFFFF, native, badArch);
                b.Jump(BpfBuilder.Jge, X32SyscallBit, x32, native);
                entry = b.Load(OffsetNr);
            }
            else
            {
                Syscalls(b, byAbi[abis.First(a => a.AuditArch == audit)], Ret, defaultRet);
                entry = b.Load(OffsetNr);
            }
            sections.Add((audit, entry));
        }
        int next = badArch;
        foreach (var (audit, entry) in sections) next = b.Jump(BpfBuilder.Jeq, audit, entry, next);
        b.Load(OffsetArch);
        return b.ToProgram();
    }

    /// <summary>Emits the comparisons of one ABI (accumulator = nr on entry); returns the first.</summary>
    static int Syscalls(BpfBuilder b, List<(uint Nr, List<Rule> Rules)> calls, Func<uint, int> ret, uint defaultRet)
    {
        int dflt = ret(defaultRet);
        int next = dflt;
        // A call newer than every call the profile names gets ENOSYS, not the default action (runc's
        // patchbpf does the same): a profile written before the call existed cannot mean to refuse it
        // with EPERM, and ENOSYS is what makes libc fall back to the older call (clone3 → clone,
        // statx → fstatat …). Not with a permissive default: the call then runs anyway.
        bool enosys = calls.Count > 0 && defaultRet is not (RetAllow or RetLog);
        for (int c = calls.Count - 1; c >= 0; c--)
        {
            var (nr, rules) = calls[c];
            int body = dflt;
            for (int r = rules.Count - 1; r >= 0; r--)
            {
                int pass = ret(rules[r].Action);
                int fail = body;
                body = pass;
                for (int k = rules[r].Conditions.Length - 1; k >= 0; k--)
                    body = EmitCondition(b, rules[r].Conditions[k], body, fail);
            }
            next = b.Jump(BpfBuilder.Jeq, nr, body, next);
        }
        if (enosys)
        {
            next = b.Jump(BpfBuilder.Jgt, calls.Max(c => c.Nr), ret(RetErrno | Errno.ENOSYS), next);
            // nr -1 (a tracer cancelled the call) is no newer call: the default decides, as before.
            next = b.Jump(BpfBuilder.Jeq, 0xFFFFFFFF, dflt, next);
        }
        return next;
    }

    /// <summary>A 64-bit comparison of args[i] (little-endian: low word at 16+8i, high at +4).</summary>
    static int EmitCondition(BpfBuilder b, Condition c, int pass, int fail)
    {
        uint lo = OffsetArgs + 8 * (uint)c.Index, hi = lo + 4;
        uint vl = (uint)c.Value, vh = (uint)(c.Value >> 32);
        int low;
        switch (c.Op)
        {
            case "SCMP_CMP_EQ":
                b.Jump(BpfBuilder.Jeq, vl, pass, fail); low = b.Load(lo);
                b.Jump(BpfBuilder.Jeq, vh, low, fail);
                break;
            case "SCMP_CMP_NE":
                b.Jump(BpfBuilder.Jeq, vl, fail, pass); low = b.Load(lo);
                b.Jump(BpfBuilder.Jeq, vh, low, pass);
                break;
            case "SCMP_CMP_GT":
                b.Jump(BpfBuilder.Jgt, vl, pass, fail); low = b.Load(lo);
                b.Jump(BpfBuilder.Jgt, vh, pass, b.Jump(BpfBuilder.Jeq, vh, low, fail));
                break;
            case "SCMP_CMP_GE":
                b.Jump(BpfBuilder.Jge, vl, pass, fail); low = b.Load(lo);
                b.Jump(BpfBuilder.Jgt, vh, pass, b.Jump(BpfBuilder.Jeq, vh, low, fail));
                break;
            case "SCMP_CMP_LT":
                b.Jump(BpfBuilder.Jge, vl, fail, pass); low = b.Load(lo);
                b.Jump(BpfBuilder.Jgt, vh, fail, b.Jump(BpfBuilder.Jeq, vh, low, pass));
                break;
            case "SCMP_CMP_LE":
                b.Jump(BpfBuilder.Jgt, vl, fail, pass); low = b.Load(lo);
                b.Jump(BpfBuilder.Jgt, vh, fail, b.Jump(BpfBuilder.Jeq, vh, low, pass));
                break;
            case "SCMP_CMP_MASKED_EQ": // (arg & value) == valueTwo
                uint dl = (uint)c.ValueTwo, dh = (uint)(c.ValueTwo >> 32);
                b.Jump(BpfBuilder.Jeq, dl, pass, fail); b.And(vl); low = b.Load(lo);
                b.Jump(BpfBuilder.Jeq, dh, low, fail); b.And(vh);
                break;
            default:
                throw new InvalidOperationException("unreachable: operator validated in ParseConditions");
        }
        return b.Load(hi);
    }

    static Condition[] ParseConditions(List<SeccompArg>? args, string where)
    {
        if (args is null) return [];
        var result = new Condition[args.Count];
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a.Index > 5) throw new SeccompException($"seccomp: {where}.args[{i}]: index {a.Index} is out of range (0-5)");
            if (a.Op is not ("SCMP_CMP_NE" or "SCMP_CMP_LT" or "SCMP_CMP_LE" or "SCMP_CMP_EQ" or "SCMP_CMP_GE" or "SCMP_CMP_GT" or "SCMP_CMP_MASKED_EQ"))
                throw new SeccompException($"seccomp: {where}.args[{i}]: unknown operator \"{a.Op}\"");
            result[i] = new Condition((int)a.Index, a.Op, a.Value, a.ValueTwo);
        }
        return result;
    }

    static uint ParseAction(string action, uint? errnoRet, string field, string errnoField)
    {
        if (errnoRet is { } e && action is not ("SCMP_ACT_ERRNO" or "SCMP_ACT_TRACE"))
            throw new SeccompException($"seccomp: {errnoField} is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}");
        if (errnoRet > RetData) throw new SeccompException($"seccomp: {errnoField} {errnoRet} is out of range (0-65535)");
        uint data = errnoRet ?? Errno.EPERM;
        return action switch
        {
            "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => RetKillThread,
            "SCMP_ACT_KILL_PROCESS" => RetKillProcess,
            "SCMP_ACT_TRAP" => RetTrap,
            "SCMP_ACT_ERRNO" => RetErrno | data,
            "SCMP_ACT_TRACE" => RetTrace | data,
            "SCMP_ACT_ALLOW" => RetAllow,
            "SCMP_ACT_LOG" => RetLog,
            "SCMP_ACT_NOTIFY" => RetUserNotif,
            _ => throw new SeccompException($"seccomp: {field}: unknown action \"{action}\""),
        };
    }

    static uint ParseFlags(List<string>? flags)
    {
        uint bits = 0;
        foreach (var f in flags ?? [])
            bits |= f switch
            {
                "SECCOMP_FILTER_FLAG_TSYNC" => FlagTsync,
                "SECCOMP_FILTER_FLAG_LOG" => FlagLog,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FlagSpecAllow,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => FlagWaitKillableRecv,
                _ => throw new SeccompException($"seccomp: unknown flag \"{f}\""),
            };
        return bits;
    }
}
