using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// F32, F16 and BF16 dot products that add in exactly the order llama.cpp's AVX-512 build does, so that our logits
/// equal its logits bit for bit rather than to within rounding (differences of one ulp in a value that is later
/// rounded to F16, in the KV cache, grow into visible logit differences).
/// Single token: ggml_vec_dot_{f32,f16,bf16}. Batches: llamafile's tinyBLAS (one 16-lane FMA accumulator per output,
/// reduced like _mm512_reduce_add_ps) when the row length is a multiple of 16, else vec_dot.
/// Vector512 here is a way of writing 16 lanes; on CPUs without AVX-512 .NET computes the same lanes with narrower
/// instructions, and the results are identical.
/// </summary>
public static unsafe partial class GgmlFloatDot
{
    const int Lanes = 16, Step = 64;

    /// <summary>Horizontal sum in the order GCC expands _mm512_reduce_add_ps: 256-bit halves, 128-bit halves, then pairs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ReduceAdd(Vector512<float> v)
    {
        var h8 = v.GetUpper() + v.GetLower();
        var h4 = h8.GetUpper() + h8.GetLower();
        float a = h4[0] + h4[2], b = h4[1] + h4[3];
        return a + b;
    }

    /// <summary>ggml_vec_dot_f32: four 16-lane FMA accumulators per 64 elements, combined pairwise; then the tail in float.</summary>
    public static float VecDotF32(float* x, float* y, int n)
    {
        int blocked = n & ~(Step - 1);
        float sum = 0;
        if (blocked > 0)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int i = 0; i < blocked; i += Step)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(y + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 16), Vector512.Load(y + i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 32), Vector512.Load(y + i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 48), Vector512.Load(y + i + 48), s3);
            }
            sum = ReduceAdd((s0 + s2) + (s1 + s3));
        }
        // ggml's tail loop `sumf += x[i]*y[i]` as GCC compiled it: vectorized by 16 and then by 8 (products rounded,
        // added in order), the last few elements with fused multiply-adds.
        int t = blocked, vectorized = blocked + ((n - blocked) & ~15);
        if (n - vectorized >= 8) vectorized += 8;
        for (; t < vectorized; t++) sum += x[t] * y[t];
        for (; t < n; t++) sum = MathF.FusedMultiplyAdd(x[t], y[t], sum);
        return sum;
    }

    /// <summary>ggml_vec_dot_f16: as <see cref="VecDotF32"/> on values widened from F16, the tail summed in double.</summary>
    public static float VecDotF16(ushort* x, ushort* y, int n)
    {
        int blocked = n & ~(Step - 1);
        double sum = 0;
        if (blocked > 0)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int i = 0; i < blocked; i += Step)
            {
                s0 = Vector512.FusedMultiplyAdd(LoadF16(x + i), LoadF16(y + i), s0);
                s1 = Vector512.FusedMultiplyAdd(LoadF16(x + i + 16), LoadF16(y + i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(LoadF16(x + i + 32), LoadF16(y + i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(LoadF16(x + i + 48), LoadF16(y + i + 48), s3);
            }
            sum = ReduceAdd((s0 + s2) + (s1 + s3));
        }
        for (int i = blocked; i < n; i++) sum += (double)(HalfTable.ToF32(x[i]) * HalfTable.ToF32(y[i]));
        return (float)sum;
    }

    /// <summary>ggml_vec_dot_bf16 (AVX-512F without BF16 instructions): two 16-lane accumulators of separate
    /// multiply and add per 32 elements, each reduced and added in double, the tail in double.</summary>
    public static float VecDotBF16(ushort* x, ushort* y, int n)
    {
        int i = 0;
        double sum = 0;
        Vector512<float> c1 = default, c2 = default;
        for (; i + 32 <= n; i += 32)
        {
            c1 = LoadBF16(x + i) * LoadBF16(y + i) + c1;
            c2 = LoadBF16(x + i + 16) * LoadBF16(y + i + 16) + c2;
        }
        sum += ReduceAdd(c1);
        sum += ReduceAdd(c2);
        for (; i < n; i++) sum += (double)(FloatConv.BF16ToF32(x[i]) * FloatConv.BF16ToF32(y[i]));
        return (float)sum;
    }

    /// <summary>tinyBLAS: one 16-lane FMA accumulator over the whole row (length a multiple of 16), then reduced.</summary>
    public static float TinyBlasF32(float* a, float* b, int k) => TinyBlas<F32Row>((byte*)a, (byte*)b, k);

    public static float TinyBlasF16(ushort* a, ushort* b, int k) => TinyBlas<F16Row>((byte*)a, (byte*)b, k);

    public static float TinyBlasBF16(ushort* a, ushort* b, int k) => TinyBlas<BF16Row>((byte*)a, (byte*)b, k);

    /// <summary>One tinyBLAS dot: a 16-lane FMA chain over the row's chunks, then _mm512_reduce_add_ps's order.</summary>
    static float TinyBlas<T>(byte* a, byte* b, int k) where T : struct, IFloatRow
    {
        Vector512<float> acc = default;
        for (int c = 0; c < k / Lanes; c++) acc = Vector512.FusedMultiplyAdd(T.Chunk(a, c), T.Chunk(b, c), acc);
        return ReduceAdd(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> LoadF16(ushort* p) => WidenF16(p);

    /// <summary>Sixteen F16 values widened to F32 exactly as <c>(float)Half</c> does (<see cref="HalfLanes"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> WidenF16(ushort* p) =>
        HalfLanes.ToSingle(Vector512.WidenLower(Vector512.Create(Vector256.Load(p), Vector256<ushort>.Zero)).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> LoadBF16(ushort* p) =>
        Vector512.ShiftLeft(Vector512.WidenLower(Vector512.Create(Vector256.Load(p), Vector256<ushort>.Zero)).AsUInt32(), 16).AsSingle();
}

/// <summary>
/// A float-weight kernel (F32, F16, BF16) in llama.cpp's summation order; see <see cref="GgmlFloatDot"/>.
/// tinyBLAS only takes matrices whose row count is a multiple of 4 (<paramref name="tinyBlasRows"/>); others stay on vec_dot.
/// </summary>
public sealed unsafe class GgmlFloatKernel(GgmlType weightType, bool tinyBlasRows = true) : MatVecKernel
{
    public override GgmlType WeightType => weightType;
    public override GgmlType ActivationType => weightType;
    public override string Isa => "ggml-order";

    public override void PrepareActivation(ReadOnlySpan<float> x, Span<byte> dst) => ActivationQuant.Quantize(weightType, x, dst);

    public override float Dot(byte* w, byte* a, int n) => weightType switch
    {
        GgmlType.F32 => GgmlFloatDot.VecDotF32((float*)w, (float*)a, n),
        GgmlType.F16 => GgmlFloatDot.VecDotF16((ushort*)w, (ushort*)a, n),
        _ => GgmlFloatDot.VecDotBF16((ushort*)w, (ushort*)a, n),
    };

    /// <summary>Batches in tinyBLAS order go through the multi-token tile (<see cref="GgmlFloatDot.TinyBlasTile"/>).</summary>
    public override void MatMul(in MatMulOperands op, int rowStart, int rowEnd)
    {
        if (op.Tokens >= 2 && op.N % 16 == 0 && tinyBlasRows) GgmlFloatDot.TinyBlasTile(weightType, op, rowStart, rowEnd);
        else base.MatMul(op, rowStart, rowEnd);
    }

    public override float DotInMatMul(byte* w, byte* a, int n, int token, int tokens)
    {
        if (tokens < 2 || n % 16 != 0 || !tinyBlasRows) return Dot(w, a, n);
        return weightType switch
        {
            GgmlType.F32 => GgmlFloatDot.TinyBlasF32((float*)w, (float*)a, n),
            GgmlType.F16 => GgmlFloatDot.TinyBlasF16((ushort*)w, (ushort*)a, n),
            _ => GgmlFloatDot.TinyBlasBF16((ushort*)w, (ushort*)a, n),
        };
    }
}
