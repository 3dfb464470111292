using System.Buffers;
using System.Runtime.ExceptionServices;

namespace Berth.Images.Unpack;

/// <summary>
/// Reads a stream on a background thread into a few large buffers, so decompression and hashing
/// (the producer) overlap with creating files (the consumer). An exception in the producer is
/// rethrown to the reader as it was; disposing stops and joins the producer, so the source is
/// never read after Dispose returns. The two sides hand buffers over under a monitor and sleep in
/// Monitor.Wait when the queue is empty or full: no spinning (a BlockingCollection spins with
/// sched_yield before it blocks, taking the CPU the other side needs on a small machine).
/// </summary>
public sealed class ReadAheadStream : ForwardReadStream
{
    const int ChunkSize = 1 << 20;
    readonly Queue<(byte[]? Buf, int Len, ExceptionDispatchInfo? Error)> _queue = new();
    readonly object _gate = new();
    readonly int _depth;
    readonly Thread _producer;
    bool _stopped;
    byte[]? _cur;
    int _pos, _len;
    bool _eof;

    public ReadAheadStream(Stream source, int depth = 4)
    {
        _depth = Math.Max(1, depth);
        _producer = new Thread(() => Produce(source)) { IsBackground = true, Name = "layer read-ahead" };
        _producer.Start();
    }

    void Produce(Stream source)
    {
        try
        {
            while (true)
            {
                var buf = ArrayPool<byte>.Shared.Rent(ChunkSize);
                var n = 0;
                try
                {
                    while (n < ChunkSize && !Volatile.Read(ref _stopped))
                    {
                        var r = source.Read(buf, n, ChunkSize - n);
                        if (r == 0) break;
                        n += r;
                    }
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buf);
                    throw;
                }
                if (n == 0)
                {
                    ArrayPool<byte>.Shared.Return(buf);
                    Put((null, 0, null));
                    return;
                }
                if (!Put((buf, n, null))) return;
            }
        }
        catch (Exception e)
        {
            Put((null, 0, ExceptionDispatchInfo.Capture(e)));
        }
    }

    /// <summary>Queues an item, sleeping while the queue is full; false (the buffer returned) once stopped.</summary>
    bool Put((byte[]? Buf, int Len, ExceptionDispatchInfo? Error) item)
    {
        lock (_gate)
        {
            while (_queue.Count >= _depth && !_stopped) Monitor.Wait(_gate);
            if (_stopped)
            {
                if (item.Buf != null) ArrayPool<byte>.Shared.Return(item.Buf);
                return false;
            }
            _queue.Enqueue(item);
            Monitor.PulseAll(_gate);
            return true;
        }
    }

    (byte[]? Buf, int Len, ExceptionDispatchInfo? Error) Take()
    {
        lock (_gate)
        {
            while (_queue.Count == 0) Monitor.Wait(_gate);
            var item = _queue.Dequeue();
            Monitor.PulseAll(_gate);
            return item;
        }
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0) return 0;
        while (_cur is null || _pos == _len)
        {
            if (_eof) return 0;
            if (_cur != null) { ArrayPool<byte>.Shared.Return(_cur); _cur = null; }
            var (buf, len, error) = Take();
            error?.Throw();
            if (buf is null) { _eof = true; return 0; }
            (_cur, _pos, _len) = (buf, 0, len);
        }
        var n = Math.Min(buffer.Length, _len - _pos);
        _cur.AsSpan(_pos, n).CopyTo(buffer);
        _pos += n;
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                _stopped = true;
                Monitor.PulseAll(_gate);
            }
            _producer.Join();
            while (_queue.TryDequeue(out var item)) if (item.Buf != null) ArrayPool<byte>.Shared.Return(item.Buf);
            if (_cur != null) { ArrayPool<byte>.Shared.Return(_cur); _cur = null; }
        }
        base.Dispose(disposing);
    }
}
