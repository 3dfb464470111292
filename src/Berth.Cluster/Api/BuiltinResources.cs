using System.Text.Json.Nodes;

namespace Berth.Cluster.Api;

/// <summary>The built-in kinds: one <see cref="ResourceType"/> each (columns as kubectl prints them).</summary>
public static class BuiltinResources
{
    static TableColumn NameCol => new("Name", "string", "Name must be unique within a namespace.", (o, _) => o.Str("metadata.name"), 0, "name");
    static TableColumn AgeCol => new("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created.", (o, now) => Json.Age(o, now));
    static TableColumn Col(string name, Func<JsonObject, object?> cell, int priority = 0, string type = "string") =>
        new(name, type, name, (o, _) => Cell(cell(o)), priority);

    static JsonNode? Cell(object? v) => v switch
    {
        null => null,
        string s => JsonValue.Create(s),
        long l => JsonValue.Create(l),
        int i => JsonValue.Create(i),
        bool b => JsonValue.Create(b),
        JsonNode n => n,
        _ => JsonValue.Create(v.ToString()),
    };

    static string None(string? s) => string.IsNullOrEmpty(s) ? "<none>" : s;
    static string Unknown(string? s) => string.IsNullOrEmpty(s) ? "<unknown>" : s;

    /// <summary>Access modes as kubectl abbreviates them (RWO,ROX,RWX,RWOP).</summary>
    static string AccessModes(JsonArray modes) => string.Join(",", modes.Select(m => m?.GetValue<string>() switch
    {
        "ReadWriteOnce" => "RWO", "ReadOnlyMany" => "ROX", "ReadWriteMany" => "RWX", "ReadWriteOncePod" => "RWOP", var x => x,
    }));

    static JsonNode? Without(JsonNode? o, params string[] keys)
    {
        if (o is not JsonObject obj) return o;
        var copy = obj.DeepClone().AsObject();
        foreach (var k in keys) copy.Remove(k);
        return copy;
    }

