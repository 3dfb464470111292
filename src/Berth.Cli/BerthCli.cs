using System.CommandLine;
using Berth.Runtime.Cli;

namespace Berth.Cli;

/// <summary>
/// `berth`: the docker/podman/kubectl-like command line. Each area adds its verbs to one root
/// command (explicit registration, no reflection: AOT-safe); this class is the composition root.
/// </summary>
public static class BerthCli
{
    /// <summary>Persistent data (images, containers, volumes, cluster server), as podman's --root.</summary>
    public static readonly Option<string> DataRoot = new("--root")
    {
        Description = "persistent data directory (images, containers, volumes, server state)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BERTH_ROOT") is { Length: > 0 } r ? r : "/var/lib/berth",
        Recursive = true,
    };

    /// <summary>Runtime state that a reboot clears (sockets, runtime state), as podman's --runroot.</summary>
    public static readonly Option<string> RunRoot = new("--runroot")
    {
        Description = "runtime state directory, emptied by a reboot",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BERTH_RUNROOT") is { Length: > 0 } r ? r : "/run/berth",
        Recursive = true,
    };

    public static int Run(string[] args)
    {
        var root = new RootCommand("berth: containers, images and clusters in one binary");
        root.Options.Add(DataRoot);
        root.Options.Add(RunRoot);
        var version = new Command("version", "print the version");
        version.SetAction(_ => { Console.Out.Write($"berth version {RuncCli.Version}\n"); return 0; });
        root.Subcommands.Add(version);
        // `berth runtime ...` is dispatched before parsing (Program.cs); listed here for --help.
        root.Subcommands.Add(new Command("runtime", "the OCI runtime (runc's command line; also installed as berth-runc)"));

        // Areas register their verbs here, one line each: <Area>Commands.Register(root) from
        // src/Berth.Cli/<Area>/ (verbs), with the work done by the src/Berth.<Area> library.
        Images.ImageCommands.Register(root);
        Network.NetworkCommands.Register(root);
        Cluster.ClusterCommands.Register(root);
        Engine.EngineCommands.Register(root);

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
