using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Multi-token tiles (prefill, batched decode) for the 32-element types with a min, Q4_1 and Q5_1, against Q8_1
/// activations (36-byte blocks: d, s = d·Σq, 32 quants). Each output keeps exactly the order of
/// <see cref="LanesWithMinAvx2{T}"/> (llama.cpp's vec_dot, which it uses for every batch size of these types): eight
/// float lanes fed per block with fma(d_w·d_a, integer lane sum, lane), a separate scalar chain
/// summs = fma(m_w, s_a, summs) over the blocks, and the result hsum_float_8(lanes) + summs. The integer lane sums
/// are exact whichever instructions compute them; the tiles share the Q8_0 tiles' activation layout and store.
/// </summary>
public static unsafe partial class GgmlQ0Dot
{
    const int Q8_1BlockBytes = 36;

    /// <summary>Per output: (hsum_float_8 of its lane half + its min term) + bias, for four registers of two tokens each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StorePairsPlus(float* o, long os, float bias, float* plus,
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        var (s03, s47) = PairHsums(a0, a1, a2, a3);
        o[0] = (s03.GetElement(0) + plus[0]) + bias; o[os] = (s03.GetElement(4) + plus[1]) + bias;
        o[2 * os] = (s03.GetElement(8) + plus[2]) + bias; o[3 * os] = (s03.GetElement(12) + plus[3]) + bias;
        o[4 * os] = (s47.GetElement(0) + plus[4]) + bias; o[5 * os] = (s47.GetElement(4) + plus[5]) + bias;
        o[6 * os] = (s47.GetElement(8) + plus[6]) + bias; o[7 * os] = (s47.GetElement(12) + plus[7]) + bias;
    }

    /// <summary>
    /// A 512-bit step for unsigned weight quants (Q4_1/Q5_1 need no sign trick): two tokens' eight lanes each,
    /// lane = Σ of four products (exact), then fma(d_w·d_a, lane, acc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> UnsignedPairStep(Vector512<byte> x, Vector512<float> dw, Vector512<sbyte> y, Vector512<float> da, Vector512<float> acc)
    {
        var lanes = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(x, y), Vector512.Create((short)1));
        return Avx512F.FusedMultiplyAdd(dw * da, Avx512F.ConvertToVector512Single(lanes), acc);
    }

    /// <summary>Two tokens' Q8_1 activation blocks (d, s, 32 quants) per 64 bytes: their quants side by side, and their
    /// scales broadcast over each half.</summary>
    static void LayOutMinPairs(byte* y0, long ys, int nb, int pairs, Vector512<sbyte>* quants, Vector512<float>* scales)
    {
        for (int ib = 0; ib < nb; ib++)
        {
            byte* y = y0 + ib * (long)Q8_1BlockBytes;
            for (int p = 0; p < pairs; p++)
            {
                byte* first = y + 2 * p * ys, second = first + ys;
                quants[ib * pairs + p] = Vector512.Create(Vector256.Load((sbyte*)first + 4), Vector256.Load((sbyte*)second + 4));
                scales[ib * pairs + p] = Vector512.Create(Vector256.Create(HalfTable.ToF32(*(ushort*)first)), Vector256.Create(HalfTable.ToF32(*(ushort*)second)));
            }
        }
    }

    /// <summary>The tokens' s = d·Σq of each block, one float per token (16 per block), for the min chains.</summary>
    static void LayOutSums(byte* y0, long ys, int nb, int tokens, float* sums)
    {
        for (int ib = 0; ib < nb; ib++)
            for (int t = 0; t < tokens; t++)
                sums[ib * 16 + t] = HalfTable.ToF32(((ushort*)(y0 + t * ys + ib * (long)Q8_1BlockBytes))[1]);
    }

    /// <summary>The min chains of one row for 16 tokens at once (lane = token): per block m = fma(m_w, s_t, m), in block order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> MinChains<T>(byte* row, int nb, float* sums) where T : struct, IBlock32
    {
        var m = Vector512<float>.Zero;
        for (int ib = 0; ib < nb; ib++)
            m = Avx512F.FusedMultiplyAdd(Vector512.Create(HalfTable.ToF32(((ushort*)(row + ib * T.Size))[1])), Vector512.Load(sums + ib * 16), m);
        return m;
    }

    /// <summary>
    /// Q4_1/Q5_1 over rows × tokens with 512-bit registers holding two tokens each, as <see cref="TileAvx512{T, TRow}"/>:
    /// two rows × 16 (then 8) tokens per step over activations laid out once per token group; leftover tokens and an
    /// odd last row go through <see cref="TileWithMinAvx2{T}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileWithMinAvx512<T>(in MatMulOperands op, int rowStart, int rowEnd) where T : struct, IBlock32
    {
        int nb = op.N / 32, tokens = op.Tokens;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        byte* scratch = KernelScratch.Get(nb * 8 * 128L + nb * 64L);
        var quants = (Vector512<sbyte>*)scratch;
        var scales = (Vector512<float>*)(scratch + nb * 8 * 64L);
        var sums = (float*)(scratch + nb * 8 * 128L);
        int t = 0;
        while (t + 8 <= tokens)
        {
            int group = t + 16 <= tokens ? 16 : 8;
            LayOutMinPairs(op.Activations + t * ys, ys, nb, group / 2, quants, scales);
            LayOutSums(op.Activations + t * ys, ys, nb, group, sums);
            if (group == 16) GroupWithMin16<T>(op, t, rowStart, rowEnd, quants, scales, sums);
            else GroupWithMin8<T>(op, t, rowStart, rowEnd, quants, scales, sums);
            t += group;
        }
        if (t < tokens)
            TileWithMinAvx2<T>(op with { Activations = op.Activations + t * ys, Tokens = tokens - t, Output = op.Output + (long)t * os }, rowStart, rowEnd);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GroupWithMin16<T>(in MatMulOperands op, int t, int rowStart, int rowEnd, Vector512<sbyte>* quants, Vector512<float>* scales, float* sums)
        where T : struct, IBlock32
    {
        int nb = op.N / 32, pairedRowEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        long os = op.OutputStride;
        float* mins0 = stackalloc float[16];
        float* mins1 = stackalloc float[16];
        for (int r = rowStart; r < pairedRowEnd; r += 2)
        {
            byte* row0 = op.Weights + r * op.RowBytes, row1 = row0 + op.RowBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
            byte* ahead = row0 + PrefetchSteps * 2 * op.RowBytes;
            for (int ib = 0; ib < nb; ib++)
            {
                byte* w0 = row0 + ib * T.Size, w1 = row1 + ib * T.Size;
                Prefetch(ahead + ib * T.Size, op.RowBytes, rows: 2);
                var x0 = T.Quants(w0).AsByte();
                var x1 = T.Quants(w1).AsByte();
                var q0 = BothHalves(x0);
                var q1 = BothHalves(x1);
                var d0 = Vector512.Create(HalfTable.ToF32(*(ushort*)w0));
                var d1 = Vector512.Create(HalfTable.ToF32(*(ushort*)w1));
                var q = quants + ib * 8;
                var d = scales + ib * 8;
                a0 = UnsignedPairStep(q0, d0, q[0], d[0], a0); b0 = UnsignedPairStep(q1, d1, q[0], d[0], b0);
                a1 = UnsignedPairStep(q0, d0, q[1], d[1], a1); b1 = UnsignedPairStep(q1, d1, q[1], d[1], b1);
                a2 = UnsignedPairStep(q0, d0, q[2], d[2], a2); b2 = UnsignedPairStep(q1, d1, q[2], d[2], b2);
                a3 = UnsignedPairStep(q0, d0, q[3], d[3], a3); b3 = UnsignedPairStep(q1, d1, q[3], d[3], b3);
                a4 = UnsignedPairStep(q0, d0, q[4], d[4], a4); b4 = UnsignedPairStep(q1, d1, q[4], d[4], b4);
                a5 = UnsignedPairStep(q0, d0, q[5], d[5], a5); b5 = UnsignedPairStep(q1, d1, q[5], d[5], b5);
                a6 = UnsignedPairStep(q0, d0, q[6], d[6], a6); b6 = UnsignedPairStep(q1, d1, q[6], d[6], b6);
                a7 = UnsignedPairStep(q0, d0, q[7], d[7], a7); b7 = UnsignedPairStep(q1, d1, q[7], d[7], b7);
            }
            MinChains<T>(row0, nb, sums).Store(mins0);
            MinChains<T>(row1, nb, sums).Store(mins1);
            float* o = op.Output + t * os + r;
            float bias0 = op.Bias is null ? 0f : op.Bias[r], bias1 = op.Bias is null ? 0f : op.Bias[r + 1];
            StorePairsPlus(o, os, bias0, mins0, a0, a1, a2, a3);
            StorePairsPlus(o + 8 * os, os, bias0, mins0 + 8, a4, a5, a6, a7);
            StorePairsPlus(o + 1, os, bias1, mins1, b0, b1, b2, b3);
            StorePairsPlus(o + 1 + 8 * os, os, bias1, mins1 + 8, b4, b5, b6, b7);
        }
        if (pairedRowEnd < rowEnd)
            TileWithMinAvx2<T>(op with { Activations = op.Activations + t * op.ActivationRowBytes, Tokens = 16, Output = op.Output + (long)t * os }, pairedRowEnd, rowEnd);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GroupWithMin8<T>(in MatMulOperands op, int t, int rowStart, int rowEnd, Vector512<sbyte>* quants, Vector512<float>* scales, float* sums)
        where T : struct, IBlock32
    {
        int nb = op.N / 32, pairedRowEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        long os = op.OutputStride;
        float* mins0 = stackalloc float[16];
        float* mins1 = stackalloc float[16];
        for (int r = rowStart; r < pairedRowEnd; r += 2)
        {
            byte* row0 = op.Weights + r * op.RowBytes, row1 = row0 + op.RowBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            byte* ahead = row0 + PrefetchSteps * 2 * op.RowBytes;
            for (int ib = 0; ib < nb; ib++)
            {
                byte* w0 = row0 + ib * T.Size, w1 = row1 + ib * T.Size;
                Prefetch(ahead + ib * T.Size, op.RowBytes, rows: 2);
                var x0 = T.Quants(w0).AsByte();
                var x1 = T.Quants(w1).AsByte();
                var q0 = BothHalves(x0);
                var q1 = BothHalves(x1);
                var d0 = Vector512.Create(HalfTable.ToF32(*(ushort*)w0));
                var d1 = Vector512.Create(HalfTable.ToF32(*(ushort*)w1));
                var q = quants + ib * 4;
                var d = scales + ib * 4;
                a0 = UnsignedPairStep(q0, d0, q[0], d[0], a0); b0 = UnsignedPairStep(q1, d1, q[0], d[0], b0);
                a1 = UnsignedPairStep(q0, d0, q[1], d[1], a1); b1 = UnsignedPairStep(q1, d1, q[1], d[1], b1);
                a2 = UnsignedPairStep(q0, d0, q[2], d[2], a2); b2 = UnsignedPairStep(q1, d1, q[2], d[2], b2);
                a3 = UnsignedPairStep(q0, d0, q[3], d[3], a3); b3 = UnsignedPairStep(q1, d1, q[3], d[3], b3);
            }
            MinChains<T>(row0, nb, sums).Store(mins0);
            MinChains<T>(row1, nb, sums).Store(mins1);
            float* o = op.Output + t * os + r;
            StorePairsPlus(o, os, op.Bias is null ? 0f : op.Bias[r], mins0, a0, a1, a2, a3);
            StorePairsPlus(o + 1, os, op.Bias is null ? 0f : op.Bias[r + 1], mins1, b0, b1, b2, b3);
        }
        if (pairedRowEnd < rowEnd)
            TileWithMinAvx2<T>(op with { Activations = op.Activations + t * op.ActivationRowBytes, Tokens = 8, Output = op.Output + (long)t * os }, pairedRowEnd, rowEnd);
    }

    /// <summary>
    /// Q4_1/Q5_1 over rows × tokens with AVX2: each weight block decoded once for four tokens, every output the same
    /// lane and min chains as <see cref="LanesWithMinAvx2{T}"/>; the last tokens (fewer than four) one dot each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileWithMinAvx2<T>(in MatMulOperands op, int rowStart, int rowEnd) where T : struct, IBlock32
    {
        int nb = op.N / 32, tokens = op.Tokens;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = op.Weights + r * op.RowBytes;
            float bias = op.Bias is null ? 0f : op.Bias[r];
            int t = 0;
            for (; t + 4 <= tokens; t += 4)
            {
                byte* y0 = op.Activations + t * ys, y1 = y0 + ys, y2 = y1 + ys, y3 = y2 + ys;
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
                byte* w = row;
                for (int ib = 0; ib < nb; ib++, w += T.Size)
                {
                    var x = T.Quants(w).AsByte();
                    float dw = HalfTable.ToF32(*(ushort*)w), mw = HalfTable.ToF32(((ushort*)w)[1]);
                    long off = ib * (long)Q8_1BlockBytes;
                    a0 = MinBlockStep(x, dw, y0 + off, a0, mw, ref m0);
                    a1 = MinBlockStep(x, dw, y1 + off, a1, mw, ref m1);
                    a2 = MinBlockStep(x, dw, y2 + off, a2, mw, ref m2);
                    a3 = MinBlockStep(x, dw, y3 + off, a3, mw, ref m3);
                }
                float* o = op.Output + t * os + r;
                o[0] = (Hsum8(a0) + m0) + bias;
                o[os] = (Hsum8(a1) + m1) + bias;
                o[2 * os] = (Hsum8(a2) + m2) + bias;
                o[3 * os] = (Hsum8(a3) + m3) + bias;
            }
            for (; t < tokens; t++)
                op.Output[t * os + r] = LanesWithMinAvx2<T>(row, op.Activations + t * ys, op.N) + bias;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> MinBlockStep(Vector256<byte> x, float dw, byte* y, Vector256<float> acc, float mw, ref float summs)
    {
        summs = MathF.FusedMultiplyAdd(mw, HalfTable.ToF32(((ushort*)y)[1]), summs);
        var lanes = UnsignedDot(Vector256<int>.Zero, x, Vector256.Load((sbyte*)y + 4));
        return Fma.MultiplyAdd(Vector256.Create(dw * HalfTable.ToF32(*(ushort*)y)), Avx.ConvertToVector256Single(lanes), acc);
    }
}
