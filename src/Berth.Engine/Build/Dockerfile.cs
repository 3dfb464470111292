using System.Text;
using System.Text.Json;

namespace Berth.Engine.Build;

/// <summary>One instruction of a Dockerfile as written: its keyword (upper case), its flags
/// (--name=value, in order), its arguments after the flags, and the JSON array when the arguments are
/// in exec form. <see cref="Original"/> is the instruction on one line, as docker prints it in
/// "Step N/M : …".</summary>
public sealed record Instruction(int Line, string Keyword, IReadOnlyList<(string Name, string Value)> Flags, string Args, List<string>? Json, string Original)
{
    public string? Flag(string name) => Flags.LastOrDefault(f => f.Name == name).Value;
}

/// <summary>A stage: FROM and the instructions up to the next FROM.</summary>
public sealed class Stage
{
    public required Instruction From { get; init; }
    public List<Instruction> Instructions { get; } = [];
    /// <summary>`AS name` (lower case), or null.</summary>
    public string? Name { get; init; }
    public string BaseName { get; init; } = "";
}

/// <summary>A parsed Dockerfile: the ARGs before the first FROM and the stages.</summary>
public sealed class Dockerfile
{
    public List<Instruction> MetaArgs { get; } = [];
    public List<Stage> Stages { get; } = [];
    public char Escape { get; init; } = '\\';

    public static readonly HashSet<string> Keywords =
    [
        "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
        "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
    ];

    static readonly Dictionary<string, string[]> AllowedFlags = new()
    {
        ["FROM"] = ["platform"],
        ["COPY"] = ["from", "chown", "chmod", "link", "parents", "exclude"],
        ["ADD"] = ["chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"],
        ["HEALTHCHECK"] = ["interval", "timeout", "start-period", "start-interval", "retries"],
        ["RUN"] = ["mount", "network", "security"],
    };

    static DockerfileException Error(int line, string message) => new($"dockerfile parse error on line {line}: {message}");

