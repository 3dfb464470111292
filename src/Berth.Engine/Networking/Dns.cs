using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Engine.Networking;

/// <summary>One DNS question (RFC 1035 §4.1.2).</summary>
public sealed record DnsQuestion(string Name, ushort Type, ushort Class);

/// <summary>The little of RFC 1035 the embedded server needs: parse a query's header and first question,
/// build a response with A records. Anything malformed is rejected with a <see cref="FormatException"/>.</summary>
public static class DnsMessage
{
    public const ushort TypeA = 1, TypeAAAA = 28, ClassIN = 1;
    public const int NoError = 0, FormErr = 1, ServFail = 2, NxDomain = 3, NotImp = 4;

    public static (ushort Id, ushort Flags, DnsQuestion Question, int QuestionEnd) ParseQuery(ReadOnlySpan<byte> m)
    {
        if (m.Length < 12) throw new FormatException("DNS message shorter than its header");
        var id = BinaryPrimitives.ReadUInt16BigEndian(m);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(m[2..]);
        if ((flags & 0x8000) != 0) throw new FormatException("not a query");
        if (BinaryPrimitives.ReadUInt16BigEndian(m[4..]) < 1) throw new FormatException("no question");
        var pos = 12;
        var name = new StringBuilder();
        while (true)
        {
            if (pos >= m.Length) throw new FormatException("truncated name");
            int len = m[pos++];
            if (len == 0) break;
            if (len > 63) throw new FormatException("compressed or invalid label in question");
            if (pos + len > m.Length || name.Length + len > 253) throw new FormatException("truncated or too long name");
            if (name.Length > 0) name.Append('.');
            name.Append(Encoding.ASCII.GetString(m.Slice(pos, len)));
            pos += len;
        }
        if (pos + 4 > m.Length) throw new FormatException("truncated question");
        var q = new DnsQuestion(name.ToString(), BinaryPrimitives.ReadUInt16BigEndian(m[pos..]), BinaryPrimitives.ReadUInt16BigEndian(m[(pos + 2)..]));
        return (id, flags, q, pos + 4);
    }

    /// <summary>A response to <paramref name="query"/> carrying its first question and the given A records.</summary>
    public static byte[] Response(ReadOnlySpan<byte> query, int rcode, IReadOnlyList<IPAddress> answers, uint ttl = 600)
    {
        var (id, flags, _, qEnd) = ParseQuery(query);
        var answerBytes = answers.Count * 16;
        var r = new byte[qEnd + answerBytes];
        query[..qEnd].CopyTo(r);
        BinaryPrimitives.WriteUInt16BigEndian(r, id);
        // QR, opcode copied, AA (authoritative for its own names), RD copied, RA, rcode.
        var f = (ushort)(0x8000 | (flags & 0x7800) | (rcode == NoError && answers.Count > 0 ? 0x0400 : 0) | (flags & 0x0100) | 0x0080 | rcode);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(2), f);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(6), (ushort)answers.Count);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(10), 0);
        var pos = qEnd;
        foreach (var a in answers)
        {
            var s = r.AsSpan(pos);
            BinaryPrimitives.WriteUInt16BigEndian(s, 0xC00C); // pointer to the question's name
            BinaryPrimitives.WriteUInt16BigEndian(s[2..], TypeA);
            BinaryPrimitives.WriteUInt16BigEndian(s[4..], ClassIN);
            BinaryPrimitives.WriteUInt32BigEndian(s[6..], ttl);
            BinaryPrimitives.WriteUInt16BigEndian(s[10..], 4);
            a.GetAddressBytes().CopyTo(s[12..]);
            pos += 16;
        }
        return r;
    }

    /// <summary>A query for <paramref name="name"/> (used by clients and tests).</summary>
    public static byte[] Query(ushort id, string name, ushort type = TypeA)
    {
        var labels = name.TrimEnd('.').Split('.');
        var r = new byte[12 + labels.Sum(l => l.Length + 1) + 1 + 4];
        BinaryPrimitives.WriteUInt16BigEndian(r, id);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(2), 0x0100);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(4), 1);
        var pos = 12;
        foreach (var l in labels)
        {
            r[pos++] = (byte)l.Length;
            Encoding.ASCII.GetBytes(l).CopyTo(r, pos);
            pos += l.Length;
        }
        r[pos++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(pos), type);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(pos + 2), ClassIN);
        return r;
    }

    /// <summary>Reads rcode and the A records of a response (for clients and tests).</summary>
    public static (int Rcode, List<IPAddress> Addresses) ParseResponse(ReadOnlySpan<byte> m)
    {
        var rcode = BinaryPrimitives.ReadUInt16BigEndian(m[2..]) & 0xF;
        var an = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        var pos = 12;
        pos = SkipName(m, pos) + 4;
        var list = new List<IPAddress>();
        for (var i = 0; i < an; i++)
        {
            pos = SkipName(m, pos);
            var type = BinaryPrimitives.ReadUInt16BigEndian(m[pos..]);
            var rdlen = BinaryPrimitives.ReadUInt16BigEndian(m[(pos + 8)..]);
            if (type == TypeA && rdlen == 4) list.Add(new IPAddress(m.Slice(pos + 10, 4)));
            pos += 10 + rdlen;
        }
        return (rcode, list);
    }

    static int SkipName(ReadOnlySpan<byte> m, int pos)
    {
        while (true)
        {
            int len = m[pos];
            if (len == 0) return pos + 1;
            if ((len & 0xC0) == 0xC0) return pos + 2;
            pos += len + 1;
        }
    }
}

