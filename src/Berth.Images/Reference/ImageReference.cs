using Berth.Oci.Image;

namespace Berth.Images.Reference;

/// <summary>
/// An image reference normalised as Docker does it (github.com/distribution/reference,
/// ParseNormalizedNamed): `busybox` → docker.io/library/busybox, `index.docker.io` → docker.io, a
/// first component with a '.' or ':' (or `localhost`, or an upper-case letter) is a registry host.
/// <see cref="Tag"/> and <see cref="Digest"/> are both optional; <see cref="WithDefaultTag"/> adds
/// `latest` when neither is given (docker's TagNameOnly).
/// </summary>
public sealed record ImageReference(string Domain, string Path, string? Tag, Digest? Digest)
{
    public const string DockerHub = "docker.io";
    public const string DefaultTag = "latest";
    const int NameTotalLengthMax = 255;

    /// <summary>The repository: domain/path (`docker.io/library/busybox`).</summary>
    public string Name => $"{Domain}/{Path}";

    public override string ToString() =>
        Name + (Tag is null ? "" : ":" + Tag) + (Digest is { } d ? "@" + d : "");

    /// <summary>The short form docker prints: `busybox`, `user/app`, `localhost:5000/x`.</summary>
    public string FamiliarName
    {
        get
        {
            if (Domain != DockerHub) return Name;
            return Path.StartsWith("library/", StringComparison.Ordinal) && Path.IndexOf('/', 8) < 0 ? Path[8..] : Path;
        }
    }

    public string FamiliarString =>
        FamiliarName + (Tag is null ? "" : ":" + Tag) + (Digest is { } d ? "@" + d : "");

    /// <summary>The reference with `:latest` when it has neither tag nor digest.</summary>
    public ImageReference WithDefaultTag() => Tag is null && Digest is null ? this with { Tag = DefaultTag } : this;

    /// <summary>The tag or digest a registry is asked for (digest wins, as docker does).</summary>
    public string RegistryReference => Digest?.ToString() ?? Tag ?? DefaultTag;

    public static ImageReference Parse(string s) =>
        TryParse(s, out var r, out var error) ? r : throw ImageException.Invalid(error);

    /// <summary>ParseNormalizedNamed: returns false with docker's message for a string that is not a reference.</summary>
    public static bool TryParse(string s, out ImageReference reference, out string error)
    {
        reference = null!;
        if (s.Length == 64 && IsLowerHex(s))
        {
            error = $"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings";
            return false;
        }
        var (domain, remainder) = SplitDockerDomain(s);
        var remoteName = remainder;
        var tagSep = remainder.IndexOf(':');
        if (tagSep >= 0) remoteName = remainder[..tagSep];
        if (remoteName.ToLowerInvariant() != remoteName)
        {
            error = $"invalid reference format: repository name ({remoteName}) must be lowercase";
            return false;
        }
        return TryParseFull(domain + "/" + remainder, out reference, out error);
    }

    static (string Domain, string Remainder) SplitDockerDomain(string name)
    {
        string domain, remainder;
        var i = name.IndexOf('/');
        if (i < 0 || (name.AsSpan(0, i).IndexOfAny('.', ':') < 0 && name[..i] != "localhost" && name[..i].ToLowerInvariant() == name[..i]))
        {
            domain = DockerHub;
            remainder = name;
        }
        else
        {
            domain = name[..i];
            remainder = name[(i + 1)..];
        }
        if (domain == "index.docker.io") domain = DockerHub;
        if (domain == DockerHub && !remainder.Contains('/')) remainder = "library/" + remainder;
        return (domain, remainder);
    }

