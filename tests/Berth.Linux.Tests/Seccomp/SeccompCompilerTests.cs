using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using static Berth.Linux.Seccomp.SeccompAbi;
using Profile = Berth.Oci.Runtime.Seccomp;

namespace Berth.Linux.Tests.Seccomp;

public sealed class SeccompCompilerTests
{
    const int Getpid = 39, Getppid = 110, Mkdirat = 258; // x86_64

    internal static Profile Make(string defaultAction, params SeccompSyscall[] calls) =>
        new() { DefaultAction = defaultAction, Syscalls = [.. calls] };

    internal static SeccompSyscall Rule(string action, string[] names, uint? errnoRet = null, params SeccompArg[] args) =>
        new() { Names = [.. names], Action = action, ErrnoRet = errnoRet, Args = args.Length == 0 ? null : [.. args] };

    internal static SeccompArg Arg(uint index, string op, ulong value, ulong valueTwo = 0) =>
        new() { Index = index, Op = op, Value = value, ValueTwo = valueTwo };

    static uint X64(SeccompProgram p, int nr, params ulong[] args) => BpfInterpreter.Run(p.Instructions, nr, AuditArchX86_64, args);

    [Theory]
    [InlineData("SCMP_ACT_KILL", RetKillThread)]
    [InlineData("SCMP_ACT_KILL_THREAD", RetKillThread)]
    [InlineData("SCMP_ACT_KILL_PROCESS", RetKillProcess)]
    [InlineData("SCMP_ACT_TRAP", RetTrap)]
    [InlineData("SCMP_ACT_ERRNO", RetErrno | 1)]
    [InlineData("SCMP_ACT_TRACE", RetTrace | 1)]
    [InlineData("SCMP_ACT_LOG", RetLog)]
    [InlineData("SCMP_ACT_NOTIFY", RetUserNotif)]
    [InlineData("SCMP_ACT_ALLOW", RetAllow)]
    public void Each_action_returns_its_seccomp_value(string action, uint expected)
    {
        var defaultAction = action == "SCMP_ACT_ALLOW" ? "SCMP_ACT_LOG" : "SCMP_ACT_ALLOW";
        var p = SeccompCompiler.Compile(Make(defaultAction, Rule(action, ["getpid"])));
        Assert.Equal(expected, X64(p, Getpid));
        Assert.Equal(defaultAction == "SCMP_ACT_ALLOW" ? RetAllow : RetLog, X64(p, Getppid));
        Assert.Equal(action == "SCMP_ACT_NOTIFY", p.NeedsListener);
    }

