namespace Tandem.Engine.Blocks;

/// <summary>gate ← silu(gate) · up, with silu(x) = x / (1 + e^(−x)).</summary>
public static class SwiGlu
{
    public static void Apply(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
