using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Berth.Images.Unpack;
using Berth.Oci.Image;

namespace Berth.Images.Archive;

/// <summary>An image a load put in the store: its ID (config digest) and the names it now has (none: loaded by ID).</summary>
public sealed record LoadedImage(string Id, IReadOnlyList<ImageReference> Names);

/// <summary>
/// `save` and `load`: images to and from docker-archive (what `docker save` writes) and OCI image
/// layouts (tar or directory), stream-based so the Engine API can serve GET /images/get and POST
/// /images/load with it. A save writes every shared blob once and keeps the image ID (the config
/// digest); a load verifies every blob against its digest (layers of a docker-archive against the
/// config's diff_ids), stores them, unpacks the layers into the snapshotter as a pull does, and only
/// then sets the names: a load that fails leaves no record, name or blob behind.
/// </summary>
public sealed class ImageArchive(ImageStore store, ISnapshotter snapshotter, int parallelism = 4)
{
    const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    const string ContainerdNameAnnotation = "io.containerd.image.name";
    static readonly DateTimeOffset Epoch = DateTimeOffset.UnixEpoch;

    sealed record SaveItem(StoredImage Image, List<ImageReference> Names, Manifest Manifest, byte[] ConfigBytes, ImageConfigFile Config);

    // ------------------------------------------------------------------ save

    /// <summary>Writes the images named by <paramref name="references"/> (names, IDs or ID prefixes) to
    /// <paramref name="output"/> as a docker-archive or oci-archive tar. Every reference is resolved
    /// before the first byte is written, so an unknown image writes nothing.</summary>
    public async Task SaveAsync(Stream output, IReadOnlyList<string> references, ArchiveFormat format, CancellationToken ct)
    {
        if (format == ArchiveFormat.OciDir) throw ImageException.Invalid("the oci-dir format is a directory: save it with SaveToDirectoryAsync");
        using var _ = store.LockShared();
        var items = await CollectAsync(references, ct).ConfigureAwait(false);
        var sink = new TarSink(output);
        await using (sink.ConfigureAwait(false))
        {
            if (format == ArchiveFormat.DockerArchive) await WriteDockerArchiveAsync(sink, items, ct).ConfigureAwait(false);
            else await WriteOciLayoutAsync(sink, items, ct).ConfigureAwait(false);
        }
        await output.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Writes the images as an OCI image layout into <paramref name="directory"/>, which must
    /// not exist or be empty; it appears complete (written beside it, then renamed) or not at all.</summary>
    public async Task SaveToDirectoryAsync(string directory, IReadOnlyList<string> references, CancellationToken ct)
    {
        var full = Path.GetFullPath(directory);
        if (File.Exists(full)) throw ImageException.Invalid($"{directory} is a file: the oci-dir format writes a directory");
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw ImageException.Invalid($"directory {directory} is not empty");
        using var _ = store.LockShared();
        var items = await CollectAsync(references, ct).ConfigureAwait(false);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            await WriteOciLayoutAsync(new DirectorySink(tmp), items, ct).ConfigureAwait(false);
            if (Directory.Exists(full)) Directory.Delete(full);
            Directory.Move(tmp, full);
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (DirectoryNotFoundException) { }
            throw;
        }
    }

