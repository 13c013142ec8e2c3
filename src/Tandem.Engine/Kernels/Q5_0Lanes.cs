using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Q5_0 matrices re-laid at load so that the lanes of a vector are rows, for one token in the AVX2 vec_dot's order
/// (per row: eight float lanes, lane k = fma(d_w·d_y, Σ of elements 4k..4k+3 of the block's 32 quant bytes, lane k),
/// then hsum_float_8) — with the rows in the lanes each of the vec_dot's eight lanes is a vector of its own.
/// <para>
/// Layout, per group of eight rows and per block column, 176 bytes — the eight rows' 22-byte blocks, rearranged:
/// <code>
///   bytes   0..15   the eight rows' scales d (f16), row 0 first
///   bytes  16..47   4-byte lane r = row r's 32 fifth bits (qh) regrouped: byte k, bit j = the bit of element 4j + k
///   bytes  48..175  four 32-byte vectors m = 0..3; 4-byte lane r = row r's quant bytes 4m..4m+3
///                   (low nibbles: elements 4m..4m+3; high nibbles: elements 16+4m..16+4m+3)
/// </code>
/// </para>
/// Why regroup qh: the four bytes of step m need the fifth bits of elements 4m+k (low nibbles) and 16+4m+k (high) in
/// bit 4 of byte k — in the regrouped word they are bits m and 4+m of byte k, one shift and one mask away. In the file's
/// order each step needs a shuffle, a compare and a mask. Prefill re-reads groups back into rows, a few at a time, and
/// runs the multi-token tiles over them (each weight block then serves many tokens); it keeps qh regrouped, so that is
/// a copy, and the tiles read it with their own constants (<see cref="GgmlQ0Dot.Q5_0RegroupedBlock"/>).
/// </summary>
public static unsafe class Q5_0Lanes
{
    public const int Rows = 8;
    public const int BlockBytes = 22;
    /// <summary>Bytes of one block column of a group of eight rows.</summary>
    public const int GroupBlockBytes = Rows * BlockBytes;
    const int FifthBitsAt = 16, QuantsAt = 48;
    /// <summary>From this many tokens a product re-reads the rows for the multi-token tiles (fewer: the one-token kernel for each, faster up to 7).</summary>
    const int TileTokens = 8;
    /// <summary>Bytes of rows re-read at a time for the tiles: the tiles go over them once per group of tokens, so they
    /// should stay in L2; the tokens' activations are laid out again for each chunk, so not much smaller.</summary>
    const int ChunkBytes = 256 << 10;

    static readonly GgmlQ0Dot.TileFn RowTile = Avx512BW.IsSupported
        ? GgmlQ0Dot.TileAvx512<GgmlQ0Dot.Q5_0RegroupedBlock, GgmlQ0Dot.OffsetRow<GgmlQ0Dot.Q5_0RegroupedBlock>>
        : GgmlQ0Dot.TileAvx2<GgmlQ0Dot.Q5_0RegroupedBlock>;

    /// <summary>A block's qh as stored in the lanes: byte k gathers the bits of elements k, 4+k, …, 28+k.</summary>
    public static uint RegroupFifthBits(uint qh)
    {
        if (Bmi2.IsSupported)
            return Bmi2.ParallelBitExtract(qh, 0x11111111u) | Bmi2.ParallelBitExtract(qh, 0x22222222u) << 8
                | Bmi2.ParallelBitExtract(qh, 0x44444444u) << 16 | Bmi2.ParallelBitExtract(qh, 0x88888888u) << 24;
        return RegroupFifthBitsReference(qh);
    }

    /// <summary><see cref="RegroupFifthBits"/> bit by bit (without BMI2, and for tests).</summary>
    public static uint RegroupFifthBitsReference(uint qh)
    {
        uint r = 0;
        for (int e = 0; e < 32; e++) r |= (qh >> e & 1) << (8 * (e % 4) + e / 4);
        return r;
    }

