namespace Berth.Tests.Shared;

/// <summary>The build tests' contexts: a directory with a Dockerfile and the files a test names.</summary>
public static class BuildContextFiles
{
    /// <summary>Writes DIR/Dockerfile and each file (a path relative to DIR; its directories are made); returns DIR.</summary>
    public static string Write(string dir, string dockerfile, params (string Path, string Text)[] files)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), dockerfile);
        foreach (var (p, t) in files)
        {
            var full = Path.Combine(dir, p);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, t);
        }
        return dir;
    }
}
