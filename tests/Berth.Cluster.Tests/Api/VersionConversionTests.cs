using System.Text.Json.Nodes;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Api;

/// <summary>autoscaling/v1 ↔ v2 HorizontalPodAutoscaler conversion (kube's round-trip annotations) through the registry's conversion hooks.</summary>
public sealed class VersionConversionTests
{
    static readonly ResourceRegistry Registry = BuiltinResources.Create();
    static VersionConversion V1 => Registry.Find("autoscaling", "v1", "horizontalpodautoscalers")!.Conversion!;

    const string Full = """
        {"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"h","namespace":"n","annotations":{"keep":"me"}},
         "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"minReplicas":2,"maxReplicas":9,
          "metrics":[
           {"type":"Pods","pods":{"metric":{"name":"qps","selector":{"matchLabels":{"a":"b"}}},"target":{"type":"AverageValue","averageValue":"10"}}},
           {"type":"Object","object":{"describedObject":{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","name":"main"},"metric":{"name":"rps"},"target":{"type":"Value","value":"2k"}}},
           {"type":"External","external":{"metric":{"name":"queue"},"target":{"type":"AverageValue","averageValue":"30"}}},
           {"type":"ContainerResource","containerResource":{"name":"memory","container":"app","target":{"type":"Utilization","averageUtilization":60}}},
           {"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":50}}}],
          "behavior":{"scaleUp":{"stabilizationWindowSeconds":0,"selectPolicy":"Max","policies":[{"type":"Pods","value":4,"periodSeconds":15}]}}},
         "status":{"currentReplicas":3,"desiredReplicas":4,
          "currentMetrics":[{"type":"Resource","resource":{"name":"cpu","current":{"averageUtilization":40,"averageValue":"200m"}}}],
          "conditions":[{"type":"AbleToScale","status":"True","reason":"SucceededGetScale","message":"m","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}
        """;

    [Fact]
    public void V2_to_v1_to_v2_keeps_every_field()
    {
        var v2 = JsonNode.Parse(Full)!.AsObject();
        var v1 = V1.FromStorage(v2);
        Assert.Equal("autoscaling/v1", v1.Str("apiVersion"));
        Assert.Equal(50, v1.Long("spec.targetCPUUtilizationPercentage"));
        Assert.Equal(40, v1.Long("status.currentCPUUtilizationPercentage"));
        Assert.Null(v1["spec"]!["metrics"]);
        Assert.Null(v1["status"]!["conditions"]);
        var annotations = v1["metadata"]!["annotations"]!.AsObject();
        var others = JsonNode.Parse(annotations[Autoscaling.MetricsAnnotation]!.GetValue<string>())!.AsArray();
        Assert.Equal(["Pods", "Object", "External", "ContainerResource"], others.Select(m => m!.Str("type")));
        Assert.Equal(("qps", "10"), (others[0].Str("pods.metricName"), others[0].Str("pods.targetAverageValue")));
        Assert.Equal(("Ingress", "2k"), (others[1].Str("object.target.kind"), others[1].Str("object.targetValue")));
        Assert.Equal(60, others[3].Long("containerResource.targetAverageUtilization"));
        Assert.Equal("me", annotations["keep"]!.GetValue<string>());

        var back = V1.ToStorage(v1);
        Assert.True(JsonNode.DeepEquals(v2, back), $"round trip changed the object:\n{v2}\n{back}");
        Assert.Equal("autoscaling/v2", v2.Str("apiVersion")); // the input is not changed
    }

    [Fact]
    public void V1_without_a_target_is_the_default_cpu_metric_and_annotations_never_reach_storage()
    {
        var v1 = JsonNode.Parse("""
            {"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"h","annotations":{"autoscaling.alpha.kubernetes.io/conditions":"not json"}},
             "spec":{"scaleTargetRef":{"kind":"Deployment","name":"web"},"maxReplicas":3},"status":{"currentReplicas":1,"desiredReplicas":1,"currentCPUUtilizationPercentage":12}}
            """)!.AsObject();
        var v2 = V1.ToStorage(v1);
        var metric = Assert.Single(v2.Objects("spec.metrics"));
        Assert.Equal(("cpu", "Utilization", 80L), (metric.Str("resource.name"), metric.Str("resource.target.type"), metric.Long("resource.target.averageUtilization")));
        Assert.Equal(12, Assert.Single(v2.Objects("status.currentMetrics")).Long("resource.current.averageUtilization"));
        Assert.Null(v2["metadata"]!["annotations"]);
        Assert.Null(v2["status"]!["conditions"]);
    }
}
