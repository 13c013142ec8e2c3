using System.Runtime.CompilerServices;
namespace Tandem.Gguf.Quants;

/// <summary>
/// Reference quantization F32 -> ggml block types, following ggml's reference algorithms (quantize_row_*_ref,
/// the path llama-quantize takes without an importance matrix), so the bytes match llama.cpp's files.
/// </summary>
public static unsafe class Quantizer
{
    const float GroupMaxEps = 1e-15f;

    public static bool Supports(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0
        or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>Checks that a row of <paramref name="elements"/> is whole blocks of <paramref name="type"/> and fits <paramref name="dstBytes"/>.</summary>
    public static GgmlTypeInfo CheckRow(GgmlType type, int elements, int dstBytes)
    {
        var info = GgmlTypeInfo.Of(type);
        if (elements % info.BlockSize != 0)
            throw new ArgumentException($"Length {elements} is not a multiple of the {info.Name} block size {info.BlockSize}.", "x");
        long need = info.RowBytes(elements);
        if (dstBytes < need) throw new ArgumentException($"Destination needs {need} bytes.", "dst");
        return info;
    }

    /// <summary>Quantizes <paramref name="x"/> (a whole number of blocks) into <paramref name="dst"/>.</summary>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        var info = CheckRow(type, x.Length, dst.Length);
        fixed (float* px = x)
        fixed (byte* pd = dst)
        {
            int n = x.Length;
            switch (type)
            {
                case GgmlType.F32: Buffer.MemoryCopy(px, pd, (long)n * 4, (long)n * 4); break;
                case GgmlType.F16: for (int i = 0; i < n; i++) ((ushort*)pd)[i] = FloatConv.F32ToF16(px[i]); break;
                case GgmlType.BF16: for (int i = 0; i < n; i++) ((ushort*)pd)[i] = FloatConv.F32ToBF16(px[i]); break;
                case GgmlType.Q4_0: Q4_0(px, (BlockQ4_0*)pd, n); break;
                case GgmlType.Q4_1: Q4_1(px, (BlockQ4_1*)pd, n); break;
                case GgmlType.Q5_0: Q5_0(px, (BlockQ5_0*)pd, n); break;
                case GgmlType.Q5_1: Q5_1(px, (BlockQ5_1*)pd, n); break;
                case GgmlType.Q8_0: Q8_0(px, (BlockQ8_0*)pd, n); break;
                case GgmlType.Q2_K: Q2_K(px, (BlockQ2_K*)pd, n); break;
                case GgmlType.Q3_K: Q3_K(px, (BlockQ3_K*)pd, n); break;
                case GgmlType.Q4_K: Q4_K(px, (BlockQ4_K*)pd, n); break;
                case GgmlType.Q5_K: Q5_K(px, (BlockQ5_K*)pd, n); break;
                case GgmlType.Q6_K: Q6_K(px, (BlockQ6_K*)pd, n); break;
                default: throw new NotSupportedException($"Quantization to {info.Name} is not supported.");
            }
        }
    }

    /// <summary>
    /// Quantizes a tensor of <paramref name="rows"/> rows of <paramref name="columns"/> elements, rows spread over threads.
    /// Rows are independent, so the bytes equal those of <see cref="Quantize"/> on the whole tensor.
    /// </summary>
    public static void QuantizeRows(GgmlType type, ReadOnlySpan<float> x, long rows, long columns, Span<byte> dst, int maxThreads = -1)
    {
        var info = GgmlTypeInfo.Of(type);
        if (columns % info.BlockSize != 0)
            throw new ArgumentException($"Row length {columns} is not a multiple of the {info.Name} block size {info.BlockSize}.", nameof(columns));
        if (x.Length != rows * columns) throw new ArgumentException("x must hold rows * columns elements.", nameof(x));
        long rowBytes = info.RowBytes(columns);
        if (dst.Length < rowBytes * rows) throw new ArgumentException($"Destination needs {rowBytes * rows} bytes.", nameof(dst));
        fixed (float* px = x)
        fixed (byte* pd = dst)
        {
            nint src = (nint)px, dstp = (nint)pd;
            int chunk = (int)Math.Max(1, Math.Min(rows, 1 << 20) / Math.Max(1, Environment.ProcessorCount * 4));
            long chunks = (rows + chunk - 1) / chunk;
            Parallel.For(0L, chunks, new ParallelOptions { MaxDegreeOfParallelism = maxThreads }, c =>
            {
                long r0 = c * chunk, r1 = Math.Min(rows, r0 + chunk);
                var xs = new ReadOnlySpan<float>((float*)src + r0 * columns, checked((int)((r1 - r0) * columns)));
                var ds = new Span<byte>((byte*)dstp + r0 * rowBytes, checked((int)((r1 - r0) * rowBytes)));
                Quantize(type, xs, ds);
            });
        }
    }

