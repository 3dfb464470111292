using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>
/// autoscaling HorizontalPodAutoscaler, served at autoscaling/v2 (the storage and preferred version) and
/// autoscaling/v1 through <see cref="VersionConversion"/>, as kube-apiserver serves it: v1's
/// targetCPUUtilizationPercentage is v2's cpu Utilization metric; what v1 cannot say (other metrics,
/// their current values, behavior, conditions) travels in the autoscaling.alpha.kubernetes.io/*
/// annotations, which are never stored or shown at v2.
/// </summary>
public static class Autoscaling
{
    public const string MetricsAnnotation = "autoscaling.alpha.kubernetes.io/metrics";
    public const string CurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics";
    public const string ConditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions";
    public const string BehaviorAnnotation = "autoscaling.alpha.kubernetes.io/behavior";
    static readonly string[] RoundTripAnnotations = [MetricsAnnotation, CurrentMetricsAnnotation, ConditionsAnnotation, BehaviorAnnotation];

    /// <summary>The CPU utilization a HorizontalPodAutoscaler without metrics targets (kube's DefaultCPUUtilization).</summary>
    public const int DefaultCpuUtilization = 80;

    public static void Add(ResourceRegistry r)
    {
        var v2 = new ResourceType
        {
            Group = "autoscaling", Version = "v2", Kind = "HorizontalPodAutoscaler", Plural = "horizontalpodautoscalers", ShortNames = ["hpa"], Categories = ["all"],
            HasStatus = true, ResetStatusOnCreate = true, Default = DefaultV2, Validate = Validate,
            Columns =
            [
                new("Name", "string", "Name must be unique within a namespace.", (o, _) => o.Str("metadata.name"), 0, "name"),
                new("Reference", "string", "Reference is the target of the autoscaler.", (o, _) => $"{o.Str("spec.scaleTargetRef.kind")}/{o.Str("spec.scaleTargetRef.name")}"),
                new("Targets", "string", "Targets is the metrics the autoscaler scales on, current/target.", (o, _) => Targets(o)),
                new("MinPods", "string", "MinPods is the lower limit for the number of pods.", (o, _) => o.Long("spec.minReplicas") is { } min ? min.ToString() : "<unset>"),
                new("MaxPods", "integer", "MaxPods is the upper limit for the number of pods.", (o, _) => o.Long("spec.maxReplicas") ?? 0),
                new("Replicas", "integer", "Replicas is the current number of pods managed by the autoscaler.", (o, _) => o.Long("status.currentReplicas") ?? 0),
                new("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created.", (o, now) => Json.Age(o, now)),
            ],
        };
        r.Add(v2); // first: the group's preferred version
        r.Add(new ResourceType
        {
            Group = "autoscaling", Version = "v1", Kind = "HorizontalPodAutoscaler", Plural = "horizontalpodautoscalers", ShortNames = ["hpa"], Categories = ["all"],
            HasStatus = true, ResetStatusOnCreate = true, Columns = v2.Columns,
            Conversion = new VersionConversion(v2, V1ToV2, V2ToV1),
        });
    }

    // ---- defaults and validation (at the storage version; a v1 object is converted first) ----

    static void DefaultV2(JsonObject o)
    {
        var spec = o.Obj("spec");
        spec.Default("minReplicas", 1);
        if (spec.Arr("metrics").Count == 0) spec["metrics"] = new JsonArray(CpuMetric(DefaultCpuUtilization));
        if (spec["behavior"] is JsonObject behavior)
        {
            // kube's GenerateHPAScaleUpRules / GenerateHPAScaleDownRules: a given behavior has every part filled
            var up = behavior.Obj("scaleUp");
            up.Default("stabilizationWindowSeconds", 0);
            up.Default("selectPolicy", "Max");
            up.Default("policies", new JsonArray(Policy("Pods", 4, 15), Policy("Percent", 100, 15)));
            var down = behavior.Obj("scaleDown");
            down.Default("stabilizationWindowSeconds", 300);
            down.Default("selectPolicy", "Max");
            down.Default("policies", new JsonArray(Policy("Percent", 100, 15)));
        }
        o.Obj("status").Default("desiredReplicas", 0);
    }

    static JsonObject Policy(string type, int value, int period) => new() { ["type"] = type, ["value"] = value, ["periodSeconds"] = period };

    static JsonObject CpuMetric(long utilization) => new()
    {
        ["type"] = "Resource",
        ["resource"] = new JsonObject { ["name"] = "cpu", ["target"] = new JsonObject { ["type"] = "Utilization", ["averageUtilization"] = utilization } },
    };

    static readonly string[] MetricTypes = ["ContainerResource", "External", "Object", "Pods", "Resource"];
    static readonly string[] TargetTypes = ["AverageValue", "Utilization", "Value"];

