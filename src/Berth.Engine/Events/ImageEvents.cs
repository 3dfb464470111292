using System.Text.Json;
using Berth.Images;
using Berth.Images.Content;
using Berth.Oci.Image;

namespace Berth.Engine.Events;

/// <summary>
/// Image events in dockerd's shape (moby's LogImageEvent): type "image", the image's labels plus
/// name=…, with the actor as dockerd fills it in per action — pull/push: the reference
/// ("127.0.0.1:5000/x:v1"), name its repository; tag: the image ID, name the new tag; untag, delete,
/// load, save, import: the image ID, name the image ID too. Emitted by the engine's image methods
/// (<see cref="Containers.ImageManager"/>, image prune, import, commit), so the CLI and the Docker
/// API write the same events.
/// </summary>
public static class ImageEvents
{
    /// <summary>Appends one image event; <paramref name="labelsOf"/> (an image ID) adds that
    /// image's labels when its config is still in the store.</summary>
    public static void Emit(string dataRoot, string action, string id, string name, string? labelsOf = null)
    {
        var attrs = new Dictionary<string, string>(StringComparer.Ordinal);
        if (labelsOf is not null)
            foreach (var (k, v) in Labels(dataRoot, labelsOf)) attrs[k] = v;
        attrs["name"] = name;
        EventJournal.Emit(dataRoot, "image", action, id, attrs);
    }

    /// <summary>image prune's closing event (dockerd 23+): no actor, reclaimed=BYTES.</summary>
    public static void Pruned(string dataRoot, long reclaimed) =>
        EventJournal.Emit(dataRoot, "image", "prune", "", new Dictionary<string, string> { ["reclaimed"] = reclaimed.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    /// <summary>The image config's labels; none when the config is gone or unreadable (docker's
    /// delete events carry none for that reason).</summary>
    static IReadOnlyDictionary<string, string> Labels(string dataRoot, string imageId)
    {
        try
        {
            var store = new ImageStore(dataRoot);
            var digest = Digest.Parse(imageId);
            if (!store.Content.Exists(digest)) return new Dictionary<string, string>();
            var bytes = store.Content.ReadBlobAsync(digest).GetAwaiter().GetResult();
            return ImageJson.ParseConfig(bytes, $"image config {imageId}").Config?.Labels ?? [];
        }
        catch (Exception e) when (e is ImageException or IOException or JsonException or FormatException or UnauthorizedAccessException)
        {
            return new Dictionary<string, string>();
        }
    }
}
