using Berth.Engine.Containers;
using Berth.Oci.Runtime;

namespace Berth.Engine.Tests;

/// <summary><see cref="ExecCheck"/> against this process's own root (/proc/PID/root of the test):
/// runc's messages for a command that cannot start, nothing for one that can.</summary>
public sealed class ExecCheckTests
{
    static string? Check(string cwd, params string[] args) => ExecCheck.Problem(Environment.ProcessId,
        new Process { Args = [.. args], Cwd = cwd, Env = ["PATH=/usr/local/bin:/usr/bin:/bin"] });

    [Fact]
    public void A_command_that_can_start_has_no_problem()
    {
        Assert.Null(Check("/", "sh", "-c", "true"));
        Assert.Null(Check("/", "/bin/sh"));
        Assert.Null(Check("/usr", "./bin/env"));
    }

    [Fact]
    public void Commands_that_cannot_start_get_runcs_words()
    {
        Assert.Equal("exec: \"no-such-command-berth\": executable file not found in $PATH", Check("/", "no-such-command-berth"));
        Assert.Equal("exec: \"/etc/passwd\": permission denied", Check("/", "/etc/passwd"));
        Assert.Equal("exec: \"/tmp\": permission denied", Check("/", "/tmp"));
        Assert.Equal("exec: \"/nosuch/x\": stat /nosuch/x: no such file or directory", Check("/", "/nosuch/x"));
        Assert.Equal("exec: \"/etc/passwd/x\": stat /etc/passwd/x: not a directory", Check("/", "/etc/passwd/x"));
        // a name in $PATH that is a directory or not executable is skipped, as Go's LookPath does
        Assert.Equal("exec: \"lib\": executable file not found in $PATH", ExecCheck.Problem(Environment.ProcessId,
            new Process { Args = ["lib"], Cwd = "/", Env = ["PATH=/usr"] }));
    }

    [Fact]
    public void A_working_directory_that_is_missing_or_a_file_is_the_first_problem()
    {
        Assert.Equal("chdir to cwd (\"/nosuch-berth\") set in config.json failed: no such file or directory", Check("/nosuch-berth", "sh"));
        Assert.Equal("chdir to cwd (\"/etc/passwd\") set in config.json failed: not a directory", Check("/etc/passwd", "sh"));
    }

    [Fact]
    public void The_message_is_dockerds()
    {
        Assert.Equal("OCI runtime exec failed: exec failed: unable to start container process: exec: \"x\": executable file not found in $PATH: unknown",
            ContainerManager.ExecFailure("exec: \"x\": executable file not found in $PATH"));
        Assert.EndsWith("not a directory: unknown: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type",
            ContainerManager.ExecFailure("chdir to cwd (\"/etc/passwd\") set in config.json failed: not a directory"));
    }

    [Fact]
    public void No_process_no_check() => Assert.Null(ExecCheck.Problem(0, new Process { Args = ["x"] }));
}