    /// <summary>kube's ValidateHorizontalPodAutoscaler (spec part): replica bounds, the scale target, the metrics.</summary>
    static void Validate(JsonObject o, JsonObject? old, List<FieldError> e)
    {
        var min = o.Long("spec.minReplicas");
        var max = o.Long("spec.maxReplicas") ?? 0;
        if (min is < 1) e.Add(FieldError.Invalid("spec.minReplicas", min.Value, "must be greater than or equal to 1"));
        if (max < 1) e.Add(FieldError.Invalid("spec.maxReplicas", max, "must be greater than 0"));
        if (min is { } mn && max < mn) e.Add(FieldError.Invalid("spec.maxReplicas", max, "must be greater than or equal to `minReplicas`"));
        var refErrors = e.Count;
        foreach (var f in new[] { "kind", "name" })
        {
            var v = o.Str("spec.scaleTargetRef." + f);
            if (string.IsNullOrEmpty(v)) e.Add(FieldError.Required("spec.scaleTargetRef." + f));
            else if (v is "." or ".." || v.Contains('/') || v.Contains('%'))
                e.Add(FieldError.Invalid("spec.scaleTargetRef." + f, v, v is "." or ".." ? $"may not be '{v}'" : v.Contains('/') ? "may not contain '/'" : "may not contain '%'"));
        }
        if (e.Count > refErrors) return; // kube checks the metrics only with a valid reference
        var i = 0;
        foreach (var m in o.Objects("spec.metrics"))
        {
            var path = $"spec.metrics[{i++}]";
            var type = m.Str("type");
            if (string.IsNullOrEmpty(type)) { e.Add(FieldError.Required(path + ".type", "must specify a metric source type")); continue; }
            if (!MetricTypes.Contains(type)) { e.Add(FieldError.NotSupported(path + ".type", type, MetricTypes)); continue; }
            var key = char.ToLowerInvariant(type[0]) + type[1..];
            if (m[key] is not JsonObject source) { e.Add(FieldError.Required($"{path}.{key}", $"must populate information for the given metric source")); continue; }
            if (type is "Resource" or "ContainerResource" && string.IsNullOrEmpty(source.Str("name")))
                e.Add(FieldError.Required($"{path}.{key}.name", "must specify a resource name"));
            if (type is "Pods" or "Object" or "External" && string.IsNullOrEmpty(source.Str("metric.name")))
                e.Add(FieldError.Required($"{path}.{key}.metric.name", "must specify a metric name"));
            var target = source["target"] as JsonObject;
            var ttype = target.Str("type");
            if (string.IsNullOrEmpty(ttype)) e.Add(FieldError.Required($"{path}.{key}.target.type", "must specify a metric target type"));
            else if (!TargetTypes.Contains(ttype)) e.Add(FieldError.NotSupported($"{path}.{key}.target.type", ttype, TargetTypes));
            if (target.Long("averageUtilization") is { } u && u < 1) e.Add(FieldError.Invalid($"{path}.{key}.target.averageUtilization", u, "must be greater than 0"));
        }
    }

    /// <summary>The TARGETS column as kube's printer writes it ("cpu: &lt;unknown&gt;/80%", at most two, "+ N more...").</summary>
    static string Targets(JsonObject o)
    {
        var specs = o.Objects("spec.metrics").ToList();
        if (specs.Count == 0) return "<none>";
        var statuses = o.Arr("status.currentMetrics");
        var list = new List<string>();
        for (var i = 0; i < specs.Count; i++)
        {
            var spec = specs[i];
            var status = i < statuses.Count ? statuses[i] : null;
            list.Add(spec.Str("type") switch
            {
                "External" or "Object" when spec.Str(Key(spec) + ".target.averageValue") is { } avg =>
                    $"{status.Str(Key(spec) + ".current.averageValue") ?? "<unknown>"}/{avg} (avg)",
                "External" or "Object" => $"{status.Str(Key(spec) + ".current.value") ?? "<unknown>"}/{spec.Str(Key(spec) + ".target.value")}",
                "Pods" => $"{status.Str("pods.current.averageValue") ?? "<unknown>"}/{spec.Str("pods.target.averageValue")}",
                "Resource" or "ContainerResource" when spec.Str(Key(spec) + ".target.averageValue") is { } avg =>
                    $"{spec.Str(Key(spec) + ".name")}: {status.Str(Key(spec) + ".current.averageValue") ?? "<unknown>"}/{avg}",
                "Resource" or "ContainerResource" =>
                    $"{spec.Str(Key(spec) + ".name")}: {(status.Long(Key(spec) + ".current.averageUtilization") is { } cu ? cu + "%" : "<unknown>")}/" +
                    (spec.Long(Key(spec) + ".target.averageUtilization") is { } tu ? tu + "%" : "<auto>"),
                _ => "<unknown type>",
            });
        }
        return list.Count > 2 ? $"{string.Join(", ", list.Take(2))} + {list.Count - 2} more..." : string.Join(", ", list);

        static string Key(JsonObject m) => m.Str("type") is { Length: > 0 } t ? char.ToLowerInvariant(t[0]) + t[1..] : "";
    }

