using Tandem.Compression.Evaluation;
using Tandem.Compression.Pruning;
using Tandem.Engine;
using Tandem.Gguf;

namespace Tandem.Tests.Compression;

/// <summary>Structured pruning: the files load and run, their sizes are the plan's, and quality falls as more goes.</summary>
public class PruneTests
{
    /// <summary>The shape of a llama-family model, with the parameter count worked out here from the hyperparameters alone.</summary>
    sealed record Shape(int Embd, int Blocks, int Heads, int HeadsKv, int HeadDim, int Ffn, int Vocab, bool TiedOutput, bool QkvBias, bool QkNorm)
    {
        public long Parameters
        {
            get
            {
                long q = (long)Heads * HeadDim, kv = (long)HeadsKv * HeadDim;
                long perBlock = 2L * Embd                   // attn_norm, ffn_norm
                    + Embd * (q + 2 * kv) + q * Embd        // q, k, v, output
                    + 3L * Embd * Ffn                       // gate, up, down
                    + (QkvBias ? q + 2 * kv : 0)
                    + (QkNorm ? 2L * HeadDim : 0);
                return (long)Vocab * Embd * (TiedOutput ? 1 : 2) + Embd + Blocks * perBlock;
            }
        }
    }

    static readonly Shape Stories = new(64, 5, 8, 4, 8, 172, 512, TiedOutput: false, QkvBias: false, QkNorm: false);
    static readonly Shape Qwen2 = new(256, 4, 4, 2, 64, 768, 4099, TiedOutput: true, QkvBias: true, QkNorm: false);
    static readonly Shape Qwen3 = new(256, 4, 4, 2, 64, 768, 4099, TiedOutput: false, QkvBias: false, QkNorm: true);

    static string Calibration => File.ReadAllText(PerplexityTests.SampleText);

    static PruneOptions Options(int drop = 0, double heads = 1, double ffn = 1) =>
        new() { DropLayers = drop, HeadsKeep = heads, FfnKeep = ffn, CalibrationText = Calibration, CalibrationChunks = 3, Threads = 2 };

    static string ModelPath(string name) => name == "stories260K" ? TestData.Stories260K : TestData.Model(name + ".gguf");

    static Shape BaseOf(string name) => name switch { "stories260K" => Stories, "mini-qwen2-f32" => Qwen2, _ => Qwen3 };

    [Theory]
    [InlineData("stories260K")]
    [InlineData("mini-qwen2-f32")]
    [InlineData("mini-qwen3-f32")]
    public void BaseShapes_CountLikeTheFiles(string name)
    {
        using var f = GgufFile.Open(ModelPath(name));
        Assert.Equal(BaseOf(name).Parameters, f.ParameterCount);
    }