    /// <summary>The inverse of <see cref="RegroupFifthBits"/>.</summary>
    public static uint FileFifthBits(uint regrouped)
    {
        if (Bmi2.IsSupported)
            return Bmi2.ParallelBitDeposit(regrouped & 0xFF, 0x11111111u) | Bmi2.ParallelBitDeposit(regrouped >> 8 & 0xFF, 0x22222222u)
                | Bmi2.ParallelBitDeposit(regrouped >> 16 & 0xFF, 0x44444444u) | Bmi2.ParallelBitDeposit(regrouped >> 24, 0x88888888u);
        return FileFifthBitsReference(regrouped);
    }

    /// <summary><see cref="FileFifthBits"/> bit by bit (without BMI2, and for tests).</summary>
    public static uint FileFifthBitsReference(uint regrouped)
    {
        uint q = 0;
        for (int e = 0; e < 32; e++) q |= (regrouped >> (8 * (e % 4) + e / 4) & 1) << e;
        return q;
    }

    /// <summary>Writes eight consecutive Q5_0 rows (as in the file) into their lane-major group.</summary>
    public static void LayOut(ReadOnlySpan<byte> eightRows, Span<byte> group, long rowBytes)
    {
        int blocks = (int)(rowBytes / BlockBytes);
        if (eightRows.Length < Rows * rowBytes || group.Length < Rows * rowBytes)
            throw new ArgumentException($"A lane-major group needs {Rows * rowBytes} bytes (eight rows of {rowBytes}).");
        for (int ib = 0; ib < blocks; ib++)
        {
            var column = group.Slice(ib * GroupBlockBytes, GroupBlockBytes);
            for (int r = 0; r < Rows; r++)
            {
                var block = eightRows.Slice((int)(r * rowBytes) + ib * BlockBytes, BlockBytes);
                block[..2].CopyTo(column.Slice(2 * r, 2));
                uint qh = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(block[2..]);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(column[(FifthBitsAt + 4 * r)..], RegroupFifthBits(qh));
                for (int m = 0; m < 4; m++)
                    block.Slice(6 + 4 * m, 4).CopyTo(column.Slice(QuantsAt + 32 * m + 4 * r, 4));
            }
        }
    }

    /// <summary>Row <paramref name="row"/>'s block <paramref name="ib"/> back in the file's 22-byte form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReadBlock(byte* weights, long rowBytes, int row, int ib, byte* block)
    {
        byte* column = weights + row / Rows * Rows * rowBytes + ib * (long)GroupBlockBytes;
        int r = row % Rows;
        *(ushort*)block = ((ushort*)column)[r];
        *(uint*)(block + 2) = FileFifthBits(((uint*)(column + FifthBitsAt))[r]);
        for (int m = 0; m < 4; m++) *(uint*)(block + 6 + 4 * m) = *(uint*)(column + QuantsAt + 32 * m + 4 * r);
    }

