using System.Runtime.InteropServices;
using Berth.Linux.Interop;
using Berth.Linux.Seccomp;
using static Berth.Linux.Tests.Seccomp.SeccompCompilerTests;

namespace Berth.Linux.Tests.Seccomp;

/// <summary>Loads real filters into the kernel, each on a dedicated thread (no TSYNC): no_new_privs and
/// the filter are per-thread and die with it, so the test process itself stays unfiltered.</summary>
public sealed class SeccompKernelTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("berth-seccomp-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>Runs <paramref name="body"/> on a new thread after no_new_privs and the filter.</summary>
    static T OnFilteredThread<T>(SeccompProgram program, Func<Fd?, T> body)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Libc.prctl(Libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw SyscallException.Last("prctl(PR_SET_NO_NEW_PRIVS)");
                using var listener = SeccompLoader.Load(program);
                result = body(listener);
            }
            catch (Exception e) { failure = e; }
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(20)));
        if (failure is not null) throw new Xunit.Sdk.XunitException("on the filtered thread: " + failure);
        return result;
    }

    static int MkdirAt(string path, uint mode)
    {
        int rc = Libc.mkdirat(Libc.AT_FDCWD, path, mode);
        return rc == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    [Fact]
    public void Errno_rules_with_conditions_are_enforced_on_the_filtered_thread_only()
    {
        // mkdirat with mode 0700 fails with ENOMSG (42); any other mode passes; mkdir is refused outright.
        var p = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_ERRNO", ["mkdirat"], 42, Arg(2, "SCMP_CMP_EQ", 0x1c0)),
            Rule("SCMP_ACT_ERRNO", ["mkdir"])), SeccompCompiler.NativeArchitecture);
        var (refused, allowed, mkdir) = OnFilteredThread(p, _ =>
            (MkdirAt(Path.Combine(dir, "a"), 0x1c0), MkdirAt(Path.Combine(dir, "b"), 0x1ed),
             Libc.mkdir(Path.Combine(dir, "c"), 0x1ed) == 0 ? 0 : Marshal.GetLastPInvokeError()));
        Assert.Equal(42, refused);
        Assert.Equal(0, allowed);
        Assert.False(Directory.Exists(Path.Combine(dir, "a")));
        Assert.True(Directory.Exists(Path.Combine(dir, "b")));
        if (RuntimeInformation.ProcessArchitecture == Architecture.X64) Assert.Equal(Errno.EPERM, mkdir); // glibc uses mkdir(2) there
        // The test thread has no filter.
        Assert.Equal(0, MkdirAt(Path.Combine(dir, "a"), 0x1c0));
    }

    [Fact]
    public void Default_profile_is_accepted_and_keeps_the_runtime_working()
    {
        var p = SeccompCompiler.Compile(DefaultSeccompProfile.Create(DefaultProfileTests.DockerCaps, SeccompCompiler.NativeArchitecture),
            SeccompCompiler.NativeArchitecture);
        var (mount, unshare, files) = OnFilteredThread(p, _ =>
        {
            // Unfiltered this would be ENOENT: the target does not exist, so a broken filter mounts nothing.
            int m = Libc.mount("none", Path.Combine(dir, "absent"), "tmpfs", 0, null) == 0 ? 0 : Marshal.GetLastPInvokeError();
            int u = Libc.unshare(Libc.CLONE_NEWNS) == 0 ? 0 : Marshal.GetLastPInvokeError();
            File.WriteAllText(Path.Combine(dir, "x"), "managed I/O still works");
            return (m, u, Directory.GetFiles(dir).Length);
        });
        Assert.Equal(Errno.EPERM, mount);
        Assert.Equal(Errno.EPERM, unshare);
        Assert.Equal(1, files);
    }

    /// <summary>On the kernel: a call the default profile does not name and that is newer than all it
    /// names fails with ENOSYS under the filter (without it the kernel knows the call), while an old
    /// call the profile leaves out fails with EPERM.</summary>
    [Fact]
    public void Calls_newer_than_the_default_profile_get_ENOSYS()
    {
        Assert.Equal(Architecture.X64, RuntimeInformation.ProcessArchitecture);
        var profile = DefaultSeccompProfile.Create(DefaultProfileTests.DockerCaps, SeccompCompiler.NativeArchitecture);
        var highest = profile.Syscalls!.SelectMany(c => c.Names).Select(SyscallTables.X86_64).Max();
        var newer = highest + 1;
        // Only calls whose zero-argument form is harmless (the *xattrat and file_*attr family, mseal).
        Assert.InRange(newer, 462, 469);
        long Raw(long nr) => Libc.syscall(nr, 0, 0, 0, 0, 0, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();
        Assert.NotEqual(Errno.ENOSYS, (int)Raw(newer)); // the kernel has it
        var p = SeccompCompiler.Compile(profile, SeccompCompiler.NativeArchitecture);
        var (filteredNewer, filteredOld) = OnFilteredThread(p, _ => (Raw(newer), Raw(163 /* acct */)));
        Assert.Equal(Errno.ENOSYS, (int)filteredNewer);
        Assert.Equal(Errno.EPERM, (int)filteredOld);
    }

    [Fact]
    public void Notify_rules_yield_a_listener_fd()
    {
        var p = SeccompCompiler.Compile(Make("SCMP_ACT_ALLOW", Rule("SCMP_ACT_NOTIFY", ["acct"])), SeccompCompiler.NativeArchitecture);
        var flags = OnFilteredThread(p, listener =>
        {
            Assert.NotNull(listener);
            return Libc.fcntl(listener!.Value, Libc.F_GETFD, 0);
        });
        Assert.Equal(Libc.FD_CLOEXEC, flags);
    }
}
