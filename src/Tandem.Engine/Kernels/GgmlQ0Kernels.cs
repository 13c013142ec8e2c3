using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Dot products of the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) that add their float parts in exactly the
/// order llama.cpp's x86 build (AVX2 + FMA + AVX-512 flags) does, so that our logits equal its logits bit for bit.
/// The integer part of a block (weight quants × activation quants) is exact in any order; what matters is how the
/// per-block scales and those integers are combined:
/// <list type="bullet">
/// <item>vec_dot (one token) and llamafile's tinyBLAS (batches, Q4_0/Q5_0/Q8_0) agree: eight float lanes, lane j
/// holding the integer sum of elements 4j..4j+3 of each block; per block lane = fma(d_w·d_a, lane sum, lane); at the
/// end the lanes are reduced as hsum_float_8 does: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).</item>
/// <item>Q4_1/Q5_1 (vec_dot for every batch size, tinyBLAS has no kernel for them) add the min terms m·s to a scalar
/// that GCC contracts into an FMA chain, and that scalar after the reduction.</item>
/// <item>Q4_0 matrices whose row count is a multiple of 8 are repacked at load (q4_0_8x8) and then multiplied by the
/// repack GEMM/GEMV for every batch size: one float accumulator per output, per block
/// acc = fma(integer block sum, d_w·d_a, acc).</item>
/// </list>
/// Activations are quantized as ggml's SIMD quantize_row_q8_0/q8_1 (and ggml_quantize_mat_q8_0_4x8, whose per-row
/// values are the same), see <see cref="ActivationQuant"/>.
/// The scalar methods here are the reference; the AVX2 ones give identical results faster.
/// </summary>
public static unsafe partial class GgmlQ0Dot
{
    /// <summary>hsum_float_8: 128-bit halves added, then (0+2)+(1+3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Hsum8(Vector256<float> v)
    {
        var h4 = v.GetUpper() + v.GetLower();
        float a = h4[0] + h4[2], b = h4[1] + h4[3];
        return a + b;
    }

    /// <summary>hsum_float_8 of eight floats held in an array.</summary>
    public static float Hsum8(float* l)
    {
        float r0 = l[4] + l[0], r1 = l[5] + l[1], r2 = l[6] + l[2], r3 = l[7] + l[3];
        return (r0 + r2) + (r1 + r3);
    }

    // ---------------------------------------------------------------- scalar reference