    /// <summary>
    /// Whole groups [start, end) back into rows of <see cref="GgmlQ0Dot.Q5_0RegroupedBlock"/>s (the file's form, qh left
    /// regrouped) at <paramref name="rows"/>: per block column, the four quant vectors transposed (lane r of vector m
    /// to bytes 4m..4m+3 of row r) with eight unpacks, then scales and qh copied.
    /// </summary>
    static void ReadRows(in MatMulOperands op, int start, int end, byte* rows)
    {
        int nb = op.N / 32;
        long rb = op.RowBytes;
        for (int g = start; g < end; g += Rows)
        {
            byte* column = op.Weights + g * rb, dst = rows + (g - start) * rb;
            for (int ib = 0; ib < nb; ib++, column += GroupBlockBytes, dst += BlockBytes)
            {
                var q0 = Vector256.Load((uint*)(column + QuantsAt));
                var q1 = Vector256.Load((uint*)(column + QuantsAt + 32));
                var q2 = Vector256.Load((uint*)(column + QuantsAt + 64));
                var q3 = Vector256.Load((uint*)(column + QuantsAt + 96));
                // 128-bit lanes hold rows 0–3 and 4–7: after the unpacks, the lower lane of r04 is row 0's sixteen bytes, its upper row 4's, and so on.
                var low01 = Avx2.UnpackLow(q0, q1).AsUInt64(); var low23 = Avx2.UnpackLow(q2, q3).AsUInt64();
                var high01 = Avx2.UnpackHigh(q0, q1).AsUInt64(); var high23 = Avx2.UnpackHigh(q2, q3).AsUInt64();
                var r04 = Avx2.UnpackLow(low01, low23); var r15 = Avx2.UnpackHigh(low01, low23);
                var r26 = Avx2.UnpackLow(high01, high23); var r37 = Avx2.UnpackHigh(high01, high23);
                r04.GetLower().Store((ulong*)(dst + 6)); r04.GetUpper().Store((ulong*)(dst + 4 * rb + 6));
                r15.GetLower().Store((ulong*)(dst + rb + 6)); r15.GetUpper().Store((ulong*)(dst + 5 * rb + 6));
                r26.GetLower().Store((ulong*)(dst + 2 * rb + 6)); r26.GetUpper().Store((ulong*)(dst + 6 * rb + 6));
                r37.GetLower().Store((ulong*)(dst + 3 * rb + 6)); r37.GetUpper().Store((ulong*)(dst + 7 * rb + 6));
                for (int r = 0; r < Rows; r++)
                {
                    *(ushort*)(dst + r * rb) = ((ushort*)column)[r];
                    *(uint*)(dst + r * rb + 2) = ((uint*)(column + FifthBitsAt))[r];
                }
            }
        }
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) × all tokens. One to seven tokens: one at a time, whole groups of eight rows in the
    /// lanes. More: chunks of rows re-read into rows of <see cref="GgmlQ0Dot.Q5_0RegroupedBlock"/>s and the
    /// multi-token tiles over them (identical results: every path is the vec_dot's order). Rows of a group the range
    /// only partly covers one at a time.
    /// </summary>
    public static void MatMul(in MatMulOperands op, int rowStart, int rowEnd)
    {
        int first = Math.Min(rowEnd, (rowStart + Rows - 1) / Rows * Rows);
        int grouped = first + (rowEnd - first) / Rows * Rows;
        if (op.Tokens >= TileTokens)
        {
            int chunk = (int)Math.Max(Rows, ChunkBytes / op.RowBytes / Rows * Rows);
            for (int c = first; c < grouped; c += chunk) Tile(op, c, Math.Min(grouped, c + chunk));
        }
        else if (grouped > first)
            for (int t = 0; t < op.Tokens; t++) Token(op, t, first, grouped);
        for (int r = rowStart; r < first; r++) SingleRow(op, r);
        for (int r = grouped; r < rowEnd; r++) SingleRow(op, r);
    }

    /// <summary>Whole groups [start, end) re-read into rows (this thread's row scratch), then the tile over them.</summary>
    static void Tile(in MatMulOperands op, int start, int end)
    {
        byte* rows = KernelScratch.GetRows((end - start) * op.RowBytes);
        ReadRows(op, start, end, rows);
        // The tile addresses row r at Weights + r·RowBytes: shift the base so that row `start` is the scratch's first.
        RowTile(op with { Weights = rows - start * op.RowBytes }, start, end);
    }

