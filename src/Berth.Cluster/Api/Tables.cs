using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>meta.k8s.io Table responses (what <c>kubectl get</c> prints), from a kind's columns.</summary>
public static class Tables
{
    public static JsonObject Build(ResourceType type, IEnumerable<JsonObject> items, string version, string resourceVersion, string? next, string includeObject, bool headers)
    {
        var now = DateTimeOffset.UtcNow;
        var columns = type.Columns.Count > 0 ? type.Columns :
            [new TableColumn("Name", "string", "Name must be unique within a namespace.", (o, _) => o.Str("metadata.name"), 0, "name"),
             new TableColumn("Age", "string", "CreationTimestamp", (o, n) => Json.Age(o, n))];
        var defs = new JsonArray();
        if (headers)
            foreach (var c in columns)
                defs.Add((JsonNode)new JsonObject { ["name"] = c.Name, ["type"] = c.Type, ["format"] = c.Format, ["description"] = c.Description, ["priority"] = c.Priority });
        var rows = new JsonArray();
        foreach (var o in items)
        {
            var cells = new JsonArray();
            foreach (var c in columns)
            {
                JsonNode? cell;
                try { cell = c.Cell(o, now)?.DeepClone(); }
                catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException) { cell = "<error>"; }
                cells.Add(cell ?? "");
            }
            var row = new JsonObject { ["cells"] = cells };
            row["object"] = includeObject switch
            {
                "None" => null,
                "Object" => o.DeepClone(),
                _ => ApiHandler.PartialMetadata(o, version),
            };
            rows.Add((JsonNode)row);
        }
        var meta = new JsonObject { ["resourceVersion"] = resourceVersion };
        if (next is not null) meta["continue"] = next;
        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = $"meta.k8s.io/{version}",
            ["metadata"] = meta,
            ["columnDefinitions"] = defs,
            ["rows"] = rows,
        };
    }
}
