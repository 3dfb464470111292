using System.Globalization;

namespace Berth.Cluster.Api.Admission;

/// <summary>How a quantity is written: 128Mi (binary SI), 100m / 2k (decimal SI) or 1e3 (decimal exponent).</summary>
public enum QuantityFormat { DecimalSI, BinarySI, DecimalExponent }

/// <summary>
/// A resource.Quantity as exact decimal arithmetic needs it for quota sums and LimitRange comparisons:
/// the value (rounded up to nano units, as apimachinery keeps it) and the format of the text it came from,
/// printed back in apimachinery's canonical form ("1.5" cpu is 1500m, 1536Mi stays 1536Mi, 2048Mi is 2Gi).
/// </summary>
public readonly record struct Quantity(decimal Value, QuantityFormat Format) : IComparable<Quantity>
{
    public static readonly Quantity Zero = new(0, QuantityFormat.DecimalSI);

    static readonly (string Suffix, int Exp)[] DecimalSuffixes = [("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
    static readonly (string Suffix, int Pow)[] BinarySuffixes = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];

    public int CompareTo(Quantity other) => Value.CompareTo(other.Value);
    public static bool operator <(Quantity a, Quantity b) => a.Value < b.Value;
    public static bool operator >(Quantity a, Quantity b) => a.Value > b.Value;
    public static bool operator <=(Quantity a, Quantity b) => a.Value <= b.Value;
    public static bool operator >=(Quantity a, Quantity b) => a.Value >= b.Value;

    /// <summary>The sum, in this quantity's format (apimachinery's Add keeps the receiver's); zero takes the other's.</summary>
    public Quantity Add(Quantity o) => new(Value + o.Value, Value == 0 && Format == QuantityFormat.DecimalSI ? o.Format : Format);
    public Quantity Sub(Quantity o) => new(Value - o.Value, Format);

    /// <summary>The value in milli-units, rounded up (MilliValue).</summary>
    public long MilliValue => (long)decimal.Ceiling(Value * 1000);

    /// <summary>Parses a quantity's text; null when it is not one.</summary>
    public static Quantity? TryParse(string? s)
    {
        if (string.IsNullOrEmpty(s)) return null;
        var i = 0;
        if (s[i] is '+' or '-') i++;
        var numStart = i;
        while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
        if (i == numStart) return null;
        if (!decimal.TryParse(s[..i], NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)) return null;
        var suffix = s[i..];
        decimal factor;
        QuantityFormat format;
        if (suffix.Length == 0) { factor = 1; format = QuantityFormat.DecimalSI; }
        else if (Array.FindIndex(BinarySuffixes, b => b.Suffix == suffix) is >= 0 and var bi) { factor = Pow2(BinarySuffixes[bi].Pow); format = QuantityFormat.BinarySI; }
        else if (Array.FindIndex(DecimalSuffixes, d => d.Suffix == suffix) is >= 0 and var di) { factor = Pow10(DecimalSuffixes[di].Exp); format = QuantityFormat.DecimalSI; }
        else if (suffix[0] is 'e' or 'E' && int.TryParse(suffix[1..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exp) && exp is >= -18 and <= 18 && suffix.Length > 1)
        { factor = Pow10(exp); format = QuantityFormat.DecimalExponent; }
        else return null;
        try
        {
            var v = number * factor;
            // apimachinery keeps nano precision, rounding up
            var nanos = v * 1_000_000_000m;
            if (nanos != decimal.Truncate(nanos)) v = decimal.Ceiling(nanos) / 1_000_000_000m;
            return new Quantity(v, format);
        }
        catch (OverflowException) { return null; }
    }

    public static Quantity Parse(string s) => TryParse(s) ?? throw new FormatException($"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (\"{s}\")");

    static decimal Pow10(int e)
    {
        var r = 1m;
        for (var k = 0; k < Math.Abs(e); k++) r *= 10;
        return e < 0 ? 1 / r : r;
    }

    static decimal Pow2(int p)
    {
        var r = 1m;
        for (var k = 0; k < p; k++) r *= 2;
        return r;
    }

    /// <summary>The canonical text (what the API server stores and prints).</summary>
    public override string ToString()
    {
        if (Value == 0) return "0";
        var sign = Value < 0 ? "-" : "";
        var v = Math.Abs(Value);
        if (Format == QuantityFormat.BinarySI && v == decimal.Truncate(v))
        {
            if (v < 1024) return sign + v.ToString("0", CultureInfo.InvariantCulture);
            for (var k = BinarySuffixes.Length - 1; k >= 0; k--)
            {
                var f = Pow2(BinarySuffixes[k].Pow);
                if (v % f == 0) return sign + (v / f).ToString("0", CultureInfo.InvariantCulture) + BinarySuffixes[k].Suffix;
            }
        }
        // decimal SI (and a fractional binary value): the largest multiple-of-3 exponent with an integer mantissa
        for (var k = DecimalSuffixes.Length - 1; k >= 0; k--)
        {
            var (suffix, exp) = DecimalSuffixes[k];
            var m = v / Pow10(exp);
            if (m == decimal.Truncate(m))
            {
                var text = m.ToString("0", CultureInfo.InvariantCulture);
                if (Format == QuantityFormat.DecimalExponent) return sign + text + (exp == 0 ? "" : "e" + exp.ToString(CultureInfo.InvariantCulture));
                return sign + text + suffix;
            }
        }
        return sign + v.ToString(CultureInfo.InvariantCulture);
    }
}
