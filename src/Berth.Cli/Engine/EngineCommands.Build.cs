using System.CommandLine;
using Berth.Engine;
using Berth.Engine.Build;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`berth build`: an image from a Dockerfile, with docker's classic builder output.</summary>
    static Command BuildCommand()
    {
        var cmd = new Command("build", "build an image from a Dockerfile");
        var tags = new Option<string[]>("--tag", "-t") { Description = "name and optionally a tag (NAME[:TAG]); repeatable" };
        var file = new Option<string?>("--file", "-f") { Description = "name of the Dockerfile (default: PATH/Dockerfile; - for stdin)" };
        var buildArgs = new Option<string[]>("--build-arg") { Description = "set a build-time variable (KEY=VALUE, or KEY to take it from the environment)" };
        var target = new Option<string?>("--target") { Description = "the build stage to build" };
        var noCache = new Option<bool>("--no-cache") { Description = "do not use the cache when building the image" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "suppress the build output and print the image ID on success" };
        var labels = new Option<string[]>("--label") { Description = "set metadata on the image (KEY=VALUE)" };
        var network = new Option<string?>("--network") { Description = "network mode of the RUN instructions (default: bridge)" };
        var pull = new Option<bool>("--pull") { Description = "always pull the base images" };
        var rm = new Option<bool>("--rm") { Description = "remove intermediate containers after a successful build (always)", DefaultValueFactory = _ => true };
        var forceRm = new Option<bool>("--force-rm") { Description = "always remove intermediate containers (always)" };
        var context = new Argument<string>("PATH") { Description = "the build context directory" };
        foreach (var o in new Option[] { tags, file, buildArgs, target, noCache, quiet, labels, network, pull, rm, forceRm }) cmd.Options.Add(o);
        cmd.Arguments.Add(context);
        cmd.SetAction(p =>
        {
            var quietOn = p.GetValue(quiet);
            try
            {
                var dir = p.GetValue(context)!;
                if (dir == "-" || dir.Contains("://", StringComparison.Ordinal))
                    throw EngineException.Invalid($"the build context must be a directory: {dir}");
                var opt = new BuildOptions
                {
                    Tags = [.. p.GetValue(tags) ?? []], Target = p.GetValue(target), NoCache = p.GetValue(noCache), Quiet = quietOn,
                    NetworkMode = p.GetValue(network) ?? "", Pull = p.GetValue(pull),
                };
                foreach (var a in p.GetValue(buildArgs) ?? [])
                {
                    var i = a.IndexOf('=');
                    opt.BuildArgs[i < 0 ? a : a[..i]] = i < 0 ? Environment.GetEnvironmentVariable(a) : a[(i + 1)..];
                }
                foreach (var l in p.GetValue(labels) ?? [])
                {
                    var i = l.IndexOf('=');
                    opt.Labels[i < 0 ? l : l[..i]] = i < 0 ? "" : l[(i + 1)..];
                }
                if (!Directory.Exists(dir)) throw new EngineException(ErrorKind.NotFound, $"unable to prepare context: path \"{dir}\" not found");
                if (p.GetValue(file) is { } f)
                {
                    if (f == "-") opt.DockerfileText = Console.In.ReadToEnd();
                    else
                    {
                        var full = Path.GetFullPath(f);
                        var ctxFull = Path.GetFullPath(dir).TrimEnd('/') + "/";
                        if (full.StartsWith(ctxFull, StringComparison.Ordinal)) opt.DockerfilePath = full[ctxFull.Length..];
                        else if (File.Exists(full)) opt.DockerfileText = File.ReadAllText(full);
                        else throw new EngineException(ErrorKind.NotFound, $"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {full}: no such file or directory");
                    }
                }
                using var ctx = BuildContext.FromDirectory(dir);
                var mgr = Manager(p);
                var dataRoot = p.GetValue(BerthCli.DataRoot)!;
                var output = new ConsoleBuildOutput();
                var builder = new ImageBuilder(mgr, ctx, opt, output, (name, _) =>
                {
                    EnsureImage(dataRoot, name);
                    return Task.CompletedTask;
                }, CancellationToken.None);
                var id = builder.Build();
                if (quietOn) Console.Out.Write(id + "\n");
                return 0;
            }
            catch (BuildException e) { return Fail(e.Message, e.Code); }
            catch (EngineException e) { return Fail(e.Message, e.ExitCode == 125 ? 1 : e.ExitCode); }
            catch (Exception e) when (e is Berth.Linux.SyscallException or IOException or UnauthorizedAccessException or Berth.Images.ImageException)
            {
                return Fail(e.Message, 1);
            }
        });
        return cmd;
    }

    sealed class ConsoleBuildOutput : IBuildOutput
    {
        public void Stream(string text) { Console.Out.Write(text); Console.Out.Flush(); }
        public void Result(string imageId) { }
    }
}
