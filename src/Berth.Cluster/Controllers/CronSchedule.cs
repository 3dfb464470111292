namespace Berth.Cluster.Controllers;

/// <summary>
/// A CronJob schedule as Kubernetes parses it (the standard 5-field form of robfig/cron's
/// ParseStandard): minute, hour, day of month, month (1-12 or JAN-DEC), day of week (0-6 or SUN-SAT,
/// 7 is Sunday too), each a list of *, ?, N, N-M, with an optional /STEP; the descriptors @yearly,
/// @annually, @monthly, @weekly, @daily, @midnight, @hourly. When both day fields are restricted a
/// day matches either (cron's rule); otherwise both must match. Parse errors carry robfig's messages,
/// which Kubernetes returns as the validation error. Not supported: @every (Kubernetes accepts it).
/// </summary>
public sealed class CronSchedule
{
    readonly ulong _minutes;   // bit i: minute i
    readonly uint _hours, _dom, _months;
    readonly byte _dow;
    readonly bool _domStar, _dowStar;

    CronSchedule(ulong min, uint hour, uint dom, uint month, byte dow, bool domStar, bool dowStar)
    {
        _minutes = min; _hours = hour; _dom = dom; _months = month; _dow = dow; _domStar = domStar; _dowStar = dowStar;
    }

    static readonly string[] MonthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    static readonly string[] DayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

    /// <summary>Parses a schedule; throws <see cref="FormatException"/> with Kubernetes' (robfig/cron's) message.</summary>
    public static CronSchedule Parse(string spec)
    {
        if (spec is null || spec.Trim().Length == 0) throw new FormatException("empty spec string");
        spec = spec.Trim();
        if (spec.StartsWith("TZ=", StringComparison.Ordinal) || spec.StartsWith("CRON_TZ=", StringComparison.Ordinal))
            throw new FormatException("cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
        if (spec.StartsWith('@'))
            spec = spec switch
            {
                "@yearly" or "@annually" => "0 0 1 1 *",
                "@monthly" => "0 0 1 * *",
                "@weekly" => "0 0 * * 0",
                "@daily" or "@midnight" => "0 0 * * *",
                "@hourly" => "0 * * * *",
                _ => throw new FormatException($"unrecognized descriptor: {spec}"),
            };
        var f = spec.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (f.Length != 5) throw new FormatException($"expected exactly 5 fields, found {f.Length}: [{string.Join(" ", f)}]");
        var min = Field(f[0], 0, 59, null);
        var hour = Field(f[1], 0, 23, null);
        var dom = Field(f[2], 1, 31, null);
        var month = Field(f[3], 1, 12, MonthNames);
        var dow = Field(f[4], 0, 7, DayNames);
        if ((dow & (1UL << 7)) != 0) dow |= 1;   // 7 = Sunday
        return new CronSchedule(min, (uint)hour, (uint)dom, (uint)month, (byte)(dow & 0x7f), IsStar(f[2]), IsStar(f[4]));
    }

    /// <summary>Null when valid, else the parse error (for the API's validation).</summary>
    public static string? Validate(string spec)
    {
        try { Parse(spec); return null; }
        catch (FormatException e) { return e.Message; }
    }

    static bool IsStar(string field) => field.StartsWith('*') || field.StartsWith('?');

    static ulong Field(string field, int lo, int hi, string[]? names)
    {
        ulong bits = 0;
        foreach (var part in field.Split(','))
        {
            if (part.Length == 0) throw new FormatException($"failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax");
            var slash = part.Split('/');
            if (slash.Length > 2) throw new FormatException($"too many slashes: {part}");
            int start, end, step = 1;
            var range = slash[0].Split('-');
            if (range.Length > 2) throw new FormatException($"too many hyphens: {part}");
            bool star = slash[0] is "*" or "?";
            if (star) { start = lo; end = hi; }
            else
            {
                start = Number(range[0], names, lo);
                end = range.Length == 2 ? Number(range[1], names, lo) : start;
            }
            if (slash.Length == 2)
            {
                step = ParseInt(slash[1]);
                if (step <= 0) throw new FormatException($"step of range should be a positive number: {part}");
                if (!star && range.Length == 1) end = hi;   // N/STEP means N-max/STEP
            }
            if (start < lo) throw new FormatException($"beginning of range ({start}) below minimum ({lo}): {part}");
            if (end > hi) throw new FormatException($"end of range ({end}) above maximum ({hi}): {part}");
            if (start > end) throw new FormatException($"beginning of range ({start}) beyond end of range ({end}): {part}");
            for (int i = start; i <= end; i += step) bits |= 1UL << i;
        }
        return bits;
    }

    static int Number(string s, string[]? names, int lo)
    {
        if (names is not null)
        {
            var i = Array.IndexOf(names, s.ToLowerInvariant());
            if (i >= 0) return i + (lo == 1 ? 1 : 0);
        }
        return ParseInt(s);
    }

    static int ParseInt(string s)
    {
        if (int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v)) return v;
        throw new FormatException($"failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax");
    }

    bool DayMatches(DateTime local)
    {
        bool d = (_dom & (1u << local.Day)) != 0, w = (_dow & (1 << (int)local.DayOfWeek)) != 0;
        return _domStar || _dowStar ? d && w : d || w;
    }

    /// <summary>The first scheduled instant strictly after <paramref name="after"/>, in <paramref name="zone"/>'s wall time; null if none within 5 years.</summary>
    public DateTime? Next(DateTime after, TimeZoneInfo zone)
    {
        var utc = DateTime.SpecifyKind(after, DateTimeKind.Utc);
        var t = TimeZoneInfo.ConvertTimeFromUtc(utc, zone);
        t = new DateTime(t.Year, t.Month, t.Day, t.Hour, t.Minute, 0, DateTimeKind.Unspecified).AddMinutes(1);
        var limit = t.AddYears(5);
        while (t < limit)
        {
            if ((_months & (1u << t.Month)) == 0) { t = new DateTime(t.Year, t.Month, 1).AddMonths(1); continue; }
            if (!DayMatches(t)) { t = t.Date.AddDays(1); continue; }
            if ((_hours & (1u << t.Hour)) == 0) { t = t.Date.AddHours(t.Hour + 1); continue; }
            if ((_minutes & (1UL << t.Minute)) == 0) { t = t.AddMinutes(1); continue; }
            if (zone.IsInvalidTime(t)) { t = t.AddMinutes(1); continue; }   // skipped by a DST jump
            var r = TimeZoneInfo.ConvertTimeToUtc(t, zone);
            if (r > utc) return r;
            t = t.AddMinutes(1);
        }
        return null;
    }
}
