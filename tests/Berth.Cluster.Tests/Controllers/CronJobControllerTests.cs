using Berth.Cluster.Controllers;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using static Berth.Cluster.Tests.Build;

namespace Berth.Cluster.Tests.Controllers;

public class CronScheduleTests
{
    static readonly DateTime T0 = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);   // a Sunday

    static DateTime Next(string spec, DateTime after, string zone = "UTC") =>
        CronSchedule.Parse(spec).Next(after, TimeZoneInfo.FindSystemTimeZoneById(zone))!.Value;

    [Theory]
    [InlineData("*/5 * * * *", "2026-03-01T12:05:00")]
    [InlineData("7 * * * *", "2026-03-01T12:07:00")]
    [InlineData("0 9-17/4 * * *", "2026-03-01T13:00:00")]
    [InlineData("30 8,20 * * *", "2026-03-01T20:30:00")]
    [InlineData("0 0 * * MON-FRI", "2026-03-02T00:00:00")]
    [InlineData("0 0 1 JAN *", "2027-01-01T00:00:00")]
    [InlineData("0 0 13 * 5", "2026-03-06T00:00:00")]     // dom and dow both restricted: either matches (Friday 6th)
    [InlineData("0 0 15 * *", "2026-03-15T00:00:00")]
    [InlineData("0 0 * * 7", "2026-03-08T00:00:00")]      // 7 is Sunday
    [InlineData("5/20 * * * *", "2026-03-01T12:05:00")]
    [InlineData("@hourly", "2026-03-01T13:00:00")]
    [InlineData("@daily", "2026-03-02T00:00:00")]
    [InlineData("@weekly", "2026-03-08T00:00:00")]
    [InlineData("@monthly", "2026-04-01T00:00:00")]
    [InlineData("@yearly", "2027-01-01T00:00:00")]
    [InlineData("0 0 29 2 *", "2028-02-29T00:00:00")]
    public void Next_times_follow_cron_rules(string spec, string expected) =>
        Assert.Equal(DateTime.Parse(expected + "Z").ToUniversalTime(), Next(spec, T0));

    [Fact]
    public void Time_zones_shift_the_schedule()
    {
        // 09:00 in Tokyo (UTC+9) is 00:00 UTC; 02:30 on the day New York springs forward does not exist.
        Assert.Equal(new DateTime(2026, 3, 2, 0, 0, 0, DateTimeKind.Utc), Next("0 9 * * *", T0, "Asia/Tokyo"));
        Assert.Equal(new DateTime(2026, 3, 9, 6, 30, 0, DateTimeKind.Utc), Next("30 2 * * *", new DateTime(2026, 3, 8, 0, 0, 0, DateTimeKind.Utc), "America/New_York"));
    }

    [Theory]
    [InlineData("* * * *", "expected exactly 5 fields, found 4: [* * * *]")]
    [InlineData("61 * * * *", "end of range (61) above maximum (59): 61")]
    [InlineData("0-70 * * * *", "end of range (70) above maximum (59): 0-70")]
    [InlineData("* * 0 * *", "beginning of range (0) below minimum (1): 0")]
    [InlineData("x * * * *", "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax")]
    [InlineData("*/0 * * * *", "step of range should be a positive number: */0")]
    [InlineData("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1")]
    [InlineData("@fortnightly", "unrecognized descriptor: @fortnightly")]
    [InlineData("TZ=UTC * * * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")]
    [InlineData("", "empty spec string")]
    public void Bad_schedules_get_kubernetes_messages(string spec, string message) =>
        Assert.Equal(message, CronSchedule.Validate(spec));
}

public class CronJobControllerTests
{
    static readonly DateTimeOffset Epoch = JobControllerTests.Epoch;   // 12:00 UTC

