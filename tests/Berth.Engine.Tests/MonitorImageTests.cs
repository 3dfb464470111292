using System.Diagnostics;
using Berth.Engine.Monitor;

namespace Berth.Engine.Tests;

public class MonitorImageTests
{
    [Fact]
    public void Writing_a_new_monitor_removes_old_versions_that_nothing_runs()
    {
        var dir = Directory.CreateTempSubdirectory("berth-monimg-").FullName;
        Process? running = null;
        try
        {
            var idle = Path.Combine(dir, "berth-monitor-0000000000000001");
            var busy = Path.Combine(dir, "berth-monitor-0000000000000002");
            var keep = Path.Combine(dir, "berth-monitor-0000000000000003");
            var other = Path.Combine(dir, "unrelated");
            var writing = Path.Combine(dir, "berth-monitor-0000000000000004.123.tmp");
            File.Copy("/bin/sleep", idle);
            File.Copy("/bin/sleep", busy);
            File.Copy("/bin/sleep", keep);
            File.WriteAllText(other, "x");
            File.WriteAllText(writing, "x");
            running = Process.Start(busy, "60");

            MonitorImage.RemoveUnused(dir, keep);

            Assert.False(File.Exists(idle));
            Assert.True(File.Exists(busy), "a version a live process runs is kept");
            Assert.True(File.Exists(keep));
            Assert.True(File.Exists(other));
            Assert.True(File.Exists(writing), "another start's copy being written is left alone");
        }
        finally
        {
            if (running is { HasExited: false }) { running.Kill(); running.WaitForExit(); }
            Directory.Delete(dir, true);
        }
    }
}
