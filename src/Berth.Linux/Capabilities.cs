using System.Runtime.InteropServices;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>Linux capability names and the five sets; applied with capset/prctl on the calling thread.</summary>
public static unsafe class Caps
{
    public static readonly string[] Names =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
        "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];

    static int? _lastCap;

    /// <summary>The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap).</summary>
    public static int LastCap => _lastCap ??= ReadLastCap();

    static int ReadLastCap()
    {
        try { return int.Parse(File.ReadAllText("/proc/sys/kernel/cap_last_cap").Trim()); }
        catch (IOException) { return Names.Length - 1; }
    }

    /// <summary>Parses names to a bit mask. Unknown names throw; names this kernel lacks are
    /// reported in <paramref name="unsupported"/> (runc warns and skips those).</summary>
    public static ulong Parse(IEnumerable<string>? names, string set, List<string>? unsupported = null)
    {
        ulong mask = 0;
        if (names is null) return 0;
        foreach (var raw in names)
        {
            var name = raw.ToUpperInvariant();
            if (!name.StartsWith("CAP_", StringComparison.Ordinal)) name = "CAP_" + name;
            var idx = Array.IndexOf(Names, name);
            if (idx < 0) throw new ArgumentException($"unknown capability \"{raw}\" in {set} set");
            if (idx > LastCap) { unsupported?.Add(name); continue; }
            mask |= 1UL << idx;
        }
        return mask;
    }

    public static List<string> ToNames(ulong mask)
    {
        var r = new List<string>();
        for (var i = 0; i <= Math.Min(LastCap, Names.Length - 1); i++)
            if ((mask & (1UL << i)) != 0) r.Add(Names[i]);
        return r;
    }

    public static ulong All => LastCap >= 63 ? ~0UL : (1UL << (LastCap + 1)) - 1;

    /// <summary>Drops every capability not in <paramref name="bounding"/> from the bounding set.</summary>
    public static void DropBounding(ulong bounding)
    {
        for (var i = 0; i <= LastCap; i++)
        {
            if ((bounding & (1UL << i)) != 0) continue;
            if (prctl(PR_CAPBSET_READ, (ulong)i, 0, 0, 0) <= 0) continue;
            if (prctl(PR_CAPBSET_DROP, (ulong)i, 0, 0, 0) != 0) throw SyscallException.Last("prctl(PR_CAPBSET_DROP)", Names[i]);
        }
    }

    /// <summary>capset(2) of effective/permitted/inheritable for the calling thread (version 3, 64 bits).</summary>
    public static void Set(ulong effective, ulong permitted, ulong inheritable)
    {
        uint* hdr = stackalloc uint[2];
        hdr[0] = 0x20080522; // _LINUX_CAPABILITY_VERSION_3
        hdr[1] = 0;
        uint* data = stackalloc uint[6];
        data[0] = (uint)effective; data[1] = (uint)permitted; data[2] = (uint)inheritable;
        data[3] = (uint)(effective >> 32); data[4] = (uint)(permitted >> 32); data[5] = (uint)(inheritable >> 32);
        if (syscall(SYS_capset, (long)hdr, (long)data, 0, 0, 0, 0) != 0) throw SyscallException.Last("capset");
    }

    public static void RaiseAmbient(ulong ambient)
    {
        for (var i = 0; i <= LastCap; i++)
            if ((ambient & (1UL << i)) != 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (ulong)i, 0, 0) != 0)
                throw SyscallException.Last("prctl(PR_CAP_AMBIENT_RAISE)", Names[i]);
    }
}

/// <summary>Signal names as kill(1) and runc accept them (with or without SIG, or as numbers).</summary>
public static class Signals
{
    static readonly Dictionary<string, int> Map = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = 1, ["INT"] = 2, ["QUIT"] = 3, ["ILL"] = 4, ["TRAP"] = 5, ["ABRT"] = 6, ["IOT"] = 6, ["BUS"] = 7,
        ["FPE"] = 8, ["KILL"] = 9, ["USR1"] = 10, ["SEGV"] = 11, ["USR2"] = 12, ["PIPE"] = 13, ["ALRM"] = 14,
        ["TERM"] = 15, ["STKFLT"] = 16, ["CHLD"] = 17, ["CLD"] = 17, ["CONT"] = 18, ["STOP"] = 19, ["TSTP"] = 20,
        ["TTIN"] = 21, ["TTOU"] = 22, ["URG"] = 23, ["XCPU"] = 24, ["XFSZ"] = 25, ["VTALRM"] = 26, ["PROF"] = 27,
        ["WINCH"] = 28, ["IO"] = 29, ["POLL"] = 29, ["PWR"] = 30, ["SYS"] = 31,
    };

    public static int Parse(string s)
    {
        if (int.TryParse(s, out var n))
        {
            if (n is < 1 or > 64) throw new ArgumentException($"invalid signal \"{s}\"");
            return n;
        }
        var name = s.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? s[3..] : s;
        if (Map.TryGetValue(name, out var v)) return v;
        if (name.StartsWith("RTMIN", StringComparison.OrdinalIgnoreCase) || name.StartsWith("RTMAX", StringComparison.OrdinalIgnoreCase))
        {
            var baseNum = name[..5].Equals("RTMIN", StringComparison.OrdinalIgnoreCase) ? 34 : 64;
            var rest = name[5..];
            var off = rest.Length == 0 ? 0 : int.Parse(rest);
            var r = baseNum + off;
            if (r is >= 34 and <= 64) return r;
        }
        throw new ArgumentException($"unknown signal \"{s}\"");
    }
}

/// <summary>RLIMIT_* names and setting them with prlimit64 on this process.</summary>
public static unsafe class Rlimits
{
    static readonly string[] Names =
    [
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
        "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    ];

    public static int Parse(string name)
    {
        var i = Array.IndexOf(Names, name);
        if (i < 0) throw new ArgumentException($"unknown rlimit \"{name}\"");
        return i;
    }

    public static void Set(int resource, ulong soft, ulong hard, string name)
    {
        ulong* lim = stackalloc ulong[2];
        lim[0] = soft; lim[1] = hard;
        if (syscall(SYS_prlimit64, 0, resource, (long)lim, 0, 0, 0) != 0)
        {
            var e = Marshal.GetLastPInvokeError();
            throw new SyscallException("setrlimit", $"{name} soft={soft} hard={hard}", e);
        }
    }
}
