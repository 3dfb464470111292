using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Api;

/// <summary>Defaulting, validation and table columns of Job, CronJob, DaemonSet and StatefulSet through the API.</summary>
public class BatchAndWorkloadApiTests(ApiFixture f) : IClassFixture<ApiFixture>
{
    async Task<(HttpStatusCode Code, JsonObject Body)> Send(HttpMethod method, string path, string? json = null, string? accept = null)
    {
        using var req = new HttpRequestMessage(method, path);
        if (json is not null) { req.Content = new StringContent(json, Encoding.UTF8); req.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json"); }
        if (accept is not null) req.Headers.TryAddWithoutValidation("Accept", accept);
        using var resp = await f.Client.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        return (resp.StatusCode, text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!.AsObject());
    }

    const string Table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    const string PodTemplate = """{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}""";

    static List<string> Causes(JsonObject s) => s.Objects("details.causes").Select(c => $"{c.Str("field")}: {c.Str("message")}").ToList();

    [Fact]
    public async Task Jobs_are_defaulted_and_bad_specs_are_422()
    {
        var (code, job) = await Send(HttpMethod.Post, "/apis/batch/v1/namespaces/default/jobs", $$$"""{"metadata":{"name":"pi"},"spec":{"template":{{{PodTemplate}}}}}""");
        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal((1L, 1L, 6L, "NonIndexed"), (job.Long("spec.parallelism"), job.Long("spec.completions"), job.Long("spec.backoffLimit"), job.Str("spec.completionMode")));
        var uid = job.Str("metadata.uid");
        Assert.Equal(uid, job["spec"]!["selector"]!["matchLabels"]!["batch.kubernetes.io/controller-uid"]!.GetValue<string>());
        Assert.Equal("pi", job["spec"]!["template"]!["metadata"]!["labels"]!["batch.kubernetes.io/job-name"]!.GetValue<string>());

        var (bad, s) = await Send(HttpMethod.Post, "/apis/batch/v1/namespaces/default/jobs",
            $$$"""{"metadata":{"name":"neg"},"spec":{"parallelism":-1,"backoffLimit":-2,"activeDeadlineSeconds":0,"completionMode":"Indexed","template":{{{PodTemplate}}}}}""");
        Assert.Equal((HttpStatusCode)422, bad);
        Assert.Equal("Invalid", s.Str("reason"));
        var causes = Causes(s);
        Assert.Contains("spec.parallelism: Invalid value: -1: must be greater than or equal to 0", causes);
        Assert.Contains("spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0", causes);
        Assert.Contains("spec.activeDeadlineSeconds: Invalid value: 0: must be greater than 0", causes);
        // completions is defaulted to 1 before validation, so Indexed is fine here; a selector that misses the template is not.
        var (bad2, s2) = await Send(HttpMethod.Post, "/apis/batch/v1/namespaces/default/jobs",
            """{"metadata":{"name":"manual"},"spec":{"manualSelector":true,"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"y"}},"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}""");
        Assert.Equal((HttpStatusCode)422, bad2);
        Assert.Contains(Causes(s2), c => c.StartsWith("spec.template.metadata.labels: Invalid value: \"app=y\": `selector` does not match template `labels`"));
    }

    [Fact]
    public async Task CronJobs_validate_their_schedule_and_time_zone()
    {
        var (code, cj) = await Send(HttpMethod.Post, "/apis/batch/v1/namespaces/default/cronjobs",
            $$$$$"""{"metadata":{"name":"nightly"},"spec":{"schedule":"30 2 * * MON-FRI","timeZone":"Europe/Berlin","jobTemplate":{"spec":{"template":{{{{{PodTemplate}}}}}}}}}""");
        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal(("Allow", 3L, 1L, false), (cj.Str("spec.concurrencyPolicy"), cj.Long("spec.successfulJobsHistoryLimit"), cj.Long("spec.failedJobsHistoryLimit"), cj.Bool("spec.suspend")));

        var (bad, s) = await Send(HttpMethod.Post, "/apis/batch/v1/namespaces/default/cronjobs",
            $$$$$"""{"metadata":{"name":"broken"},"spec":{"schedule":"61 * * * *","timeZone":"Mars/Olympus","concurrencyPolicy":"Sometimes","jobTemplate":{"spec":{"parallelism":-1,"template":{{{{{PodTemplate}}}}}}}}}""");
        Assert.Equal((HttpStatusCode)422, bad);
        var causes = Causes(s);
        Assert.Contains("spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61", causes);
        Assert.Contains("spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus", causes);
        Assert.Contains(causes, c => c.StartsWith("spec.concurrencyPolicy: Unsupported value: \"Sometimes\""));
        Assert.Contains("spec.jobTemplate.spec.parallelism: Invalid value: -1: must be greater than or equal to 0", causes);
        Assert.StartsWith("CronJob.batch \"broken\" is invalid", s.Str("message"));

        var (t1, table) = await Send(HttpMethod.Get, "/apis/batch/v1/namespaces/default/cronjobs/nightly", accept: Table);
        Assert.Equal(HttpStatusCode.OK, t1);
        Assert.Equal(["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"], table.Objects("columnDefinitions").Where(c => c.Long("priority") == 0).Select(c => c.Str("name")));
        Assert.Equal(["nightly", "30 2 * * MON-FRI", "Europe/Berlin", "False", "0", "<none>"], table.Objects("rows").Single().Arr("cells").Take(6).Select(c => c!.ToString()));
    }

    [Fact]
    public async Task Job_table_prints_completions_and_duration()
    {
        await Send(HttpMethod.Post, "/apis/batch/v1/namespaces/default/jobs", $$$"""{"metadata":{"name":"wide"},"spec":{"parallelism":3,"completions":null,"template":{{{PodTemplate}}}}}""");
        var (_, table) = await Send(HttpMethod.Get, "/apis/batch/v1/namespaces/default/jobs/wide", accept: Table);
        Assert.Equal(["Name", "Status", "Completions", "Duration", "Age"], table.Objects("columnDefinitions").Where(c => c.Long("priority") == 0).Select(c => c.Str("name")));
        Assert.Equal(["wide", "Running", "0/1"], table.Objects("rows").Single().Arr("cells").Take(3).Select(c => c!.ToString()));
    }
}