    /// <summary>runc's patchbpf rule: numbers above every call the profile names are newer than the
    /// profile, so they get ENOSYS (libc then falls back) instead of the default action.</summary>
    [Fact]
    public void Calls_newer_than_the_profile_get_ENOSYS_unless_the_default_allows()
    {
        var strict = SeccompCompiler.Compile(Make("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid", "mkdirat"])));
        Assert.Equal(RetAllow, X64(strict, Getpid));
        Assert.Equal(RetAllow, X64(strict, Mkdirat));
        Assert.Equal(RetErrno | 1, X64(strict, Getppid)); // known to the profile's range: the default
        Assert.Equal(RetErrno | 38, X64(strict, Mkdirat + 1)); // newer than the highest named: ENOSYS
        Assert.Equal(RetErrno | 38, X64(strict, 435));
        var permissive = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getpid"])));
        Assert.Equal(RetAllow, X64(permissive, 435));
        var logging = SeccompCompiler.Compile(Make("SCMP_ACT_LOG", Rule("SCMP_ACT_ERRNO", ["getpid"])));
        Assert.Equal(RetLog, X64(logging, 435));
        // No rules at all: nothing to compare against, the default decides.
        Assert.Equal(RetErrno | 1, X64(SeccompCompiler.Compile(Make("SCMP_ACT_ERRNO")), 435));
    }

    [Fact]
    public void Errno_values_come_from_errnoRet_and_defaultErrnoRet()
    {
        var profile = Make("SCMP_ACT_ERRNO",
            Rule("SCMP_ACT_ERRNO", ["mkdirat"], errnoRet: 38),
            Rule("SCMP_ACT_TRACE", ["getppid"], errnoRet: 1234),
            Rule("SCMP_ACT_ALLOW", ["getpid"]));
        profile.DefaultErrnoRet = 95;
        var p = SeccompCompiler.Compile(profile);
        Assert.Equal(RetErrno | 38, X64(p, Mkdirat));
        Assert.Equal(RetTrace | 1234, X64(p, Getppid));
        Assert.Equal(RetAllow, X64(p, Getpid));
        Assert.Equal(RetErrno | 95, X64(p, 0));
        Assert.Equal(RetErrno | 1, X64(SeccompCompiler.Compile(Make("SCMP_ACT_ERRNO")), 0));
    }

    static bool Reference(string op, ulong arg, ulong value, ulong valueTwo) => op switch
    {
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_MASKED_EQ" => (arg & value) == valueTwo,
        _ => throw new ArgumentException(op),
    };

    static readonly string[] Ops = ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"];

    [Theory]
    [InlineData("SCMP_CMP_EQ", 0x1_0000_0005UL, 0UL, 0x0_0000_0005UL, false)] // same low word, other high word
    [InlineData("SCMP_CMP_EQ", 0x1_0000_0005UL, 0UL, 0x1_0000_0005UL, true)]
    [InlineData("SCMP_CMP_NE", 0x1_0000_0005UL, 0UL, 0x2_0000_0005UL, true)]
    [InlineData("SCMP_CMP_GT", 0x1_0000_0000UL, 0UL, 0x0_FFFF_FFFFUL, false)] // low word larger, high smaller
    [InlineData("SCMP_CMP_GT", 0x1_0000_0000UL, 0UL, 0x2_0000_0000UL, true)]  // low word equal, high larger
    [InlineData("SCMP_CMP_GE", 0x1_0000_0010UL, 0UL, 0x2_0000_0001UL, true)]
    [InlineData("SCMP_CMP_LT", 0x5_0000_0010UL, 0UL, 0x4_FFFF_FFFFUL, true)]
    [InlineData("SCMP_CMP_LT", 0x5_0000_0010UL, 0UL, 0x6_0000_0000UL, false)]
    [InlineData("SCMP_CMP_LE", 0x5_0000_0010UL, 0UL, 0x5_0000_0010UL, true)]
    [InlineData("SCMP_CMP_LE", 0x5_0000_0010UL, 0UL, 0x5_0000_0011UL, false)]
    [InlineData("SCMP_CMP_MASKED_EQ", 0xFF_0000_000FUL, 0x12_0000_0003UL, 0x12_ABCD_EF03UL, true)]
    [InlineData("SCMP_CMP_MASKED_EQ", 0xFF_0000_000FUL, 0x12_0000_0003UL, 0x13_0000_0003UL, false)]
    [InlineData("SCMP_CMP_MASKED_EQ", 0xFF_0000_000FUL, 0x12_0000_0003UL, 0x12_0000_0004UL, false)]
    public void Operators_compare_all_64_bits(string op, ulong value, ulong valueTwo, ulong arg, bool matches)
    {
        var p = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getpid"], 7, Arg(2, op, value, valueTwo))));
        Assert.Equal(matches ? RetErrno | 7 : RetAllow, X64(p, Getpid, 0, 0, arg));
    }

    [Fact]
    public void Operators_agree_with_a_reference_on_boundary_values_for_every_arg_index()
    {
        ulong[] words = [0, 1, 2, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF];
        var values = (from hi in words from lo in words select (hi << 32) | lo).ToArray();
        var rng = new Random(4242);
        int checks = 0;
        foreach (var op in Ops)
            for (uint index = 0; index < 6; index++)
                for (int v = 0; v < 6; v++)
                {
                    ulong value = values[rng.Next(values.Length)], two = values[rng.Next(values.Length)] & (op == "SCMP_CMP_MASKED_EQ" && v % 2 == 0 ? value : ~0UL);
                    var p = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getpid"], 9, Arg(index, op, value, two))));
                    foreach (var arg in values.Concat([value, value - 1, value + 1, value ^ (1UL << 32)]))
                    {
                        var args = new ulong[6];
                        for (int i = 0; i < 6; i++) args[i] = ~arg; // other args must not matter
                        args[index] = arg;
                        bool expected = Reference(op, arg, value, two);
                        Assert.True((expected ? RetErrno | 9 : RetAllow) == X64(p, Getpid, args),
                            $"{op} args[{index}]=0x{arg:x} value=0x{value:x} valueTwo=0x{two:x}: expected {expected}");
                        checks++;
                    }
                }
        Assert.True(checks > 10000);
    }

    [Fact]
    public void Args_of_one_rule_are_ANDed_and_rules_of_one_call_are_ORed_first_match_wins()
    {
        var p = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_ERRNO", ["getpid"], 1, Arg(0, "SCMP_CMP_EQ", 1), Arg(1, "SCMP_CMP_EQ", 2)),
            Rule("SCMP_ACT_ERRNO", ["getpid"], 2, Arg(1, "SCMP_CMP_EQ", 2)),
            Rule("SCMP_ACT_ERRNO", ["getppid", "getpid"], 3, Arg(0, "SCMP_CMP_GT", 100))));
        Assert.Equal(RetErrno | 1, X64(p, Getpid, 1, 2));
        Assert.Equal(RetErrno | 2, X64(p, Getpid, 0, 2));
        Assert.Equal(RetErrno | 3, X64(p, Getpid, 101, 3));
        Assert.Equal(RetErrno | 2, X64(p, Getpid, 101, 2)); // rules 2 and 3 hold: the earlier wins
        Assert.Equal(RetAllow, X64(p, Getpid, 1, 3));
        Assert.Equal(RetErrno | 3, X64(p, Getppid, 101, 2));
        Assert.Equal(RetAllow, X64(p, Getppid, 1, 2));
    }

    [Fact]
    public void Calls_of_architectures_not_in_the_filter_are_killed()
    {
        var p = SeccompCompiler.Compile(Make("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid"])));
        Assert.Equal(RetAllow, X64(p, Getpid));
        Assert.Equal(RetKillThread, BpfInterpreter.Run(p.Instructions, 20, AuditArchI386));        // i386 getpid
        Assert.Equal(RetKillThread, X64(p, Getpid | (int)X32SyscallBit));                          // x32 getpid
        Assert.Equal(RetKillThread, BpfInterpreter.Run(p.Instructions, 172, AuditArchAarch64));
        Assert.Equal(RetErrno | 1, X64(p, -1)); // nr -1 (a tracer cancelled the call) is not x32
    }

    [Fact]
    public void Listed_i386_and_x32_use_their_own_tables()
    {
        var profile = Make("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid"]), Rule("SCMP_ACT_TRAP", ["rt_sigaction"]));
        profile.Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
        var p = SeccompCompiler.Compile(profile);
        Assert.Equal(RetAllow, BpfInterpreter.Run(p.Instructions, 20, AuditArchI386));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(p.Instructions, Getpid, AuditArchI386)); // 39 is mkdir on i386
        Assert.Equal(RetAllow, X64(p, Getpid | (int)X32SyscallBit));
        Assert.Equal(RetTrap, X64(p, 512 | (int)X32SyscallBit));   // x32 rt_sigaction
        Assert.Equal(RetErrno | 1, X64(p, 13 | (int)X32SyscallBit)); // 13 is rt_sigaction only on x86_64
        Assert.Equal(RetTrap, X64(p, 13));
        Assert.Equal(RetTrap, BpfInterpreter.Run(p.Instructions, 174, AuditArchI386));
    }

    [Fact]
    public void Aarch64_native_filters_by_the_generic_table()
    {
        var p = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["mkdirat", "mkdir"], 5)), "SCMP_ARCH_AARCH64");
        Assert.Equal(RetErrno | 5, BpfInterpreter.Run(p.Instructions, 34, AuditArchAarch64));
        Assert.Equal(RetAllow, BpfInterpreter.Run(p.Instructions, Mkdirat, AuditArchAarch64));
        Assert.Equal(RetKillThread, X64(p, Mkdirat));
        Assert.Contains(p.Warnings, w => w.Contains("\"mkdir\""));
    }

    [Fact]
    public void Unknown_names_are_skipped_with_a_warning()
    {
        var profile = Make("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["no_such_call", "chown32", "getpid"]));
        profile.Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_ARM"];
        var p = SeccompCompiler.Compile(profile);
        Assert.Contains("seccomp: unknown system call \"no_such_call\": skipped", p.Warnings);
        Assert.Contains("seccomp: system call \"chown32\" does not exist on SCMP_ARCH_X86_64: skipped there", p.Warnings);
        Assert.Contains(p.Warnings, w => w.Contains("SCMP_ARCH_ARM is not handled"));
        Assert.Equal(3, p.Warnings.Count);
        Assert.Equal(RetErrno | 1, X64(p, Getpid));
        Assert.Equal(RetErrno | 1, BpfInterpreter.Run(p.Instructions, 212, AuditArchI386)); // chown32
    }

    [Fact]
    public void Long_programs_jump_through_trampolines()
    {
        // 400 conditional rules over ~330 x86_64 calls, plus rules for getpid at the start and the end:
        // most targets are farther than an 8-bit jump reaches.
        var names = Enumerable.Range(0, 330).Select(nr => (nr, name: NameOf(nr))).Where(x => x.name is not null).ToList();
        var calls = new List<SeccompSyscall> { Rule("SCMP_ACT_ERRNO", ["getpid"], 1, Arg(0, "SCMP_CMP_EQ", 1)) };
        foreach (var (nr, name) in names) calls.Add(Rule("SCMP_ACT_ERRNO", [name!], (uint)(nr + 100), Arg(0, "SCMP_CMP_EQ", (ulong)nr)));
        for (int i = 0; i < 70; i++) calls.Add(Rule("SCMP_ACT_TRACE", [names[i].name!], (uint)i, Arg(1, "SCMP_CMP_GE", 1000)));
        calls.Add(Rule("SCMP_ACT_TRAP", ["getpid"]));
        var p = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW", [.. calls]));

        Assert.True(p.Instructions.Count > 2000, $"{p.Instructions.Count}");
        Assert.Contains(p.Instructions, i => i.Code == BpfBuilder.Ja && i.K > 255);
        Assert.Empty(p.Warnings);
        foreach (var (nr, _) in names)
        {
            Assert.Equal(RetErrno | (uint)(nr + 100), X64(p, nr, (ulong)nr));
            if (nr != Getpid) Assert.Equal(RetAllow, X64(p, nr, (ulong)nr + 1));
        }
        for (int i = 0; i < 70; i++) Assert.Equal(RetTrace | (uint)i, X64(p, names[i].nr, 5000, 1000));
        Assert.Equal(RetErrno | 1, X64(p, Getpid, 1));
        Assert.Equal(RetTrap, X64(p, Getpid, 2));
        Assert.Equal(RetAllow, X64(p, 400));
    }

    static string? NameOf(int nr)
    {
        foreach (var name in AllX86_64Names.Value) if (SyscallTables.X86_64(name) == nr) return name;
        return null;
    }

    static readonly Lazy<string[]> AllX86_64Names = new(() =>
        File.ReadAllLines(Path.Combine(FindRepo(), "src/Berth.Linux/Seccomp/SyscallTables.g.cs"))
            .SkipWhile(l => !l.Contains("X86_64(string name)")).TakeWhile(l => !l.Contains("_ => -1"))
            .Select(l => l.Trim()).Where(l => l.StartsWith('"')).Select(l => l[1..l.IndexOf('"', 1)]).ToArray());

    static string FindRepo()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Berth.slnx"))) dir = Path.GetDirectoryName(dir)!;
        return dir;
    }

    [Fact]
    public void Too_many_instructions_are_refused()
    {
        var args = Enumerable.Range(0, 6).Select(i => Arg((uint)i, "SCMP_CMP_LT", 1UL << 40)).ToArray();
        var calls = Enumerable.Range(0, 150).Select(_ => Rule("SCMP_ACT_ERRNO", ["getpid"], 1, args)).ToArray();
        var e = Assert.Throws<SeccompException>(() => SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW", calls)));
        Assert.Contains("more than the kernel's 4096", e.Message);
    }

    public static TheoryData<string, Profile> Refused => new()
    {
        { "defaultAction is required", new Profile() },
        { "unknown action \"SCMP_ACT_MAYBE\"", Make("SCMP_ACT_MAYBE") },
        { "syscalls[0].action: unknown action \"ALLOW\"", Make("SCMP_ACT_ERRNO", Rule("ALLOW", ["getpid"])) },
        { "syscalls[1].args[0]: unknown operator \"SCMP_CMP_XX\"", Make("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["read"]), Rule("SCMP_ACT_ALLOW", ["getpid"], null, Arg(0, "SCMP_CMP_XX", 1))) },
        { "syscalls[0].args[1]: index 6 is out of range (0-5)", Make("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid"], null, Arg(0, "SCMP_CMP_EQ", 1), Arg(6, "SCMP_CMP_EQ", 1))) },
        { "syscalls[0].errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW", Make("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["getpid"], 1)) },
        { "defaultErrnoRet is only valid", new Profile { DefaultAction = "SCMP_ACT_KILL", DefaultErrnoRet = 1 } },
        { "syscalls[0]: names is empty", Make("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", [])) },
        { "unknown architecture \"SCMP_ARCH_Z80\"", new Profile { DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"] } },
        { "unknown flag \"SECCOMP_FILTER_FLAG_NEW_LISTENER\"", new Profile { DefaultAction = "SCMP_ACT_ALLOW", Flags = ["SECCOMP_FILTER_FLAG_NEW_LISTENER"] } },
        { "defaultAction SCMP_ACT_NOTIFY is not allowed", Make("SCMP_ACT_NOTIFY") },
        { "errnoRet 65536 is out of range", Make("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", ["getpid"], 65536)) },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Invalid_profiles_are_refused_with_one_line(string expected, Profile profile)
    {
        var e = Assert.Throws<SeccompException>(() => SeccompCompiler.Compile(profile));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Known_flags_map_to_their_bits()
    {
        var p = SeccompCompiler.Compile(new Profile
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        });
        Assert.Equal(1u | 2 | 4 | 32, p.Flags);
        Assert.False(p.NeedsListener);
    }

    [Fact]
    public void Syscall_tables_hold_the_current_abi()
    {
        Assert.Equal(258, SyscallTables.X86_64("mkdirat"));
        Assert.Equal(317, SyscallTables.X86_64("seccomp"));
        Assert.Equal(335, SyscallTables.X86_64("uretprobe"));
        Assert.Equal(462, SyscallTables.X86_64("mseal"));
        Assert.Equal(469, SyscallTables.X86_64("file_setattr"));
        Assert.Equal(-1, SyscallTables.X86_64("chown32"));
        Assert.Equal(512, SyscallTables.X32("rt_sigaction"));
        Assert.Equal(-1, SyscallTables.X32("uselib"));
        Assert.Equal(20, SyscallTables.I386("getpid"));
        Assert.Equal(462, SyscallTables.I386("mseal"));
        Assert.Equal(34, SyscallTables.Aarch64("mkdirat"));
        Assert.Equal(435, SyscallTables.Aarch64("clone3"));
        Assert.Equal(-1, SyscallTables.Aarch64("open"));
        Assert.Equal(79, SyscallTables.Aarch64("newfstatat"));
        Assert.True(AllX86_64Names.Value.Length > 370, $"{AllX86_64Names.Value.Length}");
    }
}
