using System.Runtime.CompilerServices;
namespace Tandem.Gguf.Quants;

/// <summary>Scalar reference dequantization to F32, computed as ggml's dequantize_row_* functions do.</summary>
public static unsafe class Dequantize
{
    /// <summary>Dequantizes <paramref name="n"/> elements (a multiple of the block size) of one row.</summary>
    public static void Row(GgmlType type, byte* src, float* dst, long n)
    {
        var info = GgmlTypeInfo.Of(type);
        if (n % info.BlockSize != 0)
            throw new ArgumentException($"Row length {n} is not a multiple of the {info.Name} block size {info.BlockSize}.", nameof(n));
        int nb = checked((int)(n / info.BlockSize));
        switch (type)
        {
            case GgmlType.F32: Buffer.MemoryCopy(src, dst, n * 4, n * 4); break;
            case GgmlType.F16: for (long i = 0; i < n; i++) dst[i] = FloatConv.F16ToF32(((ushort*)src)[i]); break;
            case GgmlType.BF16: for (long i = 0; i < n; i++) dst[i] = FloatConv.BF16ToF32(((ushort*)src)[i]); break;
            case GgmlType.Q4_0: Q4_0((BlockQ4_0*)src, dst, nb); break;
            case GgmlType.Q4_1: Q4_1((BlockQ4_1*)src, dst, nb); break;
            case GgmlType.Q5_0: Q5_0((BlockQ5_0*)src, dst, nb); break;
            case GgmlType.Q5_1: Q5_1((BlockQ5_1*)src, dst, nb); break;
            case GgmlType.Q8_0: Q8_0((BlockQ8_0*)src, dst, nb); break;
            case GgmlType.Q8_1: Q8_1((BlockQ8_1*)src, dst, nb); break;
            case GgmlType.Q2_K: Q2_K((BlockQ2_K*)src, dst, nb); break;
            case GgmlType.Q3_K: Q3_K((BlockQ3_K*)src, dst, nb); break;
            case GgmlType.Q4_K: Q4_K((BlockQ4_K*)src, dst, nb); break;
            case GgmlType.Q5_K: Q5_K((BlockQ5_K*)src, dst, nb); break;
            case GgmlType.Q6_K: Q6_K((BlockQ6_K*)src, dst, nb); break;
            case GgmlType.Q8_K: Q8_K((BlockQ8_K*)src, dst, nb); break;
            default: throw new NotSupportedException($"Dequantization of {info.Name} is not supported.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0(BlockQ4_0* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++, y += 32)
        {
            float d = (float)x[i].D;
            for (int j = 0; j < 16; j++)
            {
                int b = x[i].Qs[j];
                y[j] = ((b & 0xF) - 8) * d;
                y[j + 16] = ((b >> 4) - 8) * d;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_1(BlockQ4_1* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++, y += 32)
        {
            float d = (float)x[i].D, m = (float)x[i].M;
            for (int j = 0; j < 16; j++)
            {
                int b = x[i].Qs[j];
                y[j] = (b & 0xF) * d + m;
                y[j + 16] = (b >> 4) * d + m;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_0(BlockQ5_0* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++, y += 32)
        {
            float d = (float)x[i].D;
            uint qh = *(uint*)x[i].Qh;
            for (int j = 0; j < 16; j++)
            {
                int b = x[i].Qs[j];
                int h0 = (int)((qh >> j) << 4) & 0x10;
                int h1 = (int)(qh >> (j + 12)) & 0x10;
                y[j] = (((b & 0xF) | h0) - 16) * d;
                y[j + 16] = (((b >> 4) | h1) - 16) * d;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_1(BlockQ5_1* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++, y += 32)
        {
            float d = (float)x[i].D, m = (float)x[i].M;
            uint qh = *(uint*)x[i].Qh;
            for (int j = 0; j < 16; j++)
            {
                int b = x[i].Qs[j];
                int h0 = (int)((qh >> j) << 4) & 0x10;
                int h1 = (int)(qh >> (j + 12)) & 0x10;
                y[j] = ((b & 0xF) | h0) * d + m;
                y[j + 16] = ((b >> 4) | h1) * d + m;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_0(BlockQ8_0* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++, y += 32)
        {
            float d = (float)x[i].D;
            for (int j = 0; j < 32; j++) y[j] = x[i].Qs[j] * d;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_1(BlockQ8_1* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++, y += 32)
        {
            float d = (float)x[i].D;
            for (int j = 0; j < 32; j++) y[j] = x[i].Qs[j] * d;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q2_K(BlockQ2_K* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++)
        {
            float d = (float)x[i].D, min = (float)x[i].DMin;
            byte* q = x[i].Qs;
            int isc = 0;
            for (int n = 0; n < 256; n += 128)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    int sc = x[i].Scales[isc++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l] >> shift) & 3) - ml;
                    sc = x[i].Scales[isc++];
                    dl = d * (sc & 0xF); ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
                    shift += 2;
                }
                q += 32;
            }
        }
    }

    /// <summary>Unpacks Q3_K's 16 packed 6-bit scales (still offset by 32).</summary>
    public static void UnpackQ3KScales(byte* packed, sbyte* scales16)
    {
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint* aux = (uint*)scales16;
        uint a0 = *(uint*)packed, a1 = *(uint*)(packed + 4), tmp = *(uint*)(packed + 8);
        aux[2] = ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q3_K(BlockQ3_K* x, float* y, int nb)
    {
        sbyte* scales = stackalloc sbyte[16];
        for (int i = 0; i < nb; i++)
        {
            float dAll = (float)x[i].D;
            byte* q = x[i].Qs;
            byte* hm = x[i].HMask;
            int m = 1;
            UnpackQ3KScales(x[i].Scales, scales);
            int isc = 0;
            for (int n = 0; n < 256; n += 128)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    float dl = dAll * (scales[isc++] - 32);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    dl = dAll * (scales[isc++] - 32);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) != 0 ? 0 : 4));
                    shift += 2;
                    m <<= 1;
                }
                q += 32;
            }
        }
    }

    /// <summary>Scale and min of sub-block j (0..7) from K-quants' 12 packed bytes (ggml's get_scale_min_k4).</summary>
    public static void ScaleMinK4(int j, byte* q, out int d, out int m)
    {
        if (j < 4)
        {
            d = q[j] & 63;
            m = q[j + 4] & 63;
        }
        else
        {
            d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_K(BlockQ4_K* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++)
        {
            byte* q = x[i].Qs;
            float d = (float)x[i].D, min = (float)x[i].DMin;
            int isc = 0;
            for (int j = 0; j < 256; j += 64)
            {
                ScaleMinK4(isc, x[i].Scales, out int sc, out int m);
                float d1 = d * sc, m1 = min * m;
                ScaleMinK4(isc + 1, x[i].Scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
                q += 32;
                isc += 2;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_K(BlockQ5_K* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++)
        {
            byte* ql = x[i].Qs;
            byte* qh = x[i].Qh;
            float d = (float)x[i].D, min = (float)x[i].DMin;
            int isc = 0;
            int u1 = 1, u2 = 2;
            for (int j = 0; j < 256; j += 64)
            {
                ScaleMinK4(isc, x[i].Scales, out int sc, out int m);
                float d1 = d * sc, m1 = min * m;
                ScaleMinK4(isc + 1, x[i].Scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
                ql += 32;
                isc += 2;
                u1 <<= 2;
                u2 <<= 2;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6_K(BlockQ6_K* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++)
        {
            float d = (float)x[i].D;
            byte* ql = x[i].Ql;
            byte* qh = x[i].Qh;
            sbyte* sc = x[i].Scales;
            for (int n = 0; n < 256; n += 128)
            {
                for (int l = 0; l < 32; l++)
                {
                    int isc = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[isc] * q1;
                    y[l + 32] = d * sc[isc + 2] * q2;
                    y[l + 64] = d * sc[isc + 4] * q3;
                    y[l + 96] = d * sc[isc + 6] * q4;
                }
                y += 128;
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_K(BlockQ8_K* x, float* y, int nb)
    {
        for (int i = 0; i < nb; i++)
            for (int j = 0; j < 256; j++) *y++ = x[i].D * x[i].Qs[j];
    }
}
