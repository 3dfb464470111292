using Berth.Cluster.Client;
using Berth.Cluster.Controllers;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class JobControllerTests
{
    internal static readonly DateTimeOffset Epoch = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    internal static V1Job Job(string name, int? completions = 1, int? parallelism = 1, int backoffLimit = 6, string mode = "NonIndexed", string restart = "Never") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1JobSpec
        {
            Completions = completions, Parallelism = parallelism, BackoffLimit = backoffLimit, CompletionMode = mode,
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = name } },
                Spec = new V1PodSpec { RestartPolicy = restart, Containers = [new V1Container { Name = "c", Image = "busybox" }] },
            },
        },
    };

    static (Harness H, FakeTimeProvider Time) Start(bool ttl = false)
    {
        var time = new FakeTimeProvider(Epoch);
        var h = new Harness(time) { Kubelet = false };
        h.Add(new JobController(h.Factory, time));
        if (ttl) h.Add(new TtlAfterFinishedController(h.Factory, time));
        return (h, time);
    }

    internal static async Task SetPhaseAsync(InMemoryClusterClient c, V1Pod p, string phase, bool ready = false)
    {
        var cur = (await c.GetAsync<V1Pod>(p.Metadata.NamespaceProperty, p.Metadata.Name))!;
        cur.Status ??= new V1PodStatus();
        cur.Status.Phase = phase;
        if (ready) cur.Status.Conditions = [new V1PodCondition { Type = "Ready", Status = "True", LastTransitionTime = DateTime.UtcNow }];
        cur.Metadata.ResourceVersion = null;
        await c.UpdateStatusAsync(cur);
    }

    static Task<V1Job> JobWhere(Harness h, string name, Func<V1Job, bool> ok, string what) =>
        Eventually(() => h.Client.GetAsync<V1Job>("default", name).AsTask(), ok, what: what);

    static Task<List<V1Pod>> Running(Harness h, int n, string what) =>
        Eventually(async () => (await h.PodsAsync()).Where(p => p.Status?.Phase is not ("Succeeded" or "Failed")).ToList(), l => l.Count == n, what: what);

    static bool Cond(V1Job j, string type, string? reason = null) =>
        j.Status?.Conditions?.Any(c => c.Type == type && c.Status == "True" && (reason is null || c.Reason == reason)) == true;

    [Fact]
    public async Task NonIndexed_runs_parallelism_pods_until_completions_succeed_then_completes()
    {
        var (h, _) = Start();
        await using var _h = h;
        await h.StartAsync();
        var job = await h.Client.CreateAsync(Job("batch", completions: 3, parallelism: 2));
        var pods = await Running(h, 2, "2 pods (parallelism)");
        Assert.All(pods, p =>
        {
            Assert.StartsWith("batch-", p.Metadata.Name);
            var owner = p.Metadata.OwnerReferences.Single();
            Assert.True(owner.Controller);
            Assert.Equal(("Job", job.Metadata.Uid), (owner.Kind, owner.Uid));
            Assert.Equal("batch", p.Metadata.Labels[JobController.JobNameLabel]);
            Assert.Equal(job.Metadata.Uid, p.Metadata.Labels[JobController.ControllerUidLabel]);
            Assert.Equal("batch", p.Metadata.Labels["job-name"]);
            Assert.Contains(JobController.TrackingFinalizer, p.Metadata.Finalizers);
        });
        await JobWhere(h, "batch", j => j.Status?.Active == 2 && j.Status.StartTime == Epoch.UtcDateTime && j.Status.UncountedTerminatedPods is not null, "active=2, startTime");

        await SetPhaseAsync(h.Client, pods[0], "Succeeded");
        await JobWhere(h, "batch", j => j.Status?.Succeeded == 1, "succeeded=1");
        // One left to go: still two running (completions - succeeded = 2).
        var next = await Running(h, 2, "2 pods after one success");
        foreach (var p in next) await SetPhaseAsync(h.Client, p, "Succeeded");
        var done = await JobWhere(h, "batch", j => Cond(j, "Complete"), "Complete");
        Assert.Equal(3, done.Status.Succeeded);
        Assert.Null(done.Status.Active);
        Assert.Null(done.Status.Failed);
        Assert.Equal(Epoch.UtcDateTime, done.Status.CompletionTime);
        Assert.True(Cond(done, "SuccessCriteriaMet", "CompletionsReached"));
        Assert.Equal("CompletionsReached", done.Status.Conditions.Single(c => c.Type == "Complete").Reason);
        Assert.Empty(done.Status.UncountedTerminatedPods.Succeeded ?? []);
        // Every pod lost its tracking finalizer; no extra pod was created.
        var all = await Eventually(() => h.PodsAsync(), l => l.All(p => p.Metadata.Finalizers is null || !p.Metadata.Finalizers.Contains(JobController.TrackingFinalizer)), what: "finalizers removed");
        Assert.Equal(3, all.Count);
        await Eventually(async () => (await h.Client.ListAsync<Corev1Event>("default")).Items.ToList(), l => l.Any(e => e.Reason == "Completed" && e.InvolvedObject.Name == "batch"), what: "Completed event");
    }

    [Fact]
    public async Task Indexed_jobs_give_each_pod_its_index_and_track_completed_indexes()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        await h.Client.CreateAsync(Job("idx", completions: 3, parallelism: 3, mode: "Indexed"));
        var pods = await Running(h, 3, "3 indexed pods");
        var byIndex = pods.ToDictionary(p => p.Metadata.Annotations[JobController.CompletionIndexAnnotation]);
        Assert.Equal(["0", "1", "2"], byIndex.Keys.Order());
        foreach (var (ix, p) in byIndex)
        {
            Assert.StartsWith($"idx-{ix}-", p.Metadata.Name);
            Assert.Equal(ix, p.Metadata.Labels[JobController.CompletionIndexAnnotation]);
            Assert.Equal($"idx-{ix}", p.Spec.Hostname);
            var env = p.Spec.Containers[0].Env.Single(e => e.Name == "JOB_COMPLETION_INDEX");
            Assert.Equal("metadata.annotations['batch.kubernetes.io/job-completion-index']", env.ValueFrom.FieldRef.FieldPath);
        }
        await SetPhaseAsync(h.Client, byIndex["1"], "Succeeded");
        await JobWhere(h, "idx", j => j.Status?.CompletedIndexes == "1" && j.Status.Succeeded == 1, "completedIndexes=1");
        // A failed index is retried under the same index (after the back-off).
        await SetPhaseAsync(h.Client, byIndex["0"], "Failed");
        await SetPhaseAsync(h.Client, byIndex["2"], "Succeeded");
        await JobWhere(h, "idx", j => j.Status?.CompletedIndexes == "1-2" && j.Status.Failed == 1, "completedIndexes=1-2 failed=1");
        time.Advance(TimeSpan.FromSeconds(11));
        var retry = (await Running(h, 1, "index 0 retried"))[0];
        Assert.Equal("0", retry.Metadata.Annotations[JobController.CompletionIndexAnnotation]);
        await SetPhaseAsync(h.Client, retry, "Succeeded");
        var done = await JobWhere(h, "idx", j => Cond(j, "Complete"), "Complete");
        Assert.Equal(("0-2", 3), (done.Status.CompletedIndexes, done.Status.Succeeded));
    }

    [Fact]
    public async Task Failures_back_off_and_exceeding_backoffLimit_fails_the_job()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        await h.Client.CreateAsync(Job("flaky", backoffLimit: 1));
        var first = (await Running(h, 1, "first pod"))[0];
        await SetPhaseAsync(h.Client, first, "Failed");
        await JobWhere(h, "flaky", j => j.Status?.Failed == 1, "failed=1");
        // No replacement before the 10 s back-off.
        await Task.Delay(300);
        Assert.Empty(await Running(h, 0, "no replacement yet"));
        time.Advance(TimeSpan.FromSeconds(11));
        var second = (await Running(h, 1, "replacement after back-off"))[0];
        Assert.NotEqual(first.Metadata.Name, second.Metadata.Name);
        await SetPhaseAsync(h.Client, second, "Failed");
        var failed = await JobWhere(h, "flaky", j => Cond(j, "Failed"), "Failed");
        Assert.Equal(2, failed.Status.Failed);
        Assert.True(Cond(failed, "FailureTarget", "BackoffLimitExceeded"));
        var c = failed.Status.Conditions.Single(x => x.Type == "Failed");
        Assert.Equal(("BackoffLimitExceeded", "Job has reached the specified backoff limit"), (c.Reason, c.Message));
        Assert.Null(failed.Status.CompletionTime);
        time.Advance(TimeSpan.FromMinutes(10));
        await Task.Delay(200);
        Assert.Empty(await Running(h, 0, "no pod after failure"));
    }

    [Fact]
    public async Task ActiveDeadlineSeconds_fails_the_job_and_deletes_its_pods()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        var j0 = Job("slow", completions: 2, parallelism: 2);
        j0.Spec.ActiveDeadlineSeconds = 30;
        await h.Client.CreateAsync(j0);
        await Running(h, 2, "2 pods");
        await JobWhere(h, "slow", j => j.Status?.Active == 2, "active=2");
        time.Advance(TimeSpan.FromSeconds(31));
        var failed = await JobWhere(h, "slow", j => Cond(j, "Failed"), "Failed by deadline");
        var c = failed.Status.Conditions.Single(x => x.Type == "Failed");
        Assert.Equal(("DeadlineExceeded", "Job was active longer than specified deadline"), (c.Reason, c.Message));
        await Eventually(() => h.PodsAsync(), l => l.Count == 0, what: "pods deleted");
        var created = (await h.Client.ListAsync<Corev1Event>("default")).Items.Where(e => e.Reason == "SuccessfulCreate").Select(e => e.Message);
        Assert.True(failed.Status.Failed == 2, $"failed={failed.Status.Failed}, {string.Join("; ", created)}");
    }

    [Fact]
    public async Task Suspend_deletes_active_pods_and_resume_recreates_them()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        var j0 = Job("later", completions: 2, parallelism: 2);
        j0.Spec.Suspend = true;
        await h.Client.CreateAsync(j0);
        var s = await JobWhere(h, "later", j => Cond(j, "Suspended", "JobSuspended"), "Suspended");
        Assert.Null(s.Status.StartTime);
        Assert.Empty(await h.PodsAsync());
        time.Advance(TimeSpan.FromMinutes(1));
        var cur = (await h.Client.GetAsync<V1Job>("default", "later"))!;
        cur.Spec.Suspend = false;
        await h.Client.UpdateAsync(cur);
        await Running(h, 2, "2 pods after resume");
        var resumed = await JobWhere(h, "later", j => j.Status?.Conditions?.Any(c => c.Type == "Suspended" && c.Status == "False" && c.Reason == "JobResumed") == true, "resumed");
        Assert.Equal(Epoch.UtcDateTime.AddMinutes(1), resumed.Status.StartTime);
        // Suspending again removes the running pods.
        cur = (await h.Client.GetAsync<V1Job>("default", "later"))!;
        cur.Spec.Suspend = true;
        await h.Client.UpdateAsync(cur);
        await Eventually(() => h.PodsAsync(), l => l.Count == 0, what: "pods deleted on suspend");
    }

    [Fact]
    public async Task Lowering_parallelism_deletes_surplus_pods()
    {
        var (h, _) = Start();
        await using var _h = h;
        await h.StartAsync();
        await h.Client.CreateAsync(Job("wide", completions: null, parallelism: 3));
        await Running(h, 3, "3 pods");
        var cur = (await h.Client.GetAsync<V1Job>("default", "wide"))!;
        cur.Spec.Parallelism = 1;
        await h.Client.UpdateAsync(cur);
        var left = await Eventually(() => h.PodsAsync(), l => l.Count == 1, what: "1 pod left");
        // completions unset: the first success completes the job.
        await SetPhaseAsync(h.Client, left[0], "Succeeded");
        await JobWhere(h, "wide", j => Cond(j, "Complete"), "Complete");
    }

    [Fact]
    public async Task Finished_jobs_with_ttl_are_deleted_after_it()
    {
        var (h, time) = Start(ttl: true);
        await using var _h = h;
        await h.StartAsync();
        var j0 = Job("short");
        j0.Spec.TtlSecondsAfterFinished = 60;
        await h.Client.CreateAsync(j0);
        var pod = (await Running(h, 1, "pod"))[0];
        await SetPhaseAsync(h.Client, pod, "Succeeded");
        await JobWhere(h, "short", j => Cond(j, "Complete"), "Complete");
        // Step the clock a second at a time: the job goes at 60 s after completion, not before.
        var at = await AdvanceUntilAsync(time, async () => await h.Client.GetAsync<V1Job>("default", "short") is not { } j || j.Metadata.DeletionTimestamp is not null);
        Assert.InRange(at - Epoch, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(62));
    }

    /// <summary>Advances the fake clock by one second per poll until <paramref name="done"/>; returns the fake time it happened.</summary>
    internal static async Task<DateTimeOffset> AdvanceUntilAsync(FakeTimeProvider time, Func<Task<bool>> done, int maxSeconds = 3600)
    {
        for (int i = 0; i < maxSeconds; i++)
        {
            for (int k = 0; k < 5; k++) { if (await done()) return time.GetUtcNow(); await Task.Delay(10); }
            time.Advance(TimeSpan.FromSeconds(1));
        }
        throw new TimeoutException("condition not reached within the fake clock's limit");
    }

    [Fact]
    public void Completed_indexes_use_the_interval_form()
    {
        var s = IndexSet.Parse("0,2-4,7");
        Assert.Equal(5, s.Count);
        s.Add(1); s.Add(8);
        Assert.Equal("0-4,7-8", s.ToString());
        Assert.Equal("", IndexSet.Parse(null).ToString());
    }
}
