using System.Text;
using Berth.Images.Content;
using Berth.Images.Reference;
using Berth.Oci.Image;

namespace Berth.Images.Tests.Content;

public sealed class ContentStoreTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("berth-content-");
    public void Dispose() => _dir.Delete(true);

    ContentStore Store() => new(Path.Combine(_dir.FullName, "images"));

    string[] IngestLeftovers() =>
        Directory.Exists(Path.Combine(_dir.FullName, "images", "ingest")) ? Directory.GetFiles(Path.Combine(_dir.FullName, "images", "ingest")) : [];

    [Fact]
    public async Task Ingest_publishes_at_the_digest_path()
    {
        var s = Store();
        var data = Encoding.UTF8.GetBytes("hello blob");
        var d = await s.WriteBlobAsync(data);
        Assert.Equal(Digest.Sha256(data), d);
        Assert.Equal(Path.Combine(_dir.FullName, "images", "blobs", "sha256", d.Encoded), s.BlobPath(d));
        Assert.True(s.Exists(d));
        Assert.Equal(data.Length, s.SizeOf(d));
        using (var r = s.OpenBlob(d))
        using (var ms = new MemoryStream()) { r.CopyTo(ms); Assert.Equal(data, ms.ToArray()); }
        Assert.Empty(IngestLeftovers());
        Assert.Equal([d], s.ListBlobs());
    }

    [Fact]
    public async Task Wrong_digest_or_size_never_becomes_visible()
    {
        var s = Store();
        var data = Encoding.UTF8.GetBytes("real content");
        var claimed = Digest.Sha256(Encoding.UTF8.GetBytes("other content"));

        var e = await Assert.ThrowsAsync<ImageException>(() => s.IngestAsync(new MemoryStream(data), claimed, data.Length));
        Assert.Equal(ImageErrorKind.DataLoss, e.Kind);
        Assert.Contains(claimed.ToString(), e.Message);
        Assert.False(s.Exists(claimed));

        var good = Digest.Sha256(data);
        e = await Assert.ThrowsAsync<ImageException>(() => s.IngestAsync(new MemoryStream(data), good, data.Length - 1));
        Assert.Contains("more data than its declared size", e.Message);
        e = await Assert.ThrowsAsync<ImageException>(() => s.IngestAsync(new MemoryStream(data), good, data.Length + 5));
        Assert.Contains("descriptor says", e.Message);
        Assert.False(s.Exists(good));
        Assert.Empty(s.ListBlobs());
        Assert.Empty(IngestLeftovers());
    }

    [Fact]
    public async Task An_abandoned_ingest_leaves_nothing_and_a_half_written_one_is_invisible()
    {
        var s = Store();
        var data = new byte[100_000];
        Random.Shared.NextBytes(data);
        var d = Digest.Sha256(data);
        await using (var w = s.BeginIngest(d, data.Length))
        {
            await w.WriteAsync(data.AsMemory(0, 50_000));
            Assert.False(s.Exists(d));
            Assert.Single(IngestLeftovers());
            Assert.Throws<ImageException>(() => s.OpenBlob(d));
        }
        Assert.Empty(IngestLeftovers());
        Assert.False(s.Exists(d));
    }

    [Fact]
    public async Task Resumed_writer_restart_and_continue()
    {
        var s = Store();
        var data = Encoding.UTF8.GetBytes("0123456789");
        var d = Digest.Sha256(data);
        await using var w = s.BeginIngest(d, data.Length);
        await w.WriteAsync(Encoding.UTF8.GetBytes("XXXX"));
        w.Restart();
        await w.WriteAsync(data.AsMemory(0, 4));
        Assert.Equal(4, w.Offset);
        await w.WriteAsync(data.AsMemory(4));
        await w.CommitAsync();
        Assert.Equal(data, await s.ReadBlobAsync(d));
    }

    [Fact]
    public async Task Concurrent_ingests_of_one_digest_are_safe()
    {
        var s = Store();
        var data = new byte[1 << 20];
        Random.Shared.NextBytes(data);
        var d = Digest.Sha256(data);
        var tasks = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            await using var w = s.BeginIngest(d, data.Length);
            for (var off = 0; off < data.Length; off += 65536)
                await w.WriteAsync(data.AsMemory(off, 65536));
            await w.CommitAsync();
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(data, await s.ReadBlobAsync(d));
        Assert.Empty(IngestLeftovers());
    }

    [Fact]
    public async Task Readers_see_old_content_or_new_never_partial()
    {
        // A reader that opened the blob keeps reading it even when GC deletes it meanwhile.
        var s = Store();
        var data = new byte[300_000];
        Random.Shared.NextBytes(data);
        var d = await s.WriteBlobAsync(data);
        using var r = s.OpenBlob(d);
        s.DeleteBlob(d);
        using var ms = new MemoryStream();
        await r.CopyToAsync(ms);
        Assert.Equal(data, ms.ToArray());
    }
}

