using Berth.Images.Tests.Support;

namespace Berth.Images.Tests.Content;

/// <summary>
/// `rmi` by name vs by ID as docker's daemon does it: a name only untags until the last one goes; an
/// ID removes an image with one tag at once, but two tags (even of one repository) need -f.
/// </summary>
public sealed class RemoveSemanticsTests : IDisposable
{
    readonly BerthCli _berth = new();
    readonly TempDir _tmp = new();
    public void Dispose() { _berth.Dispose(); _tmp.Dispose(); }

    TestImage Load(string marker, string name)
    {
        var img = TestImage.Build(marker);
        _berth.Ok("load", "-i", img.WriteLayout(Path.Combine(_tmp.Outer, marker), name));
        return img;
    }

    string[] Blobs() => Directory.GetFiles(Path.Combine(_berth.Root, "images", "blobs", "sha256"));

    [Fact]
    public void By_tag_untags_by_id_deletes_and_two_tags_of_one_repository_need_force()
    {
        var img = Load("rmi-a", "localhost/rmi/x:1");
        _berth.Ok("tag", "localhost/rmi/x:1", "localhost/rmi/x:2");
        var id12 = img.Config.Digest[7..19];
        Assert.Equal($"berth: conflict: unable to delete {id12} (must be forced) - image is referenced in multiple repositories", _berth.Fails("rmi", id12));
        Assert.Equal("Untagged: localhost/rmi/x:1\n", _berth.Ok("rmi", "localhost/rmi/x:1"));
        Assert.Equal(id12, _berth.Ok("images", "-q").Trim());
        // one name left: by ID untags it and deletes the image, its blobs and its layers
        var rm = _berth.Ok("rmi", img.Config.Digest);
        Assert.StartsWith($"Untagged: localhost/rmi/x:2\nDeleted: {img.Config.Digest}\n", rm);
        Assert.Contains($"Deleted: {img.DiffId(0)}", rm);
        Assert.Empty(Blobs());
        Assert.Contains("is not known", _berth.Fails("rmi", id12));

        // -f removes every name; the last tag by name deletes the image too
        var b = Load("rmi-b", "localhost/rmi/y:1");
        _berth.Ok("tag", "localhost/rmi/y:1", "localhost/other/y:1");
        var forced = _berth.Ok("rmi", "-f", b.Config.Digest[7..19]);
        Assert.Contains("Untagged: localhost/rmi/y:1", forced);
        Assert.Contains("Untagged: localhost/other/y:1", forced);
        Assert.Contains($"Deleted: {b.Config.Digest}", forced);
        var c = Load("rmi-c", "localhost/rmi/z:1");
        Assert.StartsWith($"Untagged: localhost/rmi/z:1\nDeleted: {c.Config.Digest}\n", _berth.Ok("rmi", "localhost/rmi/z:1"));
        Assert.Empty(Blobs());
    }
}
