namespace Tandem.Engine.Sampling;

/// <summary>
/// How the next token is chosen from the logits. Defaults follow llama.cpp's.
/// The chain is applied in llama.cpp's default order:
/// penalties → top-k → top-p → min-p → temperature → random draw.
/// </summary>
public sealed record SamplerOptions
{
    /// <summary>Divides the logits before the draw; &lt;= 0 means greedy (argmax after penalties).</summary>
    public float Temperature { get; init; } = 0.8f;
    /// <summary>Keep only the K most likely tokens; &lt;= 0 keeps all.</summary>
    public int TopK { get; init; } = 40;
    /// <summary>Keep the smallest set of most likely tokens whose probabilities sum to at least P; &gt;= 1 keeps all.</summary>
    public float TopP { get; init; } = 0.95f;
    /// <summary>Drop tokens whose probability is below MinP × the top token's probability; &lt;= 0 keeps all.</summary>
    public float MinP { get; init; } = 0.05f;
    /// <summary>Divides positive (multiplies negative) logits of tokens seen in the last <see cref="RepeatLastN"/>; 1 = off.</summary>
    public float RepeatPenalty { get; init; } = 1.0f;
    /// <summary>How many of the most recent tokens the penalties look at; 0 = off.</summary>
    public int RepeatLastN { get; init; } = 64;
    /// <summary>Subtracted once from the logit of every token seen in the window; 0 = off.</summary>
    public float PresencePenalty { get; init; }
    /// <summary>Subtracted per occurrence in the window; 0 = off.</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>Seed of the sampler's own PRNG; null picks a random one (see <see cref="Sampler.Seed"/>).</summary>
    public ulong? Seed { get; init; }

    public bool IsGreedy => Temperature <= 0;

    /// <summary>Argmax decoding with no penalties.</summary>
    public static SamplerOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first out-of-range setting.</summary>
    public void Validate()
    {
        if (float.IsNaN(Temperature)) throw new ArgumentException("temperature must be a number");
        if (float.IsNaN(TopP) || TopP <= 0) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}");
        if (float.IsNaN(MinP) || MinP > 1) throw new ArgumentException($"min-p must be in [0, 1], got {MinP}");
        if (float.IsNaN(RepeatPenalty) || RepeatPenalty <= 0) throw new ArgumentException($"repeat penalty must be > 0, got {RepeatPenalty}");
        if (RepeatLastN < 0) throw new ArgumentException($"repeat-last-n must be >= 0, got {RepeatLastN}");
    }
}