    public static ResourceRegistry Create()
    {
        var r = new ResourceRegistry();
        // core/v1
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "Namespace", Plural = "namespaces", ShortNames = ["ns"], Namespaced = false,
            HasStatus = true, ExtraSubresources = ["finalize"], NameRule = Validation.CheckDns1123Label, CanDeleteCollection = false,
            OnCreate = o => o.Obj("spec").Default("finalizers", new JsonArray("kubernetes")),
            Default = o =>
            {
                o.Meta().Obj("labels")["kubernetes.io/metadata.name"] = o.Str("metadata.name")!;
                o.Obj("status").Default("phase", "Active");
            },
            Columns = [NameCol, Col("Status", o => o.Str("status.phase")), AgeCol],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "Node", Plural = "nodes", ShortNames = ["no"], Namespaced = false, HasStatus = true,
            Columns = [NameCol, Col("Status", NodeStatus), Col("Roles", NodeRoles), AgeCol, Col("Version", o => o.Str("status.nodeInfo.kubeletVersion") ?? ""),
                Col("Internal-IP", o => None(o.Objects("status.addresses").FirstOrDefault(a => a.Str("type") == "InternalIP")?.Str("address")), 1),
                Col("External-IP", o => None(o.Objects("status.addresses").FirstOrDefault(a => a.Str("type") == "ExternalIP")?.Str("address")), 1),
                Col("OS-Image", o => Unknown(o.Str("status.nodeInfo.osImage")), 1),
                Col("Kernel-Version", o => Unknown(o.Str("status.nodeInfo.kernelVersion")), 1),
                Col("Container-Runtime", o => Unknown(o.Str("status.nodeInfo.containerRuntimeVersion")), 1)],
            FieldSelectors = ["spec.unschedulable"],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "Pod", Plural = "pods", ShortNames = ["po"], Categories = ["all"], HasStatus = true,
            ExtraSubresources = ["attach", "binding", "eviction", "exec", "log", "portforward", "proxy"], ResetStatusOnCreate = true,
            OnCreate = o => AdmitPod(o.Obj("spec")),
            Default = o =>
            {
                DefaultPodSpec(o.Obj("spec"));
                PodQos.DefaultRequestsFromLimits(o.Obj("spec"));
                var st = o.Obj("status");
                st.Default("phase", "Pending");
                if (st["qosClass"] is null) st["qosClass"] = PodQos.Class(o["spec"] as JsonObject);
                SyncIps(st, "podIP", "podIPs");
                SyncIps(st, "hostIP", "hostIPs");
            },
            Validate = (o, old, e) => ValidatePodSpec(o["spec"] as JsonObject, "spec", e),
            Columns = [NameCol, Col("Ready", PodReady), Col("Status", PodStatus), Col("Restarts", PodRestarts, 0, "string"), AgeCol,
                Col("IP", o => None(o.Str("status.podIP")), 1), Col("Node", o => None(o.Str("spec.nodeName")), 1),
                Col("Nominated Node", o => None(o.Str("status.nominatedNodeName")), 1), Col("Readiness Gates", o => "<none>", 1)],
            FieldSelectors = ["spec.nodeName", "status.phase", "spec.schedulerName", "spec.restartPolicy", "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "Service", Plural = "services", ShortNames = ["svc"], Categories = ["all"], HasStatus = true,
            NameRule = Validation.CheckDns1035Label,
            Default = o =>
            {
                var spec = o.Obj("spec");
                spec.Default("type", "ClusterIP");
                spec.Default("sessionAffinity", "None");
                spec.Default("internalTrafficPolicy", "Cluster");
                spec.Default("ipFamilies", new JsonArray("IPv4"));
                spec.Default("ipFamilyPolicy", "SingleStack");
                foreach (var p in spec.Objects("ports"))
                {
                    p.Default("protocol", "TCP");
                    if (p["targetPort"] is null && p["port"] is not null) p["targetPort"] = p["port"]!.DeepClone();
                }
                o.Obj("status").Default("loadBalancer", new JsonObject());
            },
            Validate = ValidateService,
            Columns = [NameCol, Col("Type", o => o.Str("spec.type")), Col("Cluster-IP", o => None(o.Str("spec.clusterIP"))),
                Col("External-IP", o => o.Str("spec.type") == "LoadBalancer" ? "<pending>" : "<none>"),
                Col("Port(s)", ServicePorts), AgeCol, Col("Selector", o => Selector(o["spec"]?["selector"] as JsonObject), 1)],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "Endpoints", Plural = "endpoints", ShortNames = ["ep"], Fields = ["subsets"],
            Columns = [NameCol, Col("Endpoints", EndpointsCell), AgeCol],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "ConfigMap", Plural = "configmaps", ShortNames = ["cm"],
            Validate = (o, _, e) => ValidateDataKeys(o, e),
            Fields = ["data", "binaryData", "immutable"],
            Columns = [NameCol, Col("Data", o => (o["data"] as JsonObject)?.Count + (o["binaryData"] as JsonObject)?.Count ?? (o["data"] as JsonObject)?.Count ?? 0, 0, "integer"), AgeCol],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "Secret", Plural = "secrets",
            Default = o =>
            {
                o.Default("type", "Opaque");
                // stringData is write-only: merged into data (base64) as the API server does.
                if (o["stringData"] is JsonObject sd)
                {
                    var data = o.Obj("data");
                    foreach (var (k, v) in sd) data[k] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(v?.GetValue<string>() ?? ""));
                    o.Remove("stringData");
                }
            },
            Validate = (o, _, e) => ValidateDataKeys(o, e),
            Fields = ["data", "stringData", "type", "immutable"],
            Columns = [NameCol, Col("Type", o => o.Str("type")), Col("Data", o => (o["data"] as JsonObject)?.Count ?? 0, 0, "integer"), AgeCol],
            FieldSelectors = ["type"],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "Event", Plural = "events", ShortNames = ["ev"],
            Fields = ["involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type", "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance"],
            Columns = [.. EventColumns.All],
            FieldSelectors = ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "ServiceAccount", Plural = "serviceaccounts", ShortNames = ["sa"],
            Fields = ["secrets", "imagePullSecrets", "automountServiceAccountToken"], ExtraSubresources = ["token"],
            Columns = [NameCol, Col("Secrets", o => o.Arr("secrets").Count, 0, "integer"), AgeCol],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "PersistentVolumeClaim", Plural = "persistentvolumeclaims", ShortNames = ["pvc"], HasStatus = true, ResetStatusOnCreate = true,
            Default = o => o.Obj("status").Default("phase", "Pending"),
            OnCreate = o => o.Obj("spec").Default("volumeMode", "Filesystem"),
            Validate = (o, old, e) =>
            {
                if (o.Arr("spec.accessModes").Count == 0) e.Add(FieldError.Required("spec.accessModes"));
                foreach (var m in o.Arr("spec.accessModes"))
                    if (m?.GetValue<string>() is not ("ReadWriteOnce" or "ReadOnlyMany" or "ReadWriteMany" or "ReadWriteOncePod") and var bad)
                        e.Add(FieldError.NotSupported("spec.accessModes", bad, ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]));
                if (o.Str("spec.resources.requests.storage") is null) e.Add(FieldError.Required("spec.resources[storage]"));
                if (old is not null && !JsonNode.DeepEquals(Without(o["spec"], "resources", "volumeName", "volumeAttributesClassName"), Without(old["spec"], "resources", "volumeName", "volumeAttributesClassName")))
                    e.Add(new FieldError("spec", "FieldValueForbidden", "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"));
            },
            Columns = [NameCol, Col("Status", o => o.Str("status.phase")), Col("Volume", o => o.Str("spec.volumeName") ?? ""),
                Col("Capacity", o => o.Str("status.capacity.storage") ?? ""), Col("Access Modes", o => AccessModes(o.Arr("status.accessModes"))),
                Col("StorageClass", o => None(o.Str("spec.storageClassName"))), Col("VolumeAttributesClass", o => None(o.Str("spec.volumeAttributesClassName"))), AgeCol,
                Col("VolumeMode", o => o.Str("spec.volumeMode") ?? "Filesystem", 1)],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "PersistentVolume", Plural = "persistentvolumes", ShortNames = ["pv"], Namespaced = false, HasStatus = true, ResetStatusOnCreate = true,
            // no volume binder runs here: a new volume is Available, as the PV controller would mark it
            Default = o => o.Obj("status").Default("phase", "Available"),
            OnCreate = o => { o.Obj("spec").Default("persistentVolumeReclaimPolicy", "Retain"); o.Obj("spec").Default("volumeMode", "Filesystem"); },
            Validate = (o, old, e) =>
            {
                if (o.Arr("spec.accessModes").Count == 0) e.Add(FieldError.Required("spec.accessModes"));
                if (o.Str("spec.capacity.storage") is null) e.Add(FieldError.Required("spec.capacity"));
            },
            Columns = [NameCol, Col("Capacity", o => o.Str("spec.capacity.storage") ?? ""), Col("Access Modes", o => AccessModes(o.Arr("spec.accessModes"))),
                Col("Reclaim Policy", o => o.Str("spec.persistentVolumeReclaimPolicy")), Col("Status", o => o.Str("status.phase")),
                Col("Claim", o => o.Str("spec.claimRef.name") is { } c ? $"{o.Str("spec.claimRef.namespace")}/{c}" : ""),
                Col("StorageClass", o => None(o.Str("spec.storageClassName"))), Col("VolumeAttributesClass", o => None(o.Str("spec.volumeAttributesClassName"))),
                Col("Reason", o => o.Str("status.reason") ?? ""), AgeCol, Col("VolumeMode", o => o.Str("spec.volumeMode") ?? "Filesystem", 1)],
        });
        // core/v1 ResourceQuota and LimitRange: enforced by the admission chain (Api/Admission), status kept by the quota controller
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "ResourceQuota", Plural = "resourcequotas", ShortNames = ["quota"], HasStatus = true, ResetStatusOnCreate = true,
            Default = Admission.PolicyTypes.DefaultQuota, Validate = Admission.PolicyTypes.ValidateQuota,
            Columns = [NameCol, AgeCol, Col("Request", o => Admission.PolicyTypes.QuotaCell(o, false)), Col("Limit", o => Admission.PolicyTypes.QuotaCell(o, true))],
        });
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "LimitRange", Plural = "limitranges", ShortNames = ["limits"], Fields = ["spec"],
            Default = Admission.PolicyTypes.DefaultLimitRange, Validate = Admission.PolicyTypes.ValidateLimitRange,
            Columns = [NameCol, new("Created At", "date", "Created At", (o, _) => o.Str("metadata.creationTimestamp"))],
        });
        // Served so that `kubectl apply --prune` finds every kind of its default allow-list; no
        // replication controller runs (ReplicaSets are the workload controllers here).
        r.Add(new ResourceType
        {
            Group = "", Version = "v1", Kind = "ReplicationController", Plural = "replicationcontrollers", ShortNames = ["rc"], Categories = ["all"],
            HasStatus = true, HasScale = true, TracksGeneration = true, ResetStatusOnCreate = true,
            Default = o =>
            {
                var spec = o.Obj("spec");
                spec.Default("replicas", 1);
                if (spec["template"]?["spec"] is JsonObject ps) DefaultPodSpec(ps);
                // the selector defaults to the template's labels, as the API server does
                if (spec["selector"] is null && spec["template"]?["metadata"]?["labels"] is JsonObject tl) spec["selector"] = tl.DeepClone();
                o.Obj("status").Default("replicas", 0);
            },
            Columns = [NameCol, Col("Desired", o => o.Long("spec.replicas") ?? 0, 0, "integer"), Col("Current", o => o.Long("status.replicas") ?? 0, 0, "integer"),
                Col("Ready", o => o.Long("status.readyReplicas") ?? 0, 0, "integer"), AgeCol,
                Col("Containers", Containers, 1), Col("Images", Images, 1), Col("Selector", o => Selector(o["spec"]?["selector"] as JsonObject), 1)],
        });
        // apps/v1
        r.Add(Workload("Deployment", "deployments", ["deploy"],
            [NameCol, Col("Ready", o => $"{o.Long("status.readyReplicas") ?? 0}/{o.Long("spec.replicas") ?? 0}"),
             Col("Up-to-date", o => o.Long("status.updatedReplicas") ?? 0, 0, "integer"), Col("Available", o => o.Long("status.availableReplicas") ?? 0, 0, "integer"), AgeCol,
             Col("Containers", Containers, 1), Col("Images", Images, 1), Col("Selector", o => LabelSelectorString(o["spec"]?["selector"] as JsonObject), 1)],
            spec =>
            {
                spec.Default("replicas", 1);
                var strategy = spec.Obj("strategy");
                strategy.Default("type", "RollingUpdate");
                if (strategy.Str("type") == "RollingUpdate")
                {
                    var ru = strategy.Obj("rollingUpdate");
                    ru.Default("maxUnavailable", "25%");
                    ru.Default("maxSurge", "25%");
                }
                spec.Default("revisionHistoryLimit", 10);
                spec.Default("progressDeadlineSeconds", 600);
            }));
        r.Add(Workload("ReplicaSet", "replicasets", ["rs"],
            [NameCol, Col("Desired", o => o.Long("spec.replicas") ?? 0, 0, "integer"), Col("Current", o => o.Long("status.replicas") ?? 0, 0, "integer"),
             Col("Ready", o => o.Long("status.readyReplicas") ?? 0, 0, "integer"), AgeCol,
             Col("Containers", Containers, 1), Col("Images", Images, 1), Col("Selector", o => LabelSelectorString(o["spec"]?["selector"] as JsonObject), 1)],
            spec => spec.Default("replicas", 1)));
        r.Add(Workload("DaemonSet", "daemonsets", ["ds"],
            [NameCol, Col("Desired", o => o.Long("status.desiredNumberScheduled") ?? 0, 0, "integer"), Col("Current", o => o.Long("status.currentNumberScheduled") ?? 0, 0, "integer"),
             Col("Ready", o => o.Long("status.numberReady") ?? 0, 0, "integer"), Col("Up-to-date", o => o.Long("status.updatedNumberScheduled") ?? 0, 0, "integer"),
             Col("Available", o => o.Long("status.numberAvailable") ?? 0, 0, "integer"), Col("Node Selector", o => Selector(o["spec"]?["template"]?["spec"]?["nodeSelector"] as JsonObject)), AgeCol,
             Col("Containers", Containers, 1), Col("Images", Images, 1), Col("Selector", o => LabelSelectorString(o["spec"]?["selector"] as JsonObject), 1)],
            spec =>
            {
                var strategy = spec.Obj("updateStrategy");
                strategy.Default("type", "RollingUpdate");
                if (strategy.Str("type") == "RollingUpdate")
                {
                    var ru = strategy.Obj("rollingUpdate");
                    ru.Default("maxUnavailable", 1);
                    ru.Default("maxSurge", 0);
                }
                spec.Default("revisionHistoryLimit", 10);
            }, scale: false));
        r.Add(Workload("StatefulSet", "statefulsets", ["sts"],
            [NameCol, Col("Ready", o => $"{o.Long("status.readyReplicas") ?? 0}/{o.Long("spec.replicas") ?? 0}"), AgeCol,
             Col("Containers", Containers, 1), Col("Images", Images, 1)],
            spec =>
            {
                spec.Default("replicas", 1);
                spec.Default("podManagementPolicy", "OrderedReady");
                var strategy = spec.Obj("updateStrategy");
                strategy.Default("type", "RollingUpdate");
                if (strategy.Str("type") == "RollingUpdate") strategy.Obj("rollingUpdate").Default("partition", 0);
                spec.Default("revisionHistoryLimit", 10);
                spec.Default("persistentVolumeClaimRetentionPolicy", new JsonObject { ["whenDeleted"] = "Retain", ["whenScaled"] = "Retain" });
            }));
        r.Add(new ResourceType
        {
            Group = "apps", Version = "v1", Kind = "ControllerRevision", Plural = "controllerrevisions", Fields = ["data", "revision"],
            Validate = (o, old, e) =>
            {
                if (o.Long("revision") is null or < 0) e.Add(new FieldError("revision", "FieldValueInvalid", $"Invalid value: {o.Long("revision") ?? 0}: must be greater than or equal to 0"));
                if (old is not null && !JsonNode.DeepEquals(o["data"], old["data"])) e.Add(new FieldError("data", "FieldValueForbidden", "Forbidden: field is immutable"));
            },
            Columns = [NameCol, Col("Controller", o => o.Objects("metadata.ownerReferences").FirstOrDefault(r => r.Bool("controller") == true) is { } c
                    ? $"{c.Str("kind")?.ToLowerInvariant()}.{c.Str("apiVersion")?.Split('/')[0]}/{c.Str("name")}" : "<none>"),
                Col("Revision", o => o.Long("revision") ?? 0, 0, "integer"), AgeCol],
        });
        // batch/v1
        r.Add(new ResourceType
        {
            Group = "batch", Version = "v1", Kind = "Job", Plural = "jobs", Categories = ["all"], HasStatus = true, TracksGeneration = true, ResetStatusOnCreate = true,
            Default = DefaultJob,
            Validate = (o, old, e) =>
            {
                ValidatePodSpec(o["spec"]?["template"]?["spec"] as JsonObject, "spec.template.spec", e);
                var rp = o.Str("spec.template.spec.restartPolicy");
                if (rp is not ("OnFailure" or "Never")) e.Add(FieldError.NotSupported("spec.template.spec.restartPolicy", rp, ["OnFailure", "Never"]));
                ValidateJobSpec(o, "spec", e);
            },
            Columns = [NameCol, Col("Status", JobStatus), Col("Completions", o => o.Long("spec.completions") is { } n ? $"{o.Long("status.succeeded") ?? 0}/{n}"
                    : o.Long("spec.parallelism") is > 1 and var p ? $"{o.Long("status.succeeded") ?? 0}/1 of {p}" : $"{o.Long("status.succeeded") ?? 0}/1"),
                Col("Duration", JobDuration), AgeCol, Col("Containers", Containers, 1), Col("Images", Images, 1),
                Col("Selector", o => LabelSelectorString(o["spec"]?["selector"] as JsonObject), 1)],
        });
        r.Add(new ResourceType
        {
            Group = "batch", Version = "v1", Kind = "CronJob", Plural = "cronjobs", ShortNames = ["cj"], Categories = ["all"], HasStatus = true, TracksGeneration = true,
            NameRule = n => n.Length > 52 ? "must be no more than 52 characters" : Validation.CheckDns1123Subdomain(n),
            Default = o =>
            {
                var spec = o.Obj("spec");
                spec.Default("concurrencyPolicy", "Allow");
                spec.Default("suspend", false);
                spec.Default("successfulJobsHistoryLimit", 3);
                spec.Default("failedJobsHistoryLimit", 1);
                if (spec["jobTemplate"]?["spec"]?["template"]?["spec"] is JsonObject ps) DefaultPodSpec(ps);
            },
            Validate = (o, old, e) =>
            {
                if (string.IsNullOrWhiteSpace(o.Str("spec.schedule"))) e.Add(FieldError.Required("spec.schedule"));
                else if (Controllers.CronSchedule.Validate(o.Str("spec.schedule")!) is { } why) e.Add(FieldError.Invalid("spec.schedule", o.Str("spec.schedule"), why));
                if (o.Str("spec.timeZone") is { } tz && !KnownTimeZone(tz)) e.Add(FieldError.Invalid("spec.timeZone", tz, $"unknown time zone {tz}"));
                foreach (var f in new[] { "startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit" })
                    if (o.Long("spec." + f) is < 0 and var n) e.Add(new FieldError("spec." + f, "FieldValueInvalid", $"Invalid value: {n}: must be greater than or equal to 0"));
                if (o.Str("spec.concurrencyPolicy") is { } cp and not ("Allow" or "Forbid" or "Replace")) e.Add(FieldError.NotSupported("spec.concurrencyPolicy", cp, ["Allow", "Forbid", "Replace"]));
                if (o["spec"]?["jobTemplate"]?["spec"] is JsonObject) ValidateJobSpec(o, "spec.jobTemplate.spec", e);
                ValidatePodSpec(o["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"] as JsonObject, "spec.jobTemplate.spec.template.spec", e);
            },
            Columns = [NameCol, Col("Schedule", o => o.Str("spec.schedule")), Col("Timezone", o => None(o.Str("spec.timeZone"))),
                Col("Suspend", o => o.Bool("spec.suspend") == true ? "True" : "False"), Col("Active", o => o.Arr("status.active").Count, 0, "integer"),
                new("Last Schedule", "string", "Last Schedule", (o, now) => Json.ParseTime(o.Str("status.lastScheduleTime")) is { } t ? Json.HumanDuration(now - t) : "<none>"), AgeCol,
                Col("Containers", o => string.Join(",", o.Objects("spec.jobTemplate.spec.template.spec.containers").Select(c => c.Str("name"))), 1),
                Col("Images", o => string.Join(",", o.Objects("spec.jobTemplate.spec.template.spec.containers").Select(c => c.Str("image"))), 1)],
        });
        r.Add(new ResourceType
        {
            Group = "discovery.k8s.io", Version = "v1", Kind = "EndpointSlice", Plural = "endpointslices", Fields = ["addressType", "endpoints", "ports"],
            Columns = [NameCol, Col("AddressType", o => o.Str("addressType")),
                Col("Ports", o => o.Arr("ports").Count == 0 ? "<unset>" : string.Join(",", o.Objects("ports").Select(p => p.Long("port")?.ToString() ?? "<unset>"))),
                Col("Endpoints", o => { var a = o.Objects("endpoints").SelectMany(e => e.Arr("addresses").Select(x => x?.GetValue<string>())).ToList(); return a.Count == 0 ? "<unset>" : string.Join(",", a.Take(3)) + (a.Count > 3 ? $" + {a.Count - 3} more..." : ""); }),
                AgeCol],
            Validate = (o, _, e) => { if (o.Str("addressType") is not ("IPv4" or "IPv6" or "FQDN")) e.Add(FieldError.NotSupported("addressType", o.Str("addressType"), ["IPv4", "IPv6", "FQDN"])); },
        });
        // networking.k8s.io/v1 Ingress: stored and shown (no ingress controller runs here)
        r.Add(new ResourceType
        {
            Group = "networking.k8s.io", Version = "v1", Kind = "Ingress", Plural = "ingresses", ShortNames = ["ing"], HasStatus = true,
            Columns = [NameCol, Col("Class", o => None(o.Str("spec.ingressClassName"))),
                Col("Hosts", o => o.Objects("spec.rules").Select(r => r.Str("host")).Where(h => !string.IsNullOrEmpty(h)).ToList() is { Count: > 0 } hosts
                    ? string.Join(",", hosts.Take(4)) + (hosts.Count > 4 ? $" + {hosts.Count - 4} more..." : "") : "*"),
                Col("Address", o => string.Join(",", o.Objects("status.loadBalancer.ingress").Select(i => i.Str("ip") ?? i.Str("hostname")).Where(a => !string.IsNullOrEmpty(a)))),
                Col("Ports", o => o.Arr("spec.tls").Count > 0 ? "80, 443" : "80"), AgeCol],
        });
        // policy/v1 PodDisruptionBudget: the disruption controller keeps its status, evictions honour it
        r.Add(new ResourceType
        {
            Group = "policy", Version = "v1", Kind = "PodDisruptionBudget", Plural = "poddisruptionbudgets", ShortNames = ["pdb"],
            HasStatus = true, TracksGeneration = true, ResetStatusOnCreate = true,
            Default = o =>
            {
                var st = o.Obj("status");
                foreach (var f in new[] { "disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods" }) st.Default(f, 0);
            },
            Columns = [NameCol, Col("Min Available", o => IntOrString(o["spec"]?["minAvailable"]) ?? "N/A"), Col("Max Unavailable", o => IntOrString(o["spec"]?["maxUnavailable"]) ?? "N/A"),
                new("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time.", (o, _) => o.Long("status.disruptionsAllowed") ?? 0), AgeCol],
        });
        r.Add(new ResourceType
        {
            Group = "coordination.k8s.io", Version = "v1", Kind = "Lease", Plural = "leases",
            Columns = [NameCol, Col("Holder", o => o.Str("spec.holderIdentity") ?? ""), AgeCol],
        });
        // reviews: answered by ApiHandler.ReviewAsync, never stored
        r.Add(new ResourceType { Group = "authentication.k8s.io", Version = "v1", Kind = "SelfSubjectReview", Plural = "selfsubjectreviews", Namespaced = false, CreateOnly = true });
        r.Add(new ResourceType { Group = "authorization.k8s.io", Version = "v1", Kind = "SelfSubjectAccessReview", Plural = "selfsubjectaccessreviews", Namespaced = false, CreateOnly = true });
        r.Add(new ResourceType { Group = "authorization.k8s.io", Version = "v1", Kind = "SelfSubjectRulesReview", Plural = "selfsubjectrulesreviews", CreateOnly = true });
        r.Add(new ResourceType { Group = "authorization.k8s.io", Version = "v1", Kind = "SubjectAccessReview", Plural = "subjectaccessreviews", Namespaced = false, CreateOnly = true });
        r.Add(new ResourceType { Group = "authorization.k8s.io", Version = "v1", Kind = "LocalSubjectAccessReview", Plural = "localsubjectaccessreviews", CreateOnly = true });
        Autoscaling.Add(r);
        RbacResources.Add(r);
        return r;
    }

    static ResourceType Workload(string kind, string plural, string[] shortNames, TableColumn[] columns, Action<JsonObject> defaultSpec, bool scale = true) => new()
    {
        Group = "apps", Version = "v1", Kind = kind, Plural = plural, ShortNames = shortNames, Categories = ["all"],
        HasStatus = true, HasScale = scale, TracksGeneration = true, ResetStatusOnCreate = true,
        Default = o =>
        {
            var spec = o.Obj("spec");
            defaultSpec(spec);
            if (spec["template"]?["spec"] is JsonObject ps) DefaultPodSpec(ps);
        },
        Validate = ValidateWorkload,
        Columns = columns,
    };

    // ---- defaulting ----

    /// <summary>
    /// status.podIP and podIPs (hostIP and hostIPs) say the same thing, as the API server's conversion keeps
    /// them: the list follows the single field when they differ or the list is missing, and the single field
    /// is the list's first entry.
    /// </summary>
    static void SyncIps(JsonObject status, string single, string list)
    {
        var ip = status.Str(single);
        var first = (status[list] as JsonArray)?.FirstOrDefault() is JsonObject f ? f.Str("ip") : null;
        if (!string.IsNullOrEmpty(ip) && ip != first) status[list] = new JsonArray(new JsonObject { ["ip"] = ip });
        else if (string.IsNullOrEmpty(ip) && !string.IsNullOrEmpty(first)) status[single] = first;
    }

    /// <summary>
    /// What Kubernetes' admission plugins add to a new pod: ServiceAccount (serviceAccountName "default";
    /// no token volume: nothing here mounts one), Priority (priority 0 and PreemptLowerPriority without a
    /// priority class) and DefaultTolerationSeconds (tolerate not-ready and unreachable nodes for 300 s).
    /// </summary>
    static void AdmitPod(JsonObject spec)
    {
        if (string.IsNullOrEmpty(spec.Str("serviceAccountName"))) spec["serviceAccountName"] = spec.Str("serviceAccount") is { Length: > 0 } sa ? sa : "default";
        spec["serviceAccount"] = spec.Str("serviceAccountName");
        if (string.IsNullOrEmpty(spec.Str("priorityClassName"))) spec.Default("priority", 0);
        spec.Default("preemptionPolicy", "PreemptLowerPriority");
        var tolerations = spec["tolerations"] as JsonArray;
        foreach (var key in new[] { "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable" })
        {
            if (tolerations?.OfType<JsonObject>().Any(t => (t.Str("key") == key || t.Str("key") is null && t.Str("operator") == "Exists") && t.Str("effect") is null or "" or "NoExecute") == true) continue;
            if (tolerations is null) spec["tolerations"] = tolerations = [];
            tolerations.Add((JsonNode)new JsonObject
            {
                ["key"] = key, ["operator"] = "Exists", ["effect"] = "NoExecute", ["tolerationSeconds"] = 300,
            });
        }
    }

    public static void DefaultPodSpec(JsonObject spec)
    {
        spec.Default("restartPolicy", "Always");
        spec.Default("terminationGracePeriodSeconds", 30);
        spec.Default("dnsPolicy", "ClusterFirst");
        spec.Default("securityContext", new JsonObject());
        spec.Default("schedulerName", "default-scheduler");
        spec.Default("enableServiceLinks", true);
        foreach (var list in new[] { "initContainers", "containers" })
            foreach (var c in spec.Objects(list))
            {
                c.Default("terminationMessagePath", "/dev/termination-log");
                c.Default("terminationMessagePolicy", "File");
                c.Default("resources", new JsonObject());
                if (c["imagePullPolicy"] is null)
                {
                    var image = c.Str("image") ?? "";
                    var lastPart = image[(image.LastIndexOf('/') + 1)..];
                    var tagged = lastPart.Contains(':') || image.Contains('@');
                    c["imagePullPolicy"] = !tagged || lastPart.EndsWith(":latest", StringComparison.Ordinal) ? "Always" : "IfNotPresent";
                }
                foreach (var p in c.Objects("ports")) p.Default("protocol", "TCP");
            }
    }

    static void DefaultJob(JsonObject o)
    {
        var spec = o.Obj("spec");
        spec.Default("parallelism", 1);
        spec.Default("completions", 1);
        spec.Default("backoffLimit", 6);
        spec.Default("completionMode", "NonIndexed");
        spec.Default("suspend", false);
        spec.Default("podReplacementPolicy", "TerminatingOrFailed");
        if (spec.Bool("manualSelector") != true && o.Str("metadata.uid") is { } uid && spec["selector"] is null)
        {
            spec["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["batch.kubernetes.io/controller-uid"] = uid } };
            var labels = spec.Obj("template").Obj("metadata").Obj("labels");
            labels.Default("batch.kubernetes.io/controller-uid", uid);
            labels.Default("batch.kubernetes.io/job-name", o.Str("metadata.name")!);
            labels.Default("controller-uid", uid);
            labels.Default("job-name", o.Str("metadata.name")!);
        }
        if (spec["template"]?["spec"] is JsonObject ps) DefaultPodSpec(ps);
    }

    // ---- validation ----

    static void ValidatePodSpec(JsonObject? spec, string path, List<FieldError> e)
    {
        if (spec is null) { e.Add(FieldError.Required(path)); return; }
        var containers = spec.Objects("containers").ToList();
        if (containers.Count == 0) e.Add(FieldError.Required($"{path}.containers"));
        var names = new HashSet<string>();
        foreach (var (list, items) in new[] { ("initContainers", spec.Objects("initContainers").ToList()), ("containers", containers) })
            for (var i = 0; i < items.Count; i++)
            {
                var c = items[i];
                var name = c.Str("name");
                if (string.IsNullOrEmpty(name)) e.Add(FieldError.Required($"{path}.{list}[{i}].name"));
                else if (Validation.CheckDns1123Label(name) is { } why) e.Add(FieldError.Invalid($"{path}.{list}[{i}].name", name, why));
                else if (!names.Add(name)) e.Add(FieldError.Duplicate($"{path}.{list}[{i}].name", name));
                if (string.IsNullOrWhiteSpace(c.Str("image"))) e.Add(FieldError.Required($"{path}.{list}[{i}].image"));
                var ports = c.Objects("ports").ToList();
                for (var j = 0; j < ports.Count; j++)
                {
                    var port = ports[j].Long("containerPort");
                    if (port is null) e.Add(FieldError.Required($"{path}.{list}[{i}].ports[{j}].containerPort"));
                    else if (port is < 1 or > 65535) e.Add(FieldError.Invalid($"{path}.{list}[{i}].ports[{j}].containerPort", (long)port, "must be between 1 and 65535, inclusive"));
                }
            }
        var rp = spec.Str("restartPolicy");
        if (rp is not null and not ("Always" or "OnFailure" or "Never")) e.Add(FieldError.NotSupported($"{path}.restartPolicy", rp, ["Always", "OnFailure", "Never"]));
        if (spec["nodeSelector"] is JsonObject ns)
            foreach (var (k, v) in ns)
                if (Validation.CheckQualifiedName(k) is { } why) e.Add(FieldError.Invalid($"{path}.nodeSelector", k, why));
    }

    static bool KnownTimeZone(string tz)
    {
        if (tz.Length == 0) return false;
        try { TimeZoneInfo.FindSystemTimeZoneById(tz); return true; }
        catch (Exception x) when (x is TimeZoneNotFoundException or InvalidTimeZoneException) { return false; }
    }

    /// <summary>batch/v1 JobSpec rules (pkg/apis/batch/validation) for a Job's spec or a CronJob's jobTemplate.spec.</summary>
    static void ValidateJobSpec(JsonObject o, string path, List<FieldError> e)
    {
        var spec = o.At(path) as JsonObject;
        if (spec is null) return;
        foreach (var f in new[] { "parallelism", "completions", "backoffLimit" })
            if (spec.Long(f) is < 0 and var n) e.Add(new FieldError($"{path}.{f}", "FieldValueInvalid", $"Invalid value: {n}: must be greater than or equal to 0"));
        foreach (var f in new[] { "activeDeadlineSeconds", "ttlSecondsAfterFinished" })
            if (spec.Long(f) is { } n && (f == "activeDeadlineSeconds" ? n <= 0 : n < 0))
                e.Add(new FieldError($"{path}.{f}", "FieldValueInvalid", $"Invalid value: {n}: must be greater than {(f == "activeDeadlineSeconds" ? "0" : "or equal to 0")}"));
        var mode = spec.Str("completionMode");
        if (mode is not null and not ("NonIndexed" or "Indexed")) e.Add(FieldError.NotSupported($"{path}.completionMode", mode, ["NonIndexed", "Indexed"]));
        if (mode == "Indexed" && spec["completions"] is null) e.Add(FieldError.Required($"{path}.completions", "when completion mode is Indexed"));
        if (spec["selector"] is JsonObject selector)
        {
            var labels = spec["template"]?["metadata"]?["labels"] as JsonObject;
            if (!LabelSelector.FromJson(selector).Matches(labels))
                e.Add(FieldError.Invalid($"{path}.template.metadata.labels", Selector(labels), "`selector` does not match template `labels`"));
        }
        else if (spec.Bool("manualSelector") == true) e.Add(FieldError.Required($"{path}.selector"));
    }

    static void ValidateWorkload(JsonObject o, JsonObject? old, List<FieldError> e)
    {
        var replicas = o.Long("spec.replicas");
        if (replicas < 0) e.Add(FieldError.Invalid("spec.replicas", (long)replicas, "must be greater than or equal to 0"));
        var selector = o["spec"]?["selector"] as JsonObject;
        if (selector is null || (selector["matchLabels"] is not JsonObject { Count: > 0 } && selector["matchExpressions"] is not JsonArray { Count: > 0 }))
            e.Add(FieldError.Required("spec.selector"));
        else
        {
            var labels = o["spec"]?["template"]?["metadata"]?["labels"] as JsonObject;
            if (!LabelSelector.FromJson(selector).Matches(labels))
                e.Add(FieldError.Invalid("spec.template.metadata.labels", Selector(labels), "`selector` does not match template `labels`"));
            if (old is not null && old["spec"]?["selector"] is JsonNode oldSel && !JsonNode.DeepEquals(oldSel, selector))
                e.Add(FieldError.Invalid("spec.selector", LabelSelectorString(selector), "field is immutable"));
        }
        ValidatePodSpec(o["spec"]?["template"]?["spec"] as JsonObject, "spec.template.spec", e);
        if (o["spec"]?["template"]?["metadata"]?["labels"] is JsonObject tl)
            foreach (var (k, v) in tl)
                if (v?.GetValue<string>() is { } s && Validation.CheckLabelValue(s) is { } why) e.Add(FieldError.Invalid("spec.template.metadata.labels", s, why));
    }

    static void ValidateService(JsonObject o, JsonObject? old, List<FieldError> e)
    {
        var type = o.Str("spec.type");
        if (type is not ("ClusterIP" or "NodePort" or "LoadBalancer" or "ExternalName"))
            e.Add(FieldError.NotSupported("spec.type", type, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]));
        var ports = o.Objects("spec.ports").ToList();
        if (ports.Count == 0 && type != "ExternalName" && o.Str("spec.clusterIP") != "None") e.Add(FieldError.Required("spec.ports"));
        for (var i = 0; i < ports.Count; i++)
        {
            var port = ports[i].Long("port");
            if (port is null) e.Add(FieldError.Required($"spec.ports[{i}].port"));
            else if (port is < 1 or > 65535) e.Add(FieldError.Invalid($"spec.ports[{i}].port", (long)port, "must be between 1 and 65535, inclusive"));
            if (ports.Count > 1 && string.IsNullOrEmpty(ports[i].Str("name"))) e.Add(FieldError.Required($"spec.ports[{i}].name"));
        }
        if (old is not null && old.Str("spec.clusterIP") is { Length: > 0 } oldIp && o.Str("spec.clusterIP") is { Length: > 0 } newIp && oldIp != newIp)
            e.Add(FieldError.Invalid("spec.clusterIPs[0]", newIp, "may not change once set"));
    }

    static void ValidateDataKeys(JsonObject o, List<FieldError> e)
    {
        foreach (var field in new[] { "data", "binaryData" })
            if (o[field] is JsonObject d)
                foreach (var (k, _) in d)
                    if (k.Length == 0 || k.Length > 253 || k.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) || k is "." or "..")
                        e.Add(FieldError.Invalid(field, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
    }

    // ---- table cells ----

    static string PodReady(JsonObject o)
    {
        var total = o.Arr("spec.containers").Count;
        var ready = o.Objects("status.containerStatuses").Count(c => c.Bool("ready") == true);
        return $"{ready}/{total}";
    }

    static string PodRestarts(JsonObject o) => o.Objects("status.containerStatuses").Sum(c => c.Long("restartCount") ?? 0).ToString();

    /// <summary>The STATUS column as kubectl's printer computes it (reason, waiting/terminated reasons, Terminating).</summary>
    static string PodStatus(JsonObject o)
    {
        var reason = o.Str("status.reason") ?? o.Str("status.phase") ?? "Unknown";
        var init = o.Objects("status.initContainerStatuses").ToList();
        for (var i = 0; i < init.Count; i++)
        {
            var c = init[i];
            if (c.At("state.terminated") is JsonObject t && t.Long("exitCode") == 0) continue;
            if (c.At("state.terminated") is JsonObject t2) { reason = "Init:" + (t2.Str("reason") ?? $"ExitCode:{t2.Long("exitCode")}"); break; }
            if (c.Str("state.waiting.reason") is { Length: > 0 } w && w != "PodInitializing") { reason = "Init:" + w; break; }
            reason = $"Init:{i}/{o.Arr("spec.initContainers").Count}";
            break;
        }
        if (!reason.StartsWith("Init:", StringComparison.Ordinal))
        {
            var hasRunning = false;
            foreach (var c in o.Objects("status.containerStatuses").Reverse())
            {
                if (c.Str("state.waiting.reason") is { Length: > 0 } w) reason = w;
                else if (c.At("state.terminated") is JsonObject t) reason = t.Str("reason") ?? (t.Long("signal") is > 0 ? $"Signal:{t.Long("signal")}" : $"ExitCode:{t.Long("exitCode")}");
                else if (c.Bool("ready") == true && c.At("state.running") is not null) hasRunning = true;
            }
            if (reason == "Completed" && hasRunning) reason = "Running";
        }
        if (o.Str("metadata.deletionTimestamp") is not null) reason = o.Str("status.reason") == "NodeLost" ? "Unknown" : "Terminating";
        return reason;
    }

    static string NodeStatus(JsonObject o)
    {
        var ready = o.Objects("status.conditions").FirstOrDefault(c => c.Str("type") == "Ready");
        var s = ready?.Str("status") switch { "True" => "Ready", null => "Unknown", _ => "NotReady" };
        if (o.Bool("spec.unschedulable") == true) s += ",SchedulingDisabled";
        return s;
    }

    static string NodeRoles(JsonObject o)
    {
        var roles = new List<string>();
        if (o["metadata"]?["labels"] is JsonObject labels)
            foreach (var (k, _) in labels)
                if (k.StartsWith("node-role.kubernetes.io/", StringComparison.Ordinal)) roles.Add(k["node-role.kubernetes.io/".Length..]);
        return roles.Count == 0 ? "<none>" : string.Join(",", roles.Order());
    }

    static string ServicePorts(JsonObject o)
    {
        var ports = o.Objects("spec.ports").Select(p =>
            p.Long("nodePort") is { } np ? $"{p.Long("port")}:{np}/{p.Str("protocol") ?? "TCP"}" : $"{p.Long("port")}/{p.Str("protocol") ?? "TCP"}").ToList();
        return ports.Count == 0 ? "<none>" : string.Join(",", ports);
    }

    static string EndpointsCell(JsonObject o)
    {
        var list = new List<string>();
        foreach (var subset in o.Objects("subsets"))
            foreach (var a in subset.Objects("addresses"))
            {
                var ports = subset.Objects("ports").ToList();
                if (ports.Count == 0) list.Add(a.Str("ip") ?? "");
                else list.AddRange(ports.Select(p => $"{a.Str("ip")}:{p.Long("port")}"));
            }
        if (list.Count == 0) return "<none>";
        return string.Join(",", list.Take(3)) + (list.Count > 3 ? $" + {list.Count - 3} more..." : "");
    }

    static string JobStatus(JsonObject o)
    {
        foreach (var c in o.Objects("status.conditions"))
            if (c.Str("status") == "True")
                switch (c.Str("type"))
                {
                    case "Complete": return "Complete";
                    case "Failed": return "Failed";
                    case "Suspended": return "Suspended";
                    case "FailureTarget": return "FailureTarget";
                    case "SuccessCriteriaMet": return "SuccessCriteriaMet";
                }
        return o.Str("metadata.deletionTimestamp") is not null ? "Terminating" : "Running";
    }

    static string JobDuration(JsonObject o)
    {
        if (Json.ParseTime(o.Str("status.startTime")) is not { } start) return "";
        var end = Json.ParseTime(o.Str("status.completionTime")) ?? DateTimeOffset.UtcNow;
        return Json.HumanDuration(end - start);
    }

    static string? IntOrString(JsonNode? v) => v is null ? null : v is JsonValue jv && jv.TryGetValue<string>(out var str) ? str : v.ToJsonString();

    static string Containers(JsonObject o) => string.Join(",", o.Objects("spec.template.spec.containers").Select(c => c.Str("name")));
    static string Images(JsonObject o) => string.Join(",", o.Objects("spec.template.spec.containers").Select(c => c.Str("image")));

    static string Selector(JsonObject? m) =>
        m is null || m.Count == 0 ? "<none>" : string.Join(",", m.Select(kv => $"{kv.Key}={kv.Value?.GetValue<string>()}"));

    static string LabelSelectorString(JsonObject? s) => s is null ? "<none>" : LabelSelector.FromJson(s).ToString() is { Length: > 0 } x ? x : "<none>";
}
