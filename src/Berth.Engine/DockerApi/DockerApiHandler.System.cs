using System.Runtime.InteropServices;
using Berth.Engine.Containers;
using Berth.Engine.Volumes;
using Berth.Images.Content;
using Microsoft.AspNetCore.Http;

namespace Berth.Engine.DockerApi;

public sealed partial class DockerApiHandler
{
    public static string EngineVersion => typeof(DockerApiHandler).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    Task Ping(HttpContext ctx, string[] _)
    {
        var h = ctx.Response.Headers;
        h["API-Version"] = MaxApiVersion;
        h["Docker-Experimental"] = "false";
        h["Ostype"] = "linux";
        h["Builder-Version"] = "1"; // the classic builder (POST /build); no BuildKit session
        h["Cache-Control"] = "no-cache, no-store, must-revalidate";
        h["Pragma"] = "no-cache";
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        if (ctx.Request.Method == "HEAD") { ctx.Response.ContentLength = 0; return Task.CompletedTask; }
        ctx.Response.ContentLength = 2;
        return ctx.Response.Body.WriteAsync("OK"u8.ToArray()).AsTask();
    }

    static string Arch => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        Architecture.Arm => "arm",
        Architecture.X86 => "386",
        var a => a.ToString().ToLowerInvariant(),
    };

    static string Kernel => ReadTrim("/proc/sys/kernel/osrelease");

    static string ReadTrim(string path)
    {
        try { return File.ReadAllText(path).Trim(); } catch (IOException) { return ""; }
    }

    Task Version(HttpContext ctx, string[] _)
    {
        var v = new VersionResponse
        {
            Platform = { Name = "Berth Engine" },
            Version = EngineVersion,
            ApiVersion = MaxApiVersion,
            MinAPIVersion = MinApiVersion,
            GitCommit = "",
            GoVersion = "dotnet" + Environment.Version.ToString(),
            Arch = Arch,
            KernelVersion = Kernel,
            BuildTime = "",
        };
        v.Components.Add(new VersionComponent
        {
            Name = "Engine", Version = EngineVersion,
            Details = new() { ["ApiVersion"] = MaxApiVersion, ["MinAPIVersion"] = MinApiVersion, ["Arch"] = Arch, ["Os"] = "linux", ["KernelVersion"] = Kernel, ["Experimental"] = "false", ["GoVersion"] = v.GoVersion, ["GitCommit"] = "", ["BuildTime"] = "" },
        });
        v.Components.Add(new VersionComponent { Name = "berth-runc", Version = EngineVersion, Details = new() { ["GitCommit"] = "" } });
        return WriteJsonAsync(ctx, 200, v, DockerJson.Default.VersionResponse);
    }

    async Task Info(HttpContext ctx, string[] _)
    {
        var list = await Blocking(Containers.List);
        var images = 0;
        try { images = new ImageStore(DataRoot).List().Count; } catch (Berth.Images.ImageException) { }
        var os = "";
        try
        {
            foreach (var l in File.ReadLines("/etc/os-release"))
                if (l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal)) os = l["PRETTY_NAME=".Length..].Trim('"');
        }
        catch (IOException) { }
        long mem = 0;
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            if (line is not null) mem = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        var driverFile = Path.Combine(DataRoot, "images", "snapshots", "driver");
        var info = new InfoResponse
        {
            ID = EngineId(),
            Containers = list.Count,
            ContainersRunning = list.Count(c => c.State.Running && !c.State.Paused),
            ContainersPaused = list.Count(c => c.State.Paused),
            ContainersStopped = list.Count(c => !c.State.Running),
            Images = images,
            Driver = File.Exists(driverFile) ? ReadTrim(driverFile) : "overlay",
            SystemTime = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'"),
            CgroupVersion = File.Exists("/sys/fs/cgroup/cgroup.controllers") ? "2" : "1",
            KernelVersion = Kernel,
            OperatingSystem = os,
            Architecture = RuntimeInformation.OSArchitecture == Architecture.X64 ? "x86_64" : RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "aarch64" : Arch,
            NCPU = Environment.ProcessorCount,
            MemTotal = mem,
            DockerRootDir = Path.GetFullPath(DataRoot),
            Name = Environment.MachineName,
            ServerVersion = EngineVersion,
            Runtimes = new() { ["berth-runc"] = new InfoRuntime { path = Containers.Runtime.Path } },
            IPv4Forwarding = ReadTrim("/proc/sys/net/ipv4/ip_forward") == "1",
            SecurityOptions = ["name=seccomp,profile=builtin", "name=cgroupns"],
        };
        info.RegistryConfig.IndexConfigs["docker.io"] = new InfoIndex { Name = "docker.io", Secure = true, Official = true };
        await WriteJsonAsync(ctx, 200, info, DockerJson.Default.InfoResponse);
    }

    /// <summary>A stable engine ID kept under the data root (docker's engine-id file).</summary>
    string EngineId()
    {
        var path = Path.Combine(DataRoot, "engine-id");
        try { return File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var id = Guid.NewGuid().ToString();
            try { Directory.CreateDirectory(DataRoot); File.WriteAllText(path, id + "\n"); } catch (IOException) { }
            return id;
        }
    }

    // ------------------------------------------------------------------ volumes

    VolumeStore Volumes => new(DataRoot);

    async Task ListVolumes(HttpContext ctx, string[] _)
    {
        var f = Filters(ctx);
        OnlyFilters(f, "name", "label", "dangling", "driver");
        var list = Volumes.List();
        if (f.TryGetValue("name", out var names)) list = list.Where(v => names.Any(n => v.Name.Contains(n, StringComparison.Ordinal))).ToList();
        if (f.TryGetValue("driver", out var drivers)) list = list.Where(v => drivers.Contains(v.Driver)).ToList();
        if (f.TryGetValue("label", out var labels)) list = list.Where(v => labels.All(l => LabelMatch(v.Labels, l))).ToList();
        if (f.TryGetValue("dangling", out var dangling))
        {
            var used = UsedVolumes(await Blocking(Containers.List));
            var want = dangling.Any(d => d is "true" or "1");
            list = list.Where(v => used.Contains(v.Name) != want).ToList();
        }
        await WriteJsonAsync(ctx, 200, new VolumeListResponse { Volumes = list }, DockerJson.Default.VolumeListResponse);
    }

    static HashSet<string> UsedVolumes(List<ContainerRecord> containers) =>
        containers.SelectMany(c => c.Mounts).Where(m => m.Type == "volume" && m.Name is not null).Select(m => m.Name!).ToHashSet(StringComparer.Ordinal);

    static bool LabelMatch(Dictionary<string, string> labels, string filter)
    {
        var kv = filter.Split('=', 2);
        return labels.TryGetValue(kv[0], out var v) && (kv.Length == 1 || v == kv[1]);
    }

    async Task CreateVolume(HttpContext ctx, string[] _)
    {
        var body = await ReadJsonAsync(ctx, DockerJson.Default.VolumeCreateBody) ?? new VolumeCreateBody();
        // the local driver's options (type, device, o) are checked and kept by the same engine code as `berth volume create -o`
        var v = await Blocking(() => Volumes.Create(string.IsNullOrEmpty(body.Name) ? null : body.Name, existingOk: true, body.Labels, body.DriverOpts, body.Driver));
        await WriteJsonAsync(ctx, 201, v, DockerJson.Default.VolumeInfo);
    }

    Task InspectVolume(HttpContext ctx, string[] a) => WriteJsonAsync(ctx, 200, GetVolume(a[0]), DockerJson.Default.VolumeInfo);

    /// <summary>A volume, or docker's 404 ("get NAME: no such volume").</summary>
    VolumeInfo GetVolume(string name)
    {
        try { return Volumes.Get(name); }
        catch (EngineException e) when (e.Kind == ErrorKind.NotFound) { throw ApiError.NotFound($"get {name}: no such volume"); }
    }

    async Task RemoveVolume(HttpContext ctx, string[] a)
    {
        var containers = await Blocking(Containers.List);
        GetVolume(a[0]);
        // docker's words for a volume in use: "remove NAME: volume is in use - [ID, …]"
        var users = containers.Where(c => c.Mounts.Any(m => m.Type == "volume" && m.Name == a[0])).Select(c => c.Id).ToList();
        if (users.Count > 0) throw new ApiError(409, $"remove {a[0]}: volume is in use - [{string.Join(", ", users)}]");
        Volumes.Remove(a[0], containers);
        await NoContent(ctx);
    }

    async Task PruneVolumes(HttpContext ctx, string[] _)
    {
        // every unused volume, named ones too, as dockerd did up to API 1.41 (Debian's 20.10, the
        // reference here); `all` (1.42's opt-in to that) is accepted, label and label! narrow the set
        var f = Filters(ctx);
        OnlyFilters(f, "label", "label!", "all");
        var containers = await Blocking(Containers.List);
        var used = UsedVolumes(containers);
        var result = new PruneVolumesResponse();
        var store = Volumes;
        var candidates = store.List().Where(v => !used.Contains(v.Name));
        if (f.TryGetValue("label", out var labels)) candidates = candidates.Where(v => labels.All(l => LabelMatch(v.Labels, l)));
        if (f.TryGetValue("label!", out var notLabels)) candidates = candidates.Where(v => !notLabels.Any(l => LabelMatch(v.Labels, l)));
        foreach (var v in candidates.ToList())
        {
            var size = DirSize(v.Mountpoint);
            try { store.Remove(v.Name, containers); result.VolumesDeleted.Add(v.Name); result.SpaceReclaimed += size; }
            catch (EngineException) { }
        }
        await WriteJsonAsync(ctx, 200, result, DockerJson.Default.PruneVolumesResponse);
    }

    static long DirSize(string dir)
    {
        try
        {
            return new DirectoryInfo(dir).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true }).Sum(f => f.Length);
        }
        catch (IOException) { return 0; }
    }
}
