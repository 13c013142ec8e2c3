using Tandem.Engine;
using Tandem.Gguf;

namespace Tandem.Tests.Engine;

public class InferenceSessionTests
{
    static readonly int[] Prompt = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376];

    /// <summary>
    /// Like llama.cpp, a batch sums in a different order (tinyBLAS) than one token (vec_dot), so batched and incremental
    /// logits differ in the last bits, never in substance: same argmax, differences at rounding level.
    /// </summary>
    [Fact]
    public void BatchedPrefillAgreesWithTokenByTokenDecode()
    {
        using var model = Model.Load(TestData.Stories260K);
        int vocab = model.Config.VocabSize;
        using var batched = model.CreateSession(new SessionOptions(64, 2));
        var all = new float[Prompt.Length * vocab];
        batched.Evaluate(Prompt, all);
        using var single = model.CreateSession(new SessionOptions(64, 2));
        for (int i = 0; i < Prompt.Length; i++)
        {
            var logits = single.Evaluate(Prompt.AsSpan(i, 1));
            LogitAssert.Close(all.AsSpan(i * vocab, vocab).ToArray(), logits.ToArray());
        }
        Assert.Equal(Prompt.Length, single.Position);
    }

    [Fact]
    public void SameChunkingGivesIdenticalResults()
    {
        using var model = Model.Load(TestData.Model("mini-qwen2-q4_k_m.gguf"));
        float[]? first = null;
        for (int run = 0; run < 2; run++)
        {
            using var session = model.CreateSession(new SessionOptions(64, 2) { BatchSize = 4 });
            var logits = session.Evaluate(Prompt).ToArray();
            first ??= logits;
            Assert.Equal(first, logits);
            Assert.Equal(Prompt.Length, session.Position);
        }
    }

    /// <summary>
    /// The feed-forward block of a long batch runs in slices of tokens (so its ffn-wide buffers are slice-sized); every
    /// token must take the same kernel path as in one product over the whole batch. 33 tokens in slices of 32 would
    /// leave one token alone (a one-token product sums in another order), 37 leave a remainder of 5 (tokens % 4 = 1).
    /// </summary>
    [Theory]
    [InlineData("mini-qwen2-f32.gguf")]
    [InlineData("mini-qwen2-f16.gguf")]
    [InlineData("mini-qwen2-bf16.gguf")]
    [InlineData("mini-qwen2-q8_0.gguf")]
    [InlineData("mini-qwen2-q4_0.gguf")]
    [InlineData("mini-qwen2-q4_1.gguf")]
    [InlineData("mini-qwen2-q5_0.gguf")]
    [InlineData("mini-qwen2-q2_k.gguf")]
    [InlineData("mini-qwen2-q3_k_m.gguf")]
    [InlineData("mini-qwen2-q4_k_m.gguf")]
    [InlineData("mini-qwen2-q5_k_m.gguf")]
    [InlineData("mini-qwen2-q6_k.gguf")]
    [InlineData("mini-qwen3-q4_k_m.gguf")]
    public void FeedForwardSlicesGiveBitIdenticalLogits(string file)
    {
        using var model = Model.Load(TestData.Model(file));
        int vocab = model.Config.VocabSize;
        var random = new Random(7);
        foreach (int length in new[] { 33, 37, 64 })
        {
            var tokens = Enumerable.Range(0, length).Select(_ => random.Next(vocab)).ToArray();
            float[] Logits(int feedForwardBatch)
            {
                using var session = model.CreateSession(new SessionOptions(64, 2) { BatchSize = 64, FeedForwardBatch = feedForwardBatch });
                Assert.Equal(feedForwardBatch, session.FeedForwardBatch);
                var all = new float[length * vocab];
                session.Evaluate(tokens, all);
                return all;
            }
            var whole = Logits(64);
            var sliced = Logits(32);
            Assert.True(whole.AsSpan().SequenceEqual(sliced), $"{file}, {length} tokens: logits differ between one feed-forward pass and slices of 32");
        }
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        using var model = Model.Load(TestData.Model("mini-qwen3-q8_0.gguf"));
        float[]? reference = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var session = model.CreateSession(new SessionOptions(64, threads));
            Assert.Equal(threads, session.Threads);
            var logits = session.Evaluate(Prompt).ToArray();
            reference ??= logits;
            Assert.Equal(reference, logits);
        }
    }

    [Fact]
    public void TruncateRewindsTheCache()
    {
        using var model = Model.Load(TestData.Stories260K);
        using var session = model.CreateSession(new SessionOptions(64, 1));
        var first = session.Evaluate(Prompt).ToArray();
        session.Truncate(4);
        Assert.Equal(4, session.Position);
        var again = session.Evaluate(Prompt.AsSpan(4)).ToArray();
        Assert.Equal(first, again);
    }

    [Fact]
    public void ContextOverflowIsAClearError()
    {
        using var model = Model.Load(TestData.Stories260K);
        using var session = model.CreateSession(new SessionOptions(8, 1));
        var e = Assert.Throws<ContextOverflowException>(() => session.Evaluate(Prompt));
        Assert.Contains("context holds 8", e.Message);
        Assert.Equal(0, session.Position);
        session.Evaluate(Prompt.AsSpan(0, 8));
        Assert.Throws<ContextOverflowException>(() => session.Evaluate([1]));
    }

    [Fact]
    public void TokenOutsideVocabularyIsRejected()
    {
        using var model = Model.Load(TestData.Stories260K);
        using var session = model.CreateSession(new SessionOptions(8, 1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => session.Evaluate([1, 512]));
        Assert.Contains("outside the vocabulary of 512", e.Message);
    }

    /// <summary>Runs alone (no other test allocating in parallel), so the process-wide allocation counter is this test's.</summary>
    [Collection(nameof(AllocationSensitive))]
    public sealed class AllocationTests
    {
    [Fact]
    public void DecodingAllocatesNothingPerToken()
    {
        using var model = Model.Load(TestData.Model("mini-qwen2-q4_k_m.gguf"));
        using var session = model.CreateSession(new SessionOptions(128, 2));
        session.Evaluate(Prompt);
        var token = new int[1];
        for (int i = 0; i < 16; i++)
        {
            token[0] = 5 + i;
            session.Evaluate(token);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 32; i++)
        {
            token[0] = 7 + i;
            session.Evaluate(token);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1024, $"32 decode steps allocated {allocated} bytes");
    }
    }

    [Fact]
    public void ConfigIsReadFromMetadata()
    {
        using var llama = Model.Load(TestData.Stories260K);
        Assert.Equal(("llama", 64, 5, 8, 4, 8, 172, 512, RopeLayout.Normal), (llama.Config.Architecture, llama.Config.EmbeddingLength, llama.Config.BlockCount,
            llama.Config.HeadCount, llama.Config.HeadCountKv, llama.Config.HeadDim, llama.Config.FeedForwardLength, llama.Config.VocabSize, llama.Config.RopeLayout));
        Assert.False(llama.Weights.TiedEmbeddings);
        using var qwen2 = Model.Load(TestData.Model("mini-qwen2-f16.gguf"));
        Assert.Equal(("qwen2", RopeLayout.Neox, 1e6f), (qwen2.Config.Architecture, qwen2.Config.RopeLayout, qwen2.Config.RopeFreqBase));
        Assert.True(qwen2.Weights.TiedEmbeddings);
        Assert.NotNull(qwen2.Weights.Layers[0].Query.Bias);
        using var qwen3 = Model.Load(TestData.Model("mini-qwen3-f32.gguf"));
        Assert.NotNull(qwen3.Weights.Layers[0].QueryNorm);
        Assert.False(qwen3.Weights.TiedEmbeddings);
    }

    [Fact]
    public void UnknownArchitectureNamesTheFileAndTheSupportedOnes()
    {
        string path = TestData.Temp("unknown-arch.gguf");
        RewriteArchitecture(TestData.Stories260K, path, "gpt-j");
        var e = Assert.Throws<NotSupportedException>(() => Model.Load(path));
        Assert.Contains("unknown-arch.gguf", e.Message);
        Assert.Contains("'gpt-j'", e.Message);
        Assert.Contains("qwen3", e.Message);
    }

    /// <summary>Copies a GGUF, replacing the general.architecture string with one of the same length.</summary>
    static void RewriteArchitecture(string source, string destination, string arch)
    {
        var bytes = File.ReadAllBytes(source);
        var key = "general.architecture"u8.ToArray();
        int at = bytes.AsSpan().IndexOf(key);
        Assert.True(at > 0);
        int lengthAt = at + key.Length + 4;
        long oldLength = BitConverter.ToInt64(bytes, lengthAt);
        var value = System.Text.Encoding.UTF8.GetBytes(arch.PadRight((int)oldLength).Substring(0, (int)oldLength));
        value.CopyTo(bytes, lengthAt + 8);
        File.WriteAllBytes(destination, bytes);
        using var check = GgufFile.Open(destination);
        Assert.StartsWith(arch[..Math.Min(arch.Length, (int)oldLength)], check.GetString("general.architecture"));
    }
}

