using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tandem.Engine.Kernels;

/// <summary>
/// <c>expf</c> on 16 lanes with the results of glibc's x86-64 FMA build (<c>__expf_fma</c>), which is what
/// <see cref="MathF.Exp"/> and llama.cpp's attention call on Linux: x·32/ln2 = k + r in double with fused multiply-adds,
/// 2^(k/32) from a 32-entry table shifted into the exponent, a cubic in r, rounded once to float. Attention needs one
/// exp per cached position per head, and one call at a time cost as much as the rest of a position's work.
/// Arguments at or below −103.28, and −∞, take glibc's underflow results (the smallest subnormal down to −103.97, then 0).
/// A lane at or above 88 or NaN is handed to <see cref="MathF.Exp"/> (attention's arguments are never positive).
/// <see cref="Exact"/> is false, and callers use <see cref="MathF.Exp"/>, where this platform's <c>expf</c> disagrees
/// with the form on a probe of arguments across the whole range (another C library, or no FMA).
/// <see cref="Ggml"/> is the other exp llama.cpp uses: ggml's own vector approximation, in its softmax.
/// </summary>
public static class ExpLanes
{
    static readonly Vector512<ulong> Table0, Table1, Table2, Table3;
    const double InvLn2Scaled = 46.16624130844683; // 32/ln 2 as glibc rounds it (0x40471547652b82fe)
    const double Shift = 6755399441055744.0;        // 0x1.8p52: adding it rounds to an integer held in the low mantissa bits
    static readonly double C0 = BitConverter.Int64BitsToDouble(0x3ebc6af84b912394), C1 = BitConverter.Int64BitsToDouble(0x3f2ebfce50fac4f3),
        C2 = BitConverter.Int64BitsToDouble(0x3f962e42ff0c52d6);

    /// <summary>Whether <see cref="Exp"/> equals <see cref="MathF.Exp"/> here (checked once on a probe of arguments).</summary>
    public static bool Exact { get; }

    static ExpLanes()
    {
        // 2^(i/32) with i·2^47 taken out, so that adding k·2^47 (k's low five bits being i) builds 2^(k/32).
        var table = new ulong[32];
        for (int i = 0; i < 32; i++) table[i] = (ulong)BitConverter.DoubleToInt64Bits(Math.Pow(2, i / 32.0)) - ((ulong)i << 47);
        Table0 = Vector512.Create(table, 0);
        Table1 = Vector512.Create(table, 8);
        Table2 = Vector512.Create(table, 16);
        Table3 = Vector512.Create(table, 24);
        Exact = Avx512F.IsSupported && Probe();
    }

    static bool Probe()
    {
        Span<float> lanes = stackalloc float[16];
        for (int i = 0; i < 4096; i++)
        {
            for (int l = 0; l < 16; l++) lanes[l] = -104.5f + (i * 16 + l) * (192.5f / 65536) + l * 1e-5f;
            var e = Exp(Vector512.Create<float>(lanes));
            for (int l = 0; l < 16; l++)
                if (BitConverter.SingleToInt32Bits(e[l]) != BitConverter.SingleToInt32Bits(MathF.Exp(lanes[l]))) return false;
        }
        return true;
    }

