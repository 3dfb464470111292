using Berth.Cluster.ControlPlane;

namespace Berth.Cluster.Tests.ControlPlane;

public class IdleMemoryTrimmerTests
{
    [Fact]
    public void Trims_only_when_idle_and_grown_past_the_last_trim()
    {
        var t = new IdleMemoryTrimmer { IdleAllocationBytes = 10, GrowthBytes = 100 };
        Assert.False(t.ShouldTrim(allocatedInInterval: 11, committedBytes: 1_000)); // busy
        Assert.False(t.ShouldTrim(allocatedInInterval: 0, committedBytes: 100));    // not grown
        Assert.True(t.ShouldTrim(allocatedInInterval: 10, committedBytes: 101));
        var after = t.Trim();
        Assert.Equal(1, t.Trims);
        Assert.True(after > 0);
        Assert.False(t.ShouldTrim(0, after + 100));
        Assert.True(t.ShouldTrim(0, after + 101));
    }

    [Fact]
    public async Task A_burst_of_garbage_is_given_back_once_idle()
    {
        // a burst that leaves most of what it allocated as garbage, as a large scheduling run does
        var keep = new List<byte[]>();
        for (var i = 0; i < 4096; i++)
        {
            var b = new byte[64 << 10];
            if (i % 8 == 0) keep.Add(b);
        }
        GC.Collect();
        var t = new IdleMemoryTrimmer { Interval = TimeSpan.FromMilliseconds(100), GrowthBytes = 1 << 20 };
        using var cts = new CancellationTokenSource();
        var run = t.RunAsync(cts.Token);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (t.Trims == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        cts.Cancel();
        await run;
        Assert.True(t.Trims >= 1, "no trim while idle after the burst");
        GC.KeepAlive(keep);
    }
}