    /// <summary>Expands one weight block to its 32 integer quants in element order (Q4_0/Q5_0 offset to signed;
    /// Q4_1/Q5_1 unsigned), returning its scale (and min through <paramref name="m"/>).</summary>
    static float ExpandBlock(GgmlType type, byte* blk, int* q, out float m)
    {
        m = 0;
        switch (type)
        {
            case GgmlType.Q8_0:
            {
                var b = (BlockQ8_0*)blk;
                for (int j = 0; j < 32; j++) q[j] = b->Qs[j];
                return (float)b->D;
            }
            case GgmlType.Q4_0:
            {
                var b = (BlockQ4_0*)blk;
                for (int j = 0; j < 16; j++) { q[j] = (b->Qs[j] & 0xF) - 8; q[j + 16] = (b->Qs[j] >> 4) - 8; }
                return (float)b->D;
            }
            case GgmlType.Q4_1:
            {
                var b = (BlockQ4_1*)blk;
                for (int j = 0; j < 16; j++) { q[j] = b->Qs[j] & 0xF; q[j + 16] = b->Qs[j] >> 4; }
                m = (float)b->M;
                return (float)b->D;
            }
            case GgmlType.Q5_0:
            {
                var b = (BlockQ5_0*)blk;
                uint qh = *(uint*)b->Qh;
                for (int j = 0; j < 16; j++)
                {
                    q[j] = ((b->Qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - 16;
                    q[j + 16] = ((b->Qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
                }
                return (float)b->D;
            }
            case GgmlType.Q5_1:
            {
                var b = (BlockQ5_1*)blk;
                uint qh = *(uint*)b->Qh;
                for (int j = 0; j < 16; j++)
                {
                    q[j] = (b->Qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
                    q[j + 16] = (b->Qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                }
                m = (float)b->M;
                return (float)b->D;
            }
            default: throw new NotSupportedException($"{type} is not a 32-element block type.");
        }
    }

    /// <summary>True for the weight types whose activations are Q8_1 (with a min term).</summary>
    public static bool HasMin(GgmlType type) => type is GgmlType.Q4_1 or GgmlType.Q5_1;

    /// <summary>Scalar reference of ggml's x86 vec_dot (and tinyBLAS) for a 32-element block type.</summary>
    public static float VecDotReference(GgmlType type, byte* w, byte* a, int n)
    {
        int nb = n / 32, wsize = GgmlTypeInfo.Of(type).TypeSize;
        bool hasMin = HasMin(type);
        int asize = hasMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
        int* q = stackalloc int[32];
        float* lanes = stackalloc float[8];
        for (int j = 0; j < 8; j++) lanes[j] = 0;
        float summs = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            float dw = ExpandBlock(type, w + ib * wsize, q, out float mw);
            byte* ab = a + ib * asize;
            float da;
            sbyte* aq;
            if (hasMin)
            {
                var y = (BlockQ8_1*)ab;
                da = (float)y->D;
                aq = y->Qs;
                summs = MathF.FusedMultiplyAdd(mw, (float)y->S, summs);
            }
            else
            {
                var y = (BlockQ8_0*)ab;
                da = (float)y->D;
                aq = y->Qs;
            }
            float d = dw * da;
            for (int j = 0; j < 8; j++)
            {
                int s = 0;
                for (int k = 0; k < 4; k++) s += q[4 * j + k] * aq[4 * j + k];
                lanes[j] = MathF.FusedMultiplyAdd(d, s, lanes[j]);
            }
        }
        float r = Hsum8(lanes);
        return hasMin ? r + summs : r;
    }

    /// <summary>Scalar reference of the repacked Q4_0 (q4_0_8x8) GEMM/GEMV: one accumulator chain per output.</summary>
    public static float RepackedQ4_0Reference(byte* w, byte* a, int n)
    {
        int nb = n / 32;
        var x = (BlockQ4_0*)w;
        var y = (BlockQ8_0*)a;
        float acc = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            int s = 0;
            for (int j = 0; j < 16; j++)
            {
                int b = x[ib].Qs[j];
                s += ((b & 0xF) - 8) * y[ib].Qs[j] + ((b >> 4) - 8) * y[ib].Qs[j + 16];
            }
            acc = MathF.FusedMultiplyAdd(s, (float)x[ib].D * (float)y[ib].D, acc);
        }
        return acc;
    }

    // ---------------------------------------------------------------- AVX2

    /// <summary>Whether the AVX2 versions can run here (they give the same results as the scalar ones).</summary>
    public static bool Avx2Available => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Eight int lanes, lane j = Σ x[4j..4j+3]·y[4j..4j+3] (exact; x is made unsigned by the sign trick).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> LaneSums(Vector256<sbyte> x, Vector256<sbyte> y)
    {
        var ax = Avx2.Sign(x, x).AsByte();
        var sy = Avx2.Sign(y, x);
        var p16 = Avx2.MultiplyAddAdjacent(ax, sy);
        return Avx2.MultiplyAddAdjacent(p16, Vector256.Create((short)1));
    }

    /// <summary>
    /// <paramref name="v"/> in both halves of a 512-bit register with one insert. <c>Vector512.Create(v, v)</c> compiles
    /// to two inserts into a stale register, a false dependency inside the tiles' loops.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<T> BothHalves<T>(Vector256<T> v) => Halves(v, v);

    /// <summary><paramref name="lower"/> and <paramref name="upper"/> as one 512-bit register, with one insert (see <see cref="BothHalves{T}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<T> Halves<T>(Vector256<T> lower, Vector256<T> upper) =>
        Avx512F.InsertVector256(lower.AsUInt64().ToVector512Unsafe(), upper.AsUInt64(), 1).As<ulong, T>();

    /// <summary>
    /// 32 bytes at <paramref name="p"/> in both halves of a 512-bit register. Not <c>Avx512F.BroadcastVector256ToVector512</c>:
    /// .NET 10.0.12 encodes that instruction's memory operand with a compressed displacement scaled for 16-byte units
    /// while the CPU scales it by 32, so at an address [reg + 16k] (k ≥ 1) it reads [reg + 32k] — wrong data, silently.
    /// A load and one insert are always right (checked in KernelBroadcastTests).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> BroadcastHalf(void* p) => BothHalves(Vector256.Load((byte*)p));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<sbyte> Nibbles(byte* qs)
    {
        var raw = Vector128.Load(qs);
        var lo = raw & Vector128.Create((byte)0x0F);
        var hi = Vector128.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F);
        return Vector256.Create(lo, hi).AsSByte();
    }

    /// <summary>Byte j = 0xFF where bit j of the 32-bit mask is set, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> BitsToBytes(byte* qh)
    {
        var v = Vector256.Create(*(uint*)qh).AsByte();
        var shuf = Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte();
        var bytes = Avx2.Shuffle(v, shuf) | Vector256.Create(0x7fbfdfeff7fbfdfeUL).AsByte();
        return Vector256.Equals(bytes, Vector256<byte>.AllBitsSet);
    }

    /// <summary>A 32-element weight block type, for the AVX2 loops: its size and its quants as 32 signed bytes.</summary>
    public interface IBlock32
    {
        static abstract int Size { get; }
        static abstract Vector256<sbyte> Quants(byte* blk);
    }

    public struct Q8_0Block : IBlock32
    {
        public static int Size => 34;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(byte* blk) => Vector256.Load(((BlockQ8_0*)blk)->Qs);
    }

    public partial struct Q4_0Block : IBlock32
    {
        public static int Size => 18;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(byte* blk) => Nibbles(((BlockQ4_0*)blk)->Qs) - Vector256.Create((sbyte)8);
    }

    public struct Q4_1Block : IBlock32
    {
        public static int Size => 20;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(byte* blk) => Nibbles(((BlockQ4_1*)blk)->Qs);
    }

    public partial struct Q5_0Block : IBlock32
    {
        public static int Size => 22;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(byte* blk)
        {
            var b = (BlockQ5_0*)blk;
            return Nibbles(b->Qs) | Vector256.AndNot(Vector256.Create((byte)0xF0), BitsToBytes(b->Qh)).AsSByte();
        }
    }

    public struct Q5_1Block : IBlock32
    {
        public static int Size => 24;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(byte* blk)
        {
            var b = (BlockQ5_1*)blk;
            return Nibbles(b->Qs) | (BitsToBytes(b->Qh) & Vector256.Create((byte)0x10)).AsSByte();
        }
    }

    /// <summary>AVX2 vec_dot for the types with Q8_0 activations (Q4_0, Q5_0, Q8_0): same results as the reference.</summary>
    public static float LanesAvx2<T>(byte* w, byte* a, int n) where T : struct, IBlock32
    {
        int nb = n / 32;
        var acc = Vector256<float>.Zero;
        var y = (BlockQ8_0*)a;
        for (int ib = 0; ib < nb; ib++, w += T.Size)
        {
            float d = HalfTable.ToF32(*(ushort*)w) * HalfTable.ToF32(*(ushort*)&y[ib].D);
            var q = Avx.ConvertToVector256Single(LaneSums(T.Quants(w), Vector256.Load(y[ib].Qs)));
            acc = Fma.MultiplyAdd(Vector256.Create(d), q, acc);
        }
        return Hsum8(acc);
    }

    /// <summary>AVX2 vec_dot for the types with a min and Q8_1 activations (Q4_1, Q5_1): same results as the reference.</summary>
    public static float LanesWithMinAvx2<T>(byte* w, byte* a, int n) where T : struct, IBlock32
    {
        int nb = n / 32;
        var acc = Vector256<float>.Zero;
        float summs = 0;
        var y = (BlockQ8_1*)a;
        for (int ib = 0; ib < nb; ib++, w += T.Size)
        {
            // Q4_1 and Q5_1 both start with d, m.
            ushort* dm = (ushort*)w;
            summs = MathF.FusedMultiplyAdd(HalfTable.ToF32(dm[1]), HalfTable.ToF32(*(ushort*)&y[ib].S), summs);
            float d = HalfTable.ToF32(dm[0]) * HalfTable.ToF32(*(ushort*)&y[ib].D);
            var q = Avx.ConvertToVector256Single(LaneSums(T.Quants(w), Vector256.Load(y[ib].Qs)));
            acc = Fma.MultiplyAdd(Vector256.Create(d), q, acc);
        }
        return Hsum8(acc) + summs;
    }

    // ---------------------------------------------------------------- multi-token tiles (prefill, batched decode)

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> BlockStep<T>(byte* w, Vector256<byte> ax, Vector256<sbyte> x, float dw, byte* y, Vector256<float> acc)
        where T : struct, IBlock32
    {
        var lanes = UnsignedDot(Vector256<int>.Zero, ax, Avx2.Sign(Vector256.Load((sbyte*)y + 2), x));
        float d = dw * HalfTable.ToF32(*(ushort*)y);
        return Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(lanes), acc);
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) × all tokens with Q8_0 activations (Q4_0, Q5_0, Q8_0): each weight block is decoded once
    /// for four tokens. Every output is the same FMA chain over its eight lanes as <see cref="LanesAvx2{T}"/>, so the
    /// results are identical; the time saved is the weight decoding and loop overhead, which dominate a single dot.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileAvx2<T>(in MatMulOperands op, int rowStart, int rowEnd) where T : struct, IBlock32
    {
        int nb = op.N / 32, tokens = op.Tokens;
        long ys = op.ActivationRowBytes;
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = op.Weights + r * op.RowBytes;
            float bias = op.Bias is null ? 0f : op.Bias[r];
            int t = 0;
            for (; t + 4 <= tokens; t += 4)
            {
                byte* y0 = op.Activations + t * ys, y1 = y0 + ys, y2 = y1 + ys, y3 = y2 + ys;
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                byte* w = row;
                for (int ib = 0; ib < nb; ib++, w += T.Size)
                {
                    var x = T.Quants(w);
                    var ax = Avx2.Sign(x, x).AsByte();
                    float dw = HalfTable.ToF32(*(ushort*)w);
                    long off = ib * 34L;
                    a0 = BlockStep<T>(w, ax, x, dw, y0 + off, a0);
                    a1 = BlockStep<T>(w, ax, x, dw, y1 + off, a1);
                    a2 = BlockStep<T>(w, ax, x, dw, y2 + off, a2);
                    a3 = BlockStep<T>(w, ax, x, dw, y3 + off, a3);
                }
                float* o = op.Output + (long)t * op.OutputStride + r;
                o[0] = Hsum8(a0) + bias;
                o[op.OutputStride] = Hsum8(a1) + bias;
                o[2L * op.OutputStride] = Hsum8(a2) + bias;
                o[3L * op.OutputStride] = Hsum8(a3) + bias;
            }
            for (; t < tokens; t++)
                op.Output[(long)t * op.OutputStride + r] = LanesAvx2<T>(row, op.Activations + t * ys, op.N) + bias;
        }
    }

    /// <summary>
    /// <see cref="Hsum8(Vector256{float})"/> of the eight 8-lane accumulators held two per register (token 2k in the
    /// lower half of a_k, 2k+1 in the upper), reduced side by side in the lanes with Hsum8's own additions —
    /// x_i = v_i + v_{i+4}, then (x0 + x2) + (x1 + x3) — so every sum is identical, in about a third of the instructions
    /// (at short rows the horizontal sums were ~10% of a tile's time). Token k's sum is lane 4k of First (k &lt; 4) or
    /// lane 4(k − 4) of Second.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (Vector512<float> First, Vector512<float> Second) PairHsums(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        // 128-bit quarter j of x03 = token j's x0..x3 (tokens 0–3 from a0, a1; 4–7 from a2, a3 in x47).
        var x03 = Avx512F.Shuffle4x128(a0, a1, 0b10_00_10_00) + Avx512F.Shuffle4x128(a0, a1, 0b11_01_11_01);
        var x47 = Avx512F.Shuffle4x128(a2, a3, 0b10_00_10_00) + Avx512F.Shuffle4x128(a2, a3, 0b11_01_11_01);
        var y03 = x03 + Avx512F.Permute4x32(x03, 0b01_00_11_10);   // lane 0: x0 + x2, lane 1: x1 + x3
        var y47 = x47 + Avx512F.Permute4x32(x47, 0b01_00_11_10);
        return (y03 + Avx512F.Permute4x32(y03, 0b10_11_00_01), y47 + Avx512F.Permute4x32(y47, 0b10_11_00_01)); // lane 0: (x0 + x2) + (x1 + x3)
    }

