using Berth.Cluster.Client;
using Berth.Cluster.Scheduling;
using k8s.Models;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Scheduling;

/// <summary>The scheduling algorithm against a hand-filled cache (no informers): filters, scores, messages.</summary>
public class SchedulerAlgorithmTests
{
    static Scheduler NewScheduler(params V1Node[] nodes)
    {
        var s = new Scheduler(new InMemoryClusterClient(), new SchedulerOptions { Parallelism = 1, Seed = 7 });
        foreach (var n in nodes) s.Cache.AddOrUpdateNode(n);
        return s;
    }

    static V1Pod WithAffinity(V1Pod p, V1Affinity a) { p.Spec.Affinity = a; return p; }

    [Fact]
    public void Fit_error_message_has_kube_schedulers_shape()
    {
        var s = NewScheduler(
            Node("a", memory: "1Gi"), Node("b", memory: "1Gi"),
            Node("c", taints: [new V1Taint { Key = "dedicated", Value = "gpu", Effect = "NoSchedule" }]));
        var r = s.FindNode(new PodInfo(Pod("big", memory: "2Gi")));
        Assert.Null(r.Node);
        Assert.Equal("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient memory. " +
                     "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod..",
            r.FailureMessage);
    }

    [Fact]
    public void Several_insufficient_resources_are_all_counted()
    {
        var s = NewScheduler(Node("a", cpu: "1", memory: "1Gi"));
        var r = s.FindNode(new PodInfo(Pod("p", cpu: "2", memory: "2Gi")));
        Assert.StartsWith("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.", r.FailureMessage);
    }

    [Fact]
    public void Too_many_pods_and_no_nodes()
    {
        Assert.Equal("no nodes available to schedule pods", NewScheduler().FindNode(new PodInfo(Pod("p"))).FailureMessage);
        var s = NewScheduler(Node("a", pods: "1"));
        s.Cache.AddOrUpdatePod(new PodInfo(Pod("x", nodeName: "a")));
        Assert.StartsWith("0/1 nodes are available: 1 Too many pods.", s.FindNode(new PodInfo(Pod("p"))).FailureMessage);
    }

    [Fact]
    public void Requests_count_assumed_pods()
    {
        var s = NewScheduler(Node("a", cpu: "1"));
        var p1 = new PodInfo(Pod("p1", cpu: "600m"));
        Assert.Equal("a", s.FindNode(p1).Node);
        s.Cache.AssumePod(p1, "a");
        Assert.Contains("Insufficient cpu", s.FindNode(new PodInfo(Pod("p2", cpu: "600m"))).FailureMessage);
        s.Cache.ForgetPod(p1.Uid);
        Assert.Equal("a", s.FindNode(new PodInfo(Pod("p2", cpu: "600m"))).Node);
    }

    [Fact]
    public void Unschedulable_node_is_skipped_unless_tolerated()
    {
        var s = NewScheduler(Node("cordoned", unschedulable: true));
        Assert.StartsWith("0/1 nodes are available: 1 node(s) were unschedulable.", s.FindNode(new PodInfo(Pod("p"))).FailureMessage);
        var p = Pod("t");
        p.Spec.Tolerations = [new V1Toleration { Key = "node.kubernetes.io/unschedulable", OperatorProperty = "Exists", Effect = "NoSchedule" }];
        Assert.Equal("cordoned", s.FindNode(new PodInfo(p)).Node);
    }

    [Theory]
    [InlineData("Equal", "gpu", "NoSchedule", true)]
    [InlineData("Equal", "cpu", "NoSchedule", false)]
    [InlineData("Exists", null, null, true)]
    [InlineData("Exists", null, "NoExecute", false)]
    public void Taints_need_matching_tolerations(string op, string? value, string? effect, bool fits)
    {
        var s = NewScheduler(Node("a", taints: [new V1Taint { Key = "dedicated", Value = "gpu", Effect = "NoSchedule" }]));
        var p = Pod("p");
        p.Spec.Tolerations = [new V1Toleration { Key = "dedicated", OperatorProperty = op, Value = value, Effect = effect }];
        Assert.Equal(fits ? "a" : null, s.FindNode(new PodInfo(p)).Node);
    }

