using System.Diagnostics;
using System.Text.Json;
using Tandem.Engine;
using Tandem.Gguf;

namespace Tandem.Compression.Pruning;

/// <summary>A device's budget: memory for weights + KV cache + runtime, and (optionally) time to first token for a prompt of PromptTokens on it.
/// SpeedFactor is the device's speed relative to the machine the timings are measured on (0.5 = half as fast).</summary>
public sealed record DeviceProfile(string Name, long MemoryBytes, double? TtftSeconds, int PromptTokens, double SpeedFactor, string Description)
{
    /// <summary>The profiles shipped with Tandem (device-profiles.json, embedded).</summary>
    public static IReadOnlyList<DeviceProfile> Builtin { get; } = LoadBuiltin();

    static IReadOnlyList<DeviceProfile> LoadBuiltin()
    {
        using var s = typeof(DeviceProfile).Assembly.GetManifestResourceStream("Tandem.Compression.device-profiles.json")
            ?? throw new InvalidOperationException("device-profiles.json is not embedded in Tandem.Compression");
        using var doc = JsonDocument.Parse(s);
        return Parse(doc.RootElement, "device-profiles.json");
    }

    /// <summary>A built-in profile by name, or profiles from a user's JSON file (same layout; the first is used).</summary>
    public static DeviceProfile Resolve(string nameOrPath)
    {
        if (Builtin.FirstOrDefault(p => p.Name == nameOrPath) is { } p) return p;
        if (!File.Exists(nameOrPath))
            throw new ArgumentException($"unknown device profile '{nameOrPath}'; expected one of {string.Join(", ", Builtin.Select(b => b.Name))} or a JSON file");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(nameOrPath)); }
        catch (JsonException ex) { throw new ArgumentException($"{nameOrPath}: not valid JSON ({ex.Message})"); }
        using (doc) return Parse(doc.RootElement, nameOrPath)[0];
    }

    /// <summary>{"profiles": [{name, memory_bytes, ttft_seconds?, prompt_tokens?, speed_factor?, description?}, …]} or a single profile object.</summary>
    static List<DeviceProfile> Parse(JsonElement root, string source)
    {
        var items = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("profiles", out var list) ? list.EnumerateArray().ToList() : [root];
        if (items.Count == 0) throw new ArgumentException($"{source}: no profiles");
        var result = new List<DeviceProfile>();
        foreach (var e in items)
        {
            if (e.ValueKind != JsonValueKind.Object) throw new ArgumentException($"{source}: a profile must be a JSON object");
            string name = e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : throw new ArgumentException($"{source}: a profile needs a \"name\"");
            long memory = e.TryGetProperty("memory_bytes", out var m) && m.TryGetInt64(out long mb) && mb > 0 ? mb
                : throw new ArgumentException($"{source}: profile '{name}' needs a positive \"memory_bytes\"");
            double? ttft = e.TryGetProperty("ttft_seconds", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetDouble() : null;
            int prompt = e.TryGetProperty("prompt_tokens", out var pt) && pt.TryGetInt32(out int ptv) && ptv > 0 ? ptv : 128;
            double speed = e.TryGetProperty("speed_factor", out var sf) && sf.ValueKind == JsonValueKind.Number && sf.GetDouble() > 0 ? sf.GetDouble() : 1.0;
            string description = e.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : "";
            result.Add(new DeviceProfile(name, memory, ttft, prompt, speed, description));
        }
        return result;
    }
}

/// <summary>The shape of a llama-family model, enough to count its parameters and cache after pruning.</summary>
public sealed record ModelShape(string Name, int Embd, int Blocks, int Heads, int HeadsKv, int HeadDim, int Ffn, int Vocab, bool TiedOutput, bool QkvBias, bool QkNorm)
{
    /// <summary>Qwen2.5-1.5B's published shape (no weights): the reference case for on-device budgets.</summary>
    public static ModelShape Qwen25_1_5B { get; } = new("qwen2.5-1.5b", 1536, 28, 12, 2, 128, 8960, 151936, TiedOutput: true, QkvBias: true, QkNorm: false)
    {
        QueryHeadsFixed = true,
    };

    /// <summary>Query heads cannot be pruned (qwen2: llama.cpp needs attn_q and attn_output square, so the pruner refuses).</summary>
    public bool QueryHeadsFixed { get; init; }

    public static IReadOnlyDictionary<string, ModelShape> Presets { get; } = new Dictionary<string, ModelShape> { ["qwen2.5-1.5b"] = Qwen25_1_5B };

