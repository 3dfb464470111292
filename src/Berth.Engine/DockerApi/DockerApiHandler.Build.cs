using System.Text.Json;
using System.Threading.Channels;
using Berth.Engine.Build;
using Berth.Engine.Containers;
using Berth.Images.Registry;
using Microsoft.AspNetCore.Http;

namespace Berth.Engine.DockerApi;

public sealed partial class DockerApiHandler
{
    /// <summary>POST /build: the classic builder. The body is the context as a tar (optionally gzip);
    /// the answer is docker's JSON stream ({"stream": "Step 1/3 : …\n"}, {"aux": {"ID": …}}, and an
    /// error as {"errorDetail": {"code", "message"}, "error"}), so the docker CLI (DOCKER_BUILDKIT=0 or
    /// no buildx) and docker-compose build on Berth.</summary>
    async Task BuildImage(HttpContext ctx, string[] _)
    {
        if (Query(ctx, "remote") is { Length: > 0 } remote)
            throw ApiError.BadRequest($"building from a remote context is not supported by Berth: {remote}");
        if (Query(ctx, "version") == "2") throw ApiError.BadRequest("BuildKit (version=2) is not supported by Berth: use the classic builder (DOCKER_BUILDKIT=0)");
        var opt = new BuildOptions
        {
            DockerfilePath = Query(ctx, "dockerfile") is { Length: > 0 } df ? df : "Dockerfile",
            Target = Query(ctx, "target") is { Length: > 0 } t ? t : null,
            NoCache = QueryBool(ctx, "nocache"),
            Quiet = QueryBool(ctx, "q"),
            Pull = QueryBool(ctx, "pull"),
            NetworkMode = Query(ctx, "networkmode") is { Length: > 0 } nm and not "default" ? nm : "",
        };
        foreach (var tag in ctx.Request.Query["t"]) if (!string.IsNullOrEmpty(tag)) opt.Tags.Add(tag);
        try
        {
            if (Query(ctx, "buildargs") is { Length: > 0 } ba)
                foreach (var (k, v) in JsonSerializer.Deserialize(ba, DockerJson.Default.DictionaryStringString) ?? []) opt.BuildArgs[k] = v;
            if (Query(ctx, "labels") is { Length: > 0 } lb)
                foreach (var (k, v) in JsonSerializer.Deserialize(lb, DockerJson.Default.DictionaryStringString) ?? []) opt.Labels[k] = v ?? "";
        }
        catch (JsonException e) { throw ApiError.BadRequest("invalid buildargs or labels: " + e.Message); }

        // The context arrives first (Kestrel's body is read asynchronously), then is extracted in-root.
        var tmpParent = Path.Combine(DataRoot, "build", "tmp");
        Directory.CreateDirectory(tmpParent);
        var tarPath = Path.Combine(tmpParent, "context-" + Guid.NewGuid().ToString("N")[..12] + ".tar");
        BuildContext? context = null;
        try
        {
            await using (var f = File.Create(tarPath)) await ctx.Request.Body.CopyToAsync(f, ctx.RequestAborted);
            context = await Blocking(() => { using var f = File.OpenRead(tarPath); return BuildContext.FromTar(f, tmpParent); });
            File.Delete(tarPath);

            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/json";
            var channel = Channel.CreateUnbounded<ProgressMessage>(new UnboundedChannelOptions { SingleReader = true });
            var output = new ChannelBuildOutput(channel.Writer);
            var ctxRef = context;
            var build = Blocking(() =>
            {
                try
                {
                    var builder = new ImageBuilder(Containers, ctxRef, opt, output, async (name, ct) =>
                    {
                        var r = ParseRef(name).WithDefaultTag();
                        output.Stream($"Pulling {r.FamiliarString}\n");
                        await ContainerImages.PullAsync(DataRoot, r.ToString(), NoProgress.Instance, ct, RegistryFor(r.Domain));
                    }, ctx.RequestAborted);
                    var id = builder.Build();
                    // q=1: the ID is the only stream message (docker's SuppressOutput); the CLI prints it
                    if (opt.Quiet) output.Stream(id + "\n");
                }
                catch (BuildException e) { output.Error(e.Message, e.Code); }
                catch (Exception e) when (e is EngineException or ApiError or Berth.Images.ImageException or Berth.Linux.SyscallException or IOException or UnauthorizedAccessException)
                {
                    output.Error(e.Message, null);
                }
                finally { channel.Writer.TryComplete(); }
            });
            await foreach (var m in channel.Reader.ReadAllAsync(CancellationToken.None))
            {
                try
                {
                    // one write per message, "\r\n" included: as a chunk of its own the separator is a
                    // buffer docker-compose 1.29 cannot decode at the stream's end ("Compose tried decoding")
                    var bytes = JsonSerializer.SerializeToUtf8Bytes(m, DockerJson.Default.ProgressMessage);
                    var line = new byte[bytes.Length + 2];
                    bytes.CopyTo(line, 0);
                    line[^2] = (byte)'\r';
                    line[^1] = (byte)'\n';
                    await ctx.Response.Body.WriteAsync(line, ctx.RequestAborted);
                    await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
            }
            await build;
        }
        finally
        {
            File.Delete(tarPath);
            context?.Dispose();
        }
    }

    sealed class ChannelBuildOutput(ChannelWriter<ProgressMessage> writer) : IBuildOutput
    {
        public void Stream(string text) => writer.TryWrite(new ProgressMessage { stream = text });

        public void Result(string imageId) =>
            writer.TryWrite(new ProgressMessage { aux = JsonSerializer.SerializeToElement(new BuildResult { ID = imageId }, DockerJson.Default.BuildResult) });

        public void Error(string message, int? code) =>
            writer.TryWrite(new ProgressMessage { error = message, errorDetail = new ErrorDetail { message = message, code = code is 0 or 1 ? null : code } });
    }
}

public sealed class BuildResult { public string ID { get; set; } = ""; }
