using System.Text;
using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// Decodes Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf: the "k8s\0" magic and a
/// runtime.Unknown envelope around the object) into the JSON tree the API works on. kubectl's typed
/// clients (`kubectl create namespace|deployment|service|configmap|secret|job|cronjob|serviceaccount`,
/// evictions from `kubectl drain`) send request bodies this way. The field numbers below are the
/// wire contract of k8s.io/api's generated.proto for the kinds and fields those commands write;
/// fields outside the table are skipped.
/// </summary>
public static class Protobuf
{
    public const string MediaType = "application/vnd.kubernetes.protobuf";

    enum K { Str, Bytes, Int, Bool, Msg, MapStr, MapBytes, MapQty, IntOrStr, Time, Qty }
    sealed record Field(string Name, K Kind, bool Repeated = false, string? Msg = null);

    static Field S(string n) => new(n, K.Str);
    static Field Ss(string n) => new(n, K.Str, true);
    static Field I(string n) => new(n, K.Int);
    static Field B(string n) => new(n, K.Bool);
    static Field M(string n, string msg) => new(n, K.Msg, false, msg);
    static Field Ms(string n, string msg) => new(n, K.Msg, true, msg);

    static readonly Dictionary<string, Dictionary<int, Field>> Schemas = new()
    {
        ["ObjectMeta"] = new() { [1] = S("name"), [2] = S("generateName"), [3] = S("namespace"), [5] = S("uid"), [6] = S("resourceVersion"), [7] = I("generation"),
            [8] = new("creationTimestamp", K.Time), [9] = new("deletionTimestamp", K.Time), [10] = I("deletionGracePeriodSeconds"),
            [11] = new("labels", K.MapStr), [12] = new("annotations", K.MapStr), [13] = Ms("ownerReferences", "OwnerReference"), [14] = Ss("finalizers") },
        ["OwnerReference"] = new() { [1] = S("kind"), [3] = S("name"), [4] = S("uid"), [5] = S("apiVersion"), [6] = B("controller"), [7] = B("blockOwnerDeletion") },
        ["LabelSelector"] = new() { [1] = new("matchLabels", K.MapStr), [2] = Ms("matchExpressions", "LabelSelectorRequirement") },
        ["LabelSelectorRequirement"] = new() { [1] = S("key"), [2] = S("operator"), [3] = Ss("values") },
        ["DeleteOptions"] = new() { [1] = I("gracePeriodSeconds"), [2] = M("preconditions", "Preconditions"), [3] = B("orphanDependents"), [4] = S("propagationPolicy"), [5] = Ss("dryRun") },
        ["Preconditions"] = new() { [1] = S("uid"), [2] = S("resourceVersion") },
        ["Namespace"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "NamespaceSpec") },
        ["NamespaceSpec"] = new() { [1] = Ss("finalizers") },
        ["ConfigMap"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = new("data", K.MapStr), [3] = new("binaryData", K.MapBytes), [4] = B("immutable") },
        ["Secret"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = new("data", K.MapBytes), [3] = S("type"), [4] = new("stringData", K.MapStr), [5] = B("immutable") },
        ["ServiceAccount"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = Ms("secrets", "ObjectReference"), [3] = Ms("imagePullSecrets", "LocalObjectReference"), [4] = B("automountServiceAccountToken") },
        ["ObjectReference"] = new() { [1] = S("kind"), [2] = S("namespace"), [3] = S("name"), [4] = S("uid"), [5] = S("apiVersion"), [6] = S("resourceVersion"), [7] = S("fieldPath") },
        ["LocalObjectReference"] = new() { [1] = S("name") },
        ["Service"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "ServiceSpec") },
        ["ServiceSpec"] = new() { [1] = Ms("ports", "ServicePort"), [2] = new("selector", K.MapStr), [3] = S("clusterIP"), [4] = S("type"), [5] = Ss("externalIPs"),
            [7] = S("sessionAffinity"), [8] = S("loadBalancerIP"), [10] = S("externalName"), [11] = S("externalTrafficPolicy"), [13] = B("publishNotReadyAddresses"),
            [17] = S("ipFamilyPolicy"), [18] = Ss("clusterIPs"), [19] = Ss("ipFamilies"), [22] = S("internalTrafficPolicy") },
        ["ServicePort"] = new() { [1] = S("name"), [2] = S("protocol"), [3] = I("port"), [4] = new("targetPort", K.IntOrStr), [5] = I("nodePort"), [6] = S("appProtocol") },
        ["Pod"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "PodSpec") },
        ["PodTemplateSpec"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "PodSpec") },
        ["PodSpec"] = new() { [2] = Ms("containers", "Container"), [3] = S("restartPolicy"), [4] = I("terminationGracePeriodSeconds"), [5] = I("activeDeadlineSeconds"),
            [6] = S("dnsPolicy"), [7] = new("nodeSelector", K.MapStr), [8] = S("serviceAccountName"), [9] = S("serviceAccount"), [10] = S("nodeName"),
            [11] = B("hostNetwork"), [15] = Ms("imagePullSecrets", "LocalObjectReference"), [16] = S("hostname"), [17] = S("subdomain"), [19] = S("schedulerName"),
            [20] = Ms("initContainers", "Container"), [24] = S("priorityClassName"), [30] = B("enableServiceLinks") },
        ["Container"] = new() { [1] = S("name"), [2] = S("image"), [3] = Ss("command"), [4] = Ss("args"), [5] = S("workingDir"), [6] = Ms("ports", "ContainerPort"),
            [7] = Ms("env", "EnvVar"), [8] = M("resources", "ResourceRequirements"), [9] = Ms("volumeMounts", "VolumeMount"), [13] = S("terminationMessagePath"),
            [14] = S("imagePullPolicy"), [16] = B("stdin"), [17] = B("stdinOnce"), [18] = B("tty"), [20] = S("terminationMessagePolicy") },
        ["ContainerPort"] = new() { [1] = S("name"), [2] = I("hostPort"), [3] = I("containerPort"), [4] = S("protocol"), [5] = S("hostIP") },
        ["EnvVar"] = new() { [1] = S("name"), [2] = S("value"), [3] = M("valueFrom", "EnvVarSource") },
        ["EnvVarSource"] = new() { [1] = M("fieldRef", "ObjectFieldSelector"), [3] = M("configMapKeyRef", "KeySelector"), [4] = M("secretKeyRef", "KeySelector") },
        ["ObjectFieldSelector"] = new() { [1] = S("apiVersion"), [2] = S("fieldPath") },
        // ConfigMapKeySelector/SecretKeySelector embed LocalObjectReference (field 1) inline in JSON.
        ["KeySelector"] = new() { [1] = new("", K.Msg, false, "LocalObjectReference"), [2] = S("key"), [3] = B("optional") },
        ["ResourceRequirements"] = new() { [1] = new("limits", K.MapQty), [2] = new("requests", K.MapQty) },
        ["VolumeMount"] = new() { [1] = S("name"), [2] = B("readOnly"), [3] = S("mountPath"), [4] = S("subPath") },
        ["Deployment"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "DeploymentSpec") },
        ["DeploymentSpec"] = new() { [1] = I("replicas"), [2] = M("selector", "LabelSelector"), [3] = M("template", "PodTemplateSpec"), [4] = M("strategy", "DeploymentStrategy"),
            [5] = I("minReadySeconds"), [6] = I("revisionHistoryLimit"), [7] = B("paused"), [9] = I("progressDeadlineSeconds") },
        ["DeploymentStrategy"] = new() { [1] = S("type"), [2] = M("rollingUpdate", "RollingUpdateDeployment") },
        ["RollingUpdateDeployment"] = new() { [1] = new("maxUnavailable", K.IntOrStr), [2] = new("maxSurge", K.IntOrStr) },
        ["Job"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "JobSpec") },
        ["JobSpec"] = new() { [1] = I("parallelism"), [2] = I("completions"), [3] = I("activeDeadlineSeconds"), [4] = M("selector", "LabelSelector"), [5] = B("manualSelector"),
            [6] = M("template", "PodTemplateSpec"), [7] = I("backoffLimit"), [8] = I("ttlSecondsAfterFinished"), [9] = S("completionMode"), [10] = B("suspend") },
        ["CronJob"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "CronJobSpec") },
        ["CronJobSpec"] = new() { [1] = S("schedule"), [2] = I("startingDeadlineSeconds"), [3] = S("concurrencyPolicy"), [4] = B("suspend"), [5] = M("jobTemplate", "JobTemplateSpec"),
            [6] = I("successfulJobsHistoryLimit"), [7] = I("failedJobsHistoryLimit"), [8] = S("timeZone") },
        ["JobTemplateSpec"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "JobSpec") },
        ["Eviction"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("deleteOptions", "DeleteOptions") },
        // rbac.authorization.k8s.io/v1 (kubectl create role|clusterrole|rolebinding|clusterrolebinding)
        ["Role"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = Ms("rules", "PolicyRule") },
        ["ClusterRole"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = Ms("rules", "PolicyRule"), [3] = M("aggregationRule", "AggregationRule") },
        ["PolicyRule"] = new() { [1] = Ss("verbs"), [2] = Ss("apiGroups"), [3] = Ss("resources"), [4] = Ss("resourceNames"), [5] = Ss("nonResourceURLs") },
        ["AggregationRule"] = new() { [1] = Ms("clusterRoleSelectors", "LabelSelector") },
        ["RoleBinding"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = Ms("subjects", "Subject"), [3] = M("roleRef", "RoleRef") },
        ["ClusterRoleBinding"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = Ms("subjects", "Subject"), [3] = M("roleRef", "RoleRef") },
        ["Subject"] = new() { [1] = S("kind"), [2] = S("apiGroup"), [3] = S("name"), [4] = S("namespace") },
        ["RoleRef"] = new() { [1] = S("apiGroup"), [2] = S("kind"), [3] = S("name") },
        // authorization.k8s.io/v1 and authentication.k8s.io/v1 (kubectl auth can-i, auth whoami, create token)
        ["SelfSubjectAccessReview"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "SelfSubjectAccessReviewSpec") },
        ["SelfSubjectAccessReviewSpec"] = new() { [1] = M("resourceAttributes", "ResourceAttributes"), [2] = M("nonResourceAttributes", "NonResourceAttributes") },
        ["SubjectAccessReview"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "SubjectAccessReviewSpec") },
        ["LocalSubjectAccessReview"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "SubjectAccessReviewSpec") },
        ["SubjectAccessReviewSpec"] = new() { [1] = M("resourceAttributes", "ResourceAttributes"), [2] = M("nonResourceAttributes", "NonResourceAttributes"),
            [3] = S("user"), [4] = Ss("groups"), [6] = S("uid") },
        ["ResourceAttributes"] = new() { [1] = S("namespace"), [2] = S("verb"), [3] = S("group"), [4] = S("version"), [5] = S("resource"), [6] = S("subresource"), [7] = S("name") },
        ["NonResourceAttributes"] = new() { [1] = S("path"), [2] = S("verb") },
        ["SelfSubjectRulesReview"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "SelfSubjectRulesReviewSpec") },
        ["SelfSubjectRulesReviewSpec"] = new() { [1] = S("namespace") },
        ["SelfSubjectReview"] = new() { [1] = M("metadata", "ObjectMeta") },
        ["TokenRequest"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "TokenRequestSpec") },
        ["TokenRequestSpec"] = new() { [1] = Ss("audiences"), [3] = M("boundObjectRef", "BoundObjectReference"), [4] = I("expirationSeconds") },
        ["BoundObjectReference"] = new() { [1] = S("kind"), [2] = S("apiVersion"), [3] = S("name"), [4] = S("uid") },
        ["PodDisruptionBudget"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "PodDisruptionBudgetSpec") },
        ["PodDisruptionBudgetSpec"] = new() { [1] = new("minAvailable", K.IntOrStr), [2] = M("selector", "LabelSelector"), [3] = new("maxUnavailable", K.IntOrStr),
            [4] = S("unhealthyPodEvictionPolicy") },
        // core/v1 ResourceQuota (kubectl create quota) and LimitRange
        ["ResourceQuota"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "ResourceQuotaSpec"), [3] = M("status", "ResourceQuotaStatus") },
        ["ResourceQuotaSpec"] = new() { [1] = new("hard", K.MapQty), [2] = Ss("scopes"), [3] = M("scopeSelector", "ScopeSelector") },
        ["ScopeSelector"] = new() { [1] = Ms("matchExpressions", "ScopedResourceSelectorRequirement") },
        ["ScopedResourceSelectorRequirement"] = new() { [1] = S("scopeName"), [2] = S("operator"), [3] = Ss("values") },
        ["ResourceQuotaStatus"] = new() { [1] = new("hard", K.MapQty), [2] = new("used", K.MapQty) },
        ["LimitRange"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "LimitRangeSpec") },
        ["LimitRangeSpec"] = new() { [1] = Ms("limits", "LimitRangeItem") },
        ["LimitRangeItem"] = new() { [1] = S("type"), [2] = new("max", K.MapQty), [3] = new("min", K.MapQty), [4] = new("default", K.MapQty),
            [5] = new("defaultRequest", K.MapQty), [6] = new("maxLimitRequestRatio", K.MapQty) },
        // autoscaling/v2 (kubectl autoscale) and, under its own name, autoscaling/v1 (see SchemaOf)
        ["HorizontalPodAutoscaler"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "HorizontalPodAutoscalerSpec") },
        ["HorizontalPodAutoscalerSpec"] = new() { [1] = M("scaleTargetRef", "CrossVersionObjectReference"), [2] = I("minReplicas"), [3] = I("maxReplicas"),
            [4] = Ms("metrics", "MetricSpec"), [5] = M("behavior", "HorizontalPodAutoscalerBehavior") },
        ["CrossVersionObjectReference"] = new() { [1] = S("kind"), [2] = S("name"), [3] = S("apiVersion") },
        ["MetricSpec"] = new() { [1] = S("type"), [2] = M("object", "ObjectMetricSource"), [3] = M("pods", "PodsMetricSource"), [4] = M("resource", "ResourceMetricSource"),
            [5] = M("external", "ExternalMetricSource"), [7] = M("containerResource", "ContainerResourceMetricSource") },
        ["ResourceMetricSource"] = new() { [1] = S("name"), [2] = M("target", "MetricTarget") },
        ["ContainerResourceMetricSource"] = new() { [1] = S("name"), [2] = M("target", "MetricTarget"), [3] = S("container") },
        ["PodsMetricSource"] = new() { [1] = M("metric", "MetricIdentifier"), [2] = M("target", "MetricTarget") },
        ["ObjectMetricSource"] = new() { [1] = M("describedObject", "CrossVersionObjectReference"), [2] = M("target", "MetricTarget"), [3] = M("metric", "MetricIdentifier") },
        ["ExternalMetricSource"] = new() { [1] = M("metric", "MetricIdentifier"), [2] = M("target", "MetricTarget") },
        ["MetricIdentifier"] = new() { [1] = S("name"), [2] = M("selector", "LabelSelector") },
        ["MetricTarget"] = new() { [1] = S("type"), [2] = new("value", K.Qty), [3] = new("averageValue", K.Qty), [4] = I("averageUtilization") },
        ["HorizontalPodAutoscalerBehavior"] = new() { [1] = M("scaleUp", "HPAScalingRules"), [2] = M("scaleDown", "HPAScalingRules") },
        ["HPAScalingRules"] = new() { [1] = S("selectPolicy"), [2] = Ms("policies", "HPAScalingPolicy"), [3] = I("stabilizationWindowSeconds") },
        ["HPAScalingPolicy"] = new() { [1] = S("type"), [2] = I("value"), [3] = I("periodSeconds") },
        ["autoscaling/v1.HorizontalPodAutoscaler"] = new() { [1] = M("metadata", "ObjectMeta"), [2] = M("spec", "autoscaling/v1.HorizontalPodAutoscalerSpec") },
        ["autoscaling/v1.HorizontalPodAutoscalerSpec"] = new() { [1] = M("scaleTargetRef", "CrossVersionObjectReference"), [2] = I("minReplicas"), [3] = I("maxReplicas"),
            [4] = I("targetCPUUtilizationPercentage") },
    };

    /// <summary>The table entry of a kind at an apiVersion: kinds whose versions differ on the wire are keyed "apiVersion.Kind".</summary>
    static string SchemaOf(string apiVersion, string kind) => Schemas.ContainsKey(apiVersion + "." + kind) ? apiVersion + "." + kind : kind;

    // gogo-protobuf writes every non-pointer field, zero or not; Go's JSON drops them (omitempty). Zero
    // values are therefore dropped, except for the pointer fields below, where 0/false was set on purpose.
    static readonly HashSet<string> PointerFields =
    [
        "replicas", "parallelism", "completions", "backoffLimit", "revisionHistoryLimit", "progressDeadlineSeconds",
        "terminationGracePeriodSeconds", "activeDeadlineSeconds", "startingDeadlineSeconds", "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit", "ttlSecondsAfterFinished", "gracePeriodSeconds", "deletionGracePeriodSeconds",
        "suspend", "manualSelector", "automountServiceAccountToken", "immutable", "enableServiceLinks", "controller",
        "blockOwnerDeletion", "orphanDependents", "optional", "expirationSeconds",
        "minReplicas", "averageUtilization", "stabilizationWindowSeconds", "targetCPUUtilizationPercentage",
    ];

    /// <summary>Decodes an envelope; the object's kind must be one of the table's top-level messages.</summary>
    public static JsonObject Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4 || data[0] != 'k' || data[1] != '8' || data[2] != 's' || data[3] != 0)
            throw ApiException.BadRequest("protobuf body does not start with the Kubernetes magic number");
        var r = new Reader(data[4..].ToArray());
        string apiVersion = "", kind = "";
        byte[] raw = [];
        try
        {
            while (!r.End)
            {
                var (field, wire) = r.Tag();
                if (field == 1 && wire == 2)
                {
                    var tm = new Reader(r.Bytes());
                    while (!tm.End)
                    {
                        var (f, w) = tm.Tag();
                        if (f == 1 && w == 2) apiVersion = tm.String();
                        else if (f == 2 && w == 2) kind = tm.String();
                        else tm.Skip(w);
                    }
                }
                else if (field == 2 && wire == 2) raw = r.Bytes();
                else r.Skip(wire);
            }
            if (!Schemas.ContainsKey(kind) || kind.Contains("Spec") || kind is "ObjectMeta" or "Container" || kind.Contains('/'))
                throw ApiException.UnsupportedMediaType($"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (protobuf is supported for Namespace, ConfigMap, Secret, ServiceAccount, Service, Pod, Deployment, Job, CronJob, Eviction, PodDisruptionBudget, ResourceQuota, LimitRange, HorizontalPodAutoscaler, DeleteOptions, the RBAC kinds, access reviews and TokenRequest; not \"{kind}\")");
            var obj = Message(raw, SchemaOf(apiVersion, kind));
            obj.Remove("apiVersion");
            obj.Remove("kind");
            var result = new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind };
            foreach (var (k, v) in obj.ToList()) { obj.Remove(k); result[k] = v; }
            return result;
        }
        catch (IndexOutOfRangeException) { throw ApiException.BadRequest("truncated protobuf body"); }
        catch (ArgumentOutOfRangeException) { throw ApiException.BadRequest("truncated protobuf body"); }
    }

    static JsonObject Message(byte[] data, string type)
    {
        var schema = Schemas[type];
        var o = new JsonObject();
        var r = new Reader(data);
        while (!r.End)
        {
            var (number, wire) = r.Tag();
            if (!schema.TryGetValue(number, out var f)) { r.Skip(wire); continue; }
            JsonNode? value;
            switch (f.Kind)
            {
                case K.Str: value = r.String(); break;
                case K.Bytes: value = Convert.ToBase64String(r.Bytes()); break;
                case K.Int:
                    if (wire == 2 && f.Repeated) { r.Skip(wire); continue; }
                    value = (long)r.Varint(); break;
                case K.Bool: value = r.Varint() != 0; break;
                case K.Msg: value = Message(r.Bytes(), f.Msg!); break;
                case K.Time:
                    {
                        var t = new Reader(r.Bytes());
                        long secs = 0;
                        while (!t.End) { var (tf, tw) = t.Tag(); if (tf == 1) secs = (long)t.Varint(); else t.Skip(tw); }
                        value = secs == 0 ? null : Json.Time(DateTimeOffset.FromUnixTimeSeconds(secs));
                        break;
                    }
                case K.Qty:
                    value = QuantityString(r.Bytes()); break;
                case K.IntOrStr:
                    {
                        var t = new Reader(r.Bytes());
                        long type2 = 0, iv = 0; var sv = "";
                        while (!t.End)
                        {
                            var (tf, tw) = t.Tag();
                            if (tf == 1) type2 = (long)t.Varint();
                            else if (tf == 2) iv = (int)t.Varint();
                            else if (tf == 3) sv = t.String();
                            else t.Skip(tw);
                        }
                        value = type2 == 1 ? JsonValue.Create(sv) : JsonValue.Create(iv);
                        break;
                    }
                default:
                    {
                        var map = o[f.Name] as JsonObject ?? new JsonObject();
                        var e = new Reader(r.Bytes());
                        string key = "";
                        JsonNode? v = f.Kind == K.MapBytes ? "" : f.Kind == K.MapQty ? "0" : "";
                        while (!e.End)
                        {
                            var (ef, ew) = e.Tag();
                            if (ef == 1) key = e.String();
                            else if (ef == 2)
                                v = f.Kind switch
                                {
                                    K.MapBytes => Convert.ToBase64String(e.Bytes()),
                                    K.MapQty => QuantityString(e.Bytes()),
                                    _ => e.String(),
                                };
                            else e.Skip(ew);
                        }
                        map[key] = v;
                        o[f.Name] = map;
                        continue;
                    }
            }
            if (f.Name.Length == 0 && value is JsonObject inline)
            {
                foreach (var (k, v) in inline.ToList()) { inline.Remove(k); o[k] = v; }
                continue;
            }
            if (value is null) continue;
            if (!f.Repeated && !PointerFields.Contains(f.Name) && value is JsonValue jv &&
                ((jv.TryGetValue<string>(out var str) && str.Length == 0) || (jv.TryGetValue<long>(out var num) && num == 0) || (jv.TryGetValue<bool>(out var flag) && !flag)))
                continue;
            if (f.Repeated)
            {
                var arr = o[f.Name] as JsonArray ?? new JsonArray();
                arr.Add(value);
                o[f.Name] = arr;
            }
            else o[f.Name] = value;
        }
        return o;
    }

    static string QuantityString(byte[] b)
    {
        var r = new Reader(b);
        var s = "0";
        while (!r.End) { var (f, w) = r.Tag(); if (f == 1) s = r.String(); else r.Skip(w); }
        return s;
    }

    sealed class Reader(byte[] data)
    {
        int pos;
        public bool End => pos >= data.Length;

        public ulong Varint()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = data[pos++];
                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            throw ApiException.BadRequest("malformed protobuf varint");
        }

        public (int Field, int Wire) Tag()
        {
            var t = Varint();
            return ((int)(t >> 3), (int)(t & 7));
        }

        public byte[] Bytes()
        {
            var n = (int)Varint();
            if (n < 0 || pos + n > data.Length) throw ApiException.BadRequest("truncated protobuf body");
            var b = data.AsSpan(pos, n).ToArray();
            pos += n;
            return b;
        }

        public string String() => Encoding.UTF8.GetString(Bytes());

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: pos += 8; break;
                case 2: Bytes(); break;
                case 5: pos += 4; break;
                default: throw ApiException.BadRequest($"unsupported protobuf wire type {wire}");
            }
            if (pos > data.Length) throw ApiException.BadRequest("truncated protobuf body");
        }
    }
}
