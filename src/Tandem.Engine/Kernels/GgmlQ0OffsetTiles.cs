using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>A 32-element block whose quants are an unsigned value minus a fixed offset (Q4_0: q − 8, Q5_0: q − 16).</summary>
public unsafe interface IOffsetBlock32 : GgmlQ0Dot.IBlock32
{
    /// <summary>The block's quants before the offset is subtracted, 0..2^bits−1.</summary>
    static abstract Vector256<byte> Unsigned(byte* blk);
    static abstract byte Offset { get; }
}

public static unsafe partial class GgmlQ0Dot
{
    public partial struct Q4_0Block : IOffsetBlock32
    {
        public static byte Offset => 8;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Unsigned(byte* blk) => Nibbles(((BlockQ4_0*)blk)->Qs).AsByte();
    }

    public partial struct Q5_0Block : IOffsetBlock32
    {
        public static byte Offset => 16;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Unsigned(byte* blk)
        {
            var b = (BlockQ5_0*)blk;
            return Nibbles(b->Qs).AsByte() | (BitsToBytes(b->Qh) & Vector256.Create((byte)0x10));
        }
    }

    // Per block of a token group, per pair of tokens: their quants (64 bytes), their scales broadcast over each half
    // (64 bytes), and offset × the sum of each lane's four quants (64 bytes).
    const long OffsetPairBytes = 192;

    /// <summary>
    /// <see cref="TileAvx512{T}"/> for the offset types, with the offset taken out of the weights: a lane of the vec_dot
    /// is Σ (q − o)·y over four elements, which is exactly Σ q·y − o·Σ y. The unsigned q go straight into the unsigned
    /// operand of the byte multiply (no sign transfer per row and token), and o·Σ y is computed once per token group, not
    /// once per row. The integer lanes are the vec_dot's, so every output keeps its FMA chain bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileOffsetAvx512<T>(in MatMulOperands op, int rowStart, int rowEnd) where T : struct, IOffsetBlock32
    {
        int nb = op.N / 32, tokens = op.Tokens;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        byte* layout = KernelScratch.Get(nb * 8 * OffsetPairBytes);
        int t = 0;
        for (; t + 16 <= tokens; t += 16)
        {
            LayOutOffsetPairs(op.Activations + t * ys, ys, nb, pairs: 8, T.Offset, layout);
            OffsetGroup16<T>(op, t, rowStart, rowEnd, layout);
        }
        if (t + 8 <= tokens)
        {
            LayOutOffsetPairs(op.Activations + t * ys, ys, nb, pairs: 4, T.Offset, layout);
            OffsetGroup8<T>(op, t, rowStart, rowEnd, layout);
            t += 8;
        }
        if (t < tokens)
            TileAvx2<T>(op with { Activations = op.Activations + t * ys, Tokens = tokens - t, Output = op.Output + (long)t * os }, rowStart, rowEnd);
    }