    static V1CronJob Cron(string name, string schedule, string policy = "Allow") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1CronJobSpec
        {
            Schedule = schedule, ConcurrencyPolicy = policy, SuccessfulJobsHistoryLimit = 3, FailedJobsHistoryLimit = 1,
            JobTemplate = new V1JobTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["team"] = "a" } },
                Spec = JobControllerTests.Job(name).Spec,
            },
        },
    };

    static (Harness H, FakeTimeProvider Time) Start()
    {
        var time = new FakeTimeProvider(Epoch);
        var h = new Harness(time) { Kubelet = false };
        h.Add(new CronJobController(h.Factory, time));
        return (h, time);
    }

    static async Task<List<V1Job>> Jobs(Harness h) => (await h.Client.ListAsync<V1Job>("default")).Items.Where(j => j.Metadata.DeletionTimestamp is null).OrderBy(j => j.Metadata.Name).ToList();

    static async Task FinishAsync(Harness h, V1Job j, string type)
    {
        var cur = (await h.Client.GetAsync<V1Job>("default", j.Metadata.Name))!;
        var now = DateTime.UtcNow;
        cur.Status = new V1JobStatus
        {
            StartTime = cur.Metadata.CreationTimestamp, CompletionTime = type == "Complete" ? cur.Metadata.CreationTimestamp!.Value.AddSeconds(30) : null,
            Conditions = [new V1JobCondition { Type = type, Status = "True", LastTransitionTime = now }],
        };
        await h.Client.UpdateStatusAsync(cur);
    }

    static long Minutes(DateTimeOffset t) => (long)(t - DateTimeOffset.UnixEpoch).TotalMinutes;

    [Fact]
    public async Task Creates_a_job_per_scheduled_time_named_by_its_minute_and_tracks_status()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        var cj = await h.Client.CreateAsync(Cron("tick", "*/5 * * * *"));
        await Task.Delay(200);
        Assert.Empty(await Jobs(h));
        time.Advance(TimeSpan.FromMinutes(5));
        var first = (await Eventually(() => Jobs(h), l => l.Count == 1, what: "first job"))[0];
        var at = Epoch.AddMinutes(5);
        Assert.Equal($"tick-{Minutes(at)}", first.Metadata.Name);
        Assert.Equal("a", first.Metadata.Labels["team"]);
        Assert.Equal("2026-03-01T12:05:00Z", first.Metadata.Annotations[CronJobController.ScheduledTimestampAnnotation]);
        var owner = first.Metadata.OwnerReferences.Single();
        Assert.Equal(("CronJob", cj.Metadata.Uid, true), (owner.Kind, owner.Uid, owner.Controller));
        var s = await Eventually(() => h.Client.GetAsync<V1CronJob>("default", "tick").AsTask(), c => c.Status?.Active?.Count == 1, what: "active=1");
        Assert.Equal(at.UtcDateTime, s.Status.LastScheduleTime);
        Assert.Equal(first.Metadata.Name, s.Status.Active[0].Name);

        await FinishAsync(h, first, "Complete");
        var after = await Eventually(() => h.Client.GetAsync<V1CronJob>("default", "tick").AsTask(), c => c.Status?.Active is null && c.Status.LastSuccessfulTime is not null, what: "active cleared, lastSuccessfulTime");
        Assert.Equal(first.Metadata.CreationTimestamp!.Value.AddSeconds(30), after.Status.LastSuccessfulTime);
        // Allow: the next run starts while nothing else runs; then a third alongside the second.
        time.Advance(TimeSpan.FromMinutes(5));
        await Eventually(() => Jobs(h), l => l.Count == 2, what: "second job");
        time.Advance(TimeSpan.FromMinutes(5));
        await Eventually(() => Jobs(h), l => l.Count == 3, what: "third job alongside the second");
    }

    [Fact]
    public async Task Forbid_skips_while_a_job_runs_and_Replace_replaces_it()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        await h.Client.CreateAsync(Cron("solo", "* * * * *", "Forbid"));
        await h.Client.CreateAsync(Cron("swap", "* * * * *", "Replace"));
        time.Advance(TimeSpan.FromMinutes(1));
        await Eventually(() => Jobs(h), l => l.Count == 2, what: "one job each");
        time.Advance(TimeSpan.FromMinutes(1));
        var l2 = await Eventually(() => Jobs(h), l => l.Any(j => j.Metadata.Name == $"swap-{Minutes(Epoch.AddMinutes(2))}") && l.Count(j => j.Metadata.Name.StartsWith("swap-")) == 1, what: "swap replaced");
        await Task.Delay(200);
        var solo = (await Jobs(h)).Where(j => j.Metadata.Name.StartsWith("solo-")).ToList();
        Assert.Equal([$"solo-{Minutes(Epoch.AddMinutes(1))}"], solo.Select(j => j.Metadata.Name));
        // Once the running one finishes, the next minute runs again.
        await FinishAsync(h, solo[0], "Complete");
        time.Advance(TimeSpan.FromMinutes(1));
        await Eventually(() => Jobs(h), l => l.Any(j => j.Metadata.Name == $"solo-{Minutes(Epoch.AddMinutes(3))}"), what: "solo runs after the first finished");
        var events = (await h.Client.ListAsync<Corev1Event>("default")).Items;
        Assert.Contains(events, e => e.Reason == "JobAlreadyActive" && e.InvolvedObject.Name == "solo");
        Assert.Contains(events, e => e.Reason == "SuccessfulDelete" && e.InvolvedObject.Name == "swap");
    }

    [Fact]
    public async Task Suspended_cronjobs_create_nothing_and_starts_later_than_the_deadline_are_skipped()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        var c = Cron("quiet", "* * * * *");
        c.Spec.Suspend = true;
        await h.Client.CreateAsync(c);
        var late = Cron("late", "0 * * * *");
        late.Spec.StartingDeadlineSeconds = 60;
        late.Spec.Suspend = true;
        await h.Client.CreateAsync(late);
        time.Advance(TimeSpan.FromMinutes(62));      // 13:02: "late" missed 13:00 by more than 60 s
        await Task.Delay(200);
        Assert.Empty(await Jobs(h));
        var cur = (await h.Client.GetAsync<V1CronJob>("default", "late"))!;
        cur.Spec.Suspend = false;
        await h.Client.UpdateAsync(cur);
        // Times older than the deadline are not even counted (as in Kubernetes): nothing runs for 13:00.
        await Eventually(() => h.Client.GetAsync<V1CronJob>("default", "late").AsTask(), x => x.Status is not null, what: "status written");
        await Task.Delay(200);
        Assert.Empty(await Jobs(h));
        // Within the deadline the missed run still starts: at 14:00:30 the 14:00 run is 30 s late.
        time.Advance(TimeSpan.FromMinutes(58) + TimeSpan.FromSeconds(30));
        var jobs = await Eventually(() => Jobs(h), l => l.Count == 1, what: "14:00 job");
        Assert.Equal($"late-{Minutes(Epoch.AddHours(2))}", jobs[0].Metadata.Name);
    }

    [Fact]
    public async Task Only_the_latest_missed_time_runs_and_many_misses_are_reported()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        var c = Cron("busy", "* * * * *");
        c.Spec.Suspend = true;
        await h.Client.CreateAsync(c);
        time.Advance(TimeSpan.FromMinutes(150));
        var cur = (await h.Client.GetAsync<V1CronJob>("default", "busy"))!;
        cur.Spec.Suspend = false;
        await h.Client.UpdateAsync(cur);
        var jobs = await Eventually(() => Jobs(h), l => l.Count == 1, what: "one job for the latest time");
        Assert.Equal($"busy-{Minutes(Epoch.AddMinutes(150))}", jobs[0].Metadata.Name);
        await Eventually(async () => (await h.Client.ListAsync<Corev1Event>("default")).Items.ToList(), l => l.Any(e => e.Reason == "TooManyMissedTimes" && e.Message.StartsWith("too many missed start times: 150.")), what: "TooManyMissedTimes");
    }

    [Fact]
    public async Task History_limits_prune_the_oldest_finished_jobs()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        var c = Cron("hist", "* * * * *");
        c.Spec.SuccessfulJobsHistoryLimit = 2;
        c.Spec.FailedJobsHistoryLimit = 1;
        await h.Client.CreateAsync(c);
        for (int i = 1; i <= 5; i++)
        {
            time.Advance(TimeSpan.FromMinutes(1));
            var name = $"hist-{Minutes(Epoch.AddMinutes(i))}";
            var j = (await Eventually(() => Jobs(h), l => l.Any(x => x.Metadata.Name == name), what: name)).Single(x => x.Metadata.Name == name);
            await FinishAsync(h, j, i <= 3 ? "Complete" : "Failed");
        }
        var left = await Eventually(() => Jobs(h), l => l.Count == 3, what: "2 successful + 1 failed kept");
        Assert.Equal([$"hist-{Minutes(Epoch.AddMinutes(2))}", $"hist-{Minutes(Epoch.AddMinutes(3))}", $"hist-{Minutes(Epoch.AddMinutes(5))}"], left.Select(j => j.Metadata.Name));
    }

    [Fact]
    public async Task Unknown_time_zones_and_bad_schedules_are_reported_not_run()
    {
        var (h, time) = Start();
        await using var _h = h;
        await h.StartAsync();
        var c = Cron("tz", "* * * * *");
        c.Spec.TimeZone = "Mars/Olympus";
        await h.Client.CreateAsync(c);
        await h.Client.CreateAsync(Cron("bad", "every minute"));
        time.Advance(TimeSpan.FromMinutes(2));
        var ev = await Eventually(async () => (await h.Client.ListAsync<Corev1Event>("default")).Items.ToList(),
            l => l.Any(e => e.Reason == "UnknownTimeZone") && l.Any(e => e.Reason == "UnparseableSchedule"), what: "warnings");
        Assert.Contains(ev, e => e.Type == "Warning" && e.Message == "unparseable schedule: \"every minute\" : expected exactly 5 fields, found 2: [every minute]");
        Assert.Empty(await Jobs(h));
    }
}
