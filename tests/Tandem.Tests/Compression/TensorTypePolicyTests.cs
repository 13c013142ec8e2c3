using Tandem.Compression;
using Tandem.Gguf;

namespace Tandem.Tests.Compression;

/// <summary>llama.cpp's per-tensor rules where the mini test files (4 layers, one shape) do not reach.</summary>
public class TensorTypePolicyTests
{
    /// <summary>A 16-layer model whose rows are all multiples of 256 (no fallbacks), in processing order.</summary>
    static (List<TensorShape> Tensors, ModelFacts Facts) Model16(bool tied = true)
    {
        var list = new List<TensorShape> { new("token_embd.weight", [512, 1000], GgmlType.F32), new("output_norm.weight", [512], GgmlType.F32) };
        if (!tied) list.Add(new("output.weight", [512, 1000], GgmlType.F32));
        for (int i = 0; i < 16; i++)
            foreach (var n in new[] { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up" })
                list.Add(new($"blk.{i}.{n}.weight", [512, 512], GgmlType.F32));
        for (int i = 0; i < 16; i++) list.Add(new($"blk.{i}.ffn_down.weight", [1024, 512], GgmlType.F32));
        return (TensorTypePolicy.ProcessingOrder(list, t => t.Name),
            new ModelFacts { Architecture = "llama", LayerCount = 16, HeadCount = 8, HeadCountKv = 8, TiedEmbeddings = tied });
    }

    static Dictionary<string, GgmlType> Choose(string type, bool tied = true, bool pure = false)
    {
        var (tensors, facts) = Model16(tied);
        var types = TensorTypePolicy.Choose(facts, QuantizationType.Parse(type), tensors, pure, out int fallbacks);
        Assert.Equal(0, fallbacks);
        return tensors.Select((t, i) => (t.Name, types[i])).ToDictionary(p => p.Name, p => p.Item2);
    }

    [Fact]
    public void Q4KMGivesQ6KToTheUseMoreBitsLayers()
    {
        var t = Choose("Q4_K_M");
        // use_more_bits(i, 16): i < 2, i >= 14, or (i - 2) % 3 == 2 → 0, 1, 4, 7, 10, 13, 14, 15
        int[] more = [0, 1, 4, 7, 10, 13, 14, 15];
        for (int i = 0; i < 16; i++)
        {
            var expected = more.Contains(i) ? GgmlType.Q6_K : GgmlType.Q4_K;
            Assert.Equal(expected, t[$"blk.{i}.attn_v.weight"]);
            Assert.Equal(expected, t[$"blk.{i}.ffn_down.weight"]);
            Assert.Equal(GgmlType.Q4_K, t[$"blk.{i}.attn_q.weight"]);
        }
        Assert.Equal(GgmlType.Q6_K, t["token_embd.weight"]); // tied: it is the output
        Assert.Equal(GgmlType.F32, t["output_norm.weight"]);
        var untied = Choose("Q4_K_M", tied: false);
        Assert.Equal(GgmlType.Q4_K, untied["token_embd.weight"]);
        Assert.Equal(GgmlType.Q6_K, untied["output.weight"]);
    }

    [Fact]
    public void Q3KMAndQ2KRules()
    {
        var t = Choose("Q3_K_M");
        Assert.Equal(GgmlType.Q5_K, t["blk.0.attn_v.weight"]);   // the first two attn_v
        Assert.Equal(GgmlType.Q5_K, t["blk.1.attn_v.weight"]);
        Assert.Equal(GgmlType.Q4_K, t["blk.2.attn_v.weight"]);
        Assert.Equal(GgmlType.Q5_K, t["blk.0.ffn_down.weight"]); // i < 16/16
        Assert.Equal(GgmlType.Q4_K, t["blk.1.ffn_down.weight"]);
        Assert.Equal(GgmlType.Q4_K, t["blk.9.attn_output.weight"]);
        Assert.Equal(GgmlType.Q3_K, t["blk.9.ffn_up.weight"]);
        var q2 = Choose("Q2_K");
        Assert.Equal(GgmlType.Q3_K, q2["blk.5.attn_v.weight"]);  // GQA 1 < 4
        Assert.Equal(GgmlType.Q3_K, q2["blk.5.ffn_down.weight"]);
        Assert.Equal(GgmlType.Q3_K, q2["blk.5.attn_output.weight"]);
        Assert.Equal(GgmlType.Q2_K, q2["blk.5.attn_k.weight"]);
        var q4s = Choose("Q4_K_S");
        Assert.Equal(GgmlType.Q5_K, q4s["blk.3.attn_v.weight"]);  // i_attention_wv < 4
        Assert.Equal(GgmlType.Q4_K, q4s["blk.4.attn_v.weight"]);
        Assert.Equal(GgmlType.Q5_K, q4s["blk.1.ffn_down.weight"]); // i < 16/8
        Assert.Equal(GgmlType.Q4_K, q4s["blk.2.ffn_down.weight"]);
        var pure = Choose("Q4_K_M", pure: true);
        Assert.All(pure.Where(kv => kv.Key.EndsWith(".weight") && !kv.Key.Contains("norm")), kv => Assert.Equal(GgmlType.Q4_K, kv.Value));
        var f16 = Choose("F16");
        Assert.Equal(GgmlType.F16, f16["token_embd.weight"]);
        Assert.Equal(GgmlType.F32, f16["output_norm.weight"]);
    }

    [Fact]
    public void FactsReadPerLayerArraysLikeLlamaCpp()
    {
        string path = TestData.Temp("facts.gguf");
        try
        {
            GgufWriter.Write(path,
            [
                new("general.architecture", GgufValue.Of("qwen2")),
                new("qwen2.block_count", GgufValue.Of(2u)),
                new("qwen2.attention.head_count", GgufValue.Of(8u)),
                new("qwen2.attention.head_count_kv", GgufValue.Of(new[] { 2, 4 })), // per layer: layer 0 decides
            ],
            [new GgufTensorToWrite("output.weight", [32, 4], GgmlType.F32, new byte[32 * 4 * 4])]);
            using var f = GgufFile.Open(path);
            var facts = ModelFacts.Read(f);
            Assert.Equal(4, facts.GroupedQueryFactor);
            Assert.Equal(2, facts.LayerCount);
            Assert.False(facts.TiedEmbeddings);
        }
        finally { File.Delete(path); }
    }
}
