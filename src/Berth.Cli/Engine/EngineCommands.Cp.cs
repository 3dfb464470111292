using System.CommandLine;
using System.IO.Pipes;
using Berth.Engine;
using Berth.Engine.Containers;
using Berth.Linux;

namespace Berth.Cli.Engine;

public static partial class EngineCommands
{
    /// <summary>`cp [-a] [-L] CONTAINER:SRC DEST|-` and `cp [-a] [-L] SRC|- CONTAINER:DEST`: docker
    /// CLI's path rules (trailing "/", "/." for a directory's contents, file vs directory) over the
    /// engine's archive get/put, for running and stopped containers.</summary>
    static Command CpCommand()
    {
        var c = new Command("cp", "copy files/folders between a container and the local filesystem");
        var archive = new Option<bool>("--archive", "-a") { Description = "archive mode (copy all uid/gid information)" };
        var follow = new Option<bool>("--follow-link", "-L") { Description = "always follow symbol link in SRC_PATH" };
        var src = new Argument<string>("src") { Description = "CONTAINER:SRC_PATH | SRC_PATH | -" };
        var dst = new Argument<string>("dest") { Description = "DEST_PATH | - | CONTAINER:DEST_PATH" };
        c.Options.Add(archive); c.Options.Add(follow);
        c.Arguments.Add(src); c.Arguments.Add(dst);
        c.SetAction(p => Guard(() =>
        {
            var mgr = Manager(p);
            var (srcContainer, srcPath) = SplitCpArg(p.GetValue(src)!);
            var (dstContainer, dstPath) = SplitCpArg(p.GetValue(dst)!);
            if (srcContainer is not null && dstContainer is not null) throw EngineException.Invalid("copying between containers is not supported");
            if (srcContainer is null && dstContainer is null) throw EngineException.Invalid("must specify at least one container source");
            if (srcPath.Length == 0 || dstPath.Length == 0) throw EngineException.Invalid("filepath cannot be empty");
            if (srcContainer is not null) CopyFromContainer(mgr, srcContainer, srcPath, dstPath, p.GetValue(follow));
            else CopyToContainer(mgr, srcPath, dstContainer!, dstPath, p.GetValue(follow), p.GetValue(archive));
            return 0;
        }));
        return c;
    }

    /// <summary>docker's splitCpArg: an absolute path, or one whose part before ":" starts with ".", is local.</summary>
    static (string? Container, string Path) SplitCpArg(string arg)
    {
        if (arg.StartsWith('/')) return (null, arg);
        var i = arg.IndexOf(':');
        if (i < 0 || arg.StartsWith('.')) return (null, arg);
        return (arg[..i], arg[(i + 1)..]);
    }

    static void CopyFromContainer(ContainerManager mgr, string container, string srcPath, string dstPath, bool followLink)
    {
        if (followLink && ContainerArchive.Stat(mgr, container, srcPath) is { IsSymlink: true } link) srcPath = link.LinkTarget;
        if (dstPath == "-")
        {
            using var stdout = Console.OpenStandardOutput();
            ContainerArchive.Get(mgr, container, srcPath, stdout);
            return;
        }
        var stat = ContainerArchive.Stat(mgr, container, srcPath);
        var srcIsDir = stat.IsDir || (stat.IsSymlink && ContainerArchive.AssertsDirectory(srcPath));
        var dst = Path.GetFullPath(dstPath);
        string extractDir;
        string? rebase = null;
        if (Directory.Exists(dst)) extractDir = dst;
        else if (File.Exists(dst) || FileAt.TryStat(dst) is not null)
        {
            if (srcIsDir) throw EngineException.Invalid($"cannot copy directory: {srcPath} to file {dstPath}");
            if (ContainerArchive.AssertsDirectory(dstPath)) throw EngineException.Invalid($"not a directory: {dstPath}");
            extractDir = Path.GetDirectoryName(dst)!;
            rebase = Path.GetFileName(dst);
        }
        else
        {
            if (!srcIsDir && ContainerArchive.AssertsDirectory(dstPath)) throw EngineException.Invalid($"no such directory: {dstPath}");
            var trimmed = dst.TrimEnd('/');
            extractDir = Path.GetDirectoryName(trimmed)!;
            if (!Directory.Exists(extractDir)) throw new EngineException(ErrorKind.NotFound, $"no such directory: {extractDir}");
            rebase = Path.GetFileName(trimmed);
        }
        Pump(o => ContainerArchive.Get(mgr, container, srcPath, o, rebase), i => ContainerArchive.ExtractLocal(i, extractDir));
    }

