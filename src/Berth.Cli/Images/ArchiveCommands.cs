using System.CommandLine;
using Berth.Images;
using Berth.Images.Archive;

namespace Berth.Cli.Images;

/// <summary>`save` and `load` (also `image save|load`): docker's verbs over the engine's ImageManager (an <see cref="ImageArchive"/> that writes save/load events).</summary>
public static class ArchiveCommands
{
    public static Command Save()
    {
        var c = new Command("save", "save one or more images to a tar archive (standard output by default)");
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "write to FILE (a directory for oci-dir) instead of standard output" };
        var format = new Option<string>("--format") { Description = "docker-archive (default), oci-archive or oci-dir", DefaultValueFactory = _ => "docker-archive" };
        c.Arguments.Add(images);
        c.Options.Add(output);
        c.Options.Add(format);
        ImageCommands.Action(c, async (p, ct) =>
        {
            var fmt = ArchiveFormats.Parse(p.GetValue(format)!);
            var refs = p.GetValue(images)!;
            var archive = ImageCommands.Manager(p);
            var file = p.GetValue(output);
            if (fmt == ArchiveFormat.OciDir)
            {
                if (string.IsNullOrEmpty(file)) throw ImageException.Invalid("the oci-dir format needs -o DIRECTORY");
                await archive.SaveToDirectoryAsync(file, refs, ct).ConfigureAwait(false);
                return 0;
            }
            if (string.IsNullOrEmpty(file) || file == "-")
            {
                if (!Console.IsOutputRedirected) throw ImageException.Invalid("cowardly refusing to save to a terminal. Use the -o flag or redirect");
                await using var stdout = Console.OpenStandardOutput();
                await archive.SaveAsync(stdout, refs, fmt, ct).ConfigureAwait(false);
                return 0;
            }
            // The archive appears complete or not at all: written beside its name, renamed at the end.
            var full = Path.GetFullPath(file);
            if (Directory.Exists(full)) throw ImageException.Invalid($"{file} is a directory");
            var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
            try
            {
                var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (fs.ConfigureAwait(false))
                {
                    await archive.SaveAsync(fs, refs, fmt, ct).ConfigureAwait(false);
                    fs.Flush(flushToDisk: true);
                }
                File.Move(tmp, full, overwrite: true);
            }
            finally { File.Delete(tmp); }
            return 0;
        });
        return c;
    }

    public static Command Load()
    {
        var c = new Command("load", "load images from a docker-archive or OCI archive (standard input by default)");
        var input = new Option<string?>("--input", "-i") { Description = "read from FILE (a tar, plain, gzip or zstd; or an OCI layout directory)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "suppress progress output (there is none: the loaded names are still printed)" };
        c.Options.Add(input);
        c.Options.Add(quiet);
        ImageCommands.Action(c, async (p, ct) =>
        {
            var archive = ImageCommands.Manager(p);
            IReadOnlyList<LoadedImage> loaded;
            var file = p.GetValue(input);
            if (string.IsNullOrEmpty(file) || file == "-")
            {
                if (!Console.IsInputRedirected) throw ImageException.Invalid("requested load from stdin, but stdin is a terminal: use -i FILE or redirect");
                await using var stdin = Console.OpenStandardInput();
                loaded = await archive.LoadAsync(stdin, ct).ConfigureAwait(false);
            }
            else if (Directory.Exists(file)) loaded = await archive.LoadDirectoryAsync(file, ct).ConfigureAwait(false);
            else
            {
                FileStream fs;
                try { fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan); }
                catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw ImageException.NotFound($"archive {file} does not exist"); }
                await using (fs.ConfigureAwait(false)) loaded = await archive.LoadAsync(fs, ct).ConfigureAwait(false);
            }
            foreach (var img in loaded)
            {
                if (img.Names.Count == 0) Console.Out.WriteLine($"Loaded image ID: {img.Id}");
                foreach (var n in img.Names) Console.Out.WriteLine($"Loaded image: {n.FamiliarString}");
            }
            return 0;
        });
        return c;
    }
}
