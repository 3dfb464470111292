using Berth.Linux.Cgroups;
using Berth.Oci.Runtime;

namespace Berth.Linux.Tests.Cgroups;

public class DeviceFilterTests
{
    static string Hex(byte[] b) => Convert.ToHexString(b).ToLowerInvariant();

    [Fact]
    public void Program_bytes_for_a_small_rule_set()
    {
        var prog = DeviceFilter.Build(
        [
            new DeviceCgroup { Allow = false, Access = "rwm" },
            new DeviceCgroup { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" },
            new DeviceCgroup { Allow = true, Type = "c", Major = 5, Access = "rw" },
        ]);
        string[] expected =
        [
            // prologue: R2 = type, R3 = access, R4 = major, R5 = minor
            "6112000000000000", "54020000ffff0000", "6113000000000000", "7403000010000000",
            "6114040000000000", "6115080000000000",
            // c 5:* rw (the last exception comes first)
            "5502060002000000", // if R2 != char goto +6
            "bc31000000000000", // R1 = R3
            "5401000006000000", // R1 &= r|w
            "5d31030000000000", // if R1 != R3 goto +3
            "5504020005000000", // if R4 != 5 goto +2
            "b400000001000000", "9500000000000000", // return 1
            // c 1:3 rwm
            "5502040002000000", "5504030001000000", "5505020003000000",
            "b400000001000000", "9500000000000000",
            // default: deny
            "b400000000000000", "9500000000000000",
        ];
        Assert.Equal(string.Concat(expected), Hex(prog.ToBytes()));
        Assert.False(prog.DefaultAllow);
    }

    [Fact]
    public void Allow_all_then_deny_gives_a_deny_exception_with_default_allow()
    {
        var prog = DeviceFilter.Build(
        [
            new DeviceCgroup { Allow = true },
            new DeviceCgroup { Allow = false, Type = "b", Major = 8, Minor = 0, Access = "w" },
        ]);
        Assert.True(prog.DefaultAllow);
        var ins = prog.Instructions;
        Assert.Equal(6 + 1 + 3 + 2 + 2 + 2, ins.Count);
        Assert.Equal(1, ins[6].Imm);                    // block device
        Assert.Equal(0, ins[^4].Imm);                   // exception verdict: deny
        Assert.Equal(1, ins[^2].Imm);                   // default: allow
    }

    [Fact]
    public void Empty_rules_deny_everything_and_holes_in_wildcards_are_refused()
    {
        Assert.Equal("b400000000000000" + "9500000000000000", Hex(DeviceFilter.Build([]).ToBytes())[(6 * 16)..]);
        var e = Assert.Throws<CgroupException>(() => DeviceFilter.Build(
        [
            new DeviceCgroup { Allow = false },
            new DeviceCgroup { Allow = true, Type = "c", Access = "rwm" },
            new DeviceCgroup { Allow = false, Type = "c", Major = 1, Minor = 3, Access = "r" },
        ]));
        Assert.Contains("overlaps the wildcard exception \"c *:* rwm\"", e.Message);
        Assert.Throws<CgroupException>(() => DeviceFilter.Build([new DeviceCgroup { Allow = true, Type = "p" }]));
        Assert.Throws<CgroupException>(() => DeviceFilter.Build([new DeviceCgroup { Allow = true, Type = "c", Access = "rx" }]));
    }

    [Fact]
    public void V1_lines()
    {
        Assert.Equal("c 1:3 rwm", DeviceFilter.V1Line(new DeviceCgroup { Type = "c", Major = 1, Minor = 3 }));
        Assert.Equal("b *:* r", DeviceFilter.V1Line(new DeviceCgroup { Type = "b", Access = "r" }));
        Assert.Equal("a *:* rwm", DeviceFilter.V1Line(new DeviceCgroup()));
    }
}
