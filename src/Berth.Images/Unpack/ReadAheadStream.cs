using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Berth.Images.Unpack;

/// <summary>
/// Reads a stream on a background thread into a few large buffers, so decompression and hashing
/// (the producer) overlap with creating files (the consumer). An exception in the producer is
/// rethrown to the reader as it was; disposing stops and joins the producer, so the source is
/// never read after Dispose returns.
/// </summary>
public sealed class ReadAheadStream : ForwardReadStream
{
    const int ChunkSize = 1 << 20;
    readonly BlockingCollection<(byte[]? Buf, int Len, ExceptionDispatchInfo? Error)> _queue;
    readonly CancellationTokenSource _stop = new();
    readonly Thread _producer;
    byte[]? _cur;
    int _pos, _len;
    bool _eof;

    public ReadAheadStream(Stream source, int depth = 4)
    {
        _queue = new(depth);
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
                    while (n < ChunkSize)
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
                    _queue.Add((null, 0, null), _stop.Token);
                    return;
                }
                _queue.Add((buf, n, null), _stop.Token);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            try { _queue.Add((null, 0, ExceptionDispatchInfo.Capture(e)), _stop.Token); }
            catch (OperationCanceledException) { }
        }
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0) return 0;
        while (_cur is null || _pos == _len)
        {
            if (_eof) return 0;
            if (_cur != null) { ArrayPool<byte>.Shared.Return(_cur); _cur = null; }
            var (buf, len, error) = _queue.Take();
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
            _stop.Cancel();
            _producer.Join();
            while (_queue.TryTake(out var item)) if (item.Buf != null) ArrayPool<byte>.Shared.Return(item.Buf);
            if (_cur != null) { ArrayPool<byte>.Shared.Return(_cur); _cur = null; }
            _queue.Dispose();
            _stop.Dispose();
        }
        base.Dispose(disposing);
    }
}
