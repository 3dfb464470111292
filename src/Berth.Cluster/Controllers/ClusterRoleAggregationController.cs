using System.Text.Json;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using Berth.Cluster.Scheduling;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// kube-controller-manager's clusterrole-aggregation controller: a ClusterRole with an aggregationRule
/// gets as its rules those of every other ClusterRole its selectors match (by name order, each rule
/// once), kept current as those change — how admin, edit and view gather the aggregate-to-* roles.
/// </summary>
public sealed class ClusterRoleAggregationController : Controller
{
    readonly IClusterClient _client;
    readonly Informer<V1ClusterRole> _roles;
    public override string Name => "clusterrole-aggregation-controller";

    public ClusterRoleAggregationController(InformerFactory f)
    {
        _client = f.Client;
        _roles = f.For<V1ClusterRole>();
        // any ClusterRole may be gathered by any aggregated one: a change re-checks every aggregated role
        _roles.AddHandler(new InformerHandler<V1ClusterRole>(_ => EnqueueAggregated(), (_, _) => EnqueueAggregated(), _ => EnqueueAggregated()));
    }

    void EnqueueAggregated()
    {
        foreach (var r in _roles.List())
            if (r.AggregationRule is not null) Enqueue(r.Metadata.Name);
    }

    static string RuleKey(V1PolicyRule r) => JsonSerializer.Serialize(r, ClusterJsonContext.Default.V1PolicyRule);

    protected override async Task ReconcileAsync(string key, CancellationToken ct)
    {
        var role = _roles.Get(key);
        if (role?.AggregationRule is not { } rule) return;
        var selectors = (rule.ClusterRoleSelectors ?? []).Select(LabelSelectorMatcher.From).ToList();
        var rules = new List<V1PolicyRule>();
        var seen = new HashSet<string>();
        foreach (var other in _roles.List().OrderBy(r => r.Metadata.Name, StringComparer.Ordinal))
        {
            if (other.Metadata.Name == key || !selectors.Any(s => s.Matches(other.Metadata.Labels))) continue;
            foreach (var r in other.Rules ?? [])
                if (seen.Add(RuleKey(r))) rules.Add(r);
        }
        var current = (role.Rules ?? []).Select(RuleKey).ToList();
        if (current.SequenceEqual(rules.Select(RuleKey))) return;
        var updated = Kinds.Clone(role);
        updated.Rules = rules;
        try { await _client.UpdateAsync(updated, ct).ConfigureAwait(false); }
        catch (ClusterException e) when (e.Kind is ClusterErrorKind.Conflict or ClusterErrorKind.NotFound) { Enqueue(key); }
    }
}
