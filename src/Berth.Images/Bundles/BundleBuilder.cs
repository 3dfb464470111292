using System.Text;
using Berth.Linux;
using Berth.Oci.Image;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Images.Bundles;

/// <summary>What `docker run` can override of the image config. Entrypoint set (even to empty)
/// replaces the image's and drops the image's Cmd, as docker does.</summary>
public sealed record BundleOverrides
{
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    /// <summary>KEY=VALUE entries applied over the image's (a bare KEY removes it).</summary>
    public IReadOnlyList<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
}

/// <summary>The spec plus the image data the engine acts on itself.</summary>
public sealed record Bundle(
    Spec Spec,
    IReadOnlyList<string> Volumes,
    IReadOnlyList<string> ExposedPorts,
    IReadOnlyDictionary<string, string> Labels,
    string? StopSignal,
    HealthConfig? Healthcheck);

public sealed class BundleException(string message) : Exception(message);

/// <summary>
/// Image config + rootfs → OCI runtime spec (starting from runc's default spec), with docker's
/// rules for entrypoint/cmd, env (PATH added when missing, HOME from the user's passwd entry) and
/// user resolution against the image's own /etc/passwd and /etc/group, read inside the rootfs with
/// in-root resolution. Pure apart from reading those two files.
/// </summary>
public static class BundleBuilder
{
    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    const int MaxIdFile = 4 << 20;

    public static Bundle Build(ImageConfigFile image, string rootfs, BundleOverrides? overrides = null)
    {
        overrides ??= new BundleOverrides();
        var c = image.Config ?? new ContainerConfig();
        var spec = DefaultSpec.Create();
        var p = spec.Process!;
        p.Terminal = false;

        List<string> entrypoint, cmd;
        if (overrides.Entrypoint != null)
        {
            entrypoint = overrides.Entrypoint.Where(a => a.Length > 0 || overrides.Entrypoint.Count > 1).ToList();
            cmd = overrides.Cmd?.ToList() ?? [];
        }
        else
        {
            entrypoint = c.Entrypoint?.ToList() ?? [];
            cmd = overrides.Cmd is { Count: > 0 } o ? o.ToList() : c.Cmd?.ToList() ?? [];
        }
        p.Args = [.. entrypoint, .. cmd];
        if (p.Args.Count == 0) throw new BundleException("no command specified: the image has no Entrypoint or Cmd and none was given");

        var cwd = overrides.WorkingDir is { Length: > 0 } w ? w : c.WorkingDir is { Length: > 0 } iw ? iw : "/";
        p.Cwd = RootfsPath.CleanInRoot(cwd);

        using var root = Sys.Open(rootfs, O_PATH | O_DIRECTORY);
        var (user, home) = ResolveUser(root, overrides.User ?? c.User ?? "");
        p.User = user;

        var env = new List<string>();
        void Set(string kv)
        {
            var eq = kv.IndexOf('=');
            var key = eq < 0 ? kv : kv[..eq];
            if (key.Length == 0) throw new BundleException($"invalid environment entry \"{kv}\"");
            env.RemoveAll(e => e.Length > key.Length && e[key.Length] == '=' && e.StartsWith(key, StringComparison.Ordinal));
            if (eq >= 0) env.Add(kv);
        }
        foreach (var e in c.Env ?? []) Set(e);
        foreach (var e in overrides.Env ?? []) Set(e);
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))) env.Insert(0, DefaultPath);
        if (!env.Any(e => e.StartsWith("HOME=", StringComparison.Ordinal))) env.Add("HOME=" + (home ?? "/"));
        p.Env = env;

        spec.Root = new Root { Path = rootfs, Readonly = false };
        var labels = c.Labels is null ? new Dictionary<string, string>() : new Dictionary<string, string>(c.Labels);
        if (labels.Count > 0) spec.Annotations = new Dictionary<string, string>(labels);
        return new Bundle(
            spec,
            (c.Volumes?.Keys ?? Enumerable.Empty<string>()).Order(StringComparer.Ordinal).ToList(),
            (c.ExposedPorts?.Keys ?? Enumerable.Empty<string>()).Order(StringComparer.Ordinal).ToList(),
            labels,
            c.StopSignal,
            c.Healthcheck);
    }

    sealed record PasswdEntry(string Name, uint Uid, uint Gid, string Home);
    sealed record GroupEntry(string Name, uint Gid, string[] Members);

    /// <summary>docker/runc semantics (libcontainer user.GetExecUser): "" is root; a name must exist
    /// in /etc/passwd; a numeric uid need not (gid 0 then); "user:group" takes the group by name (must
    /// exist) or number and then adds no supplementary groups; otherwise the groups listing the user
    /// by name are added.</summary>
    static (User, string?) ResolveUser(Fd root, string spec)
    {
        var colon = spec.IndexOf(':');
        var userPart = colon < 0 ? spec : spec[..colon];
        var groupPart = colon < 0 ? "" : spec[(colon + 1)..];
        if (userPart.Length == 0) userPart = "0";

        var passwd = ReadPasswd(root);
        var numericUser = uint.TryParse(userPart, out var uidNum);
        var entry = numericUser ? passwd.FirstOrDefault(e => e.Uid == uidNum) : passwd.FirstOrDefault(e => e.Name == userPart);
        if (entry is null && !numericUser) throw new BundleException($"unable to find user {userPart}: no matching entries in passwd file");
        var uid = entry?.Uid ?? uidNum;
        var gid = entry?.Gid ?? 0;
        var user = new User { Uid = uid, Gid = gid };

        if (groupPart.Length > 0 || entry != null)
        {
            var groups = ReadGroups(root);
            if (groupPart.Length > 0)
            {
                if (uint.TryParse(groupPart, out var g)) gid = g;
                else gid = (groups.FirstOrDefault(x => x.Name == groupPart)
                    ?? throw new BundleException($"unable to find group {groupPart}: no matching entries in group file")).Gid;
                user.Gid = gid;
            }
            else
            {
                var sgids = groups.Where(x => x.Members.Contains(entry!.Name)).Select(x => x.Gid).Distinct().ToList();
                if (sgids.Count > 0) user.AdditionalGids = sgids;
            }
        }
        return (user, entry?.Home);
    }

    static List<string[]> ReadColonFile(Fd root, string path)
    {
        byte[]? data;
        try { data = RootfsPath.ReadFile(root, path, MaxIdFile); }
        catch (SyscallException e) { throw new BundleException($"cannot read the image's {path}: {e.Message}"); }
        if (data is null) return [];
        return Encoding.UTF8.GetString(data).Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(':'))
            .ToList();
    }

    static List<PasswdEntry> ReadPasswd(Fd root) =>
        ReadColonFile(root, "/etc/passwd")
            .Where(f => f.Length >= 4 && uint.TryParse(f[2], out _) && uint.TryParse(f[3], out _))
            .Select(f => new PasswdEntry(f[0], uint.Parse(f[2]), uint.Parse(f[3]), f.Length >= 6 ? f[5] : "/"))
            .ToList();

    static List<GroupEntry> ReadGroups(Fd root) =>
        ReadColonFile(root, "/etc/group")
            .Where(f => f.Length >= 3 && uint.TryParse(f[2], out _))
            .Select(f => new GroupEntry(f[0], uint.Parse(f[2]), f.Length >= 4 ? f[3].Split(',', StringSplitOptions.RemoveEmptyEntries) : []))
            .ToList();
}
