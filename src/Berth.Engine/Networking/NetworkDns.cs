using System.Net;
using System.Net.Sockets;
using Berth.Linux;

namespace Berth.Engine.Networking;

/// <summary>
/// Daemonless name service for a user-defined network, as podman runs aardvark-dns: one small process per
/// network that has containers (`berth-dns --root DIR --network NAME`), listening on the network's gateway
/// port 53 and answering from the network's state file (so attach/detach by any process is seen at once).
/// Whoever connects a container starts it if its pid file (networks/NAME.dns.pid, "PID STARTTIME") names no
/// live process; it exits by itself once the network has no endpoint left, deciding so under the network's
/// lock, so a container attached meanwhile either sees it still running or its pid file gone.
/// </summary>
public static class NetworkDns
{
    static string PidFile(NetworkStore store, string network) => Path.Combine(store.Dir, network + ".dns.pid");

    /// <summary>The live server's pid, or null.</summary>
    public static int? RunningPid(NetworkStore store, string network)
    {
        try
        {
            var f = File.ReadAllText(PidFile(store, network)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 2 && int.TryParse(f[0], out var pid) && ulong.TryParse(f[1], out var start)
                && ProcStat.Read(pid) is { } s && s.StartTime == start && s.State is not ('Z' or 'X'))
                return pid;
        }
        catch (FileNotFoundException) { }
        catch (DirectoryNotFoundException) { }
        return null;
    }

    /// <summary>Starts the network's DNS server unless it runs (no-op for networks without embedded DNS).</summary>
    public static void EnsureRunning(NetworkManager mgr, string network, string berthExe)
    {
        var store = mgr.Store;
        if (store.TryGet(network) is not { Dns: true }) return; // the default bridge: no names (docker's)
        using var l = store.Lock(network);
        var n = store.TryGet(network);
        if (n is not { Dns: true } || n.Endpoints.Count == 0) return;
        if (RunningPid(store, network) is not null) return;
        var dataDir = Path.GetDirectoryName(store.Dir)!;
        using var devnull = RuntimeClient.DevNull();
        var pid = Spawn.Start(berthExe, ["berth-dns", "--root", dataDir, "--network", network],
            ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DOTNET_GCgen0size=40000"],
            [(devnull.Value, 0), (devnull.Value, 1), (devnull.Value, 2)], newSession: true);
        var start = ProcStat.Read(pid)?.StartTime ?? 0;
        ContainerStore_WriteAtomic(PidFile(store, network), $"{pid} {start}\n");
    }

    static void ContainerStore_WriteAtomic(string path, string text)
    {
        var tmp = path + ".tmp-" + Environment.ProcessId;
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, true);
    }

    /// <summary>berth-dns --root DIR --network NAME: serves until the network has no endpoints.</summary>
    public static int Main(string[] args)
    {
        string? root = null, network = null;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            if (args[i] == "--root") root = args[i + 1];
            else if (args[i] == "--network") network = args[i + 1];
        }
        if (root is null || network is null) { Console.Error.WriteLine("usage: berth-dns --root DIR --network NAME"); return 125; }
        var mgr = new NetworkManager(NetworkOptions.ForRoot(root));
        var store = mgr.Store;
        var self = ProcStat.Read(Environment.ProcessId)?.StartTime ?? 0;
        bool Ours()
        {
            try { return File.ReadAllText(PidFile(store, network)).Trim() == $"{Environment.ProcessId} {self}"; }
            catch (IOException) { return false; }
        }
        // The spawner writes the pid file right after spawning; the previous server may still hold the port.
        DnsServer? server = null;
        for (var i = 0; server is null; i++)
        {
            try { server = mgr.StartDns(network); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && i < 100) { Thread.Sleep(20); }
            catch (Exception e) when (e is NetworkException or SocketException)
            {
                Console.Error.WriteLine($"berth-dns: network \"{network}\": {e.Message}");
                return 1;
            }
        }
        using var done = new ManualResetEventSlim();
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; done.Set(); });
        while (!done.Wait(200))
        {
            using var l = store.Lock(network);
            var n = store.TryGet(network);
            if (n is null || n.Endpoints.Count == 0 || !Ours())
            {
                if (Ours()) File.Delete(PidFile(store, network));
                break;
            }
        }
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }

    /// <summary>Stops a network's DNS server (network removal); it also stops by itself with no endpoints.</summary>
    public static void Stop(NetworkStore store, string network)
    {
        if (RunningPid(store, network) is { } pid) Berth.Linux.Interop.Libc.kill(pid, 15);
        File.Delete(PidFile(store, network));
    }
}