    [Fact]
    public void Prefer_no_schedule_taint_scores_lower()
    {
        var s = NewScheduler(Node("tainted", taints: [new V1Taint { Key = "k", Value = "v", Effect = "PreferNoSchedule" }]), Node("clean"));
        for (int i = 0; i < 10; i++) Assert.Equal("clean", s.FindNode(new PodInfo(Pod("p" + i))).Node);
    }

    [Theory]
    [InlineData("In", new[] { "ssd", "nvme" }, "ssd")]
    [InlineData("NotIn", new[] { "ssd" }, "hdd")]
    [InlineData("Exists", new string[0], "ssd")]
    [InlineData("DoesNotExist", new string[0], "none")]
    public void Node_affinity_operators(string op, string[] values, string expect)
    {
        var s = NewScheduler(
            Node("ssd", labels: new() { ["disk"] = "ssd" }),
            Node("hdd", labels: new() { ["disk"] = "hdd" }),
            Node("none"));
        if (op == "Exists") s.Cache.RemoveNode("hdd");
        if (op == "NotIn") s.Cache.RemoveNode("none");
        var p = WithAffinity(Pod("p"), new V1Affinity
        {
            NodeAffinity = new V1NodeAffinity
            {
                RequiredDuringSchedulingIgnoredDuringExecution = Sel([new V1NodeSelectorTerm { MatchExpressions = [Req("disk", op, values.Length == 0 ? null : values)] }]),
            },
        });
        Assert.Equal(expect, s.FindNode(new PodInfo(p)).Node);
    }

    [Fact]
    public void Node_affinity_gt_lt_and_node_selector()
    {
        var s = NewScheduler(Node("small", labels: new() { ["cores"] = "4" }), Node("large", labels: new() { ["cores"] = "64", ["zone"] = "b" }));
        var gt = WithAffinity(Pod("gt"), new V1Affinity { NodeAffinity = new V1NodeAffinity { RequiredDuringSchedulingIgnoredDuringExecution = Sel([new V1NodeSelectorTerm { MatchExpressions = [Req("cores", "Gt", ["8"])] }]) } });
        Assert.Equal("large", s.FindNode(new PodInfo(gt)).Node);
        var lt = WithAffinity(Pod("lt"), new V1Affinity { NodeAffinity = new V1NodeAffinity { RequiredDuringSchedulingIgnoredDuringExecution = Sel([new V1NodeSelectorTerm { MatchExpressions = [Req("cores", "Lt", ["8"])] }]) } });
        Assert.Equal("small", s.FindNode(new PodInfo(lt)).Node);
        var sel = Pod("sel"); sel.Spec.NodeSelector = new Dictionary<string, string> { ["zone"] = "a" };
        Assert.StartsWith("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.", s.FindNode(new PodInfo(sel)).FailureMessage);
    }

    [Fact]
    public void Preferred_node_affinity_wins_the_score()
    {
        var s = NewScheduler(Node("a"), Node("b", labels: new() { ["fast"] = "yes" }), Node("c"));
        var p = WithAffinity(Pod("p"), new V1Affinity { NodeAffinity = new V1NodeAffinity { PreferredDuringSchedulingIgnoredDuringExecution = [Pref(new V1NodeSelectorTerm { MatchExpressions = [Req("fast", "In", ["yes"])] }, 50)] } });
        for (int i = 0; i < 5; i++) Assert.Equal("b", s.FindNode(new PodInfo(p)).Node);
    }

    [Fact]
    public void Least_allocated_prefers_the_emptier_node()
    {
        var s = NewScheduler(Node("busy"), Node("idle"));
        s.Cache.AddOrUpdatePod(new PodInfo(Pod("x", cpu: "3", memory: "20Gi", nodeName: "busy")));
        for (int i = 0; i < 5; i++) Assert.Equal("idle", s.FindNode(new PodInfo(Pod("p" + i))).Node);
    }