    /// <summary>e^x per lane, bit for bit glibc's <c>__expf_fma</c> (requires AVX-512F).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var bits = x.AsUInt32();
        // glibc's fast path covers |x| < 88 (exponent field ≤ 0x42a); below it only the underflow cases, handled here.
        var large = Vector512.GreaterThan(Vector512.ShiftRightLogical(bits, 20) & Vector512.Create(0x7ffu), Vector512.Create(0x42au));
        var negativeLarge = large & Vector512.LessThan(x, Vector512.Create(-88f)).AsUInt32();
        if (!Vector512.EqualsAll(large, negativeLarge)) return Scalar(x);
        var y = Vector512.Create(Avx512F.ConvertToVector256Single(Core(Avx512F.ConvertToVector512Double(x.GetLower()))),
            Avx512F.ConvertToVector256Single(Core(Avx512F.ConvertToVector512Double(x.GetUpper()))));
        if (negativeLarge == Vector512<uint>.Zero) return y;
        // −103.28 ≤ x < −88 keeps the formula; down to −103.97 glibc returns its "may underflow" value, the smallest
        // subnormal; below that (and −∞) zero.
        var mayUnderflow = Vector512.LessThan(x, Vector512.Create(-103.27892f));
        var underflow = Vector512.LessThan(x, Vector512.Create(-103.97208f));
        y = Vector512.ConditionalSelect(mayUnderflow, Vector512.Create(float.Epsilon), y);
        return Vector512.ConditionalSelect(underflow, Vector512<float>.Zero, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<double> Core(Vector512<double> x)
    {
        var shifted = Vector512.FusedMultiplyAdd(Vector512.Create(InvLn2Scaled), x, Vector512.Create(Shift));
        var k = shifted.AsUInt64();
        var kd = shifted - Vector512.Create(Shift);
        var r = Vector512.FusedMultiplyAdd(Vector512.Create(InvLn2Scaled), x, -kd);
        // The table entry for k's low five bits: two 16-entry permutes, chosen by bit 4.
        var entry = Vector512.ConditionalSelect(Vector512.Equals(k & Vector512.Create(16ul), Vector512<ulong>.Zero),
            Avx512F.PermuteVar8x64x2(Table0, k, Table1), Avx512F.PermuteVar8x64x2(Table2, k, Table3));
        var s = (entry + (k << 47)).AsDouble();
        var z = Vector512.FusedMultiplyAdd(r, Vector512.Create(C0), Vector512.Create(C1));
        var r2 = r * r;
        var y = Vector512.FusedMultiplyAdd(r, Vector512.Create(C2), Vector512.Create(1.0));
        y = Vector512.FusedMultiplyAdd(z, r2, y);
        return y * s;
    }

    static Vector512<float> Scalar(Vector512<float> x)
    {
        Span<float> lanes = stackalloc float[16];
        for (int l = 0; l < 16; l++) lanes[l] = MathF.Exp(x[l]);
        return Vector512.Create<float>(lanes);
    }

    // ggml_v_expf's constants (AVX-512 form): 1.5·2^23 to round to an integer, log2 e, ln 2 in two parts, and the
    // polynomial's coefficients, as their float bit patterns.
    static readonly float Round = BitConverter.Int32BitsToSingle(0x4b400000), Log2E = BitConverter.Int32BitsToSingle(0x3fb8aa3b),
        Ln2Low = BitConverter.Int32BitsToSingle(0x35bfbe8e), Ln2High = BitConverter.Int32BitsToSingle(0x3f317200),
        P5 = BitConverter.Int32BitsToSingle(0x3c072010), P4 = BitConverter.Int32BitsToSingle(0x3d2b9f17),
        P3 = BitConverter.Int32BitsToSingle(0x3e2aaf33), P2 = BitConverter.Int32BitsToSingle(0x3efffedb),
        P1 = BitConverter.Int32BitsToSingle(0x3f7ffff6);

    /// <summary>
    /// ggml's vector exp (ggml_v_expf, AVX-512 form), which its softmax uses: x = n·ln 2 + b with n an integer, a
    /// degree-5 polynomial in b, scaled by 2^n; |n| &gt; 192 gives 0 or ∞. Requires AVX-512F.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Ggml(Vector512<float> x)
    {
        var round = Vector512.Create(Round);
        var n = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), round) - round;
        var b = Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2Low), Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2High), x));
        var u = b * b;
        var j = Vector512.FusedMultiplyAdd(
            Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.Create(P5), b, Vector512.Create(P4)), u,
                Vector512.FusedMultiplyAdd(Vector512.Create(P3), b, Vector512.Create(P2))),
            u, Vector512.FusedMultiplyAdd(Vector512.Create(P1), b, Vector512<float>.One));
        var result = Avx512F.Scale(j, n);
        var outside = Vector512.GreaterThan(Vector512.Abs(n), Vector512.Create(192f));
        if (outside == Vector512<float>.Zero) return result;
        var limit = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(n, Vector512<float>.Zero), Vector512<float>.Zero, Vector512.Create(float.PositiveInfinity));
        return Vector512.ConditionalSelect(outside, limit, result);
    }

    /// <summary>The scalar reference of <see cref="Ggml"/>: the same operations on one float, 2^n applied exactly in double
    /// and rounded once, as the scale instruction does.</summary>
    public static float GgmlReference(float x)
    {
        float n = MathF.FusedMultiplyAdd(x, Log2E, Round) - Round;
        float b = MathF.FusedMultiplyAdd(-n, Ln2Low, MathF.FusedMultiplyAdd(-n, Ln2High, x));
        float u = b * b;
        float j = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(P5, b, P4), u, MathF.FusedMultiplyAdd(P3, b, P2)),
            u, MathF.FusedMultiplyAdd(P1, b, 1f));
        if (MathF.Abs(n) > 192f) return n <= 0 ? 0f : float.PositiveInfinity;
        return float.IsNaN(n) ? float.NaN : (float)Math.ScaleB((double)j, (int)n);
    }
}
