using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tandem.Gguf.Quants;

public static unsafe partial class ActivationQuant
{
    /// <summary>256-bit versions of the activation conversions, bit-identical to the scalar ones.</summary>
    static class Simd
    {
        public static bool IsSupported => Vector256.IsHardwareAccelerated;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<sbyte> PackToBytes(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d) =>
            Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d));

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Q8_0(float* x, BlockQ8_0* y, int n)
        {
            for (int i = 0; i < n / 32; i++, x += 32)
            {
                var v0 = Vector256.Load(x); var v1 = Vector256.Load(x + 8); var v2 = Vector256.Load(x + 16); var v3 = Vector256.Load(x + 24);
                var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
                float amax = MathF.Max(MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3])), MathF.Max(MathF.Max(m[4], m[5]), MathF.Max(m[6], m[7])));
                float d = amax / 127f;
                y[i].D = (Half)d;
                var id = Vector256.Create(amax != 0f ? 127f / amax : 0f);
                var q = PackToBytes(
                    Vector256.ConvertToInt32(Vector256.Round(v0 * id)), Vector256.ConvertToInt32(Vector256.Round(v1 * id)),
                    Vector256.ConvertToInt32(Vector256.Round(v2 * id)), Vector256.ConvertToInt32(Vector256.Round(v3 * id)));
                q.Store(y[i].Qs);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Q8_1(float* x, BlockQ8_1* y, int n)
        {
            for (int i = 0; i < n / 32; i++, x += 32)
            {
                var v0 = Vector256.Load(x); var v1 = Vector256.Load(x + 8); var v2 = Vector256.Load(x + 16); var v3 = Vector256.Load(x + 24);
                var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
                float amax = MathF.Max(MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3])), MathF.Max(MathF.Max(m[4], m[5]), MathF.Max(m[6], m[7])));
                float d = amax / 127f;
                y[i].D = (Half)d;
                var id = Vector256.Create(amax != 0f ? 127f / amax : 0f);
                var i0 = Vector256.ConvertToInt32(Vector256.Round(v0 * id));
                var i1 = Vector256.ConvertToInt32(Vector256.Round(v1 * id));
                var i2 = Vector256.ConvertToInt32(Vector256.Round(v2 * id));
                var i3 = Vector256.ConvertToInt32(Vector256.Round(v3 * id));
                PackToBytes(i0, i1, i2, i3).Store(y[i].Qs);
                int sum = Vector256.Sum((i0 + i1) + (i2 + i3));
                y[i].S = (Half)(d * sum);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Q8_K(float* x, BlockQ8_K* y, int n)
        {
            for (int i = 0; i < n / 256; i++, x += 256)
            {
                var m = Vector256<float>.Zero;
                for (int j = 0; j < 256; j += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.Load(x + j)));
                float amax = MathF.Max(MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3])), MathF.Max(MathF.Max(m[4], m[5]), MathF.Max(m[6], m[7])));
                if (amax == 0f)
                {
                    y[i].D = 0;
                    new Span<byte>(y[i].Qs, 256).Clear();
                    new Span<short>(y[i].BSums, 16).Clear();
                    continue;
                }
                // the first element of largest magnitude, as the scalar scan picks it
                float max = 0;
                for (int j = 0; j < 256; j++)
                    if (MathF.Abs(x[j]) == amax) { max = x[j]; break; }
                float iscale = -127f / max;
                var vs = Vector256.Create(iscale);
                var cap = Vector256.Create(127);
                for (int j = 0; j < 256; j += 32)
                {
                    var i0 = Vector256.Min(cap, Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j) * vs)));
                    var i1 = Vector256.Min(cap, Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j + 8) * vs)));
                    var i2 = Vector256.Min(cap, Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j + 16) * vs)));
                    var i3 = Vector256.Min(cap, Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j + 24) * vs)));
                    PackToBytes(i0, i1, i2, i3).Store(y[i].Qs + j);
                    y[i].BSums[j / 16] = (short)Vector256.Sum(i0 + i1);
                    y[i].BSums[j / 16 + 1] = (short)Vector256.Sum(i2 + i3);
                }
                y[i].D = 1 / iscale;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void BF16(float* x, ushort* y, int n)
        {
            int i = 0;
            for (; i + 16 <= n; i += 16)
                Vector256.Narrow(Bf16(Vector256.Load((uint*)x + i)), Bf16(Vector256.Load((uint*)x + i + 8))).Store(y + i);
            for (; i < n; i++) y[i] = FloatConv.F32ToBF16(x[i]);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<uint> Bf16(Vector256<uint> u)
        {
            var nan = Vector256.GreaterThan((u & Vector256.Create(0x7fffffffu)).AsInt32(), Vector256.Create(0x7f800000)).AsUInt32();
            var rounded = (u + (Vector256.Create(0x7fffu) + (Vector256.ShiftRightLogical(u, 16) & Vector256.Create(1u)))) >> 16;
            var quiet = Vector256.ShiftRightLogical(u, 16) | Vector256.Create(64u);
            return Vector256.ConditionalSelect(nan, quiet, rounded);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void F16(float* x, ushort* y, int n)
        {
            int i = 0;
            for (; i + 16 <= n; i += 16)
                Vector256.Narrow(F16(Vector256.Load((uint*)x + i)), F16(Vector256.Load((uint*)x + i + 8))).Store(y + i);
            for (; i < n; i++) y[i] = FloatConv.F32ToF16(x[i]);
        }

        /// <summary>float bits to fp16 bits, round-to-nearest-even, overflow to infinity, NaN kept (quiet, top payload bits).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<uint> F16(Vector256<uint> bits)
        {
            var sign = Vector256.ShiftRightLogical(bits & Vector256.Create(0x80000000u), 16);
            var f = (bits & Vector256.Create(0x7fffffffu)).AsInt32();
            // NaN / infinity / overflow (>= 65520 rounds to infinity)
            var isNan = Vector256.GreaterThan(f, Vector256.Create(0x7f800000));
            var nan = Vector256.Create(0x7e00) | (Vector256.ShiftRightLogical(f, 13) & Vector256.Create(0x3ff));
            var big = Vector256.GreaterThanOrEqual(f, Vector256.Create((127 + 16) << 23));
            var inf = Vector256.Create(0x7c00);
            // subnormal results (|x| < 2^-14): add a magic float so the FPU rounds the mantissa (RNE) into place
            var small = Vector256.LessThan(f, Vector256.Create(113 << 23));
            const int denormMagic = ((127 - 15) + (23 - 10) + 1) << 23;
            var sub = (f.AsSingle() + Vector256.Create(denormMagic).AsSingle()).AsInt32() - Vector256.Create(denormMagic);
            // normal results: rebias the exponent and round the mantissa to nearest even
            var odd = Vector256.ShiftRightLogical(f, 13) & Vector256.Create(1);
            var norm = Vector256.ShiftRightLogical(f + Vector256.Create(((15 - 127) << 23) + 0xfff) + odd, 13);
            var r = Vector256.ConditionalSelect(small, sub, norm);
            r = Vector256.ConditionalSelect(big, inf, r);
            r = Vector256.ConditionalSelect(isNan, nan, r);
            return r.AsUInt32() | sign;
        }
    }
}
