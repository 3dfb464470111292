using System.Runtime.InteropServices;
using Berth.Oci.Image;

namespace Berth.Images.Registry;

/// <summary>
/// A wanted platform `os/arch[/variant]` (`--platform`), normalised as containerd's platforms
/// package does (x86_64 → amd64, aarch64 → arm64, arm64's variant v8 implied). The default is
/// linux and the host's architecture.
/// </summary>
public sealed record PlatformSpec(string Os, string Architecture, string? Variant)
{
    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";

    public static PlatformSpec Default => new("linux", HostArchitecture(), null);

    static string HostArchitecture() => RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64", System.Runtime.InteropServices.Architecture.Arm64 => "arm64", System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.X86 => "386", System.Runtime.InteropServices.Architecture.S390x => "s390x", System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64", System.Runtime.InteropServices.Architecture.LoongArch64 => "loong64",
        var a => a.ToString().ToLowerInvariant(),
    };

    public static PlatformSpec Parse(string s)
    {
        var parts = s.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
            throw ImageException.Invalid($"invalid platform \"{s}\": want os/arch[/variant], e.g. linux/amd64");
        var (arch, variant) = NormalizeArch(parts[1].ToLowerInvariant(), parts.Length == 3 ? parts[2].ToLowerInvariant() : null);
        return new PlatformSpec(parts[0].ToLowerInvariant(), arch, variant);
    }

    static (string, string?) NormalizeArch(string arch, string? variant) => arch switch
    {
        "x86_64" or "x86-64" => ("amd64", null),
        "aarch64" => ("arm64", variant is "8" or "v8" ? null : variant),
        "arm64" => ("arm64", variant is "8" or "v8" ? null : variant),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "i386" => ("386", null),
        _ => (arch, variant),
    };

    /// <summary>Whether an index entry's platform is this one (variant compared when either names one).</summary>
    public bool Matches(Platform? p)
    {
        if (p is null || p.Os != Os) return false;
        var (arch, variant) = NormalizeArch(p.Architecture, p.Variant);
        if (arch != Architecture) return false;
        if (Variant is null) return true;
        return variant == Variant;
    }

    /// <summary>Picks this platform's manifest from an index; NotFound naming the platforms it has.</summary>
    public Descriptor Select(ImageIndex index, string what)
    {
        var candidates = index.Manifests.Where(m => MediaTypes.IsManifest(m.MediaType) && Matches(m.Platform)).ToList();
        // Prefer an exact variant match, then one without a variant.
        var best = candidates.FirstOrDefault(m => NormalizeArch(m.Platform!.Architecture, m.Platform.Variant).Item2 == Variant)
                   ?? candidates.FirstOrDefault();
        if (best is not null) return best;
        var has = index.Manifests.Where(m => m.Platform is not null && m.Platform.Os != "unknown")
            .Select(m => m.Platform!.Variant is null ? $"{m.Platform.Os}/{m.Platform.Architecture}" : $"{m.Platform.Os}/{m.Platform.Architecture}/{m.Platform.Variant}");
        throw ImageException.NotFound($"{what}: no image for platform {this} (it has: {string.Join(", ", has.DefaultIfEmpty("none"))})");
    }
}
