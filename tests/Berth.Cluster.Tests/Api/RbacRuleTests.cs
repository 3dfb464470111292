using Berth.Cluster.Security;

namespace Berth.Cluster.Tests.Api;

/// <summary>kube's RBAC semantics: request attributes from paths, rule matching and the escalation check's coverage.</summary>
public sealed class RbacRuleTests
{
    static PolicyRule R(string[] verbs, string[] groups, string[] resources, string[]? names = null) => new(verbs, groups, resources, names ?? [], []);

    [Theory]
    [InlineData("GET", "/api/v1/namespaces/default/pods", false, "list", "", "pods", "", "default", "")]
    [InlineData("GET", "/api/v1/namespaces/default/pods", true, "watch", "", "pods", "", "default", "")]
    [InlineData("GET", "/api/v1/namespaces/default/pods/web/log", false, "get", "", "pods", "log", "default", "web")]
    [InlineData("POST", "/api/v1/namespaces/default/pods/web/exec", false, "create", "", "pods", "exec", "default", "web")]
    [InlineData("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale", false, "patch", "apps", "deployments", "scale", "shop", "web")]
    [InlineData("DELETE", "/apis/batch/v1/namespaces/x/jobs", false, "deletecollection", "batch", "jobs", "", "x", "")]
    [InlineData("DELETE", "/api/v1/nodes/n1", false, "delete", "", "nodes", "", "", "n1")]
    [InlineData("GET", "/api/v1/namespaces/team", false, "get", "", "namespaces", "", "team", "team")]
    [InlineData("PUT", "/api/v1/namespaces/team/finalize", false, "update", "", "namespaces", "finalize", "team", "team")]
    [InlineData("GET", "/api/v1/namespaces", false, "list", "", "namespaces", "", "", "")]
    [InlineData("GET", "/api/v1/watch/namespaces/a/pods", false, "watch", "", "pods", "", "a", "")]
    public void Resource_requests_are_parsed_as_kube_does(string method, string path, bool watch, string verb, string group, string resource, string sub, string ns, string name)
    {
        var a = RequestAttributes.FromRequest(method, path, watch);
        Assert.True(a.IsResourceRequest);
        Assert.Equal((verb, group, resource, sub, ns, name), (a.Verb, a.ApiGroup, a.Resource, a.Subresource, a.Namespace, a.Name));
    }

    [Theory]
    [InlineData("/api"), InlineData("/api/v1"), InlineData("/apis"), InlineData("/apis/apps"), InlineData("/apis/apps/v1"), InlineData("/healthz"), InlineData("/openapi/v3/apis/apps/v1")]
    public void Discovery_and_other_paths_are_non_resource_requests(string path)
    {
        var a = RequestAttributes.FromRequest("GET", path, false);
        Assert.False(a.IsResourceRequest);
        Assert.Equal("get", a.Verb);
        Assert.Equal(path, a.Path);
    }

    [Fact]
    public void Rules_match_verbs_groups_resources_subresources_names_and_urls()
    {
        var pods = R(["get", "list"], [""], ["pods"]);
        Assert.True(pods.Allows(new("get", true, ApiGroup: "", Resource: "pods", Namespace: "d", Name: "x")));
        Assert.False(pods.Allows(new("delete", true, ApiGroup: "", Resource: "pods", Namespace: "d", Name: "x")));
        Assert.False(pods.Allows(new("get", true, ApiGroup: "apps", Resource: "pods")));
        Assert.False(pods.Allows(new("get", true, ApiGroup: "", Resource: "pods", Subresource: "log", Name: "x"))); // pods does not grant pods/log
        Assert.True(R(["get"], [""], ["*/log"]).Allows(new("get", true, Resource: "pods", Subresource: "log", Name: "x")));
        Assert.True(R(["get"], [""], ["pods/log"], ["web"]).Allows(new("get", true, Resource: "pods", Subresource: "log", Name: "web")));
        Assert.False(R(["get"], [""], ["pods/log"], ["web"]).Allows(new("get", true, Resource: "pods", Subresource: "log", Name: "db")));
        Assert.False(R(["list"], [""], ["pods"], ["web"]).Allows(new("list", true, Resource: "pods"))); // names never match a list
        Assert.True(R(["*"], ["*"], ["*"]).Allows(new("deletecollection", true, ApiGroup: "batch", Resource: "jobs")));
        var urls = new PolicyRule(["get"], [], [], [], ["/healthz", "/apis/*"]);
        Assert.True(urls.Allows(RequestAttributes.NonResource("get", "/healthz")));
        Assert.True(urls.Allows(RequestAttributes.NonResource("get", "/apis/apps/v1")));
        Assert.False(urls.Allows(RequestAttributes.NonResource("get", "/metrics")));
        Assert.False(urls.Allows(RequestAttributes.NonResource("post", "/healthz")));
        Assert.False(urls.Allows(new("get", true, Resource: "pods"))); // URL rules grant no resources
    }

    [Fact]
    public void Coverage_reports_each_missing_permission()
    {
        PolicyRule[] held = [R(["get", "list"], [""], ["pods"]), R(["*"], ["apps"], ["deployments/*"]), R(["get"], [""], ["secrets"], ["one"])];
        Assert.Empty(PolicyRule.Uncovered(held, [R(["get"], [""], ["pods"])]));
        Assert.Empty(PolicyRule.Uncovered(held, [R(["update"], ["apps"], ["deployments/scale"])]));
        Assert.Empty(PolicyRule.Uncovered(held, [R(["get"], [""], ["secrets"], ["one"])]));
        var missing = PolicyRule.Uncovered(held, [R(["get", "delete"], [""], ["pods", "secrets"])]);
        Assert.Equal(["{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}", "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}", "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"delete\"]}"],
            missing.Select(m => m.ToString()));
        Assert.Single(PolicyRule.Uncovered(held, [new PolicyRule(["get"], [], [], [], ["/healthz"])]));
    }

    [Fact]
    public void Service_account_user_names_split_only_when_well_formed()
    {
        Assert.Equal(("ns", "robot"), UserInfo.SplitServiceAccount("system:serviceaccount:ns:robot"));
        Assert.Null(UserInfo.SplitServiceAccount("system:serviceaccount:ns"));
        Assert.Null(UserInfo.SplitServiceAccount("system:serviceaccount:a:b:c"));
        Assert.Null(UserInfo.SplitServiceAccount("alice"));
        var sa = UserInfo.ServiceAccount("ns", "robot");
        Assert.Equal(["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"], sa.Groups);
        Assert.False(sa.IsMaster);
        Assert.True(UserInfo.Admin.IsMaster);
    }
}
