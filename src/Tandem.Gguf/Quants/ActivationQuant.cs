using System.Runtime.InteropServices;

namespace Tandem.Gguf.Quants;

/// <summary>
/// Conversion of F32 activation rows into ggml's vec_dot types, as ggml's CPU backend does it on x86
/// (quantize_row_q8_0 / q8_1 with d = amax/127, multiplier 127/amax and round-half-to-even;
/// quantize_row_q8_K = ggml's reference: iscale = -127/max, nearest_int, d = 1/iscale, per-16 sums).
/// ggml's reference (multiplier 1/d, roundf) and ARM (multiplier 1/d) Q8_0/Q8_1 paths can differ from this by one in rare elements;
/// the x86 path is what llama.cpp uses on the machines the golden outputs come from.
/// </summary>
public static unsafe partial class ActivationQuant
{
    /// <summary>ggml's vec_dot_type for a weight type.</summary>
    public static GgmlType VecDotType(GgmlType weightType) => weightType switch
    {
        GgmlType.F32 => GgmlType.F32,
        GgmlType.F16 => GgmlType.F16,
        GgmlType.BF16 => GgmlType.BF16,
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => GgmlType.Q8_0,
        GgmlType.Q4_1 or GgmlType.Q5_1 => GgmlType.Q8_1,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => GgmlType.Q8_K,
        _ => throw new NotSupportedException($"No vec_dot type for {weightType}."),
    };

    /// <summary>Converts x into <paramref name="dst"/> as <paramref name="type"/> (F32, F16, BF16, Q8_0, Q8_1, Q8_K),
    /// with SIMD where the CPU has 256-bit vectors; the bytes are identical to <see cref="QuantizeReference"/>.</summary>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        if (!Simd.IsSupported || type == GgmlType.F32)
        {
            QuantizeReference(type, x, dst);
            return;
        }
        var info = Quantizer.CheckRow(type, x.Length, dst.Length);
        fixed (float* px = x)
        fixed (byte* pd = dst)
        {
            int n = x.Length;
            switch (type)
            {
                case GgmlType.F16: Simd.F16(px, (ushort*)pd, n); break;
                case GgmlType.BF16: Simd.BF16(px, (ushort*)pd, n); break;
                case GgmlType.Q8_0: Simd.Q8_0(px, (BlockQ8_0*)pd, n); break;
                case GgmlType.Q8_1: Simd.Q8_1(px, (BlockQ8_1*)pd, n); break;
                case GgmlType.Q8_K: Simd.Q8_K(px, (BlockQ8_K*)pd, n); break;
                default: throw new NotSupportedException($"Activation type {info.Name} is not supported.");
            }
        }
    }

    /// <summary>Scalar reference of <see cref="Quantize"/>.</summary>
    public static void QuantizeReference(GgmlType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        // Float conversions are the same for activations and weights; only the Q8 roundings are x86-specific here.
        if (type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
        {
            Quantizer.Quantize(type, x, dst);
            return;
        }
        var info = Quantizer.CheckRow(type, x.Length, dst.Length);
        fixed (float* px = x)
        fixed (byte* pd = dst)
        {
            int n = x.Length;
            switch (type)
            {
                case GgmlType.Q8_0: Q8_0(px, (BlockQ8_0*)pd, n); break;
                case GgmlType.Q8_1: Q8_1(px, (BlockQ8_1*)pd, n); break;
                case GgmlType.Q8_K: Q8_K(px, (BlockQ8_K*)pd, n); break;
                default: throw new NotSupportedException($"Activation type {info.Name} is not supported.");
            }
        }
    }

    static float AbsMax32(float* x)
    {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        return amax;
    }

    static sbyte RoundSat(float v)
    {
        float r = MathF.Round(v); // half to even, as _mm256_round_ps(_MM_ROUND_NEAREST)
        return r >= 127f ? (sbyte)127 : r <= -128f ? (sbyte)-128 : (sbyte)(int)r;
    }

    /// <summary>ggml's x86 quantize_row_q8_0.</summary>
    public static void Q8_0(float* x, BlockQ8_0* y, int n)
    {
        int nb = n / 32;
        for (int i = 0; i < nb; i++, x += 32)
        {
            float amax = AbsMax32(x);
            float d = amax / 127f;
            y[i].D = (Half)d;
            float id = amax != 0f ? 127f / amax : 0f;
            for (int j = 0; j < 32; j++) y[i].Qs[j] = RoundSat(x[j] * id);
        }
    }

    /// <summary>ggml's x86 quantize_row_q8_1 (s = d * sum of quants).</summary>
    public static void Q8_1(float* x, BlockQ8_1* y, int n)
    {
        int nb = n / 32;
        for (int i = 0; i < nb; i++, x += 32)
        {
            float amax = AbsMax32(x);
            float d = amax / 127f;
            y[i].D = (Half)d;
            float id = amax != 0f ? 127f / amax : 0f;
            int sum = 0;
            for (int j = 0; j < 32; j++)
            {
                sbyte q = RoundSat(x[j] * id);
                y[i].Qs[j] = q;
                sum += q;
            }
            y[i].S = (Half)(d * sum);
        }
    }

    /// <summary>ggml's quantize_row_q8_K_ref.</summary>
    public static void Q8_K(float* x, BlockQ8_K* y, int n)
    {
        int nb = n / 256;
        for (int i = 0; i < nb; i++, x += 256)
        {
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax) { amax = ax; max = x[j]; }
            }
            if (amax == 0f)
            {
                y[i].D = 0;
                new Span<byte>(y[i].Qs, 256).Clear();
                new Span<short>(y[i].BSums, 16).Clear();
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++)
            {
                int v = FloatConv.NearestInt(iscale * x[j]);
                y[i].Qs[j] = (sbyte)Math.Min(127, v);
            }
            for (int j = 0; j < 16; j++)
            {
                int sum = 0;
                for (int ii = 0; ii < 16; ii++) sum += y[i].Qs[j * 16 + ii];
                y[i].BSums[j] = (short)sum;
            }
            y[i].D = 1 / iscale;
        }
    }
}
