using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Engine.Formatting;

/// <summary>A template that does not parse or cannot be executed on the data; the message reads as Go's ("template: …").</summary>
public sealed class TemplateException(string message) : Exception(message);

/// <summary>
/// Go's text/template as docker's and podman's `--format` use it, over JSON data: text and
/// {{actions}} with trim markers ({{- -}}) and comments; fields (.A.B), $ and variables ($x := …,
/// $x = …), literals, pipelines (a | f) and parenthesised pipelines; if/else if/else, range (over
/// lists and maps, with $i, $v := …, else, break, continue) and with; Go's built-in functions (and or
/// not len index slice eq ne lt le gt ge print printf println) and docker's (json join split lower
/// upper title pad truncate). Values print as Go prints them: strings bare, lists as [a b], maps as
/// map[k:v] with sorted keys, null as &lt;nil&gt;. A field missing from an object is an error when
/// <see cref="MissingKeyIsError"/> (docker's typed contexts, e.g. `ps --format`) and "&lt;no value&gt;"
/// otherwise (docker's inspect, which falls back to the raw JSON map).
/// </summary>
public sealed class GoTemplate
{
    readonly List<Node> _nodes;
    readonly string _source;

    GoTemplate(string source, List<Node> nodes) { _source = source; _nodes = nodes; }

    public bool MissingKeyIsError { get; init; }

    public static GoTemplate Parse(string source, bool missingKeyIsError = false) =>
        new(source, new Parser(source).ParseAll()) { MissingKeyIsError = missingKeyIsError };

    public string Execute(JsonNode? data)
    {
        var sb = new StringBuilder();
        var ex = new Executor(this, data, sb);
        ex.Run(_nodes);
        return sb.ToString();
    }

    /// <summary>The same parsed template with the other treatment of missing fields (nothing is parsed again).</summary>
    public GoTemplate WithMissingKeyIsError(bool missingKeyIsError) =>
        missingKeyIsError == MissingKeyIsError ? this : new(_source, _nodes) { MissingKeyIsError = missingKeyIsError };

    /// <summary>Fields the template reads from its data at the top level (".ID" → "ID"), in order: a table header is made of them.</summary>
    public IEnumerable<string> TopLevelFields()
    {
        foreach (var n in _nodes)
            if (n is ActionNode { Pipe: { Decl.Count: 0, Cmds: [{ Args: [FieldArg { Chain: [var f, ..] } ] }] } }) yield return f;
    }

    // ---- syntax tree ----
    abstract record Node;
    sealed record TextNode(string Text) : Node;
    sealed record ActionNode(Pipeline Pipe) : Node;
    sealed record IfNode(Pipeline Cond, List<Node> Then, List<Node>? Else) : Node;
    sealed record RangeNode(Pipeline Pipe, List<Node> Body, List<Node>? Else) : Node;
    sealed record WithNode(Pipeline Pipe, List<Node> Body, List<Node>? Else) : Node;
    sealed record BreakNode : Node;
    sealed record ContinueNode : Node;

    sealed record Pipeline(List<string> Decl, bool Assign, List<Command> Cmds);
    sealed record Command(List<Arg> Args);
    abstract record Arg;
    /// <summary>.A.B on the dot (an empty chain is the dot itself).</summary>
    sealed record FieldArg(string[] Chain) : Arg;
    sealed record VariableArg(string Name, string[] Chain) : Arg;
    sealed record FunctionArg(string Name) : Arg;
    sealed record LiteralArg(JsonNode? Value) : Arg;
    sealed record NilArg : Arg;
    sealed record PipeArg(Pipeline Pipe, string[] Chain) : Arg;

    // ---- lexer + parser ----
    enum Tok { Field, Dot, Variable, Ident, String, Number, Bool, Nil, Pipe, LParen, RParen, Declare, Assign, Comma, End }

    readonly record struct Token(Tok Kind, string Text, bool SpaceBefore);

    sealed class Parser(string src)
    {
        int _pos;
        List<Token> _toks = [];
        int _t;
        int _line = 1;

        public List<Node> ParseAll()
        {
            var nodes = ParseList(out var end);
            if (end is not null) throw Error($"unexpected {{{{{end}}}}}");
            return nodes;
        }

        TemplateException Error(string what) => new($"template: :{_line}: {what}");

