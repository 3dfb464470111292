using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Berth.Linux;
using Berth.Linux.Interop;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>SCMP_ACT_NOTIFY with linux.seccomp.listenerPath: the test is the listener. It receives the
/// OCI ContainerProcessState with the notification fd (SCM_RIGHTS), answers the container's mkdir with
/// ENOSPC, and checks what the container saw.</summary>
public unsafe class SeccompNotifyTests
{
    // struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes); _IOWR('!', 0|1, size).
    const ulong NotifRecv = 0xc0502100, NotifSend = 0xc0182101;
    const int Enospc = 28;

    static JsonObject NotifyProfile(string listener) => new()
    {
        ["defaultAction"] = "SCMP_ACT_ALLOW",
        ["listenerPath"] = listener,
        ["listenerMetadata"] = "berth-test-metadata",
        ["syscalls"] = new JsonArray(new JsonObject { ["names"] = new JsonArray("mkdir", "mkdirat"), ["action"] = "SCMP_ACT_NOTIFY" }),
    };

    /// <summary>Accepts one connection, reads the state and fd, answers one notification.</summary>
    static (string State, int Nr, int Pid) Listen(Socket server)
    {
        using var conn = server.Accept();
        using var ch = new SyncChannel(new Fd(Libc.fcntl((int)conn.Handle, 1030 /* F_DUPFD_CLOEXEC */, 0)));
        var state = ch.Receive(out var notifyFd) ?? throw new InvalidOperationException("listener: no message");
        using (notifyFd)
        {
            if (notifyFd is null) throw new InvalidOperationException("listener: no fd with the state");
            var req = stackalloc byte[80];
            new Span<byte>(req, 80).Clear();
            while (Libc.ioctl(notifyFd.Value, NotifRecv, req) != 0)
                if (Marshal.GetLastPInvokeError() != Errno.EINTR) throw SyscallException.Last("ioctl(SECCOMP_IOCTL_NOTIF_RECV)");
            var id = *(ulong*)req;
            var pid = *(int*)(req + 8);
            var nr = *(int*)(req + 16);
            var resp = stackalloc byte[24];
            new Span<byte>(resp, 24).Clear();
            *(ulong*)resp = id;
            *(int*)(resp + 16) = -Enospc;
            if (Libc.ioctl(notifyFd.Value, NotifSend, resp) != 0) throw SyscallException.Last("ioctl(SECCOMP_IOCTL_NOTIF_SEND)");
            return (state, nr, pid);
        }
    }

    [Fact]
    public void Notified_syscall_is_answered_by_the_listener() => Sandbox.Run(s =>
    {
        var path = Path.Combine(s.Dir, "listener.sock");
        using var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        server.Bind(new UnixDomainSocketEndPoint(path));
        server.Listen(1);
        var listener = Task.Run(() => Listen(server));

        var id = s.NewId("notify");
        var b = s.NewBundle(id, "mkdir /tmp/notified 2>&1; echo mkdir=$?; ls -d /tmp/notified 2>/dev/null || echo absent",
            c => c.Linux()["seccomp"] = NotifyProfile(path));
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(listener.Wait(TimeSpan.FromSeconds(30)), "the listener got nothing");
        var (stateText, nr, notifiedPid) = listener.Result;
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("No space left on device", r.Stdout);
        Assert.Contains("mkdir=1", r.Stdout);
        Assert.Contains("absent", r.Stdout);
        Assert.Contains(nr, new[] { 83, 258 }); // mkdir, mkdirat (x86_64)
        Assert.True(notifiedPid > 0);

        var st = JsonNode.Parse(stateText)!.AsObject();
        Assert.Equal(["seccompFd"], st["fds"]!.AsArray().Select(n => (string)n!).ToArray());
        Assert.Equal("berth-test-metadata", (string)st["metadata"]!);
        Assert.Equal(id, (string)st["state"]!["id"]!);
        Assert.Equal(b.Dir, (string)st["state"]!["bundle"]!);
        Assert.Equal((int)st["pid"]!, (int)st["state"]!["pid"]!);
    });

    [Fact]
    public void The_listener_gets_its_fd_at_create_before_start() => Sandbox.Run(s =>
    {
        var path = Path.Combine(s.Dir, "listener.sock");
        using var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        server.Bind(new UnixDomainSocketEndPoint(path));
        server.Listen(1);
        var accepted = Task.Run(() => server.Accept());

        var id = s.NewId("notifyc");
        // Without no_new_privs (with it, the filter and the fd wait until right before execve, as in runc).
        var b = s.NewBundle(id, "mkdir /tmp/notified 2>&1; echo mkdir=$?", c =>
        {
            c.Linux()["seccomp"] = NotifyProfile(path);
            c.Proc()["noNewPrivileges"] = false;
        });
        var create = s.Ok("create", "-b", b.Dir, id);
        // Created, not started: the agent already has the state and the fd (runc's order).
        Assert.True(accepted.Wait(TimeSpan.FromSeconds(30)), "nothing connected to the listener at create");
        using var conn = accepted.Result;
        conn.ReceiveTimeout = 30_000; // SO_RCVTIMEO: a missing message fails the test instead of hanging it
        using var ch = new SyncChannel(new Fd(Libc.fcntl((int)conn.Handle, 1030 /* F_DUPFD_CLOEXEC */, 0)));
        var stateText = ch.Receive(out var notifyFd) ?? throw new InvalidOperationException("listener: no message");
        using (notifyFd)
        {
            Assert.NotNull(notifyFd);
            Assert.Equal("created", s.Status(id));
            Assert.Equal(id, (string)JsonNode.Parse(stateText)!["state"]!["id"]!);
            // The filter is live for the container's process once it starts: answer its mkdir.
            s.Ok("start", id);
            var req = stackalloc byte[80];
            new Span<byte>(req, 80).Clear();
            while (Libc.ioctl(notifyFd!.Value, NotifRecv, req) != 0)
                if (Marshal.GetLastPInvokeError() != Errno.EINTR) throw SyscallException.Last("ioctl(SECCOMP_IOCTL_NOTIF_RECV)");
            var resp = stackalloc byte[24];
            new Span<byte>(resp, 24).Clear();
            *(ulong*)resp = *(ulong*)req;
            *(int*)(resp + 16) = -Enospc;
            Assert.True(Libc.ioctl(notifyFd.Value, NotifSend, resp) == 0, "SECCOMP_IOCTL_NOTIF_SEND");
        }
        s.WaitForStatus(id, "stopped");
        Assert.Contains("No space left on device", File.ReadAllText(create.StdoutPath));
        s.Ok("delete", id);
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void Notify_without_a_listener_path_is_refused() => Sandbox.Run(s =>
    {
        var id = s.NewId("notifybad");
        var b = s.NewBundle(id, "true", c =>
        {
            var p = NotifyProfile("/x");
            p.Remove("listenerPath");
            c.Linux()["seccomp"] = p;
        });
        Sandbox.AssertOneLineError(s.Runc("create", "-b", b.Dir, id), "needs linux.seccomp.listenerPath");
        s.AssertNothingLeft(id);
    });

    [Fact]
    public void Notify_with_nobody_listening_is_refused() => Sandbox.Run(s =>
    {
        var id = s.NewId("notifynone");
        var b = s.NewBundle(id, "true", c => c.Linux()["seccomp"] = NotifyProfile(Path.Combine(s.Dir, "nobody.sock")));
        Sandbox.AssertOneLineError(s.Runc("create", "-b", b.Dir, id), "seccomp listener");
        s.AssertNothingLeft(id);
    });
}