    public PruneShape Prunable => new(Blocks, Heads, HeadsKv, Ffn);

    public static ModelShape Of(Model model)
    {
        var c = model.Config;
        var f = model.Gguf;
        return new ModelShape(Path.GetFileName(f.Path), c.EmbeddingLength, c.BlockCount, c.HeadCount, c.HeadCountKv, c.HeadDim, c.FeedForwardLength, c.VocabSize,
            TiedOutput: !f.TryGetTensor("output.weight", out _), QkvBias: f.TryGetTensor("blk.0.attn_q.bias", out _), QkNorm: f.TryGetTensor("blk.0.attn_q_norm.weight", out _))
        {
            QueryHeadsFixed = c.Architecture == "qwen2",
        };
    }

    public long Parameters(PruneShape s)
    {
        long q = (long)s.Heads * HeadDim, kv = (long)s.HeadsKv * HeadDim;
        long perBlock = 2L * Embd + Embd * (q + 2 * kv) + q * Embd + 3L * Embd * s.FeedForward + (QkvBias ? q + 2 * kv : 0) + (QkNorm ? 2L * HeadDim : 0);
        return (long)Vocab * Embd * (TiedOutput ? 1 : 2) + Embd + s.Blocks * perBlock;
    }

    /// <summary>The F16 KV cache Tandem allocates for <paramref name="context"/> positions.</summary>
    public long KvBytes(PruneShape s, int context) => 2L * s.Blocks * context * s.HeadsKv * HeadDim * sizeof(short);

    /// <summary>Activation buffers of one session (a batch of the session's default size, logits for the batch) plus the .NET runtime's own footprint.</summary>
    static readonly int DefaultBatch = new Tandem.Engine.SessionOptions().BatchSize;

    public long RuntimeBytes(PruneShape s, int context)
    {
        const long DotNetRuntime = 64L << 20;
        long batch = Math.Min(DefaultBatch, context);
        long perToken = 4L * (3 * Embd + 2 * (long)s.Heads * HeadDim + 2 * (long)s.HeadsKv * HeadDim + 2 * (long)s.FeedForward + Vocab) + 4L * Math.Max(Embd, s.FeedForward);
        return DotNetRuntime + batch * perToken;
    }
}

/// <summary>A weight format and its cost in bits per parameter, as llama-quantize's mixes average out.</summary>
public sealed record WeightFormat(string Name, double BitsPerWeight)
{
    /// <summary>From most to least faithful; the candidates a plan may quantize to.</summary>
    public static IReadOnlyList<WeightFormat> Candidates { get; } =
    [
        new("F16", 16), new("Q8_0", 8.5), new("Q6_K", 6.5625), new("Q5_K_M", 5.69), new("Q4_K_M", 4.89), new("Q3_K_M", 3.91), new("Q2_K", 3.35),
    ];
}

/// <summary>A proposal: quantize to Format, prune to Shape; the predicted memory.</summary>
public sealed record FitPlan(WeightFormat Format, PruneShape Shape, long Parameters, long WeightBytes, long KvBytes, long RuntimeBytes)
{
    public long TotalBytes => WeightBytes + KvBytes + RuntimeBytes;
}

/// <summary>Measured speed on this machine, and scaled to the device.</summary>
public sealed record FitTimings(int PromptTokens, double TtftSeconds, double DecodeTokensPerSecond, double DeviceTtftSeconds, double DeviceDecodeTokensPerSecond);

/// <summary>What <c>tandem fit</c> found: the model's memory now, the timings (when a model file was measured), whether it fits, and a plan when not.</summary>
public sealed record FitReport(ModelShape Model, DeviceProfile Profile, int Context, long WeightBytes, long KvBytes, long RuntimeBytes, FitTimings? Timings,
    bool MemoryFits, bool? TtftFits, FitPlan? Proposal)
{
    public long TotalBytes => WeightBytes + KvBytes + RuntimeBytes;
    public bool Fits => MemoryFits && TtftFits != false;
}

public static class DeviceFit
{
    /// <summary>Measures a model file against a profile: memory from its tensors, TTFT and decode speed by running it.</summary>
    public static FitReport Check(Model model, DeviceProfile profile, int context, int threads)
    {
        var shape = ModelShape.Of(model);
        var timings = Measure(model, profile, context, threads);
        return Report(shape, profile, context, model.WeightBytes, timings);
    }