        /// <summary>Parses until {{end}}/{{else…}} (returned in <paramref name="terminator"/>) or the end of the text.</summary>
        List<Node> ParseList(out string? terminator)
        {
            var nodes = new List<Node>();
            terminator = null;
            while (_pos < src.Length)
            {
                var open = src.IndexOf("{{", _pos, StringComparison.Ordinal);
                var text = open < 0 ? src[_pos..] : src[_pos..open];
                var trimLeft = open >= 0 && open + 3 < src.Length && src[open + 2] == '-' && IsSpace(src[open + 3]);
                if (trimLeft) text = text.TrimEnd(' ', '\t', '\r', '\n');
                if (text.Length > 0) nodes.Add(new TextNode(text));
                _line += src.AsSpan(_pos, (open < 0 ? src.Length : open) - _pos).Count('\n');
                if (open < 0) { _pos = src.Length; break; }
                var start = open + (trimLeft ? 3 : 2);
                var (close, trimRight) = FindClose(start);
                var body = src[start..close].Trim();
                _pos = close + (trimRight ? 3 : 2);
                if (trimRight) while (_pos < src.Length && IsSpace(src[_pos])) { if (src[_pos] == '\n') _line++; _pos++; }
                if (body.StartsWith("/*", StringComparison.Ordinal))
                {
                    if (!body.EndsWith("*/", StringComparison.Ordinal)) throw Error("unclosed comment");
                    continue;
                }
                _toks = Lex(body);
                _t = 0;
                if (_toks.Count == 0) throw Error("missing value for command");
                var first = _toks[0];
                if (first.Kind == Tok.Ident)
                {
                    switch (first.Text)
                    {
                        case "end":
                            Expect(1); terminator = "end"; return nodes;
                        case "else":
                            terminator = _toks.Count > 1 ? "else " + body[4..].Trim() : "else"; return nodes;
                        case "if": _t = 1; nodes.Add(ParseControl("if")); continue;
                        case "range": _t = 1; nodes.Add(ParseControl("range")); continue;
                        case "with": _t = 1; nodes.Add(ParseControl("with")); continue;
                        case "break": Expect(1); nodes.Add(new BreakNode()); continue;
                        case "continue": Expect(1); nodes.Add(new ContinueNode()); continue;
                        case "define" or "template" or "block":
                            throw Error($"{{{{{first.Text}}}}} is not supported");
                    }
                }
                var pipe = ParsePipeline(allowDecl: true);
                if (_t < _toks.Count) throw Error($"unexpected \"{_toks[_t].Text}\" in command");
                nodes.Add(new ActionNode(pipe));
            }
            return nodes;
        }

        void Expect(int count)
        {
            if (_toks.Count != count) throw Error($"unexpected \"{_toks[count].Text}\" after {_toks[0].Text}");
        }

        Node ParseControl(string kind)
        {
            var pipe = ParsePipeline(allowDecl: true);
            if (_t < _toks.Count) throw Error($"unexpected \"{_toks[_t].Text}\" in {kind}");
            var body = ParseList(out var term);
            List<Node>? elseNodes = null;
            if (term is null) throw Error($"unexpected EOF: missing {{{{end}}}} for {kind}");
            if (term == "else")
            {
                elseNodes = ParseList(out term);
                if (term != "end") throw Error($"expected {{{{end}}}} after {{{{else}}}} of {kind}");
            }
            else if (term.StartsWith("else ", StringComparison.Ordinal))
            {
                // {{else if …}} / {{else with …}}: a nested control that shares this {{end}}
                var rest = term[5..];
                _toks = Lex(rest);
                _t = 1;
                var nestedKind = _toks.Count > 0 ? _toks[0].Text : "";
                if (nestedKind != kind || kind == "range") throw Error($"unexpected {{{{{term}}}}} in {kind}");
                elseNodes = [ParseControl(kind)];
            }
            return kind switch
            {
                "if" => new IfNode(pipe, body, elseNodes),
                "range" => new RangeNode(pipe, body, elseNodes),
                _ => new WithNode(pipe, body, elseNodes),
            };
        }

