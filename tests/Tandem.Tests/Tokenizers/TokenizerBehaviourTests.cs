using System.Diagnostics;
using System.Text;
using Tandem.Tokenizers;
using Xunit.Abstractions;

namespace Tandem.Tests.Tokenizers;

public class TokenizerBehaviourTests(ITestOutputHelper output)
{
    static Tokenizer Stories => TokenizerCache.Gguf(TestData.Stories260K);
    static Tokenizer MiniQwen => TokenizerCache.Gguf(TestData.Model("mini-qwen2-f32.gguf"));
    static Tokenizer Qwen => TokenizerCache.Vocab("qwen2");

    [Fact]
    public void QwenTokenizerJsonLoadsQuickly()
    {
        _ = Qwen; // the cached instance: the code path is warm (JIT) before timing a fresh load
        var sw = Stopwatch.StartNew();
        var tok = Tokenizer.FromHuggingFace(TokenizerCache.QwenTokenizerJson);
        sw.Stop();
        output.WriteLine($"Qwen tokenizer.json load: {sw.ElapsedMilliseconds} ms");
        Assert.Equal(151669, tok.VocabSize);
        Assert.Equal(151387, ((BpeTokenizer)tok).MergeCount);
        // measured 0.5-0.8 s in Release on a busy 2-core machine; the bound only catches gross regressions
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"load took {sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void SpecialDefaultsFollowLlamaCpp()
    {
        Assert.Equal(1, Stories.BosId);
        Assert.Equal(2, Stories.EosId);
        Assert.True(Stories.AddBos);
        Assert.False(Stories.AddEos);
        Assert.True(Stories.AddSpacePrefix);
        Assert.True(Stories.IsEndOfGeneration(2));
        Assert.True(Stories.IsControl(1));

        Assert.False(MiniQwen.AddBos);
        Assert.Equal(4098, MiniQwen.EosId);
        Assert.True(MiniQwen.IsEndOfGeneration(4098)); // <|im_end|>
        Assert.True(MiniQwen.IsEndOfGeneration(4096)); // <|endoftext|>
        Assert.False(MiniQwen.IsEndOfGeneration(4097)); // <|im_start|>

        // tokenizer.json + tokenizer_config.json: EOS <|im_end|>, no BOS added
        Assert.Equal(151645, Qwen.EosId);
        Assert.False(Qwen.AddBos);
        foreach (var t in new[] { "<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>" })
            Assert.True(Qwen.IsEndOfGeneration(Qwen.TokenId(t)!.Value), t);

        var gpt2 = TokenizerCache.Vocab("gpt-2");
        Assert.False(gpt2.AddBos);
        Assert.True(gpt2.CleanSpaces);
        Assert.True(gpt2.IsEndOfGeneration(50256));
        var spm = TokenizerCache.Vocab("llama-spm");
        Assert.True(spm.AddBos);
        Assert.Equal([1, 15043], spm.Encode("Hello", addSpecial: true, parseSpecial: false));
        var phi3 = TokenizerCache.Vocab("phi-3");
        Assert.True(phi3.IsEndOfGeneration(phi3.TokenId("<|end|>")!.Value));
        Assert.True(phi3.IsEndOfGeneration(32000)); // eos <|endoftext|>
    }

    [Fact]
    public void SpecialTokensAreParsedOnlyWhenAsked()
    {
        string text = "<|im_start|>user\nhi<|im_end|>\n";
        var parsed = Qwen.Encode(text, false, true);
        Assert.Equal(151644, parsed[0]);
        Assert.Contains(151645, parsed);
        var plain = Qwen.Encode(text, false, false);
        Assert.DoesNotContain(151644, plain);
        Assert.DoesNotContain(151645, plain);
        Assert.Equal(text, Qwen.Decode(plain));
        // control tokens are invisible unless rendered
        Assert.Equal("user\nhi\n", Qwen.Decode(parsed));
        Assert.Equal(text, Qwen.Decode(parsed, renderSpecial: true));
        // the GGUF vocabulary: same partition of special tokens
        Assert.Equal(new[] { 4097, 872, 198, 71, 72, 4098, 198 }, MiniQwen.Encode(text, false, true));
    }

    [Fact]
    public void SentencePieceAddsSpaceAfterSpecialTokens()
    {
        // "<s>" parsed as BOS, then the text gets its own leading space
        var a = Stories.Encode("<s>Once upon a time", false, true);
        var b = Stories.Encode("Once upon a time", true, true);
        Assert.Equal(b, a);
        // not parsed: the text "<s>" is tokenized as characters
        Assert.NotEqual(1, Stories.Encode("<s>Once", false, false)[0]);
        // llama.cpp's detokenize drops the leading space only when the first token is text
        Assert.Equal("Once upon a time", Stories.Decode(Stories.Encode("Once upon a time", false, false)));
        Assert.Equal(" Once upon a time", Stories.Decode(b));
    }

    [Theory]
    [InlineData("stories")]
    [InlineData("qwen")]
    [InlineData("llama-spm")]
    public void StreamingNeverSplitsCharacters(string which)
    {
        var tok = which switch { "stories" => Stories, "qwen" => Qwen, _ => TokenizerCache.Vocab(which) };
        string text = "Emoji 🚀🦙😶‍🌫️ and CJK 你好世界, café ünïcödé 한국어 ✅";
        var ids = tok.Encode(text, false, false);
        // at least one character must have been split across tokens for this test to mean anything
        Assert.Contains(ids, id => tok.TokenBytes(id).Length > 0 && !IsCompleteUtf8(tok.TokenBytes(id)));
        var dec = new StreamingDecoder(tok) { StripLeadingSpace = true };
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            string chunk = dec.Push(id);
            Assert.DoesNotContain('\uFFFD', chunk);
            sb.Append(chunk);
        }
        Assert.Equal("", dec.Flush());
        Assert.Equal(text, sb.ToString());
    }

