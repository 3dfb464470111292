using System.CommandLine;
using Berth.Engine;
using Berth.Engine.Containers;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`export`, `import`, `commit`, `diff`: a container's filesystem as a tar, images made
    /// from a tar or from a container's changes, and the changes themselves.</summary>
    static IEnumerable<Command> ImageVerbs()
    {
        var export = new Command("export", "export a container's filesystem as a tar archive");
        var exOut = new Option<string?>("--output", "-o") { Description = "write to a file instead of stdout" };
        var exName = new Argument<string>("container");
        export.Options.Add(exOut); export.Arguments.Add(exName);
        export.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var c = mgr.Get(p.GetValue(exName)!); // not found: one line, no file left
            if (p.GetValue(exOut) is { } file)
            {
                var tmp = file + ".berth-tmp";
                try
                {
                    using (var f = File.Create(tmp)) ContainerArchive.Export(mgr, c.Id, f);
                    File.Move(tmp, file, overwrite: true);
                }
                finally { File.Delete(tmp); }
            }
            else
            {
                if (!Console.IsOutputRedirected) throw EngineException.Invalid("cowardly refusing to save to a terminal. Use the -o flag or redirect");
                using var o = Console.OpenStandardOutput();
                ContainerArchive.Export(mgr, c.Id, o);
            }
            return 0;
        }));
        yield return export;

        var import = new Command("import", "import the contents from a tarball to create a filesystem image");
        var imChange = new Option<string[]>("--change", "-c") { Description = "apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL)" };
        var imMsg = new Option<string?>("--message", "-m") { Description = "commit message for the imported image" };
        var imFile = new Argument<string>("file") { Description = "file (tar, optionally gzip) or - for stdin" };
        var imRef = new Argument<string?>("reference") { Arity = ArgumentArity.ZeroOrOne, Description = "REPOSITORY[:TAG]" };
        import.Options.Add(imChange); import.Options.Add(imMsg); import.Arguments.Add(imFile); import.Arguments.Add(imRef);
        import.SetAction(p => Guard(() =>
        {
            var src = p.GetValue(imFile)!;
            if (src.Contains("://", StringComparison.Ordinal)) throw EngineException.Invalid($"importing from a URL is not supported: {src}");
            if (src != "-" && !File.Exists(src)) throw new EngineException(ErrorKind.NotFound, $"open {src}: no such file or directory");
            using var input = src == "-" ? Console.OpenStandardInput() : File.OpenRead(src);
            var id = ImageCommitter.Import(p.GetValue(BerthCli.DataRoot)!, input, src == "-" ? "-" : src, p.GetValue(imRef), p.GetValue(imMsg) ?? "", p.GetValue(imChange) ?? []);
            Console.Out.Write(id + "\n");
            return 0;
        }));
        yield return import;

        var commit = new Command("commit", "create a new image from a container's changes");
        var coAuthor = new Option<string?>("--author", "-a") { Description = "author (e.g. \"John Hannibal Smith <hannibal@a-team.com>\")" };
        var coMsg = new Option<string?>("--message", "-m") { Description = "commit message" };
        var coChange = new Option<string[]>("--change", "-c") { Description = "apply a Dockerfile instruction to the created image" };
        var coPause = new Option<bool>("--pause", "-p") { Description = "pause the container during commit (default true)", DefaultValueFactory = _ => true };
        var coName = new Argument<string>("container");
        var coRef = new Argument<string?>("reference") { Arity = ArgumentArity.ZeroOrOne, Description = "REPOSITORY[:TAG]" };
        foreach (var o in new Option[] { coAuthor, coMsg, coChange, coPause }) commit.Options.Add(o);
        commit.Arguments.Add(coName); commit.Arguments.Add(coRef);
        commit.SetAction(p => Guard(() =>
        {
            var id = ImageCommitter.Commit(Manager(p), p.GetValue(coName)!, p.GetValue(coRef), p.GetValue(coAuthor) ?? "", p.GetValue(coMsg) ?? "",
                p.GetValue(coChange) ?? [], p.GetValue(coPause));
            Console.Out.Write(id + "\n");
            return 0;
        }));
        yield return commit;

        var diff = new Command("diff", "inspect changes to files or directories on a container's filesystem");
        var diName = new Argument<string>("container");
        diff.Arguments.Add(diName);
        diff.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var c = mgr.Get(p.GetValue(diName)!);
            foreach (var ch in ContainerChanges.Compute(mgr, c)) Console.Out.Write($"{ch.Kind} {ch.Path}\n");
            return 0;
        }));
        yield return diff;
    }
}
