using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Berth.Images.Reference;
using Berth.Oci.Image;

namespace Berth.Images.Content;

/// <summary>An image as listed: its record and the names that point at it (none: dangling). A name is
/// a tag (repo:tag) or a digest name (repo@digest): the latter only where a registry confirmed that
/// manifest digest for that repository (a pull from it, a push to it, a pull by digest), as dockerd
/// records them.</summary>
public sealed record StoredImage(ImageRecord Record, IReadOnlyList<ImageReference> Names)
{
    public string Id => Record.Id;

    /// <summary>docker's RepoTags: the tag names, familiar.</summary>
    public List<string> RepoTags => Names.Where(n => n.Tag is not null && n.Digest is null).Select(n => n.FamiliarString).ToList();

    /// <summary>docker's RepoDigests: the digest names (registry-confirmed), familiar repo@digest.</summary>
    public List<string> RepoDigests => Names.Where(n => n.Digest is not null).Select(n => $"{n.FamiliarName}@{n.Digest}").Distinct().ToList();
}

/// <summary>What garbage collection removed.</summary>
public sealed record PruneResult(IReadOnlyList<string> DeletedImages, int DeletedBlobs, long BytesFreed);

/// <summary>
/// Images on disk, under &lt;root&gt;/images: the <see cref="ContentStore"/> (blobs), one record per
/// image in records/&lt;target hex&gt;.json and one file per name in names/&lt;sha256 of the name&gt;.json.
/// Every file is written whole to a temp file, fsynced and renamed into place, in the order blobs →
/// record → name, so a crash at any point leaves at worst unreferenced blobs, which GC removes.
/// There is no global lock for writers; <see cref="StoreLock"/> keeps GC apart from them.
/// </summary>
public sealed class ImageStore
{
    public string Root { get; }
    public ContentStore Content { get; }
    readonly string _records, _names;

    public ImageStore(string dataRoot)
    {
        Root = Path.Combine(dataRoot, "images");
        Content = new ContentStore(Root);
        _records = Path.Combine(Root, "records");
        _names = Path.Combine(Root, "names");
    }

    public StoreLock LockShared() => StoreLock.Shared(Root);
    public StoreLock LockExclusive() => StoreLock.Exclusive(Root);

