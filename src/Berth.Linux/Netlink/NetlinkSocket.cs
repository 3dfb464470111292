using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using static Berth.Linux.Interop.Libc;

namespace Berth.Linux.Netlink;

/// <summary>A NETLINK_ROUTE socket. A socket belongs to the network namespace it was created in, so
/// <see cref="OpenIn"/> creates one on a throwaway thread that first joined the target namespace: the
/// caller's threads never change namespace. Requests are serialised per socket.</summary>
public sealed unsafe class NetlinkSocket : IDisposable
{
    const int NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3;
    const ushort NLM_F_MULTI = 2, NLM_F_ACK_TLVS = 0x200, NLM_F_CAPPED = 0x100;
    const ushort NLMSGERR_ATTR_MSG = 1;

    readonly Fd _fd;
    readonly object _lock = new();
    readonly byte[] _rx = new byte[1 << 16];
    uint _seq = (uint)Environment.TickCount;

    /// <summary>Where the socket lives, for messages ("host" or the namespace path).</summary>
    public string Namespace { get; }

    NetlinkSocket(Fd fd, string ns) { _fd = fd; Namespace = ns; }

    /// <summary>A socket in the calling thread's network namespace.</summary>
    public static NetlinkSocket Open() => Open("host");

    static NetlinkSocket Open(string ns)
    {
        var fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) throw SyscallException.Last("socket", "AF_NETLINK NETLINK_ROUTE");
        var owned = new Fd(fd);
        Span<byte> sa = stackalloc byte[12];
        sa.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(sa, AF_NETLINK);
        fixed (byte* p = sa)
            if (bind(fd, p, 12) != 0) { var e = SyscallException.Last("bind", "netlink socket"); owned.Dispose(); throw e; }
        int one = 1;
        setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, 4); // best effort: kernel messages in errors
        return new NetlinkSocket(owned, ns);
    }

    /// <summary>A socket inside the network namespace at <paramref name="netnsPath"/> (e.g. /proc/PID/ns/net
    /// or /run/netns/NAME).</summary>
    public static NetlinkSocket OpenIn(string netnsPath)
    {
        using var ns = Sys.Open(netnsPath, O_RDONLY);
        NetlinkSocket? result = null;
        Exception? error = null;
        var t = new Thread(() =>
        {
            // This thread ends right after: its changed namespace never runs other code.
            try
            {
                if (setns(ns.Value, CLONE_NEWNET) != 0) throw SyscallException.Last("setns", $"network namespace {netnsPath}");
                result = Open(netnsPath);
            }
            catch (Exception e) { error = e; }
        }, 256 * 1024) { IsBackground = true, Name = "berth-netns" };
        t.Start();
        t.Join();
        if (error is not null) throw error;
        return result!;
    }

    /// <summary>Sends a request with NLM_F_ACK and waits for the kernel's acknowledgement.</summary>
    public void Execute(NetlinkRequest request, string target)
    {
        lock (_lock) Exchange(request, target, null);
    }

    /// <summary>Sends a dump request and returns each reply's payload (after nlmsghdr).</summary>
    public List<byte[]> Dump(NetlinkRequest request, string target)
    {
        var list = new List<byte[]>();
        lock (_lock) Exchange(request, target, list);
        return list;
    }

    void Exchange(NetlinkRequest request, string target, List<byte[]>? replies)
    {
        var seq = ++_seq;
        var msg = request.Finish(seq);
        fixed (byte* p = msg)
        {
            while (true)
            {
                var n = send(_fd.Value, p, msg.Length, 0);
                if (n >= 0) break;
                if (Marshal.GetLastPInvokeError() != Errno.EINTR) throw SyscallException.Last("send", $"netlink {Name(request.Type)} {target}");
            }
        }
        while (true)
        {
            int n;
            fixed (byte* p = _rx)
            {
                n = (int)recv(_fd.Value, p, _rx.Length, 0);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Errno.EINTR) continue;
                    throw SyscallException.Last("recv", $"netlink {Name(request.Type)} {target}");
                }
            }
            var data = _rx.AsSpan(0, n);
            while (data.Length >= 16)
            {
                var len = (int)BinaryPrimitives.ReadUInt32LittleEndian(data);
                var type = BinaryPrimitives.ReadUInt16LittleEndian(data[4..]);
                var flags = BinaryPrimitives.ReadUInt16LittleEndian(data[6..]);
                var rseq = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
                if (len < 16 || len > data.Length) break;
                var payload = data[16..len];
                if (rseq == seq)
                {
                    if (type == NLMSG_ERROR)
                    {
                        var err = -BinaryPrimitives.ReadInt32LittleEndian(payload);
                        if (err == 0) return; // ACK
                        throw new NetlinkException($"netlink {Name(request.Type)}", target, err, ExtAckMessage(payload, flags));
                    }
                    if (type == NLMSG_DONE) return;
                    if (type != NLMSG_NOOP) replies?.Add(payload.ToArray());
                    if (replies is not null && (flags & NLM_F_MULTI) == 0) return;
                }
                var step = (len + 3) & ~3;
                if (step >= data.Length) break;
                data = data[step..];
            }
        }
    }

    static string? ExtAckMessage(ReadOnlySpan<byte> payload, ushort flags)
    {
        if ((flags & NLM_F_ACK_TLVS) == 0 || payload.Length < 20) return null;
        // struct nlmsgerr: int error; struct nlmsghdr msg; then the request's payload unless capped.
        var origLen = (int)BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        var skip = 4 + ((flags & NLM_F_CAPPED) != 0 ? 16 : origLen);
        if (skip > payload.Length) return null;
        var msg = NetlinkAttributes.Parse(payload[skip..]).Bytes(NLMSGERR_ATTR_MSG);
        return msg is null ? null : Encoding.UTF8.GetString(msg).TrimEnd('\0');
    }

    static string Name(ushort type) => type switch
    {
        16 => "RTM_NEWLINK", 17 => "RTM_DELLINK", 18 => "RTM_GETLINK", 19 => "RTM_SETLINK",
        20 => "RTM_NEWADDR", 21 => "RTM_DELADDR", 22 => "RTM_GETADDR",
        24 => "RTM_NEWROUTE", 25 => "RTM_DELROUTE", 26 => "RTM_GETROUTE",
        _ => $"type {type}",
    };

    public void Dispose() => _fd.Dispose();
}
