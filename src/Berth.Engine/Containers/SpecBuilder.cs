using System.Text;
using Berth.Linux;
using Berth.Linux.Seccomp;
using Berth.Oci.Runtime;
using static Berth.Linux.Interop.Libc;

namespace Berth.Engine.Containers;

/// <summary>The container's OCI spec: a base spec (DefaultSpec.Create() for a --rootfs directory; the
/// image bundle builder's output once images land) with Docker's defaults and the run options of
/// the record applied. Pure apart from reading the rootfs's /etc/passwd and /etc/group for -u.</summary>
public static class SpecBuilder
{
    /// <summary>Docker's default capability set (moby oci/caps/defaults.go).</summary>
    public static readonly string[] DockerDefaultCaps =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <param name="baseSpec">Spec to start from; its process args/env/cwd are the image's defaults.</param>
    /// <param name="c">The container (Config, HostConfig, Mounts already validated by the caller).</param>
    /// <param name="containerDir">Where the container's hosts/hostname/resolv.conf live.</param>
    public static Spec Build(Spec baseSpec, ContainerRecord c, string containerDir)
    {
        var spec = baseSpec;
        var cfg = c.Config;
        var hc = c.HostConfig;
        var p = spec.Process ??= new Process();

        p.Terminal = cfg.Tty;
        // the pty is made at the client's size, so the first prompt needs no SIGWINCH (as with dockerd)
        p.ConsoleSize = cfg.Tty && hc.ConsoleSize is [var rows, var cols] && (rows > 0 || cols > 0) ? new Box { Height = rows, Width = cols } : null;
        p.Args = [.. c.Args.Prepend(c.Path)];
        var env = new List<string>();
        void SetEnv(string kv)
        {
            var key = kv.Split('=')[0] + "=";
            env.RemoveAll(e => e.StartsWith(key, StringComparison.Ordinal));
            env.Add(kv);
        }
        foreach (var e in p.Env ?? []) SetEnv(e);
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))) SetEnv(DefaultPath);
        SetEnv("HOSTNAME=" + cfg.Hostname);
        if (cfg.Tty) SetEnv("TERM=xterm"); else env.RemoveAll(e => e.StartsWith("TERM=", StringComparison.Ordinal));
        foreach (var e in cfg.Env) SetEnv(e);
        p.Env = env;
        p.Cwd = cfg.WorkingDir.Length > 0 ? cfg.WorkingDir : (string.IsNullOrEmpty(p.Cwd) ? "/" : p.Cwd);
        p.User = ResolveUser(c.Rootfs, cfg.User);
        // docker sets HOME from the user's passwd entry ("/" without one) unless the image or request did
        if (!env.Any(e => e.StartsWith("HOME=", StringComparison.Ordinal))) env.Add("HOME=" + HomeOf(c.Rootfs, p.User.Uid));
        p.Rlimits = null; // inherit, as docker does without --ulimit
        p.NoNewPrivileges = hc.SecurityOpt.Any(o => o is "no-new-privileges" or "no-new-privileges:true" or "no-new-privileges=true");
        var caps = Capabilities(hc);
        p.Capabilities = new Oci.Runtime.Capabilities { Bounding = [.. caps], Effective = [.. caps], Permitted = [.. caps] };

        spec.Root = new Root { Path = c.Rootfs, Readonly = hc.ReadonlyRootfs };
        spec.Hostname = cfg.Hostname;
        if (cfg.Domainname.Length > 0) spec.Domainname = cfg.Domainname;

        var mounts = spec.Mounts ?? [];
        if (hc.Privileged)
            foreach (var m in mounts.Where(m => m.Destination is "/sys" or "/sys/fs/cgroup"))
                m.Options = m.Options?.Where(o => o != "ro").Append("rw").ToList();
        foreach (var (file, dest) in new[] { ("hostname", "/etc/hostname"), ("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf") })
        {
            mounts.RemoveAll(m => m.Destination == dest);
            mounts.Add(new Mount { Destination = dest, Type = "bind", Source = System.IO.Path.Combine(containerDir, file), Options = ["rbind", "rprivate"] });
        }
        foreach (var mp in c.Mounts)
        {
            mounts.RemoveAll(m => m.Destination == mp.Destination);
            if (mp.Type == "tmpfs")
            {
                var opts = new List<string> { "nosuid", "nodev", "noexec" };
                foreach (var o in mp.Mode.Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (o == "exec") { opts.Remove("noexec"); continue; }
                    if (o == "suid") { opts.Remove("nosuid"); continue; }
                    if (o == "dev") { opts.Remove("nodev"); continue; }
                    opts.Add(o);
                }
                mounts.Add(new Mount { Destination = mp.Destination, Type = "tmpfs", Source = "tmpfs", Options = opts });
            }
            else
            {
                var opts = new List<string> { "rbind", mp.Propagation.Length > 0 ? mp.Propagation : "rprivate" };
                if (!mp.RW) opts.Add("ro");
                mounts.Add(new Mount { Destination = mp.Destination, Type = "bind", Source = mp.Source, Options = opts });
            }
        }
        spec.Mounts = mounts;

        var linux = spec.Linux ??= new Oci.Runtime.Linux();
        if (hc.NetworkMode == "host") linux.Namespaces?.RemoveAll(n => n.Type == "network");
        var res = linux.Resources ??= new LinuxResources();
        if (hc.Privileged)
        {
            res.Devices = [new DeviceCgroup { Allow = true, Access = "rwm" }];
            linux.MaskedPaths = null;
            linux.ReadonlyPaths = null;
        }
        else
        {
            linux.MaskedPaths = [.. DefaultSpec.MaskedPaths];
            linux.ReadonlyPaths = [.. DefaultSpec.ReadonlyPaths];
        }
        hc.MaskedPaths = linux.MaskedPaths ?? [];
        hc.ReadonlyPaths = linux.ReadonlyPaths ?? [];
        linux.Seccomp = SeccompFor(hc, caps);
        HostResources.Apply(spec, c);
        return spec;
    }

    /// <summary>Docker's default set, then --cap-drop, then --cap-add ("ALL" allowed in both); all of
    /// them with --privileged.</summary>
    public static List<string> Capabilities(HostConfig hc)
    {
        // "All" is what this process may hand on: its own bounding set (root here may lack some).
        var all = HostBounding();
        if (hc.Privileged) return all;
        var set = new List<string>(DockerDefaultCaps);
        foreach (var d in hc.CapDrop)
        {
            if (d.Equals("ALL", StringComparison.OrdinalIgnoreCase)) set.Clear();
            else set.Remove(CapName(d));
        }
        foreach (var a in hc.CapAdd)
        {
            if (a.Equals("ALL", StringComparison.OrdinalIgnoreCase)) { set = all; continue; }
            var n = CapName(a);
            if (!set.Contains(n)) set.Add(n);
        }
        return set;
    }

    static List<string> HostBounding()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapBnd:", StringComparison.Ordinal));
        var mask = line is null ? Caps.All : Convert.ToUInt64(line[7..].Trim(), 16);
        return Caps.ToNames(mask & Caps.All);
    }

    public static string CapName(string s)
    {
        var n = s.ToUpperInvariant();
        if (!n.StartsWith("CAP_", StringComparison.Ordinal)) n = "CAP_" + n;
        if (!Caps.Names.Contains(n)) throw EngineException.Invalid($"unknown capability \"{s}\"");
        return n;
    }

    static Oci.Runtime.Seccomp? SeccompFor(HostConfig hc, List<string> caps)
    {
        if (hc.Privileged) return null;
        var opt = hc.SecurityOpt.FirstOrDefault(o => o.StartsWith("seccomp", StringComparison.Ordinal));
        if (opt is null) return DefaultSeccompProfile.Create(caps);
        var value = opt.Length > 8 ? opt[8..] : "";
        if (value == "unconfined") return null;
        byte[] json;
        try { json = File.ReadAllBytes(value); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw EngineException.Invalid($"opening seccomp profile {value}: {e.Message}");
        }
        // The profile is the OCI linux.seccomp object (what docker's default.json reduces to).
        var doc = Encoding.UTF8.GetBytes("{\"ociVersion\":\"1.0.2\",\"linux\":{\"seccomp\":")
            .Concat(json).Concat(Encoding.UTF8.GetBytes("}}")).ToArray();
        try { return SpecJson.ParseSpec(doc, value).Linux?.Seccomp; }
        catch (SpecException e) { throw EngineException.Invalid($"seccomp profile {value}: {e.Message}"); }
    }

    /// <summary>-u USER[:GROUP] with names looked up in the rootfs's /etc/passwd and /etc/group
    /// (read through a descriptor resolved inside the rootfs), supplementary groups from /etc/group.</summary>
    public static User ResolveUser(string rootfs, string spec)
    {
        var passwd = ReadInRoot(rootfs, "/etc/passwd");
        var group = ReadInRoot(rootfs, "/etc/group");
        var parts = spec.Length == 0 ? ["0"] : spec.Split(':', 2);
        string userPart = parts[0], groupPart = parts.Length > 1 ? parts[1] : "";
        uint uid, gid = 0;
        string? userName = null;
        var pw = passwd.Select(l => l.Split(':')).Where(f => f.Length >= 4).ToList();
        if (uint.TryParse(userPart, out uid))
        {
            var e = pw.FirstOrDefault(f => f[2] == userPart);
            if (e is not null) { userName = e[0]; uint.TryParse(e[3], out gid); }
        }
        else
        {
            var e = pw.FirstOrDefault(f => f[0] == userPart)
                ?? throw EngineException.Invalid($"unable to find user {userPart}: no matching entries in passwd file");
            userName = e[0];
            uid = uint.Parse(e[2]);
            uint.TryParse(e[3], out gid);
        }
        var gr = group.Select(l => l.Split(':')).Where(f => f.Length >= 4).ToList();
        if (groupPart.Length > 0)
        {
            if (!uint.TryParse(groupPart, out gid))
                gid = uint.Parse((gr.FirstOrDefault(f => f[0] == groupPart)
                    ?? throw EngineException.Invalid($"unable to find group {groupPart}: no matching entries in group file"))[2]);
        }
        // Like docker (libcontainer's GetExecUser): the primary group, then the groups listing the user.
        var extra = new List<uint> { gid };
        if (userName is not null && groupPart.Length == 0)
            foreach (var f in gr)
                if (f[3].Split(',').Contains(userName) && uint.TryParse(f[2], out var g) && g != gid && !extra.Contains(g)) extra.Add(g);
        return new User { Uid = uid, Gid = gid, AdditionalGids = extra };
    }

    /// <summary>The home directory of <paramref name="uid"/> in the rootfs's /etc/passwd, "/" without an entry.</summary>
    public static string HomeOf(string rootfs, uint uid)
    {
        var id = uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var e = ReadInRoot(rootfs, "/etc/passwd").Select(l => l.Split(':')).FirstOrDefault(f => f.Length >= 6 && f[2] == id);
        return e is not null && e[5].Length > 0 ? e[5] : "/";
    }

    static string[] ReadInRoot(string rootfs, string path)
    {
        using var root = Sys.Open(rootfs, O_PATH | O_DIRECTORY);
        using var fd = RootfsPath.TryOpen(root, path);
        if (fd is null) return [];
        try { return File.ReadAllLines(RootfsPath.ProcFdPath(fd)); }
        catch (IOException) { return []; }
    }

    /// <summary>The working directory exists before start (docker creates it in the rootfs).</summary>
    public static void EnsureWorkdir(string rootfs, string dir)
    {
        if (dir.Length == 0 || dir == "/") return;
        using var root = Sys.Open(rootfs, O_PATH | O_DIRECTORY);
        using var _ = RootfsPath.OpenOrCreate(root, dir, file: false);
    }

    /// <summary>/etc/hostname, /etc/hosts, /etc/resolv.conf for the container (bind-mounted from its directory).</summary>
    public static void WriteEtcFiles(ContainerRecord c, string containerDir)
    {
        var host = c.HostConfig.NetworkMode == "host";
        var hostname = host ? Environment.MachineName : c.Config.Hostname;
        File.WriteAllText(System.IO.Path.Combine(containerDir, "hostname"), hostname + "\n");
        string hosts;
        if (host && File.Exists("/etc/hosts")) hosts = File.ReadAllText("/etc/hosts");
        else
            hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
                + "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" + $"127.0.1.1\t{hostname}\n";
        File.WriteAllText(System.IO.Path.Combine(containerDir, "hosts"), hosts);
        var resolv = File.Exists("/etc/resolv.conf") ? File.ReadAllText("/etc/resolv.conf") : "";
        File.WriteAllText(System.IO.Path.Combine(containerDir, "resolv.conf"), resolv);
        c.HostnamePath = System.IO.Path.Combine(containerDir, "hostname");
        c.HostsPath = System.IO.Path.Combine(containerDir, "hosts");
        c.ResolvConfPath = System.IO.Path.Combine(containerDir, "resolv.conf");
    }
}
