using Tandem.Gguf;
using Xunit.Abstractions;

namespace Tandem.Tests.Quants;

public class QuantMeasureTests(ITestOutputHelper output)
{
    [Fact]
    public void MeasureDequantErrors()
    {
        foreach (var (f32Name, qName) in new[] {
            ("mini-qwen2-f32.gguf", "mini-qwen2-f16.gguf"), ("mini-qwen2-f32.gguf", "mini-qwen2-bf16.gguf"),
            ("mini-qwen2-f32.gguf", "mini-qwen2-q8_0.gguf"), ("mini-qwen2-f32.gguf", "mini-qwen2-q4_0.gguf"),
            ("mini-qwen2-f32.gguf", "mini-qwen2-q4_1.gguf"), ("mini-qwen2-f32.gguf", "mini-qwen2-q5_0.gguf"),
            ("mini-qwen2-f32.gguf", "mini-qwen2-q2_k.gguf"), ("mini-qwen2-f32.gguf", "mini-qwen2-q3_k_m.gguf"),
            ("mini-qwen2-f32.gguf", "mini-qwen2-q4_k_m.gguf"), ("mini-qwen2-f32.gguf", "mini-qwen2-q5_k_m.gguf"),
            ("mini-qwen2-f32.gguf", "mini-qwen2-q6_k.gguf"), ("mini-qwen3-f32.gguf", "mini-qwen3-q8_0.gguf"),
            ("mini-qwen3-f32.gguf", "mini-qwen3-q4_k_m.gguf") })
        {
            using var f = GgufFile.Open(TestData.Model(f32Name));
            using var q = GgufFile.Open(TestData.Model(qName));
            var worst = new Dictionary<GgmlType, double>();
            foreach (var t in q.Tensors)
            {
                if (t.Type == GgmlType.F32) continue;
                var reference = QuantTestUtil.DequantizeTensor(f, f.GetTensor(t.Name));
                var deq = QuantTestUtil.DequantizeTensor(q, t);
                double rel = QuantTestUtil.RmsDiff(reference, deq) / QuantTestUtil.Rms(reference);
                worst[t.Type] = Math.Max(worst.GetValueOrDefault(t.Type), rel);
            }
            output.WriteLine($"{qName}: " + string.Join(", ", worst.Select(kv => $"{kv.Key}={kv.Value:P3}")));
        }
    }
}
