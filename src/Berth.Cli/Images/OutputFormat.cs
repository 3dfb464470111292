using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Engine.Formatting;
using Berth.Images;

namespace Berth.Cli.Images;

/// <summary>The image verbs' `--format`: rows built as JSON, rendered by the engine's one template
/// renderer (<see cref="TemplateOutput"/>); template errors are the image verbs' invalid-argument errors.</summary>
static class OutputFormat
{
    public static void Write(TextWriter output, string? format, IReadOnlyList<JsonElement> rows, string defaultTable, IReadOnlyDictionary<string, string> headers) =>
        output.Write(Guard(() => TemplateOutput.Rows(
            [.. rows.Select(r => JsonNode.Parse(r.GetRawText())!.AsObject())], format, defaultTable,
            f => headers.TryGetValue(f, out var h) ? h : f.ToUpperInvariant())));

    public static string Render(string template, JsonElement data) =>
        Guard(() => TemplateOutput.Document(JsonNode.Parse(data.GetRawText())!, template));

    static string Guard(Func<string> render)
    {
        try { return render(); }
        catch (TemplateException e) { throw ImageException.Invalid(e.Message); }
    }
}