[CollectionDefinition(nameof(AllocationSensitive), DisableParallelization = true)]
public sealed class AllocationSensitive;

/// <summary>Q4_0 matrices are interleaved into their own memory at load (x86 with AVX2); the rest stay mapped.</summary>
public unsafe class InterleavedWeightsTests
{
    [Fact]
    public void Q4_0MatricesAreInterleavedAtLoad_OtherMatricesStayInTheMappedFile()
    {
        using var model = Model.Load(TestData.Model("mini-qwen2-q4_0.gguf"));
        var gguf = model.Gguf;
        var matrices = model.Weights.Layers.SelectMany(l => new[] { l.Query, l.Key, l.Value, l.AttentionOutput, l.Gate, l.Up, l.Down }).ToList();
        int interleaved = 0;
        foreach (var m in matrices)
        {
            byte* mapped = gguf.TensorPointer(gguf.Tensors.First(t => t.Name == m.Name));
            bool expected = Tandem.Engine.Kernels.GgmlQ0Kernel.CanInterleave && m.Type == GgmlType.Q4_0 && m.OutFeatures % 8 == 0;
            if (expected)
            {
                interleaved++;
                Assert.Contains("interleaved", m.Kernel.Isa);
                Assert.Equal(8, m.Kernel.RowGranularity);
                Assert.True(m.Data != mapped, $"{m.Name} should have its own interleaved copy");
                Assert.False(m.ReadsMapping);
                Assert.Throws<InvalidOperationException>(() => { m.Row(0); });
            }
            else
            {
                Assert.DoesNotContain("interleaved", m.Kernel.Isa);
                Assert.True(m.Data == mapped, $"{m.Name} ({m.Type}) should be read in place from the mapped file");
                Assert.True(m.ReadsMapping);
            }
        }
        if (Tandem.Engine.Kernels.GgmlQ0Kernel.CanInterleave) Assert.True(interleaved > 0, "the Q4_0 test model has Q4_0 matrices with a multiple of 8 rows");
    }
}
