using Tandem.Compression;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Tests.Compression;

public class ModelQuantizerTests
{
    public static TheoryData<string, string> LlamaCppFiles => new()
    {
        { "mini-qwen2-f32.gguf", "q8_0" }, { "mini-qwen2-f32.gguf", "q4_0" }, { "mini-qwen2-f32.gguf", "q4_1" },
        { "mini-qwen2-f32.gguf", "q5_0" }, { "mini-qwen2-f32.gguf", "q2_k" }, { "mini-qwen2-f32.gguf", "q3_k_m" },
        { "mini-qwen2-f32.gguf", "q4_k_m" }, { "mini-qwen2-f32.gguf", "q5_k_m" }, { "mini-qwen2-f32.gguf", "q6_k" },
        { "mini-qwen2-f32.gguf", "f16" }, { "mini-qwen2-f32.gguf", "bf16" },
        { "mini-qwen3-f32.gguf", "q8_0" }, { "mini-qwen3-f32.gguf", "q4_k_m" },
    };

    /// <summary>
    /// llama-quantize made mini-*-TYPE.gguf from the F32 file: ours must have the same tensors in the same order with the
    /// same types and bytes, the same metadata, and in the end the very same file.
    /// </summary>
    [Theory]
    [MemberData(nameof(LlamaCppFiles))]
    public void ReproducesLlamaQuantizeFile(string f32File, string type)
    {
        string expectedPath = TestData.Model(f32File.Replace("f32", type));
        string output = TestData.Temp($"{type}.gguf");
        try
        {
            var result = ModelQuantizer.Quantize(new QuantizeOptions
            {
                InputPath = TestData.Model(f32File), OutputPath = output, Type = QuantizationType.Parse(type), Threads = 2,
            });
            using var mine = GgufFile.Open(output);
            using var theirs = GgufFile.Open(expectedPath);
            Assert.Equal(theirs.Tensors.Select(t => $"{t.Name} {t.Type} {t.ShapeText}"), mine.Tensors.Select(t => $"{t.Name} {t.Type} {t.ShapeText}"));
            foreach (var t in theirs.Tensors)
                Assert.True(theirs.TensorBytes(t).SequenceEqual(mine.TensorBytes(mine.GetTensor(t.Name))), $"tensor data of {t.Name} ({t.Type}) differs");
            Assert.Equal(theirs.MetadataList.Select(kv => kv.Key), mine.MetadataList.Select(kv => kv.Key));
            Assert.Equal(theirs.GetInt("general.file_type"), mine.GetInt("general.file_type"));
            Assert.Equal(2, mine.GetInt("general.quantization_version"));
            Assert.True(File.ReadAllBytes(expectedPath).AsSpan().SequenceEqual(File.ReadAllBytes(output)), "files differ outside the tensor data");
            Assert.Equal(new FileInfo(expectedPath).Length, result.OutputFileBytes);
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void FileTypesAreLlamaCppNumbers()
    {
        var expected = new Dictionary<string, uint>
        {
            ["F32"] = 0, ["F16"] = 1, ["Q4_0"] = 2, ["Q4_1"] = 3, ["Q8_0"] = 7, ["Q5_0"] = 8, ["Q5_1"] = 9, ["Q2_K"] = 10,
            ["Q3_K_S"] = 11, ["Q3_K_M"] = 12, ["Q3_K_L"] = 13, ["Q4_K_S"] = 14, ["Q4_K_M"] = 15, ["Q5_K_S"] = 16, ["Q5_K_M"] = 17,
            ["Q6_K"] = 18, ["BF16"] = 32, ["q4_k"] = 15, ["Q3_K"] = 12, ["Q5_K"] = 17,
        };
        foreach (var (name, ftype) in expected) Assert.Equal(ftype, (uint)QuantizationType.Parse(name).FileType);
        var ex = Assert.Throws<ArgumentException>(() => QuantizationType.Parse("Q7_X"));
        Assert.Contains("Q4_K_M", ex.Message);
    }

    static TensorShape Matrix(string name, long columns, long rows) => new(name, [columns, rows], GgmlType.F32);

    /// <summary>A Qwen2.5-0.5B-like shape (n_embd 896 is not a multiple of 256): llama.cpp's fallbacks and layer rules.</summary>
    [Fact]
    public void Qwen05BShapesFallBackLikeLlamaCpp()
    {
        const int layers = 24;
        var tensors = new List<TensorShape> { Matrix("token_embd.weight", 896, 151936), new("output_norm.weight", [896], GgmlType.F32) };
        for (int i = 0; i < layers; i++)
        {
            tensors.Add(Matrix($"blk.{i}.attn_v.weight", 896, 128));
            tensors.Add(Matrix($"blk.{i}.attn_q.weight", 896, 896));
            tensors.Add(Matrix($"blk.{i}.ffn_down.weight", 4864, 896));
            tensors.Add(new($"blk.{i}.attn_v.bias", [128], GgmlType.F32));
        }
        var ordered = TensorTypePolicy.ProcessingOrder(tensors, t => t.Name);
        Assert.Equal(["output_norm.weight", "token_embd.weight", "blk.0.attn_q.weight"], ordered.Take(3).Select(t => t.Name));
        Assert.Equal("blk.1.attn_q.weight", ordered[6].Name); // blk.1 after blk.0 (numeric, not textual: blk.10 comes later)
        var facts = new ModelFacts { Architecture = "qwen2", LayerCount = layers, HeadCount = 14, HeadCountKv = 2 };
        var types = TensorTypePolicy.Choose(facts, QuantizationType.Parse("Q4_K_M"), ordered, pure: false, out int fallbacks);
        GgmlType TypeOf(string name) => types[ordered.FindIndex(t => t.Name == name)];
        Assert.Equal(GgmlType.Q8_0, TypeOf("token_embd.weight"));    // tied output: Q6_K wanted, 896 % 256 != 0 -> Q8_0
        Assert.Equal(GgmlType.F32, TypeOf("output_norm.weight"));
        Assert.Equal(GgmlType.Q5_0, TypeOf("blk.5.attn_q.weight"));   // Q4_K falls back to Q5_0
        Assert.Equal(GgmlType.Q8_0, TypeOf("blk.0.attn_v.weight"));   // more bits (Q6_K) -> Q8_0
        Assert.Equal(GgmlType.Q5_0, TypeOf("blk.3.attn_v.weight"));   // 3 < 24/8 is false, (3-3)%3 != 2 -> Q4_K -> Q5_0
        Assert.Equal(GgmlType.Q8_0, TypeOf("blk.5.attn_v.weight"));   // (5-3)%3 == 2 -> Q6_K -> Q8_0
        Assert.Equal(GgmlType.Q6_K, TypeOf("blk.23.ffn_down.weight")); // 4864 % 256 == 0: last eighth gets Q6_K
        Assert.Equal(GgmlType.Q4_K, TypeOf("blk.4.ffn_down.weight"));
        Assert.Equal(GgmlType.F32, TypeOf("blk.4.attn_v.bias"));
        Assert.Equal(24 * 2, fallbacks); // attn_q and attn_v of each layer (token_embd goes to Q8_0 directly, not by fallback)

        var q2 = TensorTypePolicy.Choose(facts, QuantizationType.Parse("Q2_K"), ordered, pure: false, out _);
        Assert.Equal(GgmlType.Q5_0, q2[ordered.FindIndex(t => t.Name == "blk.0.attn_v.weight")]); // GQA 7 >= 4 -> Q4_K -> Q5_0
        var pure = TensorTypePolicy.Choose(facts, QuantizationType.Parse("Q6_K"), ordered, pure: true, out _);
        Assert.Equal(GgmlType.Q8_0, pure[ordered.FindIndex(t => t.Name == "blk.0.attn_q.weight")]);
        Assert.Equal(GgmlType.Q6_K, pure[ordered.FindIndex(t => t.Name == "blk.0.ffn_down.weight")]);
    }

    [Fact]
    public void F16InputQuantizesLikeTheF32ItHolds()
    {
        // the F16 file's weights widened to F32 are exact, so quantizing it must match quantizing those F32 values
        string output = TestData.Temp("from-f16.gguf");
        try
        {
            ModelQuantizer.Quantize(new QuantizeOptions { InputPath = TestData.Model("mini-qwen2-f16.gguf"), OutputPath = output, Type = QuantizationType.Parse("Q8_0"), Threads = 3 });
            using var source = GgufFile.Open(TestData.Model("mini-qwen2-f16.gguf"));
            using var result = GgufFile.Open(output);
            var t = result.GetTensor("blk.1.ffn_down.weight");
            Assert.Equal(GgmlType.Q8_0, t.Type);
            var s = source.GetTensor(t.Name);
            Assert.Equal(GgmlType.F16, s.Type);
            var widened = new float[s.ElementCount];
            unsafe
            {
                fixed (float* dst = widened) Dequantize.Row(GgmlType.F16, source.TensorPointer(s), dst, widened.Length);
            }
            var expected = new byte[t.ByteSize];
            Quantizer.Quantize(GgmlType.Q8_0, widened, expected);
            Assert.True(expected.AsSpan().SequenceEqual(result.TensorBytes(t)));
            Assert.Equal(7, result.GetInt("general.file_type"));
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void QuantizedInputIsRefusedWithoutWritingAnything()
    {
        string output = TestData.Temp("requant.gguf");
        var ex = Assert.Throws<ArgumentException>(() => ModelQuantizer.Quantize(new QuantizeOptions
        {
            InputPath = TestData.Model("mini-qwen2-q8_0.gguf"), OutputPath = output, Type = QuantizationType.Parse("Q4_0"),
        }));
        Assert.Contains("Q8_0", ex.Message);
        Assert.Contains("F32, F16 or BF16", ex.Message);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, $".{Path.GetFileName(output)}*"));
    }

    [Fact]
    public void MissingOutputDirectoryIsAClearError()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tandem-tests", Guid.NewGuid().ToString("N"));
        var ex = Assert.Throws<DirectoryNotFoundException>(() => ModelQuantizer.Quantize(new QuantizeOptions
        {
            InputPath = TestData.Model("mini-qwen2-f32.gguf"), OutputPath = Path.Combine(dir, "out.gguf"), Type = QuantizationType.Parse("Q8_0"),
        }));
        Assert.Contains(dir, ex.Message);
        Assert.False(Directory.Exists(dir));
    }
}