/// <summary>The embedded DNS server of a user-defined network (Docker's 127.0.0.11 / podman's aardvark-dns):
/// UDP and TCP on the network's gateway address, answering A records for container names, aliases and
/// short ids from <paramref name="lookup"/>, forwarding other names to the upstream servers (the host's
/// resolv.conf). Malformed packets are dropped; the server never stops because of a request.</summary>
public sealed class DnsServer(IPEndPoint listen, Func<string, IReadOnlyList<IPAddress>?> lookup, IReadOnlyList<IPEndPoint> upstreams) : IAsyncDisposable
{
    readonly CancellationTokenSource _stop = new();
    Socket? _udp;
    TcpListener? _tcp;
    Task? _udpLoop, _tcpLoop;
    public TimeSpan UpstreamTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Where it listens (the port is known after start when 0 was asked).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_udp!.LocalEndPoint!;

    public void Start()
    {
        _udp = new Socket(listen.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _udp.Bind(listen);
        var bound = (IPEndPoint)_udp.LocalEndPoint!;
        _tcp = new TcpListener(bound);
        _tcp.Start();
        // UDP is served by its own thread, answering local names inline: a query must not wait for a thread-pool
        // thread (a starved pool in the host process delayed answers past the client's timeout).
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() => { try { UdpLoop(_stop.Token); } finally { done.TrySetResult(); } })
            { IsBackground = true, Name = "dns-udp" }.Start();
        _udpLoop = done.Task;
        _tcpLoop = Task.Run(() => TcpLoopAsync(_stop.Token));
    }

    void UdpLoop(CancellationToken ct)
    {
        var buf = new byte[4096];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (!ct.IsCancellationRequested)
        {
            int n;
            try { n = _udp!.ReceiveFrom(buf, ref from); }
            catch (SocketException) { if (ct.IsCancellationRequested) return; continue; }
            catch (ObjectDisposedException) { return; }
            var query = buf.AsSpan(0, n).ToArray();
            var peer = from;
            if (AnswerLocally(query, out var answer))
            {
                if (answer is not null) try { _udp.SendTo(answer, peer); } catch (Exception) { }
                continue;
            }
            _ = Task.Run(async () =>
            {
                var reply = await ForwardAllAsync(query, ct);
                try { await _udp.SendToAsync(reply, SocketFlags.None, peer, ct); } catch (Exception) { }
            }, ct);
        }
    }