    string RecordPath(string target) => Path.Combine(_records, Digest.Parse(target).Encoded + ".json");
    string NamePath(ImageReference name) =>
        Path.Combine(_names, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name.ToString()))) + ".json");

    /// <summary>Writes an image record (its blobs must already be in the content store).</summary>
    public void PutRecord(ImageRecord record)
    {
        foreach (var b in record.Blobs)
            if (!Content.Exists(Digest.Parse(b)))
                throw ImageException.Precondition($"image {record.Target.Digest}: blob {b} is not in the content store");
        WriteAtomic(_records, RecordPath(record.Target.Digest), JsonSerializer.SerializeToUtf8Bytes(record, ContentJsonContext.Default.ImageRecord));
    }

    public ImageRecord? GetRecord(string target)
    {
        var p = RecordPath(target);
        if (!File.Exists(p)) return null;
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(p), ContentJsonContext.Default.ImageRecord); }
        catch (FileNotFoundException) { return null; }
    }

    /// <summary>Points a name at an image record (creating or moving the tag).</summary>
    public void SetName(ImageReference name, string target)
    {
        if (GetRecord(target) is null) throw ImageException.NotFound($"image {target} is not in the store");
        var rec = new NameRecord { Reference = name.ToString(), Target = target };
        WriteAtomic(_names, NamePath(name), JsonSerializer.SerializeToUtf8Bytes(rec, ContentJsonContext.Default.NameRecord));
    }

    public string? GetName(ImageReference name)
    {
        var p = NamePath(name);
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(p), ContentJsonContext.Default.NameRecord)?.Target; }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
    }

    public bool RemoveName(ImageReference name)
    {
        var p = NamePath(name);
        if (!File.Exists(p)) return false;
        File.Delete(p);
        ContentStore.FsyncDirectory(_names);
        return true;
    }

    public IEnumerable<(ImageReference Name, string Target)> ListNames()
    {
        if (!Directory.Exists(_names)) yield break;
        foreach (var f in Directory.EnumerateFiles(_names, "*.json"))
        {
            NameRecord? n;
            try { n = JsonSerializer.Deserialize(File.ReadAllBytes(f), ContentJsonContext.Default.NameRecord); }
            catch (FileNotFoundException) { continue; }
            if (n is null || !ImageReference.TryParse(n.Reference, out var r, out _)) continue;
            yield return (r, n.Target);
        }
    }

    public IEnumerable<ImageRecord> ListRecords()
    {
        if (!Directory.Exists(_records)) yield break;
        foreach (var f in Directory.EnumerateFiles(_records, "*.json"))
        {
            ImageRecord? r;
            try { r = JsonSerializer.Deserialize(File.ReadAllBytes(f), ContentJsonContext.Default.ImageRecord); }
            catch (FileNotFoundException) { continue; }
            if (r is not null) yield return r;
        }
    }

    /// <summary>Every image with its names, names sorted; dangling images have none.</summary>
    public List<StoredImage> List()
    {
        var byTarget = ListNames().GroupBy(n => n.Target).ToDictionary(g => g.Key, g => g.Select(x => x.Name).OrderBy(x => x.ToString(), StringComparer.Ordinal).ToList());
        return ListRecords()
            .Select(r => new StoredImage(r, byTarget.TryGetValue(r.Target.Digest, out var ns) ? ns : []))
            .OrderByDescending(i => i.Record.Created ?? "", StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// Finds an image as docker does: a name (normalised, `:latest` added), a repo@digest, a full or
    /// `sha256:`-prefixed image ID, or a unique prefix of an ID. NotFound / InvalidArgument otherwise.
    /// </summary>
    public StoredImage Resolve(string input)
    {
        var all = List();
        if (ImageReference.TryParse(input, out var r, out _))
        {
            var named = r.WithDefaultTag();
            var hit = all.FirstOrDefault(i => i.Names.Contains(named));
            if (hit is not null) return hit;
            if (r.Digest is { } d)
            {
                hit = all.FirstOrDefault(i => i.Record.Target.Digest == d.ToString() && i.Names.Any(n => n.Name == r.Name))
                      ?? all.FirstOrDefault(i => i.Record.Manifest.Digest == d.ToString() && i.Names.Any(n => n.Name == r.Name));
                if (hit is not null) return hit;
            }
        }
        var id = input.StartsWith("sha256:", StringComparison.Ordinal) ? input[7..] : input;
        if (id.Length > 0 && id.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f'))
        {
            var byId = all.Where(i => i.Id.Length > 7 && i.Id[7..].StartsWith(id, StringComparison.Ordinal)).ToList();
            var ids = byId.Select(i => i.Id).Distinct().Count();
            if (ids > 1) throw ImageException.Invalid($"image ID prefix \"{input}\" is ambiguous");
            if (byId.Count > 0) return byId[0];
        }
        throw ImageException.NotFound($"image \"{input}\" is not known{(r is null ? "" : $" (looked for {r.WithDefaultTag()})")}");
    }

    /// <summary>
    /// Removes a name; when no other name points at its image, removes the image record too (its
    /// blobs stay until <see cref="CollectGarbage"/>, which rmi runs next, shared blobs survive).
    /// Returns the record deleted, if any. Call with the exclusive lock held.
    /// </summary>
    public ImageRecord? Untag(ImageReference name)
    {
        var target = GetName(name) ?? throw ImageException.NotFound($"image \"{name}\" is not known");
        RemoveName(name);
        if (ListNames().Any(n => n.Target == target)) return null;
        var rec = GetRecord(target);
        DeleteRecord(target);
        return rec;
    }

    public void DeleteRecord(string target)
    {
        var p = RecordPath(target);
        if (File.Exists(p)) { File.Delete(p); ContentStore.FsyncDirectory(_records); }
    }

    /// <summary>
    /// Mark and sweep: every blob listed by a record is kept; every other blob, every ingest temp file
    /// and every temp file of an interrupted record/name write is deleted. With
    /// <paramref name="dangling"/> (`image prune`), records that no name points at go first. Call
    /// with the exclusive lock held, so no pull is between storing a blob and recording it.
    /// </summary>
    public PruneResult CollectGarbage(bool dangling)
    {
        var deletedImages = new List<string>();
        if (dangling)
        {
            var named = ListNames().Select(n => n.Target).ToHashSet();
            foreach (var r in ListRecords())
                if (!named.Contains(r.Target.Digest)) { DeleteRecord(r.Target.Digest); deletedImages.Add(r.Id); }
        }
        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in ListRecords())
        {
            keep.UnionWith(r.Blobs);
            keep.Add(r.Target.Digest);
            keep.Add(r.Manifest.Digest);
            keep.Add(r.Config.Digest);
        }
        int blobs = 0; long bytes = 0;
        foreach (var d in Content.ListBlobs().ToList())
        {
            if (keep.Contains(d.ToString())) continue;
            bytes += Content.DeleteBlob(d);
            blobs++;
        }
        Content.DeleteIngestLeftovers();
        // temp files of record/name writes that a crash interrupted
        foreach (var dir in new[] { _records, _names })
            if (Directory.Exists(dir))
                foreach (var f in Directory.EnumerateFiles(dir, "*.tmp"))
                    try { File.Delete(f); } catch (IOException) { }
        return new PruneResult(deletedImages, blobs, bytes);
    }

    /// <summary>
    /// Undoes a failed pull or load: deletes the records it created (<paramref name="createdTargets"/>)
    /// unless a name points at them, then every blob no record needs. Call with the exclusive lock held.
    /// </summary>
    public void DiscardCreated(IReadOnlyCollection<string> createdTargets)
    {
        var named = ListNames().Select(n => n.Target).ToHashSet(StringComparer.Ordinal);
        foreach (var t in createdTargets)
            if (!named.Contains(t)) DeleteRecord(t);
        CollectGarbage(dangling: false);
    }

    static void WriteAtomic(string dir, string path, byte[] data)
    {
        Directory.CreateDirectory(dir);
        var tmp = path + $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(data);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
        ContentStore.FsyncDirectory(dir);
    }
}
