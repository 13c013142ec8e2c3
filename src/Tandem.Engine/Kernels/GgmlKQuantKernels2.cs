using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Q2_K, Q3_K and Q5_K dot products against Q8_K activations that round exactly as llama.cpp's x86 build
/// (AVX2/AVX-512 flags, GCC -O3) does, so our results equal its results bit for bit.
/// <para>
/// The integer work is exact whichever way it is done; what has to match is the float arithmetic:
/// </para>
/// <list type="bullet">
/// <item>ggml_vec_dot_q{2,3,5}_K_q8_K (one token, and batches of Q3_K/Q5_K, since llamafile's sgemm has no
/// K-quant path on x86): eight float lanes; lane l holds, per 256-element block, the scaled integer sums of the
/// elements whose index within each 32-element run is 4l..4l+3. Each block adds d·lane (and for Q2_K first
/// dmin·(pairwise mins×bsums)) into its lane with a fused multiply-add; the lanes are summed as
/// (l0+l4 + l2+l6) + (l1+l5 + l3+l7). Q5_K keeps the mins term in one scalar, fused by GCC, added last.</item>
/// <item>Q2_K tensors with a row count divisible by 8 are repacked by llama.cpp (q2_K 8x8) and then every
/// matrix product goes through the repack kernels: groups of four tokens through the GEMM, which adds
/// d·isum and dmin·imin per 128-element half block, the remaining tokens through the GEMV, which adds them per
/// 256-element block; two float accumulators per output, subtracted at the end. The GEMM's Q8_K activations
/// (ggml_quantize_mat_q8_K_4x8) have the same values as quantize_row_q8_K's.</item>
/// </list>
/// Each routine has a plain scalar form (the reference that documents the order) and an AVX2 form used when the
/// CPU has it; both give identical results.
/// </summary>
public static unsafe partial class GgmlKQuant2Dot
{
    const int QK = 256;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Fp16(Half h) => HalfTable.ToF32(h);

