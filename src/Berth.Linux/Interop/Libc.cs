using System.Runtime.InteropServices;

namespace Berth.Linux.Interop;

/// <summary>Raw libc entry points. Blittable signatures only; callers check the result and throw
/// <see cref="SyscallException"/> at once so errno is not lost.</summary>
public static unsafe partial class Libc
{
    const string L = "libc";

    // --- x86_64 syscall numbers for calls glibc does not wrap (or wraps process-wide) ---
    public const long SYS_setgroups = 116, SYS_setresuid = 117, SYS_setresgid = 119, SYS_capget = 125,
        SYS_capset = 126, SYS_pivot_root = 155, SYS_gettid = 186, SYS_prlimit64 = 302, SYS_setns = 308,
        SYS_pidfd_open = 434, SYS_openat2 = 437, SYS_pidfd_send_signal = 424, SYS_close_range = 436;

    [LibraryImport(L, SetLastError = true)] public static partial long syscall(long n, long a1, long a2, long a3, long a4, long a5, long a6);

    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mount(string? source, string target, string? fstype, ulong flags, string? data);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int umount2(string target, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial int unshare(int flags);
    [LibraryImport(L, SetLastError = true)] public static partial int setns(int fd, int nstype);
    [LibraryImport(L, SetLastError = true)] public static partial int sethostname(byte* name, nint len);
    [LibraryImport(L, SetLastError = true)] public static partial int setdomainname(byte* name, nint len);
    [LibraryImport(L, SetLastError = true)] public static partial int prctl(int option, ulong a2, ulong a3, ulong a4, ulong a5);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, uint mode);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int openat(int dirfd, string path, int flags, uint mode);
    [LibraryImport(L, SetLastError = true)] public static partial int close(int fd);
    [LibraryImport(L, SetLastError = true)] public static partial nint read(int fd, byte* buf, nint count);
    [LibraryImport(L, SetLastError = true)] public static partial nint write(int fd, byte* buf, nint count);
    [LibraryImport(L, SetLastError = true)] public static partial int dup3(int oldfd, int newfd, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial int fcntl(int fd, int cmd, int arg);
    [LibraryImport(L, SetLastError = true)] public static partial int ioctl(int fd, ulong request, void* arg);
    [LibraryImport(L, SetLastError = true)] public static partial int setsid();
    [LibraryImport(L, SetLastError = true)] public static partial uint umask(uint mask);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chdir(string path);
    [LibraryImport(L, SetLastError = true)] public static partial int fchdir(int fd);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chroot(string path);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkdirat(int dirfd, string path, uint mode);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mknodat(int dirfd, string path, uint mode, ulong dev);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkfifo(string path, uint mode);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int symlinkat(string target, int dirfd, string linkpath);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int fchownat(int dirfd, string path, uint uid, uint gid, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial int fchown(int fd, uint uid, uint gid);
    [LibraryImport(L, SetLastError = true)] public static partial int fchmod(int fd, uint mode);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlinkat(int dirfd, string path, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial int kill(int pid, int sig);
    [LibraryImport(L, SetLastError = true)] public static partial int waitpid(int pid, int* status, int options);
    [LibraryImport(L, SetLastError = true)] public static partial int getpid();
    [LibraryImport(L, SetLastError = true)] public static partial uint geteuid();
    [LibraryImport(L, SetLastError = true)] public static partial uint getegid();
    [LibraryImport(L, SetLastError = true)] public static partial int socketpair(int domain, int type, int protocol, int* sv);
    [LibraryImport(L, SetLastError = true)] public static partial int socket(int domain, int type, int protocol);
    [LibraryImport(L, SetLastError = true)] public static partial int connect(int fd, byte* addr, int len);
    [LibraryImport(L, SetLastError = true)] public static partial nint sendmsg(int fd, MsgHdr* msg, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial nint recvmsg(int fd, MsgHdr* msg, int flags);
    [LibraryImport(L, SetLastError = true)] public static partial int poll(PollFd* fds, ulong nfds, int timeout);
    [LibraryImport(L, SetLastError = true)] public static partial int execve(byte* path, byte** argv, byte** envp);
    [LibraryImport(L, SetLastError = true)] public static partial int flock(int fd, int op);
    [LibraryImport(L, SetLastError = true)] public static partial int fsync(int fd);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint readlinkat(int dirfd, string path, byte* buf, nint size);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rename(string from, string to);
    [LibraryImport(L, SetLastError = true)] public static partial int tcgetattr(int fd, byte* termios);
    [LibraryImport(L, SetLastError = true)] public static partial int tcsetattr(int fd, int act, byte* termios);
    [LibraryImport(L, SetLastError = true)] public static partial void cfmakeraw(byte* termios);
    [LibraryImport(L, SetLastError = true)] public static partial int isatty(int fd);
    [LibraryImport(L, SetLastError = true)] public static partial int sigprocmask(int how, ulong* set, ulong* old);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkdir(string path, uint mode);
    [LibraryImport(L, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rmdir(string path);
    [LibraryImport(L, EntryPoint = "syscall", SetLastError = true)]
    public static partial long syscall(long number, long arg1, void* arg2, long arg3);

    /// <summary>bpf(2) syscall number for the running architecture.</summary>
    public static long SysBpf => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        var a => throw new PlatformNotSupportedException($"bpf(2): unsupported architecture {a}"),
    };

    // posix_spawn: the fork and exec happen in libc; no managed code runs in the child.
    [LibraryImport(L)] public static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);
    [LibraryImport(L)] public static partial int posix_spawn_file_actions_init(void* fa);
    [LibraryImport(L)] public static partial int posix_spawn_file_actions_destroy(void* fa);
    [LibraryImport(L)] public static partial int posix_spawn_file_actions_adddup2(void* fa, int fd, int newfd);
    [LibraryImport(L)] public static partial int posix_spawn_file_actions_addclose(void* fa, int fd);
    [LibraryImport(L)] public static partial int posix_spawnattr_init(void* attr);
    [LibraryImport(L)] public static partial int posix_spawnattr_destroy(void* attr);
    [LibraryImport(L)] public static partial int posix_spawnattr_setflags(void* attr, short flags);
    [LibraryImport(L)] public static partial int posix_spawnattr_setsigmask(void* attr, ulong* mask);
    [LibraryImport(L)] public static partial int posix_spawnattr_setsigdefault(void* attr, ulong* mask);

    // --- constants ---
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100,
        O_TRUNC = 0x200, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000,
        O_PATH = 0x200000;
    public const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_EMPTY_PATH = 0x1000;
    public const int F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;
    public const int CLONE_NEWNS = 0x00020000, CLONE_NEWCGROUP = 0x02000000, CLONE_NEWUTS = 0x04000000,
        CLONE_NEWIPC = 0x08000000, CLONE_NEWUSER = 0x10000000, CLONE_NEWPID = 0x20000000,
        CLONE_NEWNET = 0x40000000, CLONE_NEWTIME = 0x00000080, CLONE_FS = 0x00000200,
        CLONE_PARENT = 0x00008000;
    public const ulong MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_SYNCHRONOUS = 16,
        MS_REMOUNT = 32, MS_MANDLOCK = 64, MS_DIRSYNC = 128, MS_NOSYMFOLLOW = 256, MS_NOATIME = 1024,
        MS_NODIRATIME = 2048, MS_BIND = 4096, MS_MOVE = 8192, MS_REC = 16384, MS_SILENT = 32768,
        MS_UNBINDABLE = 1 << 17, MS_PRIVATE = 1 << 18, MS_SLAVE = 1 << 19, MS_SHARED = 1 << 20,
        MS_RELATIME = 1 << 21, MS_STRICTATIME = 1 << 24, MS_LAZYTIME = 1 << 25;
    public const int MNT_DETACH = 2;
    public const int PR_SET_PDEATHSIG = 1, PR_SET_KEEPCAPS = 8, PR_CAPBSET_READ = 23, PR_CAPBSET_DROP = 24,
        PR_SET_CHILD_SUBREAPER = 36, PR_SET_NO_NEW_PRIVS = 38, PR_CAP_AMBIENT = 47, PR_CAP_AMBIENT_RAISE = 2,
        PR_CAP_AMBIENT_CLEAR_ALL = 4, PR_SET_DUMPABLE = 4;
    public const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_SEQPACKET = 5, SOCK_CLOEXEC = O_CLOEXEC;
    public const int SOL_SOCKET = 1, SCM_RIGHTS = 1;
    public const int WNOHANG = 1, WALL = 0x40000000;
    public const short POLLIN = 1, POLLHUP = 0x10;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08, POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSID = 0x80;
    public const ulong TIOCSCTTY = 0x540E, TIOCGWINSZ = 0x5413, TIOCSWINSZ = 0x5414, TIOCGPTN = 0x80045430,
        TIOCSPTLCK = 0x40045431;
    public const uint S_IFMT = 0xF000, S_IFIFO = 0x1000, S_IFCHR = 0x2000, S_IFDIR = 0x4000, S_IFBLK = 0x6000,
        S_IFREG = 0x8000;
    public const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    public const ulong RESOLVE_NO_XDEV = 1, RESOLVE_NO_MAGICLINKS = 2, RESOLVE_NO_SYMLINKS = 4,
        RESOLVE_BENEATH = 8, RESOLVE_IN_ROOT = 0x10;

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name; public uint NameLen; public IoVec* Iov; public nuint IovLen;
        public void* Control; public nuint ControlLen; public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec { public void* Base; public nuint Len; }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd { public int Fd; public short Events; public short REvents; }

    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow { public ulong Flags; public ulong Mode; public ulong Resolve; }

    [StructLayout(LayoutKind.Sequential)]
    public struct WinSize { public ushort Row, Col, XPixel, YPixel; }

    public static ulong MakeDev(long major, long minor) =>
        (ulong)((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xffL) << 12) | ((major & ~0xfffL) << 32));
}
