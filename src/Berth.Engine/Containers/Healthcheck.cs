using System.Globalization;
using Berth.Oci.Image;

namespace Berth.Engine.Containers;

/// <summary>Config.Healthcheck as docker treats it: the request's fields over the image's, docker's
/// validation messages, and the command a test runs.</summary>
public static class Healthcheck
{
    /// <summary>The request's health check completed from the image's (moby's merge: an empty Test and
    /// zero durations/retries take the image's); NONE stays (it disables the image's).</summary>
    public static void Complete(ContainerConfig cfg, HealthConfig? image)
    {
        if (image is not null)
        {
            if (cfg.Healthcheck is null) cfg.Healthcheck = Copy(image);
            else
            {
                var h = cfg.Healthcheck;
                if (h.Test is null or { Count: 0 }) h.Test = image.Test is null ? null : [.. image.Test];
                if (h.Interval is null or 0) h.Interval = image.Interval;
                if (h.Timeout is null or 0) h.Timeout = image.Timeout;
                if (h.StartPeriod is null or 0) h.StartPeriod = image.StartPeriod;
                if (h.Retries is null or 0) h.Retries = image.Retries;
            }
        }
        if (cfg.Healthcheck is not { } hc) return;
        const long ms = 1_000_000;
        if (hc.Interval is > 0 and < ms) throw EngineException.Invalid("Interval in Healthcheck cannot be less than 1ms");
        if (hc.Timeout is > 0 and < ms) throw EngineException.Invalid("Timeout in Healthcheck cannot be less than 1ms");
        if (hc.StartPeriod is > 0 and < ms) throw EngineException.Invalid("StartPeriod in Healthcheck cannot be less than 1ms");
        if (hc.Interval < 0 || hc.Timeout < 0 || hc.StartPeriod < 0) throw EngineException.Invalid("durations in Healthcheck cannot be negative");
        if (hc.Retries < 0) throw EngineException.Invalid("Retries in Healthcheck cannot be negative");
        if (hc.Test is { Count: > 0 } t && t[0] is not ("NONE" or "CMD" or "CMD-SHELL"))
            throw EngineException.Invalid($"invalid health check test \"{t[0]}\": expected NONE, CMD or CMD-SHELL");
        if (hc.Test is ["CMD"] or ["CMD-SHELL"]) throw EngineException.Invalid("invalid health check: the test has no command");
    }

    static HealthConfig Copy(HealthConfig h) => new()
    {
        Test = h.Test is null ? null : [.. h.Test], Interval = h.Interval, Timeout = h.Timeout, StartPeriod = h.StartPeriod,
        StartInterval = h.StartInterval, Retries = h.Retries,
    };

    /// <summary>The argv of the test, or null when there is none (no test, or NONE).</summary>
    public static List<string>? Command(HealthConfig? h) => h?.Test switch
    {
        ["CMD", .. var args] when args.Count > 0 => [.. args],
        ["CMD-SHELL", .. var cmd] when cmd.Count > 0 => ["/bin/sh", "-c", string.Join(' ', cmd)],
        _ => null,
    };

    /// <summary>Go's time.ParseDuration (300ms, 1.5s, 1m30s, 2h45m); nanoseconds.</summary>
    public static long ParseDuration(string flag, string s)
    {
        var bad = EngineException.Invalid($"invalid argument \"{s}\" for \"{flag}\" flag: time: invalid duration \"{s}\"");
        var t = s.Trim();
        var neg = t.StartsWith('-');
        if (neg || t.StartsWith('+')) t = t[1..];
        if (t == "0") return 0;
        if (t.Length == 0) throw bad;
        double total = 0;
        var i = 0;
        while (i < t.Length)
        {
            var start = i;
            while (i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.')) i++;
            if (start == i || !double.TryParse(t[start..i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) throw bad;
            var us = i;
            while (i < t.Length && !char.IsAsciiDigit(t[i]) && t[i] != '.') i++;
            total += v * (t[us..i] switch
            {
                "ns" => 1, "us" or "µs" => 1e3, "ms" => 1e6, "s" => 1e9, "m" => 60e9, "h" => 3600e9,
                _ => throw bad,
            });
        }
        return (long)(neg ? -total : total);
    }
}
