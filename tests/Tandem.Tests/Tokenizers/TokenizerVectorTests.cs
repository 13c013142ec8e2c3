using System.Text;
using Tandem.Tokenizers;
using Xunit.Abstractions;

namespace Tandem.Tests.Tokenizers;

/// <summary>llama.cpp's tokenizer test set: every case must encode to exactly the expected ids.</summary>
public class TokenizerVectorTests(ITestOutputHelper output)
{
    public static TheoryData<string> Vocabularies => new()
    {
        "deepseek-coder", "deepseek-llm", "falcon", "gpt-2", "llama-spm", "mpt", "phi-3", "qwen2", "refact", "starcoder",
    };

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void EncodesEveryCaseExactly(string vocab)
    {
        var tok = TokenizerCache.Vocab(vocab);
        var cases = TokenizerCache.Cases(vocab);
        int pass = 0;
        var failures = new StringBuilder();
        foreach (var (text, expected) in cases)
        {
            var ids = tok.Encode(text, addSpecial: false, parseSpecial: false);
            if (ids.SequenceEqual(expected)) pass++;
            else failures.AppendLine($"'{text}'\n  expected {string.Join(' ', expected)}\n  got      {string.Join(' ', ids)}");
        }
        output.WriteLine($"{vocab}: {pass}/{cases.Count}");
        Assert.True(pass == cases.Count, $"{vocab}: {pass}/{cases.Count} pass\n{failures}");
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void DecodeReproducesTheInput(string vocab)
    {
        var tok = TokenizerCache.Vocab(vocab);
        foreach (var (text, expected) in TokenizerCache.Cases(vocab))
        {
            // the pieces themselves are lossless (leading space of SentencePiece aside)
            var raw = tok.DecodeBytes(expected, renderSpecial: false, removeLeadingSpace: tok.AddSpacePrefix, cleanSpaces: false);
            Assert.Equal(text, Encoding.UTF8.GetString(raw));
            // llama_detokenize additionally cleans spaces before punctuation for some families
            string wanted = tok.CleanSpaces ? Encoding.UTF8.GetString(Tokenizer.CleanUpSpaces(Encoding.UTF8.GetBytes(text))) : text;
            Assert.Equal(wanted, tok.Decode(expected));
        }
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void StreamingDecodeEqualsFullDecode(string vocab)
    {
        var tok = TokenizerCache.Vocab(vocab);
        foreach (var (text, expected) in TokenizerCache.Cases(vocab))
        {
            var dec = new StreamingDecoder(tok) { StripLeadingSpace = true };
            var sb = new StringBuilder();
            foreach (var id in expected)
            {
                string chunk = dec.Push(id);
                Assert.DoesNotContain('\uFFFD', chunk);
                sb.Append(chunk);
            }
            sb.Append(dec.Flush());
            Assert.Equal(text, sb.ToString());
        }
    }

    [Theory]
    [InlineData("baichuan")]
    [InlineData("gpt-neox")]
    public void VocabulariesWithoutVectorsLoadAndRoundTrip(string vocab)
    {
        var tok = TokenizerCache.Vocab(vocab);
        foreach (var text in new[] { "Hello world", " Hello, world!", "  multiple   spaces\tand tabs\n\nnewlines 12345", "émojis 🚀🔥 and ünïcödé Ω≈ç√", "你好，世界" })
        {
            var ids = tok.Encode(text, false, false);
            Assert.NotEmpty(ids);
            var raw = tok.DecodeBytes(ids, false, tok.AddSpacePrefix, false);
            Assert.Equal(text, Encoding.UTF8.GetString(raw));
        }
    }
}
