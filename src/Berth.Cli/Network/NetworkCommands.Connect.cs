using System.CommandLine;
using Berth.Engine;
using Berth.Engine.Containers;
using Berth.Engine.Networking;

namespace Berth.Cli.Network;

public static partial class NetworkCommands
{
    static Command Connect()
    {
        var c = new Command("connect", "connect a container to a network (a running one at once)");
        var network = new Argument<string>("network");
        var container = new Argument<string>("container");
        var alias = new Option<string[]>("--alias") { Description = "another DNS name of the container on this network" };
        var ip = new Option<string?>("--ip") { Description = "IPv4 address" };
        c.Arguments.Add(network); c.Arguments.Add(container);
        c.Options.Add(alias); c.Options.Add(ip);
        c.SetAction(p => EngineGuard(() =>
        {
            var mgr = Containers(p);
            var rec = mgr.Get(p.GetValue(container)!);
            ContainerNetworking.ConnectContainer(mgr.Store, rec.Id, p.GetValue(network)!, p.GetValue(alias) ?? [], p.GetValue(ip), Environment.ProcessPath!);
            return 0;
        }));
        return c;
    }

    static Command Disconnect()
    {
        var c = new Command("disconnect", "disconnect a container from a network");
        var network = new Argument<string>("network");
        var container = new Argument<string>("container");
        var force = new Option<bool>("--force", "-f") { Description = "release the endpoint even if the container does not list the network" };
        c.Arguments.Add(network); c.Arguments.Add(container);
        c.Options.Add(force);
        c.SetAction(p => EngineGuard(() =>
        {
            var mgr = Containers(p);
            var rec = mgr.Get(p.GetValue(container)!);
            ContainerNetworking.DisconnectContainer(mgr.Store, rec.Id, p.GetValue(network)!, p.GetValue(force));
            return 0;
        }));
        return c;
    }

    static ContainerManager Containers(ParseResult p) => new(p.GetValue(BerthCli.DataRoot)!, p.GetValue(BerthCli.RunRoot)!);

    static int EngineGuard(Func<int> body)
    {
        try { return Guard(body); }
        catch (EngineException e) { return Fail(e.Message, 1); }
    }
}
