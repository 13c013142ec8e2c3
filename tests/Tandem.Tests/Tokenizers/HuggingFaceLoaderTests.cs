using System.Text.Json;
using Tandem.Tokenizers;

namespace Tandem.Tests.Tokenizers;

public class HuggingFaceLoaderTokenizerTests
{
    /// <summary>A small byte-level BPE tokenizer.json: byte b has id b, five merges, one special and one plain added token.</summary>
    static string WriteTokenizerJson(bool arrayMerges, bool addPrefixSpace = false, string? config = null)
    {
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++) vocab[Unicode.ByteToChar[b].ToString()] = b;
        string[][] merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "w"]];
        int next = 256;
        foreach (var m in merges) vocab[m[0] + m[1]] = next++;
        var json = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new object[]
            {
                new { id = 261, content = "<|end|>", special = true, lstrip = false, rstrip = false, normalized = false, single_word = false },
                new { id = 262, content = "<tool>", special = false, lstrip = false, rstrip = false, normalized = false, single_word = false },
            },
            ["normalizer"] = null,
            ["pre_tokenizer"] = new { type = "ByteLevel", add_prefix_space = addPrefixSpace, trim_offsets = true, use_regex = true },
            ["decoder"] = new { type = "ByteLevel", add_prefix_space = true, trim_offsets = true, use_regex = true },
            ["model"] = new Dictionary<string, object>
            {
                ["type"] = "BPE",
                ["vocab"] = vocab,
                ["merges"] = arrayMerges ? merges : merges.Select(m => m[0] + " " + m[1]).ToArray(),
            },
        };
        string dir = TestData.Temp("hf");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        if (config is not null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoadsBothMergeForms(bool arrayMerges)
    {
        var tok = Tokenizer.FromHuggingFace(WriteTokenizerJson(arrayMerges));
        Assert.Equal(263, tok.VocabSize);
        var ids = tok.Encode("hello world<|end|>", addSpecial: false, parseSpecial: true);
        Assert.Equal([259, 260, 'o', 'r', 'l', 'd', 261], ids);
        Assert.Equal("hello world<|end|>", tok.Decode(ids, renderSpecial: true));
        Assert.Equal("hello world", tok.Decode(ids));
        Assert.True(tok.IsEndOfGeneration(261));
        Assert.True(tok.IsControl(261));
        // special token text is plain text unless parsed; user-defined added tokens are always split out
        Assert.DoesNotContain(261, tok.Encode("hello<|end|>", false, false));
        Assert.Equal(['a', 262, 'b'], tok.Encode("a<tool>b", false, false));
        Assert.False(tok.AddBos);
        Assert.Null(tok.BosId);
    }

    [Fact]
    public void ReadsTokenizerConfigAndPrefixSpace()
    {
        string config = """{ "bos_token": { "content": "<tool>" }, "eos_token": "<|end|>", "add_bos_token": true, "clean_up_tokenization_spaces": true }""";
        var tok = Tokenizer.FromHuggingFace(WriteTokenizerJson(false, addPrefixSpace: true, config));
        Assert.Equal(262, tok.BosId);
        Assert.Equal(261, tok.EosId);
        Assert.True(tok.AddBos);
        Assert.True(tok.CleanSpaces);
        // add_prefix_space: "world" is tokenized as " world"
        Assert.Equal([262, 260, 'o', 'r', 'l', 'd'], tok.Encode("world", addSpecial: true, parseSpecial: false));
    }
}

/// <summary>The abstract surface stays implementable (e.g. by test doubles elsewhere); Decode and streaming work on it.</summary>
public class CustomTokenizerSubclassTests
{
    sealed class CharTokenizer : Tokenizer
    {
        public CharTokenizer() { EosId = 0; }
        public override int VocabSize => 128;
        public override int[] Encode(string text, bool addSpecial, bool parseSpecial) => text.Select(c => (int)c).ToArray();
        public override byte[] TokenBytes(int id, bool renderSpecial = false) => id == 0 && !renderSpecial ? [] : [(byte)id];
        public override string TokenText(int id) => ((char)id).ToString();
        public override bool IsEndOfGeneration(int id) => id == 0;
        public override bool IsControl(int id) => id == 0;
    }

    [Fact]
    public void DecodeAndStreamingWorkOnAnyTokenizer()
    {
        var tok = new CharTokenizer();
        var ids = tok.Encode("hi there", false, false);
        Assert.Equal("hi there", tok.Decode(ids));
        var dec = new StreamingDecoder(tok);
        Assert.Equal("hi there", string.Concat(ids.Select(dec.Push)) + dec.Flush());
        Assert.Equal((int)'t', tok.TokenId("t"));
    }
}
