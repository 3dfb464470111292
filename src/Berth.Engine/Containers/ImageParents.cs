using Berth.Images.Content;

namespace Berth.Engine.Containers;

/// <summary>
/// The parent of an image made here from another (commit), as dockerd keeps it in its image
/// metadata: `docker history` names the parent (and its parent…) on the lines below the image's own,
/// `docker image inspect` shows it as Parent. Pulled, loaded and imported images have none. One file
/// per child under DATA/image-parents, holding the parent's ID and the child's record time: a record
/// written again later (the image deleted, then loaded) is another image to dockerd, with no parent.
/// </summary>
public static class ImageParents
{
    static string Dir(string dataRoot) => Path.Combine(dataRoot, "image-parents");
    static string FileOf(string dataRoot, string imageId) => Path.Combine(Dir(dataRoot), imageId.Replace("sha256:", "", StringComparison.Ordinal));

    public static void Set(string dataRoot, ImageRecord child, string parentId)
    {
        Directory.CreateDirectory(Dir(dataRoot));
        var path = FileOf(dataRoot, child.Id);
        var tmp = path + ".tmp" + Environment.ProcessId;
        File.WriteAllText(tmp, parentId + "\n" + child.Stored + "\n");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The parent's ID, or null (none recorded, or recorded for an earlier record of this ID).</summary>
    public static string? Get(string dataRoot, ImageRecord child)
    {
        try
        {
            var lines = File.ReadAllLines(FileOf(dataRoot, child.Id));
            return lines.Length >= 2 && lines[1] == child.Stored && lines[0].StartsWith("sha256:", StringComparison.Ordinal) ? lines[0] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