    static V1PodAffinityTerm Term(string app, string key = "kubernetes.io/hostname") =>
        new() { LabelSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = app } }, TopologyKey = key };

    [Fact]
    public void Required_anti_affinity_spreads_one_per_host()
    {
        var s = NewScheduler(Node("a"), Node("b"));
        var used = new HashSet<string>();
        for (int i = 0; i < 2; i++)
        {
            var p = new PodInfo(WithAffinity(Pod("w" + i, labels: new() { ["app"] = "web" }), new V1Affinity { PodAntiAffinity = new V1PodAntiAffinity { RequiredDuringSchedulingIgnoredDuringExecution = [Term("web")] } }));
            var r = s.FindNode(p);
            Assert.NotNull(r.Node);
            Assert.True(used.Add(r.Node!));
            s.Cache.AssumePod(p, r.Node!);
        }
        var third = new PodInfo(WithAffinity(Pod("w3", labels: new() { ["app"] = "web" }), new V1Affinity { PodAntiAffinity = new V1PodAntiAffinity { RequiredDuringSchedulingIgnoredDuringExecution = [Term("web")] } }));
        Assert.StartsWith("0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.", s.FindNode(third).FailureMessage);
        // A pod without terms is still kept off by the existing pods' anti-affinity when it matches them.
        Assert.StartsWith("0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules.",
            s.FindNode(new PodInfo(Pod("plain", labels: new() { ["app"] = "web" }))).FailureMessage);
        Assert.NotNull(s.FindNode(new PodInfo(Pod("other", labels: new() { ["app"] = "db" }))).Node);
    }

    [Fact]
    public void Required_affinity_follows_the_target_zone_and_allows_the_first_of_a_group()
    {
        var s = NewScheduler(Node("a1", labels: new() { ["zone"] = "a" }), Node("b1", labels: new() { ["zone"] = "b" }), Node("b2", labels: new() { ["zone"] = "b" }));
        var aff = new V1Affinity { PodAffinity = new V1PodAffinity { RequiredDuringSchedulingIgnoredDuringExecution = [Term("cache", "zone")] } };
        Assert.StartsWith("0/3 nodes are available: 3 node(s) didn't match pod affinity rules.", s.FindNode(new PodInfo(WithAffinity(Pod("web"), aff))).FailureMessage);
        // Self-matching first pod goes anywhere.
        Assert.NotNull(s.FindNode(new PodInfo(WithAffinity(Pod("c0", labels: new() { ["app"] = "cache" }), aff))).Node);
        s.Cache.AddOrUpdatePod(new PodInfo(Pod("cache", labels: new() { ["app"] = "cache" }, nodeName: "b1")));
        for (int i = 0; i < 6; i++) Assert.StartsWith("b", s.FindNode(new PodInfo(WithAffinity(Pod("web" + i), aff))).Node);
    }

    [Fact]
    public void Preferred_anti_affinity_avoids_the_host()
    {
        var s = NewScheduler(Node("a"), Node("b"));
        s.Cache.AddOrUpdatePod(new PodInfo(Pod("x", labels: new() { ["app"] = "web" }, nodeName: "a", cpu: null, memory: null)));
        var aff = new V1Affinity { PodAntiAffinity = new V1PodAntiAffinity { PreferredDuringSchedulingIgnoredDuringExecution = [WTerm(Term("web"), 100)] } };
        for (int i = 0; i < 5; i++) Assert.Equal("b", s.FindNode(new PodInfo(WithAffinity(Pod("p" + i, cpu: null, memory: null), aff))).Node);
    }

    [Fact]
    public void Topology_spread_do_not_schedule_respects_max_skew()
    {
        var s = NewScheduler(Node("a1", labels: new() { ["zone"] = "a" }), Node("b1", labels: new() { ["zone"] = "b" }), Node("nozone"));
        V1Pod Spread(string n)
        {
            var p = Pod(n, labels: new() { ["app"] = "s" });
            p.Spec.TopologySpreadConstraints = [new V1TopologySpreadConstraint { MaxSkew = 1, TopologyKey = "zone", WhenUnsatisfiable = "DoNotSchedule", LabelSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "s" } } }];
            return p;
        }
        var counts = new Dictionary<string, int>();
        for (int i = 0; i < 6; i++)
        {
            var p = new PodInfo(Spread("s" + i));
            var r = s.FindNode(p);
            Assert.NotNull(r.Node);
            Assert.NotEqual("nozone", r.Node);
            counts[r.Node!] = counts.GetValueOrDefault(r.Node!) + 1;
            s.Cache.AssumePod(p, r.Node!);
        }
        Assert.Equal(3, counts["a1"]);
        Assert.Equal(3, counts["b1"]);
        // Zone b is cordoned by a taint the pod does not tolerate; skew would go to 2 in zone a.
        s.Cache.AddOrUpdateNode(Node("b1", labels: new() { ["zone"] = "b" }, taints: [new V1Taint { Key = "x", Effect = "NoSchedule" }]));
        s.Cache.AddOrUpdatePod(new PodInfo(Pod("extra", labels: new() { ["app"] = "s" }, nodeName: "a1")));
        var msg = s.FindNode(new PodInfo(Spread("last"))).FailureMessage;
        Assert.StartsWith("0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) didn't match pod topology spread constraints (missing required label), 1 node(s) had untolerated taint {x: }.", msg);
    }

    [Fact]
    public void Preemption_nominates_a_node_with_lower_priority_victims()
    {
        var s = NewScheduler(Node("a", cpu: "1"), Node("b", cpu: "1"));
        s.Cache.AddOrUpdatePod(new PodInfo(Pod("lowA", cpu: "900m", nodeName: "a", priority: 10)));
        s.Cache.AddOrUpdatePod(new PodInfo(Pod("highB", cpu: "900m", nodeName: "b", priority: 1000)));
        var r = s.FindNode(new PodInfo(Pod("vip", cpu: "500m", priority: 100)));
        Assert.Null(r.Node);
        Assert.Equal("a", r.NominatedNode);
        var never = Pod("polite", cpu: "500m", priority: 100); never.Spec.PreemptionPolicy = "Never";
        Assert.EndsWith("preemption: not eligible due to preemptionPolicy=Never..", s.FindNode(new PodInfo(never)).FailureMessage);
    }

    [Fact]
    public void Node_ports_conflict()
    {
        var s = NewScheduler(Node("a"));
        V1Pod WithPort(string n) { var p = Pod(n); p.Spec.Containers[0].Ports = [new V1ContainerPort { ContainerPort = 80, HostPort = 8080 }]; return p; }
        s.Cache.AddOrUpdatePod(new PodInfo(WithPort("x") is var x ? Set(x, "a") : x));
        Assert.StartsWith("0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.", s.FindNode(new PodInfo(WithPort("y"))).FailureMessage);
        static V1Pod Set(V1Pod p, string n) { p.Spec.NodeName = n; return p; }
    }

    [Fact]
    public void Adaptive_percentage_of_nodes_to_score()
    {
        var s = NewScheduler();
        Assert.Equal(50, s.NumFeasibleNodesToFind(50));
        Assert.Equal(500, s.NumFeasibleNodesToFind(5000));   // 50 - 5000/125 = 10 %
        Assert.Equal(750, s.NumFeasibleNodesToFind(2500));   // 30 %
        Assert.Equal(100, s.NumFeasibleNodesToFind(150));    // at least 100
        Assert.Equal(5000, s.NumFeasibleNodesToFind(100_000)); // at least 5 %
    }

    [Fact]
    public void Round_robin_start_and_parallel_filter_find_enough_nodes()
    {
        var nodes = Enumerable.Range(0, 3000).Select(i => Node("n" + i)).ToArray();
        var s = new Scheduler(new InMemoryClusterClient(), new SchedulerOptions { Parallelism = 2, ParallelFilterThreshold = 0, Seed = 1 });
        foreach (var n in nodes) s.Cache.AddOrUpdateNode(n);
        var seen = new HashSet<string>();
        for (int i = 0; i < 200; i++)
        {
            var p = new PodInfo(Pod("p" + i));
            var r = s.FindNode(p);
            Assert.NotNull(r.Node);
            Assert.True(r.FeasibleNodes >= s.NumFeasibleNodesToFind(3000));
            s.Cache.AssumePod(p, r.Node!);
            seen.Add(r.Node!);
        }
        Assert.True(seen.Count > 150, $"pods should spread, got {seen.Count} nodes");
    }
}
