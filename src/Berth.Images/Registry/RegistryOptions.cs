namespace Berth.Images.Registry;

/// <summary>
/// How Berth talks to registries. TLS is verified against the system CAs unless the registry is
/// insecure: <see cref="TlsVerify"/> = false (podman's `--tls-verify=false`) or its host[:port] is in
/// <see cref="InsecureRegistries"/> (from $BERTH_INSECURE_REGISTRIES, comma-separated). An insecure
/// registry is tried over HTTPS without verification first, then over plain HTTP (docker's
/// insecure-registries behaviour). localhost and 127.0.0.1 get no exception by default (as podman):
/// a local registry without TLS needs one of the two settings.
/// </summary>
public sealed class RegistryOptions
{
    public bool TlsVerify { get; init; } = true;
    public IReadOnlySet<string> InsecureRegistries { get; init; } = FromEnvironment();
    public AuthFile? AuthFile { get; init; }
    /// <summary>Credentials to use instead of the auth file (login checks them before storing).</summary>
    public RegistryCredentials? Credentials { get; init; }
    /// <summary>Tries per request (first try included) on 429, 5xx and broken connections.</summary>
    public int MaxAttempts { get; init; } = 5;
    public TimeSpan BackoffBase { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan BackoffMax { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Concurrent blob transfers in one pull or push.</summary>
    public int Parallelism { get; init; } = 4;
    /// <summary>Blobs larger than this are pushed in PATCH chunks of this size; 0: one PUT (monolithic).</summary>
    public long ChunkSize { get; init; }
    /// <summary>Largest manifest accepted (the distribution spec suggests registries accept 4 MiB).</summary>
    public int MaxManifestBytes { get; init; } = 4 << 20;
    /// <summary>For tests: a handler to use instead of a SocketsHttpHandler.</summary>
    public Func<bool, HttpMessageHandler>? HandlerFactory { get; init; }

    public static IReadOnlySet<string> FromEnvironment() =>
        (Environment.GetEnvironmentVariable("BERTH_INSECURE_REGISTRIES") ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .ToHashSet(StringComparer.OrdinalIgnoreCase);

    public bool IsInsecure(string registry) => !TlsVerify || InsecureRegistries.Contains(registry);
}