    static void LayOutOffsetPairs(byte* y0, long ys, int nb, int pairs, byte offset, byte* layout)
    {
        var o = Vector512.Create(offset);
        var ones = Vector512.Create((short)1);
        for (int ib = 0; ib < nb; ib++)
        {
            byte* y = y0 + ib * 34L;
            for (int p = 0; p < pairs; p++, layout += OffsetPairBytes)
            {
                var q = PairQuants(y + 2 * p * ys, y + (2 * p + 1) * ys);
                *(Vector512<sbyte>*)layout = q;
                *(Vector512<float>*)(layout + 64) = PairScales(y + 2 * p * ys, y + (2 * p + 1) * ys);
                *(Vector512<int>*)(layout + 128) = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(o, q), ones);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> OffsetStep(Vector512<byte> q, Vector512<float> dw, byte* pair, Vector512<short> ones, Vector512<float> acc)
    {
        var sums = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, *(Vector512<sbyte>*)pair), ones) - *(Vector512<int>*)(pair + 128);
        return Avx512F.FusedMultiplyAdd(dw * *(Vector512<float>*)(pair + 64), Avx512F.ConvertToVector512Single(sums), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<byte> WideUnsigned<T>(byte* w) where T : struct, IOffsetBlock32
    {
        var q = T.Unsigned(w);
        return Vector512.Create(q, q);
    }

    /// <summary>Sixteen tokens (eight pairs) × two rows per step; an odd last row goes through the AVX2 tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void OffsetGroup16<T>(in MatMulOperands op, int t, int rowStart, int rowEnd, byte* layout) where T : struct, IOffsetBlock32
    {
        int nb = op.N / 32, pairedRowEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        long os = op.OutputStride;
        var ones = Vector512.Create((short)1);
        for (int r = rowStart; r < pairedRowEnd; r += 2)
        {
            byte* row0 = op.Weights + r * op.RowBytes, row1 = row0 + op.RowBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
            byte* pair = layout;
            for (int ib = 0; ib < nb; ib++, pair += 8 * OffsetPairBytes)
            {
                byte* w0 = row0 + ib * T.Size, w1 = row1 + ib * T.Size;
                var q0 = WideUnsigned<T>(w0);
                var q1 = WideUnsigned<T>(w1);
                var d0 = Vector512.Create(HalfTable.ToF32(*(ushort*)w0));
                var d1 = Vector512.Create(HalfTable.ToF32(*(ushort*)w1));
                a0 = OffsetStep(q0, d0, pair, ones, a0); b0 = OffsetStep(q1, d1, pair, ones, b0);
                a1 = OffsetStep(q0, d0, pair + OffsetPairBytes, ones, a1); b1 = OffsetStep(q1, d1, pair + OffsetPairBytes, ones, b1);
                a2 = OffsetStep(q0, d0, pair + 2 * OffsetPairBytes, ones, a2); b2 = OffsetStep(q1, d1, pair + 2 * OffsetPairBytes, ones, b2);
                a3 = OffsetStep(q0, d0, pair + 3 * OffsetPairBytes, ones, a3); b3 = OffsetStep(q1, d1, pair + 3 * OffsetPairBytes, ones, b3);
                a4 = OffsetStep(q0, d0, pair + 4 * OffsetPairBytes, ones, a4); b4 = OffsetStep(q1, d1, pair + 4 * OffsetPairBytes, ones, b4);
                a5 = OffsetStep(q0, d0, pair + 5 * OffsetPairBytes, ones, a5); b5 = OffsetStep(q1, d1, pair + 5 * OffsetPairBytes, ones, b5);
                a6 = OffsetStep(q0, d0, pair + 6 * OffsetPairBytes, ones, a6); b6 = OffsetStep(q1, d1, pair + 6 * OffsetPairBytes, ones, b6);
                a7 = OffsetStep(q0, d0, pair + 7 * OffsetPairBytes, ones, a7); b7 = OffsetStep(q1, d1, pair + 7 * OffsetPairBytes, ones, b7);
            }
            float* o = op.Output + t * os + r;
            float bias0 = op.Bias is null ? 0f : op.Bias[r], bias1 = op.Bias is null ? 0f : op.Bias[r + 1];
            StorePairs(o, os, bias0, a0, a1, a2, a3);
            StorePairs(o + 8 * os, os, bias0, a4, a5, a6, a7);
            StorePairs(o + 1, os, bias1, b0, b1, b2, b3);
            StorePairs(o + 1 + 8 * os, os, bias1, b4, b5, b6, b7);
        }
        if (pairedRowEnd < rowEnd)
            TileAvx2<T>(op with { Activations = op.Activations + t * op.ActivationRowBytes, Tokens = 16, Output = op.Output + (long)t * os }, pairedRowEnd, rowEnd);
    }

    /// <summary>Eight tokens (four pairs) × four rows per step (the batched-decode shape); leftover rows go through the AVX2 tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void OffsetGroup8<T>(in MatMulOperands op, int t, int rowStart, int rowEnd, byte* layout) where T : struct, IOffsetBlock32
    {
        int nb = op.N / 32, quadRowEnd = rowStart + (rowEnd - rowStart) / 4 * 4;
        long os = op.OutputStride;
        var ones = Vector512.Create((short)1);
        for (int r = rowStart; r < quadRowEnd; r += 4)
        {
            byte* row0 = op.Weights + r * op.RowBytes, row1 = row0 + op.RowBytes, row2 = row1 + op.RowBytes, row3 = row2 + op.RowBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, e0 = default, e1 = default, e2 = default, e3 = default;
            byte* pair = layout;
            for (int ib = 0; ib < nb; ib++, pair += 4 * OffsetPairBytes)
            {
                long wo = ib * T.Size;
                var q0 = WideUnsigned<T>(row0 + wo);
                var q1 = WideUnsigned<T>(row1 + wo);
                var q2 = WideUnsigned<T>(row2 + wo);
                var q3 = WideUnsigned<T>(row3 + wo);
                var d0 = Vector512.Create(HalfTable.ToF32(*(ushort*)(row0 + wo)));
                var d1 = Vector512.Create(HalfTable.ToF32(*(ushort*)(row1 + wo)));
                var d2 = Vector512.Create(HalfTable.ToF32(*(ushort*)(row2 + wo)));
                var d3 = Vector512.Create(HalfTable.ToF32(*(ushort*)(row3 + wo)));
                a0 = OffsetStep(q0, d0, pair, ones, a0); b0 = OffsetStep(q1, d1, pair, ones, b0);
                c0 = OffsetStep(q2, d2, pair, ones, c0); e0 = OffsetStep(q3, d3, pair, ones, e0);
                byte* p1 = pair + OffsetPairBytes;
                a1 = OffsetStep(q0, d0, p1, ones, a1); b1 = OffsetStep(q1, d1, p1, ones, b1);
                c1 = OffsetStep(q2, d2, p1, ones, c1); e1 = OffsetStep(q3, d3, p1, ones, e1);
                byte* p2 = p1 + OffsetPairBytes;
                a2 = OffsetStep(q0, d0, p2, ones, a2); b2 = OffsetStep(q1, d1, p2, ones, b2);
                c2 = OffsetStep(q2, d2, p2, ones, c2); e2 = OffsetStep(q3, d3, p2, ones, e2);
                byte* p3 = p2 + OffsetPairBytes;
                a3 = OffsetStep(q0, d0, p3, ones, a3); b3 = OffsetStep(q1, d1, p3, ones, b3);
                c3 = OffsetStep(q2, d2, p3, ones, c3); e3 = OffsetStep(q3, d3, p3, ones, e3);
            }
            float* o = op.Output + t * os + r;
            StorePairs(o, os, op.Bias is null ? 0f : op.Bias[r], a0, a1, a2, a3);
            StorePairs(o + 1, os, op.Bias is null ? 0f : op.Bias[r + 1], b0, b1, b2, b3);
            StorePairs(o + 2, os, op.Bias is null ? 0f : op.Bias[r + 2], c0, c1, c2, c3);
            StorePairs(o + 3, os, op.Bias is null ? 0f : op.Bias[r + 3], e0, e1, e2, e3);
        }
        if (quadRowEnd < rowEnd)
            TileAvx2<T>(op with { Activations = op.Activations + t * op.ActivationRowBytes, Tokens = 8, Output = op.Output + (long)t * os }, quadRowEnd, rowEnd);
    }
}