    static int NearestInt(float f) => FloatConv.NearestInt(f);

    // ---------------- simple 32-element types ----------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0(float* x, BlockQ4_0* y, int n)
    {
        for (int i = 0; i < n / 32; i++, x += 32)
        {
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++)
            {
                float v = x[j];
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            y[i].D = (Half)d;
            for (int j = 0; j < 16; j++)
            {
                float x0 = x[j] * id, x1 = x[16 + j] * id;
                int xi0 = Math.Min(15, (int)(x0 + 8.5f));
                int xi1 = Math.Min(15, (int)(x1 + 8.5f));
                y[i].Qs[j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_1(float* x, BlockQ4_1* y, int n)
    {
        for (int i = 0; i < n / 32; i++, x += 32)
        {
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < 32; j++)
            {
                float v = x[j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / 15;
            float id = d != 0 ? 1.0f / d : 0.0f;
            y[i].D = (Half)d;
            y[i].M = (Half)min;
            for (int j = 0; j < 16; j++)
            {
                float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
                int xi0 = Math.Min(15, (int)(x0 + 0.5f));
                int xi1 = Math.Min(15, (int)(x1 + 0.5f));
                y[i].Qs[j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_0(float* x, BlockQ5_0* y, int n)
    {
        for (int i = 0; i < n / 32; i++, x += 32)
        {
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++)
            {
                float v = x[j];
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            }
            float d = max / -16;
            float id = d != 0 ? 1.0f / d : 0.0f;
            y[i].D = (Half)d;
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                float x0 = x[j] * id, x1 = x[16 + j] * id;
                int xi0 = Math.Min(31, (int)(x0 + 16.5f));
                int xi1 = Math.Min(31, (int)(x1 + 16.5f));
                y[i].Qs[j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= (uint)((xi0 & 0x10) >> 4) << j;
                qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
            }
            *(uint*)y[i].Qh = qh;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_1(float* x, BlockQ5_1* y, int n)
    {
        for (int i = 0; i < n / 32; i++, x += 32)
        {
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < 32; j++)
            {
                float v = x[j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / 31;
            float id = d != 0 ? 1.0f / d : 0.0f;
            y[i].D = (Half)d;
            y[i].M = (Half)min;
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
                int xi0 = (byte)(int)(x0 + 0.5f);
                int xi1 = (byte)(int)(x1 + 0.5f);
                y[i].Qs[j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= (uint)((xi0 & 0x10) >> 4) << j;
                qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
            }
            *(uint*)y[i].Qh = qh;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_0(float* x, BlockQ8_0* y, int n)
    {
        for (int i = 0; i < n / 32; i++, x += 32)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            y[i].D = (Half)d;
            for (int j = 0; j < 32; j++) y[i].Qs[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    // ---------------- K-quant helpers (ggml's make_*_quants) ----------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float MakeQxQuants(int n, int nmax, float* x, sbyte* L, int rmseType)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        if (rmseType == 0)
        {
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
            }
            return 1 / iscale;
        }
        bool returnEarly = false;
        if (rmseType < 0) { rmseType = -rmseType; returnEarly = true; }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = Weight(rmseType, x[i]);
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        if (returnEarly) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = Weight(rmseType, x[i]);
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    static float Weight(int rmseType, float x) => rmseType switch
    {
        1 => x * x,
        2 => 1,
        3 => MathF.Abs(x),
        _ => MathF.Sqrt(MathF.Abs(x)),
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float MakeQ3Quants(int n, int nmax, float* x, sbyte* L, bool doRmse)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        if (doRmse)
        {
            float sumlx = 0, suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                L[i] = (sbyte)l;
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            for (int itry = 0; itry < 5; itry++)
            {
                int nChanged = 0;
                for (int i = 0; i < n; i++)
                {
                    float w = x[i] * x[i];
                    float slx = sumlx - w * x[i] * L[i];
                    if (slx > 0)
                    {
                        float sl2 = suml2 - w * L[i] * L[i];
                        int newL = NearestInt(x[i] * sl2 / slx);
                        newL = Math.Max(-nmax, Math.Min(nmax - 1, newL));
                        if (newL != L[i])
                        {
                            slx += w * x[i] * newL;
                            sl2 += w * newL * newL;
                            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                            {
                                L[i] = (sbyte)newL; sumlx = slx; suml2 = sl2;
                                nChanged++;
                            }
                        }
                    }
                }
                if (nChanged == 0) break;
            }
            for (int i = 0; i < n; i++) L[i] += (sbyte)nmax;
            return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
        }
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
        }
        return 1 / iscale;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float MakeQkx2Quants(int n, int nmax, float* x, float* weights, byte* L, out float theMin, byte* Laux,
        float rmin, float rdelta, int nstep, bool useMad)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                Laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXl - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXl) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    for (int i = 0; i < n; i++) L[i] = Laux[i];
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    // ---------------- K-quants ----------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q2_K(float* x, BlockQ2_K* y, int n)
    {
        byte* L = stackalloc byte[256];
        byte* Laux = stackalloc byte[16];
        float* weights = stackalloc float[16];
        float* mins = stackalloc float[16];
        float* scales = stackalloc float[16];
        const float q4scale = 15f;
        for (int i = 0; i < n / 256; i++, x += 256)
        {
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 16; j++)
            {
                for (int l = 0; l < 16; l++) weights[l] = MathF.Abs(x[16 * j + l]);
                scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, out mins[j], Laux, -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            if (maxScale > 0)
            {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < 16; j++) y[i].Scales[j] = (byte)NearestInt(iscale * scales[j]);
                y[i].D = (Half)(maxScale / q4scale);
            }
            else
            {
                for (int j = 0; j < 16; j++) y[i].Scales[j] = 0;
                y[i].D = (Half)0f;
            }
            if (maxMin > 0)
            {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < 16; j++) y[i].Scales[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
                y[i].DMin = (Half)(maxMin / q4scale);
            }
            else
            {
                y[i].DMin = (Half)0f;
            }
            for (int j = 0; j < 16; j++)
            {
                float d = (float)y[i].D * (y[i].Scales[j] & 0xF);
                if (d == 0) continue;
                float dm = (float)y[i].DMin * (y[i].Scales[j] >> 4);
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt((x[16 * j + ii] + dm) / d);
                    L[16 * j + ii] = (byte)Math.Max(0, Math.Min(3, l));
                }
            }
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    y[i].Qs[j / 4 + l] = (byte)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q3_K(float* x, BlockQ3_K* y, int n)
    {
        sbyte* L = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        for (int i = 0; i < n / 256; i++, x += 256)
        {
            float maxScale = 0, amax = 0;
            for (int j = 0; j < 16; j++)
            {
                scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j, true);
                float scale = MathF.Abs(scales[j]);
                if (scale > amax) { amax = scale; maxScale = scales[j]; }
            }
            for (int j = 0; j < 12; j++) y[i].Scales[j] = 0;
            if (maxScale != 0)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    int l = (sbyte)NearestInt(iscale * scales[j]);
                    l = Math.Max(-32, Math.Min(31, l)) + 32;
                    if (j < 8) y[i].Scales[j] = (byte)(l & 0xF);
                    else y[i].Scales[j - 8] |= (byte)((l & 0xF) << 4);
                    l >>= 4;
                    y[i].Scales[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
                }
                y[i].D = (Half)(1 / iscale);
            }
            else
            {
                y[i].D = (Half)0f;
            }
            for (int j = 0; j < 16; j++)
            {
                int sc = j < 8 ? y[i].Scales[j] & 0xF : y[i].Scales[j - 8] >> 4;
                sc = (sc | (((y[i].Scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                float d = (float)y[i].D * sc;
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    l = Math.Max(-4, Math.Min(3, l));
                    L[16 * j + ii] = (sbyte)(l + 4);
                }
            }
            for (int j = 0; j < 32; j++) y[i].HMask[j] = 0;
            int m = 0;
            int hm = 1;
            for (int j = 0; j < 256; j++)
            {
                if (L[j] > 3)
                {
                    y[i].HMask[m] |= (byte)hm;
                    L[j] -= 4;
                }
                if (++m == 32) { m = 0; hm <<= 1; }
            }
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    y[i].Qs[j / 4 + l] = (byte)((byte)L[j + l] | ((byte)L[j + l + 32] << 2) | ((byte)L[j + l + 64] << 4) | ((byte)L[j + l + 96] << 6));
        }
    }

    static void PackScalesMinsK4(byte* packed, float* scales, float* mins, float maxScale, float maxMin)
    {
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < 8; j++)
        {
            int ls = Math.Min(63, (int)(byte)NearestInt(invScale * scales[j]));
            int lm = Math.Min(63, (int)(byte)NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = (byte)ls;
                packed[j + 4] = (byte)lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }
    }

    static void QuantizeK4Sub(float* x, byte* L, float* weights, byte* Laux, float* scales, float* mins, int nmax, float rmin, float rdelta, int nstep,
        out float maxScale, out float maxMin)
    {
        maxScale = 0;
        maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += x[32 * j + l] * x[32 * j + l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(x[32 * j + l]);
            scales[j] = MakeQkx2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, out mins[j], Laux, rmin, rdelta, nstep, false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
    }

    static void RequantizeK4(float* x, byte* L, byte* packed, Half hd, Half hdmin, int nmax)
    {
        for (int j = 0; j < 8; j++)
        {
            Dequantize.ScaleMinK4(j, packed, out int sc, out int m);
            float d = (float)hd * sc;
            if (d == 0) continue;
            float dm = (float)hdmin * m;
            for (int ii = 0; ii < 32; ii++)
            {
                int l = NearestInt((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_K(float* x, BlockQ4_K* y, int n)
    {
        byte* L = stackalloc byte[256];
        byte* Laux = stackalloc byte[32];
        float* weights = stackalloc float[32];
        float* mins = stackalloc float[8];
        float* scales = stackalloc float[8];
        for (int i = 0; i < n / 256; i++, x += 256)
        {
            QuantizeK4Sub(x, L, weights, Laux, scales, mins, 15, -1f, 0.1f, 20, out float maxScale, out float maxMin);
            PackScalesMinsK4(y[i].Scales, scales, mins, maxScale, maxMin);
            y[i].D = (Half)(maxScale / 63f);
            y[i].DMin = (Half)(maxMin / 63f);
            RequantizeK4(x, L, y[i].Scales, y[i].D, y[i].DMin, 15);
            byte* q = y[i].Qs;
            for (int j = 0; j < 256; j += 64, q += 32)
                for (int l = 0; l < 32; l++) q[l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q5_K(float* x, BlockQ5_K* y, int n)
    {
        byte* L = stackalloc byte[256];
        byte* Laux = stackalloc byte[32];
        float* weights = stackalloc float[32];
        float* mins = stackalloc float[8];
        float* scales = stackalloc float[8];
        for (int i = 0; i < n / 256; i++, x += 256)
        {
            QuantizeK4Sub(x, L, weights, Laux, scales, mins, 31, -0.5f, 0.1f, 15, out float maxScale, out float maxMin);
            PackScalesMinsK4(y[i].Scales, scales, mins, maxScale, maxMin);
            y[i].D = (Half)(maxScale / 63f);
            y[i].DMin = (Half)(maxMin / 63f);
            RequantizeK4(x, L, y[i].Scales, y[i].D, y[i].DMin, 31);
            byte* qh = y[i].Qh;
            byte* ql = y[i].Qs;
            for (int j = 0; j < 32; j++) qh[j] = 0;
            int m1 = 1, m2 = 2;
            for (int nn = 0; nn < 256; nn += 64, ql += 32)
            {
                for (int j = 0; j < 32; j++)
                {
                    int l1 = L[nn + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= (byte)m1; }
                    int l2 = L[nn + j + 32];
                    if (l2 > 15) { l2 -= 16; qh[j] |= (byte)m2; }
                    ql[j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6_K(float* x, BlockQ6_K* y, int n)
    {
        sbyte* L = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        for (int i = 0; i < n / 256; i++, x += 256)
        {
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib, 1);
                scales[ib] = scale;
                float abs = MathF.Abs(scale);
                if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scale; }
            }
            if (maxAbsScale < GroupMaxEps)
            {
                new Span<byte>(&y[i], sizeof(BlockQ6_K)).Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            y[i].D = (Half)(1 / iscale);
            for (int ib = 0; ib < 16; ib++) y[i].Scales[ib] = (sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            for (int j = 0; j < 16; j++)
            {
                float d = (float)y[i].D * y[i].Scales[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    l = Math.Max(-32, Math.Min(31, l));
                    L[16 * j + ii] = (sbyte)(l + 32);
                }
            }
            byte* ql = y[i].Ql;
            byte* qh = y[i].Qh;
            for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
            {
                for (int l = 0; l < 32; l++)
                {
                    int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                    ql[l] = (byte)(q1 | (q3 << 4));
                    ql[l + 32] = (byte)(q2 | (q4 << 4));
                    qh[l] = (byte)(((byte)L[j + l] >> 4) | (((byte)L[j + l + 32] >> 4) << 2) | (((byte)L[j + l + 64] >> 4) << 4) | (((byte)L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }
}
