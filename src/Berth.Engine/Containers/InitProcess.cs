using System.Runtime.InteropServices;

namespace Berth.Engine.Containers;

/// <summary>`--init`: the container's process becomes <c>/dev/init -- COMMAND…</c>, where /dev/init is a
/// read-only bind of berth-init (native/init.c: a static executable embedded in the berth binary) that
/// forwards signals to the command and reaps orphans. The engine writes it once to
/// <c>ROOT/init/berth-init</c> (rewritten when the embedded one differs).</summary>
public static partial class InitProcess
{
    /// <summary>Where the init is mounted in the container (podman's former path).</summary>
    public const string Destination = "/dev/init";

    [LibraryImport("berthinit", EntryPoint = "berth_init_image")]
    private static unsafe partial byte* Image(out nuint length);

    static unsafe ReadOnlySpan<byte> Embedded()
    {
        byte* p = Image(out var length);
        return new ReadOnlySpan<byte>(p, checked((int)length));
    }

    /// <summary>The host path of the init executable under <paramref name="root"/>, written if missing or stale.</summary>
    public static string Ensure(string root)
    {
        var dir = Path.Combine(root, "init");
        var path = Path.Combine(dir, "berth-init");
        var image = Embedded();
        if (Same(path, image)) return path;
        Directory.CreateDirectory(dir);
        WriteExecutable(path, image);
        return path;
    }

    /// <summary>Writes an executable whole (temp file, fsync when <paramref name="durable"/>, rename): a
    /// reader sees the old file or the new one.</summary>
    internal static void WriteExecutable(string path, ReadOnlySpan<byte> image, bool durable = true)
    {
        var tmp = path + "." + Environment.ProcessId + ".tmp";
        try
        {
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                f.Write(image);
                f.Flush(flushToDisk: durable);
            }
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    static bool Same(string path, ReadOnlySpan<byte> image)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
            if (f.Length != image.Length) return false;
            var buf = new byte[image.Length];
            f.ReadExactly(buf);
            return image.SequenceEqual(buf);
        }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
    }

    /// <summary>Makes the spec's process run under the init: args prefixed, the init bind-mounted read-only.</summary>
    public static void Apply(Oci.Runtime.Spec spec, string initPath)
    {
        var p = spec.Process!;
        p.Args = [Destination, "--", .. p.Args ?? []];
        var mounts = spec.Mounts ??= [];
        mounts.RemoveAll(m => m.Destination == Destination);
        mounts.Add(new Oci.Runtime.Mount { Destination = Destination, Type = "bind", Source = initPath, Options = ["bind", "ro", "nosuid", "nodev", "rprivate"] });
    }
}
