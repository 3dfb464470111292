using System.Net;
using Berth.Cluster.Tests.Kubectl;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Berth.Cluster.Clients.Tests;

/// <summary>The official C# KubernetesClient reading and writing one HorizontalPodAutoscaler at autoscaling/v1 and autoscaling/v2.</summary>
public sealed class HorizontalPodAutoscalerClientTests(BerthServer s) : IClassFixture<BerthServer>
{
    Kubernetes Client() => new(KubernetesClientConfiguration.BuildConfigFromConfigFile(s.Kubeconfig));

    [Fact]
    public async Task V1_and_V2_models_read_the_same_object()
    {
        using var k = Client();
        const string ns = "hpa-client";
        await k.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } });
        var created = await k.AutoscalingV1.CreateNamespacedHorizontalPodAutoscalerAsync(new V1HorizontalPodAutoscaler
        {
            Metadata = new V1ObjectMeta { Name = "web" },
            Spec = new V1HorizontalPodAutoscalerSpec
            {
                ScaleTargetRef = new V1CrossVersionObjectReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = "web" },
                MinReplicas = 2, MaxReplicas = 5, TargetCPUUtilizationPercentage = 75,
            },
        }, ns);
        Assert.Equal("autoscaling/v1", created.ApiVersion);
        Assert.Equal(75, created.Spec.TargetCPUUtilizationPercentage);

        var v2 = await k.AutoscalingV2.ReadNamespacedHorizontalPodAutoscalerAsync("web", ns);
        Assert.Equal("autoscaling/v2", v2.ApiVersion);
        var metric = Assert.Single(v2.Spec.Metrics);
        Assert.Equal(("Resource", "cpu", "Utilization", 75), (metric.Type, metric.Resource.Name, metric.Resource.Target.Type, metric.Resource.Target.AverageUtilization));
        Assert.Equal((2, 5), (v2.Spec.MinReplicas, v2.Spec.MaxReplicas));

        // written at v2 (a second metric), read at v1: cpu in its field, the other in kube's annotation
        v2.Spec.Metrics.Add(new V2MetricSpec { Type = "Resource", Resource = new V2ResourceMetricSource { Name = "memory", Target = new V2MetricTarget { Type = "Utilization", AverageUtilization = 60 } } });
        await k.AutoscalingV2.ReplaceNamespacedHorizontalPodAutoscalerAsync(v2, "web", ns);
        var v1 = await k.AutoscalingV1.ReadNamespacedHorizontalPodAutoscalerAsync("web", ns);
        Assert.Equal(75, v1.Spec.TargetCPUUtilizationPercentage);
        Assert.Contains("\"memory\"", v1.Metadata.Annotations["autoscaling.alpha.kubernetes.io/metrics"]);

        var list = await k.AutoscalingV1.ListNamespacedHorizontalPodAutoscalerAsync(ns);
        Assert.Equal("web", Assert.Single(list.Items).Metadata.Name);
        var list2 = await k.AutoscalingV2.ListNamespacedHorizontalPodAutoscalerAsync(ns);
        Assert.Equal(2, Assert.Single(list2.Items).Spec.Metrics.Count);

        // invalid at v1: a Kubernetes Status naming the field
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => k.AutoscalingV1.CreateNamespacedHorizontalPodAutoscalerAsync(new V1HorizontalPodAutoscaler
        {
            Metadata = new V1ObjectMeta { Name = "bad" },
            Spec = new V1HorizontalPodAutoscalerSpec { ScaleTargetRef = new V1CrossVersionObjectReference { Kind = "Deployment", Name = "web" }, MinReplicas = 4, MaxReplicas = 3 },
        }, ns));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        Assert.Equal("Invalid", status.Reason);
        Assert.Equal("spec.maxReplicas", Assert.Single(status.Details.Causes).Field);

        await k.AutoscalingV1.DeleteNamespacedHorizontalPodAutoscalerAsync("web", ns);
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => k.AutoscalingV2.ReadNamespacedHorizontalPodAutoscalerAsync("web", ns));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
        await k.CoreV1.DeleteNamespaceAsync(ns);
    }
}
