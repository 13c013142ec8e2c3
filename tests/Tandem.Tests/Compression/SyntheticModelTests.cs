using Tandem.Compression;
using Tandem.Engine;
using Tandem.Gguf;
using Tandem.Tokenizers;

namespace Tandem.Tests.Compression;

public class SyntheticModelTests
{
    static string QwenTokenizerJson => Path.Combine(TestData.Tokenizers, "qwen", "tokenizer.json");

    /// <summary>Tiny shapes of each architecture; vocabularies cut to 16384 tokens except where the real one is wanted.</summary>
    static SyntheticPreset Tiny(string arch, int vocab = 16384) => SyntheticPreset.Get(arch switch
    {
        "qwen2" => "qwen2.5-0.5b", "qwen3" => "qwen3-0.6b", _ => "llama-3.2-1b",
    }) with
    {
        EmbeddingLength = 64, LayerCount = 2, HeadCount = 4, HeadCountKv = 2, HeadDim = arch == "qwen3" ? 32 : 0,
        FeedForwardLength = 256, VocabSize = vocab,
    };

    static string Write(SyntheticPreset preset, string type, ulong seed = 7)
    {
        string path = TestData.Temp($"synth-{preset.Architecture}-{type}.gguf");
        SyntheticModel.Write(new SynthOptions
        {
            Preset = preset, Type = QuantizationType.Parse(type), OutputPath = path, TokenizerPath = QwenTokenizerJson, Seed = seed, Threads = 2,
        });
        return path;
    }

    [Theory]
    [InlineData("qwen2", 16384)]
    [InlineData("qwen3", 16384)]
    [InlineData("llama", 16384)]
    [InlineData("qwen2", 151936)] // the real Qwen vocabulary, padded like Qwen's own models
    public void TinyModelLoadsRunsAndTokenizesLikeQwen(string arch, int vocab)
    {
        string path = Write(Tiny(arch, vocab), "Q8_0");
        try
        {
            using var model = Model.Load(path);
            Assert.Equal(arch, model.Config.Architecture);
            Assert.Equal(vocab, model.Config.VocabSize);
            Assert.Equal(64, model.Config.EmbeddingLength);
            Assert.Equal(arch == "qwen3" ? 32 : 16, model.Config.HeadDim);
            Assert.True(model.Weights.TiedEmbeddings);
            Assert.Equal(arch == "llama", model.Weights.RopeFrequencyFactors is not null);

            // "Hello world" → Qwen's ids (9707 "Hello", 1879 " world"), the same as the tokenizer.json itself gives
            var reference = Tokenizer.FromHuggingFace(QwenTokenizerJson);
            string text = "Hello world, 123 tokens!";
            Assert.Equal([9707, 1879], model.Tokenizer.Encode("Hello world", addSpecial: false, parseSpecial: false));
            Assert.Equal(reference.Encode(text, false, false), model.Tokenizer.Encode(text, false, false));
            int imEnd = model.Tokenizer.TokenId("<|im_end|>")!.Value;
            Assert.True(model.Tokenizer.IsEndOfGeneration(imEnd));
            Assert.Equal([model.Tokenizer.TokenId("<|im_start|>")!.Value], model.Tokenizer.Encode("<|im_start|>", false, parseSpecial: true));
            if (vocab == 151936) Assert.Equal(151645, imEnd); // ids kept when the whole vocabulary fits
            else Assert.Equal(vocab - 26 + 2, imEnd);          // else the 26 added tokens follow the cut vocabulary

            using var session = model.CreateSession(new SessionOptions(64, 2));
            var logits = session.Evaluate([9707, 1879, 11, 220]).ToArray();
            Assert.Equal(vocab, logits.Length);
            Assert.All(logits, x => Assert.True(float.IsFinite(x)));
            double rms = Math.Sqrt(logits.Average(x => (double)x * x));
            Assert.InRange(rms, 0.05, 20); // "sane": neither vanishing nor exploding
            Assert.True(logits.Max() - logits.Min() > 0.1);
        }
        finally { File.Delete(path); }
    }

