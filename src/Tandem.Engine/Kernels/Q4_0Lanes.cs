using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Q4_0 matrices re-laid at load so that the lanes of a vector are rows, for the repacked Q4_0 order
/// (<see cref="GgmlQ0Dot.RepackedQ4_0Reference"/>): one block sum per row and token, acc = fma(sum, d_w·d_a, acc).
/// <para>
/// Layout, per group of eight rows (as llama.cpp's repack groups them) and per block column, 144 bytes — the eight
/// rows' 18-byte blocks, rearranged:
/// <code>
///   bytes   0..15   the eight rows' scales d (f16), row 0 first
///   bytes  16..143  four 32-byte vectors m = 0..3; 4-byte lane r = row r's quant bytes 4m..4m+3
///                   (low nibbles: elements 4m..4m+3; high nibbles: elements 16+4m..16+4m+3)
/// </code>
/// </para>
/// Why: a block's nibbles are split once for eight rows (four loads, twelve masks and shifts), then each token costs
/// eight multiply-adds against its broadcast quant groups, one conversion and one multiply-add — and the eight rows'
/// results come out side by side, one store per token. Laid out as in the file, each row's nibbles were split again for
/// every token group and the sums of a row came out one lane per token.
/// </summary>
public static unsafe class Q4_0Lanes
{
    public const int Rows = 8;
    /// <summary>Bytes of one block column of a group of eight rows.</summary>
    public const int GroupBlockBytes = Rows * 18;
    const int QuantsAt = 16;

    /// <summary>Writes eight consecutive Q4_0 rows (as in the file) into their lane-major group.</summary>
    public static void LayOut(ReadOnlySpan<byte> eightRows, Span<byte> group, long rowBytes)
    {
        int blocks = (int)(rowBytes / 18);
        if (eightRows.Length < Rows * rowBytes || group.Length < Rows * rowBytes)
            throw new ArgumentException($"A lane-major group needs {Rows * rowBytes} bytes (eight rows of {rowBytes}).");
        for (int ib = 0; ib < blocks; ib++)
        {
            var column = group.Slice(ib * GroupBlockBytes, GroupBlockBytes);
            for (int r = 0; r < Rows; r++)
            {
                var block = eightRows.Slice((int)(r * rowBytes) + ib * 18, 18);
                block[..2].CopyTo(column.Slice(2 * r, 2));
                for (int m = 0; m < 4; m++)
                    block.Slice(2 + 4 * m, 4).CopyTo(column.Slice(QuantsAt + 32 * m + 4 * r, 4));
            }
        }
    }

    /// <summary>Row <paramref name="row"/>'s block <paramref name="ib"/> back in the file's 18-byte form.</summary>
    public static void ReadBlock(byte* weights, long rowBytes, int row, int ib, byte* block)
    {
        byte* column = weights + row / Rows * Rows * rowBytes + ib * (long)GroupBlockBytes;
        int r = row % Rows;
        *(ushort*)block = ((ushort*)column)[r];
        for (int m = 0; m < 4; m++) *(uint*)(block + 2 + 4 * m) = *(uint*)(column + QuantsAt + 32 * m + 4 * r);
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) × all tokens. Whole groups of sixteen tokens go through the two-row tile (tokens in the
    /// lanes, <see cref="GgmlQ0Dot.TokenTiles{TLayout}"/>); the other tokens one at a time, whole groups of eight rows in
    /// the lanes; rows of a group the range only partly covers one at a time.
    /// </summary>
    public static void MatMul(in MatMulOperands op, int rowStart, int rowEnd)
    {
        int first = Math.Min(rowEnd, (rowStart + Rows - 1) / Rows * Rows);
        int grouped = first + (rowEnd - first) / Rows * Rows;
        int done = GgmlQ0Dot.TokenTiles<LaneMajor>(op, first, grouped);
        if (grouped > first)
            for (int t = done; t < op.Tokens; t++) Token(op, t, first, grouped);
        for (int r = rowStart; r < first; r++) SingleRow(op, r);
        for (int r = grouped; r < rowEnd; r++) SingleRow(op, r);
    }

    /// <summary>Where a row's blocks sit in lane-major groups (for the tiles shared with the file's layout).</summary>
    internal readonly struct LaneMajor : IQ4_0Layout
    {
        public static int BlockStride => GroupBlockBytes;
        public static int QuantStride => 32;
        public static byte* Scale(byte* weights, long rowBytes, int row) => weights + row / Rows * Rows * rowBytes + 2 * (row % Rows);
        public static byte* Quants(byte* weights, long rowBytes, int row) => weights + row / Rows * Rows * rowBytes + QuantsAt + 4 * (row % Rows);
    }

    /// <summary>A block column's eight quant vectors (lanes = rows): m = 0..3 low nibbles, 4..7 high nibbles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Nibbles(byte* column, out Vector256<byte> w0, out Vector256<byte> w1, out Vector256<byte> w2, out Vector256<byte> w3,
        out Vector256<byte> w4, out Vector256<byte> w5, out Vector256<byte> w6, out Vector256<byte> w7)
    {
        var m4 = Vector256.Create((byte)0x0F);
        var q0 = Vector256.Load(column + QuantsAt);
        var q1 = Vector256.Load(column + QuantsAt + 32);
        var q2 = Vector256.Load(column + QuantsAt + 64);
        var q3 = Vector256.Load(column + QuantsAt + 96);
        w0 = q0 & m4; w1 = q1 & m4; w2 = q2 & m4; w3 = q3 & m4;
        w4 = Vector256.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & m4;
        w5 = Vector256.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & m4;
        w6 = Vector256.ShiftRightLogical(q2.AsUInt16(), 4).AsByte() & m4;
        w7 = Vector256.ShiftRightLogical(q3.AsUInt16(), 4).AsByte() & m4;
    }

