using System.CommandLine;
using System.Text;
using System.Text.Json;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Berth.Linux;
using Berth.Oci.Image;

namespace Berth.Cli.Images;

/// <summary>
/// The image verbs (docker's command line): pull, push, images, tag, rmi, login, logout, and the
/// `image` group (ls, rm, inspect, prune, pull, push, tag, save, load); save/load are in <see cref="ArchiveCommands"/>. Data lives under --root/images.
/// </summary>
public static class ImageCommands
{
    public static void Register(RootCommand root)
    {
        root.Subcommands.Add(Pull("pull"));
        root.Subcommands.Add(Push("push"));
        root.Subcommands.Add(List("images"));
        root.Subcommands.Add(Tag("tag"));
        root.Subcommands.Add(Remove("rmi"));
        root.Subcommands.Add(ArchiveCommands.Save());
        root.Subcommands.Add(ArchiveCommands.Load());
        root.Subcommands.Add(Login());
        root.Subcommands.Add(Logout());
        var image = new Command("image", "manage images");
        var ls = List("ls");
        ls.Aliases.Add("list");
        var rm = Remove("rm");
        rm.Aliases.Add("remove");
        image.Subcommands.Add(ls);
        image.Subcommands.Add(rm);
        image.Subcommands.Add(Inspect());
        image.Subcommands.Add(Prune());
        image.Subcommands.Add(Pull("pull"));
        image.Subcommands.Add(Push("push"));
        image.Subcommands.Add(Tag("tag"));
        image.Subcommands.Add(ArchiveCommands.Save());
        image.Subcommands.Add(ArchiveCommands.Load());
        root.Subcommands.Add(image);
    }

    internal static ImageStore Store(ParseResult p) => new(p.GetValue(BerthCli.DataRoot)!);
    internal static ISnapshotter Snapshots(ParseResult p) => OverlaySnapshotter.Create(p.GetValue(BerthCli.DataRoot)!);
    /// <summary>The engine's image actions (they write docker's image events).</summary>
    internal static Berth.Engine.Containers.ImageManager Manager(ParseResult p) => new(p.GetValue(BerthCli.DataRoot)!);

    static Option<bool> TlsVerify() => new("--tls-verify")
    {
        Description = "verify the registry's TLS certificate; false also allows plain HTTP (as podman)",
        DefaultValueFactory = _ => true,
    };

    static RegistryOptions Options(ParseResult p, Option<bool> tls, RegistryCredentials? creds = null) =>
        new() { TlsVerify = p.GetValue(tls), Credentials = creds };

