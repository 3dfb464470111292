namespace Berth.Linux;

/// <summary>Mount points of this process's mount namespace, from /proc/self/mountinfo.</summary>
public static class MountInfo
{
    public static IEnumerable<string> MountPoints()
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var f = line.Split(' ');
            if (f.Length >= 5) yield return Unescape(f[4]);
        }
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo octal.</summary>
    public static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new System.Text.StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    static bool IsOctal(string s, int i) =>
        i + 2 < s.Length && s[i] is >= '0' and <= '7' && s[i + 1] is >= '0' and <= '7' && s[i + 2] is >= '0' and <= '7';

    /// <summary>Whether <paramref name="path"/> (absolute, without symlinks) is itself a mount point.</summary>
    public static bool IsMountPoint(string path)
    {
        var p = path.Length > 1 ? path.TrimEnd('/') : path;
        foreach (var mp in MountPoints())
            if (mp == p) return true;
        return false;
    }

    /// <summary>The mount point that holds <paramref name="path"/> (the longest mount-point prefix).</summary>
    public static string? MountPointOf(string path)
    {
        string? best = null;
        foreach (var mp in MountPoints())
            if ((path == mp || mp == "/" || path.StartsWith(mp.TrimEnd('/') + "/", StringComparison.Ordinal)) && (best is null || mp.Length > best.Length))
                best = mp;
        return best;
    }
}
