namespace Berth.Linux.Seccomp;

/// <summary>Builds a classic-BPF program back to front, so that every jump target already exists.
/// A label is an instruction's index counted from the end. A conditional jump whose target is
/// farther than 255 instructions goes through a trampoline (BPF_JA, 32-bit offset) placed right
/// after it; trampolines are reused while they stay within reach.</summary>
internal sealed class BpfBuilder
{
    public const ushort LdAbs = 0x20, AndK = 0x54, Ja = 0x05, Jeq = 0x15, Jgt = 0x25, Jge = 0x35, RetK = 0x06;

    readonly List<SockFilter> reversed = new();
    readonly Dictionary<int, int> trampolines = new();

    public int Count => reversed.Count;

    int Emit(SockFilter instruction)
    {
        reversed.Add(instruction);
        return reversed.Count - 1;
    }

    /// <summary>Instructions to skip to reach <paramref name="label"/> from the next one emitted.</summary>
    int Distance(int label) => Count - 1 - label;

    public int Ret(uint k) => Emit(new(RetK, 0, 0, k));
    public int Load(uint offset) => Emit(new(LdAbs, 0, 0, offset));
    public int And(uint k) => Emit(new(AndK, 0, 0, k));

    public int Jump(ushort op, uint k, int whenTrue, int whenFalse)
    {
        while (Distance(whenTrue) > 255 || Distance(whenFalse) > 255)
        {
            if (Distance(whenTrue) > 255) whenTrue = Reach(whenTrue);
            else whenFalse = Reach(whenFalse);
        }
        return Emit(new(op, (byte)Distance(whenTrue), (byte)Distance(whenFalse), k));
    }

    int Reach(int target)
    {
        if (trampolines.TryGetValue(target, out var near) && Distance(near) <= 255) return near;
        var label = Emit(new(Ja, 0, 0, (uint)Distance(target)));
        trampolines[target] = label;
        return label;
    }

    /// <summary>The program in execution order.</summary>
    public SockFilter[] ToProgram()
    {
        var program = reversed.ToArray();
        Array.Reverse(program);
        return program;
    }
}