        Pipeline ParsePipeline(bool allowDecl)
        {
            var decl = new List<string>();
            var assign = false;
            if (allowDecl && _t < _toks.Count && _toks[_t].Kind == Tok.Variable)
            {
                // $x := …, $i, $v := …, $x = …
                var save = _t;
                var names = new List<string> { _toks[_t].Text };
                var i = _t + 1;
                if (i < _toks.Count && _toks[i].Kind == Tok.Comma && i + 1 < _toks.Count && _toks[i + 1].Kind == Tok.Variable)
                {
                    names.Add(_toks[i + 1].Text);
                    i += 2;
                }
                if (i < _toks.Count && _toks[i].Kind is Tok.Declare or Tok.Assign)
                {
                    assign = _toks[i].Kind == Tok.Assign;
                    decl = names;
                    _t = i + 1;
                }
                else _t = save;
            }
            var cmds = new List<Command>();
            while (true)
            {
                var args = new List<Arg>();
                while (_t < _toks.Count && _toks[_t].Kind is not (Tok.Pipe or Tok.RParen)) args.Add(ParseArg());
                if (args.Count == 0) throw Error("missing value for command");
                cmds.Add(new Command(args));
                if (_t < _toks.Count && _toks[_t].Kind == Tok.Pipe) { _t++; continue; }
                break;
            }
            return new Pipeline(decl, assign, cmds);
        }

