using System.Globalization;

namespace Berth.Images;

/// <summary>docker's human-readable sizes and durations (go-units HumanSize, HumanSizeWithPrecision,
/// BytesSize, HumanDuration): the one copy images, ps, stats and system df use.</summary>
public static class Units
{
    static readonly string[] Decimal = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    static readonly string[] Binary = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

    /// <summary>Decimal units, 3 significant digits ("1.5MB", "0B").</summary>
    public static string HumanSize(double size) => HumanSizeWithPrecision(size, 3);

    public static string HumanSizeWithPrecision(double size, int precision) => Format(size, 1000, Decimal, precision);

    /// <summary>Binary units, 4 significant digits ("1.5MiB").</summary>
    public static string BytesSize(double size) => Format(size, 1024, Binary, 4);

    static string Format(double v, double step, string[] units, int precision)
    {
        var i = 0;
        while (v >= step && i < units.Length - 1) { v /= step; i++; }
        return v.ToString("G" + precision, CultureInfo.InvariantCulture) + units[i];
    }

    public static string HumanDuration(TimeSpan d)
    {
        var seconds = (long)d.TotalSeconds;
        if (seconds < 1) return "Less than a second";
        if (seconds == 1) return "1 second";
        if (seconds < 60) return $"{seconds} seconds";
        var minutes = (long)d.TotalMinutes;
        if (minutes == 1) return "About a minute";
        if (minutes < 60) return $"{minutes} minutes";
        var hours = (long)Math.Round(d.TotalHours);
        if (hours == 1) return "About an hour";
        if (hours < 48) return $"{hours} hours";
        if (hours < 24 * 7 * 2) return $"{hours / 24} days";
        if (hours < 24 * 30 * 2) return $"{hours / 24 / 7} weeks";
        if (hours < 24 * 365 * 2) return $"{hours / 24 / 30} months";
        return $"{hours / 24 / 365} years";
    }
}
