using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// An API error, carried to the edge and written as a Kubernetes <c>Status</c>
/// (kind Status, status Failure, reason, code, details with causes).
/// </summary>
public sealed class ApiException(int code, string reason, string message, JsonObject? details = null) : Exception(message)
{
    public int Code { get; } = code;
    public string Reason { get; } = reason;
    public JsonObject? Details { get; } = details;

    public JsonObject ToStatus() => Status(Code, Reason, Message, Details);

    public static JsonObject Status(int code, string reason, string message, JsonObject? details) => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = message,
        ["reason"] = reason,
        ["details"] = details,
        ["code"] = code,
    };

    static JsonObject Detail(string? group, string resource, string? name)
    {
        var d = new JsonObject();
        if (name is not null) d["name"] = name;
        if (!string.IsNullOrEmpty(group)) d["group"] = group;
        d["kind"] = resource;
        return d;
    }

    static string Qualified(string? group, string resource) => string.IsNullOrEmpty(group) ? resource : $"{resource}.{group}";

    public static ApiException NotFound(string? group, string resource, string name) =>
        new(404, "NotFound", $"{Qualified(group, resource)} \"{name}\" not found", Detail(group, resource, name));

    public static ApiException AlreadyExists(string? group, string resource, string name) =>
        new(409, "AlreadyExists", $"{Qualified(group, resource)} \"{name}\" already exists", Detail(group, resource, name));

    public static ApiException Conflict(string? group, string resource, string name, string why) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {Qualified(group, resource)} \"{name}\": {why}", Detail(group, resource, name));

    public static ApiException Invalid(string? group, string kind, string name, IReadOnlyList<FieldError> errors)
    {
        var causes = new JsonArray();
        foreach (var e in errors)
            causes.Add((JsonNode)new JsonObject { ["reason"] = e.Reason, ["message"] = e.Message, ["field"] = e.Field });
        var d = Detail(group, kind, name);
        d["causes"] = causes;
        var summary = errors.Count == 1 ? errors[0].ToString() : "[" + string.Join(", ", errors) + "]";
        return new(422, "Invalid", $"{Qualified(group, kind)} \"{name}\" is invalid: {summary}", d);
    }

    public static ApiException BadRequest(string message) => new(400, "BadRequest", message);
    public static ApiException Expired(string message) => new(410, "Expired", message);
    public static ApiException MethodNotAllowed(string message) => new(405, "MethodNotAllowed", message);
    public static ApiException NotAcceptable(string message) => new(406, "NotAcceptable", message);
    public static ApiException UnsupportedMediaType(string message) => new(415, "UnsupportedMediaType", message);
    public static ApiException TooLarge(string message) => new(413, "RequestEntityTooLarge", message);
    public static ApiException TooManyRequests(string message) => new(429, "TooManyRequests", message);
    public static ApiException Forbidden(string message) => new(403, "Forbidden", message);
    /// <summary>kube's NewForbidden: "pods \"x\" is forbidden: why".</summary>
    public static ApiException Forbidden(string? group, string resource, string name, string why) =>
        new(403, "Forbidden", $"{Qualified(group, resource)} \"{name}\" is forbidden: {why}", Detail(group, resource, name));
    public static ApiException NotFoundPath(string path) => new(404, "NotFound", $"the server could not find the requested resource ({path})", new JsonObject());
}

/// <summary>A validation failure of one field, as Kubernetes' field.Error (Type: Invalid value / Required value / ...).</summary>
public sealed record FieldError(string Field, string Reason, string Message)
{
    /// <summary>A string value, quoted as Go's %q quotes it.</summary>
    public static FieldError Invalid(string field, string? value, string detail) =>
        new(field, "FieldValueInvalid", $"Invalid value: \"{value?.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")}\": {detail}");
    /// <summary>A number, printed bare as Kubernetes prints numbers in field errors.</summary>
    public static FieldError Invalid(string field, long value, string detail) =>
        new(field, "FieldValueInvalid", $"Invalid value: {value}: {detail}");
    public static FieldError Required(string field, string detail = "") =>
        new(field, "FieldValueRequired", detail.Length == 0 ? "Required value" : $"Required value: {detail}");
    public static FieldError Duplicate(string field, string value) =>
        new(field, "FieldValueDuplicate", $"Duplicate value: \"{value}\"");
    public static FieldError NotSupported(string field, string? value, IEnumerable<string> supported) =>
        new(field, "FieldValueNotSupported", $"Unsupported value: \"{value}\": supported values: {string.Join(", ", supported.Select(s => $"\"{s}\""))}");
    public static FieldError Forbidden(string field, string detail) => new(field, "FieldValueForbidden", $"Forbidden: {detail}");

    public override string ToString() => $"{Field}: {Message}";
}
