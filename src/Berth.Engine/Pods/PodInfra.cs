using System.Text;
using Berth.Linux;
using Berth.Linux.Netlink;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Pods;

/// <summary>
/// `berth-pod-infra`: the process that holds a pod's namespaces (podman's infra container, without an
/// image). On its main thread (the one /proc/PID/ns/* describes) it unshares the network (not with
/// --host-network), IPC and UTS namespaces, brings lo up, sets the pod's hostname, reports "ok" (or "error MESSAGE") on fd 3 and
/// then waits until it is killed. The pod's containers join /proc/PID/ns/{net,ipc,uts}.
/// </summary>
public static unsafe partial class PodInfra
{
    public static int Main(string[] args)
    {
        string? hostname = null;
        var hostNetwork = false;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--hostname" && i + 1 < args.Length) hostname = args[++i];
            else if (args[i] == "--host-network") hostNetwork = true;
        }
        try
        {
            if (unshare((hostNetwork ? 0 : CLONE_NEWNET) | CLONE_NEWIPC | CLONE_NEWUTS) != 0) throw SyscallException.Last("unshare", "pod namespaces");
            if (!string.IsNullOrEmpty(hostname))
            {
                var b = Encoding.UTF8.GetBytes(hostname);
                fixed (byte* p = b)
                    if (sethostname(p, b.Length) != 0) throw SyscallException.Last("sethostname", hostname);
            }
            if (!hostNetwork) using (var nl = RtNetlink.Open()) nl.SetUp("lo");
            Report("ok");
        }
        catch (Exception e) when (e is SyscallException or NetlinkException or IOException)
        {
            Report("error " + e.Message.Replace('\n', ' '));
            return 1;
        }
        while (true) pause();
    }

    static void Report(string line)
    {
        var b = Encoding.UTF8.GetBytes(line + "\n");
        fixed (byte* p = b) write(3, p, b.Length);
        close(3);
    }

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static partial int pause();
}
