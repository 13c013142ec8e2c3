using Tandem.Tokenizers;

namespace Tandem.Tests.Tokenizers;

public class PreTokenizerTokenizerTests
{
    static readonly string[] Samples =
    [
        "Hello world! How are you today?",
        "  multiple   spaces\tand tabs\n\nnewlines 12345 3.14159\r\n\r\n  \n",
        "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
        "émojis 🚀🔥 and ünïcödé Ω≈ç√ 😶‍🌫️ नमस्ते कैसे हो ก้า",
        "你好，世界。请打开客厅的灯。 こんにちは カタカナ 한국어",
        "def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n",
        "$100 + 20% = <tag attr=\"x\"> ^~|` \u00A0nbsp\u2003em\u3000ideo 𐐀𐐁 Deseret 𞤀 Adlam",
        "CamelCaseWords and ALLCAPS and mixedUPPERlower, 1,234,567.89",
        "",
        " ",
        "\n",
    ];

    static IEnumerable<string> AllInputs() => Samples.Concat(TokenizerCache.Cases("gpt-2").Select(c => c.Text));

    public static TheoryData<string> PreTypes => new()
    {
        "default", "llama3", "llama-bpe", "dbrx", "smaug-bpe", "chatglm-bpe", "deepseek-llm", "deepseek-coder", "deepseek-v3",
        "falcon", "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "gpt-2", "mpt", "olmo", "jais",
        "phi-2", "trillion", "qwen2", "stablelm2", "qwen35", "poro-chat", "bloom", "gpt3-finnish", "viking", "tekken", "gpt-4o",
        "llama4", "seed-coder", "bailingmoe", "minicpm5", "chameleon", "grok-2", "hunyuan",
    };

    [Theory]
    [MemberData(nameof(PreTypes))]
    public void EveryPreTokenizerCoversItsInput(string pre)
    {
        var config = PreTokenizer.ForGguf(pre);
        var p = new PreTokenizer(config.Patterns);
        foreach (var text in AllInputs())
        {
            var words = p.SplitToStrings(text);
            Assert.Equal(text, string.Concat(words));
            Assert.All(words, w => Assert.NotEmpty(w));
        }
    }

    [Fact]
    public void UnknownPreTokenizerIsRefused() => Assert.Throws<NotSupportedException>(() => PreTokenizer.ForGguf("no-such-pre"));

    [Theory]
    [InlineData(PreTokenizer.Gpt2PatternHf)]
    [InlineData(PreTokenizer.Llama3Pattern)]
    [InlineData(PreTokenizer.Qwen2Pattern)]
    [InlineData(PreTokenizer.Qwen35Pattern)]
    [InlineData("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")]
    public void HandWrittenSplittersAgreeWithTheRegex(string pattern)
    {
        var fast = new PreTokenizer([pattern]);
        var regex = new PreTokenizer([pattern], forceRegex: true);
        foreach (var text in AllInputs())
            Assert.Equal(regex.SplitToStrings(text), fast.SplitToStrings(text));
    }

    [Fact]
    public void Qwen2SplitsAsExpected()
    {
        var p = new PreTokenizer([PreTokenizer.Qwen2Pattern]);
        Assert.Equal(["Hello", " world", "!", " How", "'s", " it", "  ", " going", "?\n\n", "1", "2", "3"],
            p.SplitToStrings("Hello world! How's it   going?\n\n123"));
        var l3 = new PreTokenizer([PreTokenizer.Llama3Pattern]);
        Assert.Equal(["123", "456", "7", " x"], l3.SplitToStrings("1234567 x"));
    }
}