    /// <summary>A preset shape (no weights): memory only, assuming F16 weights as published.</summary>
    public static FitReport CheckPreset(ModelShape shape, DeviceProfile profile, int context) =>
        Report(shape, profile, context, (long)(shape.Parameters(shape.Prunable) * 2), null);

    static FitReport Report(ModelShape shape, DeviceProfile profile, int context, long weightBytes, FitTimings? timings)
    {
        var s = shape.Prunable;
        long kv = shape.KvBytes(s, context), runtime = shape.RuntimeBytes(s, context);
        bool memoryFits = weightBytes + kv + runtime <= profile.MemoryBytes;
        bool? ttftFits = timings is null || profile.TtftSeconds is null ? null : timings.DeviceTtftSeconds <= profile.TtftSeconds;
        // Only memory is planned for: the time to first token scales with the parameters, so a plan that fits in memory
        // by pruning also shortens it, but that can only be confirmed by measuring the result.
        var proposal = memoryFits && ttftFits != false ? null : Propose(shape, profile, context, ttftFits == false && timings is not null
            ? (long)(shape.Parameters(s) * profile.TtftSeconds!.Value / timings.DeviceTtftSeconds) : long.MaxValue);
        return new FitReport(shape, profile, context, weightBytes, kv, runtime, timings, memoryFits, ttftFits, proposal);
    }

    /// <summary>
    /// The most faithful plan under the profile's memory (and under <paramref name="maxParameters"/>, a parameter budget
    /// from the measured TTFT): quantization first, down to Q4_K_M, without pruning; then Q4_K_M (and below only if
    /// needed) with the least pruning that fits. Measured on stories260K, 8-bit quantization costs far less than any
    /// structured cut (docs/COMPRESSION.md). Null when nothing fits.
    /// </summary>
    public static FitPlan? Propose(ModelShape shape, DeviceProfile profile, int context, long maxParameters = long.MaxValue)
    {
        var original = shape.Prunable;
        FitPlan Make(WeightFormat f, PruneShape s)
        {
            long p = shape.Parameters(s);
            return new FitPlan(f, s, p, (long)Math.Ceiling(p * f.BitsPerWeight / 8), shape.KvBytes(s, context), shape.RuntimeBytes(s, context));
        }
        bool Fits(FitPlan p) => p.TotalBytes <= profile.MemoryBytes && p.Parameters <= maxParameters;

        foreach (var f in WeightFormat.Candidates.TakeWhile(f => f.BitsPerWeight >= 4.5))
            if (Make(f, original) is var plan && Fits(plan)) return plan;
        foreach (var f in WeightFormat.Candidates.Where(f => f.BitsPerWeight < 5))
        {
            FitPlan? best = null;
            for (int drop = 0; drop < original.Blocks / 2; drop++)
                foreach (double hk in shape.QueryHeadsFixed ? [1.0] : new[] { 1, 0.75, 0.5 })
                    for (int pct = 100; pct >= 40; pct -= 5)
                    {
                        var (h, kv) = ModelPruner.HeadShape(original, hk);
                        var plan = Make(f, new PruneShape(original.Blocks - drop, h, kv, ModelPruner.FfnCount(original.FeedForward, pct / 100.0, 256)));
                        if (Fits(plan) && (best is null || plan.Parameters > best.Parameters)) best = plan;
                    }
            if (best is not null) return best;
        }
        return null;
    }

    static FitTimings Measure(Model model, DeviceProfile profile, int context, int threads)
    {
        int promptLength = Math.Min(profile.PromptTokens, context - 16);
        if (promptLength < 1) throw new ArgumentException($"a context of {context} leaves no room for a prompt; use a larger --ctx");
        using var session = model.CreateSession(new SessionOptions(context, threads));
        var prompt = new int[promptLength];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = (i * 7919 + 1) % model.Config.VocabSize; // content does not change the cost
        session.Evaluate(prompt); // once to warm the kernels (JIT tiers), so the timing is the steady state
        session.Truncate(0);
        long start = Stopwatch.GetTimestamp();
        session.Evaluate(prompt);
        double ttft = Stopwatch.GetElapsedTime(start).TotalSeconds;
        const int decodeTokens = 16;
        Span<int> one = stackalloc int[1];
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < decodeTokens; i++)
        {
            one[0] = (i * 31 + 3) % model.Config.VocabSize;
            session.Evaluate(one);
        }
        double decodeRate = decodeTokens / Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new FitTimings(promptLength, ttft, decodeRate, ttft / profile.SpeedFactor, decodeRate * profile.SpeedFactor);
    }
}
