using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Support;

/// <summary>
/// Images built in the test: a one-layer busybox-static rootfs (bin/busybox, bin/sh → busybox) as a
/// gzip layer, an OCI config and manifest; optionally an index of two platforms. Written as an OCI
/// image layout for `skopeo copy oci:DIR:tag ...`, and kept as blobs for in-test servers.
/// </summary>
public sealed class TestImage
{
    public Dictionary<string, byte[]> Blobs { get; } = [];
    public byte[] ManifestBytes { get; private set; } = [];
    public Descriptor Manifest { get; private set; } = new();
    public Descriptor Config { get; private set; } = new();
    public List<Descriptor> Layers { get; } = [];
    /// <summary>The multi-platform index when built with several platforms.</summary>
    public byte[]? IndexBytes { get; private set; }
    public Descriptor? Index { get; private set; }
    public Dictionary<string, Descriptor> PlatformManifests { get; } = [];

    public Descriptor Top => Index ?? Manifest;

    /// <summary>The uncompressed digest of layer <paramref name="i"/>; the first layer's is also its chain id
    /// (what `rmi` reports as deleted, as dockerd does).</summary>
    public string DiffId(int i) => Digest.Sha256(Gunzip(Blobs[Layers[i].Digest])).ToString();

    Descriptor Add(byte[] data, string mediaType)
    {
        var d = Digest.Sha256(data).ToString();
        Blobs[d] = data;
        return new Descriptor { MediaType = mediaType, Digest = d, Size = data.Length };
    }

    public static byte[] Layer(IEnumerable<(string Path, byte[] Data)> files, bool withBusybox)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: false))
        {
            var mtime = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
            if (withBusybox)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "bin/") { Mode = (UnixFileMode)0x1ED, ModificationTime = mtime });
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox")
                {
                    Mode = (UnixFileMode)0x1ED, ModificationTime = mtime, DataStream = new MemoryStream(File.ReadAllBytes("/bin/busybox")),
                });
                tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/sh") { LinkName = "busybox", ModificationTime = mtime });
            }
            foreach (var (path, data) in files)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { Mode = (UnixFileMode)0x1A4, ModificationTime = mtime, DataStream = new MemoryStream(data) });
        }
        return ms.ToArray();
    }

    static byte[] Gunzip(byte[] gz)
    {
        using var src = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        src.CopyTo(ms);
        return ms.ToArray();
    }

    (Descriptor Manifest, byte[] Bytes) BuildManifest(string arch, IReadOnlyList<byte[]> layers, string? marker, string manifestMediaType, Action<ContainerConfig>? configure = null)
    {
        var layerDescs = layers.Select(l => Add(l, manifestMediaType == MediaTypes.DockerManifest ? MediaTypes.DockerLayerGzip : MediaTypes.OciLayerGzip)).ToList();
        var config = new ImageConfigFile
        {
            Created = "2024-01-01T00:00:00Z", Architecture = arch, Os = "linux",
            Config = Configured(new ContainerConfig { Cmd = ["/bin/sh"], Env = ["PATH=/bin", $"MARKER={marker}"], WorkingDir = "/" }, configure),
            RootFs = new RootFs { DiffIds = layers.Select(l => Digest.Sha256(Gunzip(l)).ToString()).ToList() },
            History = [new History { Created = "2024-01-01T00:00:00Z", CreatedBy = "berth test" }],
        };
        var configDesc = Add(ImageJson.Serialize(config), manifestMediaType == MediaTypes.DockerManifest ? MediaTypes.DockerConfig : MediaTypes.OciConfig);
        var m = new Manifest { MediaType = manifestMediaType, Config = configDesc, Layers = layerDescs };
        var bytes = ImageJson.Serialize(m);
        var md = Add(bytes, manifestMediaType);
        md.Platform = new Platform { Os = "linux", Architecture = arch };
        if (PlatformManifests.Count == 0) { Config = configDesc; Layers.AddRange(layerDescs); }
        return (md, bytes);
    }

    static ContainerConfig Configured(ContainerConfig c, Action<ContainerConfig>? configure)
    {
        configure?.Invoke(c);
        return c;
    }

    /// <summary>A single-platform image; <paramref name="marker"/> makes its config (and so its ID) unique.
    /// <paramref name="configure"/> changes its container config, <paramref name="files"/> adds files to its first layer.</summary>
    public static TestImage Build(string marker, int extraLayerBytes = 0, string manifestMediaType = MediaTypes.OciManifest, int extraLayers = 1,
        Action<ContainerConfig>? configure = null, IEnumerable<(string Path, byte[] Data)>? files = null)
    {
        var img = new TestImage();
        var layers = new List<byte[]> { Layer([("etc/marker", Encoding.UTF8.GetBytes(marker)), .. files ?? []], withBusybox: true) };
        for (var i = 0; i < (extraLayerBytes > 0 ? extraLayers : 0); i++)
        {
            var big = new byte[extraLayerBytes];
            Random.Shared.NextBytes(big);
            layers.Add(Layer([($"big{i}.bin", big)], withBusybox: false));
        }
        var (md, bytes) = img.BuildManifest("amd64", layers, marker, manifestMediaType, configure);
        img.Manifest = md;
        img.ManifestBytes = bytes;
        return img;
    }

    /// <summary>An OCI index with amd64 and arm64 manifests (the arm64 one has its own marker layer).</summary>
    public static TestImage BuildMultiPlatform(string marker)
    {
        var img = new TestImage();
        var (amd, amdBytes) = img.BuildManifest("amd64", [Layer([("etc/marker", Encoding.UTF8.GetBytes(marker + "-amd64"))], true)], marker + "-amd64", MediaTypes.OciManifest);
        img.Manifest = amd;
        img.ManifestBytes = amdBytes;
        img.PlatformManifests["linux/amd64"] = amd;
        var (arm, _) = img.BuildManifest("arm64", [Layer([("etc/marker", Encoding.UTF8.GetBytes(marker + "-arm64"))], true)], marker + "-arm64", MediaTypes.OciManifest);
        img.PlatformManifests["linux/arm64"] = arm;
        var index = new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = [arm, amd] };
        img.IndexBytes = ImageJson.Serialize(index);
        img.Index = img.Add(img.IndexBytes, MediaTypes.OciIndex);
        return img;
    }

    /// <summary>Writes an OCI image layout with the image under <paramref name="tag"/>.</summary>
    public string WriteLayout(string dir, string tag)
    {
        Directory.CreateDirectory(Path.Combine(dir, "blobs", "sha256"));
        File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        foreach (var (d, data) in Blobs) File.WriteAllBytes(Path.Combine(dir, "blobs", "sha256", d[7..]), data);
        var top = Top;
        var entry = new Descriptor { MediaType = top.MediaType, Digest = top.Digest, Size = top.Size, Annotations = new() { ["org.opencontainers.image.ref.name"] = tag } };
        File.WriteAllBytes(Path.Combine(dir, "index.json"), ImageJson.Serialize(new ImageIndex { Manifests = [entry] }));
        return dir;
    }
}
