using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Berth.Cluster.Storage;

namespace Berth.Cluster.Api.Admission;

/// <summary>
/// The policy admission plugins of a create or update, in kube-apiserver's order: LimitRanger mutates (defaults)
/// before validation, then LimitRanger checks and ResourceQuota admits after it. Both read their policies
/// through a <see cref="PolicyLister"/>: a write in a namespace without LimitRanges or ResourceQuotas costs
/// two dictionary lookups and no store read.
/// <para>ResourceQuota, as kube's quota admission: the object's usage (less the old object's on an update)
/// is added to each matching quota's status.used and checked against spec.hard; the new usage is then
/// written into the quota with a conditional update of its revision (optimistic concurrency), so
/// concurrent creates, on this server or another one on the same store, never charge the same headroom
/// twice: a conflict re-reads the quotas and checks again. On this server the charges of one namespace
/// are also taken one at a time (so parallel creates do not conflict). A resource the quota's status has
/// no usage for yet (the controller has not synced) is counted from the store first. Releases (deletes,
/// finished pods) are the quota controller's work, as in kube.</para>
/// </summary>
internal sealed class AdmissionChain(IStore store, ResourceType quotaType, ResourceType limitRangeType) : IDisposable
{
    readonly PolicyLister quotas = new(store, quotaType.KeyPrefix);
    readonly PolicyLister limitRanges = new(store, limitRangeType.KeyPrefix);
    readonly ConcurrentDictionary<string, SemaphoreSlim> chargeGates = new(StringComparer.Ordinal);
    const int MaxAttempts = 50;

    /// <summary>This server wrote a quota or a LimitRange: the listers ask the store for the namespace until their watch has it.</summary>
    public void Written(ResourceType type, string? ns, long revision)
    {
        if (ns is null || type.Group.Length != 0) return;
        if (ReferenceEquals(type, quotaType)) quotas.Written(ns, revision);
        else if (ReferenceEquals(type, limitRangeType)) limitRanges.Written(ns, revision);
    }

    async ValueTask<IReadOnlyCollection<JsonObject>> ListAsync(PolicyLister lister, ResourceType type, string ns, CancellationToken ct)
    {
        if (lister.In(ns) is { } known) return known;
        var list = await store.ListAsync(type.Prefix(ns), ct: ct).ConfigureAwait(false);
        return list.Items.Select(ApiHandler.Decode).ToList();
    }

    /// <summary>LimitRanger's defaults for a new pod (before validation).</summary>
    public ValueTask MutateAsync(ResourceType type, string ns, JsonObject obj, CancellationToken ct)
    {
        if (!(type.Group.Length == 0 && type.Plural == "pods")) return ValueTask.CompletedTask;
        if (limitRanges.In(ns) is { Count: 0 }) return ValueTask.CompletedTask;
        return Slow();
        async ValueTask Slow() => LimitRanger.Default(await ListAsync(limitRanges, limitRangeType, ns, ct).ConfigureAwait(false), obj);
    }

    /// <summary>LimitRanger's checks, then ResourceQuota's (after validation, right before the store write).</summary>
    public ValueTask ValidateAsync(ResourceType type, string ns, JsonObject obj, JsonObject? old, bool dryRun, CancellationToken ct)
    {
        var checkLimits = LimitRanger.Handles(type, old is null) && limitRanges.In(ns) is not { Count: 0 };
        var cachedQuotas = quotas.In(ns);
        // a namespace the lister knows without quotas, or whose quotas do not track the kind, is done here
        var checkQuota = cachedQuotas is null || cachedQuotas.Count > 0 && cachedQuotas.Any(q => Tracked(q, type));
        if (!checkLimits && !checkQuota) return ValueTask.CompletedTask;
        return Slow();
        async ValueTask Slow()
        {
            var name = obj.Str("metadata.name") ?? "";
            if (checkLimits && LimitRanger.Check(await ListAsync(limitRanges, limitRangeType, ns, ct).ConfigureAwait(false), type.Plural, obj) is { } why)
                throw ApiException.Forbidden(type.Group, type.Plural, name, why);
            if (checkQuota) await ChargeAsync(type, ns, name, obj, old, dryRun, ct).ConfigureAwait(false);
        }
    }

    static bool Tracked(JsonObject quota, ResourceType type) =>
        quota["spec"]?["hard"] is JsonObject hard && hard.Any(kv => QuotaUsage.Tracks(type.Group, type.Plural, kv.Key));

