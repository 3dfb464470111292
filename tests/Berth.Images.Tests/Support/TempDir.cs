namespace Berth.Images.Tests.Support;

/// <summary>A temp directory with a "root" inside it, so tests can check that nothing was written
/// next to the root (outside it).</summary>
public sealed class TempDir : IDisposable
{
    public string Outer { get; } = Directory.CreateTempSubdirectory("berth-images-test-").FullName;
    public string Root => Path.Combine(Outer, "root");

    public TempDir() => Directory.CreateDirectory(Root);

    public string[] OuterEntries() => Directory.GetFileSystemEntries(Outer).Select(Path.GetFileName).ToArray()!;

    public void Dispose()
    {
        try { Directory.Delete(Outer, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