    async Task TcpLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _tcp!.AcceptTcpClientAsync(ct); }
            catch (OperationCanceledException) { return; }
            catch (SocketException) { continue; }
            catch (ObjectDisposedException) { return; }
            _ = Task.Run(async () =>
            {
                using var c = client;
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                try
                {
                    var s = c.GetStream();
                    var lenBuf = new byte[2];
                    while (true)
                    {
                        await s.ReadExactlyAsync(lenBuf, timeout.Token);
                        var msg = new byte[BinaryPrimitives.ReadUInt16BigEndian(lenBuf)];
                        await s.ReadExactlyAsync(msg, timeout.Token);
                        var answer = await AnswerAsync(msg, timeout.Token);
                        if (answer is null) return;
                        var outBuf = new byte[2 + answer.Length];
                        BinaryPrimitives.WriteUInt16BigEndian(outBuf, (ushort)answer.Length);
                        answer.CopyTo(outBuf, 2);
                        await s.WriteAsync(outBuf, timeout.Token);
                    }
                }
                catch (Exception) { } // EOF, timeout, garbage: close the connection
            }, ct);
        }
    }

    /// <summary>The reply to one query, or null to drop it (not a parsable query).</summary>
    public async Task<byte[]?> AnswerAsync(byte[] query, CancellationToken ct) =>
        AnswerLocally(query, out var answer) ? answer : await ForwardAllAsync(query, ct);

    /// <summary>True when the query is answered without the network: a container's name, or a packet to drop
    /// (<paramref name="answer"/> null) or to refuse (FORMERR).</summary>
    bool AnswerLocally(byte[] query, out byte[]? answer)
    {
        DnsQuestion q;
        try { q = DnsMessage.ParseQuery(query).Question; }
        catch (FormatException) { answer = query.Length >= 12 ? FormErr(query) : null; return true; }
        if (q.Class == DnsMessage.ClassIN && lookup(q.Name.TrimEnd('.').ToLowerInvariant()) is { } addrs)
        {
            answer = DnsMessage.Response(query, DnsMessage.NoError, q.Type == DnsMessage.TypeA ? addrs : []);
            return true;
        }
        answer = null;
        return false;
    }

    async Task<byte[]> ForwardAllAsync(byte[] query, CancellationToken ct)
    {
        foreach (var up in upstreams)
        {
            var reply = await ForwardAsync(query, up, ct);
            if (reply is not null) return reply;
        }
        return DnsMessage.Response(query, upstreams.Count == 0 ? DnsMessage.NxDomain : DnsMessage.ServFail, []);
    }

    static byte[]? FormErr(byte[] query)
    {
        var r = query[..12];
        r[2] = (byte)(0x80 | (query[2] & 0x79));
        r[3] = 0x80 | DnsMessage.FormErr;
        r.AsSpan(4, 8).Clear();
        return r;
    }

    async Task<byte[]?> ForwardAsync(byte[] query, IPEndPoint upstream, CancellationToken ct)
    {
        using var s = new Socket(upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(UpstreamTimeout);
        try
        {
            await s.ConnectAsync(upstream, timeout.Token);
            await s.SendAsync(query, SocketFlags.None, timeout.Token);
            var buf = new byte[4096];
            while (true)
            {
                var n = await s.ReceiveAsync(buf, SocketFlags.None, timeout.Token);
                if (n >= 12 && buf[0] == query[0] && buf[1] == query[1]) return buf[..n];
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException) { return null; }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp?.Dispose();
        _tcp?.Stop();
        foreach (var t in new[] { _udpLoop, _tcpLoop })
            if (t is not null) try { await t; } catch (Exception) { }
        _stop.Dispose();
    }

    /// <summary>Upstream servers from a resolv.conf (port 53); the embedded server's own address is left out.</summary>
    public static List<IPEndPoint> UpstreamsFrom(string resolvConf, IPAddress? self = null)
    {
        var list = new List<IPEndPoint>();
        if (!File.Exists(resolvConf)) return list;
        foreach (var line in File.ReadLines(resolvConf))
        {
            var f = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 2 && f[0] == "nameserver" && IPAddress.TryParse(f[1], out var ip) && !ip.Equals(self))
                list.Add(new IPEndPoint(ip, 53));
        }
        return list;
    }
}

/// <summary>Names of one network's containers, read from its state file (reloaded when the file changes), so
/// a DNS server in any process sees attach/detach done by another.</summary>
public sealed class NetworkNames(NetworkStore store, string network)
{
    DateTime _stamp;
    Dictionary<string, List<IPAddress>> _names = [];
    readonly object _lock = new();

    public IReadOnlyList<IPAddress>? Lookup(string name)
    {
        lock (_lock)
        {
            var path = Path.Combine(store.Dir, network + ".json");
            var stamp = File.Exists(path) ? File.GetLastWriteTimeUtc(path) : DateTime.MinValue;
            if (stamp != _stamp)
            {
                _names = Build(store.TryGet(network));
                _stamp = stamp;
            }
            return _names.TryGetValue(name, out var l) ? l : null;
        }
    }

    static Dictionary<string, List<IPAddress>> Build(NetworkRecord? n)
    {
        var d = new Dictionary<string, List<IPAddress>>(StringComparer.OrdinalIgnoreCase);
        if (n is null) return d;
        foreach (var e in n.Endpoints.Values.OrderBy(e => e.ContainerId, StringComparer.Ordinal))
        {
            if (!IPAddress.TryParse(e.Address, out var ip)) continue;
            var names = new List<string>(e.Aliases) { e.ContainerName };
            if (e.ContainerId.Length >= 12) names.Add(e.ContainerId[..12]);
            foreach (var name in names.Where(x => x.Length > 0).Select(x => x.ToLowerInvariant()).Distinct())
            {
                if (!d.TryGetValue(name, out var l)) d[name] = l = [];
                l.Add(ip);
            }
        }
        return d;
    }
}
