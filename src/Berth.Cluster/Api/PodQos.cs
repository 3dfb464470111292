using System.Text.Json.Nodes;
using k8s.Models;

namespace Berth.Cluster.Api;

/// <summary>
/// What kube-apiserver fills in on a new Pod from its containers' resources: requests defaulted from
/// limits (SetDefaults_Pod: only on Pods, not on templates) and status.qosClass (Guaranteed, Burstable or
/// BestEffort, from the cpu and memory requests and limits of the containers and init containers).
/// </summary>
public static class PodQos
{
    /// <summary>Each container's limit of a resource becomes its request when that request is not set.</summary>
    public static void DefaultRequestsFromLimits(JsonObject spec)
    {
        foreach (var list in new[] { "initContainers", "containers" })
            foreach (var c in spec.Objects(list))
            {
                if (c["resources"] is not JsonObject r || r["limits"] is not JsonObject limits || limits.Count == 0) continue;
                var requests = r.Obj("requests");
                foreach (var (k, v) in limits)
                    if (requests[k] is null && v is not null) requests[k] = v.DeepClone();
            }
    }

    /// <summary>The pod's QoS class as kubelet's and the API server's GetPodQOS compute it.</summary>
    public static string Class(JsonObject? spec)
    {
        var requests = new Dictionary<string, decimal>();
        var limits = new Dictionary<string, decimal>();
        var guaranteed = true;
        foreach (var list in new[] { "initContainers", "containers" })
            foreach (var c in spec.Objects(list))
            {
                Add(c["resources"]?["requests"] as JsonObject, requests, null);
                var found = new HashSet<string>();
                Add(c["resources"]?["limits"] as JsonObject, limits, found);
                if (!found.Contains("cpu") || !found.Contains("memory")) guaranteed = false;
            }
        if (requests.Count == 0 && limits.Count == 0) return "BestEffort";
        if (guaranteed && requests.All(kv => limits.TryGetValue(kv.Key, out var l) && l == kv.Value) && requests.Count == limits.Count) return "Guaranteed";
        return "Burstable";
    }

    static void Add(JsonObject? list, Dictionary<string, decimal> sums, HashSet<string>? found)
    {
        if (list is null) return;
        foreach (var (name, q) in list)
        {
            if (name is not ("cpu" or "memory")) continue;
            var v = Value(q);
            if (v is not > 0) continue;
            found?.Add(name);
            sums[name] = sums.GetValueOrDefault(name) + v.Value;
        }
    }

    static decimal? Value(JsonNode? q)
    {
        try
        {
            return q?.GetValueKind() switch
            {
                System.Text.Json.JsonValueKind.String => new ResourceQuantity(q.GetValue<string>()).ToDecimal(),
                System.Text.Json.JsonValueKind.Number => q.GetValue<decimal>(),
                _ => null,
            };
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException) { return null; }
    }
}
