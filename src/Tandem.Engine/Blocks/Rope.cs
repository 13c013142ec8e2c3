namespace Tandem.Engine.Blocks;

/// <summary>
/// How positions become angles: base frequency, linear interpolation (<see cref="FreqScale"/> = 1/factor), optional
/// per-pair frequency divisors (Llama 3.1's rope_freqs), and YaRN (<see cref="ExtFactor"/> 1, ramp between
/// <see cref="CorrLow"/> and <see cref="CorrHigh"/>, magnitude <see cref="AttnFactor"/>), with llama.cpp's meanings.
/// </summary>
public sealed record RopeParameters(int Dimensions, float FreqBase, float FreqScale, float ExtFactor, float AttnFactor, float CorrLow, float CorrHigh)
{
    public static RopeParameters Plain(int dimensions, float freqBase) => new(dimensions, freqBase, 1f, 0f, 1f, 0f, 0f);

    /// <summary>ggml_rope_yarn_corr_dims: the pair indices where YaRN's ramp from interpolation to extrapolation starts and ends.</summary>
    public static (float Low, float High) YarnCorrectionDims(int dims, int originalContext, float freqBase, float betaFast, float betaSlow)
    {
        static float CorrDim(int dims, int originalContext, float rotations, float freqBase) =>
            dims * MathF.Log(originalContext / (rotations * 2 * MathF.PI)) / (2 * MathF.Log(freqBase));
        float start = MathF.Floor(CorrDim(dims, originalContext, betaFast, freqBase));
        float end = MathF.Ceiling(CorrDim(dims, originalContext, betaSlow, freqBase));
        return (MathF.Max(0, start), MathF.Min(dims - 1, end));
    }
}

/// <summary>
/// Rotary position embedding. Angles follow ggml: θ₀ = pos, θᵢ₊₁ = θᵢ · base^(−2/n_dims) (an iterated float
/// product, reproduced so results match llama.cpp bit for bit), divided by optional per-pair frequency factors,
/// scaled, and blended with YaRN.
/// </summary>
public static class Rope
{
    /// <summary>Fills cos/sin (length n_dims/2) for one position.</summary>
    public static void Angles(int position, RopeParameters p, float[]? factors, Span<float> cos, Span<float> sin)
    {
        float thetaScale = MathF.Pow(p.FreqBase, -2.0f / p.Dimensions);
        float thetaBase = position;
        for (int i = 0; i < p.Dimensions / 2; i++)
        {
            float extrapolated = factors is null ? thetaBase : thetaBase / factors[i];
            float interpolated = p.FreqScale * extrapolated;
            float theta = interpolated, magnitude = p.AttnFactor;
            if (p.ExtFactor != 0f)
            {
                float mix = Ramp(p.CorrLow, p.CorrHigh, 2 * i) * p.ExtFactor;
                // GCC contracts ggml's interp·(1−mix) + extrap·mix and 1 + 0.1·ln(1/scale) into fused multiply-adds.
                theta = MathF.FusedMultiplyAdd(interpolated, 1 - mix, extrapolated * mix);
                magnitude *= MathF.FusedMultiplyAdd(0.1f, MathF.Log(1.0f / p.FreqScale), 1.0f);
            }
            cos[i] = MathF.Cos(theta) * magnitude;
            sin[i] = MathF.Sin(theta) * magnitude;
            thetaBase *= thetaScale;
        }
    }

    static float Ramp(float low, float high, int i0)
    {
        float y = (i0 / 2 - low) / MathF.Max(0.001f, high - low);
        return 1 - MathF.Min(1, MathF.Max(0, y));
    }

    /// <summary>Rotates the first <paramref name="dims"/> elements of one head in place.</summary>
    public static void Apply(Span<float> head, int dims, RopeLayout layout, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = dims / 2;
        for (int i = 0; i < half; i++)
        {
            int a = layout == RopeLayout.Normal ? 2 * i : i;
            int b = layout == RopeLayout.Normal ? 2 * i + 1 : i + half;
            float x0 = head[a], x1 = head[b];
            // GCC contracts ggml's x0·cos − x1·sin into a fused multiply-add around the rounded second product;
            // doing the same keeps Q and K bit-identical to llama.cpp's.
            head[a] = MathF.FusedMultiplyAdd(x0, cos[i], -(x1 * sin[i]));
            head[b] = MathF.FusedMultiplyAdd(x0, sin[i], x1 * cos[i]);
        }
    }
}
