using System.Security.Cryptography;

namespace Berth.Oci.Image;

/// <summary>
/// A content digest "algorithm:encoded" (image-spec descriptor.md#digests), validated on parse:
/// sha256 (64 lower-case hex) and sha512 (128). Anything else is refused, so a digest can be used
/// as a file name without further checks.
/// </summary>
public readonly record struct Digest
{
    public string Algorithm { get; }
    public string Encoded { get; }

    Digest(string algorithm, string encoded) { Algorithm = algorithm; Encoded = encoded; }

    public override string ToString() => $"{Algorithm}:{Encoded}";

    public static Digest Parse(string s) =>
        TryParse(s, out var d) ? d : throw new FormatException($"invalid digest \"{s}\": want sha256:<64 hex> or sha512:<128 hex>");

    public static bool TryParse(string? s, out Digest digest)
    {
        digest = default;
        if (s is null) return false;
        var colon = s.IndexOf(':');
        if (colon <= 0) return false;
        var alg = s[..colon];
        var enc = s[(colon + 1)..];
        var want = alg switch { "sha256" => 64, "sha512" => 128, _ => -1 };
        if (want < 0 || enc.Length != want) return false;
        foreach (var c in enc)
            if (!(c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        digest = new Digest(alg, enc);
        return true;
    }

    public static Digest Sha256(ReadOnlySpan<byte> data) => FromHash("sha256", SHA256.HashData(data));

    public static Digest FromHash(string algorithm, ReadOnlySpan<byte> hash) =>
        new(algorithm, Convert.ToHexStringLower(hash));

    /// <summary>An incremental hasher for this digest's algorithm.</summary>
    public IncrementalHash CreateHasher() => Algorithm switch
    {
        "sha256" => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
        "sha512" => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
        _ => throw new InvalidOperationException("default Digest"),
    };
}
