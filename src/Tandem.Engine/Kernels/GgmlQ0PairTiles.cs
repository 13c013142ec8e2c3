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
    /// <summary><see cref="Unsigned"/> in both halves of a 512-bit register, as a pair step multiplies it.</summary>
    static abstract Vector512<byte> UnsignedPair(byte* blk);
    /// <summary><see cref="Unsigned"/> of one block in the lower half and of another in the upper half (two rows, one token).</summary>
    static abstract Vector512<byte> UnsignedTwo(byte* first, byte* second);
    static abstract byte Offset { get; }
}

/// <summary>How a token pair's activation block is laid out for a row form's steps (or one token in both halves, for a GEMV).</summary>
public unsafe interface IPairLayout
{
    /// <summary>Lays out what a row form's step reads of a token pair's quants: 64 bytes at <paramref name="pair"/> and 64 at pair + 128 (the scales sit between).</summary>
    static abstract void LayOut(Vector512<sbyte> pairQuants, byte* pair);
}

/// <summary>
/// One weight row's block, ready for the 512-bit pair steps, and how a token pair's activation block is laid out for
/// it. A step yields, for two tokens side by side, the vec_dot's eight integer lanes (Σ x·y over four elements).
/// </summary>
public unsafe interface IPairRow<TSelf> : IPairLayout where TSelf : struct, IPairRow<TSelf>
{
    static abstract TSelf Load(byte* block);
    /// <summary>Whether eight-token groups can run four rows per step without spilling (a row form's registers × 4 + 16 accumulators).</summary>
    static abstract bool FourRows { get; }
    /// <summary>Rows [rowStart, rowEnd) for the one token <paramref name="token"/> (the tokens left over after the groups).</summary>
    static abstract void SingleToken(in MatMulOperands op, int token, int rowStart, int rowEnd);
    Vector512<float> D { get; }
    Vector512<int> Lanes(byte* pair);
}

public static unsafe partial class GgmlQ0Dot
{
    public partial struct Q4_0Block : IOffsetBlock32
    {
        public static byte Offset => 8;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Unsigned(byte* blk) => Nibbles(((BlockQ4_0*)blk)->Qs).AsByte();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> UnsignedPair(byte* blk) => SplitNibbles(Avx512F.BroadcastVector128ToVector512((uint*)((BlockQ4_0*)blk)->Qs));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> UnsignedTwo(byte* first, byte* second) => SplitNibbles(TwoQuarters(((BlockQ4_0*)first)->Qs, ((BlockQ4_0*)second)->Qs));
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

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> UnsignedPair(byte* blk)
        {
            var b = (BlockQ5_0*)blk;
            if (!Avx512Vbmi.IsSupported) return BothHalves(Unsigned(blk));
            return SplitNibbles(Avx512F.BroadcastVector128ToVector512((uint*)b->Qs)) | FifthBits(Vector512.Create(*(uint*)b->Qh));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> UnsignedTwo(byte* first, byte* second)
        {
            BlockQ5_0* a = (BlockQ5_0*)first, b = (BlockQ5_0*)second;
            if (!Avx512Vbmi.IsSupported) return Halves(Unsigned(first), Unsigned(second));
            var qh = Halves(Vector256.Create(*(uint*)a->Qh), Vector256.Create(*(uint*)b->Qh));
            return SplitNibbles(TwoQuarters(a->Qs, b->Qs)) | FifthBits(qh);
        }
    }

    /// <summary>
    /// Byte e of each half: bit e of that half's qh (broadcast into every doubleword of the half) moved to bit 4. A
    /// multishift picks, for every byte, the eight bits of its qword starting 4 below that bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<byte> FifthBits(Vector512<uint> qh) => Avx512Vbmi.MultiShift(HighBitControl, qh.AsUInt64()) & Vector512.Create((byte)0x10);

    // Per byte e of a 32-byte half: the start bit (e − 4) mod 64, i.e. the bytes 60, 61, 62, 63, 0, 1, …, 27.
    static Vector512<byte> HighBitControl
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(
        0x03020100_3F3E3D3CUL, 0x0B0A0908_07060504UL, 0x13121110_0F0E0D0CUL, 0x1B1A1918_17161514UL,
        0x03020100_3F3E3D3CUL, 0x0B0A0908_07060504UL, 0x13121110_0F0E0D0CUL, 0x1B1A1918_17161514UL).AsByte();
    }