    /// <summary>Stores Hsum8 + bias of four registers of two tokens each (<see cref="PairHsums"/>) at o, o + os, … o + 7·os.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StorePairs(float* o, long os, float bias, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        var (h03, h47) = PairHsums(a0, a1, a2, a3);
        var b = Vector512.Create(bias);
        var s03 = h03 + b;
        var s47 = h47 + b;
        o[0] = s03.GetElement(0); o[os] = s03.GetElement(4); o[2 * os] = s03.GetElement(8); o[3 * os] = s03.GetElement(12);
        o[4 * os] = s47.GetElement(0); o[5 * os] = s47.GetElement(4); o[6 * os] = s47.GetElement(8); o[7 * os] = s47.GetElement(12);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> BlockLanes(Vector256<byte> ax, Vector256<sbyte> x, byte* y) =>
        UnsignedDot(Vector256<int>.Zero, ax, Avx2.Sign(Vector256.Load((sbyte*)y + 2), x));

    // Per block of a group of eight tokens: eight vectors of 4-element groups (lane t = token t's four quants),
    // then −8 × each token's block quant sum, then the tokens' scales.
    const long Q4GroupBlockBytes = 8 * 32 + 32 + 32;

    /// <summary>
    /// Repacked Q4_0 order (<see cref="RepackedQ4_0Avx2"/>) for rows × tokens as in the file: tokens in groups of 32
    /// and 16 through <see cref="TokenTiles{TLayout}"/>, then a group of eight here, then one token at a time
    /// (<see cref="RepackedQ4_0Rows8"/>). Here eight tokens sit in the lanes: the activations of a group are transposed
    /// once so that lane t of vector k holds token t's quants 4k..4k+3; each weight group of four unsigned nibbles is broadcast and dotted against all eight tokens at once
    /// (VNNI where available), the −8 offset enters as the accumulator's start, and the exact block sums (lane = token)
    /// feed acc = fma(sum, d_w·d_a, acc) per lane — the scalar chain, with no horizontal reduction anywhere.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileRepackedQ4_0(in MatMulOperands op, int rowStart, int rowEnd)
    {
        int nb = op.N / 32, tokens = op.Tokens, sixteens = TokenTiles<FileLayout>(op, rowStart, rowEnd);
        int tiled = sixteens + (tokens - sixteens) / 8 * 8;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        if (tiled > sixteens)
        {
            byte* layout = KernelScratch.Get(nb * Q4GroupBlockBytes);
            var m4 = Vector256.Create((byte)0xF);
            for (int t = sixteens; t < tiled; t += 8)
            {
                LayOutQ4Group(op.Activations + t * ys, ys, nb, layout);
                for (int r = rowStart; r < rowEnd; r++)
                {
                    byte* x = op.Weights + r * op.RowBytes;
                    var acc = Vector256<float>.Zero;
                    for (int ib = 0; ib < nb; ib++)
                    {
                        // Weight group m (elements 4m..4m+3) is the low nibbles of bytes 4m..4m+3, group m+4 their high nibbles.
                        byte* qs = x + ib * 18 + 2;
                        var blk = (Vector256<sbyte>*)(layout + ib * Q4GroupBlockBytes);
                        var sums = ((Vector256<int>*)blk)[8];
                        var b0 = Vector256.Create(*(int*)qs).AsByte();
                        var b1 = Vector256.Create(*(int*)(qs + 4)).AsByte();
                        var b2 = Vector256.Create(*(int*)(qs + 8)).AsByte();
                        var b3 = Vector256.Create(*(int*)(qs + 12)).AsByte();
                        sums = UnsignedDot(sums, b0 & m4, blk[0]);
                        sums = UnsignedDot(sums, b1 & m4, blk[1]);
                        sums = UnsignedDot(sums, b2 & m4, blk[2]);
                        sums = UnsignedDot(sums, b3 & m4, blk[3]);
                        sums = UnsignedDot(sums, Vector256.ShiftRightLogical(b0.AsUInt16(), 4).AsByte() & m4, blk[4]);
                        sums = UnsignedDot(sums, Vector256.ShiftRightLogical(b1.AsUInt16(), 4).AsByte() & m4, blk[5]);
                        sums = UnsignedDot(sums, Vector256.ShiftRightLogical(b2.AsUInt16(), 4).AsByte() & m4, blk[6]);
                        sums = UnsignedDot(sums, Vector256.ShiftRightLogical(b3.AsUInt16(), 4).AsByte() & m4, blk[7]);
                        var d = Vector256.Create(HalfTable.ToF32(*(ushort*)(qs - 2))) * ((Vector256<float>*)blk)[9];
                        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), d, acc);
                    }
                    acc += Vector256.Create(op.Bias is null ? 0f : op.Bias[r]);
                    float* o = op.Output + t * os + r;
                    TokenLanes.Store8(o, os, acc);
                }
            }
        }
        for (int t = tiled; t < tokens; t++)
            RepackedQ4_0Rows8(op, t, rowStart, rowEnd);
    }

    /// <summary>acc + Σ over each 4-byte lane of u·s (unsigned × signed bytes; exact): VNNI's vpdpbusd, else two multiply-adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> UnsignedDot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s) =>
        AvxVnni.IsSupported
            ? AvxVnni.MultiplyWideningAndAdd(acc, u, s)
            : acc + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));

    static void LayOutQ4Group(byte* y0, long ys, int nb, byte* layout) => LayOutQ4Tokens(y0, ys, nb, 8, layout);

    /// <summary>
    /// <paramref name="tokens"/> tokens' Q8_0 activations with the tokens in the lanes: per block, eight vectors of
    /// 4·tokens bytes (lane t = token t's quants 4k..4k+3), then −8 × each token's block quant sum, then the tokens'
    /// scales — 40·tokens bytes a block.
    /// </summary>
    internal static void LayOutQ4Tokens(byte* y0, long ys, int nb, int tokens, byte* layout)
    {
        int vector = 4 * tokens;
        for (int ib = 0; ib < nb; ib++)
        {
            byte* blk = layout + ib * 10L * vector;
            var offsets = (int*)(blk + 8 * vector);
            var scales = (float*)(blk + 9 * vector);
            for (int t = 0; t < tokens; t++)
            {
                var y = (BlockQ8_0*)(y0 + t * ys) + ib;
                for (int k = 0; k < 8; k++)
                    *(int*)(blk + k * vector + 4 * t) = *(int*)(y->Qs + 4 * k);
                offsets[t] = -8 * QuantSum(y->Qs);
                scales[t] = HalfTable.ToF32(*(ushort*)&y->D);
            }
        }
    }

    /// <summary>Σ of a Q8_0 block's 32 quants (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int QuantSum(sbyte* qs) =>
        Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256.Create((byte)1), Vector256.Load(qs)), Vector256.Create((short)1)));

    /// <summary>
    /// Per Q8_0 block of one token: −8 × its quant sum and its scale as f32. The −8 of every Q4_0 weight quant comes out
    /// of the rows: Σ (q − 8)·y = Σ q·y − 8·Σ y, and −8·Σ y is the same for every row, so it is computed once per block.
    /// </summary>
    internal static void TokenBlockOffsets(byte* y0, int nb, int* offsets, float* scales)
    {
        for (int ib = 0; ib < nb; ib++)
        {
            var y = (BlockQ8_0*)y0 + ib;
            offsets[ib] = -8 * QuantSum(y->Qs);
            scales[ib] = HalfTable.ToF32(*(ushort*)&y->D);
        }
    }

    /// <summary>
    /// Repacked Q4_0 order for one token (decode, and the tokens left over from whole groups of eight): eight rows at a
    /// time, the rows' integer block sums reduced into one vector (lane = row), each lane the scalar chain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RepackedQ4_0Rows8(in MatMulOperands op, int t, int rowStart, int rowEnd)
    {
        int nb = op.N / 32, grouped = rowStart + (rowEnd - rowStart) / 8 * 8;
        long rb = op.RowBytes;
        byte* y0 = op.Activations + t * op.ActivationRowBytes;
        float* o = op.Output + t * (long)op.OutputStride;
        var offsets = (int*)KernelScratch.Get(nb * 8L);
        var scales = (float*)(offsets + nb);
        TokenBlockOffsets(y0, nb, offsets, scales);
        // Each row's scale d is the first two bytes of its block: one gather fetches the eight rows' at once.
        var rowOffsets = EightRowOffsets(rb);
        for (int r = rowStart; r < grouped; r += 8)
        {
            byte* w = op.Weights + r * rb;
            var acc = Vector256<float>.Zero;
            for (int ib = 0; ib < nb; ib++)
            {
                byte* x = w + ib * 18L;
                byte* y = y0 + ib * 34L + 2;
                // Eight rows of the file's layout are read side by side, a pattern the hardware prefetchers follow poorly
                // from DRAM (decode reads every weight once): fetch the next group's bytes at the same offsets ahead of
                // time. (Rows interleaved at load are one stream and need no help: Q4_0Lanes.)
                if (Sse.IsSupported && (ib & 3) == 0)
                    for (int k = 16; k < 24; k++) Sse.Prefetch0(x + k * rb);
                var ys = Vector256.Load((sbyte*)y);
                var sums = GgmlKQuantDot.Reduce8(UnsignedDot(default, UnsignedNibbles(x + 2), ys), UnsignedDot(default, UnsignedNibbles(x + rb + 2), ys),
                    UnsignedDot(default, UnsignedNibbles(x + 2 * rb + 2), ys), UnsignedDot(default, UnsignedNibbles(x + 3 * rb + 2), ys),
                    UnsignedDot(default, UnsignedNibbles(x + 4 * rb + 2), ys), UnsignedDot(default, UnsignedNibbles(x + 5 * rb + 2), ys),
                    UnsignedDot(default, UnsignedNibbles(x + 6 * rb + 2), ys), UnsignedDot(default, UnsignedNibbles(x + 7 * rb + 2), ys));
                sums += Vector256.Create(offsets[ib]);
                var dw = HalfLanes.ToSingle(Avx2.GatherVector256((int*)x, rowOffsets, 1).AsUInt32());
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), dw * Vector256.Create(scales[ib]), acc);
            }
            var bias = op.Bias is null ? Vector256<float>.Zero : Vector256.Create(op.Bias, r);
            (acc + bias).Store(o + r);
        }
        for (int r = grouped; r < rowEnd; r++)
            o[r] = RepackedQ4_0Avx2(op.Weights + r * rb, y0, op.N) + (op.Bias is null ? 0f : op.Bias[r]);
    }

    /// <summary>Byte offsets of the same block in eight rows <paramref name="rowStride"/> apart, for gathers.</summary>
    internal static Vector256<int> EightRowOffsets(long rowStride) =>
        Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * Vector256.Create(checked((int)rowStride));

    /// <summary>A Q4_0 block's 16 quant bytes as 32 unsigned nibbles (low nibbles, then high), 0..15.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> UnsignedNibbles(byte* qs)
    {
        if (!Avx512BW.VL.IsSupported) return Nibbles(qs).AsByte();
        var both = Vector256.Create(Vector128.Load(qs));
        var shifted = Avx512BW.VL.ShiftRightLogicalVariable(both.AsUInt16(), Vector256.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4));
        return shifted.AsByte() & Vector256.Create((byte)0x0F);
    }

    /// <summary>The multi-token AVX2 tile for a weight type with Q8_0 activations, or null.</summary>
    public static TileFn? TileAvx2For(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => TileAvx2<Q8_0Block>,
        GgmlType.Q4_0 => TileAvx2<Q4_0Block>,
        GgmlType.Q5_0 => TileAvx2<Q5_0Block>,
        GgmlType.Q4_1 => TileWithMinAvx2<Q4_1Block>,
        GgmlType.Q5_1 => TileWithMinAvx2<Q5_1Block>,
        _ => null,
    };

    /// <summary>The multi-token AVX-512 tile for a weight type with Q8_0 activations, or null.</summary>
    public static TileFn? TileAvx512For(GgmlType type) => !Avx512BW.IsSupported ? null : type switch
    {
        GgmlType.Q8_0 => TileAvx512<Q8_0Block, WideRow<Q8_0Block>>,
        GgmlType.Q4_0 => TileAvx512<Q4_0Block, OffsetRow<Q4_0Block>>,
        GgmlType.Q5_0 => TileAvx512<Q5_0Block, OffsetRow<Q5_0Block>>,
        GgmlType.Q4_1 => TileWithMinAvx512<Q4_1Block>,
        GgmlType.Q5_1 => TileWithMinAvx512<Q5_1Block>,
        _ => null,
    };

    public delegate void TileFn(in MatMulOperands op, int rowStart, int rowEnd);

    /// <summary>The AVX2 vec_dot for a weight type.</summary>
    public static delegate*<byte*, byte*, int, float> VecDotAvx2For(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => &LanesAvx2<Q8_0Block>,
        GgmlType.Q4_0 => &LanesAvx2<Q4_0Block>,
        GgmlType.Q5_0 => &LanesAvx2<Q5_0Block>,
        GgmlType.Q4_1 => &LanesWithMinAvx2<Q4_1Block>,
        GgmlType.Q5_1 => &LanesWithMinAvx2<Q5_1Block>,
        _ => throw new NotSupportedException($"{type} is not a 32-element block type."),
    };

    /// <summary>AVX2 version of <see cref="VecDotReference"/> (identical results).</summary>
    public static float VecDotAvx2(GgmlType type, byte* w, byte* a, int n) => VecDotAvx2For(type)(w, a, n);

    /// <summary>AVX2 version of <see cref="RepackedQ4_0Reference"/> (identical results).</summary>
    public static float RepackedQ4_0Avx2(byte* w, byte* a, int n)
    {
        int nb = n / 32;
        var y = (BlockQ8_0*)a;
        float acc = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            var x = (BlockQ4_0*)w + ib;
            var lanes = LaneSums(Nibbles(x->Qs) - Vector256.Create((sbyte)8), Vector256.Load(y[ib].Qs));
            int s = Vector256.Sum(lanes);
            acc = MathF.FusedMultiplyAdd(s, HalfTable.ToF32(*(ushort*)&x->D) * HalfTable.ToF32(*(ushort*)&y[ib].D), acc);
        }
        return acc;
    }
}

