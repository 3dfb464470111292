using System.Buffers;
using System.IO.Pipelines;

namespace Berth.Images.Unpack;

/// <summary>
/// The reading end of a <see cref="Pipe"/> as a blocking, forward-only stream, for the unpacker's
/// dedicated threads: a layer's bytes can be extracted while the download writes them. The writer's
/// failure is thrown to the reader as it was; end of stream means the writer completed normally (a
/// download completes only after the blob's digest was verified). Disposing completes the reader, so
/// a writer that goes on learns nobody is reading.
/// </summary>
/// <remarks>
/// A read that finds the pipe empty sleeps on an event the pipe's continuation sets; it does not
/// spin (Task.Wait spins and calls sched_yield before it blocks, which on a small machine takes the
/// CPU the download and the decompressor need). Give the pipe <see cref="PipeScheduler.Inline"/> as
/// its reader scheduler and the writer's flush wakes this thread directly, without a thread-pool hop.
/// </remarks>
public sealed class PipeReadStream(PipeReader reader) : ForwardReadStream
{
    readonly ManualResetEventSlim _ready = new(false, spinCount: 0);
    bool _done;

    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0 || _done) return 0;
        while (true)
        {
            var pending = reader.ReadAsync();
            if (!pending.IsCompleted)
            {
                _ready.Reset();
                pending.GetAwaiter().UnsafeOnCompleted(_ready.Set);
                _ready.Wait();
            }
            var result = pending.GetAwaiter().GetResult();
            var data = result.Buffer;
            if (!data.IsEmpty)
            {
                var n = (int)Math.Min(buffer.Length, data.Length);
                data.Slice(0, n).CopyTo(buffer);
                reader.AdvanceTo(data.GetPosition(n));
                return n;
            }
            reader.AdvanceTo(data.End);
            if (result.IsCompleted) { _done = true; return 0; }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            reader.Complete();
            _ready.Dispose();
        }
        base.Dispose(disposing);
    }
}
