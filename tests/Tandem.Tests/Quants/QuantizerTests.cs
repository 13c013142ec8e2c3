using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Tests.Quants;

public unsafe class QuantizerTests
{
    public static TheoryData<string, string> Files => new()
    {
        { "mini-qwen2-f16.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-bf16.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q8_0.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q4_0.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q4_1.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q5_0.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q2_k.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q3_k_m.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q4_k_m.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q5_k_m.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q6_k.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen3-q8_0.gguf", "mini-qwen3-f32.gguf" },
        { "mini-qwen3-q4_k_m.gguf", "mini-qwen3-f32.gguf" },
    };

    /// <summary>Quantizing the F32 model's tensors reproduces llama.cpp's quantized tensor data byte for byte.</summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void ReproducesLlamaCppTensorBytes(string quantFile, string f32File)
    {
        using var q = GgufFile.Open(TestData.Model(quantFile));
        using var f = GgufFile.Open(TestData.Model(f32File));
        var mismatches = new List<string>();
        int compared = 0;
        foreach (var t in q.Tensors.Where(t => t.Type != GgmlType.F32))
        {
            Assert.True(Quantizer.Supports(t.Type), $"{t.Name}: {t.Type}");
            var src = f.GetTensor(t.Name);
            var x = new ReadOnlySpan<float>(f.TensorPointer(src), checked((int)src.ElementCount));
            var mine = new byte[t.ByteSize];
            Quantizer.Quantize(t.Type, x, mine);
            var theirs = q.TensorBytes(t);
            compared++;
            if (!theirs.SequenceEqual(mine))
            {
                int first = 0;
                while (first < mine.Length && mine[first] == theirs[first]) first++;
                int diff = 0;
                for (int i = 0; i < mine.Length; i++) if (mine[i] != theirs[i]) diff++;
                mismatches.Add($"{t.Name} {t.Type}: {diff}/{mine.Length} bytes differ, first at {first} (block {first / GgmlTypeInfo.Of(t.Type).TypeSize})");
            }
        }
        Assert.True(compared > 0);
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }
}

public unsafe class QuantizerRoundTripTests
{
    public static TheoryData<string, double> Types => new()
    {
        // bound on RMS(dequantize(quantize(w)) - w) / RMS(w) over the F32 model's 2-D weights
        { "F16", 0.0003 }, { "BF16", 0.0022 }, { "Q8_0", 0.0062 }, { "Q4_0", 0.095 }, { "Q4_1", 0.087 },
        { "Q5_0", 0.048 }, { "Q5_1", 0.042 }, { "Q2_K", 0.33 }, { "Q3_K", 0.167 }, { "Q4_K", 0.079 },
        { "Q5_K", 0.040 }, { "Q6_K", 0.020 },
    };

    /// <summary>Covers types without a llama.cpp test file (Q5_1) and checks quantize/dequantize consistency for all.</summary>
    [Theory]
    [MemberData(nameof(Types))]
    public void QuantizeThenDequantizeIsClose(string typeName, double bound)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        using var f = GgufFile.Open(TestData.Model("mini-qwen2-f32.gguf"));
        var info = GgmlTypeInfo.Of(type);
        foreach (var t in f.Tensors.Where(t => t.Dimensions.Length == 2 && t.Columns % info.BlockSize == 0).Take(4))
        {
            var x = new ReadOnlySpan<float>(f.TensorPointer(t), checked((int)t.ElementCount));
            var q = new byte[info.RowBytes(t.Columns) * t.Rows];
            Quantizer.Quantize(type, x, q);
            var back = new float[x.Length];
            fixed (byte* pq = q) fixed (float* pb = back) Dequantize.Row(type, pq, pb, x.Length);
            double rel = QuantTestUtil.RmsDiff(x, back) / QuantTestUtil.Rms(x);
            Assert.True(rel < bound, $"{t.Name} {typeName}: {rel:P3} >= {bound:P3}");
        }
    }

    [Fact]
    public void ParallelRowQuantizationEqualsSerial()
    {
        using var f = GgufFile.Open(TestData.Model("mini-qwen2-f32.gguf"));
        var t = f.Tensors.First(t => t.Dimensions.Length == 2 && t.Columns % 256 == 0);
        var x = new ReadOnlySpan<float>(f.TensorPointer(t), checked((int)t.ElementCount));
        foreach (var type in new[] { GgmlType.Q4_K, GgmlType.Q8_0 })
        {
            var a = new byte[GgmlTypeInfo.Of(type).RowBytes(t.Columns) * t.Rows];
            var b = new byte[a.Length];
            Quantizer.Quantize(type, x, a);
            Quantizer.QuantizeRows(type, x, t.Rows, t.Columns, b);
            Assert.Equal(a, b);
        }
    }

    [Fact]
    public void ZeroBlocksQuantizeToZeros()
    {
        var x = new float[512];
        foreach (var type in new[] { GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
        {
            var q = new byte[GgmlTypeInfo.Of(type).RowBytes(x.Length)];
            Quantizer.Quantize(type, x, q);
            var back = new float[x.Length];
            fixed (byte* pq = q) fixed (float* pb = back) Dequantize.Row(type, pq, pb, x.Length);
            Assert.All(back, v => Assert.Equal(0f, v));
        }
    }
}
