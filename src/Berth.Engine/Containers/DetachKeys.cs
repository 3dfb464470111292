namespace Berth.Engine.Containers;

/// <summary>docker's `--detach-keys` ("ctrl-p,ctrl-q", the default): comma-separated keys, each a single
/// character or ctrl-X with X one of a-z @ [ \ ] ^ _.</summary>
public static class DetachKeys
{
    public const string Default = "ctrl-p,ctrl-q";

    public static byte[] Parse(string spec)
    {
        var keys = new List<byte>();
        foreach (var k in spec.Split(','))
        {
            if (k.Length == 1 && k[0] < 0x80) { keys.Add((byte)k[0]); continue; }
            if (k.Length == 6 && k.StartsWith("ctrl-", StringComparison.Ordinal))
            {
                var ch = char.ToLowerInvariant(k[5]);
                if (ch is >= 'a' and <= 'z') { keys.Add((byte)(ch - 'a' + 1)); continue; }
                var i = "@[\\]^_".IndexOf(k[5]);
                if (i >= 0) { keys.Add((byte)(i == 0 ? 0 : 26 + i)); continue; }
            }
            throw EngineException.Invalid($"invalid detach keys ({spec}) provided");
        }
        return [.. keys];
    }
}

/// <summary>Finds the detach sequence in a byte stream: bytes that could start it are held back until
/// the sequence completes (then dropped) or breaks (then passed on), as docker's escape proxy.</summary>
public sealed class DetachKeyScanner(byte[]? keys)
{
    int _matched;

    public (byte[] Pass, bool Hit) Feed(ReadOnlySpan<byte> data)
    {
        if (keys is not { Length: > 0 }) return (data.ToArray(), false);
        var pass = new List<byte>(data.Length);
        foreach (var b in data)
        {
            if (b == keys[_matched])
            {
                if (++_matched == keys.Length) return ([.. pass], true);
                continue;
            }
            // The held prefix was not the sequence: it passes, and b may start a new one.
            for (var i = 0; i < _matched; i++) pass.Add(keys[i]);
            _matched = 0;
            if (b == keys[0]) { if (++_matched == keys.Length) return ([.. pass], true); }
            else pass.Add(b);
        }
        return ([.. pass], false);
    }
}
