using System.Text;
using Berth.Cluster.Api;

namespace Berth.Cluster.Tests.Api;

/// <summary>The cheap repeated-key check every JSON body gets, against the full scan that names them.</summary>
public class FieldValidationTests
{
    static bool Has(string json) => FieldValidation.HasDuplicateFields(Encoding.UTF8.GetBytes(json));

    static int Named(string json) => FieldValidation.DuplicateFields(Encoding.UTF8.GetBytes(json), new Dictionary<string, int>()).Count;

    [Theory]
    [InlineData("""{"a":1,"a":2}""")]
    [InlineData("""{"metadata":{"name":"x","labels":{},"name":"y"}}""")]
    [InlineData("""{"spec":{"containers":[{"name":"c","image":"i"},{"name":"d","name":"e"}]}}""")]
    [InlineData("""{"a":{"b":1},"c":[1,{"x":1}],"a":3}""")] // the repeat follows a nested object and an array
    [InlineData("""{"a\u0062":1,"ab":2}""")]                 // escaped and plain spellings of one key
    [InlineData("""{"ab":1,"a\u0062":2}""")]
    [InlineData("""{"\u00e9":1,"é":2}""")]
    public void Finds_repeated_keys(string json)
    {
        Assert.True(Has(json));
        Assert.Equal(1, Named(json));
    }

    [Theory]
    [InlineData("""{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n"},"spec":{"containers":[{"name":"c","image":"i","resources":{"requests":{"cpu":"100m","memory":"500Mi"}}}]}}""")]
    [InlineData("""{"a":{"name":1},"b":{"name":2},"name":3}""")]       // the same key in sibling and nested objects
    [InlineData("""[{"a":1},{"a":1}]""")]
    [InlineData("""{"ab":1,"a\u0063":2,"a":3,"abc":4}""")]
    [InlineData("""{"a":1,"b":""")]                                    // malformed: the parse reports it
    [InlineData("")]
    public void Accepts_bodies_without_repeats(string json)
    {
        Assert.False(Has(json));
    }
}