/// <summary>
/// A Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 kernel in llama.cpp's x86 summation order (see <see cref="GgmlQ0Dot"/>).
/// <paramref name="repacked"/> selects the q4_0_8x8 repack order llama.cpp uses for Q4_0 matrices with a row count
/// that is a multiple of 8. The order is the same for one token and for batches, so <see cref="MatVecKernel.DotInMatMul"/>
/// is <see cref="Dot"/>.
/// </summary>
public sealed unsafe class GgmlQ0Kernel : MatVecKernel
{
    /// <summary>Weight types this kernel handles.</summary>
    public static readonly GgmlType[] Types = [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0];

    readonly GgmlType _type;
    readonly bool _repacked, _simd, _vector128, _interleaved;
    readonly delegate*<byte*, byte*, int, float> _avx2;
    readonly GgmlQ0Dot.TileFn? _tile;

    /// <param name="simd">use the fastest form this CPU has (AVX2, else portable 128-bit vectors); false: the scalar reference.</param>
    /// <param name="forceVector128">use the portable 128-bit form even where AVX2 exists (tests, and ARM64's path).</param>
    /// <param name="interleaved">the repacked Q4_0 (or the Q5_0) kernel over weights interleaved at load (<see cref="Q4_0Lanes"/>, <see cref="Q5_0Lanes"/>);
    /// AVX2 only, and only its <see cref="MatMul"/> reads that layout (<see cref="Dot"/> takes rows as in the file).</param>
    public GgmlQ0Kernel(GgmlType weightType, bool repacked = false, bool simd = true, bool forceVector128 = false, bool interleaved = false)
    {
        if (Array.IndexOf(Types, weightType) < 0) throw new NotSupportedException($"{weightType} is not a 32-element block type.");
        if (repacked && weightType != GgmlType.Q4_0) throw new NotSupportedException("Only Q4_0 is repacked.");
        _type = weightType;
        _repacked = repacked;
        _simd = simd && !forceVector128 && GgmlQ0Dot.Avx2Available;
        _vector128 = !_simd && (forceVector128 || (simd && Vector128Dot.Accelerated));
        if (interleaved && !(_simd && (repacked || weightType == GgmlType.Q5_0)))
            throw new NotSupportedException("Interleaved weights are read by the AVX2 repacked Q4_0 and Q5_0 kernels only.");
        _interleaved = interleaved;
        _avx2 = repacked ? &GgmlQ0Dot.RepackedQ4_0Avx2 : GgmlQ0Dot.VecDotAvx2For(weightType);
        _tile = !_simd ? null : interleaved ? (repacked ? Q4_0Lanes.MatMul : Q5_0Lanes.MatMul) : repacked ? GgmlQ0Dot.TileRepackedQ4_0
            : GgmlQ0Dot.TileAvx512For(weightType) ?? GgmlQ0Dot.TileAvx2For(weightType);
    }