    /// <summary>
    /// A token's block offsets (−16 × the sum of each four quants, the vec_dot's eight lanes) and scales, laid out once
    /// for all rows.
    /// </summary>
    static void TokenOffsets(byte* y0, int nb, int* offsets, float* scales)
    {
        var sixteen = Vector256.Create((byte)16);
        for (int ib = 0; ib < nb; ib++)
        {
            var y = (BlockQ8_0*)y0 + ib;
            var sums = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(sixteen, Vector256.Load(y->Qs)), Vector256.Create((short)1));
            (Vector256<int>.Zero - sums).Store(offsets + 8 * ib);
            scales[ib] = HalfTable.ToF32(*(ushort*)&y->D);
        }
    }

    /// <summary>One of the vec_dot's lanes for eight rows: acc = fma(d_w·d_y, Σ q·y − 16·Σ y over four elements, acc).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Lane(Vector256<float> acc, Vector256<float> d, int* offset, Vector256<byte> q, byte* y) =>
        Fma.MultiplyAdd(d, Avx.ConvertToVector256Single(GgmlQ0Dot.UnsignedDot(Vector256.Create(*offset), q, Vector256.Create(*(int*)y).AsSByte())), acc);

    /// <summary>One token × whole groups of eight rows [first, end): each group's eight outputs in the lanes of one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Token(in MatMulOperands op, int t, int first, int end)
    {
        int nb = op.N / 32;
        byte* y0 = op.Activations + t * op.ActivationRowBytes;
        var offsets = (int*)KernelScratch.Get(nb * 36L);
        var scales = (float*)(offsets + 8 * nb);
        TokenOffsets(y0, nb, offsets, scales);
        float* o = op.Output + t * op.OutputStride;
        var nibble = Vector256.Create((byte)0x0F);
        var fifth = Vector256.Create((byte)0x10);
        for (int r = first; r < end; r += Rows)
        {
            byte* column = op.Weights + r * op.RowBytes;
            byte* y = y0 + 2;
            int* off = offsets;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (int ib = 0; ib < nb; ib++, column += GroupBlockBytes, y += 34, off += 8)
            {
                var d = HalfLanes.ToSingle(Avx2.ConvertToVector256Int32((ushort*)column).AsUInt32()) * Vector256.Create(scales[ib]);
                var qh = Vector256.Load(column + FifthBitsAt).AsUInt16();
                var q0 = Vector256.Load(column + QuantsAt);
                var q1 = Vector256.Load(column + QuantsAt + 32);
                var q2 = Vector256.Load(column + QuantsAt + 64);
                var q3 = Vector256.Load(column + QuantsAt + 96);
                // Step m: bit m of each qh byte to bit 4 for the low nibbles, bit 4 + m for the high ones.
                a0 = Lane(a0, d, off, (q0 & nibble) | ((qh << 4).AsByte() & fifth), y);
                a4 = Lane(a4, d, off + 4, (Vector256.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & nibble) | (qh.AsByte() & fifth), y + 16);
                a1 = Lane(a1, d, off + 1, (q1 & nibble) | ((qh << 3).AsByte() & fifth), y + 4);
                a5 = Lane(a5, d, off + 5, (Vector256.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & nibble) | ((qh >> 1).AsByte() & fifth), y + 20);
                a2 = Lane(a2, d, off + 2, (q2 & nibble) | ((qh << 2).AsByte() & fifth), y + 8);
                a6 = Lane(a6, d, off + 6, (Vector256.ShiftRightLogical(q2.AsUInt16(), 4).AsByte() & nibble) | ((qh >> 2).AsByte() & fifth), y + 24);
                a3 = Lane(a3, d, off + 3, (q3 & nibble) | ((qh << 1).AsByte() & fifth), y + 12);
                a7 = Lane(a7, d, off + 7, (Vector256.ShiftRightLogical(q3.AsUInt16(), 4).AsByte() & nibble) | ((qh >> 3).AsByte() & fifth), y + 28);
            }
            // hsum_float_8's order, lane by lane: (l4 + l0) + (l6 + l2), (l5 + l1) + (l7 + l3), then their sum.
            var sum = ((a4 + a0) + (a6 + a2)) + ((a5 + a1) + (a7 + a3));
            var bias = op.Bias is null ? Vector256<float>.Zero : Vector256.Create(op.Bias, r);
            (sum + bias).Store(o + r);
        }
    }

    /// <summary>One row of a group the range only partly covers, every token: the row read back into the file's layout, then the AVX2 vec_dot.</summary>
    static void SingleRow(in MatMulOperands op, int r)
    {
        int nb = op.N / 32;
        // Only tests split a group (the engine splits rows at multiples of RowGranularity, 8), so a long row may allocate.
        Span<byte> row = nb * BlockBytes <= 16384 ? stackalloc byte[nb * BlockBytes] : new byte[nb * BlockBytes];
        fixed (byte* w = row)
        {
            for (int ib = 0; ib < nb; ib++) ReadBlock(op.Weights, op.RowBytes, r, ib, w + ib * BlockBytes);
            for (int t = 0; t < op.Tokens; t++)
                op.Output[t * op.OutputStride + r] = GgmlQ0Dot.LanesAvx2<GgmlQ0Dot.Q5_0Block>(w, op.Activations + t * op.ActivationRowBytes, op.N)
                    + (op.Bias is null ? 0f : op.Bias[r]);
        }
    }
}