    /// <summary>hsum_float_8: the upper four lanes added to the lower four, then (0+2) + (1+3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Hsum8(float* lanes)
    {
        float t0 = lanes[4] + lanes[0], t1 = lanes[5] + lanes[1], t2 = lanes[6] + lanes[2], t3 = lanes[7] + lanes[3];
        return (t0 + t2) + (t1 + t3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Hsum8(Vector256<float> v)
    {
        var t = v.GetUpper() + v.GetLower();
        return (t.GetElement(0) + t.GetElement(2)) + (t.GetElement(1) + t.GetElement(3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int HsumInt(Vector256<int> v)
    {
        var t = v.GetUpper() + v.GetLower();
        return t.GetElement(0) + t.GetElement(1) + t.GetElement(2) + t.GetElement(3);
    }

    /// <summary>Two 16-bit scales: the first for the lower 128 bits (4 int32 lanes), the second for the upper.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<short> ScalePair(int lo, int hi) => Vector256.Create(Vector128.Create((short)lo), Vector128.Create((short)hi));

    /// <summary>Bit <paramref name="bit"/> of every byte, as 0 or 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> BitOfBytes(Vector256<byte> v, int bit) =>
        Vector256.ShiftRightLogical(v.AsUInt16(), bit).AsByte() & Vector256.Create((byte)1);

    // ======================= Q2_K =======================

    /// <summary>ggml_vec_dot_q2_K_q8_K, scalar form.</summary>
    public static float VecDotQ2KScalar(byte* w, byte* a, int n)
    {
        var x = (BlockQ2_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK;
        float* acc = stackalloc float[8];
        int* lane = stackalloc int[8];
        for (int l = 0; l < 8; l++) acc[l] = 0;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * Fp16(x[i].D);
            float dmin = -y[i].D * Fp16(x[i].DMin);
            byte* sc = x[i].Scales;
            short* bs = y[i].BSums;
            for (int k = 0; k < 8; k++)
            {
                int prod = (sc[2 * k] >> 4) * bs[2 * k] + (sc[2 * k + 1] >> 4) * bs[2 * k + 1];
                acc[k] = MathF.FusedMultiplyAdd(dmin, prod, acc[k]);
            }
            for (int l = 0; l < 8; l++) lane[l] = 0;
            for (int j = 0; j < 2; j++)
            {
                byte* q2 = x[i].Qs + 32 * j;
                for (int p = 0; p < 4; p++)
                {
                    sbyte* q8 = y[i].Qs + 128 * j + 32 * p;
                    int shift = 2 * p;
                    for (int l = 0; l < 8; l++)
                    {
                        int s = 0;
                        for (int e = 4 * l; e < 4 * l + 4; e++) s += ((q2[e] >> shift) & 3) * q8[e];
                        lane[l] += (sc[8 * j + 2 * p + (l >> 2)] & 0xF) * s;
                    }
                }
            }
            for (int l = 0; l < 8; l++) acc[l] = MathF.FusedMultiplyAdd(d, lane[l], acc[l]);
        }
        return Hsum8(acc);
    }

    /// <summary>ggml_vec_dot_q2_K_q8_K (AVX2 when available).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float VecDotQ2K(byte* w, byte* a, int n)
    {
        if (!Avx2.IsSupported) return VecDotQ2KScalar(w, a, n);
        var x = (BlockQ2_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK;
        var m3 = Vector256.Create((byte)3);
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * Fp16(x[i].D);
            float dmin = -y[i].D * Fp16(x[i].DMin);
            byte* sc = x[i].Scales;
            var packed = Vector128.Load(sc);
            var mins = Avx2.ConvertToVector256Int16(Vector128.ShiftRightLogical(packed, 4));
            var prod = Avx2.MultiplyAddAdjacent(mins, Vector256.Load(y[i].BSums));
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(dmin), Vector256.ConvertToSingle(prod), acc);
            var sumi = Vector256<int>.Zero;
            for (int j = 0; j < 2; j++)
            {
                var q2bits = Vector256.Load(x[i].Qs + 32 * j);
                sbyte* q8 = y[i].Qs + 128 * j;
                byte* s = sc + 8 * j;
                sumi += Q2Quarter(q2bits & m3, q8, s[0], s[1])
                      + Q2Quarter(Vector256.ShiftRightLogical(q2bits.AsUInt16(), 2).AsByte() & m3, q8 + 32, s[2], s[3])
                      + Q2Quarter(Vector256.ShiftRightLogical(q2bits.AsUInt16(), 4).AsByte() & m3, q8 + 64, s[4], s[5])
                      + Q2Quarter(Vector256.ShiftRightLogical(q2bits.AsUInt16(), 6).AsByte() & m3, q8 + 96, s[6], s[7]);
            }
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(d), Vector256.ConvertToSingle(sumi), acc);
        }
        return Hsum8(acc);
    }

    /// <summary>32 elements of 2-bit quants times Q8: eight int32 lanes of 4 elements, scaled by the low nibbles
    /// of sc0 (lanes 0..3) and sc1 (lanes 4..7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Q2Quarter(Vector256<byte> q, sbyte* q8, byte sc0, byte sc1) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(q8)), ScalePair(sc0 & 0xF, sc1 & 0xF));

    /// <summary>Integer sums of one Q2_K block with one Q8_K block per 128-element half:
    /// isum[h] = Σ scale·(q2·q8) and imin[h] = Σ min·bsum over the half's eight 16-element sub-blocks.</summary>
    static void Q2KHalfSumsScalar(BlockQ2_K* x, BlockQ8_K* y, int* isum, int* imin)
    {
        byte* sc = x->Scales;
        for (int h = 0; h < 2; h++)
        {
            byte* q2 = x->Qs + 32 * h;
            int s = 0, m = 0;
            for (int p = 0; p < 4; p++)
            {
                sbyte* q8 = y->Qs + 128 * h + 32 * p;
                int shift = 2 * p;
                int s0 = 0, s1 = 0;
                for (int e = 0; e < 16; e++) s0 += ((q2[e] >> shift) & 3) * q8[e];
                for (int e = 16; e < 32; e++) s1 += ((q2[e] >> shift) & 3) * q8[e];
                s += (sc[8 * h + 2 * p] & 0xF) * s0 + (sc[8 * h + 2 * p + 1] & 0xF) * s1;
            }
            for (int k = 0; k < 8; k++) m += (sc[8 * h + k] >> 4) * y->BSums[8 * h + k];
            isum[h] = s;
            imin[h] = m;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Q2KHalfSums(BlockQ2_K* x, BlockQ8_K* y, int* isum, int* imin)
    {
        if (!Avx2.IsSupported) { Q2KHalfSumsScalar(x, y, isum, imin); return; }
        var m3 = Vector256.Create((byte)3);
        byte* sc = x->Scales;
        var mins = Avx2.ConvertToVector256Int16(Vector128.ShiftRightLogical(Vector128.Load(sc), 4));
        var prod = Avx2.MultiplyAddAdjacent(mins, Vector256.Load(y->BSums));
        imin[0] = prod.GetElement(0) + prod.GetElement(1) + prod.GetElement(2) + prod.GetElement(3);
        imin[1] = prod.GetElement(4) + prod.GetElement(5) + prod.GetElement(6) + prod.GetElement(7);
        for (int h = 0; h < 2; h++)
        {
            var q2bits = Vector256.Load(x->Qs + 32 * h);
            sbyte* q8 = y->Qs + 128 * h;
            byte* s = sc + 8 * h;
            var sumi = Q2Quarter(q2bits & m3, q8, s[0], s[1])
                     + Q2Quarter(Vector256.ShiftRightLogical(q2bits.AsUInt16(), 2).AsByte() & m3, q8 + 32, s[2], s[3])
                     + Q2Quarter(Vector256.ShiftRightLogical(q2bits.AsUInt16(), 4).AsByte() & m3, q8 + 64, s[4], s[5])
                     + Q2Quarter(Vector256.ShiftRightLogical(q2bits.AsUInt16(), 6).AsByte() & m3, q8 + 96, s[6], s[7]);
            isum[h] = HsumInt(sumi);
        }
    }

    /// <summary>
    /// One output of llama.cpp's repacked q2_K 8x8 kernels: <paramref name="gemm"/> = the 4-token GEMM (float
    /// accumulation per 128-element half block), otherwise the GEMV (per 256-element block).
    /// <paramref name="scalar"/> forces the scalar integer sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float RepackedQ2K(byte* w, byte* a, int n, bool gemm, bool scalar = false)
    {
        var x = (BlockQ2_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK;
        int* isum = stackalloc int[2];
        int* imin = stackalloc int[2];
        float acc = 0, accMin = 0;
        for (int i = 0; i < nb; i++)
        {
            if (scalar) Q2KHalfSumsScalar(x + i, y + i, isum, imin);
            else Q2KHalfSums(x + i, y + i, isum, imin);
            float dd = Fp16(x[i].D) * y[i].D;
            float dm = Fp16(x[i].DMin) * y[i].D;
            if (gemm)
            {
                acc = MathF.FusedMultiplyAdd(isum[0], dd, acc);
                accMin = MathF.FusedMultiplyAdd(imin[0], dm, accMin);
                acc = MathF.FusedMultiplyAdd(isum[1], dd, acc);
                accMin = MathF.FusedMultiplyAdd(imin[1], dm, accMin);
            }
            else
            {
                acc = MathF.FusedMultiplyAdd(isum[0] + isum[1], dd, acc);
                accMin = MathF.FusedMultiplyAdd(imin[0] + imin[1], dm, accMin);
            }
        }
        return acc - accMin;
    }

    // ======================= Q3_K =======================

    /// <summary>ggml_vec_dot_q3_K_q8_K, scalar form.</summary>
    public static float VecDotQ3KScalar(byte* w, byte* a, int n)
    {
        var x = (BlockQ3_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK;
        float* acc = stackalloc float[8];
        int* lane = stackalloc int[8];
        sbyte* scales = stackalloc sbyte[16];
        for (int l = 0; l < 8; l++) acc[l] = 0;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * Fp16(x[i].D);
            Dequantize.UnpackQ3KScales(x[i].Scales, scales);
            byte* hm = x[i].HMask;
            for (int l = 0; l < 8; l++) lane[l] = 0;
            for (int j = 0; j < 2; j++)
            {
                byte* q3 = x[i].Qs + 32 * j;
                for (int p = 0; p < 4; p++)
                {
                    sbyte* q8 = y[i].Qs + 128 * j + 32 * p;
                    int shift = 2 * p, bit = 4 * j + p;
                    for (int l = 0; l < 8; l++)
                    {
                        int s = 0;
                        for (int e = 4 * l; e < 4 * l + 4; e++)
                            s += (((q3[e] >> shift) & 3) - (((hm[e] >> bit) & 1) != 0 ? 0 : 4)) * q8[e];
                        lane[l] += (scales[8 * j + 2 * p + (l >> 2)] - 32) * s;
                    }
                }
            }
            for (int l = 0; l < 8; l++) acc[l] = MathF.FusedMultiplyAdd(d, lane[l], acc[l]);
        }
        return Hsum8(acc);
    }

    /// <summary>ggml_vec_dot_q3_K_q8_K (AVX2 when available).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float VecDotQ3K(byte* w, byte* a, int n)
    {
        if (!Avx2.IsSupported) return VecDotQ3KScalar(w, a, n);
        var x = (BlockQ3_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK;
        sbyte* scales = stackalloc sbyte[16];
        var m3 = Vector256.Create((byte)3);
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * Fp16(x[i].D);
            Dequantize.UnpackQ3KScales(x[i].Scales, scales);
            var notHigh = ~Vector256.Load(x[i].HMask);
            var sumi = Vector256<int>.Zero;
            for (int j = 0; j < 2; j++)
            {
                var q3bits = Vector256.Load(x[i].Qs + 32 * j);
                sbyte* q8 = y[i].Qs + 128 * j;
                sbyte* s = scales + 8 * j;
                for (int p = 0; p < 4; p++)
                {
                    var ql = Vector256.ShiftRightLogical(q3bits.AsUInt16(), 2 * p).AsByte() & m3;
                    var qh = Vector256.ShiftLeft(BitOfBytes(notHigh, 4 * j + p).AsUInt16(), 2).AsByte();
                    var q8v = Vector256.Load(q8 + 32 * p);
                    var p16 = Avx2.MultiplyAddAdjacent(ql, q8v) - Avx2.MultiplyAddAdjacent(qh, q8v);
                    sumi += Avx2.MultiplyAddAdjacent(p16, ScalePair(s[2 * p] - 32, s[2 * p + 1] - 32));
                }
            }
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(d), Vector256.ConvertToSingle(sumi), acc);
        }
        return Hsum8(acc);
    }

    // ======================= Q5_K =======================

    /// <summary>ggml_vec_dot_q5_K_q8_K, scalar form.</summary>
    public static float VecDotQ5KScalar(byte* w, byte* a, int n)
    {
        var x = (BlockQ5_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK;
        float* acc = stackalloc float[8];
        int* lane = stackalloc int[8];
        byte* scales = stackalloc byte[8];
        byte* mins = stackalloc byte[8];
        for (int l = 0; l < 8; l++) acc[l] = 0;
        float summs = 0;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * Fp16(x[i].D);
            float dmin = -y[i].D * Fp16(x[i].DMin);
            ScalarDot.UnpackK4(x[i].Scales, scales, mins);
            int imin = 0;
            for (int k = 0; k < 8; k++) imin += mins[k] * (y[i].BSums[2 * k] + y[i].BSums[2 * k + 1]);
            summs = MathF.FusedMultiplyAdd(dmin, imin, summs);
            byte* qh = x[i].Qh;
            for (int l = 0; l < 8; l++) lane[l] = 0;
            for (int j = 0; j < 4; j++)
            {
                byte* q5 = x[i].Qs + 32 * j;
                sbyte* q8 = y[i].Qs + 64 * j;
                for (int l = 0; l < 8; l++)
                {
                    int s0 = 0, s1 = 0;
                    for (int e = 4 * l; e < 4 * l + 4; e++)
                    {
                        s0 += ((q5[e] & 0xF) + (((qh[e] >> (2 * j)) & 1) << 4)) * q8[e];
                        s1 += ((q5[e] >> 4) + (((qh[e] >> (2 * j + 1)) & 1) << 4)) * q8[32 + e];
                    }
                    lane[l] += scales[2 * j] * s0 + scales[2 * j + 1] * s1;
                }
            }
            for (int l = 0; l < 8; l++) acc[l] = MathF.FusedMultiplyAdd(d, lane[l], acc[l]);
        }
        return Hsum8(acc) + summs;
    }

    /// <summary>ggml_vec_dot_q5_K_q8_K (AVX2 when available).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float VecDotQ5K(byte* w, byte* a, int n)
    {
        if (!Avx2.IsSupported) return VecDotQ5KScalar(w, a, n);
        var x = (BlockQ5_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK;
        byte* scales = stackalloc byte[8];
        byte* mins = stackalloc byte[8];
        var m4 = Vector256.Create((byte)0xF);
        var acc = Vector256<float>.Zero;
        float summs = 0;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * Fp16(x[i].D);
            float dmin = -y[i].D * Fp16(x[i].DMin);
            ScalarDot.UnpackK4(x[i].Scales, scales, mins);
            short* bs = y[i].BSums;
            int imin = mins[0] * (bs[0] + bs[1]) + mins[1] * (bs[2] + bs[3]) + mins[2] * (bs[4] + bs[5]) + mins[3] * (bs[6] + bs[7])
                     + mins[4] * (bs[8] + bs[9]) + mins[5] * (bs[10] + bs[11]) + mins[6] * (bs[12] + bs[13]) + mins[7] * (bs[14] + bs[15]);
            summs = MathF.FusedMultiplyAdd(dmin, imin, summs);
            var hbits = Vector256.Load(x[i].Qh);
            var sumi = Vector256<int>.Zero;
            for (int j = 0; j < 4; j++)
            {
                var q5bits = Vector256.Load(x[i].Qs + 32 * j);
                sbyte* q8 = y[i].Qs + 64 * j;
                var q0 = (q5bits & m4) + Vector256.ShiftLeft(BitOfBytes(hbits, 2 * j).AsUInt16(), 4).AsByte();
                var q1 = (Vector256.ShiftRightLogical(q5bits.AsUInt16(), 4).AsByte() & m4) + Vector256.ShiftLeft(BitOfBytes(hbits, 2 * j + 1).AsUInt16(), 4).AsByte();
                var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q0, Vector256.Load(q8)), Vector256.Create((short)scales[2 * j]));
                var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1, Vector256.Load(q8 + 32)), Vector256.Create((short)scales[2 * j + 1]));
                sumi += p0 + p1;
            }
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(d), Vector256.ConvertToSingle(sumi), acc);
        }
        return Hsum8(acc) + summs;
    }
}

