using Berth.Images;
using Berth.Images.Registry;
using Berth.Oci.Image;

namespace Berth.Cli.Images;

/// <summary>
/// Pull/push progress as docker shows it: on a terminal one live line per blob (redrawn in place with
/// ANSI cursor movement, at most 10 times a second); otherwise plain lines when a blob starts and ends.
/// </summary>
sealed class ProgressView : ITransferProgress, IDisposable
{
    readonly TextWriter _out;
    readonly bool _live;
    readonly bool _quiet;
    readonly string _verb;
    readonly Lock _lock = new();
    readonly List<string> _order = [];
    readonly Dictionary<string, (long Done, long Total, string State)> _rows = [];
    int _drawn;
    long _lastDraw;

    public ProgressView(TextWriter output, bool live, bool quiet, string verb)
    {
        _out = output;
        _live = live && !quiet;
        _quiet = quiet;
        _verb = verb;
    }

    public static bool IsTerminal => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb");

    static string Short(Descriptor d) => d.Digest.Length > 19 ? d.Digest[7..19] : d.Digest;

    /// <summary>Blobs that were transferred (not already present).</summary>
    public int Transferred { get; private set; }

    public void Status(string line)
    {
        if (_quiet) return;
        lock (_lock)
        {
            Freeze();
            _out.WriteLine(line);
        }
    }

    public void BlobStarted(Descriptor blob, string kind)
    {
        if (kind == "config") _configs.Add(blob.Digest); // docker shows no line for a pull's config
        Set(blob, 0, _verb == "push" ? "Preparing" : "Pulling fs layer", plain: true);
    }

    public void BlobProgress(Descriptor blob, long done) => Set(blob, done, _verb == "push" ? "Pushing" : "Downloading", plain: false);

    public void BlobDone(Descriptor blob, string outcome)
    {
        if (outcome is "Download complete" or "Pushed") lock (_lock) Transferred++;
        Set(blob, blob.Size, outcome, plain: true);
    }

    readonly HashSet<string> _configs = [];

    void Set(Descriptor blob, long done, string state, bool plain)
    {
        if (_quiet || (_verb == "pull" && _configs.Contains(blob.Digest))) return;
        lock (_lock)
        {
            var id = Short(blob);
            if (!_rows.ContainsKey(id)) _order.Add(id);
            _rows[id] = (done, blob.Size, state);
            if (!_live)
            {
                if (plain) _out.WriteLine($"{id}: {state}");
                return;
            }
            Draw(force: plain);
        }
    }

    /// <summary>Draws the blob lines a last time and leaves them on screen: later output goes below.</summary>
    void Freeze()
    {
        Draw(force: true);
        _order.Clear();
        _rows.Clear();
        _drawn = 0;
    }

    void Draw(bool force)
    {
        if (!_live || _order.Count == 0) return;
        var now = Environment.TickCount64;
        if (!force && now - _lastDraw < 100) return;
        _lastDraw = now;
        if (_drawn > 0) _out.Write($"\x1b[{_drawn}A");
        foreach (var id in _order)
        {
            var (done, total, state) = _rows[id];
            var bar = "";
            if (state is "Downloading" or "Pushing" && total > 0)
            {
                var filled = (int)Math.Clamp(done * 40 / total, 0, 40);
                bar = $" [{new string('=', Math.Max(0, filled - 1))}{(filled > 0 ? ">" : "")}{new string(' ', 40 - filled)}] {Units.HumanSize(done)}/{Units.HumanSize(total)}";
            }
            _out.Write($"\x1b[2K{id}: {state}{bar}\n");
        }
        _drawn = _order.Count;
        _out.Flush();
    }

    public void Dispose()
    {
        lock (_lock) Freeze();
    }
}
