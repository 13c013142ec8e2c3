using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Engine.Kernels;

namespace Tandem.Engine.Blocks;

/// <summary>
/// Causal grouped-query attention of one query head over the F16 KV cache, computed as llama.cpp's CPU flash
/// attention does (its default): the query is rounded to F16 for the Q·K dots, softmax is online (running max and
/// sum), and the weighted sum of values is accumulated in F16. Reproducing those roundings is what keeps our logits
/// within llama.cpp's by 1e-4 rather than 1e-2 on models with long value accumulations.
/// </summary>
public static partial class Attention
{
    /// <summary>
    /// F16·F16 dot in ggml's summation order on AVX-512 (four 16-lane F32 accumulators per 64 elements, combined
    /// pairwise, then a tree reduction; the tail in double). The order matters: attention scores feed F16 roundings,
    /// and a different order flips some of them.
    /// </summary>
    public static float DotF16(ReadOnlySpan<Half> x, ReadOnlySpan<Half> y)
    {
        const int Lanes = 16, Step = 64;
        int n = x.Length, blocked = n & ~(Step - 1);
        double sum = 0;
        if (blocked > 0)
        {
            Span<float> acc = stackalloc float[Step];
            acc.Clear();
            for (int i = 0; i < blocked; i += Step)
                for (int j = 0; j < Step; j++)
                    acc[j] = MathF.FusedMultiplyAdd((float)x[i + j], (float)y[i + j], acc[j]);
            Span<float> lane = stackalloc float[Lanes];
            for (int l = 0; l < Lanes; l++)
                lane[l] = (acc[l] + acc[2 * Lanes + l]) + (acc[Lanes + l] + acc[3 * Lanes + l]);
            sum = ReduceAdd16(lane);
        }
        for (int i = blocked; i < n; i++) sum += (double)((float)x[i] * (float)y[i]);
        return (float)sum;
    }

    /// <summary>
    /// acc ← acc + v·w in F16, as ggml_vec_mad_f16: fused multiply-add in F32 for whole 64-element steps (its SIMD
    /// path), separate multiply and add for the tail (its scalar path).
    /// </summary>
    public static void MultiplyAddF16(Span<Half> acc, ReadOnlySpan<Half> v, float w)
    {
        int n = acc.Length, blocked = n & ~63;
        for (int i = 0; i < blocked; i++) acc[i] = (Half)MathF.FusedMultiplyAdd((float)v[i], w, (float)acc[i]);
        for (int i = blocked; i < n; i++) acc[i] = (Half)((float)acc[i] + (float)v[i] * w);
    }

    /// <summary>Horizontal sum of 16 lanes in the order of _mm512_reduce_add_ps: halves, quarters, then pairs.</summary>
    static float ReduceAdd16(ReadOnlySpan<float> v)
    {
        Span<float> h8 = stackalloc float[8];
        for (int i = 0; i < 8; i++) h8[i] = v[8 + i] + v[i];
        Span<float> h4 = stackalloc float[4];
        for (int i = 0; i < 4; i++) h4[i] = h8[4 + i] + h8[i];
        float a = h4[0] + h4[2], b = h4[1] + h4[3];
        return a + b;
    }

    public readonly record struct HeadGeometry(int HeadDim, int ValueDim, int KeyStride, int KeyOffset, int ValueStride, int ValueOffset, float Scale);