    static bool IsCompleteUtf8(byte[] b)
    {
        try { new UTF8Encoding(false, true).GetString(b); return true; }
        catch (DecoderFallbackException) { return false; }
    }

    [Fact]
    public void StreamingDecoderHoldsIncompleteBytesAndFlushesInvalidOnes()
    {
        // stories260K has byte tokens <0xXX> at ids 3..258
        int Byte(int b) => 3 + b;
        var dec = new StreamingDecoder(Stories);
        Assert.Equal("", dec.Push(Byte(0xF0)));
        Assert.Equal("", dec.Push(Byte(0x9F)));
        Assert.Equal("", dec.Push(Byte(0x9A)));
        Assert.Equal("🚀", dec.Push(Byte(0x80)));
        Assert.Equal("", dec.Push(Byte(0xE4)));
        Assert.Equal("\uFFFD", dec.Flush());
        // a stray continuation byte can never complete: it comes out at once
        Assert.Equal("\uFFFD", dec.Push(Byte(0x80)));
        // without StripLeadingSpace the pieces are emitted as generated, leading space included
        var gen = new StreamingDecoder(Stories);
        var ids = Stories.Encode("Once upon", false, false);
        Assert.Equal(" Once upon", string.Concat(ids.Select(gen.Push)) + gen.Flush());
    }

    [Fact]
    public void Phi3SpecialTokensSwallowFollowingWhitespace()
    {
        // llama.cpp gives Phi-3's special tokens the rstrip attribute: whitespace after them is dropped before
        // tokenizing, and the text that follows gets SentencePiece's leading space as after any special token
        var phi3 = TokenizerCache.Vocab("phi-3");
        int user = phi3.TokenId("<|user|>")!.Value, end = phi3.TokenId("<|end|>")!.Value, assistant = phi3.TokenId("<|assistant|>")!.Value;
        var ids = phi3.Encode("<|user|>\nHello<|end|>\n<|assistant|>", false, true);
        Assert.Equal([user, phi3.TokenId("▁Hello")!.Value, end, assistant], ids);
    }

    [Theory]
    [InlineData("stories")]
    [InlineData("qwen")]
    [InlineData("deepseek-llm")]
    [InlineData("falcon")]
    public void OddInputDoesNotThrow(string which)
    {
        var tok = which switch { "stories" => Stories, "qwen" => Qwen, _ => TokenizerCache.Vocab(which) };
        foreach (var text in new[] { "\uD800abc", "abc\uDC00", "\0\u0001\u001F\u007F", new string(' ', 5000), new string('a', 3000), "\uFFFF\U0010FFFF", "<|im_start|><|im_start|>" })
        {
            var ids = tok.Encode(text, true, true);
            Assert.All(ids, id => Assert.InRange(id, 0, tok.VocabSize - 1));
            tok.Decode(ids, renderSpecial: true);
        }
        Assert.Empty(tok.Encode("", false, true));
    }

    [Fact]
    public void CleanUpSpacesFollowsLlamaCpp()
    {
        static string Clean(string s) => Encoding.UTF8.GetString(Tokenizer.CleanUpSpaces(Encoding.UTF8.GetBytes(s)));
        Assert.Equal("Hello, world! Really? Yes.", Clean("Hello , world ! Really ? Yes ."));
        Assert.Equal("it's I'm we're they've", Clean("it 's I 'm we 're they 've"));
        Assert.Equal("don 't I 'll he 'd", Clean("don 't I 'll he 'd"));
        Assert.Equal("a'b", Clean("a ' b"));
        Assert.Equal("", Clean(""));
        var gpt2 = TokenizerCache.Vocab("gpt-2");
        Assert.Equal("Hello, world!", gpt2.Decode(gpt2.Encode("Hello , world !", false, false)));
    }

    [Fact]
    public void TokenBytesHideControlTokensUnlessRendered()
    {
        int imEnd = Qwen.TokenId("<|im_end|>")!.Value;
        Assert.Empty(Qwen.TokenBytes(imEnd));
        Assert.Equal("<|im_end|>", Encoding.UTF8.GetString(Qwen.TokenBytes(imEnd, renderSpecial: true)));
        // user-defined added tokens (not special) always render
        int think = Qwen.TokenId("<think>")!.Value;
        Assert.Equal("<think>", Encoding.UTF8.GetString(Qwen.TokenBytes(think)));
        Assert.Equal(" Hello", Encoding.UTF8.GetString(Qwen.TokenBytes(Qwen.TokenId("ĠHello")!.Value)));
        Assert.Equal("ĠHello", Qwen.TokenText(Qwen.TokenId("ĠHello")!.Value));
        Assert.Equal([(byte)'\n'], Stories.TokenBytes(3 + 10));
    }

    [Fact]
    public void EncodesLongTextQuickly()
    {
        string text = File.ReadAllText(Path.Combine(TestData.Golden, "stories260K-sample.txt"));
        Qwen.Encode(text, false, false);
        var sw = Stopwatch.StartNew();
        var q = Qwen.Encode(text + " fresh words: " + Guid.NewGuid(), false, false);
        var s = Stories.Encode(text, true, false);
        sw.Stop();
        output.WriteLine($"{text.Length} chars → {q.Length} Qwen tokens, {s.Length} stories260K tokens in {sw.ElapsedMilliseconds} ms");
        Assert.Equal(text, Qwen.Decode(q)[..text.Length]);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2));
    }
}
