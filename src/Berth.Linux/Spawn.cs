using System.Text;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux;

/// <summary>Starts a program with posix_spawn: libc forks and execs, so no managed code ever runs in
/// the child (DESIGN: never run managed code between fork and exec). The child inherits the calling
/// thread's namespaces, cgroups and root, and every descriptor that is not close-on-exec.</summary>
public static unsafe class Spawn
{
    public static int Start(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env,
        IReadOnlyList<(int From, int To)>? dups = null, bool newSession = false)
    {
        using var strings = new NativeStrings();
        var cpath = strings.Add(path);
        var cargv = strings.AddArray(argv);
        var cenv = strings.AddArray(env);
        byte* fa = stackalloc byte[512];
        byte* attr = stackalloc byte[512];
        posix_spawn_file_actions_init(fa);
        posix_spawnattr_init(attr);
        try
        {
            if (dups != null)
                foreach (var (from, to) in dups)
                    if (posix_spawn_file_actions_adddup2(fa, from, to) != 0) throw new SyscallException("posix_spawn_file_actions_adddup2", path, Errno.EINVAL);
            // Child starts with no blocked signals and every signal at its default (the .NET
            // runtime ignores SIGPIPE, which would otherwise leak into the container).
            ulong empty = 0, all = ~0UL & ~((1UL << (9 - 1)) | (1UL << (19 - 1)));
            short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
            if (newSession) flags |= POSIX_SPAWN_SETSID;
            posix_spawnattr_setsigmask(attr, &empty);
            posix_spawnattr_setsigdefault(attr, &all);
            posix_spawnattr_setflags(attr, flags);
            int pid;
            var rc = posix_spawn(&pid, cpath, fa, attr, cargv, cenv);
            if (rc != 0) throw new SyscallException("posix_spawn", path, rc);
            return pid;
        }
        finally
        {
            posix_spawn_file_actions_destroy(fa);
            posix_spawnattr_destroy(attr);
        }
    }
}

/// <summary>NUL-terminated UTF-8 strings and string arrays in unmanaged memory, freed together.</summary>
public sealed unsafe class NativeStrings : IDisposable
{
    readonly List<nint> _blocks = new();

    public byte* Add(string s)
    {
        var n = Encoding.UTF8.GetByteCount(s);
        var p = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)n + 1);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        _blocks.Add((nint)p);
        return p;
    }

    public byte** AddArray(IReadOnlyList<string> items)
    {
        var arr = (byte**)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(sizeof(nint) * (items.Count + 1)));
        _blocks.Add((nint)arr);
        for (var i = 0; i < items.Count; i++) arr[i] = Add(items[i]);
        arr[items.Count] = null;
        return arr;
    }

    public void Dispose()
    {
        foreach (var b in _blocks) System.Runtime.InteropServices.NativeMemory.Free((void*)b);
        _blocks.Clear();
    }
}