public static unsafe partial class GgmlQ0Dot
{
    /// <summary>
    /// A Q5_0 block with its fifth bits regrouped as <see cref="Q5_0Lanes"/> stores them (byte k, bit j = the bit of
    /// element 4j + k), otherwise as in the file: the same quants as <see cref="Q5_0Block"/>, decoded with other constants.
    /// </summary>
    public struct Q5_0RegroupedBlock : IOffsetBlock32
    {
        public static int Size => 22;
        public static byte Offset => 16;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(byte* blk) =>
            Nibbles(((BlockQ5_0*)blk)->Qs) | Vector256.AndNot(Vector256.Create((byte)0xF0), RegroupedBitsToBytes(blk + 2)).AsSByte();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Unsigned(byte* blk) =>
            Nibbles(((BlockQ5_0*)blk)->Qs).AsByte() | (RegroupedBitsToBytes(blk + 2) & Vector256.Create((byte)0x10));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> UnsignedPair(byte* blk)
        {
            if (!Avx512Vbmi.IsSupported) return BothHalves(Unsigned(blk));
            return SplitNibbles(Avx512F.BroadcastVector128ToVector512((uint*)((BlockQ5_0*)blk)->Qs)) | RegroupedFifthBits(Vector512.Create(*(uint*)(blk + 2)));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> UnsignedTwo(byte* first, byte* second)
        {
            if (!Avx512Vbmi.IsSupported) return Halves(Unsigned(first), Unsigned(second));
            var qh = Halves(Vector256.Create(*(uint*)(first + 2)), Vector256.Create(*(uint*)(second + 2)));
            return SplitNibbles(TwoQuarters(((BlockQ5_0*)first)->Qs, ((BlockQ5_0*)second)->Qs)) | RegroupedFifthBits(qh);
        }

        /// <summary>0xFF in byte e where element e's fifth bit is set (the regrouped <see cref="BitsToBytes"/>).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<byte> RegroupedBitsToBytes(byte* qh)
        {
            var v = Vector256.Create(*(uint*)qh).AsByte();
            var shuf = Vector256.Create(0x0302010003020100UL).AsByte();
            var bytes = Avx2.Shuffle(v, shuf) | Vector256.Create(0xFDFDFDFDFEFEFEFEUL, 0xF7F7F7F7FBFBFBFBUL, 0xDFDFDFDFEFEFEFEFUL, 0x7F7F7F7FBFBFBFBFUL).AsByte();
            return Vector256.Equals(bytes, Vector256<byte>.AllBitsSet);
        }

        /// <summary>The regrouped <see cref="FifthBits"/>: per byte e the multishift starts 4 below bit 8·(e mod 4) + e/4.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<byte> RegroupedFifthBits(Vector512<uint> qh) =>
            Avx512Vbmi.MultiShift(Vector512.Create(
                0x150D053D140C043CUL, 0x170F073F160E063EUL, 0x1911090118100800UL, 0x1B130B031A120A02UL,
                0x150D053D140C043CUL, 0x170F073F160E063EUL, 0x1911090118100800UL, 0x1B130B031A120A02UL).AsByte(), qh.AsUInt64())
            & Vector512.Create((byte)0x10);
    }
}