    static void CopyToContainer(ContainerManager mgr, string srcPath, string container, string dstPath, bool followLink, bool copyUidGid)
    {
        PathStat? dstStat = null;
        try
        {
            dstStat = ContainerArchive.Stat(mgr, container, dstPath);
            if (dstStat.IsSymlink)
            {
                dstPath = dstStat.LinkTarget;
                dstStat = ContainerArchive.Stat(mgr, container, dstPath);
            }
        }
        catch (EngineException e) when (e.Kind == ErrorKind.NotFound && e.Message.StartsWith("Could not find", StringComparison.Ordinal)) { dstStat = null; }
        if (srcPath == "-")
        {
            if (dstStat is not { IsDir: true }) throw EngineException.Invalid($"destination \"{container}:{dstPath}\" must be a directory");
            using var stdin = Console.OpenStandardInput();
            ContainerArchive.Put(mgr, container, dstPath, stdin, copyUidGid);
            return;
        }
        var src = Path.GetFullPath(srcPath);
        if (followLink) src = Path.GetFullPath(new FileInfo(src.TrimEnd('/')).ResolveLinkTarget(true)?.FullName ?? src);
        var srcStat = FileAt.TryStat(src.TrimEnd('/').Length == 0 ? "/" : src.TrimEnd('/')) ?? throw new EngineException(ErrorKind.NotFound, $"lstat {srcPath}: no such file or directory");
        var srcIsDir = srcStat.IsDirectory || (srcStat.IsSymlink && Directory.Exists(src));
        if (ContainerArchive.AssertsDirectory(srcPath) && !srcIsDir) throw EngineException.Invalid($"not a directory: {srcPath}");
        var contents = srcPath.EndsWith("/.", StringComparison.Ordinal) || srcPath == ".";
        string putDir;
        string? rebase = null;
        if (dstStat is { IsDir: true }) putDir = dstPath;
        else if (dstStat is not null)
        {
            if (srcIsDir) throw EngineException.Invalid($"cannot copy directory: {srcPath} to file {container}:{dstPath}");
            if (ContainerArchive.AssertsDirectory(dstPath)) throw EngineException.Invalid($"not a directory: {container}:{dstPath}");
            (putDir, rebase) = ParentAndBase(dstPath);
        }
        else
        {
            if (!srcIsDir && ContainerArchive.AssertsDirectory(dstPath)) throw EngineException.Invalid($"no such directory: {container}:{dstPath}");
            (putDir, rebase) = ParentAndBase(dstPath);
        }
        Pump(o =>
        {
            using var tar = new TreeTar(o);
            if (srcIsDir && (contents || ContainerArchive.AssertsDirectory(srcPath) || srcStat.IsSymlink))
            {
                using var dir = Sys.Open(src, Berth.Linux.Interop.Libc.O_PATH | Berth.Linux.Interop.Libc.O_DIRECTORY);
                tar.Add(dir, "", rebase ?? (contents ? "." : Path.GetFileName(src.TrimEnd('/'))));
            }
            else
            {
                var trimmed = src.TrimEnd('/');
                using var parent = Sys.Open(Path.GetDirectoryName(trimmed) ?? "/", Berth.Linux.Interop.Libc.O_PATH | Berth.Linux.Interop.Libc.O_DIRECTORY);
                tar.Add(parent, Path.GetFileName(trimmed), rebase ?? Path.GetFileName(trimmed));
            }
        }, i => ContainerArchive.Put(mgr, container, putDir, i, copyUidGid));
    }

    static (string Parent, string Base) ParentAndBase(string containerPath)
    {
        var clean = Berth.Linux.RootfsPath.CleanInRoot("/" + containerPath);
        var i = clean.LastIndexOf('/');
        return (i <= 0 ? "/" : clean[..i], clean[(i + 1)..]);
    }

    /// <summary>Runs a tar producer and a consumer joined by a pipe (the producer on its own thread).</summary>
    static void Pump(Action<Stream> produce, Action<Stream> consume)
    {
        using var server = new AnonymousPipeServerStream(PipeDirection.Out);
        using var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        Exception? failed = null;
        var t = new Thread(() =>
        {
            try { produce(server); }
            catch (Exception e) { failed = e; }
            finally { server.Dispose(); }
        }) { IsBackground = true };
        t.Start();
        try { consume(client); }
        catch (Exception) when (Drain(client, t) && failed is not null) { throw failed; }
        Drain(client, t);
        if (failed is not null) throw failed;
    }

    static bool Drain(Stream s, Thread t)
    {
        var buf = new byte[64 * 1024];
        // The consumer may have closed its end already (the unpacker disposes its input).
        try { while (s.Read(buf) > 0) { } } catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        t.Join();
        return true;
    }
}
