using System.Text;

namespace Berth.Images.Registry;

/// <summary>
/// One challenge of a WWW-Authenticate header (RFC 7235 §4.1): a scheme (`Bearer`, `Basic`) and its
/// auth-params, e.g. `Bearer realm="https://auth.example/token",service="registry",scope="repository:x:pull"`.
/// </summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? Realm => Parameters.GetValueOrDefault("realm");
    public string? Service => Parameters.GetValueOrDefault("service");
    public string? Scope => Parameters.GetValueOrDefault("scope");
    public string? Error => Parameters.GetValueOrDefault("error");

    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);
    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses a header value that may hold several challenges; malformed parts are skipped.</summary>
    public static List<AuthChallenge> Parse(string header)
    {
        var result = new List<AuthChallenge>();
        var i = 0;
        string? scheme = null;
        Dictionary<string, string> ps = new(StringComparer.OrdinalIgnoreCase);
        while (true)
        {
            SkipSeparators(header, ref i);
            if (i >= header.Length) break;
            var token = ReadToken(header, ref i);
            if (token.Length == 0) { i++; continue; }
            SkipSpaces(header, ref i);
            if (i < header.Length && header[i] == '=' && scheme is not null)
            {
                i++;
                SkipSpaces(header, ref i);
                ps[token] = i < header.Length && header[i] == '"' ? ReadQuoted(header, ref i) : ReadToken(header, ref i);
            }
            else
            {
                // A token not followed by '=' starts the next challenge.
                if (scheme is not null) result.Add(new AuthChallenge(scheme, ps));
                scheme = token;
                ps = new(StringComparer.OrdinalIgnoreCase);
            }
        }
        if (scheme is not null) result.Add(new AuthChallenge(scheme, ps));
        return result;
    }

    static void SkipSpaces(string s, ref int i) { while (i < s.Length && s[i] is ' ' or '\t') i++; }
    static void SkipSeparators(string s, ref int i) { while (i < s.Length && s[i] is ' ' or '\t' or ',') i++; }

    static string ReadToken(string s, ref int i)
    {
        var start = i;
        while (i < s.Length && s[i] is not (' ' or '\t' or ',' or '=' or '"')) i++;
        return s[start..i];
    }

    static string ReadQuoted(string s, ref int i)
    {
        var sb = new StringBuilder();
        i++; // opening quote
        while (i < s.Length && s[i] != '"')
        {
            if (s[i] == '\\' && i + 1 < s.Length) i++;
            sb.Append(s[i++]);
        }
        if (i < s.Length) i++; // closing quote
        return sb.ToString();
    }
}
