using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Cluster.Api;
using static Berth.Cluster.Tests.Kubectl.KubectlChecks;

namespace Berth.Cluster.Tests.Kubectl;

/// <summary>
/// A kubectl user's day against `berth server`, the test playing the kubelets (<see cref="FakeKubelets"/>):
/// each command's output and exit status as the real kubectl 1.32 prints them against a real cluster
/// (kubectl's printers and describers, the API server's messages). Where a real cluster needs a kubelet
/// (logs, exec) the error is Berth's own, one honest line.
/// </summary>
public sealed class KubectlDayTests(BerthServer s) : IClassFixture<BerthServer>
{
    const string Manifest = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          labels: {app: web}
        spec:
          replicas: 3
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
              - name: nginx
                image: nginx:1.25
                ports:
                - containerPort: 80
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          selector: {app: web}
          ports:
          - port: 80
            targetPort: 80
        """;

    async Task<BerthServer.Result> K(string args, string? stdin = null, IDictionary<string, string>? env = null) => await s.Kubectl(args, stdin, env);

    Task<JsonObject> Json(string args) => KubectlChecks.Json(s, args);
    Task<JsonObject> Until(string args, Func<JsonObject, bool> ok, string what, int seconds = 60) => KubectlChecks.Until(s, args, ok, what, seconds);

    async Task<FakeKubelets> KubeletsAsync()
    {
        var k = new FakeKubelets(s);
        foreach (var n in new[] { "node-a", "node-b", "node-c" }) await k.RegisterNodeAsync(n);
        return k;
    }

    async Task DeployAsync(string ns, int replicas = 3)
    {
        Lines(await K($"create namespace {ns}"), $"namespace/{ns} created");
        Lines(await K($"-n {ns} apply -f -", Manifest.Replace("replicas: 3", $"replicas: {replicas}")), "deployment.apps/web created", "service/web created");
        var st = await K($"-n {ns} rollout status deployment/web --timeout=90s");
        Ok(st);
        Assert.EndsWith("deployment \"web\" successfully rolled out\n", st.Stdout);
    }

    /// <summary>
    /// Runs a long-lived kubectl (get -w), does <paramref name="act"/> once it printed its first line, and
    /// returns its stdout lines once <paramref name="done"/> holds for them (or after 30 s).
    /// </summary>
    async Task<List<string>> WatchAsync(string args, Func<Task> act, Func<List<string>, bool> done)
    {
        var psi = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args.Split(' ')) psi.ArgumentList.Add(a);
        psi.Environment["KUBECONFIG"] = s.Kubeconfig;
        psi.Environment["HOME"] = s.DataDir;
        using var p = Process.Start(psi)!;
        var lines = new List<string>();
        var reader = Task.Run(async () =>
        {
            while (await p.StandardOutput.ReadLineAsync() is { } l) lock (lines) lines.Add(l);
        });
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline) { lock (lines) if (lines.Count > 1) break; await Task.Delay(50); }
            await act();
            while (DateTime.UtcNow < deadline) { lock (lines) if (done(lines)) break; await Task.Delay(100); }
            lock (lines) return [.. lines];
        }
        finally
        {
            p.Kill();
            await p.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Apply_get_in_every_format_and_describe()
    {
        await using var kubelets = await KubeletsAsync();
        await DeployAsync("day-get");
        Lines(await K("-n day-get apply -f -", Manifest), "deployment.apps/web unchanged", "service/web unchanged");
        Lines(await K("-n day-get apply -f -", Manifest.Replace("replicas: 3", "replicas: 4")), "deployment.apps/web configured", "service/web unchanged");
        Ok(await K("-n day-get rollout status deployment/web --timeout=90s"));
        await Until("-n day-get get pods", l => Live(l).Count == 4 && Live(l).All(p => p.Str("status.phase") == "Running"), "4 running pods");

        var wide = await K("-n day-get get deploy web -o wide");
        Ok(wide);
        Assert.Matches(@"^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR$", Rows(wide.Stdout)[0]);
        Assert.Matches(@"^web\s+4/4\s+4\s+4\s+\d+s\s+nginx\s+nginx:1\.25\s+app=web$", Rows(wide.Stdout)[1]);
        var pods = await K("-n day-get get pods -o wide");
        Ok(pods);
        Assert.Matches(@"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$", Rows(pods.Stdout)[0]);
        Assert.Equal(4, Rows(pods.Stdout).Skip(1).Count(l => Regex.IsMatch(l, @"^web-\w+-\w{5}\s+1/1\s+Running\s+0\s+\d+s\s+10\.244\.\d+\.\d+\s+node-[abc]\s+<none>\s+<none>$")));
        var nodes = await K("get nodes -o wide");
        Ok(nodes);
        Assert.Matches(@"^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME$", Rows(nodes.Stdout)[0]);
        Assert.Contains(Rows(nodes.Stdout), l => Regex.IsMatch(l, @"^node-a\s+Ready\s+<none>\s+\S+\s+127\.0\.0\.1\s+<none>\s+<unknown>\s+<unknown>\s+<unknown>$"));

        var yaml = await K("-n day-get get deploy web -o yaml");
        Ok(yaml);
        Assert.StartsWith("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n", yaml.Stdout);
        Assert.Contains("\n  namespace: day-get\n", yaml.Stdout);
        Assert.Contains("\nspec:\n  progressDeadlineSeconds: 600\n  replicas: 4\n  revisionHistoryLimit: 10\n", yaml.Stdout);
        Lines(await K("-n day-get get deploy web -o jsonpath='{.spec.replicas} {.status.readyReplicas} {.spec.template.spec.containers[0].image}'"), "4 4 nginx:1.25");
        Lines(await K("-n day-get get pods -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}'"), "Running", "Running", "Running", "Running");
        var cols = await K("-n day-get get deploy -o custom-columns=NAME:.metadata.name,WANT:.spec.replicas,IMAGE:.spec.template.spec.containers[0].image");
        Lines(cols, "NAME   WANT   IMAGE", "web    4      nginx:1.25");

        var labels = await K("-n day-get get pods --show-labels");
        Ok(labels);
        Assert.Matches(@"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+LABELS$", Rows(labels.Stdout)[0]);
        Assert.All(Rows(labels.Stdout).Skip(1), l => Assert.Matches(@"\s+app=web,pod-template-hash=\w+$", l));
        var col = await K("-n day-get get deploy -L app");
        Ok(col);
        Assert.Matches(@"^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+APP$", Rows(col.Stdout)[0]);
        Assert.Matches(@"^web\s+4/4\s+4\s+4\s+\d+s\s+web$", Rows(col.Stdout)[1]);
        var byLabel = await K("-n day-get get pods -l app=web,pod-template-hash -o name");
        Ok(byLabel);
        Assert.Equal(4, Rows(byLabel.Stdout).Count(l => l.StartsWith("pod/web-", StringComparison.Ordinal)));
        var none = await K("-n day-get get pods -l app=nope");
        Ok(none);
        Assert.Equal("", none.Stdout);
        Assert.Equal("No resources found in day-get namespace.\n", none.Stderr);
        var running = await K("-n day-get get pods --field-selector=status.phase=Running,spec.restartPolicy=Always -o name");
        Assert.Equal(4, Rows(running.Stdout).Length);
        var onA = await Json("-n day-get get pods --field-selector spec.nodeName=node-a");
        Assert.All(onA.Objects("items"), p => Assert.Equal("node-a", p.Str("spec.nodeName")));
        FailsWith(await K("-n day-get get pods --field-selector foo=bar"),
            "Error from server (BadRequest): Unable to find \"/v1, Resource=pods\" that match label selector \"\", field selector \"foo=bar\": field label not supported: foo");

        var all = await K("-n day-get get all");
        Ok(all);
        var sections = Regex.Matches(all.Stdout, @"(?m)^NAME\s.*\n(\w+(?:\.apps)?)/").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["pod", "service", "deployment.apps", "replicaset.apps"], sections);
        var defaults = await K("get svc kubernetes");
        Ok(defaults);
        Assert.Matches(@"(?m)^kubernetes\s+ClusterIP\s+10\.43\.0\.1\s+<none>\s+443/TCP\s+\S+$", defaults.Stdout);
        var sa = await Until("-n day-get get sa default", _ => true, "the default service account");
        Assert.Equal("default", sa.Str("metadata.name"));

        // describe: the deployment, one of its pods, the service, a node
        var rs = (await Json("-n day-get get rs -l app=web")).Objects("items").Single().Str("metadata.name")!;
        var dd = await K("-n day-get describe deployment web");
        Ok(dd);
        Assert.Equal("web", Field(dd.Stdout, "Name"));
        Assert.Equal("day-get", Field(dd.Stdout, "Namespace"));
        Assert.Equal("app=web", Field(dd.Stdout, "Selector"));
        Assert.Equal("4 desired | 4 updated | 4 total | 4 available | 0 unavailable", Field(dd.Stdout, "Replicas"));
        Assert.Equal("RollingUpdate", Field(dd.Stdout, "StrategyType"));
        Assert.Equal("25% max unavailable, 25% max surge", Field(dd.Stdout, "RollingUpdateStrategy"));
        Assert.Equal($"{rs} (4/4 replicas created)", Field(dd.Stdout, "NewReplicaSet"));
        Assert.Matches(@"Conditions:\n  Type           Status  Reason\n  ----           ------  ------\n  Available      True    MinimumReplicasAvailable\n  Progressing    True    NewReplicaSetAvailable\n", dd.Stdout);
        Assert.Matches($@"(?m)^  Normal  ScalingReplicaSet  \S+\s+deployment-controller  Scaled up replica set {rs} from 0 to 3$", dd.Stdout);
        Assert.Matches($@"(?m)^  Normal  ScalingReplicaSet  \S+\s+deployment-controller  Scaled up replica set {rs} from 3 to 4$", dd.Stdout);
        var drs = await K($"-n day-get describe rs {rs}");
        Ok(drs);
        Assert.Equal("Deployment/web", Field(drs.Stdout, "Controlled By"));
        Assert.Equal("4 current / 4 desired", Field(drs.Stdout, "Replicas"));
        Assert.Equal("4 Running / 0 Waiting / 0 Succeeded / 0 Failed", Field(drs.Stdout, "Pods Status"));
        Assert.Equal(4, Regex.Matches(drs.Stdout, $@"(?m)^  Normal  SuccessfulCreate  \S+\s+replicaset-controller  Created pod: {rs}-\w{{5}}$").Count);

        var pod = Live(await Json("-n day-get get pods")).First();
        var podName = pod.Str("metadata.name")!;
        var dp = await K($"-n day-get describe pod {podName}");
        Ok(dp);
        Assert.Equal("0", Field(dp.Stdout, "Priority"));
        Assert.Equal("default", Field(dp.Stdout, "Service Account"));
        Assert.Equal($"{pod.Str("spec.nodeName")}/127.0.0.1", Field(dp.Stdout, "Node"));
        Assert.Equal("Running", Field(dp.Stdout, "Status"));
        Assert.Equal(pod.Str("status.podIP"), Field(dp.Stdout, "IP"));
        Assert.Contains($"IPs:\n  IP:           {pod.Str("status.podIP")}\n", dp.Stdout);
        Assert.Equal($"ReplicaSet/{rs}", Field(dp.Stdout, "Controlled By"));
        Assert.Matches(@"(?m)^    State:          Running$", dp.Stdout);
        Assert.Equal("BestEffort", Field(dp.Stdout, "QoS Class"));
        Assert.Matches(@"Tolerations:\s+node\.kubernetes\.io/not-ready:NoExecute op=Exists for 300s\n\s+node\.kubernetes\.io/unreachable:NoExecute op=Exists for 300s\n", dp.Stdout);
        Assert.Matches($@"(?m)^  Normal  Scheduled  \S+\s+default-scheduler  Successfully assigned day-get/{podName} to {pod.Str("spec.nodeName")}$", dp.Stdout);

        var ds = await K("-n day-get describe service web");
        Ok(ds);
        Assert.Equal("app=web", Field(ds.Stdout, "Selector"));
        Assert.Equal("ClusterIP", Field(ds.Stdout, "Type"));
        Assert.Matches(@"^10\.43\.\d+\.\d+$", Field(ds.Stdout, "IP"));
        Assert.Equal("<unset>  80/TCP", Field(ds.Stdout, "Port"));
        Assert.Equal("80/TCP", Field(ds.Stdout, "TargetPort"));
        Assert.Matches(@"^(10\.244\.\d+\.\d+:80,){2}10\.244\.\d+\.\d+:80 \+ 1 more\.\.\.$", Field(ds.Stdout, "Endpoints"));

        var dn = await K("describe node node-a");
        Ok(dn);
        Assert.Equal("node-a", Field(dn.Stdout, "Name"));
        Assert.Matches(@"(?m)^  Ready\s+True\s+.*KubeletReady\s+kubelet is posting ready status$", dn.Stdout);
        Assert.Matches(@"(?m)^Non-terminated Pods:\s+\(\d+ in total\)$", dn.Stdout);
        Assert.Contains("Allocated resources:", dn.Stdout);
    }

    [Fact]
    public async Task Edit_patch_label_annotate_and_scale()
    {
        await using var kubelets = await KubeletsAsync();
        await DeployAsync("day-edit");
        var tmp = Directory.CreateDirectory(Path.Combine(s.DataDir, "tmp-edit")).FullName;
        Dictionary<string, string> Editor(string name, string script)
        {
            var path = Path.Combine(s.DataDir, name);
            File.WriteAllText(path, "#!/bin/sh\n" + script + "\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return new() { ["KUBE_EDITOR"] = path, ["TMPDIR"] = tmp };
        }

        // a valid edit, a no-op edit, an edit the server refuses (it is kept), an edit with an unknown field
        Lines(await K("-n day-edit edit deployment web", env: Editor("scale-up.sh", "sed -i '0,/^  replicas: 3$/s//  replicas: 4/' \"$1\"")), "deployment.apps/web edited");
        Assert.Equal(4L, (await Json("-n day-edit get deploy web")).Long("spec.replicas"));
        var noop = await K("-n day-edit edit deployment web", env: Editor("noop.sh", "true"));
        Ok(noop);
        Assert.Equal("", noop.Stdout);
        Assert.Equal("Edit cancelled, no changes made.\n", noop.Stderr);
        Assert.Empty(Directory.GetFiles(tmp));

        // kubectl reopens the editor with the server's reasons on top; unchanged, it gives up and keeps the file
        var bad = await K("-n day-edit edit deployment web", env: Editor("bad.sh", "grep -q 'replicas: four' \"$1\" || sed -i '0,/^  replicas: 4$/s//  replicas: four/' \"$1\""));
        Assert.Equal(1, bad.ExitCode);
        var kept = Regex.Match(bad.Stderr, "A copy of your changes has been stored to \"(.*)\"").Groups[1].Value;
        Assert.Equal(
            $"error: deployments.apps \"web\" is invalid\nA copy of your changes has been stored to \"{kept}\"\nerror: Edit cancelled, no valid changes were saved.\n",
            bad.Stderr);
        Assert.Contains("replicas: four", File.ReadAllText(kept));
        Assert.Contains("# deployments.apps \"web\" was not valid:\n# * patch: Invalid value: \"map[spec:map[replicas:four]]\": unrecognized type: int32\n", File.ReadAllText(kept));
        foreach (var f in Directory.GetFiles(tmp)) File.Delete(f);
        Assert.Equal(4L, (await Json("-n day-edit get deploy web")).Long("spec.replicas"));

        var unknown = await K("-n day-edit edit deployment web", env: Editor("unknown.sh", "sed -i '0,/^  replicas: 4$/s//  replicas: 4\\n  replicaz: 5/' \"$1\""));
        Assert.Equal(1, unknown.ExitCode);
        kept = Assert.Single(Directory.GetFiles(tmp));
        Assert.Equal(
            $"error: deployments.apps \"web\" could not be patched: strict decoding error: unknown field \"spec.replicaz\"\nYou can run `kubectl replace -f {kept}` to try this update again.\n",
            unknown.Stderr);
        File.Delete(kept);

        // patch: strategic (the default), merge, json; no change; refused ones
        Lines(await K("-n day-edit patch deployment web -p '{\"metadata\":{\"labels\":{\"tier\":\"front\"}}}'"), "deployment.apps/web patched");
        Lines(await K("-n day-edit patch deployment web -p '{\"metadata\":{\"labels\":{\"tier\":\"front\"}}}'"), "deployment.apps/web patched (no change)");
        Lines(await K("-n day-edit patch deployment web --type=merge -p '{\"spec\":{\"replicas\":3}}'"), "deployment.apps/web patched");
        Lines(await K("-n day-edit patch deployment web --type=json -p '[{\"op\":\"add\",\"path\":\"/spec/minReadySeconds\",\"value\":1}]'"), "deployment.apps/web patched");
        var d = await Json("-n day-edit get deploy web");
        Assert.Equal(("front", 3L, 1L), (d.Str("metadata.labels.tier"), d.Long("spec.replicas"), d.Long("spec.minReadySeconds")));
        FailsWith(await K("-n day-edit patch deployment web -p '{\"spec\":{\"replicas\":\"two\"}}'"),
            "The request is invalid: patch: Invalid value: \"map[spec:map[replicas:two]]\": unrecognized type: int32");
        var merge = await K("-n day-edit patch deployment web --type=merge -p '{\"spec\":{\"paused\":\"yes\"}}'");
        Assert.Equal(1, merge.ExitCode);
        Assert.StartsWith("The request is invalid: patch: Invalid value: \"{\\\"apiVersion\\\":\\\"apps/v1\\\",", merge.Stderr);
        Assert.EndsWith("\": json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool\n", merge.Stderr);
        // kubectl patch asks for no field validation: the server warns and drops the field (nothing changed)
        var unknownPatch = await K("-n day-edit patch deployment web -p '{\"spec\":{\"replicaz\":1}}'");
        Lines(unknownPatch, "deployment.apps/web patched (no change)");
        Assert.Equal("Warning: unknown field \"spec.replicaz\"\n", unknownPatch.Stderr);
        FailsWith(await K("-n day-edit patch deployment web -p '{\"spec\":{\"replicas\":-1}}'"),
            "The Deployment \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");

        // label and annotate: add, refuse to overwrite, overwrite, remove
        Lines(await K("-n day-edit label deployment web env=prod"), "deployment.apps/web labeled");
        FailsWith(await K("-n day-edit label deployment web env=dev"), "error: 'env' already has a value (prod), and --overwrite is false");
        Lines(await K("-n day-edit label deployment web env=dev --overwrite"), "deployment.apps/web labeled");
        Lines(await K("-n day-edit label deployment web env-"), "deployment.apps/web unlabeled");
        Lines(await K("-n day-edit annotate deployment web owner=team-a"), "deployment.apps/web annotated");
        FailsWith(await K("-n day-edit annotate deployment web owner=team-b"),
            "error: --overwrite is false but found the following declared annotation(s): 'owner' already has a value (team-a)");
        Lines(await K("-n day-edit annotate deployment web owner=team-b --overwrite"), "deployment.apps/web annotated");
        Lines(await K("-n day-edit annotate deployment web owner-"), "deployment.apps/web annotated");
        Lines(await K("-n day-edit label pods -l app=web role=server"), (await Json("-n day-edit get pods -l app=web")).Objects("items").Select(p => $"pod/{p.Str("metadata.name")} labeled").ToArray());
        d = await Json("-n day-edit get deploy web");
        Assert.Null(d.Str("metadata.labels.env"));
        Assert.Null(d.Str("metadata.annotations.owner"));

        // scale, with a precondition that does not hold
        FailsWith(await K("-n day-edit scale deployment web --current-replicas=5 --replicas=2"), "error: Expected replicas to be 5, was 3");
        Lines(await K("-n day-edit scale deployment web --current-replicas=3 --replicas=2"), "deployment.apps/web scaled");
        Ok(await K("-n day-edit rollout status deployment/web --timeout=90s"));
        await Until("-n day-edit get pods -l app=web", l => Live(l).Count == 2, "2 pods");
        FailsWith(await K("-n day-edit scale deployment nope --replicas=2"), "error: no objects passed to scale deployments.apps \"nope\" not found");
    }

    [Fact]
    public async Task Rollout_status_history_undo_restart_pause_and_resume()
    {
        await using var kubelets = await KubeletsAsync();
        await DeployAsync("day-roll");
        string Image(JsonObject d) => d.Objects("spec.template.spec.containers").Single().Str("image")!;

        Lines(await K("-n day-roll set image deployment/web nginx=nginx:1.26"), "deployment.apps/web image updated");
        var st = await K("-n day-roll rollout status deployment/web --timeout=90s");
        Ok(st);
        Assert.All(Rows(st.Stdout).SkipLast(1), l => Assert.StartsWith("Waiting for deployment \"web\" rollout to finish: ", l));
        Assert.Equal("deployment \"web\" successfully rolled out", Rows(st.Stdout)[^1]);
        Lines(await K("-n day-roll rollout history deployment/web"), "deployment.apps/web ", "REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>");
        var rev2 = await K("-n day-roll rollout history deployment/web --revision=2");
        Ok(rev2);
        Assert.StartsWith("deployment.apps/web with revision #2\nPod Template:\n  Labels:\tapp=web\n\tpod-template-hash=", rev2.Stdout);
        Assert.Contains("\n    Image:\tnginx:1.26\n", rev2.Stdout);
        FailsWith(await K("-n day-roll rollout history deployment/web --revision=9"), "error: unable to find the specified revision");

        Lines(await K("-n day-roll rollout undo deployment/web"), "deployment.apps/web rolled back");
        Ok(await K("-n day-roll rollout status deployment/web --timeout=90s"));
        Assert.Equal("nginx:1.25", Image(await Json("-n day-roll get deploy web")));
        Lines(await K("-n day-roll rollout history deployment/web"), "deployment.apps/web ", "REVISION  CHANGE-CAUSE", "2         <none>", "3         <none>");
        FailsWith(await K("-n day-roll rollout undo deployment/web --to-revision=7"), "error: unable to find specified revision 7 in history");
        Lines(await K("-n day-roll rollout undo deployment/web --to-revision=2"), "deployment.apps/web rolled back");
        Ok(await K("-n day-roll rollout status deployment/web --timeout=90s"));
        Assert.Equal("nginx:1.26", Image(await Json("-n day-roll get deploy web")));
        var dd = await K("-n day-roll describe deployment web");
        Assert.Matches(@"(?m)^OldReplicaSets:\s+web-\w+ \(0/0 replicas created\)$", dd.Stdout);
        Assert.Matches(@"(?m)^  Normal  ScalingReplicaSet  \S+.*deployment-controller  Scaled down replica set web-\w+ from 1 to 0$", dd.Stdout);

        Lines(await K("-n day-roll rollout restart deployment/web"), "deployment.apps/web restarted");
        Ok(await K("-n day-roll rollout status deployment/web --timeout=90s"));
        var restarted = await Json("-n day-roll get deploy web");
        Assert.NotNull(restarted["spec"]?["template"]?["metadata"]?["annotations"]?["kubectl.kubernetes.io/restartedAt"]);
        Assert.Equal(3, (await Json("-n day-roll get rs -l app=web")).Objects("items").Count());

        // paused: a template change makes no new ReplicaSet, rollout status waits until resumed
        Lines(await K("-n day-roll rollout pause deployment/web"), "deployment.apps/web paused");
        Lines(await K("-n day-roll set image deployment/web nginx=nginx:1.27"), "deployment.apps/web image updated");
        var paused = await K("-n day-roll rollout status deployment/web --timeout=2s");
        Assert.Equal(1, paused.ExitCode);
        Assert.Equal("error: timed out waiting for the condition\n", paused.Stderr);
        Assert.Equal("Waiting for deployment \"web\" rollout to finish: 0 out of 3 new replicas have been updated...", Rows(paused.Stdout)[0]);
        Assert.Equal(3, (await Json("-n day-roll get rs -l app=web")).Objects("items").Count());
        Lines(await K("-n day-roll rollout resume deployment/web"), "deployment.apps/web resumed");
        Ok(await K("-n day-roll rollout status deployment/web --timeout=90s"));
        Assert.All(Live(await Json("-n day-roll get pods -l app=web")), p => Assert.Equal("nginx:1.27", p.Objects("spec.containers").Single().Str("image")));

        // pods that never become ready: rollout status gives up after --timeout
        kubelets.Paused = true;
        Lines(await K("-n day-roll scale deployment web --replicas=5"), "deployment.apps/web scaled");
        var stuck = await K("-n day-roll rollout status deployment/web --timeout=3s");
        Assert.Equal(1, stuck.ExitCode);
        Assert.Equal("error: timed out waiting for the condition\n", stuck.Stderr);
        Assert.Contains("Waiting for deployment \"web\" rollout to finish: 3 of 5 updated replicas are available...", stuck.Stdout);
        kubelets.Paused = false;
        Ok(await K("-n day-roll rollout status deployment/web --timeout=90s"));
    }

    [Fact]
    public async Task Watch_wait_and_delete_with_each_cascade()
    {
        await using var kubelets = await KubeletsAsync();
        await DeployAsync("day-del", replicas: 2);
        Lines(await K("-n day-del wait --for=condition=Available deployment/web --timeout=60s"), "deployment.apps/web condition met");
        FailsWith(await K("-n day-del wait --for=condition=Nope deployment/web --timeout=1s"), "error: timed out waiting for the condition on deployments/web");

        // get -w: the table's rows as they change
        var rows = await WatchAsync("-n day-del get deployment web -w", async () => Ok(await K("-n day-del scale deployment web --replicas=3")),
            l => l.Any(x => Regex.IsMatch(x, @"^web\s+3/3\s+3\s+3\s")));
        Assert.Matches(@"^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$", rows[0]);
        Assert.Matches(@"^web\s+2/2\s+2\s+2\s+\d+s$", rows[1]);
        Assert.Matches(@"^web\s+2/3\s+2\s+2\s+\d+s$", rows[2]);
        Assert.Matches(@"^web\s+3/3\s+3\s+3\s+\d+s$", rows[^1]);
        Assert.All(rows.Skip(1), r => Assert.Matches(@"^web\s+[23]/[23]\s+[23]\s+[23]\s+\d+s$", r));

        var events = await WatchAsync("-n day-del get pods -w --output-watch-events", async () => Ok(await K("-n day-del scale deployment web --replicas=4")),
            l => l.Count(x => x.StartsWith("MODIFIED", StringComparison.Ordinal) && x.Contains("1/1     Running", StringComparison.Ordinal)) >= 1);
        Assert.Matches(@"^EVENT\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$", events[0]);
        Assert.Equal(3, events.Count(x => Regex.IsMatch(x, @"^ADDED\s+web-\w+-\w{5}\s+1/1\s+Running\s+0\s+\d+s$")));
        var added = events.Select(x => Regex.Match(x, @"^ADDED\s+(web-\w+-\w{5})\s+0/1\s+Pending\s+0\s+0s$")).Single(m => m.Success).Groups[1].Value;
        Assert.Contains(events, x => Regex.IsMatch(x, $@"^MODIFIED\s+{added}\s+1/1\s+Running\s+0\s+\d+s$"));

        // orphan: the ReplicaSet and its pods stay, without their owner
        Lines(await K("-n day-del delete deployment web --cascade=orphan"), "deployment.apps \"web\" deleted");
        var orphans = await Until("-n day-del get rs -l app=web", l => l.Objects("items").Count() == 1 && !l.Objects("items").Single().Objects("metadata.ownerReferences").Any(), "an orphaned replicaset");
        Assert.Equal(4, Live(await Json("-n day-del get pods -l app=web")).Count);
        var rs = orphans.Objects("items").Single().Str("metadata.name");
        // foreground: kubectl returns once the ReplicaSet is gone, and it goes only after its pods
        Lines(await K("-n day-del delete rs -l app=web --cascade=foreground"), $"replicaset.apps \"{rs}\" deleted");
        var left = await K("-n day-del get rs,pods -l app=web");
        Ok(left);
        Assert.Equal("No resources found in day-del namespace.\n", left.Stderr);

        // background (the default): the deployment goes at once, its ReplicaSet and pods after it
        Lines(await K("-n day-del create deployment bg --image=nginx:1.25 --replicas=2"), "deployment.apps/bg created");
        Ok(await K("-n day-del rollout status deployment/bg --timeout=90s"));
        Lines(await K("-n day-del delete deployment bg"), "deployment.apps \"bg\" deleted");
        await Until("-n day-del get rs,pods -l app=bg", l => !l.Objects("items").Any(), "bg's replicaset and pods gone");
        FailsWith(await K("-n day-del delete deployment bg"), "Error from server (NotFound): deployments.apps \"bg\" not found");
        Lines(await K("-n day-del delete service web"), "service \"web\" deleted");
        Lines(await K("delete namespace day-del"), "namespace \"day-del\" deleted");
        FailsWith(await K("get namespace day-del"), "Error from server (NotFound): namespaces \"day-del\" not found");
    }

    [Fact]
    public async Task Imperative_create_explain_auth_top_and_the_missing_kubelet()
    {
        await using var kubelets = await KubeletsAsync();
        Lines(await K("create namespace day-misc"), "namespace/day-misc created");
        FailsWith(await K("create namespace day-misc"), "Error from server (AlreadyExists): namespaces \"day-misc\" already exists");
        Lines(await K("-n day-misc create deployment api --image=nginx:1.25 --replicas=2 --port=8080"), "deployment.apps/api created");
        FailsWith(await K("-n day-misc create deployment api --image=nginx:1.25"), "error: failed to create deployment: deployments.apps \"api\" already exists");
        Lines(await K("-n day-misc create configmap settings --from-literal=mode=fast --from-literal=level=3"), "configmap/settings created");
        Lines(await K("-n day-misc create secret generic creds --from-literal=password=s3cret"), "secret/creds created");
        Lines(await K("-n day-misc create service clusterip api --tcp=80:8080"), "service/api created");
        var cm = await K("-n day-misc get configmap settings");
        Assert.Matches(@"^NAME\s+DATA\s+AGE\nsettings\s+2\s+\d+s\n$", cm.Stdout);
        var secret = await K("-n day-misc get secret creds");
        Assert.Matches(@"^NAME\s+TYPE\s+DATA\s+AGE\ncreds\s+Opaque\s+1\s+\d+s\n$", secret.Stdout);
        var sa = await Until("-n day-misc get serviceaccounts", l => l.Objects("items").Any(), "the default service account");
        Assert.Equal(["default"], sa.Objects("items").Select(x => x.Str("metadata.name")));
        Assert.Matches(@"^NAME\s+SECRETS\s+AGE\ndefault\s+0\s+\d+s\n$", (await K("-n day-misc get sa")).Stdout);

        var explain = await K("explain deployment.spec.replicas");
        Ok(explain);
        Assert.StartsWith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\nFIELD: replicas <integer>\n", explain.Stdout);
        Assert.Contains("Number of desired pods.", explain.Stdout);
        var resources = await K("api-resources");
        Ok(resources);
        Assert.Matches(@"(?m)^NAME\s+SHORTNAMES\s+APIVERSION\s+NAMESPACED\s+KIND$", resources.Stdout);
        Assert.Matches(@"(?m)^deployments\s+deploy\s+apps/v1\s+true\s+Deployment$", resources.Stdout);
        Assert.Matches(@"(?m)^selfsubjectaccessreviews\s+authorization\.k8s\.io/v1\s+false\s+SelfSubjectAccessReview$", resources.Stdout);
        var namespaced = await K("api-resources --namespaced=true --verbs=list -o name");
        Ok(namespaced);
        Assert.Contains("deployments.apps", Rows(namespaced.Stdout));
        Assert.DoesNotContain("nodes", Rows(namespaced.Stdout));
        Assert.DoesNotContain(Rows(namespaced.Stdout), r => r.Contains("review", StringComparison.Ordinal));

        // no RBAC: the admin may do everything, as system:masters may
        Lines(await K("auth can-i create deployments"), "yes");
        Lines(await K("-n day-misc auth can-i delete pods --subresource=log"), "yes");
        Lines(await K("auth can-i '*' '*'"), "yes");
        Lines(await K("auth whoami"), "ATTRIBUTE   VALUE", "Username    admin", "Groups      [system:masters system:authenticated]");

        // what needs a metrics server or a kubelet
        FailsWith(await K("top nodes"), "error: Metrics API not available");
        FailsWith(await K("-n day-misc top pods"), "error: Metrics API not available");
        Ok(await K("-n day-misc rollout status deployment/api --timeout=90s"));
        var pod = Live(await Json("-n day-misc get pods -l app=api")).First();
        var name = pod.Str("metadata.name");
        // as kube-apiserver: it dials the node's kubelet (InternalIP, port 10250), where nothing listens
        FailsWith(await K($"-n day-misc logs {name}"),
            $"Error from server: Get \"https://127.0.0.1:10250/containerLogs/day-misc/{name}/nginx\": dial tcp 127.0.0.1:10250: connect: connection refused");
        FailsWith(await K($"-n day-misc logs {name} -c nope"), $"error: container nope is not valid for pod {name}");
        var exec = await K($"-n day-misc exec {name} -- ls");
        Assert.Equal(1, exec.ExitCode);
        Assert.Equal("Error from server: error dialing backend: dial tcp 127.0.0.1:10250: connect: connection refused\n", exec.Stderr);
        Lines(await K("-n day-misc run lone --image=busybox --restart=Never --overrides={\"spec\":{\"nodeSelector\":{\"none\":\"x\"}}}"), "pod/lone created");
        FailsWith(await K("-n day-misc logs lone"), "Error from server (BadRequest): pod lone does not have a host assigned");
    }
}