    /// <summary>reference.Parse on a fully qualified string: domain/path[:tag][@digest].</summary>
    static bool TryParseFull(string s, out ImageReference reference, out string error)
    {
        reference = null!;
        error = "invalid reference format";
        string? digestText = null, tag = null;
        var name = s;
        var at = s.IndexOf('@');
        if (at >= 0) { digestText = s[(at + 1)..]; name = s[..at]; }
        var colon = name.LastIndexOf(':');
        if (colon > name.LastIndexOf('/'))
        {
            tag = name[(colon + 1)..];
            name = name[..colon];
        }
        var slash = name.IndexOf('/');
        if (slash <= 0) return false;
        var domain = name[..slash];
        var path = name[(slash + 1)..];
        if (!IsDomain(domain) || !IsPath(path)) return false;
        if (tag is not null && !IsTag(tag)) return false;
        Digest? digest = null;
        if (digestText is not null)
        {
            if (!IsDigestSyntax(digestText)) return false;
            if (!Oci.Image.Digest.TryParse(digestText, out var d))
            {
                error = $"invalid reference format: unsupported or invalid digest \"{digestText}\"";
                return false;
            }
            digest = d;
        }
        if (name.Length > NameTotalLengthMax)
        {
            error = $"invalid reference format: repository name must not be more than {NameTotalLengthMax} characters";
            return false;
        }
        reference = new ImageReference(domain, path, tag, digest);
        error = "";
        return true;
    }

    static bool IsLowerHex(string s)
    {
        foreach (var c in s) if (!(c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        return true;
    }

    static bool IsAlnum(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9';
    static bool IsLowerAlnum(char c) => c is >= 'a' and <= 'z' or >= '0' and <= '9';

    // domain := host[:port]; host := domain-component('.'domain-component)* | '[' ipv6 ']'
    static bool IsDomain(string d)
    {
        var host = d;
        var colon = d.LastIndexOf(':');
        if (colon >= 0 && colon > d.LastIndexOf(']'))
        {
            var port = d[(colon + 1)..];
            if (port.Length == 0 || !port.All(char.IsAsciiDigit)) return false;
            host = d[..colon];
        }
        if (host.StartsWith('['))
            return host.Length > 2 && host.EndsWith(']') && host[1..^1].All(c => char.IsAsciiHexDigit(c) || c == ':');
        foreach (var comp in host.Split('.'))
        {
            if (comp.Length == 0 || !IsAlnum(comp[0]) || !IsAlnum(comp[^1])) return false;
            foreach (var c in comp) if (!IsAlnum(c) && c != '-') return false;
        }
        return true;
    }

    // path := component('/'component)*; component := [a-z0-9]+((?:[._]|__|[-]+)[a-z0-9]+)*
    static bool IsPath(string p)
    {
        foreach (var comp in p.Split('/'))
        {
            if (comp.Length == 0 || !IsLowerAlnum(comp[0]) || !IsLowerAlnum(comp[^1])) return false;
            var i = 0;
            while (i < comp.Length)
            {
                if (IsLowerAlnum(comp[i])) { i++; continue; }
                // a separator: '.', '_', '__' or one or more '-'
                var j = i;
                if (comp[i] == '.') j = i + 1;
                else if (comp[i] == '_') j = i + 1 < comp.Length && comp[i + 1] == '_' ? i + 2 : i + 1;
                else if (comp[i] == '-') { while (j < comp.Length && comp[j] == '-') j++; }
                else return false;
                if (j >= comp.Length || !IsLowerAlnum(comp[j])) return false;
                i = j;
            }
        }
        return true;
    }

    // tag := [\w][\w.-]{0,127}
    static bool IsTag(string t)
    {
        if (t.Length is 0 or > 128) return false;
        static bool W(char c) => IsAlnum(c) || c == '_';
        if (!W(t[0])) return false;
        foreach (var c in t) if (!W(c) && c != '.' && c != '-') return false;
        return true;
    }

    // digest := [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}
    static bool IsDigestSyntax(string d)
    {
        var colon = d.IndexOf(':');
        if (colon <= 0) return false;
        var alg = d[..colon];
        var hex = d[(colon + 1)..];
        if (hex.Length < 32 || !hex.All(char.IsAsciiHexDigit)) return false;
        var start = true;
        foreach (var c in alg)
        {
            if (start) { if (!char.IsAsciiLetter(c)) return false; start = false; }
            else if (c is '-' or '_' or '+' or '.') start = true;
            else if (!IsAlnum(c)) return false;
        }
        return !start;
    }
}