    /// <summary>One token × whole groups of eight rows [first, end): each group's eight sums in the lanes of one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Token(in MatMulOperands op, int t, int first, int end)
    {
        int nb = op.N / 32;
        byte* y0 = op.Activations + t * op.ActivationRowBytes;
        var offsets = (int*)KernelScratch.Get(nb * 8L);
        var scales = (float*)(offsets + nb);
        GgmlQ0Dot.TokenBlockOffsets(y0, nb, offsets, scales);
        float* o = op.Output + t * op.OutputStride;
        for (int r = first; r < end; r += Rows)
        {
            byte* column = op.Weights + r * op.RowBytes;
            byte* y = y0 + 2;
            var acc = Vector256<float>.Zero;
            for (int ib = 0; ib < nb; ib++, column += GroupBlockBytes, y += 34)
            {
                var dw = HalfLanes.ToSingle(Avx2.ConvertToVector256Int32((ushort*)column).AsUInt32());
                Nibbles(column, out var w0, out var w1, out var w2, out var w3, out var w4, out var w5, out var w6, out var w7);
                // Two chains of four, not one of eight: the multiply-adds' latency, not their count, would set the pace.
                var lo = GgmlQ0Dot.UnsignedDot(Vector256.Create(offsets[ib]), w0, Vector256.Create(*(int*)y).AsSByte());
                var hi = GgmlQ0Dot.UnsignedDot(Vector256<int>.Zero, w4, Vector256.Create(*(int*)(y + 16)).AsSByte());
                lo = GgmlQ0Dot.UnsignedDot(lo, w1, Vector256.Create(*(int*)(y + 4)).AsSByte());
                hi = GgmlQ0Dot.UnsignedDot(hi, w5, Vector256.Create(*(int*)(y + 20)).AsSByte());
                lo = GgmlQ0Dot.UnsignedDot(lo, w2, Vector256.Create(*(int*)(y + 8)).AsSByte());
                hi = GgmlQ0Dot.UnsignedDot(hi, w6, Vector256.Create(*(int*)(y + 24)).AsSByte());
                lo = GgmlQ0Dot.UnsignedDot(lo, w3, Vector256.Create(*(int*)(y + 12)).AsSByte());
                hi = GgmlQ0Dot.UnsignedDot(hi, w7, Vector256.Create(*(int*)(y + 28)).AsSByte());
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lo + hi), dw * Vector256.Create(scales[ib]), acc);
            }
            var bias = op.Bias is null ? Vector256<float>.Zero : Vector256.Create(op.Bias, r);
            (acc + bias).Store(o + r);
        }
    }

    /// <summary>
    /// One row of a group the range only partly covers, every token: the row read back into the file's layout, then
    /// the file-layout dot (<see cref="GgmlQ0Dot.RepackedQ4_0Avx2"/>).
    /// </summary>
    static void SingleRow(in MatMulOperands op, int r)
    {
        int nb = op.N / 32;
        // Only tests split a group (the engine splits rows at multiples of RowGranularity, 8), so a long row may allocate.
        Span<byte> row = nb * 18 <= 16384 ? stackalloc byte[nb * 18] : new byte[nb * 18];
        fixed (byte* w = row)
        {
            for (int ib = 0; ib < nb; ib++) ReadBlock(op.Weights, op.RowBytes, r, ib, w + ib * 18);
            for (int t = 0; t < op.Tokens; t++)
                op.Output[t * op.OutputStride + r] = GgmlQ0Dot.RepackedQ4_0Avx2(w, op.Activations + t * op.ActivationRowBytes, op.N)
                    + (op.Bias is null ? 0f : op.Bias[r]);
        }
    }
}