    // ---- conversion ----

    static bool IsCpuUtilization(JsonObject m) =>
        m.Str("type") == "Resource" && m.Str("resource.name") == "cpu" && m.Long("resource.target.averageUtilization") is not null;

    /// <summary>autoscaling/v2 → autoscaling/v1 (kube's Convert_autoscaling_HorizontalPodAutoscaler_To_v1).</summary>
    static JsonObject V2ToV1(JsonObject o)
    {
        o["apiVersion"] = "autoscaling/v1";
        var annotations = o["metadata"]?["annotations"] as JsonObject;
        foreach (var a in RoundTripAnnotations) annotations?.Remove(a);
        var extra = new JsonObject();
        if (o["spec"] is JsonObject spec)
        {
            var metrics = spec.Objects("metrics").ToList();
            spec.Remove("metrics");
            if (metrics.FirstOrDefault(IsCpuUtilization) is { } cpu) spec["targetCPUUtilizationPercentage"] = cpu.Long("resource.target.averageUtilization");
            var others = metrics.Where(m => !IsCpuUtilization(m)).Select(m => (JsonNode?)MetricToV1(m, status: false)).ToArray();
            if (others.Length > 0) extra[MetricsAnnotation] = new JsonArray(others).ToJsonString();
            if (spec["behavior"] is JsonObject behavior) { extra[BehaviorAnnotation] = behavior.ToJsonString(); spec.Remove("behavior"); }
        }
        if (o["status"] is JsonObject status)
        {
            // v1 writes both counts even when zero
            status.Default("currentReplicas", 0);
            status.Default("desiredReplicas", 0);
            var current = status.Objects("currentMetrics").ToList();
            status.Remove("currentMetrics");
            if (current.FirstOrDefault(m => m.Str("type") == "Resource" && m.Str("resource.name") == "cpu" && m.Long("resource.current.averageUtilization") is not null) is { } cpu)
                status["currentCPUUtilizationPercentage"] = cpu.Long("resource.current.averageUtilization");
            // all of them (a cpu status keeps its raw value here too), as kube does
            if (current.Count > 0) extra[CurrentMetricsAnnotation] = new JsonArray(current.Select(m => (JsonNode?)MetricToV1(m, status: true)).ToArray()).ToJsonString();
            if (status["conditions"] is JsonArray { Count: > 0 } conditions) extra[ConditionsAnnotation] = conditions.ToJsonString();
            status.Remove("conditions");
        }
        if (extra.Count > 0)
        {
            annotations = o.Meta().Obj("annotations");
            foreach (var (k, v) in extra) annotations[k] = v!.DeepClone();
        }
        else if (annotations is { Count: 0 }) o.Meta().Remove("annotations");
        return o;
    }

    /// <summary>autoscaling/v1 → autoscaling/v2 (kube's Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler).</summary>
    static JsonObject V1ToV2(JsonObject o)
    {
        o["apiVersion"] = "autoscaling/v2";
        var annotations = o["metadata"]?["annotations"] as JsonObject;
        var spec = o["spec"] as JsonObject;
        if (spec is not null)
        {
            var metrics = new JsonArray();
            foreach (var m in ParseArray(annotations, MetricsAnnotation)) metrics.Add((JsonNode)MetricToV2(m, status: false));
            if (spec.Long("targetCPUUtilizationPercentage") is { } cpu) metrics.Add((JsonNode)CpuMetric(cpu));
            spec.Remove("targetCPUUtilizationPercentage");
            // v1 had an implicit 80% cpu target; v2 has it explicitly
            spec["metrics"] = metrics.Count > 0 ? metrics : new JsonArray(CpuMetric(DefaultCpuUtilization));
            if (annotations?[BehaviorAnnotation]?.GetValue<string>() is { } b && TryParse(b) is JsonObject behavior) spec["behavior"] = behavior;
        }
        var status = o["status"] as JsonObject;
        if (status is not null)
        {
            var current = status.Long("currentCPUUtilizationPercentage");
            status.Remove("currentCPUUtilizationPercentage");
            var fromAnnotation = ParseArray(annotations, CurrentMetricsAnnotation);
            if (annotations?.ContainsKey(CurrentMetricsAnnotation) == true) status["currentMetrics"] = new JsonArray(fromAnnotation.Select(m => (JsonNode?)MetricToV2(m, status: true)).ToArray());
            else if (current is { } c)
                status["currentMetrics"] = new JsonArray(new JsonObject { ["type"] = "Resource", ["resource"] = new JsonObject { ["name"] = "cpu", ["current"] = new JsonObject { ["averageUtilization"] = c } } });
            if (annotations?[ConditionsAnnotation]?.GetValue<string>() is { } cs && TryParse(cs) is JsonArray conditions) status["conditions"] = conditions;
        }
        if (annotations is not null)
        {
            foreach (var a in RoundTripAnnotations) annotations.Remove(a);
            if (annotations.Count == 0) o.Meta().Remove("annotations");
        }
        return o;
    }

