using Berth.Linux;
using Berth.Engine.Volumes;
using ImageConfig = Berth.Oci.Image.ContainerConfig;

namespace Berth.Engine.Containers;

/// <summary>
/// Turns a create request in docker's shape (Config + HostConfig, as `berth run` flags or the body
/// of POST /containers/create give them) into a complete container record: the image's defaults
/// under what the request says (docker's precedence), the command line, mounts from Binds and Tmpfs,
/// and every HostConfig value validated. One place for both front ends.
/// </summary>
public static class ContainerSetup
{
    /// <param name="c">The request; completed in place.</param>
    /// <param name="image">The image's config (null for a --rootfs container).</param>
    /// <param name="dataRoot">Where named volumes live (created on first use, as docker does).</param>
    public static void Complete(ContainerRecord c, ImageConfig? image, string dataRoot)
    {
        var cfg = c.Config;
        var hc = c.HostConfig;
        cfg.Env ??= [];
        cfg.Labels ??= [];

        // Entrypoint and Cmd: moby's merge. A request without an entrypoint takes the image's Cmd
        // when it has none of its own, and the image's entrypoint when it said nothing about it;
        // an entrypoint of [""] (`--entrypoint ""`) means none.
        var ep = cfg.Entrypoint;
        var cmd = cfg.Cmd;
        if (ep is null or { Count: 0 })
        {
            if (cmd is null or { Count: 0 }) cmd = image?.Cmd is { Count: > 0 } ic ? [.. ic] : cmd;
            if (ep is null) ep = image?.Entrypoint is { Count: > 0 } ie ? [.. ie] : null;
        }
        if (ep is [""]) ep = null;
        cfg.Entrypoint = ep is { Count: > 0 } ? ep : null;
        cfg.Cmd = cmd is { Count: > 0 } ? cmd : null;
        var argv = (cfg.Entrypoint ?? []).Concat(cfg.Cmd ?? []).ToList();
        if (argv.Count == 0) throw EngineException.Invalid("No command specified");
        c.Path = argv[0];
        c.Args = argv.Skip(1).ToList();

        cfg.Env.RemoveAll(e => e.Length == 0);
        if (image is not null)
        {
            var userKeys = cfg.Env.Select(e => e.Split('=', 2)[0]).ToHashSet(StringComparer.Ordinal);
            // moby's merge: the request's variables first, then the image's it did not set
            cfg.Env.AddRange((image.Env ?? []).Where(e => !userKeys.Contains(e.Split('=', 2)[0])));
            if (cfg.WorkingDir.Length == 0) cfg.WorkingDir = image.WorkingDir ?? "";
            if (cfg.User.Length == 0) cfg.User = image.User ?? "";
            foreach (var (k, v) in image.Labels ?? []) cfg.Labels.TryAdd(k, v);
            if (cfg.StopSignal.Length == 0 && image.StopSignal is { Length: > 0 } iss) cfg.StopSignal = iss;
        }
        if (cfg.WorkingDir.Length > 0 && !cfg.WorkingDir.StartsWith('/'))
            throw EngineException.Invalid($"the working directory \"{cfg.WorkingDir}\" is invalid: it needs to be an absolute path");
        if (cfg.StopSignal.Length == 0) cfg.StopSignal = "SIGTERM";
        try { Signals.Parse(cfg.StopSignal); } catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }

