using System.Text.Json;
using Berth.Cluster.Client;
using Berth.Cluster.Controllers.Runtime;
using k8s.Models;

namespace Berth.Cluster.Controllers;

/// <summary>
/// apps/v1 ControllerRevisions of a DaemonSet or StatefulSet, as kube-controller-manager keeps them: one
/// per pod template, named OWNER-HASH, labelled with the template's labels and controller-revision-hash,
/// owned (controller) by the set, data {"spec":{"template":{…,"$patch":"replace"}}} (what `kubectl rollout
/// undo` patches back), revision numbers increasing; returning to an older template renumbers its revision
/// as the newest. Old revisions beyond revisionHistoryLimit that no pod uses are deleted.
/// </summary>
internal sealed class ControllerHistory(IClusterClient client, Informer<V1ControllerRevision> revisions)
{
    public const string HashLabel = "controller-revision-hash";

    public List<V1ControllerRevision> Owned(V1ObjectMeta owner) =>
        [.. revisions.ByIndex(InformerFactory.NamespaceIndex, owner.NamespaceProperty ?? "").Where(r => Owners.ControllerOf(r.Metadata)?.Uid == owner.Uid)];

    /// <summary>The revision's pod template (null when its data is not a template patch).</summary>
    public static V1PodTemplateSpec? Template(V1ControllerRevision r)
    {
        if (r.Data is not JsonElement { ValueKind: JsonValueKind.Object } data ||
            !data.TryGetProperty("spec", out var spec) || !spec.TryGetProperty("template", out var t)) return null;
        var template = JsonSerializer.Deserialize(t.GetRawText(), ClusterJsonContext.Default.V1PodTemplateSpec);
        return template;
    }

    /// <summary>Makes sure the revision <paramref name="name"/> of <paramref name="template"/> exists and is the newest; returns it.</summary>
    public async Task<V1ControllerRevision> EnsureAsync(string ownerKind, V1ObjectMeta owner, string name, string hash, V1PodTemplateSpec template, CancellationToken ct)
    {
        var owned = Owned(owner);
        long max = owned.Count == 0 ? 0 : owned.Max(r => r.Revision ?? 0);
        if (owned.FirstOrDefault(r => r.Metadata.Name == name) is { } existing)
        {
            if ((existing.Revision ?? 0) >= max) return existing;
            var renumbered = Kinds.Clone(existing);
            renumbered.Revision = max + 1;
            return await client.UpdateAsync(renumbered, ct).ConfigureAwait(false);
        }
        var labels = new Dictionary<string, string>(template.Metadata?.Labels ?? new Dictionary<string, string>()) { [HashLabel] = hash };
        var revision = new V1ControllerRevision
        {
            ApiVersion = "apps/v1", Kind = "ControllerRevision",
            Metadata = new V1ObjectMeta
            {
                Name = name, NamespaceProperty = owner.NamespaceProperty, Labels = labels,
                Annotations = owner.Annotations is { Count: > 0 } a ? new Dictionary<string, string>(a.Where(kv => kv.Key != "kubectl.kubernetes.io/last-applied-configuration")) : null,
                OwnerReferences = [Owners.ControllerRef("apps/v1", ownerKind, owner)],
            },
            Data = Patch(template),
            Revision = max + 1,
        };
        try { return await client.CreateAsync(revision, ct).ConfigureAwait(false); }
        catch (ClusterException e) when (e.Kind == ClusterErrorKind.AlreadyExists)
        {
            // the cache was behind: take the stored one if it is ours
            var stored = await client.GetAsync<V1ControllerRevision>(owner.NamespaceProperty, name, ct).ConfigureAwait(false);
            if (stored is not null && Owners.ControllerOf(stored.Metadata)?.Uid == owner.Uid) return stored;
            throw;
        }
    }

    /// <summary>Deletes the oldest revisions beyond <paramref name="limit"/> that are not in <paramref name="live"/>.</summary>
    public async Task TrimAsync(V1ObjectMeta owner, int limit, IReadOnlySet<string> live, CancellationToken ct)
    {
        var old = Owned(owner).Where(r => !live.Contains(r.Metadata.Name)).OrderBy(r => r.Revision ?? 0).ToList();
        foreach (var r in old.Take(Math.Max(0, old.Count - limit)))
        {
            try { await client.DeleteAsync<V1ControllerRevision>(r.Metadata.NamespaceProperty, r.Metadata.Name, new DeleteOptions(Uid: r.Metadata.Uid), ct).ConfigureAwait(false); }
            catch (ClusterException e) when (e.Kind is ClusterErrorKind.NotFound or ClusterErrorKind.Conflict) { }
        }
    }

    /// <summary>{"spec":{"template":{…,"$patch":"replace"}}}, as the Kubernetes controllers store it.</summary>
    static JsonElement Patch(V1PodTemplateSpec template)
    {
        var t = System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.SerializeToUtf8Bytes(template, ClusterJsonContext.Default.V1PodTemplateSpec))!.AsObject();
        t["$patch"] = "replace";
        var doc = new System.Text.Json.Nodes.JsonObject { ["spec"] = new System.Text.Json.Nodes.JsonObject { ["template"] = t } };
        return JsonSerializer.Deserialize(doc.ToJsonString(), ClusterJsonContext.Default.JsonElement);
    }
}
