using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Berth.Cluster.Storage;

namespace Berth.Cluster.Security;

/// <summary>The answer for one request: allowed or not, and the reason kube's RBAC authorizer gives.</summary>
public readonly record struct Decision(bool Allowed, string Reason);

/// <summary>
/// kube-apiserver's RBAC authorizer over the store: Roles, ClusterRoles, RoleBindings and
/// ClusterRoleBindings are held in memory (listed once, then kept current by one watch of the
/// rbac.authorization.k8s.io prefix), and each user's rules are compiled once per RBAC state (a
/// change to any RBAC object drops the compiled rules). system:masters is allowed before any of this.
/// </summary>
public sealed class RbacAuthorizer(IStore store) : IAsyncDisposable
{
    public const string Group = "rbac.authorization.k8s.io";
    const string Prefix = "/registry/" + Group + "/";

    sealed record Binding(string Namespace, string Name, string RoleKind, string RoleName, JsonObject[] Subjects);

    /// <summary>One immutable RBAC state; its per-user rule cache lives and dies with it.</summary>
    sealed class State
    {
        public readonly Dictionary<string, PolicyRule[]> ClusterRoles = [];
        public readonly Dictionary<(string, string), PolicyRule[]> Roles = [];
        public readonly List<Binding> ClusterRoleBindings = [];
        public readonly List<Binding> RoleBindings = [];
        public readonly ConcurrentDictionary<string, UserRules> Compiled = new();
    }

    /// <summary>A user's rules: those granted cluster-wide and those granted per namespace, with where each came from.</summary>
    sealed record UserRules(List<(PolicyRule Rule, string Source)> Cluster, Dictionary<string, List<(PolicyRule Rule, string Source)>> ByNamespace, List<string> Errors);

    readonly Dictionary<string, byte[]> objects = [];
    readonly Lock gate = new();
    volatile State state = new();
    long applied;
    IStoreWatch? watch;
    readonly CancellationTokenSource stop = new();
    Task? loop;

