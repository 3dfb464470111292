namespace Berth.Tests.Shared;

/// <summary>A test sandbox's processes, found in /proc: those whose argv names the sandbox's
/// directory (monitors, pod infras, DNS servers) and those whose root is inside its rootfs (container
/// processes). Zombies do not count. Shared by EngineSandbox and the network tests' ContainerWorld.</summary>
public static class ProcessScan
{
    public static List<int> Find(string dir, string rootfs)
    {
        var found = new List<int>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                if (IsZombie(pid)) continue;
                string root = "";
                try { root = new FileInfo(Path.Combine(d, "root")).LinkTarget ?? ""; } catch (IOException) { } catch (UnauthorizedAccessException) { }
                if (Cmdline(pid).Contains(dir, StringComparison.Ordinal) || root.StartsWith(rootfs, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    public static string Cmdline(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (IOException) { return ""; }
    }

    /// <summary>True for a zombie (or dead) process and for one that is gone.</summary>
    public static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] is 'Z' or 'X';
        }
        catch (IOException) { return true; }
    }
}
