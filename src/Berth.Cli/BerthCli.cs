using System.CommandLine;
using Berth.Runtime.Cli;

namespace Berth.Cli;

/// <summary>
/// `berth`: the docker/podman/kubectl-like command line. Each area adds its verbs to one root
/// command (explicit registration, no reflection: AOT-safe); this class is the composition root.
/// </summary>
public static class BerthCli
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("berth: containers, images and clusters in one binary");
        var version = new Command("version", "print the version");
        version.SetAction(_ => { Console.Out.Write($"berth version {RuncCli.Version}\n"); return 0; });
        root.Subcommands.Add(version);
        // `berth runtime ...` is dispatched before parsing (Program.cs); listed here for --help.
        root.Subcommands.Add(new Command("runtime", "the OCI runtime (runc's command line; also installed as berth-runc)"));

        // Areas register their verbs here, one line each.

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // One line, as podman does for usage errors (exit 125, docker's "error of the CLI itself").
            var err = parsed.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parsed.Errors[0];
            Console.Error.WriteLine($"berth: {err.Message} (see 'berth --help')");
            return 125;
        }
        return parsed.Invoke();
    }
}