    /// <summary>Synthesizing a type equals synthesizing F32 and quantizing it; the seed decides the weights.</summary>
    [Fact]
    public void SynthesizedTypeEqualsQuantizedF32AndSeedIsDeterministic()
    {
        var preset = Tiny("qwen2") with { EmbeddingLength = 256, FeedForwardLength = 512, VocabSize = 4096 };
        string f32 = Write(preset, "F32"), direct = Write(preset, "Q4_K_M"), again = Write(preset, "Q4_K_M"), other = Write(preset, "Q4_K_M", seed: 8);
        string quantized = TestData.Temp("synth-quantized.gguf");
        try
        {
            ModelQuantizer.Quantize(new QuantizeOptions { InputPath = f32, OutputPath = quantized, Type = QuantizationType.Parse("Q4_K_M"), Threads = 2 });
            Assert.True(File.ReadAllBytes(direct).AsSpan().SequenceEqual(File.ReadAllBytes(quantized)));
            Assert.True(File.ReadAllBytes(direct).AsSpan().SequenceEqual(File.ReadAllBytes(again)));
            using var a = GgufFile.Open(direct);
            using var b = GgufFile.Open(other);
            var t = a.GetTensor("blk.0.attn_q.weight");
            Assert.Equal(GgmlType.Q4_K, t.Type);
            Assert.False(a.TensorBytes(t).SequenceEqual(b.TensorBytes(b.GetTensor(t.Name))));
            Assert.Equal(15, a.GetInt("general.file_type"));

            // weights ~ N(0, 1/sqrt(fan_in)), norms ≈ 1, biases small
            using var f = GgufFile.Open(f32);
            unsafe
            {
                var q = f.GetTensor("blk.1.attn_q.weight");
                var w = new ReadOnlySpan<float>(f.TensorPointer(q), (int)q.ElementCount).ToArray();
                double mean = w.Average(), sd = Math.Sqrt(w.Average(x => (x - mean) * (x - mean)));
                Assert.InRange(mean, -0.002, 0.002);
                Assert.InRange(sd, 0.95 / 16, 1.05 / 16);
                var norm = f.GetTensor("blk.1.attn_norm.weight");
                Assert.All(new ReadOnlySpan<float>(f.TensorPointer(norm), 256).ToArray(), x => Assert.InRange(x, 0.9f, 1.1f));
                var bias = f.GetTensor("blk.1.attn_k.bias");
                Assert.All(new ReadOnlySpan<float>(f.TensorPointer(bias), (int)bias.ElementCount).ToArray(), x => Assert.InRange(x, -0.15f, 0.15f));
            }
        }
        finally
        {
            foreach (var p in new[] { f32, direct, again, other, quantized }) File.Delete(p);
        }
    }

    [Fact]
    public void Qwen25HalfBillionPresetHasTheRealShapes()
    {
        var preset = SyntheticPreset.Get("qwen2.5-0.5b");
        var plan = SyntheticModel.Plan(preset, QuantizationType.Parse("Q4_K_M"));
        Assert.Equal(290, plan.Count); // as in Qwen's own GGUF
        Assert.Equal(494_032_768, plan.Sum(t => t.Elements)); // Qwen2.5-0.5B's parameter count
        string Shape(string name) => string.Join("x", plan.Single(t => t.Name == name).Dimensions);
        GgmlType TypeOf(string name) => plan.Single(t => t.Name == name).To;
        Assert.Equal("896x151936", Shape("token_embd.weight"));
        Assert.Equal("896x896", Shape("blk.0.attn_q.weight"));
        Assert.Equal("896x128", Shape("blk.23.attn_k.weight"));
        Assert.Equal("128", Shape("blk.23.attn_v.bias"));
        Assert.Equal("4864x896", Shape("blk.7.ffn_down.weight"));
        Assert.DoesNotContain(plan, t => t.Name == "output.weight"); // tied
        Assert.Equal(GgmlType.Q8_0, TypeOf("token_embd.weight"));
        Assert.Equal(GgmlType.Q5_0, TypeOf("blk.3.ffn_gate.weight")); // 896 is not a multiple of 256
        Assert.Equal(GgmlType.F32, TypeOf("blk.3.attn_norm.weight"));

        var qwen3 = SyntheticModel.Plan(SyntheticPreset.Get("qwen3-0.6b"), QuantizationType.Parse("Q8_0"));
        Assert.Equal("1024x2048", string.Join("x", qwen3.Single(t => t.Name == "blk.0.attn_q.weight").Dimensions)); // 16 heads × 128
        Assert.Equal("128", string.Join("x", qwen3.Single(t => t.Name == "blk.0.attn_k_norm.weight").Dimensions));
        Assert.Equal(596_049_920, qwen3.Sum(t => t.Elements)); // Qwen3-0.6B (tied)
        var llama = SyntheticModel.Plan(SyntheticPreset.Get("llama-3.2-1b"), QuantizationType.Parse("Q8_0"));
        Assert.Equal(1_235_814_432, llama.Sum(t => t.Elements)); // Llama-3.2-1B's 1,235,814,400 weights + 32 rope factors
        Assert.Equal("2048x512", string.Join("x", llama.Single(t => t.Name == "blk.0.attn_v.weight").Dimensions));
    }

    [Fact]
    public void Llama31RopeFactorsMatchTheConverters()
    {
        var f = SyntheticPreset.Llama3RopeFactors(new Llama3RopeScaling(32, 1, 4, 8192), headDim: 64, freqBase: 500000);
        Assert.Equal(32, f.Length);
        // high frequencies (wavelength < 8192/4) unchanged, low ones (wavelength > 8192) divided by 32, smooth between
        double Wavelength(int i) => 2 * Math.PI * Math.Pow(500000, 2.0 * i / 64);
        for (int i = 0; i < f.Length; i++)
        {
            if (Wavelength(i) < 2048) Assert.Equal(1f, f[i]);
            else if (Wavelength(i) > 8192) Assert.Equal(32f, f[i]);
            else Assert.InRange(f[i], 1f, 32f);
            if (i > 0) Assert.True(f[i] >= f[i - 1]);
        }
        Assert.Equal(1f, f[0]);
        Assert.Equal(32f, f[^1]);
        Assert.Contains(f, x => x > 1 && x < 32);
        // i = 14: wavelength 2π·500000^(28/64) ≈ 1956 < 2048 → 1; i = 16: ≈ 4443 → 1/((1-s)/32 + s), s = (8192/λ - 1)/3
        Assert.Equal(1f, f[14]);
        double s16 = (8192 / Wavelength(16) - 1) / 3;
        Assert.Equal(1 / ((1 - s16) / 32 + s16), f[16], 1e-4);
    }
}
