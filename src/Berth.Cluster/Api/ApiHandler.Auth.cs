using System.Text.Json.Nodes;
using Berth.Cluster.Security;
using Microsoft.AspNetCore.Http;

namespace Berth.Cluster.Api;

public sealed partial class ApiHandler
{
    /// <summary>Signs TokenRequests (serviceaccounts/NAME/token); null: that subresource is refused.</summary>
    public ServiceAccountTokens? Tokens { get; set; }

    static JsonArray Strings(IEnumerable<string> values) => new([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);

    /// <summary>
    /// authorization.k8s.io SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview and
    /// SelfSubjectRulesReview, answered by RBAC for the requesting (or named) user, and authentication.k8s.io
    /// SelfSubjectReview (kubectl auth can-i [--list] [--as], auth whoami). Without a request user (the
    /// server's own callers) the answer is the administrator's: everything is allowed.
    /// </summary>
    async Task ReviewAsync(HttpContext ctx, Target t, CancellationToken ct)
    {
        var review = await ReadObjectAsync(ctx, ct);
        CheckTypeMeta(t.Type, review, t.Type.Kind, t.Type.ApiVersion);
        var current = RequestUser.Current;
        var user = current?.User ?? UserInfo.Admin;
        var spec = review["spec"] as JsonObject ?? new JsonObject();
        switch (t.Type.Kind)
        {
            case "SelfSubjectAccessReview" or "SubjectAccessReview" or "LocalSubjectAccessReview":
                if (spec["resourceAttributes"] is null == spec["nonResourceAttributes"] is null)
                    throw ApiException.Invalid(t.Type.Group, t.Type.Kind, "", [FieldError.Invalid("spec.resourceAttributes", null, "exactly one of nonResourceAttributes or resourceAttributes must be specified")]);
                if (t.Type.Kind != "SelfSubjectAccessReview")
                {
                    var groups = spec.Arr("groups").Select(g => g?.GetValue<string>() ?? "").ToArray();
                    var name = spec.Str("user") ?? "";
                    if (name.Length == 0 && groups.Length == 0)
                        throw ApiException.Invalid(t.Type.Group, t.Type.Kind, "", [FieldError.Invalid("spec.user", "", "at least one of user or group must be specified")]);
                    user = new UserInfo(name, groups, spec.Str("uid") ?? "");
                }
                if (t.Type.Kind == "LocalSubjectAccessReview" && spec.Str("resourceAttributes.namespace") != t.Namespace)
                    throw ApiException.Invalid(t.Type.Group, t.Type.Kind, "", [FieldError.Invalid("spec.resourceAttributes.namespace", spec.Str("resourceAttributes.namespace") ?? "", "must match metadata.namespace")]);
                var attrs = spec["resourceAttributes"] is JsonObject ra
                    ? new RequestAttributes(ra.Str("verb") ?? "", true, ApiGroup: ra.Str("group") ?? "", ApiVersion: ra.Str("version") ?? "",
                        Resource: ra.Str("resource") ?? "", Subresource: ra.Str("subresource") ?? "", Namespace: ra.Str("namespace") ?? "", Name: ra.Str("name") ?? "")
                    : RequestAttributes.NonResource(spec.Str("nonResourceAttributes.verb") ?? "", spec.Str("nonResourceAttributes.path") ?? "");
                var d = current is null ? new Decision(true, "") : await current.Authorizer.AuthorizeAsync(user, attrs, ct);
                var status = new JsonObject { ["allowed"] = d.Allowed };
                if (d.Reason.Length > 0) status["reason"] = d.Reason;
                review["status"] = status;
                break;
            case "SelfSubjectRulesReview":
                List<PolicyRule> rules;
                List<string> errors;
                if (current is null) (rules, errors) = ([new(["*"], ["*"], ["*"], [], []), new(["*"], [], [], [], ["*"])], []);
                else (rules, errors) = await current.Authorizer.RulesForAsync(user, spec.Str("namespace") ?? "", ct);
                var resourceRules = new JsonArray();
                var nonResourceRules = new JsonArray();
                foreach (var r in rules)
                {
                    if (r.NonResourceUrls.Length > 0) nonResourceRules.Add((JsonNode)new JsonObject { ["verbs"] = Strings(r.Verbs), ["nonResourceURLs"] = Strings(r.NonResourceUrls) });
                    if (r.Resources.Length > 0 || r.ApiGroups.Length > 0)
                    {
                        var rr = new JsonObject { ["verbs"] = Strings(r.Verbs), ["apiGroups"] = Strings(r.ApiGroups), ["resources"] = Strings(r.Resources) };
                        if (r.ResourceNames.Length > 0) rr["resourceNames"] = Strings(r.ResourceNames);
                        resourceRules.Add((JsonNode)rr);
                    }
                }
                var rulesStatus = new JsonObject { ["resourceRules"] = resourceRules, ["nonResourceRules"] = nonResourceRules, ["incomplete"] = errors.Count > 0 };
                if (errors.Count > 0) rulesStatus["evaluationError"] = string.Join(", ", errors);
                review["status"] = rulesStatus;
                break;
            default: // SelfSubjectReview
                var info = new JsonObject { ["username"] = user.Name, ["groups"] = Strings(user.Groups) };
                if (user.Uid.Length > 0) info["uid"] = user.Uid;
                review["status"] = new JsonObject { ["userInfo"] = info };
                break;
        }
        review.Meta()["creationTimestamp"] = null;
        await WriteJsonAsync(ctx, 201, review);
    }

    /// <summary>
    /// POST serviceaccounts/NAME/token (TokenRequest, `kubectl create token`): a token signed by this server
    /// that authenticates as the ServiceAccount until it expires (default 1 h, at least 10 min) or the
    /// ServiceAccount is deleted.
    /// </summary>
    async Task TokenRequestAsync(HttpContext ctx, Target t, JsonObject request, CancellationToken ct)
    {
        var sa = await ReadAsync(t, ct);
        if (Tokens is null) throw new ApiException(503, "ServiceUnavailable", "this server has no key to sign ServiceAccount tokens");
        if (request.Str("kind") is { } kind && kind != "TokenRequest")
            throw ApiException.BadRequest($"the body of the request is a {kind}, not a TokenRequest");
        var spec = request["spec"] as JsonObject ?? new JsonObject();
        var seconds = spec.Long("expirationSeconds") ?? 3600;
        var name = t.Name!;
        if (seconds < 600)
            throw ApiException.Invalid("authentication.k8s.io", "TokenRequest", name, [FieldError.Invalid("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")]);
        if (seconds > (1L << 32))
            throw ApiException.Invalid("authentication.k8s.io", "TokenRequest", name, [FieldError.Invalid("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds")]);
        var audiences = spec.Arr("audiences").Select(a => a?.GetValue<string>() ?? "").Where(a => a.Length > 0).ToList();
        if (audiences.Count == 0) audiences = [.. ServiceAccountTokens.DefaultAudiences];
        var now = DateTimeOffset.UtcNow;
        var token = Tokens.Issue(t.Namespace!, name, sa.Str("metadata.uid") ?? "", audiences, now, TimeSpan.FromSeconds(seconds));
        var response = new JsonObject
        {
            ["kind"] = "TokenRequest",
            ["apiVersion"] = "authentication.k8s.io/v1",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = t.Namespace, ["creationTimestamp"] = Json.Time(now) },
            ["spec"] = new JsonObject { ["audiences"] = Strings(audiences), ["expirationSeconds"] = seconds, ["boundObjectRef"] = spec["boundObjectRef"]?.DeepClone() },
            ["status"] = new JsonObject { ["token"] = token, ["expirationTimestamp"] = Json.Time(now.AddSeconds(seconds)) },
        };
        await WriteJsonAsync(ctx, 201, response);
    }
}