        Arg ParseArg()
        {
            var tok = _toks[_t++];
            switch (tok.Kind)
            {
                case Tok.Dot: return new FieldArg([]);
                case Tok.Field: return new FieldArg([tok.Text[1..], .. Chain()]);
                case Tok.Variable: return new VariableArg(tok.Text, Chain());
                case Tok.Ident: return new FunctionArg(tok.Text);
                case Tok.String: return new LiteralArg(JsonValue.Create(tok.Text));
                case Tok.Bool: return new LiteralArg(JsonValue.Create(tok.Text == "true"));
                case Tok.Nil: return new NilArg();
                case Tok.Number:
                    if (long.TryParse(tok.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return new LiteralArg(JsonValue.Create(l));
                    if (tok.Text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && long.TryParse(tok.Text[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out l)) return new LiteralArg(JsonValue.Create(l));
                    if (double.TryParse(tok.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return new LiteralArg(JsonValue.Create(d));
                    throw Error($"bad number syntax: \"{tok.Text}\"");
                case Tok.LParen:
                    var inner = ParsePipeline(allowDecl: false);
                    if (_t >= _toks.Count || _toks[_t].Kind != Tok.RParen) throw Error("unclosed left paren");
                    _t++;
                    return new PipeArg(inner, Chain());
                default:
                    throw Error($"unexpected \"{tok.Text}\" in command");
            }
        }

        /// <summary>Field names written straight after a value with no space: $x.A.B, (…).A.</summary>
        string[] Chain()
        {
            var chain = new List<string>();
            while (_t < _toks.Count && _toks[_t].Kind == Tok.Field && !_toks[_t].SpaceBefore) chain.Add(_toks[_t++].Text[1..]);
            return [.. chain];
        }

        (int Close, bool TrimRight) FindClose(int from)
        {
            var i = from;
            while (i < src.Length)
            {
                var c = src[i];
                if (c == '"' || c == '`' || c == '\'')
                {
                    var q = c;
                    i++;
                    while (i < src.Length && src[i] != q) { if (src[i] == '\\' && q != '`') i++; i++; }
                    if (i >= src.Length) throw Error(q == '`' ? "unterminated raw quoted string" : "unterminated quoted string");
                    i++;
                    continue;
                }
                if (c == '}' && i + 1 < src.Length && src[i + 1] == '}')
                {
                    var trim = i >= 2 && src[i - 1] == '-' && IsSpace(src[i - 2]) && i - 1 > from;
                    return (trim ? i - 1 : i, trim);
                }
                i++;
            }
            throw Error("unclosed action");
        }

        static bool IsSpace(char c) => c is ' ' or '\t' or '\r' or '\n';

        List<Token> Lex(string s)
        {
            var toks = new List<Token>();
            var i = 0;
            var space = true;
            while (i < s.Length)
            {
                var c = s[i];
                if (IsSpace(c)) { i++; space = true; continue; }
                var start = i;
                Tok kind;
                string text;
                if (c == '.' && (i + 1 >= s.Length || !IsIdentChar(s[i + 1])))
                {
                    i++;
                    kind = Tok.Dot; text = ".";
                }
                else if (c == '.')
                {
                    i++;
                    while (i < s.Length && IsIdentChar(s[i])) i++;
                    kind = Tok.Field; text = s[start..i];
                }
                else if (c == '$')
                {
                    i++;
                    while (i < s.Length && IsIdentChar(s[i])) i++;
                    kind = Tok.Variable; text = s[start..i];
                }
                else if (c == '"')
                {
                    var sb = new StringBuilder();
                    i++;
                    while (true)
                    {
                        if (i >= s.Length) throw Error("unterminated quoted string");
                        var ch = s[i++];
                        if (ch == '"') break;
                        if (ch != '\\') { sb.Append(ch); continue; }
                        if (i >= s.Length) throw Error("unterminated quoted string");
                        var e = s[i++];
                        sb.Append(e switch
                        {
                            'n' => '\n', 't' => '\t', 'r' => '\r', '\\' => '\\', '"' => '"', '0' => '\0',
                            _ => throw Error($"unknown escape sequence \\{e}"),
                        });
                    }
                    kind = Tok.String; text = sb.ToString();
                }
                else if (c == '`')
                {
                    var endq = s.IndexOf('`', i + 1);
                    if (endq < 0) throw Error("unterminated raw quoted string");
                    kind = Tok.String; text = s[(i + 1)..endq];
                    i = endq + 1;
                }
                else if (c == '\'')
                {
                    if (i + 2 >= s.Length || s[i + 2] != '\'') throw Error("bad character constant");
                    kind = Tok.Number; text = ((int)s[i + 1]).ToString(CultureInfo.InvariantCulture);
                    i += 3;
                }
                else if (char.IsAsciiDigit(c) || ((c == '-' || c == '+') && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])))
                {
                    i++;
                    while (i < s.Length && (char.IsAsciiLetterOrDigit(s[i]) || s[i] is '.' or '_' || ((s[i] is '-' or '+') && s[i - 1] is 'e' or 'E'))) i++;
                    kind = Tok.Number; text = s[start..i];
                }
                else if (IsIdentChar(c))
                {
                    while (i < s.Length && IsIdentChar(s[i])) i++;
                    text = s[start..i];
                    kind = text switch { "true" or "false" => Tok.Bool, "nil" => Tok.Nil, _ => Tok.Ident };
                }
                else if (c == ':' && i + 1 < s.Length && s[i + 1] == '=') { i += 2; kind = Tok.Declare; text = ":="; }
                else
                {
                    i++;
                    (kind, text) = c switch
                    {
                        '|' => (Tok.Pipe, "|"),
                        '(' => (Tok.LParen, "("),
                        ')' => (Tok.RParen, ")"),
                        '=' => (Tok.Assign, "="),
                        ',' => (Tok.Comma, ","),
                        _ => throw Error($"unexpected \"{c}\" in command"),
                    };
                }
                toks.Add(new Token(kind, text, space));
                space = false;
            }
            return toks;
        }

        static bool IsIdentChar(char c) => char.IsLetterOrDigit(c) || c == '_';
    }

    // ---- execution ----
    sealed class BreakSignal : Exception;
    sealed class ContinueSignal : Exception;

    /// <summary>A missing value: prints as "&lt;no value&gt;", is false, and is empty.</summary>
    sealed class Missing
    {
        public static readonly JsonValue Value = JsonValue.Create("\u0000<no value>")!;
    }

    sealed class Executor(GoTemplate template, JsonNode? root, StringBuilder output)
    {
        readonly List<(string Name, JsonNode? Value)> _vars = [("$", root)];
        JsonNode? _dot = root;

        public void Run(List<Node> nodes)
        {
            foreach (var n in nodes) Walk(n);
        }

        void Walk(Node n)
        {
            switch (n)
            {
                case TextNode t: output.Append(t.Text); break;
                case ActionNode a:
                    var v = Eval(a.Pipe);
                    if (a.Pipe.Decl.Count == 0) output.Append(Print(v));
                    break;
                case IfNode i:
                    Scoped(() => { if (Truth(Eval(i.Cond))) Run(i.Then); else if (i.Else is not null) Run(i.Else); });
                    break;
                case WithNode w:
                    Scoped(() =>
                    {
                        var val = Eval(w.Pipe);
                        if (Truth(val)) { var saved = _dot; _dot = val; try { Run(w.Body); } finally { _dot = saved; } }
                        else if (w.Else is not null) Run(w.Else);
                    });
                    break;
                case RangeNode r: Scoped(() => Range(r)); break;
                case BreakNode: throw new BreakSignal();
                case ContinueNode: throw new ContinueSignal();
            }
        }

        void Scoped(Action a)
        {
            var mark = _vars.Count;
            try { a(); }
            finally { _vars.RemoveRange(mark, _vars.Count - mark); }
        }

        void Range(RangeNode r)
        {
            var pipe = r.Pipe with { Decl = [] };
            var val = Eval(pipe);
            var items = new List<(JsonNode? Key, JsonNode? Value)>();
            switch (val)
            {
                case JsonArray arr:
                    for (var i = 0; i < arr.Count; i++) items.Add((JsonValue.Create((long)i), arr[i]));
                    break;
                case JsonObject obj:
                    foreach (var kv in obj.OrderBy(kv => kv.Key, StringComparer.Ordinal)) items.Add((JsonValue.Create(kv.Key), kv.Value));
                    break;
                case null: break;
                case JsonValue v when ReferenceEquals(v, Missing.Value): break;
                case JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var count):
                    for (var i = 0L; i < count; i++) items.Add((JsonValue.Create(i), JsonValue.Create(i)));
                    break;
                default: throw new TemplateException($"template: range can't iterate over {Print(val)}");
            }
            if (items.Count == 0)
            {
                if (r.Else is not null) Run(r.Else);
                return;
            }
            var saved = _dot;
            try
            {
                foreach (var (key, value) in items)
                {
                    var mark = _vars.Count;
                    if (r.Pipe.Decl.Count == 1) _vars.Add((r.Pipe.Decl[0], value));
                    else if (r.Pipe.Decl.Count == 2) { _vars.Add((r.Pipe.Decl[0], key)); _vars.Add((r.Pipe.Decl[1], value)); }
                    _dot = value;
                    try { Run(r.Body); }
                    catch (ContinueSignal) { }
                    catch (BreakSignal) { break; }
                    finally { _vars.RemoveRange(mark, _vars.Count - mark); }
                }
            }
            finally { _dot = saved; }
        }

        JsonNode? Eval(Pipeline p)
        {
            JsonNode? result = null;
            var first = true;
            foreach (var cmd in p.Cmds)
            {
                result = EvalCommand(cmd, first ? null : new[] { result });
                first = false;
            }
            if (p.Decl.Count == 1)
            {
                if (p.Assign)
                {
                    var idx = _vars.FindLastIndex(v => v.Name == p.Decl[0]);
                    if (idx < 0) throw new TemplateException($"template: undefined variable: {p.Decl[0]}");
                    _vars[idx] = (p.Decl[0], result);
                }
                else _vars.Add((p.Decl[0], result));
            }
            return result;
        }

        JsonNode? EvalCommand(Command cmd, JsonNode?[]? piped)
        {
            if (cmd.Args[0] is FunctionArg f)
            {
                var args = new List<JsonNode?>();
                foreach (var a in cmd.Args.Skip(1)) args.Add(EvalArg(a));
                if (piped is not null) args.AddRange(piped);
                return Call(f.Name, args);
            }
            if (cmd.Args.Count > 1) throw new TemplateException($"template: can't give argument to non-function {Describe(cmd.Args[0])}");
            if (piped is not null) throw new TemplateException($"template: can't give argument to non-function {Describe(cmd.Args[0])}");
            return EvalArg(cmd.Args[0]);
        }

        static string Describe(Arg a) => a switch
        {
            FieldArg fa => "." + string.Join('.', fa.Chain),
            VariableArg va => va.Name,
            _ => "value",
        };

        JsonNode? EvalArg(Arg a) => a switch
        {
            FieldArg fa => Walk(_dot, fa.Chain),
            VariableArg va => Walk(Variable(va.Name), va.Chain),
            LiteralArg la => la.Value,
            NilArg => null,
            PipeArg pa => Walk(Eval(pa.Pipe), pa.Chain),
            FunctionArg fn => Call(fn.Name, []),
            _ => throw new TemplateException("template: bad argument"),
        };

        JsonNode? Variable(string name)
        {
            for (var i = _vars.Count - 1; i >= 0; i--)
                if (_vars[i].Name == name) return _vars[i].Value;
            throw new TemplateException($"template: undefined variable: {name}");
        }

        JsonNode? Walk(JsonNode? node, string[] chain)
        {
            foreach (var part in chain)
            {
                if (node is JsonObject o)
                {
                    if (o.TryGetPropertyValue(part, out var next)) { node = next; continue; }
                    if (template.MissingKeyIsError) throw new TemplateException($"template: can't evaluate field {part}");
                    return Missing.Value;
                }
                if (node is null || ReferenceEquals(node, Missing.Value))
                {
                    if (template.MissingKeyIsError) throw new TemplateException($"template: nil pointer evaluating .{part}");
                    return Missing.Value;
                }
                throw new TemplateException($"template: can't evaluate field {part} in {Kind(node)}");
            }
            return node;
        }

        static string Kind(JsonNode? n) => n switch
        {
            JsonArray => "a list",
            JsonObject => "a map",
            JsonValue v => v.GetValueKind() switch { JsonValueKind.String => "a string", JsonValueKind.Number => "a number", _ => "a bool" },
            _ => "nil",
        };

        JsonNode? Call(string name, List<JsonNode?> args)
        {
            void Arity(int n) { if (args.Count != n) throw new TemplateException($"template: wrong number of args for {name}: want {n} got {args.Count}"); }
            switch (name)
            {
                case "and":
                    if (args.Count == 0) throw new TemplateException("template: wrong number of args for and");
                    foreach (var a in args) if (!Truth(a)) return a;
                    return args[^1];
                case "or":
                    if (args.Count == 0) throw new TemplateException("template: wrong number of args for or");
                    foreach (var a in args) if (Truth(a)) return a;
                    return args[^1];
                case "not": Arity(1); return JsonValue.Create(!Truth(args[0]));
                case "len":
                    Arity(1);
                    return JsonValue.Create((long)(args[0] switch
                    {
                        JsonArray arr => arr.Count,
                        JsonObject obj => obj.Count,
                        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>().Length,
                        _ => throw new TemplateException($"template: len of {Kind(args[0])}"),
                    }));
                case "index":
                {
                    if (args.Count == 0) throw new TemplateException("template: wrong number of args for index");
                    var cur = args[0];
                    foreach (var key in args.Skip(1))
                    {
                        cur = cur switch
                        {
                            JsonObject o => o.TryGetPropertyValue(Str(key), out var v) ? v : (template.MissingKeyIsError ? throw new TemplateException($"template: map has no entry for key {Str(key)}") : Missing.Value),
                            JsonArray arr => Int(key) is var i && i >= 0 && i < arr.Count ? arr[(int)i] : throw new TemplateException($"template: index out of range: {Int(key)}"),
                            null => null,
                            _ => throw new TemplateException($"template: can't index item of type {Kind(cur)}"),
                        };
                    }
                    return cur;
                }
                case "slice":
                {
                    if (args.Count is < 1 or > 3) throw new TemplateException("template: wrong number of args for slice");
                    var from = args.Count > 1 ? (int)Int(args[1]) : 0;
                    if (args[0] is JsonArray arr)
                    {
                        var to = args.Count > 2 ? (int)Int(args[2]) : arr.Count;
                        if (from < 0 || to > arr.Count || from > to) throw new TemplateException("template: slice: index out of range");
                        return new JsonArray([.. arr.Skip(from).Take(to - from).Select(Clone)]);
                    }
                    var s = Str(args[0]);
                    var end = args.Count > 2 ? (int)Int(args[2]) : s.Length;
                    if (from < 0 || end > s.Length || from > end) throw new TemplateException("template: slice: index out of range");
                    return JsonValue.Create(s[from..end]);
                }
                case "eq":
                    if (args.Count < 2) throw new TemplateException("template: missing argument for comparison");
                    return JsonValue.Create(args.Skip(1).Any(b => Compare(args[0], b, name) == 0));
                case "ne": Arity(2); return JsonValue.Create(Compare(args[0], args[1], name) != 0);
                case "lt": Arity(2); return JsonValue.Create(Compare(args[0], args[1], name) < 0);
                case "le": Arity(2); return JsonValue.Create(Compare(args[0], args[1], name) <= 0);
                case "gt": Arity(2); return JsonValue.Create(Compare(args[0], args[1], name) > 0);
                case "ge": Arity(2); return JsonValue.Create(Compare(args[0], args[1], name) >= 0);
                case "print": return JsonValue.Create(GoPrint(args, spaces: false));
                case "println": return JsonValue.Create(GoPrint(args, spaces: true) + "\n");
                case "printf":
                    if (args.Count == 0) throw new TemplateException("template: wrong number of args for printf");
                    return JsonValue.Create(Printf(Str(args[0]), args.Skip(1).ToList()));
                // docker's functions (cli/templates)
                case "json":
                    Arity(1);
                    return JsonValue.Create(ReferenceEquals(args[0], Missing.Value) ? "null" : args[0]?.ToJsonString(RelaxedJson) ?? "null");
                case "join":
                    Arity(2);
                    return JsonValue.Create(string.Join(Str(args[1]), (args[0] as JsonArray ?? throw new TemplateException("template: join of a non-list")).Select(e => Print(e))));
                case "split":
                    Arity(2);
                    return new JsonArray([.. Str(args[0]).Split(Str(args[1])).Select(p => (JsonNode?)JsonValue.Create(p))]);
                case "lower": Arity(1); return JsonValue.Create(Str(args[0]).ToLowerInvariant());
                case "upper": Arity(1); return JsonValue.Create(Str(args[0]).ToUpperInvariant());
                case "title":
                    Arity(1);
                    return JsonValue.Create(string.Join(' ', Str(args[0]).Split(' ').Select(w => w.Length == 0 ? w : char.ToUpperInvariant(w[0]) + w[1..])));
                case "pad":
                    Arity(3);
                    return JsonValue.Create(new string(' ', (int)Int(args[1])) + Str(args[0]) + new string(' ', (int)Int(args[2])));
                case "truncate":
                {
                    Arity(2);
                    var s = Str(args[0]);
                    var n = (int)Int(args[1]);
                    return JsonValue.Create(n >= 0 && s.Length > n ? s[..n] : s);
                }
                default:
                    throw new TemplateException($"template: function \"{name}\" not defined");
            }
        }

        static JsonNode? Clone(JsonNode? n) => n?.DeepClone();


        static string Str(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String && !ReferenceEquals(v, Missing.Value)
            ? v.GetValue<string>()
            : throw new TemplateException($"template: expected a string, got {Print(n)}");

        static long Int(JsonNode? n) => Number(n) is double d && d == Math.Floor(d)
            ? (long)d
            : throw new TemplateException($"template: expected an integer, got {Print(n)}");

        static int Compare(JsonNode? a, JsonNode? b, string op)
        {
            if (a is JsonValue va && b is JsonValue vb)
            {
                var ka = va.GetValueKind();
                var kb = vb.GetValueKind();
                if (ka == JsonValueKind.Number && kb == JsonValueKind.Number) return Number(va)!.Value.CompareTo(Number(vb)!.Value);
                if (ka == JsonValueKind.String && kb == JsonValueKind.String) return string.CompareOrdinal(va.GetValue<string>(), vb.GetValue<string>());
                if (ka is JsonValueKind.True or JsonValueKind.False && kb is JsonValueKind.True or JsonValueKind.False && op is "eq" or "ne")
                    return va.GetValue<bool>() == vb.GetValue<bool>() ? 0 : 1;
            }
            if (op is "eq" or "ne" && (a is null || b is null)) return a is null && b is null ? 0 : 1;
            throw new TemplateException($"template: {op}: incompatible types for comparison");
        }
    }

    internal static readonly JsonSerializerOptions RelaxedJson = new() { TypeInfoResolver = GoDurationContext.Default, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A JSON number's value, whether parsed (any width) or made here (long or double).</summary>
    static double? Number(JsonNode? n) =>
        n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number ? null
        : v.TryGetValue<long>(out var l) ? l
        : v.TryGetValue<double>(out var d) ? d
        : v.TryGetValue<int>(out var i) ? i
        : v.TryGetValue<decimal>(out var m) ? (double)m
        : v.TryGetValue<GoDuration>(out var g) ? g.Nanoseconds
        : null;

    static bool Truth(JsonNode? n) => n switch
    {
        null => false,
        JsonArray a => a.Count > 0,
        JsonObject o => o.Count > 0,
        JsonValue v when ReferenceEquals(v, Missing.Value) => false,
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.False => false,
            JsonValueKind.True => true,
            JsonValueKind.String => v.GetValue<string>().Length > 0,
            JsonValueKind.Number => Number(v) != 0,
            _ => true,
        },
        _ => true,
    };

    /// <summary>A value as Go's fmt prints it with %v.</summary>
    public static string Print(JsonNode? n) => n switch
    {
        null => "<nil>",
        JsonValue v when ReferenceEquals(v, Missing.Value) => "<no value>",
        JsonValue v when v.TryGetValue<GoDuration>(out var duration) => duration.ToString(),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Number => v.TryGetValue<long>(out var l) ? l.ToString(CultureInfo.InvariantCulture)
                : v.TryGetValue<double>(out var d) ? d.ToString("R", CultureInfo.InvariantCulture)
                : v.ToJsonString(),
            _ => v.ToJsonString(),
        },
        JsonArray a => "[" + string.Join(' ', a.Select(Print)) + "]",
        JsonObject o => "map[" + string.Join(' ', o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}:{Print(kv.Value)}")) + "]",
        _ => n.ToJsonString(),
    };

