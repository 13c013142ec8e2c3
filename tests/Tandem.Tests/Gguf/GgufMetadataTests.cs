using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

public class GgufMetadataTests
{
    static readonly KeyValuePair<string, GgufValue>[] Original =
    [
        new("general.architecture", GgufValue.Of("llama")),
        new("general.file_type", GgufValue.Of(0u)),
        new("llama.context_length", GgufValue.Of(128u)),
    ];

    [Fact]
    public void WithReplacesInPlaceAndKeepsOrder()
    {
        var edited = Original.With("general.file_type", GgufValue.Of(7u));
        Assert.Equal(Original.Select(kv => kv.Key), edited.Select(kv => kv.Key));
        Assert.Equal(7u, edited[1].Value.Value);
        Assert.Equal(0u, Original[1].Value.Value); // the input is untouched
    }

    [Fact]
    public void WithAppendsANewKey()
    {
        var edited = Original.With("general.quantization_version", GgufValue.Of(2u));
        Assert.Equal(4, edited.Count);
        Assert.Equal("general.quantization_version", edited[3].Key);
    }

    [Fact]
    public void WithoutRemovesOnlyTheNamedKeys()
    {
        var edited = Original.Without("general.file_type", "not.there");
        Assert.Equal(["general.architecture", "llama.context_length"], edited.Select(kv => kv.Key));
    }
}
