using Berth.Oci.Image;

namespace Berth.Images.Tests.Support;

/// <summary>A registry-like in-test server for one <see cref="TestImage"/>, with hooks to misbehave.</summary>
public static class ImageServer
{
    /// <summary>Answers every tag (or only <paramref name="tags"/>) with the image's top manifest or index.
    /// <paramref name="blob"/> and <paramref name="manifest"/> may take over an answer (return true when they did).</summary>
    public static TinyHttpServer Serve(TestImage img, Func<HttpRequestInfo, Stream, string, Task<bool>>? blob = null, Func<HttpRequestInfo, Stream, Task<bool>>? manifest = null, string[]? tags = null)
    {
        return new TinyHttpServer(async (req, s) =>
        {
            if (req.Path == "/v2/") { await TinyHttpServer.Json(s, 200, "{}"); return true; }
            var path = req.Path;
            if (path.Contains("/manifests/"))
            {
                if (manifest is not null && await manifest(req, s)) return true;
                var reference = path[(path.LastIndexOf('/') + 1)..];
                byte[]? body = null; string? mt = null;
                if (reference == img.Top.Digest || (!reference.Contains(':') && (tags is null || tags.Contains(reference)))) { body = img.IndexBytes ?? img.ManifestBytes; mt = img.Top.MediaType; }
                else if (img.Blobs.TryGetValue(reference, out var b)) { body = b; mt = MediaTypes.OciManifest; }
                if (body is null) { await TinyHttpServer.Json(s, 404, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}"); return true; }
                await TinyHttpServer.Respond(s, 200, "OK", [("Content-Type", mt!)], body);
                return true;
            }
            if (path.Contains("/blobs/"))
            {
                var d = path[(path.LastIndexOf('/') + 1)..];
                if (blob is not null && await blob(req, s, d)) return true;
                if (!img.Blobs.TryGetValue(d, out var data)) { await TinyHttpServer.Json(s, 404, "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown\"}]}"); return true; }
                await TinyHttpServer.Respond(s, 200, "OK", [("Content-Type", "application/octet-stream")], data);
                return true;
            }
            await TinyHttpServer.Json(s, 404, "{}");
            return true;
        });
    }
}