public sealed class ImageStoreTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("berth-images-");
    public void Dispose() => _dir.Delete(true);

    static async Task<ImageRecord> AddImage(ImageStore store, string name, params byte[][] layers)
    {
        var blobs = new List<string>();
        var layerDescs = new List<Descriptor>();
        foreach (var l in layers)
        {
            var ld = await store.Content.WriteBlobAsync(l);
            layerDescs.Add(new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = ld.ToString(), Size = l.Length });
        }
        var config = Encoding.UTF8.GetBytes($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:00Z\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}},\"comment\":\"{name}\"}}");
        var cd = await store.Content.WriteBlobAsync(config);
        var m = new Manifest { MediaType = MediaTypes.OciManifest, Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = cd.ToString(), Size = config.Length }, Layers = layerDescs };
        var mb = ImageJson.Serialize(m);
        var md = await store.Content.WriteBlobAsync(mb);
        var desc = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = md.ToString(), Size = mb.Length };
        var rec = new ImageRecord
        {
            Target = desc, Manifest = desc, Config = m.Config, Architecture = "amd64", Os = "linux",
            Blobs = [md.ToString(), cd.ToString(), .. layerDescs.Select(x => x.Digest)],
        };
        store.PutRecord(rec);
        store.SetName(ImageReference.Parse(name).WithDefaultTag(), desc.Digest);
        return rec;
    }

    [Fact]
    public async Task Removing_an_image_keeps_shared_blobs_and_gc_removes_the_rest()
    {
        var store = new ImageStore(_dir.FullName);
        var shared = Encoding.UTF8.GetBytes("shared layer");
        var a = await AddImage(store, "a", shared, Encoding.UTF8.GetBytes("only a"));
        var b = await AddImage(store, "b", shared, Encoding.UTF8.GetBytes("only b"));
        Assert.Equal(2, store.List().Count);

        using (store.LockExclusive())
        {
            var removed = store.Untag(ImageReference.Parse("a").WithDefaultTag());
            Assert.NotNull(removed);
            var gc = store.CollectGarbage(dangling: false);
            Assert.Equal(3, gc.DeletedBlobs); // a's manifest, config, own layer
        }
        var sharedDigest = Digest.Sha256(shared);
        Assert.True(store.Content.Exists(sharedDigest));
        Assert.False(store.Content.Exists(Digest.Sha256(Encoding.UTF8.GetBytes("only a"))));
        Assert.True(store.Content.Exists(Digest.Sha256(Encoding.UTF8.GetBytes("only b"))));
        Assert.All(b.Blobs, x => Assert.True(store.Content.Exists(Digest.Parse(x))));
        Assert.Equal("docker.io/library/b:latest", Assert.Single(Assert.Single(store.List()).Names).ToString());
        _ = a;
    }

    [Fact]
    public async Task Retagging_leaves_a_dangling_image_that_prune_removes()
    {
        var store = new ImageStore(_dir.FullName);
        var first = await AddImage(store, "x", Encoding.UTF8.GetBytes("v1"));
        var second = await AddImage(store, "x", Encoding.UTF8.GetBytes("v2")); // moves x:latest
        var list = store.List();
        Assert.Equal(2, list.Count);
        Assert.Empty(list.Single(i => i.Record.Target.Digest == first.Target.Digest).Names);
        using (store.LockExclusive())
        {
            var r = store.CollectGarbage(dangling: true);
            Assert.Equal([first.Id], r.DeletedImages);
        }
        Assert.Single(store.List());
        Assert.False(store.Content.Exists(Digest.Sha256(Encoding.UTF8.GetBytes("v1"))));
        Assert.True(store.Content.Exists(Digest.Sha256(Encoding.UTF8.GetBytes("v2"))));
        _ = second;
    }

    [Fact]
    public async Task Gc_removes_unreferenced_blobs_and_ingest_leftovers_only()
    {
        var store = new ImageStore(_dir.FullName);
        var img = await AddImage(store, "keep", Encoding.UTF8.GetBytes("kept"));
        var orphan = await store.Content.WriteBlobAsync(Encoding.UTF8.GetBytes("orphan from a failed pull"));
        var w = store.Content.BeginIngest(Digest.Sha256([1]), 1); // a crashed ingest's temp file
        await w.WriteAsync(new byte[] { 1 });
        using (store.LockExclusive())
        {
            var r = store.CollectGarbage(dangling: true);
            Assert.Empty(r.DeletedImages);
            Assert.Equal(1, r.DeletedBlobs);
        }
        Assert.False(store.Content.Exists(orphan));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.FullName, "images", "ingest")));
        Assert.All(img.Blobs, x => Assert.True(store.Content.Exists(Digest.Parse(x))));
        w.Dispose();
    }

    [Fact]
    public async Task Resolve_by_name_id_prefix_and_digest()
    {
        var store = new ImageStore(_dir.FullName);
        var img = await AddImage(store, "localhost:5000/app:v1", Encoding.UTF8.GetBytes("l"));
        Assert.Equal(img.Id, store.Resolve("localhost:5000/app:v1").Id);
        Assert.Equal(img.Id, store.Resolve(img.Id).Id);
        Assert.Equal(img.Id, store.Resolve(img.Id[7..19]).Id);
        Assert.Equal(img.Id, store.Resolve("localhost:5000/app@" + img.Target.Digest).Id);
        Assert.Equal(ImageErrorKind.NotFound, Assert.Throws<ImageException>(() => store.Resolve("localhost:5000/app:v2")).Kind);
        Assert.Equal(ImageErrorKind.NotFound, Assert.Throws<ImageException>(() => store.Resolve("nothing")).Kind);
    }

    [Fact]
    public void A_record_naming_a_missing_blob_is_refused()
    {
        var store = new ImageStore(_dir.FullName);
        var d = Digest.Sha256([9]).ToString();
        var rec = new ImageRecord { Target = new Descriptor { Digest = d }, Manifest = new Descriptor { Digest = d }, Blobs = [d] };
        Assert.Equal(ImageErrorKind.FailedPrecondition, Assert.Throws<ImageException>(() => store.PutRecord(rec)).Kind);
        Assert.Empty(store.List());
    }

    [Fact]
    public async Task Gc_waits_for_a_writer_holding_the_shared_lock()
    {
        var store = new ImageStore(_dir.FullName);
        var shared = store.LockShared();
        var shared2 = store.LockShared(); // writers do not wait for each other
        var gcDone = Task.Run(() => { using var x = store.LockExclusive(); });
        Assert.NotSame(gcDone, await Task.WhenAny(gcDone, Task.Delay(300)));
        shared.Dispose();
        Assert.NotSame(gcDone, await Task.WhenAny(gcDone, Task.Delay(200)));
        shared2.Dispose();
        Assert.Same(gcDone, await Task.WhenAny(gcDone, Task.Delay(5000)));
    }
}
