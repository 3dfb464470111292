using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using ImageConfig = Berth.Oci.Image.ContainerConfig;

namespace Berth.Engine.Containers;

/// <summary>An image as a container needs it: its ID, the chain ID of its top layer (the parent of
/// the container's writable snapshot) and its container config (the run defaults).</summary>
public sealed record ContainerImage(string Id, string? TopLayer, ImageConfig? Config);

/// <summary>The engine's view of the image store: find an image for a container (its layers
/// unpacked), or pull one. Pulling is the caller's decision, as in docker: the CLI pulls a missing
/// image and retries; the API answers 404 "No such image" and the docker CLI does the same.</summary>
public static class ContainerImages
{
    /// <summary>The image named by <paramref name="reference"/> (name, name:tag, name@digest or
    /// an ID prefix), with every layer unpacked into the snapshotter.</summary>
    /// <exception cref="EngineException">NotFound when the store has no such image.</exception>
    public static ContainerImage Resolve(string dataRoot, string reference)
    {
        var store = new ImageStore(dataRoot);
        var snapshots = OverlaySnapshotter.Create(dataRoot);
        try
        {
            var img = store.Resolve(reference);
            using (store.LockShared())
                ImageLayers.UnpackAsync(store, snapshots, img.Record, 4, CancellationToken.None).GetAwaiter().GetResult();
            var (_, config) = ImageLayers.ReadWithConfigAsync(store, img.Record, CancellationToken.None).GetAwaiter().GetResult();
            return new ContainerImage(img.Id, ImageLayers.TopChainId(config.RootFs.DiffIds), config.Config);
        }
        catch (ImageException e) when (e.Kind == ImageErrorKind.NotFound)
        {
            throw new EngineException(ErrorKind.NotFound, $"No such image: {reference}");
        }
        catch (ImageException e) { throw EngineException.Invalid(e.Message); }
    }

    /// <summary>Whether the store has an image by this reference (no unpacking).</summary>
    public static bool Exists(string dataRoot, string reference)
    {
        try
        {
            new ImageStore(dataRoot).Resolve(reference);
            return true;
        }
        catch (ImageException e) when (e.Kind == ImageErrorKind.NotFound) { return false; }
        catch (ImageException e) { throw EngineException.Invalid(e.Message); }
    }

    /// <summary>Pulls <paramref name="reference"/> (default tag "latest") and unpacks its layers as
    /// they arrive, reporting to <paramref name="progress"/> (<see cref="ImageManager.PullAsync"/>, which
    /// writes the pull event).</summary>
    public static async Task PullAsync(string dataRoot, string reference, ITransferProgress progress, CancellationToken ct, RegistryOptions? options = null)
    {
        try
        {
            var r = ImageReference.Parse(reference);
            await new ImageManager(dataRoot).PullAsync(r, PlatformSpec.Default, options ?? new RegistryOptions(), progress, ct).ConfigureAwait(false);
        }
        catch (ImageException e)
        {
            throw new EngineException(e.Kind == ImageErrorKind.NotFound ? ErrorKind.NotFound : ErrorKind.InvalidArgument, e.Message);
        }
        catch (HttpRequestException e) { throw EngineException.Invalid($"pulling {reference}: {e.Message}"); }
    }
}
