using System.Text;
using System.Text.Json.Nodes;

namespace Berth.Engine.Formatting;

/// <summary>
/// docker's `--format` for lists and inspect documents, one way for every verb: `json` (one JSON
/// object per line), `table` (the verb's default columns), `table TEMPLATE` (a header row made from
/// the fields the template names, aligned as docker's tabwriter does) or a Go TEMPLATE per row;
/// `\t` and `\n` written in the flag are unescaped as docker does.
/// </summary>
public static class TemplateOutput
{
    /// <summary>Renders <paramref name="rows"/>; <paramref name="header"/> names the column of a field in table output.</summary>
    public static string Rows(IReadOnlyList<JsonObject> rows, string? format, string defaultTable, Func<string, string> header)
    {
        var trimmed = string.IsNullOrWhiteSpace(format) ? "table" : format.Trim();
        if (trimmed == "json") trimmed = format = "{{json .}}";
        var table = trimmed.StartsWith("table", StringComparison.Ordinal);
        var text = table ? trimmed[5..].Trim() : format!;
        if (table && text.Length == 0) text = defaultTable.StartsWith("table", StringComparison.Ordinal) ? defaultTable[5..].Trim() : defaultTable;
        text = Unescape(text);
        var template = GoTemplate.Parse(text, missingKeyIsError: true);
        var lines = new List<string>();
        if (table)
        {
            var names = new JsonObject();
            foreach (var f in template.TopLevelFields().Concat(rows.SelectMany(r => r.Select(kv => kv.Key))))
                if (!names.ContainsKey(f)) names[f] = header(f);
            // the header row reads the rows' fields from the names: a field below one (.Labels.x) is no value there, not an error
            lines.Add(template.WithMissingKeyIsError(false).Execute(names));
        }
        foreach (var r in rows) lines.Add(template.Execute(r));
        return table ? Tabwrite(lines) : string.Concat(lines.Select(l => l + "\n"));
    }

    /// <summary>`inspect --format`: the template over one inspect document (no newline added).</summary>
    public static string Document(JsonNode doc, string format)
    {
        GoDuration.MarkHealthchecks(doc);
        return GoTemplate.Parse(Unescape(format == "json" ? "{{json .}}" : format), missingKeyIsError: true).Execute(doc);
    }

    public static string Unescape(string format) => format.Replace("\\t", "\t").Replace("\\n", "\n");

    /// <summary>Go's tabwriter as docker configures it (minwidth 10, padding 3, spaces): each
    /// tab-terminated cell is padded to its column's width; trailing spaces are trimmed.</summary>
    public static string Tabwrite(IReadOnlyList<string> lines)
    {
        var cells = lines.SelectMany(l => l.Split('\n')).Select(l => l.Split('\t')).ToList();
        var widths = new List<int>();
        foreach (var row in cells)
            for (var c = 0; c < row.Length - 1; c++)
            {
                while (widths.Count <= c) widths.Add(0);
                widths[c] = Math.Max(widths[c], Math.Max(10, row[c].Length + 3));
            }
        var sb = new StringBuilder();
        foreach (var row in cells)
        {
            var line = new StringBuilder();
            for (var c = 0; c < row.Length; c++)
                line.Append(c < row.Length - 1 ? row[c].PadRight(widths[c]) : row[c]);
            sb.Append(line.ToString().TrimEnd()).Append('\n');
        }
        return sb.ToString();
    }
}