    /// <summary>Parses a Dockerfile's text. Errors name the line: "dockerfile parse error on line 3:
    /// unknown instruction: FOO".</summary>
    public static Dockerfile Parse(string text)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        var escape = '\\';
        var i = 0;
        // Parser directives: "# key=value" lines at the very top (escape, syntax; others ignored).
        var seen = new HashSet<string>();
        for (; i < lines.Length; i++)
        {
            var m = System.Text.RegularExpressions.Regex.Match(lines[i], @"^\s*#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$");
            if (!m.Success) break;
            var key = m.Groups[1].Value.ToLowerInvariant();
            if (!seen.Add(key)) throw Error(i + 1, $"only one {key} parser directive can be used");
            if (key == "escape")
            {
                var v = m.Groups[2].Value;
                if (v is not ("\\" or "`")) throw Error(i + 1, $"invalid escape token '{v}' does not match ` or \\");
                escape = v[0];
            }
        }
        var doc = new Dockerfile { Escape = escape };
        Stage? stage = null;
        while (i < lines.Length)
        {
            var raw = lines[i];
            var startLine = i + 1;
            i++;
            var trimmed = raw.TrimStart();
            if (trimmed.Length == 0 || trimmed[0] == '#') continue;
            // Join continuation lines; comment lines and empty lines inside a continuation are dropped.
            var sb = new StringBuilder();
            var cur = trimmed;
            while (true)
            {
                var t = cur.TrimEnd();
                if (t.Length > 0 && t[^1] == escape)
                {
                    sb.Append(t, 0, t.Length - 1);
                    string? next = null;
                    while (i < lines.Length)
                    {
                        var n = lines[i++];
                        var nt = n.TrimStart();
                        if (nt.Length > 0 && nt[0] == '#') continue;
                        if (nt.Length == 0) continue;
                        next = n;
                        break;
                    }
                    if (next is null) break;
                    cur = next;
                    continue;
                }
                sb.Append(t);
                break;
            }
            var line = sb.ToString().Trim();
            if (line.Length == 0) continue;
            var instr = ParseInstruction(startLine, line);
            if (instr.Keyword == "FROM")
            {
                var words = instr.Args.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                string? name = null;
                if (words.Length == 3 && words[1].Equals("as", StringComparison.OrdinalIgnoreCase))
                {
                    name = words[2].ToLowerInvariant();
                    if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[a-z][a-z0-9-_.]*$"))
                        throw Error(startLine, $"invalid name for build stage: \"{words[2]}\", name can't start with a number or contain symbols");
                }
                else if (words.Length != 1) throw Error(startLine, "FROM requires either one or three arguments");
                stage = new Stage { From = instr, Name = name, BaseName = words[0] };
                doc.Stages.Add(stage);
                continue;
            }
            if (stage is null)
            {
                if (instr.Keyword != "ARG") throw Error(startLine, $"no build stage in current context: {instr.Keyword} before FROM");
                doc.MetaArgs.Add(instr);
                continue;
            }
            stage.Instructions.Add(instr);
        }
        if (doc.Stages.Count == 0) throw new DockerfileException("the Dockerfile has no FROM instruction (file with no instructions)");
        return doc;
    }

    static Instruction ParseInstruction(int line, string text)
    {
        var sp = text.IndexOfAny([' ', '\t']);
        var word = sp < 0 ? text : text[..sp];
        var keyword = word.ToUpperInvariant();
        if (!Keywords.Contains(keyword)) throw Error(line, $"unknown instruction: {word}");
        var rest = sp < 0 ? "" : text[(sp + 1)..].TrimStart();
        // Flags: leading --name[=value] words.
        var flags = new List<(string, string)>();
        while (rest.StartsWith("--", StringComparison.Ordinal))
        {
            var end = rest.IndexOfAny([' ', '\t']);
            var flag = end < 0 ? rest : rest[..end];
            rest = end < 0 ? "" : rest[(end + 1)..].TrimStart();
            var eq = flag.IndexOf('=');
            var name = eq < 0 ? flag[2..] : flag[2..eq];
            var value = eq < 0 ? "true" : flag[(eq + 1)..];
            if (!AllowedFlags.TryGetValue(keyword, out var allowed) || !allowed.Contains(name))
                throw Error(line, $"unknown flag: --{name} for {keyword}");
            flags.Add((name, value));
        }
        List<string>? json = null;
        if (rest.StartsWith('[') && keyword is "RUN" or "CMD" or "ENTRYPOINT" or "SHELL" or "VOLUME" or "COPY" or "ADD" or "HEALTHCHECK")
            json = TryJsonArray(rest);
        if (keyword == "SHELL" && json is null) throw Error(line, "SHELL requires the arguments to be in JSON form");
        if (rest.Length == 0 && keyword is not ("CMD" or "ENTRYPOINT" or "RUN"))
            throw Error(line, $"{keyword} requires at least one argument");
        if (keyword == "RUN" && rest.Length == 0) throw Error(line, "RUN requires at least one argument");
        var original = word + (flags.Count > 0 ? " " + string.Join(' ', flags.Select(f => $"--{f.Item1}={f.Item2}")) : "") + (rest.Length > 0 ? " " + rest : "");
        return new Instruction(line, keyword, flags, rest, json, original);
    }

    /// <summary>A JSON array of strings, or null (docker falls back to the shell form then).</summary>
    public static List<string>? TryJsonArray(string s)
    {
        try
        {
            using var d = JsonDocument.Parse(s);
            if (d.RootElement.ValueKind != JsonValueKind.Array) return null;
            var list = new List<string>();
            foreach (var e in d.RootElement.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) return null;
                list.Add(e.GetString()!);
            }
            return list;
        }
        catch (JsonException) { return null; }
    }
}

/// <summary>A Dockerfile that cannot be parsed or built as written (docker's 400 / exit 1).</summary>
public sealed class DockerfileException(string message) : Exception(message);
