using System.Text.Json.Nodes;

namespace Berth.Cluster.Security;

/// <summary>
/// The default ClusterRoles and ClusterRoleBindings kube-apiserver creates at start (its
/// bootstrap-roles post-start hook): cluster-admin, the aggregated admin/edit/view with the
/// system:aggregate-to-* roles they gather, system:discovery, system:basic-user and
/// system:public-info-viewer, bound as on every Kubernetes cluster.
/// </summary>
public static class BootstrapPolicy
{
    const string AggregateTo = "rbac.authorization.k8s.io/aggregate-to-";
    static readonly string[] Read = ["get", "list", "watch"];
    static readonly string[] Write = ["create", "delete", "deletecollection", "patch", "update"];

    static JsonObject Rule(string[] groups, string[] resources, string[] verbs) =>
        new PolicyRule(verbs, groups, resources, [], []).ToJson();

    static JsonObject Urls(string[] urls, string[] verbs) => new PolicyRule(verbs, [], [], [], urls).ToJson();

    static JsonObject Meta(string name, Dictionary<string, string>? extraLabels = null)
    {
        var labels = new JsonObject { ["kubernetes.io/bootstrapping"] = "rbac-defaults" };
        if (extraLabels is not null) foreach (var (k, v) in extraLabels) labels[k] = v;
        return new JsonObject
        {
            ["name"] = name,
            ["labels"] = labels,
            ["annotations"] = new JsonObject { ["rbac.authorization.kubernetes.io/autoupdate"] = "true" },
        };
    }

    static JsonObject Role(string name, JsonObject[] rules, Dictionary<string, string>? labels = null) => new()
    {
        ["apiVersion"] = "rbac.authorization.k8s.io/v1",
        ["kind"] = "ClusterRole",
        ["metadata"] = Meta(name, labels),
        ["rules"] = new JsonArray([.. rules]),
    };

    static JsonObject Aggregated(string name, string selectLabel, Dictionary<string, string>? labels = null)
    {
        var r = Role(name, [], labels);
        r["aggregationRule"] = new JsonObject
        {
            ["clusterRoleSelectors"] = new JsonArray(new JsonObject { ["matchLabels"] = new JsonObject { [AggregateTo + selectLabel] = "true" } }),
        };
        return r;
    }

    static JsonObject Binding(string name, string role, params (string Kind, string Name)[] subjects) => new()
    {
        ["apiVersion"] = "rbac.authorization.k8s.io/v1",
        ["kind"] = "ClusterRoleBinding",
        ["metadata"] = Meta(name),
        ["roleRef"] = new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "ClusterRole", ["name"] = role },
        ["subjects"] = new JsonArray([.. subjects.Select(s => (JsonNode)new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = s.Kind, ["name"] = s.Name })]),
    };

    public static IEnumerable<JsonObject> ClusterRoles()
    {
        yield return Role("cluster-admin", [Rule(["*"], ["*"], ["*"]), Urls(["*"], ["*"])]);
        yield return Aggregated("admin", "admin");
        yield return Aggregated("edit", "edit", new() { [AggregateTo + "admin"] = "true" });
        yield return Aggregated("view", "view", new() { [AggregateTo + "edit"] = "true" });
        yield return Role("system:aggregate-to-admin",
        [
            Rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
            Rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], [.. Write, .. Read]),
        ], new() { [AggregateTo + "admin"] = "true" });
        yield return Role("system:aggregate-to-edit",
        [
            Rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], Read),
            Rule([""], ["serviceaccounts"], ["impersonate"]),
            Rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], Write),
            Rule([""], ["pods/eviction"], ["create"]),
            Rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"], Write),
            Rule([""], ["serviceaccounts/token"], ["create"]),
            Rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"], Write),
            Rule(["autoscaling"], ["horizontalpodautoscalers"], Write),
            Rule(["batch"], ["cronjobs", "jobs"], Write),
            Rule(["policy"], ["poddisruptionbudgets"], Write),
            Rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], Write),
            Rule(["coordination.k8s.io"], ["leases"], [.. Write, .. Read]),
        ], new() { [AggregateTo + "edit"] = "true" });
        yield return Role("system:aggregate-to-view",
        [
            Rule([""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status"], Read),
            Rule([""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status", "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"], Read),
            Rule([""], ["namespaces"], Read),
            Rule(["discovery.k8s.io"], ["endpointslices"], Read),
            Rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"], Read),
            Rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], Read),
            Rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], Read),
            Rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], Read),
            Rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], Read),
        ], new() { [AggregateTo + "view"] = "true" });
        yield return Role("system:discovery",
            [Urls(["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], ["get"])]);
        yield return Role("system:basic-user",
        [
            Rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
            Rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
        ]);
        yield return Role("system:public-info-viewer", [Urls(["/healthz", "/livez", "/readyz", "/version", "/version/"], ["get"])]);
    }

    public static IEnumerable<JsonObject> ClusterRoleBindings()
    {
        yield return Binding("cluster-admin", "cluster-admin", ("Group", UserInfo.Masters));
        yield return Binding("system:discovery", "system:discovery", ("Group", UserInfo.Authenticated));
        yield return Binding("system:basic-user", "system:basic-user", ("Group", UserInfo.Authenticated));
        yield return Binding("system:public-info-viewer", "system:public-info-viewer", ("Group", UserInfo.Authenticated), ("Group", "system:unauthenticated"));
    }
}
