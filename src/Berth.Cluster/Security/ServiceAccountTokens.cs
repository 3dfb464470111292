using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Cluster.Security;

/// <summary>The claims of a verified ServiceAccount token.</summary>
public sealed record ServiceAccountClaims(string Namespace, string Name, string Uid, DateTimeOffset Expires);

/// <summary>
/// ServiceAccount tokens as kube-apiserver issues them for TokenRequest (`kubectl create token`): JWTs
/// (ES256, signed with the server's CA key) whose subject is system:serviceaccount:NS:NAME, with the
/// audience, expiry and kubernetes.io claims (namespace, serviceaccount name and uid). Verification
/// checks the signature, the issuer, the audience and the time window; that the ServiceAccount still
/// exists with that uid is the authenticator's part.
/// </summary>
public sealed class ServiceAccountTokens
{
    public const string Issuer = "https://kubernetes.default.svc.cluster.local";
    public static readonly string[] DefaultAudiences = [Issuer];

    readonly ECDsa? signer;
    readonly ECDsa verifier;
    readonly string keyId;

    public ServiceAccountTokens(X509Certificate2 ca)
    {
        signer = ca.GetECDsaPrivateKey();
        verifier = ca.GetECDsaPublicKey() ?? throw new ArgumentException("the CA's key is not an ECDSA key");
        keyId = B64Url(SHA256.HashData(verifier.ExportSubjectPublicKeyInfo()));
    }

    static string B64Url(ReadOnlySpan<byte> data) => Base64Url.EncodeToString(data);

    /// <summary>A signed token for the ServiceAccount, valid from now for <paramref name="lifetime"/>.</summary>
    public string Issue(string ns, string name, string uid, IReadOnlyList<string> audiences, DateTimeOffset now, TimeSpan lifetime)
    {
        if (signer is null) throw new InvalidOperationException("the CA's private key is not available: tokens cannot be signed");
        var header = """{"alg":"ES256","kid":"KID","typ":"JWT"}""".Replace("KID", keyId);
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("aud");
            foreach (var a in audiences) w.WriteStringValue(a);
            w.WriteEndArray();
            w.WriteNumber("exp", (now + lifetime).ToUnixTimeSeconds());
            w.WriteNumber("iat", now.ToUnixTimeSeconds());
            w.WriteString("iss", Issuer);
            w.WriteString("jti", Guid.NewGuid().ToString());
            w.WriteStartObject("kubernetes.io");
            w.WriteString("namespace", ns);
            w.WriteStartObject("serviceaccount");
            w.WriteString("name", name);
            w.WriteString("uid", uid);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteNumber("nbf", now.ToUnixTimeSeconds());
            w.WriteString("sub", $"{UserInfo.ServiceAccountPrefix}{ns}:{name}");
            w.WriteEndObject();
        }
        var signingInput = B64Url(Encoding.UTF8.GetBytes(header)) + "." + B64Url(buffer.WrittenSpan);
        var signature = signer.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return signingInput + "." + B64Url(signature);
    }

    /// <summary>The claims of a token this server signed and that is valid now; null for anything else.</summary>
    public ServiceAccountClaims? Verify(string token, DateTimeOffset now)
    {
        var first = token.IndexOf('.');
        var second = first < 0 ? -1 : token.IndexOf('.', first + 1);
        if (first <= 0 || second <= first + 1 || second == token.Length - 1 || token.IndexOf('.', second + 1) >= 0) return null;
        try
        {
            var signature = Base64Url.DecodeFromChars(token.AsSpan(second + 1));
            if (!verifier.VerifyData(Encoding.ASCII.GetBytes(token[..second]), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
                return null;
            var header = JsonNode.Parse(Base64Url.DecodeFromChars(token.AsSpan(0, first)));
            if (header?["alg"]?.GetValue<string>() != "ES256") return null;
            var claims = JsonNode.Parse(Base64Url.DecodeFromChars(token.AsSpan(first + 1, second - first - 1))) as JsonObject;
            if (claims is null || claims["iss"]?.GetValue<string>() != Issuer) return null;
            var exp = claims["exp"]?.GetValue<long>() ?? 0;
            var nbf = claims["nbf"]?.GetValue<long>() ?? 0;
            var unix = now.ToUnixTimeSeconds();
            if (unix >= exp || unix + 60 < nbf) return null; // a minute of clock skew, as kube allows
            var aud = claims["aud"] is JsonArray a ? a.Select(x => x?.GetValue<string>()) : [claims["aud"]?.GetValue<string>()];
            if (!aud.Contains(Issuer)) return null;
            var k = claims["kubernetes.io"];
            var ns = k?["namespace"]?.GetValue<string>();
            var name = k?["serviceaccount"]?["name"]?.GetValue<string>();
            var uid = k?["serviceaccount"]?["uid"]?.GetValue<string>() ?? "";
            if (string.IsNullOrEmpty(ns) || string.IsNullOrEmpty(name)) return null;
            if (claims["sub"]?.GetValue<string>() != $"{UserInfo.ServiceAccountPrefix}{ns}:{name}") return null;
            return new ServiceAccountClaims(ns, name, uid, DateTimeOffset.FromUnixTimeSeconds(exp));
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException or CryptographicException) { return null; }
    }
}
