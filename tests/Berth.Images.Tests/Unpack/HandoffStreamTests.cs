using System.IO.Pipelines;
using Berth.Images.Unpack;

namespace Berth.Images.Tests.Unpack;

/// <summary>The two blocking hand-offs of the unpack path: the read-ahead thread and the pipe from the download.</summary>
public class HandoffStreamTests
{
    static byte[] Random(int n)
    {
        var b = new byte[n];
        new Random(n).NextBytes(b);
        return b;
    }

    /// <summary>Reads everything with awkward read sizes.</summary>
    static byte[] ReadAll(Stream s)
    {
        var ms = new MemoryStream();
        var buf = new byte[70_001];
        var sizes = new[] { 1, 511, 4096, 70_001, 13 };
        for (var i = 0; ; i++)
        {
            var n = s.Read(buf, 0, sizes[i % sizes.Length]);
            if (n == 0) return ms.ToArray();
            ms.Write(buf, 0, n);
        }
    }

    /// <summary>A source that hands out its bytes in small pieces, slowly at times, then fails or ends.</summary>
    sealed class TrickleStream(byte[] data, Exception? failAtEnd = null, bool endless = false) : ForwardReadStream
    {
        int _pos;
        public override int Read(Span<byte> buffer)
        {
            if (endless) { buffer[0] = 1; return 1; }
            if (_pos == data.Length) return failAtEnd is null ? 0 : throw failAtEnd;
            if (_pos % 7 == 3) Thread.Sleep(1);
            var n = Math.Min(Math.Min(buffer.Length, 50_000), data.Length - _pos);
            data.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }
    }

    [Fact]
    public void Read_ahead_passes_every_byte_in_order()
    {
        var data = Random(5 << 20 | 12345);
        using var s = new ReadAheadStream(new TrickleStream(data), depth: 2);
        Assert.Equal(data, ReadAll(s));
        Assert.Equal(0, s.Read(new byte[10], 0, 10)); // stays at the end
    }

    [Fact]
    public void Read_ahead_rethrows_the_source_failure_after_the_bytes_before_it()
    {
        var data = Random(3 << 20);
        using var s = new ReadAheadStream(new TrickleStream(data, new InvalidDataException("corrupt gzip")), depth: 1);
        var got = new MemoryStream();
        var buf = new byte[1 << 16];
        var e = Assert.Throws<InvalidDataException>(() =>
        {
            int n;
            while ((n = s.Read(buf, 0, buf.Length)) > 0) got.Write(buf, 0, n);
        });
        Assert.Equal("corrupt gzip", e.Message);
        Assert.Equal(data.Length, got.Length); // full chunks before the failure were delivered
    }

    [Fact]
    public async Task Disposing_read_ahead_stops_a_producer_blocked_on_a_full_queue()
    {
        var s = new ReadAheadStream(new TrickleStream([], endless: true), depth: 1);
        Assert.Equal(1, s.Read(new byte[1], 0, 1));
        await Task.Run(s.Dispose).WaitAsync(TimeSpan.FromSeconds(30)); // a TimeoutException if the producer never stops
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Pipe_reader_wakes_for_each_write_and_ends_when_the_writer_completes(bool inlineScheduler)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19, useSynchronizationContext: false,
            readerScheduler: inlineScheduler ? PipeScheduler.Inline : PipeScheduler.ThreadPool));
        var data = Random(4 << 20);
        var reader = Task.Factory.StartNew(() =>
        {
            using var s = new PipeReadStream(pipe.Reader);
            return ReadAll(s);
        }, TaskCreationOptions.LongRunning);
        for (var off = 0; off < data.Length; off += 100_000)
        {
            await pipe.Writer.WriteAsync(data.AsMemory(off, Math.Min(100_000, data.Length - off)));
            if (off % 700_000 == 0) await Task.Delay(5); // the reader finds the pipe empty and sleeps
        }
        await pipe.Writer.CompleteAsync();
        Assert.Equal(data, await reader.WaitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Pipe_reader_gets_the_writers_failure()
    {
        var pipe = new Pipe(new PipeOptions(useSynchronizationContext: false, readerScheduler: PipeScheduler.Inline));
        var reader = Task.Factory.StartNew(() =>
        {
            using var s = new PipeReadStream(pipe.Reader);
            return ReadAll(s);
        }, TaskCreationOptions.LongRunning);
        await pipe.Writer.WriteAsync(new byte[1000]);
        await Task.Delay(20);
        await pipe.Writer.CompleteAsync(new IOException("digest mismatch"));
        var e = await Assert.ThrowsAsync<IOException>(() => reader.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("digest mismatch", e.Message);
    }
}
