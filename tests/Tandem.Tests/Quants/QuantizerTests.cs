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