    async Task<List<SaveItem>> CollectAsync(IReadOnlyList<string> references, CancellationToken ct)
    {
        if (references.Count == 0) throw ImageException.Invalid("no image to save");
        var items = new List<SaveItem>();
        foreach (var input in references)
        {
            var img = store.Resolve(input);
            ImageReference? name = null;
            if (ImageReference.TryParse(input, out var r, out _) && r.Digest is null && img.Names.Contains(r.WithDefaultTag())) name = r.WithDefaultTag();
            var item = items.FirstOrDefault(i => i.Image.Id == img.Id);
            if (item is null)
            {
                var manifest = ImageJson.ParseManifest(await store.Content.ReadBlobAsync(Digest.Parse(img.Record.Manifest.Digest), ct).ConfigureAwait(false), $"manifest {img.Record.Manifest.Digest}");
                var configBytes = await store.Content.ReadBlobAsync(Digest.Parse(img.Id), ct).ConfigureAwait(false);
                var config = ImageJson.ParseConfig(configBytes, $"image config {img.Id}");
                if (config.RootFs.DiffIds.Count != manifest.Layers.Count)
                    throw ImageException.Invalid($"image {img.Id}: the manifest has {manifest.Layers.Count} layers but the config lists {config.RootFs.DiffIds.Count} diff_ids");
                item = new SaveItem(img, [], manifest, configBytes, config);
                items.Add(item);
            }
            if (name is not null && !item.Names.Contains(name)) item.Names.Add(name);
        }
        return items;
    }