    /// <summary>
    /// 16 quant bytes in 128-bit quarters 0 and 1 (one block) and 2 and 3 (the same or another) as each half's 32
    /// nibbles, low nibbles then high: one shift per quarter.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<byte> SplitNibbles(Vector512<uint> quarters)
    {
        const ulong Four = 0x0004_0004_0004_0004UL;
        var shifted = Avx512BW.ShiftRightLogicalVariable(quarters.AsUInt16(), Vector512.Create(0, 0, Four, Four, 0, 0, Four, Four).AsUInt16());
        return shifted.AsByte() & Vector512.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<uint> TwoQuarters(byte* first, byte* second) =>
        Halves(Avx2.BroadcastVector128ToVector256((uint*)first), Avx2.BroadcastVector128ToVector256((uint*)second));

    /// <summary>
    /// Offset types with the offset taken out of the weights: a lane Σ (q − o)·y is exactly Σ q·y − o·Σ y, so the
    /// unsigned q go straight into the unsigned operand of the byte multiply (no sign transfer per row and token) and
    /// o·Σ y is computed once per token group (laid out after the pair's scales), not once per row.
    /// </summary>
    public readonly struct OffsetRow<T> : IPairRow<OffsetRow<T>> where T : struct, IOffsetBlock32
    {
        readonly Vector512<byte> _q;
        public Vector512<float> D { get; }

        OffsetRow(Vector512<byte> q, Vector512<float> d) { _q = q; D = d; }

        public static bool FourRows => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static OffsetRow<T> Load(byte* block) => new(T.UnsignedPair(block), Vector512.Create(HalfTable.ToF32(*(ushort*)block)));

        /// <summary>Two rows' blocks, <paramref name="first"/> in the lower half and <paramref name="second"/> in the upper, for one token in both.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static OffsetRow<T> LoadTwo(byte* first, byte* second) => new(T.UnsignedTwo(first, second), TwoScales(first, second));

        public static void SingleToken(in MatMulOperands op, int token, int rowStart, int rowEnd) => OffsetGemv<T>(op, token, rowStart, rowEnd);

        public static void LayOut(Vector512<sbyte> q, byte* pair)
        {
            *(Vector512<sbyte>*)pair = q;
            *(Vector512<int>*)(pair + 128) =
                Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Vector512.Create(T.Offset), q), Vector512.Create((short)1));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<int> Lanes(byte* pair) =>
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(_q, *(Vector512<sbyte>*)pair), Vector512.Create((short)1))
            - *(Vector512<int>*)(pair + 128);
    }

    /// <summary>
    /// Signed quants (Q8_0) widened to 16 bits, which needs no sign transfer: the 16-bit multiply-add of elements 4k and
    /// 4k+1 plus that of elements 4k+2 and 4k+3 is the vec_dot's lane k. The weights' first and second pairs of each four
    /// sit in two registers (both halves alike), a token pair's activations likewise, so a step is two multiply-adds
    /// and an add where the sign transfer takes a select and two multiply-adds.
    /// </summary>
    public readonly struct WideRow<T> : IPairRow<WideRow<T>> where T : struct, IBlock32
    {
        readonly Vector512<short> _first, _second;
        public Vector512<float> D { get; }

        WideRow(Vector512<short> x, float d)
        {
            _first = Avx512BW.PermuteVar32x16(x, FirstPairs(0));
            _second = Avx512BW.PermuteVar32x16(x, SecondPairs(0));
            D = Vector512.Create(d);
        }

        public static bool FourRows => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SingleToken(in MatMulOperands op, int token, int rowStart, int rowEnd) => SignedGemv<T>(op, token, rowStart, rowEnd);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static WideRow<T> Load(byte* block) => new(Avx512BW.ConvertToVector512Int16(T.Quants(block)), HalfTable.ToF32(*(ushort*)block));

        public static void LayOut(Vector512<sbyte> q, byte* pair)
        {
            var first = Avx512BW.ConvertToVector512Int16(q.GetLower());
            var second = Avx512BW.ConvertToVector512Int16(q.GetUpper());
            *(Vector512<short>*)pair = Avx512BW.PermuteVar32x16x2(first, FirstPairs(32), second);
            *(Vector512<short>*)(pair + 128) = Avx512BW.PermuteVar32x16x2(first, SecondPairs(32), second);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<int> Lanes(byte* pair) =>
            Avx512BW.MultiplyAddAdjacent(_first, *(Vector512<short>*)pair) + Avx512BW.MultiplyAddAdjacent(_second, *(Vector512<short>*)(pair + 128));

        // Element indices 4k, 4k+1 (k = 0..7) for the lower half, and the same plus upperHalf for the upper half.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<short> FirstPairs(short upperHalf) =>
            Vector512.Create(Vector256.Create((short)0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29), Vector256.Create((short)0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) + Vector256.Create(upperHalf));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<short> SecondPairs(short upperHalf) => FirstPairs(upperHalf) + Vector512.Create((short)2);
    }

    // Per block of a token group, per pair of tokens: the row form's first operand (64 bytes: the quants, or their
    // first pairs widened), their scales broadcast over each half (64 bytes), and its second operand (64 bytes).
    const long PairBytes = 192;

    /// <summary>
    /// Rows [rowStart, rowEnd) × all tokens with Q8_0 activations, 512-bit registers holding two tokens each: the
    /// activations of 16 (or 8) tokens are laid out once per group in this thread's scratch, then every row pair
    /// (or quad) runs over them, each weight block decoded once for all the group's tokens. Lanes 0–7 and 8–15 are two
    /// independent outputs, each the same FMA chain as the AVX2 vec_dot (acc = fma(d_w·d_y, lanes, acc), then
    /// <see cref="Hsum8(Vector256{float})"/>), so the results are identical to one dot per output.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileAvx512<T, TRow>(in MatMulOperands op, int rowStart, int rowEnd)
        where T : struct, IBlock32 where TRow : struct, IPairRow<TRow>
    {
        int nb = op.N / 32, tokens = op.Tokens;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        byte* layout = KernelScratch.Get(nb * 8 * PairBytes);
        int t = 0;
        for (; t + 16 <= tokens; t += 16)
        {
            LayOutPairs<TRow>(op.Activations + t * ys, ys, nb, pairs: 8, layout);
            Group16<T, TRow>(op, t, rowStart, rowEnd, layout);
        }
        if (t + 8 <= tokens)
        {
            LayOutPairs<TRow>(op.Activations + t * ys, ys, nb, pairs: 4, layout);
            if (TRow.FourRows) Group8FourRows<T, TRow>(op, t, rowStart, rowEnd, layout);
            else Group8<T, TRow>(op, t, rowStart, rowEnd, layout);
            t += 8;
        }
        int fours = (tokens - t) / 4 * 4;
        if (fours > 0)
            TileAvx2<T>(op with { Activations = op.Activations + t * ys, Tokens = fours, Output = op.Output + (long)t * os }, rowStart, rowEnd);
        for (t += fours; t < tokens; t++) TRow.SingleToken(op, t, rowStart, rowEnd);
    }

    /// <summary>
    /// One token against rows [rowStart, rowEnd) of a signed type (Q8_0), two rows per 512-bit register as in
    /// <see cref="OffsetGemv{T}"/>, with the AVX2 vec_dot's sign transfer (|x| and y with x's sign, from y and −y laid
    /// out once per block of the token): each half is that vec_dot's chain for its row, so bit-identical.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SignedGemv<T>(in MatMulOperands op, int token, int rowStart, int rowEnd) where T : struct, IBlock32
    {
        int nb = op.N / 32;
        byte* y = op.Activations + token * op.ActivationRowBytes;
        float* o = op.Output + (long)token * op.OutputStride;
        byte* layout = LayOutToken<SignTransfer>(y, nb);
        int pairedRowEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        for (int r = rowStart; r < pairedRowEnd; r += 2)
        {
            byte* first = op.Weights + r * op.RowBytes, second = first + op.RowBytes, ahead = first + GemvPrefetchRowPairs * 2 * op.RowBytes;
            Vector512<float> acc = default;
            byte* p = layout;
            for (int ib = 0; ib < nb; ib++, p += PairBytes)
            {
                long wo = ib * T.Size;
                Prefetch(ahead + wo, op.RowBytes, rows: 2);
                var x = Halves(T.Quants(first + wo), T.Quants(second + wo));
                var signed = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<sbyte>.Zero), *(Vector512<sbyte>*)(p + 128), *(Vector512<sbyte>*)p);
                var lanes = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(x), signed), Vector512.Create((short)1));
                acc = Avx512F.FusedMultiplyAdd(TwoScales(first + wo, second + wo) * *(Vector512<float>*)(p + 64), Avx512F.ConvertToVector512Single(lanes), acc);
            }
            StoreRowPair(o, op.Bias, r, acc);
        }
        if (pairedRowEnd < rowEnd)
            o[pairedRowEnd] = LanesAvx2<T>(op.Weights + pairedRowEnd * op.RowBytes, y, op.N) + (op.Bias is null ? 0f : op.Bias[pairedRowEnd]);
    }

    /// <summary>y and −y, from which the sign transfer selects per weight (<see cref="SignedGemv{T}"/>).</summary>
    readonly struct SignTransfer : IPairLayout
    {
        public static void LayOut(Vector512<sbyte> q, byte* pair)
        {
            *(Vector512<sbyte>*)pair = q;
            *(Vector512<sbyte>*)(pair + 128) = Vector512<sbyte>.Zero - q;
        }
    }

    /// <summary>One token's Q8_0 blocks laid out for a GEMV (the block in both halves, as a pair of tokens), in this thread's scratch.</summary>
    static byte* LayOutToken<TLayout>(byte* y, int nb) where TLayout : IPairLayout
    {
        byte* layout = KernelScratch.Get(nb * PairBytes);
        for (int ib = 0; ib < nb; ib++)
        {
            byte* block = y + ib * 34L, pair = layout + ib * PairBytes;
            TLayout.LayOut(BroadcastHalf(block + 2).AsSByte(), pair);
            *(Vector512<float>*)(pair + 64) = Vector512.Create(HalfTable.ToF32(*(ushort*)block));
        }
        return layout;
    }

    /// <summary>A GEMV row pair's outputs: rows r (the lower half's chain) and r + 1 (the upper's), each plus its bias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRowPair(float* o, float[]? bias, int r, Vector512<float> acc)
    {
        o[r] = Hsum8(acc.GetLower()) + (bias is null ? 0f : bias[r]);
        o[r + 1] = Hsum8(acc.GetUpper()) + (bias is null ? 0f : bias[r + 1]);
    }

    /// <summary>Two rows' block scales, <paramref name="first"/>'s over the lower half and <paramref name="second"/>'s over the upper.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> TwoScales(byte* first, byte* second) =>
        Halves(Vector256.Create(HalfTable.ToF32(*(ushort*)first)), Vector256.Create(HalfTable.ToF32(*(ushort*)second)));

    // A row pair's blocks pass quickly in a GEMV (each serves one token), so it fetches further ahead than the tiles:
    // from DRAM, 2 row pairs ahead gave 19 GMAC/s per thread, 4 gave 23–24, 8 no more.
    const int GemvPrefetchRowPairs = 4;

    /// <summary>
    /// One token against rows [rowStart, rowEnd) of an offset type, two rows per 512-bit register (row r in the lower
    /// half, r + 1 in the upper) with the token's block in both halves: each half is the AVX2 vec_dot's chain for its
    /// row (acc = fma(d_w·d_y, Σ q·y − o·Σ y lanes, acc), then <see cref="Hsum8(Vector256{float})"/>), so the results
    /// are identical to one dot per row, with half the steps and the offset taken out once per block of the token.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void OffsetGemv<T>(in MatMulOperands op, int token, int rowStart, int rowEnd) where T : struct, IOffsetBlock32
    {
        int nb = op.N / 32;
        byte* y = op.Activations + token * op.ActivationRowBytes;
        float* o = op.Output + (long)token * op.OutputStride;
        byte* layout = LayOutToken<OffsetRow<T>>(y, nb);
        int quadRowEnd = rowStart + (rowEnd - rowStart) / 4 * 4, pairedRowEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        int r = rowStart;
        for (; r < quadRowEnd; r += 4)
        {
            byte* first = op.Weights + r * op.RowBytes, second = first + op.RowBytes, third = second + op.RowBytes, fourth = third + op.RowBytes;
            byte* ahead = first + GemvPrefetchRowPairs * 2 * op.RowBytes;
            Vector512<float> acc = default, acc2 = default;
            byte* p = layout;
            for (int ib = 0; ib < nb; ib++, p += PairBytes)
            {
                long wo = ib * T.Size;
                Prefetch(ahead + wo, op.RowBytes, rows: 4);
                acc = Step(OffsetRow<T>.LoadTwo(first + wo, second + wo), p, acc);
                acc2 = Step(OffsetRow<T>.LoadTwo(third + wo, fourth + wo), p, acc2);
            }
            StoreRowPair(o, op.Bias, r, acc);
            StoreRowPair(o, op.Bias, r + 2, acc2);
        }
        for (; r < pairedRowEnd; r += 2)
        {
            byte* first = op.Weights + r * op.RowBytes, second = first + op.RowBytes;
            Vector512<float> acc = default;
            byte* p = layout;
            for (int ib = 0; ib < nb; ib++, p += PairBytes)
                acc = Step(OffsetRow<T>.LoadTwo(first + ib * T.Size, second + ib * T.Size), p, acc);
            StoreRowPair(o, op.Bias, r, acc);
        }
        if (pairedRowEnd < rowEnd)
            o[pairedRowEnd] = LanesAvx2<T>(op.Weights + pairedRowEnd * op.RowBytes, y, op.N) + (op.Bias is null ? 0f : op.Bias[pairedRowEnd]);
    }

    static void LayOutPairs<TRow>(byte* y0, long ys, int nb, int pairs, byte* layout) where TRow : struct, IPairRow<TRow>
    {
        for (int ib = 0; ib < nb; ib++)
        {
            byte* y = y0 + ib * 34L;
            for (int p = 0; p < pairs; p++, layout += PairBytes)
            {
                byte* first = y + 2 * p * ys, second = first + ys;
                TRow.LayOut(Vector512.Create(Vector256.Load((sbyte*)first + 2), Vector256.Load((sbyte*)second + 2)), layout);
                *(Vector512<float>*)(layout + 64) = Vector512.Create(
                    Vector256.Create(HalfTable.ToF32(*(ushort*)first)), Vector256.Create(HalfTable.ToF32(*(ushort*)second)));
            }
        }
    }

    // Rows read side by side, a few at a time and slowly (each block serves 8–16 tokens), are a pattern the hardware
    // prefetchers do not follow from DRAM: a matrix too big for the caches streamed at ~3 GB/s per thread through
    // the 8-token tiles. So the same block of the rows PrefetchSteps steps ahead is fetched explicitly.
    const int PrefetchSteps = 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Prefetch(byte* block, long rowBytes, int rows)
    {
        if (!Sse.IsSupported) return;
        for (int k = 0; k < rows; k++) Sse.Prefetch0(block + k * rowBytes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Step<TRow>(in TRow row, byte* pair, Vector512<float> acc) where TRow : struct, IPairRow<TRow> =>
        Avx512F.FusedMultiplyAdd(row.D * *(Vector512<float>*)(pair + 64), Avx512F.ConvertToVector512Single(row.Lanes(pair)), acc);

    /// <summary>Sixteen tokens (eight pairs) × two rows per step; an odd last row goes through the AVX2 tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Group16<T, TRow>(in MatMulOperands op, int t, int rowStart, int rowEnd, byte* layout)
        where T : struct, IBlock32 where TRow : struct, IPairRow<TRow>
    {
        int nb = op.N / 32, pairedRowEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        long os = op.OutputStride;
        for (int r = rowStart; r < pairedRowEnd; r += 2)
        {
            byte* row0 = op.Weights + r * op.RowBytes, row1 = row0 + op.RowBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
            byte* p = layout, ahead = row0 + PrefetchSteps * 2 * op.RowBytes;
            for (int ib = 0; ib < nb; ib++, p += 8 * PairBytes)
            {
                Prefetch(ahead + ib * T.Size, op.RowBytes, rows: 2);
                var x0 = TRow.Load(row0 + ib * T.Size);
                var x1 = TRow.Load(row1 + ib * T.Size);
                a0 = Step(x0, p, a0); b0 = Step(x1, p, b0);
                a1 = Step(x0, p + PairBytes, a1); b1 = Step(x1, p + PairBytes, b1);
                a2 = Step(x0, p + 2 * PairBytes, a2); b2 = Step(x1, p + 2 * PairBytes, b2);
                a3 = Step(x0, p + 3 * PairBytes, a3); b3 = Step(x1, p + 3 * PairBytes, b3);
                a4 = Step(x0, p + 4 * PairBytes, a4); b4 = Step(x1, p + 4 * PairBytes, b4);
                a5 = Step(x0, p + 5 * PairBytes, a5); b5 = Step(x1, p + 5 * PairBytes, b5);
                a6 = Step(x0, p + 6 * PairBytes, a6); b6 = Step(x1, p + 6 * PairBytes, b6);
                a7 = Step(x0, p + 7 * PairBytes, a7); b7 = Step(x1, p + 7 * PairBytes, b7);
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

    /// <summary>Eight tokens (four pairs) × two rows per step; an odd last row goes through the AVX2 tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Group8<T, TRow>(in MatMulOperands op, int t, int rowStart, int rowEnd, byte* layout)
        where T : struct, IBlock32 where TRow : struct, IPairRow<TRow>
    {
        int nb = op.N / 32, pairedRowEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        long os = op.OutputStride;
        for (int r = rowStart; r < pairedRowEnd; r += 2)
        {
            byte* row0 = op.Weights + r * op.RowBytes, row1 = row0 + op.RowBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            byte* p = layout, ahead = row0 + PrefetchSteps * 2 * op.RowBytes;
            for (int ib = 0; ib < nb; ib++, p += 4 * PairBytes)
            {
                Prefetch(ahead + ib * T.Size, op.RowBytes, rows: 2);
                var x0 = TRow.Load(row0 + ib * T.Size);
                var x1 = TRow.Load(row1 + ib * T.Size);
                a0 = Step(x0, p, a0); b0 = Step(x1, p, b0);
                a1 = Step(x0, p + PairBytes, a1); b1 = Step(x1, p + PairBytes, b1);
                a2 = Step(x0, p + 2 * PairBytes, a2); b2 = Step(x1, p + 2 * PairBytes, b2);
                a3 = Step(x0, p + 3 * PairBytes, a3); b3 = Step(x1, p + 3 * PairBytes, b3);
            }
            float* o = op.Output + t * os + r;
            StorePairs(o, os, op.Bias is null ? 0f : op.Bias[r], a0, a1, a2, a3);
            StorePairs(o + 1, os, op.Bias is null ? 0f : op.Bias[r + 1], b0, b1, b2, b3);
        }
        if (pairedRowEnd < rowEnd)
            TileAvx2<T>(op with { Activations = op.Activations + t * op.ActivationRowBytes, Tokens = 8, Output = op.Output + (long)t * os }, pairedRowEnd, rowEnd);
    }

    /// <summary>Eight tokens (four pairs) × four rows per step, for row forms light enough to keep in registers; leftover rows go through the AVX2 tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Group8FourRows<T, TRow>(in MatMulOperands op, int t, int rowStart, int rowEnd, byte* layout)
        where T : struct, IBlock32 where TRow : struct, IPairRow<TRow>
    {
        int nb = op.N / 32, quadRowEnd = rowStart + (rowEnd - rowStart) / 4 * 4;
        long os = op.OutputStride;
        for (int r = rowStart; r < quadRowEnd; r += 4)
        {
            byte* row0 = op.Weights + r * op.RowBytes, row1 = row0 + op.RowBytes, row2 = row1 + op.RowBytes, row3 = row2 + op.RowBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, e0 = default, e1 = default, e2 = default, e3 = default;
            byte* p = layout, ahead = row0 + PrefetchSteps * 4 * op.RowBytes;
            for (int ib = 0; ib < nb; ib++, p += 4 * PairBytes)
            {
                long wo = ib * T.Size;
                Prefetch(ahead + wo, op.RowBytes, rows: 4);
                var x0 = TRow.Load(row0 + wo);
                var x1 = TRow.Load(row1 + wo);
                var x2 = TRow.Load(row2 + wo);
                var x3 = TRow.Load(row3 + wo);
                a0 = Step(x0, p, a0); b0 = Step(x1, p, b0); c0 = Step(x2, p, c0); e0 = Step(x3, p, e0);
                byte* p1 = p + PairBytes;
                a1 = Step(x0, p1, a1); b1 = Step(x1, p1, b1); c1 = Step(x2, p1, c1); e1 = Step(x3, p1, e1);
                byte* p2 = p1 + PairBytes;
                a2 = Step(x0, p2, a2); b2 = Step(x1, p2, b2); c2 = Step(x2, p2, c2); e2 = Step(x3, p2, e2);
                byte* p3 = p2 + PairBytes;
                a3 = Step(x0, p3, a3); b3 = Step(x1, p3, b3); c3 = Step(x2, p3, c3); e3 = Step(x3, p3, e3);
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