    static JsonNode? TryParse(string s)
    {
        try { return JsonNode.Parse(s); }
        catch (System.Text.Json.JsonException) { return null; } // kube ignores an annotation it cannot parse
    }

    static List<JsonObject> ParseArray(JsonObject? annotations, string key) =>
        annotations?[key] is JsonValue v && v.TryGetValue<string>(out var s) && TryParse(s) is JsonArray a ? a.OfType<JsonObject>().ToList() : [];

    /// <summary>
    /// Where each v2 MetricSpec field is in v1's (v2beta1-shaped) MetricSpec, by metric type (v2 path, v1 path);
    /// a MetricStatus maps the same way with "current" for "target" (<see cref="StatusPath"/>).
    /// </summary>
    static readonly Dictionary<string, (string V2, string V1)[]> SpecFields = new()
    {
        ["Resource"] = [("resource.name", "resource.name"), ("resource.target.averageUtilization", "resource.targetAverageUtilization"), ("resource.target.averageValue", "resource.targetAverageValue")],
        ["ContainerResource"] = [("containerResource.name", "containerResource.name"), ("containerResource.container", "containerResource.container"),
            ("containerResource.target.averageUtilization", "containerResource.targetAverageUtilization"), ("containerResource.target.averageValue", "containerResource.targetAverageValue")],
        ["Pods"] = [("pods.metric.name", "pods.metricName"), ("pods.metric.selector", "pods.selector"), ("pods.target.averageValue", "pods.targetAverageValue")],
        ["Object"] = [("object.describedObject", "object.target"), ("object.metric.name", "object.metricName"), ("object.metric.selector", "object.selector"),
            ("object.target.value", "object.targetValue"), ("object.target.averageValue", "object.averageValue")],
        ["External"] = [("external.metric.name", "external.metricName"), ("external.metric.selector", "external.metricSelector"),
            ("external.target.value", "external.targetValue"), ("external.target.averageValue", "external.targetAverageValue")],
    };

    static (string V2, string V1) StatusPath((string V2, string V1) p) =>
        (p.V2.Replace(".target.", ".current."), p.V1.Replace("targetAverage", "currentAverage").Replace("targetValue", "currentValue"));

    static IEnumerable<(string V2, string V1)> Fields(string type, bool status) =>
        SpecFields.TryGetValue(type, out var f) ? status ? f.Select(StatusPath) : f : [];

    static void Set(JsonObject root, string path, JsonNode value)
    {
        var parts = path.Split('.');
        var o = root;
        foreach (var p in parts[..^1]) o = o.Obj(p);
        o[parts[^1]] = value;
    }

    /// <summary>A v2 MetricSpec or MetricStatus in v1's form.</summary>
    static JsonObject MetricToV1(JsonObject m, bool status)
    {
        var type = m.Str("type") ?? "";
        var r = new JsonObject { ["type"] = type };
        foreach (var (v2, v1) in Fields(type, status))
            if (m.At(v2) is { } v) Set(r, v1, v.DeepClone());
        return r;
    }

    /// <summary>A v1 MetricSpec or MetricStatus as v2 (a spec's target type from the fields given, as kube's conversion sets it).</summary>
    static JsonObject MetricToV2(JsonObject m, bool status)
    {
        var type = m.Str("type") ?? "";
        var r = new JsonObject { ["type"] = type };
        foreach (var (v2, v1) in Fields(type, status))
            if (m.At(v1) is { } v) Set(r, v2, v.DeepClone());
        if (!SpecFields.ContainsKey(type)) return r;
        var key = char.ToLowerInvariant(type[0]) + type[1..];
        if (status) { r.Obj(key).Default("current", new JsonObject()); return r; }
        var target = r.Obj(key).Obj("target");
        target["type"] = target["averageUtilization"] is not null ? "Utilization" : target["averageValue"] is not null || type == "Pods" ? "AverageValue" : "Value";
        // v2's order: type first
        var rest = target.Where(kv => kv.Key != "type").Select(kv => (kv.Key, Value: kv.Value?.DeepClone())).ToList();
        foreach (var (k, _) in rest) target.Remove(k);
        foreach (var (k, v) in rest) target[k] = v;
        return r;
    }
}
