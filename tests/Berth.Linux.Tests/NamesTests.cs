namespace Berth.Linux.Tests;

public sealed class NamesTests
{
    [Theory]
    [InlineData("KILL", 9)]
    [InlineData("SIGKILL", 9)]
    [InlineData("9", 9)]
    [InlineData("term", 15)]
    [InlineData("SIGUSR1", 10)]
    [InlineData("SIGRTMIN", 34)]
    [InlineData("RTMIN+2", 36)]
    [InlineData("SIGRTMAX", 64)]
    public void Signals_parse_like_kill(string text, int expected) => Assert.Equal(expected, Signals.Parse(text));

    [Theory]
    [InlineData("SIGFOO")]
    [InlineData("0")]
    [InlineData("65")]
    [InlineData("")]
    public void Bad_signals_are_refused(string text) => Assert.Throws<ArgumentException>(() => Signals.Parse(text));

    [Fact]
    public void Capabilities_parse_to_bits_and_back()
    {
        var mask = Caps.Parse(["CAP_KILL", "net_bind_service", "CAP_AUDIT_WRITE"], "bounding");
        Assert.Equal((1UL << 5) | (1UL << 10) | (1UL << 29), mask);
        Assert.Equal(["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"], Caps.ToNames(mask));
    }

    [Fact]
    public void Unknown_capability_names_the_set()
    {
        var e = Assert.Throws<ArgumentException>(() => Caps.Parse(["CAP_FLY"], "ambient"));
        Assert.Equal("unknown capability \"CAP_FLY\" in ambient set", e.Message);
    }

    [Fact]
    public void Rlimit_names()
    {
        Assert.Equal(7, Rlimits.Parse("RLIMIT_NOFILE"));
        Assert.Throws<ArgumentException>(() => Rlimits.Parse("RLIMIT_BOGUS"));
    }
}