    /// <summary>Whether this CPU reads Q4_0 and Q5_0 weights interleaved at load (<see cref="Q4_0Lanes"/>, <see cref="Q5_0Lanes"/>).</summary>
    public static bool CanInterleave => GgmlQ0Dot.Avx2Available;

    public override int RowGranularity => _interleaved ? Q4_0Lanes.Rows : 1; // Q5_0Lanes.Rows is the same 8

    /// <summary>Whether llama.cpp's x86 CPU backend repacks a weight matrix of this type and row count (q4_0_8x8).</summary>
    public static bool IsRepacked(GgmlType type, int rows) => type == GgmlType.Q4_0 && rows % 8 == 0;

    public bool Repacked => _repacked;
    public override GgmlType WeightType => _type;
    public override GgmlType ActivationType => GgmlQ0Dot.HasMin(_type) ? GgmlType.Q8_1 : GgmlType.Q8_0;
    public override string Isa => (_interleaved ? (_repacked ? "ggml-repack-interleaved" : "ggml-order-interleaved") : _repacked ? "ggml-repack" : "ggml-order") + (_simd ? "-avx2" : _vector128 ? "-vector128" : "-scalar");

    public override void PrepareActivation(ReadOnlySpan<float> x, Span<byte> dst) => ActivationQuant.Quantize(ActivationType, x, dst);

    public override void MatMul(in MatMulOperands op, int rowStart, int rowEnd)
    {
        if (_tile is not null) _tile(op, rowStart, rowEnd);
        else base.MatMul(op, rowStart, rowEnd);
    }

    public override float Dot(byte* w, byte* a, int n)
    {
        if (_simd) return _avx2(w, a, n);
        if (_vector128) return _repacked ? Vector128Dot.RepackedQ4_0(w, a, n) : Vector128Dot.VecDotQ0(_type, w, a, n);
        return _repacked ? GgmlQ0Dot.RepackedQ4_0Reference(w, a, n) : GgmlQ0Dot.VecDotReference(_type, w, a, n);
    }

    public override string ToString() => $"{GgmlTypeInfo.Of(_type).Name} [{Isa}]";
}