    /// <summary>
    /// The scalar reference of <see cref="Head"/>: every F16 value converted one at a time, every sum in plain loops.
    /// </summary>
    /// <param name="query">one head's query (HeadDim floats)</param>
    /// <param name="keys">the layer's key cache</param>
    /// <param name="values">the layer's value cache</param>
    /// <param name="geometry">where this head's keys and values sit in the cache</param>
    /// <param name="positions">cached positions to attend to (causal: up to and including the query's own)</param>
    /// <param name="queryF16">scratch of HeadDim halves</param>
    /// <param name="accumulator">scratch of ValueDim halves</param>
    /// <param name="output">the head's output (ValueDim floats)</param>
    public static void HeadReference(ReadOnlySpan<float> query, ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values,
        in HeadGeometry geometry, int positions, Span<Half> queryF16, Span<Half> accumulator, Span<float> output)
    {
        int hd = geometry.HeadDim, vd = geometry.ValueDim;
        for (int i = 0; i < hd; i++) queryF16[i] = (Half)query[i];
        var acc = accumulator[..vd];
        acc.Clear();
        float max = float.NegativeInfinity, sum = 0;
        for (int j = 0; j < positions; j++)
        {
            var k = keys.Slice(j * geometry.KeyStride + geometry.KeyOffset, hd);
            float s = DotF16(queryF16[..hd], k) * geometry.Scale;
            float oldScale = 1, weight = 1;
            if (s > max)
            {
                oldScale = MathF.Exp(max - s);
                max = s;
                for (int i = 0; i < vd; i++) acc[i] = (Half)((float)acc[i] * oldScale);
            }
            else
            {
                weight = MathF.Exp(s - max);
            }
            var v = values.Slice(j * geometry.ValueStride + geometry.ValueOffset, vd);
            MultiplyAddF16(acc, v, weight);
            sum = MathF.FusedMultiplyAdd(sum, oldScale, weight); // GCC contracts ggml's S*ms + vs
        }
        float inv = 1f / sum;
        for (int i = 0; i < vd; i++) output[i] = (float)acc[i] * inv;
    }

    /// <summary>
    /// Per-worker buffers of <see cref="Head"/>/<see cref="HeadWidened"/>, allocated once per session: the query and
    /// accumulator, and one KV head's keys and values widened to F32 for up to <c>maxPositions</c> positions (the
    /// pages are committed only as positions are used). With AVX-512 and head widths in whole 64-element steps the keys
    /// are widened transposed, in tiles of 16 positions (see <see cref="HeadOverKeyTiles"/>); otherwise row by row.
    /// </summary>
    public sealed class Scratch
    {
        internal readonly float[] Query, Accumulator, Keys, Values;
        /// <summary>Whether <see cref="Keys"/> is in tiles of 16 positions: tile t holds dimension i of positions 16t..16t+15 at [16·(t·HeadDim + i)].</summary>
        internal readonly bool KeysInTiles;
        /// <summary>Per position of one query: its scaled score, its softmax weight and the rescale it applies (1 when none).</summary>
        internal readonly float[] Scores, Weights, Rescales;

        public Scratch(int headDim, int valueDim, int maxPositions)
        {
            KeysInTiles = Avx512F.IsSupported && headDim % 64 == 0 && valueDim % 64 == 0;
            int capacity = KeysInTiles ? (maxPositions + 15) & ~15 : maxPositions;
            Query = new float[headDim];
            Accumulator = new float[valueDim];
            Keys = GC.AllocateUninitializedArray<float>(capacity * headDim);
            Values = GC.AllocateUninitializedArray<float>(maxPositions * valueDim);
            Scores = KeysInTiles ? GC.AllocateUninitializedArray<float>(capacity) : [];
            Weights = KeysInTiles ? GC.AllocateUninitializedArray<float>(capacity) : [];
            Rescales = KeysInTiles ? GC.AllocateUninitializedArray<float>(capacity) : [];
        }

        /// <summary>Widens positions [0, positions) of one KV head from the F16 cache rows into <see cref="Keys"/> and <see cref="Values"/>.</summary>
        public void Widen(ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values, in HeadGeometry g, int positions)
        {
            if (KeysInTiles) WidenTransposed(keys, g.KeyStride, g.KeyOffset, g.HeadDim, Keys, positions);
            else WidenRows(keys, g.KeyStride, g.KeyOffset, g.HeadDim, Keys, positions);
            WidenRows(values, g.ValueStride, g.ValueOffset, g.ValueDim, Values, positions);
        }

        static void CheckRows(ReadOnlySpan<Half> cache, int stride, int offset, int width, int positions)
        {
            if ((long)(positions - 1) * stride + offset + width > cache.Length)
                throw new ArgumentOutOfRangeException(nameof(positions), positions, $"the cache holds {cache.Length} halves, fewer than {positions} rows of stride {stride} need");
        }