    /// <summary>docker save's layout (docker 20.10 / containers-image): one directory per layer named
    /// by its chain, with VERSION, json and the uncompressed layer.tar (a layer already written under
    /// another chain is a symlink to it), CONFIG-HEX.json, manifest.json and repositories.</summary>
    async Task WriteDockerArchiveAsync(IArchiveSink sink, List<SaveItem> items, CancellationToken ct)
    {
        var dirs = new HashSet<string>(StringComparer.Ordinal);
        var layerFiles = new Dictionary<string, string>(StringComparer.Ordinal); // diffID → member with its data
        var configs = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<DockerArchiveEntry>();
        var repositories = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        string? scratch = null;
        try
        {
            foreach (var item in items)
            {
                var diffIds = item.Config.RootFs.DiffIds;
                var chain = ChainId.Chain(diffIds);
                var paths = new List<string>();
                string? parent = null;
                for (var i = 0; i < chain.Count; i++)
                {
                    var dir = Digest.Parse(chain[i]).Encoded;
                    if (dirs.Add(dir))
                    {
                        await sink.DirectoryAsync(dir, ct).ConfigureAwait(false);
                        await sink.FileAsync($"{dir}/VERSION", "1.0"u8.ToArray(), ct).ConfigureAwait(false);
                        var legacy = new LegacyLayerJson { Id = dir, Parent = parent };
                        if (i == chain.Count - 1) { legacy.Os = item.Config.Os; legacy.Architecture = item.Config.Architecture; legacy.Created = item.Config.Created ?? legacy.Created; }
                        await sink.FileAsync($"{dir}/json", JsonSerializer.SerializeToUtf8Bytes(legacy, ArchiveJsonContext.Default.LegacyLayerJson), ct).ConfigureAwait(false);
                        if (layerFiles.TryGetValue(diffIds[i], out var first))
                            await sink.SymlinkAsync($"{dir}/layer.tar", $"../{first}", ct).ConfigureAwait(false);
                        else
                        {
                            scratch ??= store.Content.CreateStagingDirectory("save");
                            await WriteUncompressedLayerAsync(sink, $"{dir}/layer.tar", item.Manifest.Layers[i], diffIds[i], scratch, ct).ConfigureAwait(false);
                            layerFiles[diffIds[i]] = $"{dir}/layer.tar";
                        }
                    }
                    paths.Add($"{dir}/layer.tar");
                    parent = dir;
                }
                var configName = Digest.Parse(item.Image.Id).Encoded + ".json";
                if (configs.Add(configName)) await sink.FileAsync(configName, item.ConfigBytes, ct).ConfigureAwait(false);
                var tags = item.Names.Where(n => n.Tag is not null).ToList();
                entries.Add(new DockerArchiveEntry { Config = configName, RepoTags = tags.Count == 0 ? null : tags.Select(n => n.FamiliarString).ToList(), Layers = paths });
                if (parent is not null)
                    foreach (var n in tags)
                    {
                        if (!repositories.TryGetValue(n.FamiliarName, out var byTag)) repositories[n.FamiliarName] = byTag = new(StringComparer.Ordinal);
                        byTag[n.Tag!] = parent;
                    }
            }
            await sink.FileAsync("manifest.json", JsonSerializer.SerializeToUtf8Bytes(entries, ArchiveJsonContext.Default.ListDockerArchiveEntry), ct).ConfigureAwait(false);
            if (repositories.Count > 0)
                await sink.FileAsync("repositories", JsonSerializer.SerializeToUtf8Bytes(repositories, ArchiveJsonContext.Default.DictionaryStringDictionaryStringString), ct).ConfigureAwait(false);
        }
        finally
        {
            if (scratch is not null) try { Directory.Delete(scratch, recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }

    /// <summary>A layer as docker-archive wants it, uncompressed: the blob itself when it is an
    /// uncompressed tar, otherwise decompressed into a scratch file and checked against its diffID.</summary>
    async Task WriteUncompressedLayerAsync(IArchiveSink sink, string name, Descriptor layer, string diffId, string scratch, CancellationToken ct)
    {
        var digest = Digest.Parse(layer.Digest);
        var compression = LayerMediaTypes.CompressionOf(layer.MediaType) ?? throw ImageException.Invalid($"layer {layer.Digest} has unknown media type \"{layer.MediaType}\"");
        if (compression == LayerCompression.None)
        {
            await using var blob = store.Content.OpenBlob(digest);
            await sink.FileAsync(name, blob, ct).ConfigureAwait(false);
            return;
        }
        var tmp = Path.Combine(scratch, digest.Encoded);
        try
        {
            await Task.Run(() =>
            {
                using var blob = store.Content.OpenBlob(digest);
                using var plain = new DigestingStream(LayerUnpacker.Decompress(blob, compression), long.MaxValue, $"layer {layer.Digest}");
                using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                    plain.CopyTo(fs, 1 << 20);
                var actual = plain.Digest();
                if (actual != diffId) throw ImageException.DataLoss($"layer {layer.Digest}: uncompressed content has digest {actual}, the image config's diff_id is {diffId}");
            }, ct).ConfigureAwait(false);
            await using var file = new FileStream(tmp, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await sink.FileAsync(name, file, ct).ConfigureAwait(false);
        }
        catch (LayerException e) { throw ImageException.DataLoss(e.Message); }
        finally { File.Delete(tmp); }
    }

    /// <summary>An OCI image layout: oci-layout, blobs/ALG/HEX (each once, as stored: compressed
    /// layers and the manifests' own bytes, so digests match), index.json with one entry per name.</summary>
    async Task WriteOciLayoutAsync(IArchiveSink sink, List<SaveItem> items, CancellationToken ct)
    {
        await sink.FileAsync("oci-layout", JsonSerializer.SerializeToUtf8Bytes(new OciLayoutFile(), ImageJsonContext.Default.OciLayoutFile), ct).ConfigureAwait(false);
        await sink.DirectoryAsync("blobs", ct).ConfigureAwait(false);
        var algDirs = new HashSet<string>(StringComparer.Ordinal);
        var written = new HashSet<string>(StringComparer.Ordinal);
        var index = new ImageIndex { MediaType = MediaTypes.OciIndex };
        foreach (var item in items)
        {
            foreach (var d in item.Manifest.Layers.Select(l => l.Digest).Prepend(item.Image.Id).Append(item.Image.Record.Manifest.Digest))
            {
                if (!written.Add(d)) continue;
                var digest = Digest.Parse(d);
                if (algDirs.Add(digest.Algorithm)) await sink.DirectoryAsync($"blobs/{digest.Algorithm}", ct).ConfigureAwait(false);
                await using var blob = store.Content.OpenBlob(digest);
                await sink.FileAsync($"blobs/{digest.Algorithm}/{digest.Encoded}", blob, ct).ConfigureAwait(false);
            }
            var m = item.Image.Record.Manifest;
            Descriptor Entry(ImageReference? name) => new()
            {
                MediaType = m.MediaType, Digest = m.Digest, Size = m.Size,
                Platform = new Platform { Os = item.Config.Os, Architecture = item.Config.Architecture, Variant = item.Config.Variant },
                Annotations = name is null ? null : new() { [RefNameAnnotation] = name.ToString(), [ContainerdNameAnnotation] = name.ToString() },
            };
            if (item.Names.Count == 0) index.Manifests.Add(Entry(null));
            foreach (var n in item.Names) index.Manifests.Add(Entry(n));
        }
        await sink.FileAsync("index.json", ImageJson.Serialize(index), ct).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ load

    sealed record Pending(ImageRecord Record, List<(ArchiveStaging.Member Member, Digest Digest)> Blobs, List<byte[]> Documents, List<ImageReference> Names);

    /// <summary>Loads every image of a docker-archive or OCI layout tar (plain, gzip or zstd), told
    /// apart by their contents. Returns the images with the names they now have.</summary>
    public async Task<IReadOnlyList<LoadedImage>> LoadAsync(Stream input, CancellationToken ct)
    {
        var created = new List<string>();
        var done = false;
        var shared = store.LockShared();
        try
        {
            var dir = store.Content.CreateStagingDirectory("load");
            ArchiveStaging staging;
            try { staging = await Task.Factory.StartNew(() => ArchiveStaging.Read(input, dir, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false); }
            catch { try { Directory.Delete(dir, true); } catch (DirectoryNotFoundException) { } throw; }
            List<Pending> images;
            using (staging)
            {
                try
                {
                    images = staging.Has("manifest.json") ? ReadDockerArchive(staging)
                        : staging.Has("index.json") ? ReadOciLayout(staging)
                        : throw ImageException.Invalid("archive has neither manifest.json nor index.json: not a docker-archive or an OCI image layout");
                }
                catch (FormatException e) { throw ImageException.Invalid(e.Message); }
                if (images.Count == 0) throw ImageException.Invalid("archive holds no image");

                // blobs first, then records (a record only names stored blobs), unpack, names last
                foreach (var p in images)
                {
                    foreach (var (m, d) in p.Blobs) store.Content.Adopt(m.File, d);
                    foreach (var doc in p.Documents) await store.Content.WriteBlobAsync(doc, ct).ConfigureAwait(false);
                    if (store.GetRecord(p.Record.Target.Digest) is null) created.Add(p.Record.Target.Digest);
                    store.PutRecord(p.Record);
                }
                foreach (var p in images) await ImageLayers.UnpackAsync(store, snapshotter, p.Record, parallelism, ct).ConfigureAwait(false);
                foreach (var p in images)
                    foreach (var n in p.Names) store.SetName(n, p.Record.Target.Digest);
            }
            done = true;
            return images.Select(p => new LoadedImage(p.Record.Id, p.Names)).ToList();
        }
        finally
        {
            shared.Dispose();
            if (!done && created.Count > 0) await ImageLayers.DiscardAsync(store, snapshotter, created).ConfigureAwait(false);
        }
    }

    List<Pending> ReadDockerArchive(ArchiveStaging st)
    {
        var bytes = st.ReadSmall(st.Find("manifest.json", "archive"), "manifest.json");
        List<DockerArchiveEntry> entries;
        try { entries = JsonSerializer.Deserialize(bytes, ArchiveJsonContext.Default.ListDockerArchiveEntry) ?? []; }
        catch (JsonException e) { throw ImageException.Invalid($"manifest.json: malformed JSON: {e.Message}"); }
        var result = new List<Pending>();
        foreach (var e in entries)
        {
            if (string.IsNullOrEmpty(e.Config)) throw ImageException.Invalid("manifest.json: an image has no Config");
            var cm = st.Find(e.Config, "manifest.json");
            var configBytes = st.ReadSmall(cm, $"image config \"{e.Config}\"");
            var configDigest = cm.Sha256;
            var config = ImageJson.ParseConfig(configBytes, $"image config \"{e.Config}\"");
            var what = $"image {configDigest}";
            if (config.RootFs.Type != "layers") throw ImageException.Invalid($"{what}: rootfs type \"{config.RootFs.Type}\" is not \"layers\"");
            var diffIds = config.RootFs.DiffIds;
            if (e.Layers is null || diffIds.Count != e.Layers.Count)
                throw ImageException.Invalid($"{what}: manifest.json lists {e.Layers?.Count ?? 0} layers but its config lists {diffIds.Count} diff_ids");
            var blobs = new List<(ArchiveStaging.Member, Digest)> { (cm, configDigest) };
            var layers = new List<Descriptor>();
            var compressions = new List<LayerCompression>();
            for (var i = 0; i < e.Layers.Count; i++)
            {
                var m = st.Find(e.Layers[i], "manifest.json");
                var c = ArchiveStaging.CompressionOf(m);
                if (c == LayerCompression.None && m.Sha256.ToString() != diffIds[i])
                    throw ImageException.Invalid($"layer \"{e.Layers[i]}\" of {what}: content has digest {m.Sha256}, the image config's diff_id is {diffIds[i]}");
                compressions.Add(c);
                blobs.Add((m, m.Sha256));
                layers.Add(new Descriptor { Digest = m.Sha256.ToString(), Size = m.Size });
            }
            var oci = compressions.Contains(LayerCompression.Zstd);
            for (var i = 0; i < layers.Count; i++)
                layers[i].MediaType = compressions[i] switch
                {
                    LayerCompression.Gzip => oci ? MediaTypes.OciLayerGzip : MediaTypes.DockerLayerGzip,
                    LayerCompression.Zstd => MediaTypes.OciLayerZstd,
                    _ => oci ? MediaTypes.OciLayer : "application/vnd.docker.image.rootfs.diff.tar",
                };
            var manifest = new Manifest
            {
                MediaType = oci ? MediaTypes.OciManifest : MediaTypes.DockerManifest,
                Config = new Descriptor { MediaType = oci ? MediaTypes.OciConfig : MediaTypes.DockerConfig, Digest = configDigest.ToString(), Size = cm.Size },
                Layers = layers,
            };
            var manifestBytes = ImageJson.Serialize(manifest);
            var names = new List<ImageReference>();
            foreach (var t in e.RepoTags ?? [])
            {
                if (!ImageReference.TryParse(t, out var r, out var err) || r.Digest is not null)
                    throw ImageException.Invalid($"manifest.json: invalid repo tag \"{t}\"{(err is { Length: > 0 } ? $": {err}" : "")}");
                if (!names.Contains(r.WithDefaultTag())) names.Add(r.WithDefaultTag());
            }
            // The same image (by ID) already in the store, from a pull or another archive: it only gets the names.
            if (store.ListRecords().FirstOrDefault(r => r.Config.Digest == configDigest.ToString()) is { } existing)
            {
                result.Add(new Pending(existing, [], [], names));
                continue;
            }
            var md = new Descriptor { MediaType = manifest.MediaType, Digest = Digest.Sha256(manifestBytes).ToString(), Size = manifestBytes.Length };
            result.Add(new Pending(Record(md, manifest, config), blobs, [manifestBytes], names));
        }
        return result;
    }

    List<Pending> ReadOciLayout(ArchiveStaging st)
    {
        if (!st.Has("oci-layout")) throw ImageException.Invalid("archive has index.json but no oci-layout file: not an OCI image layout");
        var layout = ImageJson.Parse(st.ReadSmall(st.Find("oci-layout", "archive"), "oci-layout"), ImageJsonContext.Default.OciLayoutFile, "oci-layout");
        if (!layout.ImageLayoutVersion.StartsWith("1.", StringComparison.Ordinal))
            throw ImageException.Invalid($"oci-layout: unsupported imageLayoutVersion \"{layout.ImageLayoutVersion}\"");
        var index = ImageJson.ParseIndex(st.ReadSmall(st.Find("index.json", "archive"), "index.json"), "index.json");
        var byManifest = new Dictionary<string, Pending>(StringComparer.Ordinal);
        var result = new List<Pending>();
        foreach (var entry in index.Manifests)
        {
            var desc = entry;
            if (MediaTypes.IsIndex(entry.MediaType))
            {
                // a multi-platform entry: the host's platform is loaded (and is the record's target)
                var im = st.Blob(entry, "index.json");
                desc = PlatformSpec.Default.Select(ImageJson.ParseIndex(st.ReadSmall(im, $"index {entry.Digest}"), $"index {entry.Digest}"), $"index {entry.Digest} in the archive");
            }
            var mm = st.Blob(desc, "index.json");
            var manifestBytes = st.ReadSmall(mm, $"manifest {desc.Digest}");
            var manifest = ImageJson.ParseManifest(manifestBytes, $"manifest {desc.Digest}");
            var mediaType = string.IsNullOrEmpty(desc.MediaType) ? manifest.MediaType : desc.MediaType;
            if (!MediaTypes.IsManifest(mediaType)) throw ImageException.Invalid($"index.json: unsupported media type \"{mediaType}\" for {desc.Digest}");
            ImagePuller.Validate(manifest, Digest.Parse(desc.Digest));
            if (!byManifest.TryGetValue(desc.Digest, out var pending))
            {
                var by = $"manifest {desc.Digest}";
                var cm = st.Blob(manifest.Config, by);
                var config = ImageJson.ParseConfig(st.ReadSmall(cm, $"image config {manifest.Config.Digest}"), $"image config {manifest.Config.Digest}");
                var blobs = new List<(ArchiveStaging.Member, Digest)> { (mm, Digest.Parse(desc.Digest)), (cm, Digest.Parse(manifest.Config.Digest)) };
                blobs.AddRange(manifest.Layers.Select(l => (st.Blob(l, by), Digest.Parse(l.Digest))));
                var md = new Descriptor { MediaType = mediaType!, Digest = desc.Digest, Size = desc.Size };
                pending = new Pending(Record(md, manifest, config), blobs, [], []);
                byManifest[desc.Digest] = pending;
                result.Add(pending);
            }
            if (NameOf(entry) is { } name && !pending.Names.Contains(name)) pending.Names.Add(name);
        }
        return result;
    }

    /// <summary>An index entry's image name: containerd's full-name annotation, else ref.name when it is
    /// a whole reference (podman, skopeo); a bare tag ("latest", as docker 25 writes it beside the
    /// containerd annotation) names nothing.</summary>
    static ImageReference? NameOf(Descriptor entry)
    {
        if (entry.Annotations is null) return null;
        foreach (var key in new[] { ContainerdNameAnnotation, RefNameAnnotation })
        {
            if (!entry.Annotations.TryGetValue(key, out var v) || string.IsNullOrEmpty(v)) continue;
            if (key == RefNameAnnotation && !v.Contains('/') && !v.Contains(':')) continue;
            if (ImageReference.TryParse(v, out var r, out _) && r.Digest is null) return r.WithDefaultTag();
        }
        return null;
    }

    static ImageRecord Record(Descriptor manifestDesc, Manifest manifest, ImageConfigFile config) =>
        ImageRecord.For(manifestDesc, manifestDesc, manifest, config, [manifestDesc.Digest]);

    // ------------------------------------------------------------------ output sinks

    interface IArchiveSink
    {
        Task DirectoryAsync(string name, CancellationToken ct);
        Task FileAsync(string name, byte[] data, CancellationToken ct);
        Task FileAsync(string name, Stream data, CancellationToken ct);
        Task SymlinkAsync(string name, string target, CancellationToken ct);
    }

    /// <summary>Members of a ustar archive (every name Berth writes fits ustar's 100+155 bytes).</summary>
    sealed class TarSink(Stream output) : IArchiveSink, IAsyncDisposable
    {
        readonly System.Formats.Tar.TarWriter _tar = new(output, System.Formats.Tar.TarEntryFormat.Ustar, leaveOpen: true);

        static System.Formats.Tar.UstarTarEntry Entry(System.Formats.Tar.TarEntryType type, string name, int mode) =>
            new(type, name) { Mode = (UnixFileMode)mode, ModificationTime = Epoch, Uid = 0, Gid = 0 };

        public Task DirectoryAsync(string name, CancellationToken ct) =>
            _tar.WriteEntryAsync(Entry(System.Formats.Tar.TarEntryType.Directory, name + "/", 0x1ed), ct);

        public Task FileAsync(string name, byte[] data, CancellationToken ct) => FileAsync(name, new MemoryStream(data), ct);

        public async Task FileAsync(string name, Stream data, CancellationToken ct)
        {
            var e = Entry(System.Formats.Tar.TarEntryType.RegularFile, name, 0x1a4);
            e.DataStream = data;
            await _tar.WriteEntryAsync(e, ct).ConfigureAwait(false);
        }

        public Task SymlinkAsync(string name, string target, CancellationToken ct)
        {
            var e = Entry(System.Formats.Tar.TarEntryType.SymbolicLink, name, 0x1ff);
            e.LinkName = target;
            return _tar.WriteEntryAsync(e, ct);
        }

        public ValueTask DisposeAsync() => _tar.DisposeAsync();
    }

    sealed class DirectorySink(string root) : IArchiveSink
    {
        string PathOf(string name) => Path.Combine(root, name);

        public Task DirectoryAsync(string name, CancellationToken ct)
        {
            Directory.CreateDirectory(PathOf(name));
            return Task.CompletedTask;
        }

        public async Task FileAsync(string name, byte[] data, CancellationToken ct)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(PathOf(name))!);
            await File.WriteAllBytesAsync(PathOf(name), data, ct).ConfigureAwait(false);
        }

        public async Task FileAsync(string name, Stream data, CancellationToken ct)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(PathOf(name))!);
            var fs = new FileStream(PathOf(name), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (fs.ConfigureAwait(false)) await data.CopyToAsync(fs, 1 << 20, ct).ConfigureAwait(false);
        }

        public Task SymlinkAsync(string name, string target, CancellationToken ct)
        {
            File.CreateSymbolicLink(PathOf(name), target);
            return Task.CompletedTask;
        }
    }

    /// <summary>An OCI layout directory read as the tar it would be (for `load -i DIR`).</summary>
    public async Task<IReadOnlyList<LoadedImage>> LoadDirectoryAsync(string directory, CancellationToken ct)
    {
        if (!Directory.Exists(directory)) throw ImageException.NotFound($"directory {directory} does not exist");
        var pipe = new System.IO.Pipelines.Pipe();
        var writer = Task.Run(async () =>
        {
            var w = pipe.Writer.AsStream();
            try { await System.Formats.Tar.TarFile.CreateFromDirectoryAsync(directory, w, includeBaseDirectory: false, ct).ConfigureAwait(false); }
            catch (Exception e) { await pipe.Writer.CompleteAsync(e).ConfigureAwait(false); return; }
            await pipe.Writer.CompleteAsync().ConfigureAwait(false);
        }, ct);
        try
        {
            await using var r = pipe.Reader.AsStream();
            return await LoadAsync(r, ct).ConfigureAwait(false);
        }
        finally
        {
            await pipe.Reader.CompleteAsync().ConfigureAwait(false);
            try { await writer.ConfigureAwait(false); } catch (Exception) when (ct.IsCancellationRequested) { }
        }
    }
}
