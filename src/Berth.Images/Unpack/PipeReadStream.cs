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
public sealed class PipeReadStream(PipeReader reader) : ForwardReadStream
{
    bool _done;

    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0 || _done) return 0;
        while (true)
        {
            var pending = reader.ReadAsync();
            var result = pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
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
        if (disposing) reader.Complete();
        base.Dispose(disposing);
    }
}
