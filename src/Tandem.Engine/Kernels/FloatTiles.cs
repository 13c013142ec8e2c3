using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tandem.Gguf;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Multi-token tiles for float weights (F32, F16, BF16) in llamafile tinyBLAS order, the order llama.cpp uses for
/// batches when the row length is a multiple of 16 (and the row count of 4): one 16-lane FMA chain per output over
/// the whole row, reduced like _mm512_reduce_add_ps. Widening F16/BF16 to F32 is exact, so decoding each weight chunk
/// once for eight tokens, against activations widened once per token group, gives every output the same bits as
/// <see cref="TinyBlasF16"/> (and the F32/BF16 forms).
/// </summary>
public static unsafe partial class GgmlFloatDot
{
    /// <summary>A float row type: its 16-element chunk <c>c</c> widened to F32.</summary>
    interface IFloatRow
    {
        static abstract Vector512<float> Chunk(byte* row, int c);
    }

    struct F32Row : IFloatRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Chunk(byte* row, int c) => Vector512.Load((float*)row + 16 * c);
    }

    struct F16Row : IFloatRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Chunk(byte* row, int c) => WidenF16((ushort*)row + 16 * c);
    }

    struct BF16Row : IFloatRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Chunk(byte* row, int c) => LoadBF16((ushort*)row + 16 * c);
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) × all tokens in tinyBLAS order (row length a multiple of 16): eight tokens per weight
    /// decode, their activations widened once per group into this thread's scratch (chunk-major, so the row loop
    /// reads them in order); the last tokens of an incomplete group one tinyBLAS dot each.
    /// </summary>
    public static void TinyBlasTile(GgmlType type, in MatMulOperands op, int rowStart, int rowEnd)
    {
        switch (type)
        {
            case GgmlType.F32: TinyBlasTile<F32Row>(op, rowStart, rowEnd); break;
            case GgmlType.F16: TinyBlasTile<F16Row>(op, rowStart, rowEnd); break;
            case GgmlType.BF16: TinyBlasTile<BF16Row>(op, rowStart, rowEnd); break;
            default: throw new NotSupportedException($"{type} is not a float weight type.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TinyBlasTile<T>(in MatMulOperands op, int rowStart, int rowEnd) where T : struct, IFloatRow
    {
        int chunks = op.N / Lanes, tokens = op.Tokens, t = 0;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        if (tokens >= 8)
        {
            var layout = (Vector512<float>*)KernelScratch.Get(chunks * 8 * 64L);
            for (; t + 8 <= tokens; t += 8)
            {
                for (int k = 0; k < 8; k++)
                {
                    byte* a = op.Activations + (t + k) * ys;
                    for (int c = 0; c < chunks; c++) layout[c * 8 + k] = T.Chunk(a, c);
                }
                for (int r = rowStart; r < rowEnd; r++)
                    TinyBlasRow8<T>(op.Weights + r * op.RowBytes, chunks, layout, op.Output + t * os + r, os, op.Bias is null ? 0f : op.Bias[r]);
            }
        }
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = op.Weights + r * op.RowBytes;
            float bias = op.Bias is null ? 0f : op.Bias[r];
            for (int k = t; k < tokens; k++)
                op.Output[k * os + r] = TinyBlas<T>(row, op.Activations + k * ys, op.N) + bias;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TinyBlasRow8<T>(byte* row, int chunks, Vector512<float>* layout, float* o, long os, float bias) where T : struct, IFloatRow
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int c = 0; c < chunks; c++)
        {
            var w = T.Chunk(row, c);
            var y = layout + c * 8;
            a0 = Vector512.FusedMultiplyAdd(w, y[0], a0);
            a1 = Vector512.FusedMultiplyAdd(w, y[1], a1);
            a2 = Vector512.FusedMultiplyAdd(w, y[2], a2);
            a3 = Vector512.FusedMultiplyAdd(w, y[3], a3);
            a4 = Vector512.FusedMultiplyAdd(w, y[4], a4);
            a5 = Vector512.FusedMultiplyAdd(w, y[5], a5);
            a6 = Vector512.FusedMultiplyAdd(w, y[6], a6);
            a7 = Vector512.FusedMultiplyAdd(w, y[7], a7);
        }
        o[0] = ReduceAdd(a0) + bias; o[os] = ReduceAdd(a1) + bias;
        o[2 * os] = ReduceAdd(a2) + bias; o[3 * os] = ReduceAdd(a3) + bias;
        o[4 * os] = ReduceAdd(a4) + bias; o[5 * os] = ReduceAdd(a5) + bias;
        o[6 * os] = ReduceAdd(a6) + bias; o[7 * os] = ReduceAdd(a7) + bias;
    }
}
