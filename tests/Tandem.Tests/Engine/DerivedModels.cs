using Tandem.Gguf;

namespace Tandem.Tests.Engine;

/// <summary>
/// Test models derived deterministically from testdata/models/mini-qwen2-f32.gguf by rewriting metadata and tensors,
/// so that RoPE variants without a shipped model (Llama-3 frequency factors, YaRN, linear scaling) are checked against
/// llama.cpp: testdata/golden/mini-*.golden.json were produced by llama.cpp from exactly these bytes
/// (see testdata/ORIGIN.md). Changing this code invalidates those goldens.
/// </summary>
public static class DerivedModels
{
    static string Source => TestData.Model("mini-qwen2-f32.gguf");

    /// <summary>Llama-3.1 style: llama architecture (adjacent-pair RoPE), no attention biases, rope base 500000,
    /// per-pair frequency factors in rope_freqs.weight (factor 8, low 1, high 4, original context 64).</summary>
    public static string Llama3(string destination)
    {
        using var src = GgufFile.Open(Source);
        var metadata = new List<KeyValuePair<string, GgufValue>>();
        foreach (var (key, value) in src.MetadataList)
        {
            if (key.StartsWith("qwen2.", StringComparison.Ordinal)) metadata.Add(new("llama." + key["qwen2.".Length..], value));
            else if (key == "general.architecture") metadata.Add(new(key, GgufValue.Of("llama")));
            else metadata.Add(new(key, value));
        }
        metadata = metadata.With("llama.rope.freq_base", GgufValue.Of(500000f)).With("llama.rope.dimension_count", GgufValue.Of(64u));
        var tensors = GgufWriter.TensorsOf(src).Where(t => !t.Name.EndsWith(".bias", StringComparison.Ordinal)).ToList();
        float[] factors = Llama31Factors(headDim: 64, ropeBase: 500000f, factor: 8f, lowFreqFactor: 1f, highFreqFactor: 4f, originalContext: 64);
        var bytes = new byte[factors.Length * sizeof(float)];
        Buffer.BlockCopy(factors, 0, bytes, 0, bytes.Length);
        tensors.Insert(0, new GgufTensorToWrite("rope_freqs.weight", [factors.Length], GgmlType.F32, bytes));
        GgufWriter.Write(destination, metadata, tensors);
        return destination;
    }

    /// <summary>Qwen2 with YaRN context extension (factor 4 over an original context of 32).</summary>
    public static string QwenYarn(string destination) => WithMetadata(destination, m => m
        .With("qwen2.rope.scaling.type", GgufValue.Of("yarn"))
        .With("qwen2.rope.scaling.factor", GgufValue.Of(4f))
        .With("qwen2.rope.scaling.original_context_length", GgufValue.Of(32u)));

    /// <summary>Qwen2 with linear position interpolation (factor 2).</summary>
    public static string QwenLinear(string destination) => WithMetadata(destination, m => m
        .With("qwen2.rope.scaling.type", GgufValue.Of("linear"))
        .With("qwen2.rope.scaling.factor", GgufValue.Of(2f)));

    static string WithMetadata(string destination, Func<List<KeyValuePair<string, GgufValue>>, List<KeyValuePair<string, GgufValue>>> edit)
    {
        using var src = GgufFile.Open(Source);
        GgufWriter.Write(destination, edit(src.MetadataList.ToList()), GgufWriter.TensorsOf(src));
        return destination;
    }

    /// <summary>Llama 3.1's frequency factors as its Hugging Face converter computes them (in double, stored as F32).</summary>
    static float[] Llama31Factors(int headDim, float ropeBase, float factor, float lowFreqFactor, float highFreqFactor, int originalContext)
    {
        double lowWavelen = originalContext / lowFreqFactor, highWavelen = originalContext / highFreqFactor;
        var result = new float[headDim / 2];
        for (int i = 0; i < result.Length; i++)
        {
            double freq = 1.0 / Math.Pow(ropeBase, 2.0 * i / headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) result[i] = 1f;
            else if (wavelen > lowWavelen) result[i] = factor;
            else
            {
                double smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                result[i] = (float)(1 / ((1 - smooth) / factor + smooth));
            }
        }
        return result;
    }
}
