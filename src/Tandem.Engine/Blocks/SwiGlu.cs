using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

using Tandem.Engine.Kernels;

namespace Tandem.Engine.Blocks;

/// <summary>
/// gate ← silu(gate) · up, with silu(x) = x / (1 + e^(−x)), computed as llama.cpp's AVX-512 build computes it:
/// whole groups of 16 use ggml's polynomial e^x (<see cref="ExpLanes.Ggml"/>), the tail uses the C library's expf.
/// Matching its e^x to the last bit keeps the FFN output identical to llama.cpp's.
/// </summary>
public static class SwiGlu
{
    const int Lanes = 16;

    public static void Apply(Span<float> gate, ReadOnlySpan<float> up) => Apply(gate, up, gate.Length);

    /// <summary>Applies to <paramref name="rows"/> rows of <paramref name="width"/> elements (the 16-wide grouping restarts on each row, as ggml's per-row loop does).</summary>
    public static void Apply(Span<float> gate, ReadOnlySpan<float> up, int width)
    {
        for (int start = 0; start < gate.Length; start += width)
        {
            var g = gate.Slice(start, width);
            var u = up.Slice(start, width);
            int i = Avx512F.IsSupported ? Groups512(g, u) : Groups(g, u);
            Tail(g, u, i);
        }
    }

    /// <summary>The scalar reference of <see cref="Apply(Span{float}, ReadOnlySpan{float}, int)"/>, one element at a time.</summary>
    public static void ApplyReference(Span<float> gate, ReadOnlySpan<float> up, int width)
    {
        for (int start = 0; start < gate.Length; start += width)
        {
            var g = gate.Slice(start, width);
            var u = up.Slice(start, width);
            Tail(g, u, Groups(g, u));
        }
    }

    /// <summary>The whole groups of 16, one element at a time; returns where the tail starts.</summary>
    static int Groups(Span<float> g, ReadOnlySpan<float> u)
    {
        int whole = g.Length / Lanes * Lanes;
        for (int i = 0; i < whole; i++)
        {
            float x = g[i];
            g[i] = x / (1f + ExpLanes.GgmlReference(0f - x)) * u[i];
        }
        return whole;
    }

    /// <summary>The whole groups of 16 as ggml's AVX-512 ggml_v_silu computes them, 16 lanes at a time (e^x was a
    /// quarter of a feed-forward prepare's time done one lane at a time).</summary>
    static int Groups512(Span<float> g, ReadOnlySpan<float> u)
    {
        ref float gate = ref MemoryMarshal.GetReference(g);
        ref float up = ref MemoryMarshal.GetReference(u);
        int whole = g.Length / Lanes * Lanes;
        for (int i = 0; i < whole; i += Lanes)
        {
            var x = Vector512.LoadUnsafe(ref gate, (nuint)i);
            var silu = x / (Vector512<float>.One + ExpLanes.Ggml(Vector512<float>.Zero - x));
            (silu * Vector512.LoadUnsafe(ref up, (nuint)i)).StoreUnsafe(ref gate, (nuint)i);
        }
        return whole;
    }

    static void Tail(Span<float> g, ReadOnlySpan<float> u, int from)
    {
        for (int i = from; i < g.Length; i++)
        {
            float x = g[i];
            g[i] = x / (1f + MathF.Exp(-x)) * u[i];
        }
    }
}
