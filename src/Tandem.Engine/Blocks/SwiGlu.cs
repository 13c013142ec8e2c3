using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tandem.Engine.Blocks;

/// <summary>
/// gate ← silu(gate) · up, with silu(x) = x / (1 + e^(−x)), computed as llama.cpp's AVX-512 build computes it:
/// whole groups of 16 use ggml's polynomial e^x (<see cref="ExpApprox"/>), the tail uses the C library's expf.
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
            g[i] = x / (1f + ExpApprox(0f - x)) * u[i];
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
            var silu = x / (Vector512<float>.One + ExpApprox(Vector512<float>.Zero - x));
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

    /// <summary>
    /// ggml_v_expf: e^x by range reduction to 2^n · e^b and a degree-5 polynomial, every step a single rounding or
    /// a fused multiply-add as in its vector code; |n| &gt; 192 saturates to +∞ or 0.
    /// </summary>
    public static float ExpApprox(float x)
    {
        float z = MathF.FusedMultiplyAdd(x, Log2E, Shift);
        float n = z - Shift;
        float b = MathF.FusedMultiplyAdd(-n, Ln2Low, MathF.FusedMultiplyAdd(-n, Ln2High, x));
        if (MathF.Abs(n) > 192f) return n <= 0f ? 0f : float.PositiveInfinity;
        float u = b * b;
        float j = MathF.FusedMultiplyAdd(
            MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(C5, b, C4), u, MathF.FusedMultiplyAdd(C3, b, C2)),
            u,
            MathF.FusedMultiplyAdd(C1, b, 1.0f));
        return MathF.ScaleB(j, (int)n);
    }

    /// <summary><see cref="ExpApprox(float)"/> in 16 lanes, step for step (vscalefps is ggml's 2^n scaling). Needs AVX-512F.</summary>
    public static Vector512<float> ExpApprox(Vector512<float> x)
    {
        var shift = Vector512.Create(Shift);
        var n = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), shift) - shift;
        var b = Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2Low), Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2High), x));
        var u = b * b;
        var j = Vector512.FusedMultiplyAdd(
            Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.Create(C5), b, Vector512.Create(C4)), u,
                Vector512.FusedMultiplyAdd(Vector512.Create(C3), b, Vector512.Create(C2))),
            u,
            Vector512.FusedMultiplyAdd(Vector512.Create(C1), b, Vector512<float>.One));
        var result = Avx512F.Scale(j, n);
        var saturated = Vector512.GreaterThan(Vector512.Abs(n), Vector512.Create(192f));
        if (saturated == Vector512<float>.Zero) return result;
        var limit = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(n, Vector512<float>.Zero), Vector512<float>.Zero, Vector512.Create(float.PositiveInfinity));
        return Vector512.ConditionalSelect(saturated, limit, result);
    }

    // ggml's constants, by bit pattern (C# has no hexadecimal float literals).
    static readonly float Shift = BitConverter.Int32BitsToSingle(0x4b400000);   // 0x1.8p23
    static readonly float Log2E = BitConverter.Int32BitsToSingle(0x3fb8aa3b);   // 0x1.715476p+0
    static readonly float Ln2High = BitConverter.Int32BitsToSingle(0x3f317200); // 0x1.62e4p-1
    static readonly float Ln2Low = BitConverter.Int32BitsToSingle(0x35bfbe8e);  // 0x1.7f7d1cp-20
    static readonly float C1 = BitConverter.Int32BitsToSingle(0x3f7ffff6);      // 0x1.ffffecp-1
    static readonly float C2 = BitConverter.Int32BitsToSingle(0x3efffedb);      // 0x1.fffdb6p-2
    static readonly float C3 = BitConverter.Int32BitsToSingle(0x3e2aaf33);      // 0x1.555e66p-3
    static readonly float C4 = BitConverter.Int32BitsToSingle(0x3d2b9f17);      // 0x1.573e2ep-5
    static readonly float C5 = BitConverter.Int32BitsToSingle(0x3c072010);      // 0x1.0e4020p-7
}
