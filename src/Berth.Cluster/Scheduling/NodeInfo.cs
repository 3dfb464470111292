using k8s.Models;

namespace Berth.Cluster.Scheduling;

/// <summary>
/// One node and the aggregates the filters need, kept up to date incrementally as pods are added,
/// assumed and removed: requested resources, the pods, the pods that carry affinity terms, host ports.
/// Owned by the scheduler's thread.
/// </summary>
public sealed class NodeInfo
{
    public V1Node? Node { get; private set; }
    public string Name { get; }
    public IDictionary<string, string>? Labels { get; private set; }
    public V1Taint[] Taints { get; private set; } = [];
    public bool Unschedulable { get; private set; }
    public Resource Allocatable;
    public Resource Requested;
    public long NonZeroMilliCpu;
    public long NonZeroMemory;
    public readonly List<PodInfo> Pods = [];
    public readonly List<PodInfo> PodsWithAffinity = [];
    public readonly List<PodInfo> PodsWithRequiredAntiAffinity = [];
    public HashSet<(string Protocol, string Ip, int Port)>? UsedPorts;
    public HashSet<string>? Images;
    /// <summary>Bumped on every change.</summary>
    public long Generation { get; private set; }
    internal int ListIndex = -1;

    public NodeInfo(string name) => Name = name;

    public void SetNode(V1Node node)
    {
        Node = node;
        Labels = node.Metadata?.Labels;
        Taints = node.Spec?.Taints is { } t ? [.. t] : [];
        Unschedulable = node.Spec?.Unschedulable == true;
        Allocatable = Resource.From(node.Status?.Allocatable ?? node.Status?.Capacity);
        if (node.Status?.Images is { Count: > 0 } imgs)
        {
            Images = [];
            foreach (var i in imgs) if (i.Names is not null) foreach (var n in i.Names) Images.Add(n);
        }
        else Images = null;
        Generation++;
    }

    internal void ClearNode() { Node = null; Generation++; }

    public void AddPod(PodInfo p)
    {
        Pods.Add(p);
        Requested.Add(p.Requests);
        NonZeroMilliCpu += p.NonZeroMilliCpu;
        NonZeroMemory += p.NonZeroMemory;
        if (p.HasAffinity) PodsWithAffinity.Add(p);
        if (p.RequiredAntiAffinity.Length > 0) PodsWithRequiredAntiAffinity.Add(p);
        foreach (var hp in p.HostPorts) (UsedPorts ??= []).Add(hp);
        Generation++;
    }

    public bool RemovePod(string uid)
    {
        for (int i = 0; i < Pods.Count; i++)
        {
            var p = Pods[i];
            if (p.Uid != uid) continue;
            Pods[i] = Pods[^1];
            Pods.RemoveAt(Pods.Count - 1);
            Requested.Sub(p.Requests);
            NonZeroMilliCpu -= p.NonZeroMilliCpu;
            NonZeroMemory -= p.NonZeroMemory;
            if (p.HasAffinity) RemoveFrom(PodsWithAffinity, uid);
            if (p.RequiredAntiAffinity.Length > 0) RemoveFrom(PodsWithRequiredAntiAffinity, uid);
            if (p.HostPorts.Length > 0 && UsedPorts is not null)
            {
                UsedPorts.Clear();
                foreach (var q in Pods) foreach (var hp in q.HostPorts) UsedPorts.Add(hp);
            }
            Generation++;
            return true;
        }
        return false;
    }

    static void RemoveFrom(List<PodInfo> list, string uid)
    {
        for (int i = 0; i < list.Count; i++)
            if (list[i].Uid == uid) { list.RemoveAt(i); return; }
    }

    /// <summary>A copy with its own aggregates (preemption's what-if); shares the immutable PodInfos.</summary>
    public NodeInfo CloneForSimulation()
    {
        var c = new NodeInfo(Name) { Node = Node, Labels = Labels, Taints = Taints, Unschedulable = Unschedulable, Allocatable = Allocatable.Clone(), Images = Images };
        foreach (var p in Pods) c.AddPod(p);
        return c;
    }
}
