using System.Text;

namespace Berth.Engine.Build;

/// <summary>
/// The Dockerfile's word processing where docker performs it (ADD, COPY, ENV, EXPOSE, FROM, LABEL,
/// STOPSIGNAL, USER, VOLUME, WORKDIR, ARG, ONBUILD's trigger is not expanded): quotes removed,
/// the escape character, and $VAR, ${VAR}, ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word},
/// ${VAR:?msg}. RUN, CMD and ENTRYPOINT are left to the shell.
/// </summary>
public sealed class ShellWords(char escape = '\\')
{
    /// <summary>One word: quotes removed, variables expanded, no splitting.</summary>
    public string Word(string input, IReadOnlyDictionary<string, string> env) => string.Concat(Words(input, env, split: false));

    /// <summary>Words split on unquoted white space, each processed as <see cref="Word"/>.</summary>
    public List<string> Split(string input, IReadOnlyDictionary<string, string> env) => Words(input, env, split: true);

    List<string> Words(string s, IReadOnlyDictionary<string, string> env, bool split)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        var inWord = false;
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (split && char.IsWhiteSpace(c))
            {
                if (inWord) { words.Add(cur.ToString()); cur.Clear(); inWord = false; }
                i++;
                continue;
            }
            inWord = true;
            if (c == escape)
            {
                if (i + 1 < s.Length) { cur.Append(s[i + 1]); i += 2; }
                else { cur.Append(c); i++; }
                continue;
            }
            if (c == '\'')
            {
                var end = s.IndexOf('\'', i + 1);
                if (end < 0) throw new DockerfileException($"unexpected end of statement while looking for matching single-quote in \"{s}\"");
                cur.Append(s, i + 1, end - i - 1);
                i = end + 1;
                continue;
            }
            if (c == '"')
            {
                i++;
                var closed = false;
                while (i < s.Length)
                {
                    var d = s[i];
                    if (d == '"') { closed = true; i++; break; }
                    if (d == escape && i + 1 < s.Length)
                    {
                        var n = s[i + 1];
                        if (n == '"' || n == '$' || n == escape) cur.Append(n);
                        else cur.Append(d).Append(n);
                        i += 2;
                        continue;
                    }
                    if (d == '$') { i = Variable(s, i, env, cur); continue; }
                    cur.Append(d); i++;
                }
                if (!closed) throw new DockerfileException($"unexpected end of statement while looking for matching double-quote in \"{s}\"");
                continue;
            }
            if (c == '$') { i = Variable(s, i, env, cur); continue; }
            cur.Append(c); i++;
        }
        if (inWord || !split) words.Add(cur.ToString());
        return words;
    }

    /// <summary>Expands the variable at s[i] == '$' into <paramref name="o"/>; returns the index after it.</summary>
    int Variable(string s, int i, IReadOnlyDictionary<string, string> env, StringBuilder o)
    {
        if (i + 1 >= s.Length) { o.Append('$'); return i + 1; }
        var c = s[i + 1];
        if (c == '{')
        {
            var j = i + 2;
            var nameStart = j;
            while (j < s.Length && (char.IsLetterOrDigit(s[j]) || s[j] == '_')) j++;
            var name = s[nameStart..j];
            if (name.Length == 0) throw new DockerfileException($"bad substitution: missing variable name in \"{s}\"");
            if (j >= s.Length) throw new DockerfileException($"missing '}}' in \"{s}\"");
            if (s[j] == '}') { o.Append(env.GetValueOrDefault(name, "")); return j + 1; }
            var colon = s[j] == ':';
            if (colon) j++;
            if (j >= s.Length) throw new DockerfileException($"missing '}}' in \"{s}\"");
            var op = s[j++];
            if (op is not ('-' or '+' or '?')) throw new DockerfileException($"unsupported modifier ({op}) in substitution in \"{s}\"");
            // The word runs to the matching brace; it is itself processed (nested variables, quotes).
            var depth = 1; var k = j;
            for (; k < s.Length; k++)
            {
                if (s[k] == escape) { k++; continue; }
                if (s[k] == '{') depth++;
                else if (s[k] == '}' && --depth == 0) break;
            }
            if (k >= s.Length) throw new DockerfileException($"missing '}}' in \"{s}\"");
            var word = Word(s[j..k], env);
            var set = env.TryGetValue(name, out var value);
            var present = set && (!colon || value!.Length > 0);
            switch (op)
            {
                case '-': o.Append(present ? value : word); break;
                case '+': o.Append(present ? word : ""); break;
                case '?':
                    if (!present) throw new DockerfileException($"{name}: {(word.Length > 0 ? word : "is not allowed to be unset")}");
                    o.Append(value);
                    break;
            }
            return k + 1;
        }
        if (char.IsLetter(c) || c == '_')
        {
            var j = i + 1;
            while (j < s.Length && (char.IsLetterOrDigit(s[j]) || s[j] == '_')) j++;
            o.Append(env.GetValueOrDefault(s[(i + 1)..j], ""));
            return j;
        }
        o.Append('$');
        return i + 1;
    }

    /// <summary>ENV and LABEL arguments: `key value` (one pair, the rest is the value) or
    /// `k=v k2="v 2"`; keys and values processed.</summary>
    public List<(string Key, string Value)> KeyValues(string args, string keyword, IReadOnlyDictionary<string, string> env)
    {
        var raw = RawWords(args);
        var result = new List<(string, string)>();
        if (raw.Count == 0) throw new DockerfileException($"{keyword} requires at least one argument");
        if (!raw[0].Contains('='))
        {
            // legacy form: ENV key value with spaces
            var sp = args.IndexOfAny([' ', '\t']);
            if (sp < 0) throw new DockerfileException($"{keyword} must have two arguments");
            result.Add((Word(args[..sp], env), Word(args[(sp + 1)..].Trim(), env)));
            return result;
        }
        foreach (var w in raw)
        {
            var eq = w.IndexOf('=');
            if (eq <= 0) throw new DockerfileException($"{keyword} names can not be blank" + (eq < 0 ? $": \"{w}\" has no =VALUE" : ""));
            result.Add((Word(w[..eq], env), Word(w[(eq + 1)..], env)));
        }
        return result;
    }

    /// <summary>Splits on unquoted white space keeping quotes and escapes as written.</summary>
    public List<string> RawWords(string s)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        char quote = '\0';
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (quote == '\0' && char.IsWhiteSpace(c))
            {
                if (cur.Length > 0) { words.Add(cur.ToString()); cur.Clear(); }
                continue;
            }
            if (c == escape && quote != '\'' && i + 1 < s.Length) { cur.Append(c).Append(s[i + 1]); i++; continue; }
            if (quote == '\0' && c is '"' or '\'') quote = c;
            else if (c == quote) quote = '\0';
            cur.Append(c);
        }
        if (cur.Length > 0) words.Add(cur.ToString());
        return words;
    }
}
