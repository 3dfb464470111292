using Berth.Linux.Seccomp;

namespace Berth.Linux.Tests.Seccomp;

/// <summary>A classic-BPF interpreter for seccomp programs, strict like the kernel's checker: only the
/// opcodes seccomp accepts, aligned 32-bit loads inside seccomp_data, jumps inside the program, and
/// every path ends in a return.</summary>
static class BpfInterpreter
{
    public static uint Run(IReadOnlyList<SockFilter> program, int nr, uint arch, params ulong[] args)
    {
        var data = new byte[64];
        BitConverter.TryWriteBytes(data.AsSpan(0), nr);
        BitConverter.TryWriteBytes(data.AsSpan(4), arch);
        BitConverter.TryWriteBytes(data.AsSpan(8), 0x7f00_1234_5678UL); // instruction_pointer
        for (int i = 0; i < args.Length; i++) BitConverter.TryWriteBytes(data.AsSpan(16 + 8 * i), args[i]);

        Assert.InRange(program.Count, 1, SeccompCompiler.MaxInstructions);
        uint a = 0;
        int pc = 0, steps = 0;
        while (true)
        {
            Assert.True(pc < program.Count, $"pc {pc} ran off the end of a {program.Count}-instruction program");
            Assert.True(++steps <= program.Count, "a cBPF program cannot loop");
            var ins = program[pc];
            switch (ins.Code)
            {
                case 0x20: // ld [k]
                    Assert.True(ins.K % 4 == 0 && ins.K <= 60, $"bad load offset {ins.K} at {pc}");
                    a = BitConverter.ToUInt32(data, (int)ins.K); pc++; break;
                case 0x54: a &= ins.K; pc++; break; // and #k
                case 0x05: pc += 1 + (int)ins.K; break; // ja
                case 0x15: pc += 1 + (a == ins.K ? ins.Jt : ins.Jf); break;
                case 0x25: pc += 1 + (a > ins.K ? ins.Jt : ins.Jf); break;
                case 0x35: pc += 1 + (a >= ins.K ? ins.Jt : ins.Jf); break;
                case 0x06: return ins.K;
                default: Assert.Fail($"opcode 0x{ins.Code:x} at {pc} not expected"); break;
            }
        }
    }
}