    [Theory]
    [InlineData("stories260K", 1, 0.5, 0.5, 4, 4, 4, 86)]     // 8 heads in 4 groups of 2: one query head per group
    [InlineData("stories260K", 2, 0.75, 0.75, 3, 6, 3, 129)]  // 6 heads do not split over 4 groups: 3 whole groups
    [InlineData("mini-qwen2-f32", 1, 1, 0.5, 3, 4, 2, 384)]
    [InlineData("mini-qwen3-f32", 1, 0.5, 0.25, 3, 2, 2, 192)]
    [InlineData("mini-qwen3-f32", 0, 0.25, 1, 4, 2, 1, 768)]   // one head left: a whole group goes
    public void PrunedFile_LoadsRuns_AndHasThePlannedSize(string name, int drop, double heads, double ffn, int blocks, int nHead, int nKv, int nFf)
    {
        string output = TestData.Temp(name + "-pruned.gguf");
        try
        {
            var r = ModelPruner.Prune(ModelPath(name), output, Options(drop, heads, ffn));
            Assert.Equal(new PruneShape(blocks, nHead, nKv, nFf), r.Plan.Result);
            var expected = BaseOf(name) with { Blocks = blocks, Heads = nHead, HeadsKv = nKv, Ffn = nFf };
            Assert.Equal(expected.Parameters, r.Parameters);
            Assert.Equal(drop, r.Plan.DroppedLayers.Length);

            using var model = Model.Load(output);
            Assert.Equal(expected.Parameters, model.ParameterCount);
            Assert.Equal(r.Bytes, model.WeightBytes);
            Assert.Equal((blocks, nHead, nKv, nFf), (model.Config.BlockCount, model.Config.HeadCount, model.Config.HeadCountKv, model.Config.FeedForwardLength));
            Assert.Equal(BaseOf(name).HeadDim, model.Config.HeadDim);
            using var session = model.CreateSession(new SessionOptions(64, 1));
            var logits = session.Evaluate(model.Tokenizer.Encode("Once upon a time", addSpecial: true, parseSpecial: false));
            Assert.Equal(model.Config.VocabSize, logits.Length);
            foreach (float v in logits) Assert.True(float.IsFinite(v));
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void NothingPruned_CopiesTheModel()
    {
        string output = TestData.Temp("same.gguf");
        try
        {
            var r = ModelPruner.Prune(TestData.Stories260K, output, Options());
            Assert.Null(r.Scores);
            using var a = GgufFile.Open(TestData.Stories260K);
            using var b = GgufFile.Open(output);
            Assert.Equal(a.Tensors.Select(t => (t.Name, t.ShapeText, t.Type)), b.Tensors.Select(t => (t.Name, t.ShapeText, t.Type)));
            // the head size is written out, since readers otherwise derive it from head_count
            Assert.Equal(8, b.GetInt("llama.attention.key_length"));
            foreach (var t in a.Tensors) Assert.True(a.TensorBytes(t).SequenceEqual(b.TensorBytes(b.GetTensor(t.Name))), t.Name);
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void KeptHeadsAndChannels_AreCopiedExactly()
    {
        string output = TestData.Temp("slices.gguf");
        try
        {
            var r = ModelPruner.Prune(TestData.Model("mini-qwen3-f32.gguf"), output, Options(heads: 0.5, ffn: 0.5));
            using var a = GgufFile.Open(TestData.Model("mini-qwen3-f32.gguf"));
            using var b = GgufFile.Open(output);
            var lp = r.Plan.Layers[1];
            var srcQ = MemoryMarshalFloats(a, "blk.1.attn_q.weight");
            var dstQ = MemoryMarshalFloats(b, "blk.1.attn_q.weight");
            int rowsPerHead = 64 * 256;
            for (int k = 0; k < lp.QueryHeads.Length; k++)
                Assert.Equal(srcQ.AsSpan(lp.QueryHeads[k] * rowsPerHead, rowsPerHead).ToArray(), dstQ.AsSpan(k * rowsPerHead, rowsPerHead).ToArray());
            var srcDown = MemoryMarshalFloats(a, "blk.1.ffn_down.weight");
            var dstDown = MemoryMarshalFloats(b, "blk.1.ffn_down.weight");
            for (int row = 0; row < 256; row += 37)
                for (int k = 0; k < lp.FfnChannels.Length; k += 11)
                    Assert.Equal(srcDown[row * 768 + lp.FfnChannels[k]], dstDown[row * 384 + k]);
        }
        finally { File.Delete(output); }
    }

    static float[] MemoryMarshalFloats(GgufFile f, string tensor) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(f.TensorBytes(f.GetTensor(tensor))).ToArray();

    [Theory]
    [InlineData("stories260K")]
    [InlineData("mini-qwen3-f32")]
    public void Kl_GrowsAsMoreIsPruned(string name)
    {
        var levels = new[] { Options(ffn: 0.75), Options(drop: 1, ffn: 0.75), Options(drop: 2, heads: 0.5, ffn: 0.5) };
        var kl = new List<double>();
        var outputs = levels.Select((_, i) => TestData.Temp($"{name}-level{i}.gguf")).ToArray();
        try
        {
            using var baseModel = Model.Load(ModelPath(name));
            for (int i = 0; i < levels.Length; i++)
            {
                ModelPruner.Prune(ModelPath(name), outputs[i], levels[i]);
                using var candidate = Model.Load(outputs[i]);
                kl.Add(KlDivergence.Measure(baseModel, candidate, Calibration, new EvaluationOptions { ContextLength = 128, MaxChunks = 6, Threads = 2 }).MeanKl);
            }
        }
        finally { foreach (var o in outputs) File.Delete(o); }
        Assert.True(kl[0] > 0 && kl[0] < kl[1] && kl[1] < kl[2], "KL by level: " + string.Join(", ", kl));
    }

    [Fact]
    public void TargetParams_PicksAPlanThatFits()
    {
        string output = TestData.Temp("target.gguf");
        try
        {
            var r = ModelPruner.Prune(TestData.Stories260K, output, Options() with { TargetParams = 200_000 });
            Assert.InRange(r.Parameters, 150_000, 200_000);
            using var f = GgufFile.Open(output);
            Assert.Equal(r.Parameters, f.ParameterCount);
            var s = r.Plan.Result;
            Assert.Equal((Stories with { Blocks = s.Blocks, Heads = s.Heads, HeadsKv = s.HeadsKv, Ffn = s.FeedForward }).Parameters, r.Parameters);
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void UnreachableTarget_IsRefused_AndWritesNothing()
    {
        string output = TestData.Temp("tiny.gguf");
        var ex = Assert.Throws<ArgumentException>(() => ModelPruner.Prune(TestData.Stories260K, output, Options() with { TargetParams = 1000 }));
        Assert.Contains("smallest", ex.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void ShortCalibrationText_IsRefused_AndWritesNothing()
    {
        string output = TestData.Temp("short-calib.gguf");
        var ex = Assert.Throws<ArgumentException>(() => ModelPruner.Prune(TestData.Stories260K, output, Options(drop: 1) with { CalibrationText = "Once upon a time." }));
        Assert.StartsWith("calibration text too short", ex.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void DroppingEveryLayer_IsRefused_AndWritesNothing()
    {
        string output = TestData.Temp("none.gguf");
        var ex = Assert.Throws<ArgumentException>(() => ModelPruner.Prune(TestData.Stories260K, output, Options(drop: 5)));
        Assert.Contains("between 0 and 4", ex.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Qwen2QueryHeads_AreRefused_BecauseLlamaCppCouldNotLoadTheResult()
    {
        string output = TestData.Temp("q2heads.gguf");
        var ex = Assert.Throws<NotSupportedException>(() => ModelPruner.Prune(TestData.Model("mini-qwen2-f32.gguf"), output, Options(heads: 0.5)));
        Assert.Contains("qwen2", ex.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void QuantizedModel_KeepsItsTypes_AndWholeBlocksOfChannels()
    {
        string output = TestData.Temp("q4km-pruned.gguf");
        try
        {
            var r = ModelPruner.Prune(TestData.Model("mini-qwen2-q4_k_m.gguf"), output, Options(drop: 1, ffn: 0.5));
            Assert.Equal(256, r.Plan.Result.FeedForward); // 384 is not a whole number of 256-element K-quant blocks
            using var a = GgufFile.Open(TestData.Model("mini-qwen2-q4_k_m.gguf"));
            using var b = GgufFile.Open(output);
            foreach (var t in b.Tensors)
                Assert.Equal(a.GetTensor(t.Name).Type, t.Type);
            using var model = Model.Load(output);
            using var session = model.CreateSession(new SessionOptions(32, 1));
            foreach (float v in session.Evaluate([1, 2, 3])) Assert.True(float.IsFinite(v));
        }
        finally { File.Delete(output); }
    }
}
