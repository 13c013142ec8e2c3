using System.Diagnostics;
using Tandem.Gguf;

// Layout written here: a GGUF v3 file through GgufWriter (see GgufWriter.cs for the bytes), holding
//   metadata: general.architecture/name/description; {arch}.context_length, embedding_length, block_count,
//     feed_forward_length, attention.head_count(_kv), [attention.key_length/value_length], rope.freq_base,
//     [rope.dimension_count, vocab_size (llama)], attention.layer_norm_rms_epsilon; tokenizer.ggml.* (gpt2 model,
//     pre "qwen2", tokens, token_type, merges, eos/padding/bos ids, add_bos_token false), tokenizer.chat_template
//     (ChatML); then general.quantization_version = 2 and general.file_type last, as llama-quantize leaves them;
//   tensors in llama-quantize's order (outside-block tensors, then blk.0, blk.1, …; by name within each):
//     token_embd [n_embd, n_vocab], output_norm [n_embd], [output [n_embd, n_vocab] if untied], [rope_freqs [head_dim/2]],
//     per block: attn_norm, attn_q/k/v (+ .bias for qwen2), [attn_q_norm/attn_k_norm (qwen3)], attn_output,
//     ffn_norm, ffn_gate, ffn_up, ffn_down — in llama.cpp's names and ggml dimension order (ne[0] = row length).

namespace Tandem.Compression;

/// <summary>Llama-3.1-style RoPE scaling, stored as per-pair frequency divisors in rope_freqs.weight.</summary>
public sealed record Llama3RopeScaling(float Factor, float LowFrequencyFactor, float HighFrequencyFactor, int OriginalContextLength);

/// <summary>The shape of a real model, for writing one with random weights.</summary>
public sealed record SyntheticPreset
{
    public required string Name { get; init; }
    /// <summary>general.architecture: qwen2, qwen3 or llama.</summary>
    public required string Architecture { get; init; }
    public required int EmbeddingLength { get; init; }
    public required int LayerCount { get; init; }
    public required int HeadCount { get; init; }
    public required int HeadCountKv { get; init; }
    /// <summary>Per-head size; 0 means EmbeddingLength / HeadCount (written as key_length/value_length when it differs).</summary>
    public int HeadDim { get; init; }
    public required int FeedForwardLength { get; init; }
    public required int VocabSize { get; init; }
    public required int ContextLength { get; init; }
    public required float RopeFreqBase { get; init; }
    public required float RmsEps { get; init; }
    public bool TiedEmbeddings { get; init; } = true;
    public bool AttentionBiases { get; init; }
    public bool QueryKeyNorm { get; init; }
    public Llama3RopeScaling? RopeScaling { get; init; }
    /// <summary>Said in general.description (e.g. that the tokenizer is not the model's own).</summary>
    public string? Note { get; init; }
    /// <summary>Not listed in help (small shapes for tests).</summary>
    public bool Hidden { get; init; }

    public int EffectiveHeadDim => HeadDim > 0 ? HeadDim : EmbeddingLength / HeadCount;

    public static readonly IReadOnlyList<SyntheticPreset> All =
    [
        new()
        {
            Name = "qwen2.5-0.5b", Architecture = "qwen2", EmbeddingLength = 896, LayerCount = 24, HeadCount = 14, HeadCountKv = 2,
            FeedForwardLength = 4864, VocabSize = 151936, ContextLength = 32768, RopeFreqBase = 1e6f, RmsEps = 1e-6f, AttentionBiases = true,
        },
        new()
        {
            Name = "qwen2.5-1.5b", Architecture = "qwen2", EmbeddingLength = 1536, LayerCount = 28, HeadCount = 12, HeadCountKv = 2,
            FeedForwardLength = 8960, VocabSize = 151936, ContextLength = 32768, RopeFreqBase = 1e6f, RmsEps = 1e-6f, AttentionBiases = true,
        },
        new()
        {
            Name = "qwen3-0.6b", Architecture = "qwen3", EmbeddingLength = 1024, LayerCount = 28, HeadCount = 16, HeadCountKv = 8, HeadDim = 128,
            FeedForwardLength = 3072, VocabSize = 151936, ContextLength = 40960, RopeFreqBase = 1e6f, RmsEps = 1e-6f, QueryKeyNorm = true,
        },
        new()
        {
            Name = "llama-3.2-1b", Architecture = "llama", EmbeddingLength = 2048, LayerCount = 16, HeadCount = 32, HeadCountKv = 8,
            FeedForwardLength = 8192, VocabSize = 128256, ContextLength = 131072, RopeFreqBase = 500000f, RmsEps = 1e-5f,
            RopeScaling = new Llama3RopeScaling(32, 1, 4, 8192),
            Note = "The tokenizer is Qwen's byte-level BPE cut to 128256 tokens (the Llama-3 tokenizer is not shipped).",
        },
        new()
        {
            Name = "tiny-qwen2", Architecture = "qwen2", EmbeddingLength = 64, LayerCount = 2, HeadCount = 4, HeadCountKv = 2,
            FeedForwardLength = 256, VocabSize = 151936, ContextLength = 4096, RopeFreqBase = 1e6f, RmsEps = 1e-6f, AttentionBiases = true,
            Hidden = true,
        },
    ];

