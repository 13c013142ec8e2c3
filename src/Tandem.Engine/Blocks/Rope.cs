namespace Tandem.Engine.Blocks;

/// <summary>
/// Rotary position embedding. Angles follow ggml: θ₀ = pos, θᵢ₊₁ = θᵢ · base^(−2/n_dims) (an iterated float
/// product, reproduced so results match llama.cpp bit for bit), divided by optional per-pair frequency factors
/// and multiplied by the linear frequency scale.
/// </summary>
public static class Rope
{
    /// <summary>Fills cos/sin (length n_dims/2) for one position.</summary>
    public static void Angles(int position, int dims, float freqBase, float freqScale, float[]? factors, Span<float> cos, Span<float> sin)
    {
        float thetaScale = MathF.Pow(freqBase, -2.0f / dims);
        float theta = position;
        for (int i = 0; i < dims / 2; i++)
        {
            float t = freqScale * (factors is null ? theta : theta / factors[i]);
            cos[i] = MathF.Cos(t);
            sin[i] = MathF.Sin(t);
            theta *= thetaScale;
        }
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
