using k8s.Models;

namespace Berth.Cluster.Scheduling;

/// <summary>Resource amounts as integers: cpu in millicores, memory and ephemeral storage in bytes, pods as a count, extended resources by name.</summary>
public struct Resource
{
    public long MilliCpu;
    public long Memory;
    public long EphemeralStorage;
    public long Pods;
    public Dictionary<string, long>? Scalar;

    public void Add(in Resource r)
    {
        MilliCpu += r.MilliCpu; Memory += r.Memory; EphemeralStorage += r.EphemeralStorage; Pods += r.Pods;
        if (r.Scalar is not null)
        {
            Scalar ??= [];
            foreach (var (k, v) in r.Scalar) Scalar[k] = Scalar.GetValueOrDefault(k) + v;
        }
    }

    public void Sub(in Resource r)
    {
        MilliCpu -= r.MilliCpu; Memory -= r.Memory; EphemeralStorage -= r.EphemeralStorage; Pods -= r.Pods;
        if (r.Scalar is not null && Scalar is not null)
            foreach (var (k, v) in r.Scalar) Scalar[k] = Scalar.GetValueOrDefault(k) - v;
    }

    public readonly Resource Clone() => this with { Scalar = Scalar is null ? null : new(Scalar) };

    /// <summary>Reads a ResourceList (node allocatable or a container's requests).</summary>
    public static Resource From(IDictionary<string, ResourceQuantity>? list)
    {
        var r = new Resource();
        if (list is null) return r;
        foreach (var (name, q) in list)
        {
            switch (name)
            {
                case "cpu": r.MilliCpu = Quantities.MilliValue(q); break;
                case "memory": r.Memory = Quantities.Value(q); break;
                case "ephemeral-storage": r.EphemeralStorage = Quantities.Value(q); break;
                case "pods": r.Pods = Quantities.Value(q); break;
                default:
                    if (IsScalar(name)) (r.Scalar ??= [])[name] = Quantities.Value(q);
                    break;
            }
        }
        return r;
    }

    /// <summary>Extended resources (vendor.com/x), hugepages-*, attachable-volumes-*: scheduled as integers.</summary>
    static bool IsScalar(string name) => name.Contains('/') || name.StartsWith("hugepages-", StringComparison.Ordinal);

    /// <summary>max(a, b) per resource (init containers against the sum of app containers).</summary>
    public void SetMax(in Resource r)
    {
        MilliCpu = Math.Max(MilliCpu, r.MilliCpu); Memory = Math.Max(Memory, r.Memory);
        EphemeralStorage = Math.Max(EphemeralStorage, r.EphemeralStorage);
        if (r.Scalar is not null)
        {
            Scalar ??= [];
            foreach (var (k, v) in r.Scalar) Scalar[k] = Math.Max(Scalar.GetValueOrDefault(k), v);
        }
    }
}

/// <summary>Fast parsing of resource.Quantity strings ("100m", "128Mi", "1.5G", "2e3").</summary>
public static class Quantities
{
    // ResourceQuantity.ToString() canonicalizes (microseconds); ToDecimal() reads the parsed value.
    public static long Value(ResourceQuantity q) => Ceil(q.ToDecimal());
    public static long MilliValue(ResourceQuantity q) => Ceil(q.ToDecimal() * 1000);

    static long Ceil(decimal d)
    {
        try { return (long)decimal.Ceiling(d); }
        catch (OverflowException) { return d > 0 ? long.MaxValue : long.MinValue; }
    }

    /// <summary>Rounds up to an integer (of units, or of thousandths when <paramref name="milli"/>).</summary>
    public static long Parse(string s, bool milli)
    {
        if (TryParse(s, milli, out var v)) return v;
        throw new FormatException($"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': \"{s}\"");
    }

    public static bool TryParse(string s, bool milli, out long value)
    {
        value = 0;
        s = s.Trim();
        if (s.Length == 0) return false;
        int i = 0;
        if (s[0] is '+' or '-') i++;
        int numStart = i;
        while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
        if (i == numStart) return false;
        if (!decimal.TryParse(s.AsSpan(0, i), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var num)) return false;
        var suffix = s.AsSpan(i);
        decimal mult;
        switch (suffix)
        {
            case "": mult = 1; break;
            case "n": mult = 0.000000001m; break;
            case "u": mult = 0.000001m; break;
            case "m": mult = 0.001m; break;
            case "k": mult = 1000m; break;
            case "M": mult = 1000_000m; break;
            case "G": mult = 1000_000_000m; break;
            case "T": mult = 1000_000_000_000m; break;
            case "P": mult = 1000_000_000_000_000m; break;
            case "E": mult = 1000_000_000_000_000_000m; break;
            case "Ki": mult = 1024m; break;
            case "Mi": mult = 1024m * 1024; break;
            case "Gi": mult = 1024m * 1024 * 1024; break;
            case "Ti": mult = 1024m * 1024 * 1024 * 1024; break;
            case "Pi": mult = 1024m * 1024 * 1024 * 1024 * 1024; break;
            case "Ei": mult = 1024m * 1024 * 1024 * 1024 * 1024 * 1024; break;
            default:
                if (suffix[0] is 'e' or 'E' && int.TryParse(suffix[1..], out var exp) && exp is >= -18 and <= 18)
                {
                    mult = 1;
                    for (int k = 0; k < Math.Abs(exp); k++) mult = exp > 0 ? mult * 10 : mult / 10;
                    break;
                }
                return false;
        }
        try
        {
            var v = num * mult * (milli ? 1000 : 1);
            value = (long)decimal.Ceiling(v);
            return true;
        }
        catch (OverflowException) { value = long.MaxValue; return true; }
    }
}