    async Task ChargeAsync(ResourceType type, string ns, string name, JsonObject obj, JsonObject? old, bool dryRun, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        var delta = QuotaUsage.Of(type.Group, type.Plural, obj, now);
        if (old is not null)
        {
            foreach (var (k, v) in QuotaUsage.Of(type.Group, type.Plural, old, now))
                delta[k] = (delta.TryGetValue(k, out var n) ? n : Quantity.Zero).Sub(v);
            // an update only charges what grew (kube: the usage of the new object less the old one's)
            foreach (var k in delta.Where(kv => kv.Value.Value <= 0).Select(kv => kv.Key).ToList()) delta.Remove(k);
            if (delta.Count == 0) return;
        }
        var gate = chargeGates.GetOrAdd(ns, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var charged = new HashSet<string>(StringComparer.Ordinal);
            Dictionary<string, Quantity>? inStore = null;
            for (var attempt = 0; ; attempt++)
            {
                var list = await store.ListAsync(quotaType.Prefix(ns), ct: ct).ConfigureAwait(false);
                var writes = new List<(StoreEntry Entry, JsonObject Quota)>();
                foreach (var e in list.Items)
                {
                    if (charged.Contains(e.Key)) continue;
                    var q = ApiHandler.Decode(e);
                    var quotaName = q.Str("metadata.name") ?? "";
                    var hard = LimitRanger.Parse(q["spec"]?["hard"] as JsonObject);
                    var restricted = hard.Keys.Where(r => QuotaUsage.Tracks(type.Group, type.Plural, r) && QuotaUsage.ScopeAllows(q, r)).ToList();
                    if (restricted.Count == 0 || !QuotaUsage.MatchesScopes(q, type.Group, type.Plural, obj)) continue;
                    if (old is null && type.Group.Length == 0 && type.Plural == "pods" && QuotaUsage.PodConstraints(obj, restricted) is { } missing)
                        throw ApiException.Forbidden(type.Group, type.Plural, name, $"failed quota: {quotaName}: {missing}");
                    var requested = restricted.Where(r => delta.TryGetValue(r, out var v) && v.Value != 0).ToDictionary(r => r, r => delta[r], StringComparer.Ordinal);
                    if (requested.Count == 0) continue;
                    var used = LimitRanger.Parse(q["status"]?["used"] as JsonObject);
                    if (requested.Keys.Any(r => !used.ContainsKey(r)))
                    {
                        inStore ??= await UsageInStoreAsync(type, ns, name, ct).ConfigureAwait(false);
                        foreach (var r in requested.Keys) if (!used.ContainsKey(r)) used[r] = inStore.GetValueOrDefault(r, Quantity.Zero);
                    }
                    var exceeded = requested.Where(kv => kv.Value.Value > 0 && used[kv.Key].Add(kv.Value) > hard[kv.Key]).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
                    if (exceeded.Count > 0)
                        throw ApiException.Forbidden(type.Group, type.Plural, name,
                            $"exceeded quota: {quotaName}, requested: {QuotaUsage.Pretty(requested.Where(kv => exceeded.Contains(kv.Key)))}, " +
                            $"used: {QuotaUsage.Pretty(used.Where(kv => exceeded.Contains(kv.Key)))}, limited: {QuotaUsage.Pretty(hard.Where(kv => exceeded.Contains(kv.Key)))}");
                    var usedJson = q.Obj("status").Obj("used");
                    foreach (var (r, v) in requested) usedJson[r] = used[r].Add(v).ToString();
                    writes.Add((e, q));
                }
                if (dryRun || writes.Count == 0) return;
                var conflict = false;
                foreach (var (e, q) in writes)
                {
                    try
                    {
                        var w = await store.UpdateAsync(e.Key, ApiHandler.Encode(q), e.ModRevision, ct).ConfigureAwait(false);
                        quotas.Written(ns, w.ModRevision);
                        charged.Add(e.Key);
                    }
                    catch (Exception x) when (x is StoreConflictException or StoreKeyNotFoundException) { conflict = true; break; }
                }
                if (!conflict) return;
                if (attempt >= MaxAttempts)
                    throw ApiException.Conflict("", "resourcequotas", writes[0].Quota.Str("metadata.name") ?? "", "the object has been modified; please apply your changes to the latest version and try again");
            }
        }
        finally { gate.Release(); }
    }

    /// <summary>The namespace's usage of the kind counted from the store (for a quota whose status has none yet), the written object aside.</summary>
    async Task<Dictionary<string, Quantity>> UsageInStoreAsync(ResourceType type, string ns, string name, CancellationToken ct)
    {
        var sum = new Dictionary<string, Quantity>(StringComparer.Ordinal);
        var now = DateTimeOffset.UtcNow;
        foreach (var e in (await store.ListAsync(type.Prefix(ns), ct: ct).ConfigureAwait(false)).Items)
        {
            if (e.Key == type.Key(ns, name)) continue;
            foreach (var (k, v) in QuotaUsage.Of(type.Group, type.Plural, ApiHandler.Decode(e), now))
                sum[k] = sum.TryGetValue(k, out var have) ? have.Add(v) : v;
        }
        return sum;
    }

    public void Dispose()
    {
        quotas.Dispose();
        limitRanges.Dispose();
    }
}
