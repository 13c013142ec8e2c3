using Tandem.Gguf;
using Tandem.Gguf.Quants;
using Tandem.Provenance;

namespace Tandem.Tests.Provenance;

public class MemoryBoundTests
{
    /// <summary>
    /// One layer of a Qwen2.5-1.5B-wide qwen2 model (n_embd 1536, n_ff 8960, 12 heads, 2 KV heads) in Q4_0, written
    /// row by row so the test never holds a whole tensor either.
    /// </summary>
    static void WriteWideModel(string path)
    {
        const int d = 1536, ff = 8960, heads = 12, kvHeads = 2, hd = 128;
        using var mini = GgufFile.Open(TestData.Model("mini-qwen2-f32.gguf"));
        int vocab = (int)mini.GetTensor("token_embd.weight").Rows;
        var meta = mini.MetadataList
            .With("qwen2.embedding_length", GgufValue.Of((uint)d)).With("qwen2.feed_forward_length", GgufValue.Of((uint)ff))
            .With("qwen2.block_count", GgufValue.Of(1u)).With("qwen2.attention.head_count", GgufValue.Of((uint)heads))
            .With("qwen2.attention.head_count_kv", GgufValue.Of((uint)kvHeads));
        var tensors = new List<GgufTensorToWrite>();
        ulong seed = 1;
        void Add(string name, int cols, int rows)
        {
            var type = rows == 1 ? GgmlType.F32 : GgmlType.Q4_0;
            ulong s = seed++;
            tensors.Add(new GgufTensorToWrite(name, rows == 1 ? [cols] : [cols, rows], type, GgufTensorData.FromCallback(stream =>
            {
                var rng = new SeededRandom(s);
                var row = new float[cols];
                var bytes = new byte[GgmlTypeInfo.Of(type).RowBytes(cols)];
                for (int r = 0; r < rows; r++)
                {
                    for (int c = 0; c < cols; c++) row[c] = rows == 1 ? 1 + 0.1f * (float)rng.Gaussian() : 0.02f * (float)rng.Gaussian();
                    Quantizer.Quantize(type, row, bytes);
                    stream.Write(bytes);
                }
            })));
        }
        Add("token_embd.weight", d, vocab);
        Add("output_norm.weight", d, 1);
        Add("blk.0.attn_norm.weight", d, 1);
        Add("blk.0.attn_q.weight", d, heads * hd); Add("blk.0.attn_q.bias", heads * hd, 1);
        Add("blk.0.attn_k.weight", d, kvHeads * hd); Add("blk.0.attn_k.bias", kvHeads * hd, 1);
        Add("blk.0.attn_v.weight", d, kvHeads * hd); Add("blk.0.attn_v.bias", kvHeads * hd, 1);
        Add("blk.0.attn_output.weight", heads * hd, d);
        Add("blk.0.ffn_norm.weight", d, 1);
        Add("blk.0.ffn_gate.weight", d, ff); Add("blk.0.ffn_up.weight", d, ff);
        Add("blk.0.ffn_down.weight", ff, d);
        GgufWriter.Write(path, meta, tensors, new GgufWriterOptions { FlushToDisk = false });
    }

    [Fact]
    public void SignatureOfAWideQuantizedLayerAllocatesLessThanOneDequantizedTensor()
    {
        string path = TestData.Temp("wide-q4_0.gguf");
        try
        {
            WriteWideModel(path);
            string[] probes;
            using (var r = WeightReader.Open(path)) probes = ProbeSet.Choose(ProbeSet.Shared(r.Tokens), 64);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var s = ModelSignature.Extract(path, probes);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            // everything the extraction allocated (an upper bound on what it held at once) stays below the size of
            // ffn_gate dequantized to F32 (1536 × 8960 × 4 bytes = 55 MB): no tensor is ever materialized
            long largestTensorF32 = 1536L * 8960 * 4;
            Assert.True(allocated < largestTensorF32 / 2, $"allocated {allocated / 1e6:F1} MB");
            Assert.Equal(1, s.Shape.Layers);
            Assert.Equal(64, s.Probes.Length);
            Assert.All(s.LayerInvariants[0], m => Assert.Equal(64 * 64, m.Length));
            Assert.All(s.ProjectionStd, p => Assert.InRange(p[0], 0.015, 0.025));
        }
        finally { File.Delete(path); }
    }
}
