using System.Text;
using System.Text.Json;
using Berth.Images;

namespace Berth.Cli.Images;

/// <summary>
/// docker's `--format`: `json` (one JSON object per line), `table` (the default columns),
/// `table TEMPLATE` (header from the field names) or a Go-template-like TEMPLATE with `{{.Field}}`,
/// `{{.A.B}}`, `{{json .}}` and `{{json .Field}}`; `\t` and `\n` are unescaped as docker does.
/// Rows are JSON objects, so the same fields serve json output and templates.
/// </summary>
static class OutputFormat
{
    public static void Write(TextWriter output, string? format, IReadOnlyList<JsonElement> rows, string defaultTable, IReadOnlyDictionary<string, string> headers)
    {
        format = string.IsNullOrWhiteSpace(format) ? "table" : format.Trim();
        if (format == "json")
        {
            foreach (var r in rows) output.WriteLine(r.GetRawText());
            return;
        }
        var table = format.StartsWith("table", StringComparison.Ordinal);
        var template = table ? format[5..].Trim() : format;
        if (table && template.Length == 0) template = defaultTable;
        template = template.Replace("\\t", "\t").Replace("\\n", "\n");
        var lines = new List<string>();
        if (table) lines.Add(RenderHeader(template, headers));
        foreach (var r in rows) lines.Add(Render(template, r));
        if (table) Tabwrite(output, lines);
        else foreach (var l in lines) output.WriteLine(l);
    }

    static string RenderHeader(string template, IReadOnlyDictionary<string, string> headers) =>
        Substitute(template, action =>
        {
            var field = action.StartsWith("json ", StringComparison.Ordinal) ? action[5..].Trim() : action;
            var name = field.TrimStart('.');
            return headers.TryGetValue(name, out var h) ? h : name.ToUpperInvariant();
        });

    public static string Render(string template, JsonElement data) => Substitute(template, action =>
    {
        if (action.StartsWith("json ", StringComparison.Ordinal)) return Lookup(data, action[5..].Trim()).GetRawText();
        var v = Lookup(data, action);
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString()!,
            JsonValueKind.Null => "<nil>",
            JsonValueKind.Array => "[" + string.Join(" ", v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText())) + "]",
            JsonValueKind.Object => "map[" + string.Join(" ", v.EnumerateObject().Select(p => $"{p.Name}:{(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText())}")) + "]",
            _ => v.GetRawText(),
        };
    });

    static JsonElement Lookup(JsonElement data, string path)
    {
        if (path == ".") return data;
        if (!path.StartsWith('.')) throw ImageException.Invalid($"template: unsupported action \"{path}\" (use {{{{.Field}}}} or {{{{json .Field}}}})");
        var cur = data;
        foreach (var part in path[1..].Split('.'))
        {
            if (cur.ValueKind != JsonValueKind.Object || !cur.TryGetProperty(part, out var next))
                throw ImageException.Invalid($"template: can't evaluate field {part} in {path}");
            cur = next;
        }
        return cur;
    }

    static string Substitute(string template, Func<string, string> action)
    {
        var sb = new StringBuilder();
        var i = 0;
        while (i < template.Length)
        {
            var open = template.IndexOf("{{", i, StringComparison.Ordinal);
            if (open < 0) { sb.Append(template, i, template.Length - i); break; }
            sb.Append(template, i, open - i);
            var close = template.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0) throw ImageException.Invalid("template: unclosed action (missing \"}}\")");
            sb.Append(action(template[(open + 2)..close].Trim().TrimStart('-').TrimEnd('-').Trim()));
            i = close + 2;
        }
        return sb.ToString();
    }

    /// <summary>Go's tabwriter as docker configures it (minwidth 10, padding 3, spaces).</summary>
    public static void Tabwrite(TextWriter output, IReadOnlyList<string> lines)
    {
        var cells = lines.Select(l => l.Split('\t')).ToList();
        var widths = new List<int>();
        foreach (var row in cells)
            for (var c = 0; c < row.Length - 1; c++)
            {
                while (widths.Count <= c) widths.Add(0);
                widths[c] = Math.Max(widths[c], Math.Max(10, row[c].Length + 3));
            }
        foreach (var row in cells)
        {
            var sb = new StringBuilder();
            for (var c = 0; c < row.Length; c++)
                sb.Append(c < row.Length - 1 ? row[c].PadRight(widths[c]) : row[c]);
            output.WriteLine(sb.ToString().TrimEnd());
        }
    }
}
