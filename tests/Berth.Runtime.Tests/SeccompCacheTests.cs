using System.Text.Json.Nodes;
using Berth.Runtime.Tests.Support;

namespace Berth.Runtime.Tests;

/// <summary>The compiled-filter cache in the state root: one file per distinct profile, hits still
/// enforce the profile, and a file whose stored profile differs from the config's is not used.</summary>
public class SeccompCacheTests
{
    static JsonObject Profile(int errno) => new()
    {
        ["defaultAction"] = "SCMP_ACT_ALLOW",
        ["syscalls"] = new JsonArray(new JsonObject { ["names"] = new JsonArray("mkdir", "mkdirat"), ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = errno }),
    };

    static string Run(Sandbox s, int errno, string? id = null)
    {
        id ??= s.NewId("sccache");
        var b = s.NewBundle(id, "mkdir /tmp/a 2>&1; echo mkdir=$?", c => c.Linux()["seccomp"] = Profile(errno));
        var r = s.Runc("run", "-b", b.Dir, id);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    [Fact]
    public void Compiled_filters_are_cached_per_profile_and_checked_on_use() => Sandbox.Run(s =>
    {
        var cache = Path.Combine(s.Root, Berth.Runtime.SeccompCache.DirName);
        Assert.Contains("No message of desired type", Run(s, 42)); // ENOMSG
        var files = Directory.GetFiles(cache);
        Assert.Single(files);
        var first = File.ReadAllBytes(files[0]);
        // A hit: same file, same enforcement.
        Assert.Contains("No message of desired type", Run(s, 42));
        Assert.Single(Directory.GetFiles(cache));
        // Another profile: its own file and its own errno.
        Assert.Contains("Invalid exchange", Run(s, 52)); // EBADE
        Assert.Equal(2, Directory.GetFiles(cache).Length);
        // A file whose stored profile does not match byte for byte is ignored and rewritten: swap the
        // program in the ENOMSG file for the EBADE one's, keeping its name but spoiling its profile.
        var other = Directory.GetFiles(cache).Single(f => f != files[0]);
        var spoiled = File.ReadAllBytes(other);
        File.WriteAllBytes(files[0], spoiled);
        Assert.Contains("No message of desired type", Run(s, 42));
        Assert.Equal(first, File.ReadAllBytes(files[0]));
    });

    [Fact]
    public void The_config_without_its_profile_is_the_same_config_with_seccomp_null()
    {
        var config = """{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"}],"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]},"maskedPaths":["/proc/kcore"]},"hostname":"h"}"""u8.ToArray();
        var section = Berth.Runtime.SeccompCache.Section(config);
        Assert.NotNull(section);
        var stripped = Berth.Runtime.SeccompCache.WithoutSection(config, section.Value);
        Assert.Equal("""{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"}],"seccomp":null,"maskedPaths":["/proc/kcore"]},"hostname":"h"}""",
            System.Text.Encoding.UTF8.GetString(stripped));
        var spec = Berth.Oci.Runtime.SpecJson.ParseSpecWithoutSeccomp(stripped);
        Assert.Null(spec.Linux!.Seccomp);
        Assert.Equal(["/proc/kcore"], spec.Linux.MaskedPaths!);
        Assert.Equal("h", spec.Hostname);
        // No section: nothing to strip.
        Assert.Null(Berth.Runtime.SeccompCache.Section("""{"linux":{}}"""u8.ToArray()));
    }

    [Fact]
    public void The_cache_is_bounded_and_no_container_id_collides_with_it() => Sandbox.Run(s =>
    {
        var cache = Path.Combine(s.Root, Berth.Runtime.SeccompCache.DirName);
        // A container may be called what the cache directory was once called.
        Assert.Contains("Operation not permitted", Run(s, 1, s.Track("seccomp-cache")));
        for (var e = 2; e < 2 + Berth.Runtime.SeccompCache.MaxEntries + 3; e++) Run(s, e);
        var files = Directory.GetFiles(cache);
        Assert.Equal(Berth.Runtime.SeccompCache.MaxEntries, files.Length);
        // The newest stays: running it again is a hit (no new file, same count).
        Run(s, 2 + Berth.Runtime.SeccompCache.MaxEntries + 2);
        Assert.Equal(Berth.Runtime.SeccompCache.MaxEntries, Directory.GetFiles(cache).Length);
    });
}
