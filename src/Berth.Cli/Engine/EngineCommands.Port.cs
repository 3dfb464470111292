using System.CommandLine;
using Berth.Engine.Networking;

namespace Berth.Cli.Engine;

public static unsafe partial class EngineCommands
{
    /// <summary>`berth port CONTAINER [PORT[/PROTO]]`: the container's published ports.</summary>
    static Command PortCommand()
    {
        var c = new Command("port", "list a container's published ports, or the host address of one");
        var container = new Argument<string>("container");
        var port = new Argument<string?>("port") { Arity = ArgumentArity.ZeroOrOne, Description = "PORT[/tcp|udp]" };
        c.Arguments.Add(container);
        c.Arguments.Add(port);
        c.SetAction(p => Guard(() =>
        {
            var rec = Manager(p).Get(p.GetValue(container)!);
            foreach (var line in ContainerNetworking.PortLines(rec, p.GetValue(port))) Console.Out.Write(line + "\n");
            return 0;
        }));
        return c;
    }
}