    /// <summary>Go's fmt.Sprint / Sprintln: Sprint adds spaces only between operands that are not both strings.</summary>
    static string GoPrint(List<JsonNode?> args, bool spaces)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < args.Count; i++)
        {
            if (i > 0 && (spaces || !(IsString(args[i - 1]) || IsString(args[i])))) sb.Append(' ');
            sb.Append(Print(args[i]));
        }
        return sb.ToString();
    }

    static bool IsString(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String;

    /// <summary>Go's fmt.Sprintf for the verbs templates use: %v %s %d %q %t %x %f %e %g %%, with flags, width and precision.</summary>
    static string Printf(string format, List<JsonNode?> args)
    {
        var sb = new StringBuilder();
        var argi = 0;
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c != '%') { sb.Append(c); continue; }
            if (++i >= format.Length) { sb.Append("%!(NOVERB)"); break; }
            var minus = false; var zero = false; var plus = false;
            while (i < format.Length && format[i] is '-' or '0' or '+' or ' ' or '#')
            {
                if (format[i] == '-') minus = true; else if (format[i] == '0') zero = true; else if (format[i] == '+') plus = true;
                i++;
            }
            var width = 0;
            while (i < format.Length && char.IsAsciiDigit(format[i])) width = width * 10 + (format[i++] - '0');
            int? prec = null;
            if (i < format.Length && format[i] == '.')
            {
                i++;
                var p = 0;
                while (i < format.Length && char.IsAsciiDigit(format[i])) p = p * 10 + (format[i++] - '0');
                prec = p;
            }
            if (i >= format.Length) { sb.Append("%!(NOVERB)"); break; }
            var verb = format[i];
            if (verb == '%') { sb.Append('%'); continue; }
            if (argi >= args.Count) { sb.Append($"%!{verb}(MISSING)"); continue; }
            var arg = args[argi++];
            string s;
            switch (verb)
            {
                case 'v' or 's': s = Print(arg); if (prec is int sp && verb == 's' && s.Length > sp) s = s[..sp]; break;
                case 'q': s = JsonValue.Create(Print(arg)).ToJsonString(RelaxedJson); break;
                case 't': s = Print(arg); break;
                case 'd':
                    s = arg is JsonValue dv && dv.GetValueKind() == JsonValueKind.Number && dv.TryGetValue<long>(out var dl)
                        ? (plus && dl >= 0 ? "+" : "") + dl.ToString(CultureInfo.InvariantCulture)
                        : $"%!d({Print(arg)})";
                    break;
                case 'x' or 'X':
                    s = arg is JsonValue xv && xv.GetValueKind() == JsonValueKind.Number && xv.TryGetValue<long>(out var xl)
                        ? xl.ToString(verb == 'x' ? "x" : "X", CultureInfo.InvariantCulture)
                        : Convert.ToHexString(Encoding.UTF8.GetBytes(Print(arg))) is var hex && verb == 'x' ? hex.ToLowerInvariant() : Convert.ToHexString(Encoding.UTF8.GetBytes(Print(arg)));
                    break;
                case 'f' or 'F' or 'e' or 'g':
                    if (Number(arg) is double d)
                    {
                        s = verb switch
                        {
                            'e' => d.ToString((prec ?? 6) is var ep && ep > 0 ? "0." + new string('0', ep) + "e+00" : "0e+00", CultureInfo.InvariantCulture),
                            'g' => prec is int gp ? d.ToString("G" + gp, CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture),
                            _ => d.ToString("F" + (prec ?? 6), CultureInfo.InvariantCulture),
                        };
                        if (plus && d >= 0) s = "+" + s;
                    }
                    else s = $"%!{verb}({Print(arg)})";
                    break;
                default: s = $"%!{verb}({Print(arg)})"; break;
            }
            if (s.Length < width)
                s = minus ? s.PadRight(width) : zero && verb is not ('s' or 'v' or 'q') ? s.PadLeft(width, '0') : s.PadLeft(width);
            sb.Append(s);
        }
        if (argi < args.Count) sb.Append("%!(EXTRA ").Append(string.Join(", ", args.Skip(argi).Select(Print))).Append(')');
        return sb.ToString();
    }
}