        // A batch's attention widens every cached row of every KV head once per layer (8 sequences × 100 positions × 24
        // layers: ~77,000 rows a step), so the per-row call of TensorPrimitives cost more than the conversion itself.
        static void WidenRows(ReadOnlySpan<Half> cache, int stride, int offset, int width, float[] target, int positions)
        {
            if (positions == 0) return;
            CheckRows(cache, stride, offset, width, positions);
            if (!Avx512F.IsSupported || width % 16 != 0)
            {
                for (int j = 0; j < positions; j++)
                    TensorPrimitives.ConvertToSingle(cache.Slice(j * stride + offset, width), target.AsSpan(j * width, width));
                return;
            }
            ref ushort source = ref Unsafe.As<Half, ushort>(ref MemoryMarshal.GetReference(cache));
            ref float widened = ref MemoryMarshal.GetArrayDataReference(target);
            for (int j = 0; j < positions; j++)
            {
                nuint from = (nuint)(j * stride + offset), to = (nuint)(j * width);
                for (int e = 0; e < width; e += 16)
                    HalfLanes.ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.LoadUnsafe(ref source, from + (nuint)e))).StoreUnsafe(ref widened, to + (nuint)e);
            }
        }

        // Sixteen positions × sixteen dimensions at a time: rows widened into registers, transposed by four rounds of
        // two-source permutes (round b swaps index bit b between position and dimension), stored as dimension rows.
        // Positions past the last in a tile read as zeros.
        static unsafe void WidenTransposed(ReadOnlySpan<Half> cache, int stride, int offset, int width, float[] target, int positions)
        {
            if (positions == 0) return;
            CheckRows(cache, stride, offset, width, positions);
            var rows = stackalloc Vector512<float>[16];
            fixed (Half* c = cache)
            fixed (float* tiles = target)
            {
                var source = (ushort*)c;
                for (int p0 = 0; p0 < positions; p0 += 16)
                {
                    int count = Math.Min(16, positions - p0);
                    float* tile = tiles + (long)p0 * width;
                    for (int e0 = 0; e0 < width; e0 += 16)
                    {
                        for (int r = 0; r < 16; r++)
                            rows[r] = r < count
                                ? HalfLanes.ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(source + (long)(p0 + r) * stride + offset + e0)))
                                : Vector512<float>.Zero;
                        Transpose16(rows);
                        for (int i = 0; i < 16; i++) rows[i].Store(tile + (e0 + i) * 16);
                    }
                }
            }
        }

        static unsafe void Transpose16(Vector512<float>* rows)
        {
            for (int b = 8; b > 0; b >>= 1)
            {
                var keep = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                var hasBit = Vector512.Equals(keep & Vector512.Create(b), Vector512.Create(b));
                // Lane l of the lower row: its own lane, or the upper row's lane l − b where l has bit b; of the upper row:
                // the lower row's lane l + b where l lacks bit b, or its own lane.
                var lower = Vector512.ConditionalSelect(hasBit, keep + Vector512.Create(16 - b), keep);
                var upper = Vector512.ConditionalSelect(hasBit, keep + Vector512.Create(16), keep + Vector512.Create(b));
                for (int i = 0; i < 16; i++)
                {
                    if ((i & b) != 0) continue;
                    var a = rows[i];
                    rows[i] = Avx512F.PermuteVar16x32x2(a, lower, rows[i + b]);
                    rows[i + b] = Avx512F.PermuteVar16x32x2(a, upper, rows[i + b]);
                }
            }
        }
    }

    /// <summary>
    /// <see cref="HeadReference"/> computed with vectors, bit for bit the same: widens this head's keys and values,
    /// then runs <see cref="HeadWidened"/>.
    /// </summary>
    public static void Head(ReadOnlySpan<float> query, ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values,
        in HeadGeometry geometry, int positions, Scratch scratch, Span<float> output)
    {
        scratch.Widen(keys, values, geometry, positions);
        HeadWidened(query, geometry, positions, scratch, output);
    }

    /// <summary>
    /// One query head over keys and values already widened into <paramref name="scratch"/> (F16 values, so exact):
    /// the query is rounded to F16, the Q·K dot keeps ggml's 64-lane order, and the F16 accumulator is kept as F32
    /// values rounded to F16 after every update (what storing it as F16 does). Identical to <see cref="HeadReference"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void HeadWidened(ReadOnlySpan<float> query, in HeadGeometry geometry, int positions, Scratch scratch, Span<float> output)
    {
        if (scratch.KeysInTiles)
        {
            HeadOverKeyTiles(query, geometry, positions, scratch, output);
            return;
        }
        int hd = geometry.HeadDim, vd = geometry.ValueDim;
        var q = scratch.Query.AsSpan(0, hd);
        var acc = scratch.Accumulator.AsSpan(0, vd);
        RoundQuery(query, q);
        acc.Clear();
        var keys = scratch.Keys;
        var values = scratch.Values;
        float max = float.NegativeInfinity, sum = 0;
        for (int j = 0; j < positions; j++)
        {
            float s = DotWidened(q, keys.AsSpan(j * hd, hd)) * geometry.Scale;
            float oldScale = 1, weight = 1;
            if (s > max)
            {
                oldScale = MathF.Exp(max - s);
                max = s;
                ScaleRounded(acc, oldScale);
            }
            else
            {
                weight = MathF.Exp(s - max);
            }
            MultiplyAddRounded(acc, values.AsSpan(j * vd, vd), weight);
            sum = MathF.FusedMultiplyAdd(sum, oldScale, weight);
        }
        float inv = 1f / sum;
        for (int i = 0; i < vd; i++) output[i] = acc[i] * inv;
    }

    /// <summary>
    /// <see cref="HeadWidened"/> over keys widened in tiles of 16 positions, in three passes that each run at vector
    /// speed: the scores of 16 positions at once (positions in the lanes, so ggml's 64-lane dot order becomes a fixed
    /// tree of vertical adds); the online softmax's running max, weights and rescales (a short scalar chain); and the
    /// F16-rounded accumulation, 64 value lanes kept in registers across all positions rather than stored and reloaded
    /// per position. Every lane sees the same operations in the same order as the one-pass form.
    /// </summary>
    static unsafe void HeadOverKeyTiles(ReadOnlySpan<float> query, in HeadGeometry geometry, int positions, Scratch scratch, Span<float> output)
    {
        int hd = geometry.HeadDim, vd = geometry.ValueDim;
        RoundQuery(query, scratch.Query.AsSpan(0, hd));
        fixed (float* q = scratch.Query, keys = scratch.Keys, values = scratch.Values, scores = scratch.Scores, weights = scratch.Weights, rescales = scratch.Rescales)
        fixed (float* o = output)
        {
            // The passes are separate methods so that each gets the JIT's whole inlining budget.
            ScoresOverKeyTiles(q, keys, hd, positions, geometry.Scale, scores);
            SoftmaxWeights(scores, positions, weights, rescales);
            AccumulateRounded(values, vd, positions, weights, rescales, o);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void ScoresOverKeyTiles(float* q, float* keys, int hd, int positions, float scale, float* scores)
    {
        var s = Vector512.Create(scale);
        for (int p0 = 0; p0 < positions; p0 += 16)
            (Scores16(q, keys + (long)p0 * hd, hd / 64) * s).Store(scores + p0);
    }

    /// <summary>
    /// The online softmax's weights: each position's weight and the rescale it applies to the accumulator (1 when none);
    /// their sum is formed while they are applied (<see cref="AccumulateRounded"/>). The running max is a scalar chain;
    /// the exps, one per position, run 16 at a time where <see cref="ExpLanes"/> reproduces this platform's expf.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void SoftmaxWeights(float* scores, int positions, float* weights, float* rescales)
    {
        float max = float.NegativeInfinity;
        if (!ExpLanes.Exact)
        {
            for (int j = 0; j < positions; j++)
            {
                float s = scores[j], rescale = 1, weight = 1;
                if (s > max)
                {
                    rescale = MathF.Exp(max - s);
                    max = s;
                }
                else
                {
                    weight = MathF.Exp(s - max);
                }
                rescales[j] = rescale;
                weights[j] = weight;
            }
            return;
        }
        // First the exp arguments, with a new max marked by a rescale of 0 (to be filled in); the padding to a whole
        // vector gets argument 0.
        for (int j = 0; j < positions; j++)
        {
            float s = scores[j];
            if (s > max)
            {
                weights[j] = max - s;
                rescales[j] = 0;
                max = s;
            }
            else
            {
                weights[j] = s - max;
                rescales[j] = 1;
            }
        }
        for (int j = positions; j < ((positions + 15) & ~15); j++) { weights[j] = 0; rescales[j] = 1; }
        for (int j = 0; j < positions; j += 16)
        {
            var newMax = Vector512.Equals(Vector512.Load(rescales + j), Vector512<float>.Zero);
            var e = ExpLanes.Exp(Vector512.Load(weights + j));
            Vector512.ConditionalSelect(newMax, e, Vector512<float>.One).Store(rescales + j);
            Vector512.ConditionalSelect(newMax, Vector512<float>.One, e).Store(weights + j);
        }
    }

    /// <summary>
    /// acc ← round16(acc·rescale) where a rescale applies, then acc ← round16(fma(v, weight, acc)), per position, 64 value
    /// lanes at a time held in registers; output = acc / Σ weights, the sum being the scalar chain sum ← fma(sum, rescale,
    /// weight) formed alongside the first 64 lanes (alone it would cost a dependent FMA per position). A rescale of
    /// exactly 1 is skipped: the accumulator holds F16 values, which ×1 and rounding leave as they are.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void AccumulateRounded(float* values, int vd, int positions, float* weights, float* rescales, float* output)
    {
        float sum = 0;
        for (int c = 0; c < vd; c += 64)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            float* v = values + c;
            bool first = c == 0;
            for (int j = 0; j < positions; j++, v += vd)
            {
                float rescale = rescales[j], weight = weights[j];
                if (first) sum = MathF.FusedMultiplyAdd(sum, rescale, weight);
                if (rescale != 1f)
                {
                    var r = Vector512.Create(rescale);
                    a0 = RoundToHalf(a0 * r); a1 = RoundToHalf(a1 * r); a2 = RoundToHalf(a2 * r); a3 = RoundToHalf(a3 * r);
                }
                var w = Vector512.Create(weight);
                a0 = RoundToHalf(Vector512.FusedMultiplyAdd(Vector512.Load(v), w, a0));
                a1 = RoundToHalf(Vector512.FusedMultiplyAdd(Vector512.Load(v + 16), w, a1));
                a2 = RoundToHalf(Vector512.FusedMultiplyAdd(Vector512.Load(v + 32), w, a2));
                a3 = RoundToHalf(Vector512.FusedMultiplyAdd(Vector512.Load(v + 48), w, a3));
            }
            var inv = Vector512.Create(1f / sum);
            (a0 * inv).Store(output + c);
            (a1 * inv).Store(output + c + 16);
            (a2 * inv).Store(output + c + 32);
            (a3 * inv).Store(output + c + 48);
        }
    }

    /// <summary>
    /// The unscaled scores of one tile's 16 positions (lane = position), in <see cref="DotWidened"/>'s order: product lane
    /// m (of 64) chained by FMA over the 64-element steps, lane l (of 16) = (m l + m l+32) + (m l+16 + m l+48), then
    /// halves, quarters and pairs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector512<float> Scores16(float* q, float* tile, int steps)
    {
        // h8[l] = lane l + lane l+8, formed in a loop (the method stays small: written out 16 times it cost ~3.5 MiB more
        // peak memory for the JIT), then the quarters and pairs.
        var h8 = stackalloc Vector512<float>[8];
        for (int l = 0; l < 8; l++) h8[l] = Lane(q, tile, l, steps) + Lane(q, tile, l + 8, steps);
        return ((h8[0] + h8[4]) + (h8[2] + h8[6])) + ((h8[1] + h8[5]) + (h8[3] + h8[7]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector512<float> Lane(float* q, float* tile, int l, int steps) =>
        (Product(q, tile, l, steps) + Product(q, tile, l + 32, steps)) + (Product(q, tile, l + 16, steps) + Product(q, tile, l + 48, steps));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector512<float> Product(float* q, float* tile, int m, int steps)
    {
        // Written out for the first two steps (head widths 64 and 128): a loop per product lane cost more than its FMA.
        var a = Vector512.FusedMultiplyAdd(Vector512.Create(q[m]), Vector512.Load(tile + m * 16), Vector512<float>.Zero);
        if (steps < 2) return a;
        a = Vector512.FusedMultiplyAdd(Vector512.Create(q[m + 64]), Vector512.Load(tile + (m + 64) * 16), a);
        for (int i = m + 128; i < 64 * steps; i += 64)
            a = Vector512.FusedMultiplyAdd(Vector512.Create(q[i]), Vector512.Load(tile + i * 16), a);
        return a;
    }

    // F32 bit patterns of 2^-14 (F16's smallest normal) and of 65520 (the first value F16 rounds to infinity), as a range test.
    const uint HalfNormalMin = 0x3880_0000u, HalfNormalSpan = 0x477F_F000u - HalfNormalMin;

    /// <summary>
    /// Rounds each lane to the nearest F16 value (ties to even), returned as F32 — exactly (float)(Half)x, including
    /// subnormals, overflow to infinity and signed zeros. (.NET exposes no F16C conversion, so this is done on the bits.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> RoundToHalf(Vector256<float> x)
    {
        var bits = x.AsUInt32();
        var abs = bits & Vector256.Create(0x7FFF_FFFFu);
        // Common case first: every lane in F16's normal range (2^-14 ≤ |x| < 65520) needs only the mantissa rounding,
        // done on the signed bits (a carry into the exponent is the rounding up; it cannot reach the sign in this range).
        if (Vector256.LessThanAll(abs - Vector256.Create(HalfNormalMin), Vector256.Create(HalfNormalSpan)))
            return ((bits + Vector256.Create(0xFFFu) + (Vector256.ShiftRightLogical(bits, 13) & Vector256<uint>.One)) & Vector256.Create(0xFFFF_E000u)).AsSingle();
        var sign = bits & Vector256.Create(0x8000_0000u);
        // Normal F16 range: keep 10 mantissa bits, rounding to nearest even.
        var lsb = Vector256.ShiftRightLogical(abs, 13) & Vector256<uint>.One;
        var normal = (abs + Vector256.Create(0xFFFu) + lsb) & Vector256.Create(0xFFFF_E000u);
        normal = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(normal, Vector256.Create(0x4780_0000u)), Vector256.Create(0x7F80_0000u), normal);
        // Below 2^-14 the F16 spacing is 2^-24: scale, round to an integer (ties to even), scale back (all exact).
        var subnormal = (Vector256.Round(abs.AsSingle() * 16777216f) * (1f / 16777216f)).AsUInt32();
        var rounded = Vector256.ConditionalSelect(Vector256.LessThan(abs, Vector256.Create(0x3880_0000u)), subnormal, normal);
        rounded = Vector256.ConditionalSelect(Vector256.GreaterThan(abs, Vector256.Create(0x7F80_0000u)), abs, rounded); // NaN stays NaN
        return (rounded | sign).AsSingle();
    }

    /// <summary>The 16-lane form of <see cref="RoundToHalf(Vector256{float})"/>: normal range keeps 10 mantissa bits (ties to
    /// even), overflow becomes infinity, below 2^-14 the value is rounded on the 2^-24 grid, NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> RoundToHalf(Vector512<float> x)
    {
        var bits = x.AsUInt32();
        var abs = bits & Vector512.Create(0x7FFF_FFFFu);
        if (Vector512.LessThanAll(abs - Vector512.Create(HalfNormalMin), Vector512.Create(HalfNormalSpan)))
            return ((bits + Vector512.Create(0xFFFu) + (Vector512.ShiftRightLogical(bits, 13) & Vector512<uint>.One)) & Vector512.Create(0xFFFF_E000u)).AsSingle();
        var sign = bits & Vector512.Create(0x8000_0000u);
        var lsb = Vector512.ShiftRightLogical(abs, 13) & Vector512<uint>.One;
        var normal = (abs + Vector512.Create(0xFFFu) + lsb) & Vector512.Create(0xFFFF_E000u);
        normal = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(normal, Vector512.Create(0x4780_0000u)), Vector512.Create(0x7F80_0000u), normal);
        var subnormal = (Vector512.Round(abs.AsSingle() * 16777216f) * (1f / 16777216f)).AsUInt32();
        var rounded = Vector512.ConditionalSelect(Vector512.LessThan(abs, Vector512.Create(0x3880_0000u)), subnormal, normal);
        rounded = Vector512.ConditionalSelect(Vector512.GreaterThan(abs, Vector512.Create(0x7F80_0000u)), abs, rounded);
        return (rounded | sign).AsSingle();
    }

    /// <summary>q ← (float)(Half)query, 16 lanes at a time (one at a time the software conversions both ways cost as much as the head's dots).</summary>
    static void RoundQuery(ReadOnlySpan<float> query, Span<float> q)
    {
        int n = q.Length, i = 0;
        ref float source = ref MemoryMarshal.GetReference(query);
        ref float target = ref MemoryMarshal.GetReference(q);
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
                RoundToHalf(Vector512.LoadUnsafe(ref source, (nuint)i)).StoreUnsafe(ref target, (nuint)i);
        for (; i < n; i++) q[i] = (float)(Half)query[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void ScaleRounded(Span<float> acc, float scale)
    {
        int n = acc.Length, i = 0;
        ref float a = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(acc);
        var sv = Vector256.Create(scale);
        for (; i + 8 <= n; i += 8)
            RoundToHalf(Vector256.LoadUnsafe(ref a, (nuint)i) * sv).StoreUnsafe(ref a, (nuint)i);
        for (; i < n; i++) acc[i] = (float)(Half)(acc[i] * scale);
    }

    /// <summary><see cref="MultiplyAddF16"/> on widened values: FMA over whole 64-element steps, multiply then add on the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MultiplyAddRounded(Span<float> acc, ReadOnlySpan<float> v, float w)
    {
        int n = acc.Length, blocked = n & ~63;
        ref float a = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(acc);
        ref float b = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(v);
        if (Vector512.IsHardwareAccelerated)
        {
            var w16 = Vector512.Create(w);
            for (int i = 0; i < blocked; i += 16)
                RoundToHalf(Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref b, (nuint)i), w16, Vector512.LoadUnsafe(ref a, (nuint)i))).StoreUnsafe(ref a, (nuint)i);
        }
        else
        {
            var w8 = Vector256.Create(w);
            for (int i = 0; i < blocked; i += 8)
                RoundToHalf(Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref b, (nuint)i), w8, Vector256.LoadUnsafe(ref a, (nuint)i))).StoreUnsafe(ref a, (nuint)i);
        }
        for (int i = blocked; i < n; i++) acc[i] = (float)(Half)(acc[i] + v[i] * w);
    }
    /// <summary><see cref="DotF16"/> on widened values: 64 lanes fed by FMA per step, combined and reduced in ggml's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float DotWidened(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int n = x.Length, blocked = n & ~63;
        double sum = 0;
        if (blocked > 0)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            ref float xr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref float yr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
            for (int i = 0; i < blocked; i += 64)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i + 8), Vector256.LoadUnsafe(ref yr, (nuint)i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i + 16), Vector256.LoadUnsafe(ref yr, (nuint)i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i + 24), Vector256.LoadUnsafe(ref yr, (nuint)i + 24), a3);
                a4 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i + 32), Vector256.LoadUnsafe(ref yr, (nuint)i + 32), a4);
                a5 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i + 40), Vector256.LoadUnsafe(ref yr, (nuint)i + 40), a5);
                a6 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i + 48), Vector256.LoadUnsafe(ref yr, (nuint)i + 48), a6);
                a7 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i + 56), Vector256.LoadUnsafe(ref yr, (nuint)i + 56), a7);
            }
            // lane[l] = (acc[l] + acc[32+l]) + (acc[16+l] + acc[48+l]) for l < 16, as two 8-lane halves.
            var lanesLo = (a0 + a4) + (a2 + a6);
            var lanesHi = (a1 + a5) + (a3 + a7);
            var h8 = lanesHi + lanesLo;
            var h4 = h8.GetUpper() + h8.GetLower();
            sum = (h4[0] + h4[2]) + (h4[1] + h4[3]);
        }
        for (int i = blocked; i < n; i++) sum += (double)(x[i] * y[i]);
        return (float)sum;
    }
}