/// <summary>
/// A Q2_K, Q3_K or Q5_K kernel in llama.cpp's float order (see <see cref="GgmlKQuant2Dot"/>). With
/// <c>repacked</c> (Q2_K only) it reproduces llama.cpp's repacked q2_K 8x8 GEMM/GEMV instead of vec_dot.
/// </summary>
public sealed unsafe class GgmlKQuant2Kernel : MatVecKernel
{
    readonly GgmlType _type;
    readonly bool _repacked, _scalar;
    readonly delegate*<byte*, byte*, int, float> _vecDot;

    public GgmlKQuant2Kernel(GgmlType weightType, bool repacked = false, bool scalar = false)
    {
        if (weightType is not (GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q5_K))
            throw new ArgumentException($"{weightType} is not Q2_K, Q3_K or Q5_K.", nameof(weightType));
        if (repacked && weightType != GgmlType.Q2_K)
            throw new ArgumentException("Only Q2_K weights are repacked.", nameof(repacked));
        _type = weightType;
        _repacked = repacked;
        _scalar = scalar;
        _vecDot = (weightType, scalar) switch
        {
            (GgmlType.Q2_K, false) => &GgmlKQuant2Dot.VecDotQ2K,
            (GgmlType.Q2_K, true) => &GgmlKQuant2Dot.VecDotQ2KScalar,
            (GgmlType.Q3_K, false) => &GgmlKQuant2Dot.VecDotQ3K,
            (GgmlType.Q3_K, true) => &GgmlKQuant2Dot.VecDotQ3KScalar,
            (_, false) => &GgmlKQuant2Dot.VecDotQ5K,
            _ => &GgmlKQuant2Dot.VecDotQ5KScalar,
        };
    }