    /// <summary>Lists the RBAC objects and starts following their changes; returns once the first list is in.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        loop = Task.Run(() => RunAsync(first, stop.Token), CancellationToken.None);
        await first.Task.WaitAsync(ct);
    }

    async Task RunAsync(TaskCompletionSource first, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var list = await store.ListAsync(Prefix, ct: ct);
                lock (gate)
                {
                    objects.Clear();
                    foreach (var e in list.Items) objects[e.Key] = e.Value;
                    Rebuild();
                    applied = list.Revision;
                    listed = list.Revision;
                }
                first.TrySetResult();
                using var w = await store.WatchAsync(Prefix, list.Revision, ct);
                watch = w;
                while (await w.Events.WaitToReadAsync(ct)) Drain(w);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is StoreException or System.Threading.Channels.ChannelClosedException)
            {
                // compacted, lagged or the store was unreachable: list again
                watch = null;
                try { await Task.Delay(TimeSpan.FromMilliseconds(200), ct); } catch (OperationCanceledException) { break; }
            }
        }
        first.TrySetCanceled(ct);
    }

    /// <summary>Applies every queued event (up to the watch's progress as read first) not already in a newer list.</summary>
    void Drain(IStoreWatch w)
    {
        var changed = false;
        lock (gate)
        {
            var progress = w.Progress;
            while (w.Events.TryRead(out var e))
            {
                if (e.Revision <= listed) continue; // CatchUpAsync's list already has it
                if (e.Type == StoreEventType.Put) objects[e.Entry.Key] = e.Entry.Value;
                else objects.Remove(e.Entry.Key);
                applied = Math.Max(applied, e.Revision);
                changed = true;
            }
            applied = Math.Max(applied, progress);
            if (changed) Rebuild();
        }
    }

    long listed;

    /// <summary>
    /// Makes the state include every write the store acknowledged: the queued events when the watch has
    /// reached that far (SQLite), else one list of the RBAC objects (etcd's watch reports progress only
    /// every few seconds). Only denials and rule listings wait for this.
    /// </summary>
    public async ValueTask CatchUpAsync(CancellationToken ct)
    {
        var target = store.CurrentRevision;
        if (watch is { } w) Drain(w);
        if (Volatile.Read(ref applied) >= target) return;
        var list = await store.ListAsync(Prefix, ct: ct);
        lock (gate)
        {
            if (list.Revision <= applied) return;
            if (list.Items.Count != objects.Count || list.Items.Any(e => !objects.TryGetValue(e.Key, out var v) || !v.AsSpan().SequenceEqual(e.Value)))
            {
                objects.Clear();
                foreach (var e in list.Items) objects[e.Key] = e.Value;
                Rebuild();
            }
            listed = list.Revision;
            applied = list.Revision;
        }
    }

    void Rebuild()
    {
        var s = new State();
        foreach (var (key, value) in objects)
        {
            JsonObject o;
            try { o = JsonNode.Parse(value) as JsonObject ?? new JsonObject(); }
            catch (System.Text.Json.JsonException) { continue; }
            var rest = key[Prefix.Length..];
            var slash = rest.IndexOf('/');
            if (slash < 0) continue;
            var kind = rest[..slash];
            var name = o["metadata"]?["name"]?.GetValue<string>() ?? "";
            var ns = o["metadata"]?["namespace"]?.GetValue<string>() ?? "";
            switch (kind)
            {
                case "clusterroles": s.ClusterRoles[name] = PolicyRule.ListFromJson(o["rules"]); break;
                case "roles": s.Roles[(ns, name)] = PolicyRule.ListFromJson(o["rules"]); break;
                case "clusterrolebindings": s.ClusterRoleBindings.Add(ToBinding(o, "", name)); break;
                case "rolebindings": s.RoleBindings.Add(ToBinding(o, ns, name)); break;
            }
        }
        state = s;
    }

    static Binding ToBinding(JsonObject o, string ns, string name) => new(ns, name,
        o["roleRef"]?["kind"]?.GetValue<string>() ?? "", o["roleRef"]?["name"]?.GetValue<string>() ?? "",
        o["subjects"] is JsonArray a ? [.. a.OfType<JsonObject>()] : []);

    static bool AppliesTo(JsonObject subject, UserInfo user, string bindingNamespace)
    {
        var name = subject["name"]?.GetValue<string>() ?? "";
        switch (subject["kind"]?.GetValue<string>())
        {
            case "User": return name == user.Name;
            case "Group": return Array.IndexOf(user.Groups, name) >= 0;
            case "ServiceAccount":
                var ns = subject["namespace"]?.GetValue<string>() is { Length: > 0 } sns ? sns : bindingNamespace;
                return ns.Length > 0 && user.Name == $"{UserInfo.ServiceAccountPrefix}{ns}:{name}";
            default: return false;
        }
    }

    UserRules Compile(State s, UserInfo user) => s.Compiled.GetOrAdd(user.CacheKey, _ =>
    {
        var cluster = new List<(PolicyRule, string)>();
        var byNs = new Dictionary<string, List<(PolicyRule, string)>>();
        var errors = new List<string>();
        foreach (var b in s.ClusterRoleBindings)
        {
            if (!b.Subjects.Any(sub => AppliesTo(sub, user, ""))) continue;
            if (b.RoleKind != "ClusterRole") continue;
            if (!s.ClusterRoles.TryGetValue(b.RoleName, out var rules)) { errors.Add($"clusterrole.rbac.authorization.k8s.io \"{b.RoleName}\" not found"); continue; }
            var source = $"ClusterRoleBinding \"{b.Name}\" of ClusterRole \"{b.RoleName}\"";
            foreach (var r in rules) cluster.Add((r, source));
        }
        foreach (var b in s.RoleBindings)
        {
            if (!b.Subjects.Any(sub => AppliesTo(sub, user, b.Namespace))) continue;
            PolicyRule[]? rules = null;
            if (b.RoleKind == "ClusterRole") s.ClusterRoles.TryGetValue(b.RoleName, out rules);
            else if (b.RoleKind == "Role") s.Roles.TryGetValue((b.Namespace, b.RoleName), out rules);
            if (rules is null) { errors.Add($"{b.RoleKind.ToLowerInvariant()}.rbac.authorization.k8s.io \"{b.RoleName}\" not found"); continue; }
            var source = $"RoleBinding \"{b.Name}/{b.Namespace}\" of {b.RoleKind} \"{b.RoleName}\"";
            if (!byNs.TryGetValue(b.Namespace, out var list)) byNs[b.Namespace] = list = [];
            foreach (var r in rules) list.Add((r, source));
        }
        return new UserRules(cluster, byNs, errors);
    });

    static string Subject(UserInfo user) =>
        UserInfo.SplitServiceAccount(user.Name) is { } sa ? $"ServiceAccount \"{sa.Name}/{sa.Ns}\"" : $"User \"{user.Name}\"";

    /// <summary>The decision for one request, from the current RBAC state (no waiting).</summary>
    public Decision Authorize(UserInfo user, RequestAttributes a)
    {
        if (user.IsMaster) return new(true, "");
        var rules = Compile(state, user);
        foreach (var (r, source) in rules.Cluster)
            if (r.Allows(a)) return new(true, $"RBAC: allowed by {source} to {Subject(user)}");
        if (a.IsResourceRequest && a.Namespace.Length > 0 && rules.ByNamespace.TryGetValue(a.Namespace, out var nsRules))
            foreach (var (r, source) in nsRules)
                if (r.Allows(a)) return new(true, $"RBAC: allowed by {source} to {Subject(user)}");
        return new(false, rules.Errors.Count == 0 ? "" : "RBAC: " + (rules.Errors.Count == 1 ? rules.Errors[0] : "[" + string.Join(", ", rules.Errors) + "]"));
    }

    /// <summary>
    /// <see cref="Authorize"/>, but a denial is only given once the RBAC state includes every write the
    /// store acknowledged (so a RoleBinding just created is already in force for the next request).
    /// </summary>
    public async ValueTask<Decision> AuthorizeAsync(UserInfo user, RequestAttributes a, CancellationToken ct)
    {
        var d = Authorize(user, a);
        if (d.Allowed || Volatile.Read(ref applied) >= store.CurrentRevision) return d;
        await CatchUpAsync(ct);
        return Authorize(user, a);
    }

    /// <summary>
    /// The rules a user holds in a namespace ("" = cluster-wide only): resource rules from both, and
    /// non-resource rules from ClusterRoleBindings (kube's RulesFor, as SelfSubjectRulesReview lists them).
    /// </summary>
    public (List<PolicyRule> Rules, List<string> Errors) RulesFor(UserInfo user, string ns)
    {
        var rules = Compile(state, user);
        var all = rules.Cluster.Select(r => r.Rule).ToList();
        if (ns.Length > 0 && rules.ByNamespace.TryGetValue(ns, out var nsRules))
            all.AddRange(nsRules.Select(r => r.Rule).Where(r => r.NonResourceUrls.Length == 0));
        return (all, rules.Errors);
    }

    /// <summary><see cref="RulesFor"/> once every acknowledged write is applied.</summary>
    public async ValueTask<(List<PolicyRule> Rules, List<string> Errors)> RulesForAsync(UserInfo user, string ns, CancellationToken ct)
    {
        if (Volatile.Read(ref applied) < store.CurrentRevision) await CatchUpAsync(ct);
        return RulesFor(user, ns);
    }

    /// <summary>The rules of a role a binding refers to (Role in <paramref name="ns"/> or ClusterRole), null when it does not exist.</summary>
    public PolicyRule[]? RoleRules(string kind, string ns, string name)
    {
        var s = state;
        return kind switch
        {
            "ClusterRole" => s.ClusterRoles.GetValueOrDefault(name),
            "Role" => s.Roles.GetValueOrDefault((ns, name)),
            _ => null,
        };
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        if (loop is not null) { try { await loop; } catch (OperationCanceledException) { } }
        stop.Dispose();
    }
}