    public static SyntheticPreset Get(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown preset '{name}'; expected one of {string.Join(", ", All.Where(p => !p.Hidden).Select(p => p.Name))}");

    /// <summary>
    /// Llama-3.1 per-pair RoPE divisors, as the Hugging Face and llama.cpp converters compute them: wavelengths shorter
    /// than original_ctx / high_freq_factor are kept (1), longer than original_ctx / low_freq_factor are divided by the
    /// factor, and those between are interpolated smoothly.
    /// </summary>
    public static float[] Llama3RopeFactors(Llama3RopeScaling s, int headDim, float freqBase)
    {
        var factors = new float[headDim / 2];
        double lowWavelength = s.OriginalContextLength / (double)s.LowFrequencyFactor;
        double highWavelength = s.OriginalContextLength / (double)s.HighFrequencyFactor;
        for (int i = 0; i < factors.Length; i++)
        {
            double frequency = 1.0 / Math.Pow(freqBase, 2.0 * i / headDim);
            double wavelength = 2 * Math.PI / frequency;
            if (wavelength < highWavelength) factors[i] = 1;
            else if (wavelength > lowWavelength) factors[i] = s.Factor;
            else
            {
                double smooth = (s.OriginalContextLength / wavelength - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
                factors[i] = (float)(1 / ((1 - smooth) / s.Factor + smooth));
            }
        }
        return factors;
    }
}

/// <summary>What <see cref="SyntheticModel.Write"/> is asked to do.</summary>
public sealed record SynthOptions
{
    public required SyntheticPreset Preset { get; init; }
    public required QuantizationType Type { get; init; }
    public required string OutputPath { get; init; }
    /// <summary>The Hugging Face tokenizer.json whose vocabulary the model gets (Qwen's).</summary>
    public required string TokenizerPath { get; init; }
    public ulong Seed { get; init; }
    public int Threads { get; init; } = Environment.ProcessorCount;
    public Action<WriteProgress>? Progress { get; init; }
}

public sealed record SynthResult(IReadOnlyList<TensorPlan> Tensors, long FileBytes, long ParameterCount, TimeSpan Elapsed);

/// <summary>
/// Writes a model of a real shape with random weights (deterministic by seed) and a real tokenizer, quantized on the
/// fly: each tensor's F32 rows are generated and quantized a chunk at a time while the file streams out, so the whole
/// model is never in memory. Weights ~ N(0, 1/√fan_in) (block output projections further scaled by 1/√(2·layers), so
/// the residual stream stays near unit size), norm weights 1 + N(0, 0.02), biases N(0, 0.02).
/// A synthetic file of type T equals what <c>tandem quantize</c> makes of the F32 one (same rows, same type rules).
/// </summary>
public static class SyntheticModel
{
    enum Init { Weight, ScaledWeight, Norm, Bias, RopeFactors }

    sealed record Spec(string Name, long[] Dimensions, Init Init);

    public static SynthResult Write(SynthOptions o)
    {
        var start = Stopwatch.GetTimestamp();
        ModelQuantizer.CheckOutputDirectory(o.OutputPath);
        var p = o.Preset;
        var vocab = BpeVocabulary.FromTokenizerJson(o.TokenizerPath, p.VocabSize);
        var (specs, plan) = Build(p, o.Type);
        long total = plan.Sum(t => t.Elements), done = 0;
        var ropeFactors = p.RopeScaling is { } rs ? SyntheticPreset.Llama3RopeFactors(rs, p.EffectiveHeadDim, p.RopeFreqBase) : null;

        var tensors = new List<GgufTensorToWrite>(plan.Count);
        for (int i = 0; i < plan.Count; i++)
        {
            var t = plan[i];
            var spec = specs[i];
            int index = i;
            var data = GgufTensorData.FromCallback(stream =>
            {
                int columns = checked((int)t.Dimensions[0]);
                long rows = t.Elements / columns;
                TensorEncoder.Write(stream, rows, columns, t.To, Rows(spec, o.Seed, p.LayerCount, ropeFactors), o.Threads, n =>
                {
                    done += n * columns;
                    o.Progress?.Invoke(new WriteProgress(index, plan.Count, t, done, total, false));
                });
                o.Progress?.Invoke(new WriteProgress(index, plan.Count, t, done, total, true));
            });
            tensors.Add(new GgufTensorToWrite(t.Name, t.Dimensions, t.To, data));
        }
        GgufWriter.Write(o.OutputPath, Metadata(p, vocab, o.Seed, o.Type.FileType), tensors);
        return new SynthResult(plan, new FileInfo(o.OutputPath).Length, total, Stopwatch.GetElapsedTime(start));
    }

    /// <summary>The tensors of the preset (names and ggml dimensions), in converter order.</summary>
    static List<Spec> Tensors(SyntheticPreset p)
    {
        int d = p.EmbeddingLength, hd = p.EffectiveHeadDim, q = p.HeadCount * hd, kv = p.HeadCountKv * hd, ff = p.FeedForwardLength;
        var list = new List<Spec> { new("token_embd.weight", [d, p.VocabSize], Init.Weight) };
        for (int i = 0; i < p.LayerCount; i++)
        {
            string b = $"blk.{i}.";
            list.Add(new(b + "attn_norm.weight", [d], Init.Norm));
            list.Add(new(b + "attn_q.weight", [d, q], Init.Weight));
            list.Add(new(b + "attn_k.weight", [d, kv], Init.Weight));
            list.Add(new(b + "attn_v.weight", [d, kv], Init.Weight));
            if (p.AttentionBiases)
            {
                list.Add(new(b + "attn_q.bias", [q], Init.Bias));
                list.Add(new(b + "attn_k.bias", [kv], Init.Bias));
                list.Add(new(b + "attn_v.bias", [kv], Init.Bias));
            }
            if (p.QueryKeyNorm)
            {
                list.Add(new(b + "attn_q_norm.weight", [hd], Init.Norm));
                list.Add(new(b + "attn_k_norm.weight", [hd], Init.Norm));
            }
            list.Add(new(b + "attn_output.weight", [q, d], Init.ScaledWeight));
            list.Add(new(b + "ffn_norm.weight", [d], Init.Norm));
            list.Add(new(b + "ffn_gate.weight", [d, ff], Init.Weight));
            list.Add(new(b + "ffn_up.weight", [d, ff], Init.Weight));
            list.Add(new(b + "ffn_down.weight", [ff, d], Init.ScaledWeight));
        }
        list.Add(new("output_norm.weight", [d], Init.Norm));
        if (!p.TiedEmbeddings) list.Add(new("output.weight", [d, p.VocabSize], Init.Weight));
        if (p.RopeScaling is not null) list.Add(new("rope_freqs.weight", [hd / 2], Init.RopeFactors));
        return list;
    }

    /// <summary>The preset's tensors as they will be written for <paramref name="type"/> (for checking shapes without writing).</summary>
    public static IReadOnlyList<TensorPlan> Plan(SyntheticPreset p, QuantizationType type) => Build(p, type).Plan;

    /// <summary>The tensors in llama-quantize's order (so that quantizing the F32 file gives the same file as synthesizing the type) with their types.</summary>
    static (List<Spec> Specs, List<TensorPlan> Plan) Build(SyntheticPreset p, QuantizationType type)
    {
        var specs = TensorTypePolicy.ProcessingOrder(Tensors(p), s => s.Name);
        var shapes = specs.Select(s => new TensorShape(s.Name, s.Dimensions, GgmlType.F32)).ToList();
        var facts = new ModelFacts
        {
            Architecture = p.Architecture, LayerCount = p.LayerCount, HeadCount = p.HeadCount, HeadCountKv = p.HeadCountKv, TiedEmbeddings = p.TiedEmbeddings,
        };
        var types = TensorTypePolicy.Choose(facts, type, shapes, pure: false, out _);
        return (specs, specs.Select((s, i) => new TensorPlan(s.Name, s.Dimensions, GgmlType.F32, types[i])).ToList());
    }

    /// <summary>Rows of one tensor. Each row has its own generator, seeded from (seed, tensor name, row), so the values do not depend on threads or chunking.</summary>
    static RowSource Rows(Spec spec, ulong seed, int layers, float[]? ropeFactors)
    {
        int columns = checked((int)spec.Dimensions[0]);
        ulong nameHash = Fnv1a(spec.Name);
        float sigma = spec.Init switch
        {
            Init.Weight => 1 / MathF.Sqrt(columns),
            Init.ScaledWeight => 1 / MathF.Sqrt(columns) / MathF.Sqrt(2 * layers),
            _ => 0.02f,
        };
        float mean = spec.Init == Init.Norm ? 1 : 0;
        return (first, count, destination) =>
        {
            if (spec.Init == Init.RopeFactors) { ropeFactors.AsSpan().CopyTo(destination); return; }
            for (int r = 0; r < count; r++)
            {
                ulong state = seed ^ (nameHash * 0x9E3779B97F4A7C15UL) ^ ((ulong)(first + r) * 0xD1B54A32D192ED03UL);
                FillNormal(ref state, destination.Slice(r * columns, columns), mean, sigma);
            }
        };
    }

    /// <summary>N(mean, sigma) by the Box–Muller transform over a SplitMix64 stream.</summary>
    static void FillNormal(ref ulong state, Span<float> x, float mean, float sigma)
    {
        for (int i = 0; i < x.Length; i += 2)
        {
            float u1 = ((SplitMix64(ref state) >> 40) + 1) * (1f / (1 << 24)); // (0, 1]
            float u2 = (SplitMix64(ref state) >> 40) * (1f / (1 << 24));       // [0, 1)
            float radius = MathF.Sqrt(-2 * MathF.Log(u1)) * sigma;
            var (sin, cos) = MathF.SinCos(2 * MathF.PI * u2);
            x[i] = mean + radius * cos;
            if (i + 1 < x.Length) x[i + 1] = mean + radius * sin;
        }
    }

    static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong Fnv1a(string s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in s) { h ^= c; h *= 0x100000001B3UL; }
        return h;
    }

    public const string ChatMlTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>The metadata, in converter order; general.quantization_version and general.file_type last, as llama-quantize leaves them.</summary>
    static List<KeyValuePair<string, GgufValue>> Metadata(SyntheticPreset p, BpeVocabulary vocab, ulong seed, LlamaFileType fileType)
    {
        string a = p.Architecture;
        int Id(string text) => vocab.IdOf(text) ?? throw new ArgumentException($"the tokenizer has no '{text}' token");
        var m = new List<KeyValuePair<string, GgufValue>>();
        void Add(string key, GgufValue value) => m.Add(new(key, value));
        Add("general.architecture", GgufValue.Of(a));
        Add("general.name", GgufValue.Of($"synthetic {p.Name}"));
        Add("general.description", GgufValue.Of($"Random weights (seed {seed}) in the shape of {p.Name}; not a trained model, its text is meaningless." +
            (p.Note is null ? "" : " " + p.Note)));
        Add($"{a}.context_length", GgufValue.Of((uint)p.ContextLength));
        Add($"{a}.embedding_length", GgufValue.Of((uint)p.EmbeddingLength));
        Add($"{a}.block_count", GgufValue.Of((uint)p.LayerCount));
        Add($"{a}.feed_forward_length", GgufValue.Of((uint)p.FeedForwardLength));
        Add($"{a}.attention.head_count", GgufValue.Of((uint)p.HeadCount));
        Add($"{a}.attention.head_count_kv", GgufValue.Of((uint)p.HeadCountKv));
        if (p.EffectiveHeadDim != p.EmbeddingLength / p.HeadCount || p.HeadDim > 0)
        {
            Add($"{a}.attention.key_length", GgufValue.Of((uint)p.EffectiveHeadDim));
            Add($"{a}.attention.value_length", GgufValue.Of((uint)p.EffectiveHeadDim));
        }
        Add($"{a}.rope.freq_base", GgufValue.Of(p.RopeFreqBase));
        if (a == "llama")
        {
            Add($"{a}.rope.dimension_count", GgufValue.Of((uint)p.EffectiveHeadDim));
            Add($"{a}.vocab_size", GgufValue.Of((uint)p.VocabSize));
        }
        Add($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(p.RmsEps));
        Add("tokenizer.ggml.model", GgufValue.Of("gpt2"));
        Add("tokenizer.ggml.pre", GgufValue.Of("qwen2"));
        Add("tokenizer.ggml.tokens", GgufValue.Of(vocab.Tokens));
        Add("tokenizer.ggml.token_type", GgufValue.Of(vocab.TokenTypes));
        Add("tokenizer.ggml.merges", GgufValue.Of(vocab.Merges));
        Add("tokenizer.ggml.eos_token_id", GgufValue.Of((uint)Id("<|im_end|>")));
        Add("tokenizer.ggml.padding_token_id", GgufValue.Of((uint)Id("<|endoftext|>")));
        Add("tokenizer.ggml.bos_token_id", GgufValue.Of((uint)Id("<|endoftext|>")));
        Add("tokenizer.ggml.add_bos_token", GgufValue.Of(false));
        Add("tokenizer.chat_template", GgufValue.Of(ChatMlTemplate));
        Add("general.quantization_version", GgufValue.Of(ModelQuantizer.QuantizationVersion));
        Add("general.file_type", GgufValue.Of((uint)fileType));
        return m;
    }
}