    public override GgmlType WeightType => _type;
    public override GgmlType ActivationType => GgmlType.Q8_K;
    public override string Isa => (_repacked ? "ggml-order-repack" : "ggml-order") + (_scalar ? "-scalar" : "");

    /// <summary>Whether this kernel follows llama.cpp's repacked (q2_K 8x8) path.</summary>
    public bool Repacked => _repacked;

    public override void PrepareActivation(ReadOnlySpan<float> x, Span<byte> dst) => ActivationQuant.Quantize(GgmlType.Q8_K, x, dst);

    public override float Dot(byte* weightRow, byte* activationRow, int n) =>
        _repacked ? GgmlKQuant2Dot.RepackedQ2K(weightRow, activationRow, n, gemm: false, _scalar) : _vecDot(weightRow, activationRow, n);

    /// <summary>Q5_K: multi-token tiles (<see cref="GgmlKQuant2Dot.MatMulQ5K"/>), bit-identical to one vec_dot per output.</summary>
    public override void MatMul(in MatMulOperands op, int rowStart, int rowEnd)
    {
        if (_type == GgmlType.Q5_K && !_scalar && GgmlKQuant2Dot.Q5KTilesAvailable) GgmlKQuant2Dot.MatMulQ5K(op, rowStart, rowEnd);
        else base.MatMul(op, rowStart, rowEnd);
    }

    /// <summary>Repacked: tokens below the largest multiple of 4 go through the GEMM, the rest through the GEMV.</summary>
    public override float DotInMatMul(byte* weightRow, byte* activationRow, int n, int token, int tokens) =>
        _repacked
            ? GgmlKQuant2Dot.RepackedQ2K(weightRow, activationRow, n, gemm: token < tokens - tokens % 4, _scalar)
            : _vecDot(weightRow, activationRow, n);

    public override string ToString() => $"{GgmlTypeInfo.Of(_type).Name}xq8_K [{Isa}]";
}