    /// <summary>Runs a verb; expected failures become one `berth: ...` line on stderr and exit 1.</summary>
    internal static void Action(Command c, Func<ParseResult, CancellationToken, Task<int>> run) =>
        c.SetAction(async (p, ct) =>
        {
            try { return await run(p, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { Console.Error.WriteLine("berth: canceled"); return 130; }
            catch (Exception e) when (e is ImageException or FormatException or IOException or SyscallException
                                          or UnauthorizedAccessException or HttpRequestException or JsonException)
            {
                Console.Error.WriteLine($"berth: {OneLine(e.Message)}");
                return e is ImageException { Kind: ImageErrorKind.InvalidArgument } ie && ie.Message.StartsWith("invalid reference", StringComparison.Ordinal) ? 125 : 1;
            }
        });

    static string OneLine(string s) => s.ReplaceLineEndings(" ");

    static ImageReference ParseRef(string s) => ImageReference.Parse(s);

    // ------------------------------------------------------------------ pull / push

    static Command Pull(string name)
    {
        var c = new Command(name, "download an image from a registry");
        var reference = new Argument<string>("NAME[:TAG|@DIGEST]");
        var platform = new Option<string?>("--platform") { Description = "os/arch[/variant] to pick from a multi-platform image (default: linux/<host arch>)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print only the image's name" };
        var tls = TlsVerify();
        c.Arguments.Add(reference);
        c.Options.Add(platform);
        c.Options.Add(quiet);
        c.Options.Add(tls);
        Action(c, async (p, ct) =>
        {
            var r = ParseRef(p.GetValue(reference)!);
            var plat = p.GetValue(platform) is { } ps ? PlatformSpec.Parse(ps) : PlatformSpec.Default;
            var q = p.GetValue(quiet);
            if (r.Tag is null && r.Digest is null && !q) Console.Out.WriteLine("Using default tag: latest");
            using var view = new ProgressView(Console.Out, ProgressView.IsTerminal, q, "pull");
            await Manager(p).PullAsync(r, plat, Options(p, tls), view, ct).ConfigureAwait(false);
            view.Dispose();
            var named = r.WithDefaultTag();
            if (!q) Console.Out.WriteLine(view.Transferred > 0 ? $"Status: Downloaded newer image for {named.FamiliarString}" : $"Status: Image is up to date for {named.FamiliarString}");
            Console.Out.WriteLine(named.ToString());
            return 0;
        });
        return c;
    }

    static Command Push(string name)
    {
        var c = new Command(name, "upload an image to a registry");
        var source = new Argument<string>("IMAGE") { Description = "image to push (a name in the store, or an image ID when DESTINATION is given)" };
        var dest = new Argument<string?>("DESTINATION") { Description = "where to push, when not the image's own name", Arity = ArgumentArity.ZeroOrOne };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print nothing but errors" };
        var tls = TlsVerify();
        c.Arguments.Add(source);
        c.Arguments.Add(dest);
        c.Options.Add(quiet);
        c.Options.Add(tls);
        Action(c, async (p, ct) =>
        {
            var store = Store(p);
            var src = p.GetValue(source)!;
            var img = store.Resolve(src);
            ImageReference target;
            if (p.GetValue(dest) is { } d) target = ParseRef(d).WithDefaultTag();
            else
            {
                var r = ParseRef(src);
                if (r.Tag is null && r.Digest is null)
                {
                    // docker pushes every tag of the repository; berth pushes :latest (as podman).
                    r = r.WithDefaultTag();
                }
                target = r;
            }
            using var view = new ProgressView(Console.Out, ProgressView.IsTerminal, p.GetValue(quiet), "push");
            await Manager(p).PushAsync(img, target, Options(p, tls), view, ct).ConfigureAwait(false);
            return 0;
        });
        return c;
    }

    // ------------------------------------------------------------------ images

    static readonly Dictionary<string, string> ListHeaders = new()
    {
        ["Repository"] = "REPOSITORY", ["Tag"] = "TAG", ["ID"] = "IMAGE ID", ["CreatedSince"] = "CREATED",
        ["CreatedAt"] = "CREATED AT", ["Size"] = "SIZE", ["Digest"] = "DIGEST", ["VirtualSize"] = "SIZE",
        ["SharedSize"] = "SHARED SIZE", ["UniqueSize"] = "UNIQUE SIZE", ["Containers"] = "CONTAINERS",
    };

    static Command List(string name)
    {
        var c = new Command(name, "list images");
        var repo = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all", "-a") { Description = "show all images (berth has no intermediate images: same as default)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "only image IDs" };
        var digests = new Option<bool>("--digests") { Description = "show digests" };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "do not truncate IDs" };
        var format = new Option<string?>("--format") { Description = "json, table, table TEMPLATE or a Go-template-like TEMPLATE ({{.Repository}}:{{.Tag}})" };
        c.Arguments.Add(repo);
        foreach (var o in new Option[] { all, quiet, digests, noTrunc, format }) c.Options.Add(o);
        Action(c, (p, ct) =>
        {
            var store = Store(p);
            var images = store.List();
            var rows = new List<(StoredImage Image, string Repo, string Tag, string Digest)>();
            foreach (var img in images)
            {
                if (img.Names.Count == 0) { rows.Add((img, "<none>", "<none>", "<none>")); continue; }
                foreach (var grp in img.Names.GroupBy(n => n.Name))
                {
                    var digest = img.Record.Target.Digest;
                    var tags = grp.Where(n => n.Tag is not null).Select(n => n.Tag!).Distinct().ToList();
                    if (tags.Count == 0) rows.Add((img, grp.First().FamiliarName, "<none>", digest));
                    foreach (var t in tags) rows.Add((img, grp.First().FamiliarName, t, digest));
                }
            }
            if (p.GetValue(repo) is { } filter)
            {
                var fr = ParseRef(filter);
                rows = rows.Where(r => r.Repo == fr.FamiliarName && (fr.Tag is null || r.Tag == fr.Tag)).ToList();
            }
            var trunc = !p.GetValue(noTrunc);
            string Id(StoredImage i) => trunc ? Digest.Parse(i.Id).Encoded[..12] : i.Id;
            if (p.GetValue(quiet))
            {
                foreach (var id in rows.Select(r => Id(r.Image)).Distinct()) Console.Out.WriteLine(id);
                return Task.FromResult(0);
            }
            var now = DateTimeOffset.UtcNow;
            var json = rows.Select(r =>
            {
                var created = DateTimeOffset.TryParse(r.Image.Record.Created, out var t) ? t : (DateTimeOffset?)null;
                var size = Units.HumanSize(r.Image.Record.Size);
                return Json(w =>
                {
                    w.WriteString("Containers", "N/A");
                    w.WriteString("CreatedAt", created is { } at ? at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) + " +0000 UTC" : "");
                    w.WriteString("CreatedSince", created is { } ct2 ? Units.HumanDuration(now - ct2) + " ago" : "N/A");
                    w.WriteString("Digest", r.Digest);
                    w.WriteString("ID", Id(r.Image));
                    w.WriteString("Repository", r.Repo);
                    w.WriteString("SharedSize", "N/A");
                    w.WriteString("Size", size);
                    w.WriteString("Tag", r.Tag);
                    w.WriteString("UniqueSize", "N/A");
                    w.WriteString("VirtualSize", size);
                });
            }).ToList();
            var table = p.GetValue(digests)
                ? "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                : "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
            OutputFormat.Write(Console.Out, p.GetValue(format), json, table, ListHeaders);
            return Task.FromResult(0);
        });
        return c;
    }

    static JsonElement Json(Action<Utf8JsonWriter> body, bool indented = false)
    {
        var buf = new MemoryStream();
        using (var w = new Utf8JsonWriter(buf, new JsonWriterOptions { Indented = indented, IndentSize = 4 }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        using var doc = JsonDocument.Parse(buf.ToArray());
        return doc.RootElement.Clone();
    }

    // ------------------------------------------------------------------ tag / rmi

    static Command Tag(string name)
    {
        var c = new Command(name, "create a name TARGET_IMAGE that refers to SOURCE_IMAGE");
        var source = new Argument<string>("SOURCE_IMAGE[:TAG]");
        var target = new Argument<string>("TARGET_IMAGE[:TAG]");
        c.Arguments.Add(source);
        c.Arguments.Add(target);
        Action(c, (p, ct) =>
        {
            var images = Manager(p);
            var t = ParseRef(p.GetValue(target)!);
            if (t.Digest is not null) throw ImageException.Invalid($"refusing to create a tag with a digest reference: {p.GetValue(target)}");
            using var l = images.Store.LockShared();
            images.Tag(images.Store.Resolve(p.GetValue(source)!), t);
            return Task.FromResult(0);
        });
        return c;
    }

    /// <summary>
    /// `rmi` as docker's daemon does it (<see cref="Berth.Engine.Containers.ImageRemoval"/>): a name
    /// untags (and the image goes only with its last name); an ID untags every name and deletes the
    /// image; children, containers and several names are dockerd's conflicts.
    /// </summary>
    static Command Remove(string name)
    {
        var c = new Command(name, "remove one or more images");
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var force = new Option<bool>("--force", "-f") { Description = "remove every name of an image given by ID" };
        c.Arguments.Add(images);
        c.Options.Add(force);
        Action(c, async (p, ct) =>
        {
            var manager = Manager(p);
            var store = manager.Store;
            var failed = 0;
            List<Berth.Engine.Containers.ContainerRecord>? containers = null;
            using var l = store.LockExclusive();
            foreach (var input in p.GetValue(images)!)
            {
                try
                {
                    // the engine's rules (children, containers, several names), the Docker API's too
                    containers ??= ContainerManagerOf(p).List();
                    foreach (var step in await Berth.Engine.Containers.ImageRemoval.RemoveAsync(p.GetValue(BerthCli.DataRoot)!, containers, input, p.GetValue(force), ct).ConfigureAwait(false))
                        Console.Out.WriteLine(step.Untagged is not null ? $"Untagged: {step.Untagged}" : $"Deleted: {step.Deleted}");
                }
                catch (Berth.Engine.EngineException e)
                {
                    Console.Error.WriteLine($"berth: {OneLine(e.Message)}");
                    failed++;
                }
                catch (ImageException e)
                {
                    Console.Error.WriteLine($"berth: {OneLine(e.Message)}");
                    failed++;
                }
            }
            return failed > 0 ? 1 : 0;
        });
        return c;
    }

    // ------------------------------------------------------------------ inspect / prune

    static Command Inspect()
    {
        var c = new Command("inspect", "display detailed information on one or more images");
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var format = new Option<string?>("--format", "-f") { Description = "a Go-template-like TEMPLATE ({{.Id}}, {{json .Config}})" };
        c.Arguments.Add(images);
        c.Options.Add(format);
        Action(c, async (p, ct) =>
        {
            var store = Store(p);
            var results = new List<JsonElement>();
            foreach (var input in p.GetValue(images)!)
            {
                var img = store.Resolve(input);
                var config = ImageJson.ParseConfig(await store.Content.ReadBlobAsync(Digest.Parse(img.Id), ct).ConfigureAwait(false), $"image config {img.Id}");
                results.Add(InspectJson(img, config));
            }
            if (p.GetValue(format) is { } f)
            {
                foreach (var r in results) Console.Out.WriteLine(OutputFormat.Render(f, r));
                return 0;
            }
            var buf = new MemoryStream();
            using (var w = new Utf8JsonWriter(buf, new JsonWriterOptions { Indented = true, IndentSize = 4 }))
            {
                w.WriteStartArray();
                foreach (var r in results) r.WriteTo(w);
                w.WriteEndArray();
            }
            Console.Out.WriteLine(Encoding.UTF8.GetString(buf.ToArray()));
            return 0;
        });
        return c;
    }

    /// <summary>docker's image inspect shape (ImageInspect of the Engine API).</summary>
    static JsonElement InspectJson(StoredImage img, ImageConfigFile config) => Json(w =>
    {
        w.WriteString("Id", img.Id);
        w.WriteStartArray("RepoTags");
        foreach (var n in img.Names.Where(n => n.Tag is not null && n.Digest is null)) w.WriteStringValue(n.FamiliarString);
        w.WriteEndArray();
        w.WriteStartArray("RepoDigests");
        foreach (var d in img.RepoDigests) w.WriteStringValue(d);
        w.WriteEndArray();
        w.WriteString("Parent", "");
        w.WriteString("Comment", config.History?.LastOrDefault()?.Comment ?? "");
        w.WriteString("Created", config.Created ?? "");
        w.WriteString("DockerVersion", "");
        w.WriteString("Author", config.Author ?? "");
        w.WritePropertyName("Config");
        JsonSerializer.Serialize(w, config.Config ?? new ContainerConfig(), ImageJsonContext.Default.ContainerConfig);
        w.WriteString("Architecture", config.Architecture);
        if (config.Variant is { } v) w.WriteString("Variant", v);
        w.WriteString("Os", config.Os);
        w.WriteNumber("Size", img.Record.Size);
        w.WritePropertyName("GraphDriver");
        w.WriteStartObject();
        w.WriteNull("Data");
        w.WriteString("Name", "berth");
        w.WriteEndObject();
        w.WritePropertyName("RootFS");
        w.WriteStartObject();
        w.WriteString("Type", config.RootFs.Type);
        w.WriteStartArray("Layers");
        foreach (var d in config.RootFs.DiffIds) w.WriteStringValue(d);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WritePropertyName("Metadata");
        w.WriteStartObject();
        w.WriteString("LastTagTime", img.Record.Stored);
        w.WriteEndObject();
        w.WritePropertyName("Descriptor");
        JsonSerializer.Serialize(w, img.Record.Target, ImageJsonContext.Default.Descriptor);
    });

    static Berth.Engine.Containers.ContainerManager ContainerManagerOf(ParseResult p) =>
        new(p.GetValue(BerthCli.DataRoot)!, p.GetValue(BerthCli.RunRoot)!);

    static Command Prune()
    {
        var c = new Command("prune", "remove images without a name and blobs no image uses");
        var all = new Option<bool>("--all", "-a") { Description = "remove all images no container uses, not just dangling ones" };
        var force = new Option<bool>("--force", "-f") { Description = "do not ask for confirmation" };
        c.Options.Add(all);
        c.Options.Add(force);
        Action(c, async (p, ct) =>
        {
            if (!p.GetValue(force))
            {
                Console.Out.Write(p.GetValue(all) ? "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] " : "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ");
                Console.Out.Flush();
                var answer = Console.In.ReadLine()?.Trim().ToLowerInvariant();
                if (answer is not ("y" or "yes")) { Console.Out.WriteLine(); return 0; }
            }
            // Images a container uses stay (the engine knows which).
            var result = await Berth.Engine.EngineMaintenance.PruneImagesAsync(ContainerManagerOf(p), p.GetValue(all), ct).ConfigureAwait(false);
            if (result.Deleted.Count > 0)
            {
                Console.Out.WriteLine("Deleted Images:");
                foreach (var line in result.Deleted) Console.Out.WriteLine(line);
                Console.Out.WriteLine();
            }
            Console.Out.WriteLine($"Total reclaimed space: {Units.HumanSize(result.SpaceReclaimed)}");
            return 0;
        });
        return c;
    }

    // ------------------------------------------------------------------ login / logout

    /// <summary>A server argument as docker accepts it: host[:port], or a URL whose host is taken.</summary>
    static string ServerOf(string? arg)
    {
        if (string.IsNullOrEmpty(arg)) return ImageReference.DockerHub;
        var s = arg;
        if (s.Contains("://", StringComparison.Ordinal))
        {
            if (!Uri.TryCreate(s, UriKind.Absolute, out var u)) throw ImageException.Invalid($"invalid registry address \"{arg}\"");
            s = u.IsDefaultPort ? u.Host : $"{u.Host}:{u.Port}";
        }
        s = s.TrimEnd('/');
        if (s is "index.docker.io" or "registry-1.docker.io") s = ImageReference.DockerHub;
        if (!ImageReference.TryParse(s + "/x", out var r, out _) || r.Domain != s)
            throw ImageException.Invalid($"invalid registry address \"{arg}\"");
        return s;
    }

    static Command Login()
    {
        var c = new Command("login", "store credentials for a registry (in Docker's config.json format)");
        var server = new Argument<string?>("SERVER") { Arity = ArgumentArity.ZeroOrOne };
        var user = new Option<string?>("--username", "-u") { Description = "user name" };
        var pass = new Option<string?>("--password", "-p") { Description = "password (prefer --password-stdin)" };
        var stdin = new Option<bool>("--password-stdin") { Description = "read the password from standard input" };
        var tls = TlsVerify();
        c.Arguments.Add(server);
        foreach (var o in new Option[] { user, pass, stdin, tls }) c.Options.Add(o);
        Action(c, async (p, ct) =>
        {
            var host = ServerOf(p.GetValue(server));
            var username = p.GetValue(user);
            var password = p.GetValue(pass);
            if (p.GetValue(stdin))
            {
                if (password is not null) throw ImageException.Invalid("--password and --password-stdin are mutually exclusive");
                if (username is null) throw ImageException.Invalid("must provide --username with --password-stdin");
                password = (await Console.In.ReadToEndAsync(ct).ConfigureAwait(false)).TrimEnd('\n', '\r');
            }
            if (username is null)
            {
                if (Console.IsInputRedirected) throw ImageException.Invalid("username required: use --username (no terminal to ask on)");
                Console.Out.Write("Username: ");
                username = Console.In.ReadLine()?.Trim();
            }
            if (password is null)
            {
                if (Console.IsInputRedirected) throw ImageException.Invalid("password required: use --password-stdin (no terminal to ask on)");
                Console.Out.Write("Password: ");
                password = ReadSecret();
            }
            if (string.IsNullOrEmpty(username)) throw ImageException.Invalid("username is empty");
            if (string.IsNullOrEmpty(password)) throw ImageException.Invalid("password is empty");
            var creds = new RegistryCredentials(username, password);
            using (var client = new RegistryClient(host, Options(p, tls, creds)))
                await client.VerifyCredentialsAsync(ct).ConfigureAwait(false);
            var file = AuthFile.Default();
            file.Set(host, creds);
            Console.Out.WriteLine("Login Succeeded");
            return 0;
        });
        return c;
    }

    static string ReadSecret()
    {
        var sb = new StringBuilder();
        while (true)
        {
            var k = Console.ReadKey(intercept: true);
            if (k.Key == ConsoleKey.Enter) break;
            if (k.Key == ConsoleKey.Backspace) { if (sb.Length > 0) sb.Length--; continue; }
            sb.Append(k.KeyChar);
        }
        Console.Out.WriteLine();
        return sb.ToString();
    }

    static Command Logout()
    {
        var c = new Command("logout", "remove stored credentials for a registry");
        var server = new Argument<string?>("SERVER") { Arity = ArgumentArity.ZeroOrOne };
        c.Arguments.Add(server);
        Action(c, (p, ct) =>
        {
            var host = ServerOf(p.GetValue(server));
            if (AuthFile.Default().Remove(host)) Console.Out.WriteLine($"Removing login credentials for {host}");
            else Console.Out.WriteLine($"Not logged in to {host}");
            return Task.FromResult(0);
        });
        return c;
    }
}
