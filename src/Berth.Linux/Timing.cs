using System.Diagnostics;

namespace Berth.Linux;

/// <summary>Start-up profiling: with BERTH_TIMING=1 in the environment, <see cref="Mark"/> prints the
/// milliseconds since process start (CLOCK_MONOTONIC, as /proc reports it) to stderr.</summary>
public static class Timing
{
    static readonly bool On = Environment.GetEnvironmentVariable("BERTH_TIMING") == "1";
    public static bool Enabled => On;
    static readonly long StartTicks = On ? ProcessStartTicks() : 0;

    public static void Mark(string label)
    {
        if (!On) return;
        var ms = (Stopwatch.GetTimestamp() - StartTicks) * 1000.0 / Stopwatch.Frequency;
        Console.Error.WriteLine($"[timing {Environment.ProcessId}] {ms,7:F2} ms  {label}");
    }

    static long ProcessStartTicks()
    {
        // starttime (clock ticks since boot) → Stopwatch ticks (CLOCK_MONOTONIC on Linux).
        var st = ProcStat.Read(Environment.ProcessId);
        var seconds = (st?.StartTime ?? 0) / 100.0;
        return (long)(seconds * Stopwatch.Frequency);
    }
}