        ValidateHostConfig(hc);
        c.Mounts.AddRange(BindMounts(hc.Binds, dataRoot));
        foreach (var (path, options) in hc.Tmpfs)
        {
            if (!path.StartsWith('/')) throw EngineException.Invalid($"invalid tmpfs \"{path}\": the path must be absolute");
            c.Mounts.Add(new MountPoint { Type = "tmpfs", Source = "", Destination = path, Mode = options, RW = true, Propagation = "" });
        }
        // --mount, --ulimit, --device and the resource fields; the image's volumes (anonymous).
        HostResources.Validate(hc);
        Healthcheck.Complete(cfg, image?.Healthcheck);
        c.Mounts.AddRange(HostResources.MountPoints(hc));
        // the request's own Config.Volumes (`docker run -v /path`) get anonymous volumes as the image's do
        var volumes = cfg.Volumes is { Count: > 0 } asked
            ? new Dictionary<string, Berth.Oci.Image.EmptyObject>(image?.Volumes ?? [], StringComparer.Ordinal).Concat(asked).DistinctBy(kv => kv.Key).ToDictionary()
            : image?.Volumes;
        Volumes.ContainerVolumes.AddImageVolumes(c, volumes);
        HostResources.CheckDuplicates(c.Mounts);
    }

    static void ValidateHostConfig(HostConfig hc)
    {
        // Refused rather than ignored until berth has an init for PID 1 (docs/ARCHITECTURE.md, engine).
        SpecBuilder.Capabilities(hc); // validates the names
        var opts = new List<string>();
        foreach (var so in hc.SecurityOpt)
        {
            var norm = so.Replace(':', '=');
            if (norm is "no-new-privileges=false") continue;
            if (norm is not ("no-new-privileges" or "no-new-privileges=true") && !norm.StartsWith("seccomp=", StringComparison.Ordinal))
                throw EngineException.Invalid($"invalid --security-opt \"{so}\": expected no-new-privileges, seccomp=unconfined or seccomp=FILE");
            opts.Add(norm == "no-new-privileges=true" ? "no-new-privileges" : norm);
        }
        hc.SecurityOpt = opts;
        if (hc.LogConfig.Type.Length == 0) hc.LogConfig.Type = "json-file";
        if (hc.LogConfig.Type is not ("json-file" or "none")) throw EngineException.Invalid($"log driver \"{hc.LogConfig.Type}\": only json-file and none are available");
        foreach (var (k, v) in hc.LogConfig.Config)
        {
            if (hc.LogConfig.Type == "none") throw EngineException.Invalid($"failed to initialize logging driver: unknown log opt '{k}' for none log driver");
            if (k is not ("max-size" or "max-file")) throw EngineException.Invalid($"invalid log option \"{k}\": expected max-size=SIZE or max-file=N");
            if (k == "max-size")
                try { Monitor.ContainerMonitor.ParseSize(v); }
                catch (EngineException) { throw EngineException.Invalid($"failed to initialize logging driver: invalid size: '{v}'"); }
            if (k == "max-file" && (!int.TryParse(v, out var n) || n < 1)) throw EngineException.Invalid($"invalid max-file \"{v}\"");
        }
        var rp = hc.RestartPolicy;
        if (rp.Name.Length == 0) rp.Name = "no";
        if (rp.Name is not ("no" or "always" or "unless-stopped" or "on-failure"))
            throw EngineException.Invalid($"invalid restart policy '{rp.Name}'");
        if (rp.MaximumRetryCount < 0 || (rp.MaximumRetryCount > 0 && rp.Name != "on-failure"))
            throw EngineException.Invalid($"invalid restart policy \"{rp.Name}:{rp.MaximumRetryCount}\": only on-failure takes a maximum retry count");
        if (rp.Name != "no" && hc.AutoRemove) throw EngineException.Invalid("conflicting options: --restart and --rm");
    }

    /// <summary>docker's -v / HostConfig.Binds: /HOST:/CONTAINER[:OPTS] binds, NAME:/CONTAINER[:OPTS]
    /// named volumes (created if missing).</summary>
    static IEnumerable<MountPoint> BindMounts(List<string> binds, string dataRoot)
    {
        var result = new List<MountPoint>();
        foreach (var v in binds)
        {
            var parts = v.Split(':');
            if (parts.Length is < 2 or > 3 || !parts[1].StartsWith('/') || (!parts[0].StartsWith('/') && !ContainerStore.ValidName(parts[0])))
                throw EngineException.Invalid($"invalid volume \"{v}\": expected /HOST/PATH:/CONTAINER/PATH[:ro|rw] or NAME:/CONTAINER/PATH[:ro|rw]");
            var mode = parts.Length > 2 ? parts[2] : "";
            var mp = new MountPoint { Type = "bind", Source = parts[0], Destination = parts[1], Mode = mode, RW = true };
            foreach (var m in mode.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                if (m == "ro") mp.RW = false;
                else if (m == "rw") mp.RW = true;
                else if (m is "private" or "rprivate" or "shared" or "rshared" or "slave" or "rslave") mp.Propagation = m;
                else if (m is "z" or "Z") { }
                else throw EngineException.Invalid($"invalid volume mode \"{m}\" in \"{v}\"");
            }
            result.Add(mp);
        }
        // Volumes are created only once every bind parsed.
        foreach (var mp in result.Where(m => !m.Source.StartsWith('/')))
        {
            var vol = new VolumeStore(dataRoot).Create(mp.Source, existingOk: true);
            mp.Type = "volume"; mp.Driver = "local"; mp.Name = vol.Name; mp.Source = vol.Mountpoint;
        }
        return result;
    }
}
