using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tandem.Engine.Kernels;

namespace Tandem.Engine.Blocks;

/// <summary>
/// llama.cpp's tiled CPU flash attention, the kernel it runs for batches of <see cref="TiledMinTokens"/> or more query
/// rows (ggml_compute_forward_flash_attn_ext_tiled): its scalar reference and its vector form.
/// </summary>
public static partial class Attention
{
    /// <summary>
    /// A sequence with at least this many query tokens in one batch gets llama.cpp's tiled CPU flash attention
    /// (ggml_compute_forward_flash_attn_ext_tiled, which its CPU backend picks for batches of 64 or more query rows):
    /// F32 query and accumulator, scores and value sums as F32 multiply-add chains, softmax per tile of 64 positions
    /// with ggml's own vector exp. Fewer tokens (and decode) get the one-row kernel with its F16 roundings
    /// (<see cref="HeadReference"/>). llama.cpp's default micro-batch, 512 tokens, equals our default batch, so a
    /// prompt is split the same way and each chunk gets the same kernel.
    /// </summary>
    public const int TiledMinTokens = 64;

    /// <summary>Positions per tile of the tiled kernel (GGML_FA_TILE_KV).</summary>
    const int PositionTile = 64;

    /// <summary>
    /// The scalar reference of llama.cpp's tiled flash attention for one query row (see <see cref="TiledMinTokens"/>):
    /// per tile of 64 positions the scores q·k (F32 query, one FMA chain over the head dimension) × scale, the tile's
    /// max, a rescale of the F32 accumulator and sum by expf(old max − new max) when the max grows, the weights
    /// e = ggml's exp(score − max) (<see cref="ExpLanes.GgmlReference"/>), their sum added in double 16 at a time (each
    /// 16 reduced like _mm512_reduce_add_ps) and then to the float sum, and acc ← fma(v, e, acc) position by position.
    /// Also the path for head widths the vector form does not take.
    /// </summary>
    public static void HeadReferenceTiled(ReadOnlySpan<float> query, ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values,
        in HeadGeometry geometry, int positions, Span<float> output)
    {
        int hd = geometry.HeadDim, vd = geometry.ValueDim;
        Span<float> acc = vd <= 512 ? stackalloc float[vd] : new float[vd];
        Span<float> scores = stackalloc float[PositionTile];
        acc.Clear();
        float max = float.NegativeInfinity, sum = 0;
        for (int p0 = 0; p0 < positions; p0 += PositionTile)
        {
            float tileMax = float.NegativeInfinity;
            for (int i = 0; i < PositionTile; i++)
            {
                float s = float.NegativeInfinity;
                if (p0 + i < positions)
                {
                    var k = keys.Slice((p0 + i) * geometry.KeyStride + geometry.KeyOffset, hd);
                    float dot = 0;
                    for (int d = 0; d < hd; d++) dot = MathF.FusedMultiplyAdd((float)k[d], query[d], dot);
                    s = dot * geometry.Scale;
                }
                scores[i] = s;
                tileMax = s > tileMax ? s : tileMax;
            }
            if (tileMax == float.NegativeInfinity) continue;
            float newMax = tileMax > max ? tileMax : max;
            if (newMax > max)
            {
                float rescale = MathF.Exp(max - newMax);
                for (int d = 0; d < vd; d++) acc[d] *= rescale;
                sum *= rescale;
            }
            max = newMax;
            double tileSum = 0;
            for (int i = 0; i < PositionTile; i++) scores[i] = ExpLanes.GgmlReference(scores[i] - max);
            for (int i = 0; i < PositionTile; i += 16) tileSum += ReduceAdd16(scores.Slice(i, 16));
            sum = (float)(sum + tileSum);
            for (int i = 0; i < PositionTile && p0 + i < positions; i++)
            {
                var v = values.Slice((p0 + i) * geometry.ValueStride + geometry.ValueOffset, vd);
                for (int d = 0; d < vd; d++) acc[d] = MathF.FusedMultiplyAdd((float)v[d], scores[i], acc[d]);
            }
        }
        float inv = sum == 0 ? 0 : 1f / sum;
        for (int d = 0; d < vd; d++) output[d] = acc[d] * inv;
    }

    /// <summary>
    /// <see cref="HeadReferenceTiled"/> over keys and values widened into <paramref name="scratch"/> (keys in tiles of
    /// 16 positions), bit for bit the same: the scores of four 16-position tiles at a time as four FMA chains over the
    /// head dimension (positions in the lanes), the exps 16 at a time, and the value sums with 64 accumulator lanes in
    /// registers. The query is not rounded and the accumulator stays F32, so this costs a fraction of the one-row form.
    /// Falls back to the reference where the scratch does not hold its keys in tiles.
    /// </summary>
    public static unsafe void HeadWidenedTiled(ReadOnlySpan<float> query, ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values,
        in HeadGeometry geometry, int positions, Scratch scratch, Span<float> output)
    {
        if (!scratch.KeysInTiles)
        {
            HeadReferenceTiled(query, keys, values, geometry, positions, output);
            return;
        }
        int hd = geometry.HeadDim, vd = geometry.ValueDim;
        var weights = stackalloc float[PositionTile];
        fixed (float* q = query, tiles = scratch.Keys, widened = scratch.Values, acc = scratch.Accumulator)
        fixed (float* o = output)
        {
            new Span<float>(acc, vd).Clear();
            float max = float.NegativeInfinity, sum = 0;
            var scale = Vector512.Create(geometry.Scale);
            for (int p0 = 0; p0 < positions; p0 += PositionTile)
            {
                TileScores(q, tiles + (long)p0 * hd, hd, positions - p0, out var s0, out var s1, out var s2, out var s3);
                s0 *= scale; s1 *= scale; s2 *= scale; s3 *= scale;
                // Positions past the last read as −∞ (llama.cpp's mask and padding): weight 0.
                var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                var inf = Vector512.Create(float.NegativeInfinity);
                int left = positions - p0;
                s0 = Vector512.ConditionalSelect(Vector512.LessThan(lane, Vector512.Create(left)).AsSingle(), s0, inf);
                s1 = Vector512.ConditionalSelect(Vector512.LessThan(lane, Vector512.Create(left - 16)).AsSingle(), s1, inf);
                s2 = Vector512.ConditionalSelect(Vector512.LessThan(lane, Vector512.Create(left - 32)).AsSingle(), s2, inf);
                s3 = Vector512.ConditionalSelect(Vector512.LessThan(lane, Vector512.Create(left - 48)).AsSingle(), s3, inf);
                float tileMax = MaxLane(Vector512.Max(Vector512.Max(s0, s1), Vector512.Max(s2, s3)));
                if (tileMax == float.NegativeInfinity) continue;
                float newMax = tileMax > max ? tileMax : max;
                if (newMax > max)
                {
                    float rescale = MathF.Exp(max - newMax);
                    var r = Vector512.Create(rescale);
                    for (int d = 0; d < vd; d += 16) (Vector512.Load(acc + d) * r).Store(acc + d);
                    sum *= rescale;
                }
                max = newMax;
                var mv = Vector512.Create(max);
                var e0 = ExpLanes.Ggml(s0 - mv);
                var e1 = ExpLanes.Ggml(s1 - mv);
                var e2 = ExpLanes.Ggml(s2 - mv);
                var e3 = ExpLanes.Ggml(s3 - mv);
                double tileSum = 0;
                tileSum += ReduceAdd16(e0);
                tileSum += ReduceAdd16(e1);
                tileSum += ReduceAdd16(e2);
                tileSum += ReduceAdd16(e3);
                sum = (float)(sum + tileSum);
                e0.Store(weights); e1.Store(weights + 16); e2.Store(weights + 32); e3.Store(weights + 48);
                AccumulateFloat(widened + (long)p0 * vd, vd, Math.Min(PositionTile, left), weights, acc);
            }
            var inv = Vector512.Create(sum == 0 ? 0 : 1f / sum);
            for (int d = 0; d < vd; d += 16) (Vector512.Load(acc + d) * inv).Store(o + d);
        }
    }

    /// <summary>
    /// Scores of up to 64 positions from four 16-position key tiles: lane p of tile t = Σ_d k[d]·q[d] as one FMA chain
    /// from d = 0 (the order of ggml's simd_gemm); tiles that start past the last position are left −∞.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void TileScores(float* q, float* tiles, int hd, int left,
        out Vector512<float> s0, out Vector512<float> s1, out Vector512<float> s2, out Vector512<float> s3)
    {
        s0 = s1 = s2 = s3 = Vector512.Create(float.NegativeInfinity);
        int stride = 16 * hd;
        if (left > 48)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int d = 0; d < hd; d++)
            {
                var qd = Vector512.Create(q[d]);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(tiles + d * 16), qd, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(tiles + stride + d * 16), qd, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(tiles + 2 * stride + d * 16), qd, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(tiles + 3 * stride + d * 16), qd, a3);
            }
            (s0, s1, s2, s3) = (a0, a1, a2, a3);
            return;
        }
        for (int t = 0; t * 16 < left; t++)
        {
            Vector512<float> a = default;
            float* tile = tiles + t * stride;
            for (int d = 0; d < hd; d++) a = Vector512.FusedMultiplyAdd(Vector512.Load(tile + d * 16), Vector512.Create(q[d]), a);
            if (t == 0) s0 = a; else if (t == 1) s1 = a; else s2 = a;
        }
    }

    /// <summary>acc ← fma(v, weight, acc) for positions in order, 64 value lanes at a time in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void AccumulateFloat(float* values, int vd, int count, float* weights, float* acc)
    {
        for (int c = 0; c < vd; c += 64)
        {
            var a0 = Vector512.Load(acc + c);
            var a1 = Vector512.Load(acc + c + 16);
            var a2 = Vector512.Load(acc + c + 32);
            var a3 = Vector512.Load(acc + c + 48);
            float* v = values + c;
            for (int j = 0; j < count; j++, v += vd)
            {
                var w = Vector512.Create(weights[j]);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(v), w, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 16), w, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 32), w, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 48), w, a3);
            }
            a0.Store(acc + c);
            a1.Store(acc + c + 16);
            a2.Store(acc + c + 32);
            a3.Store(acc + c + 48);
        }
    }

    /// <summary>_mm512_reduce_add_ps's order: halves, quarters, then (0+2)+(1+3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float ReduceAdd16(Vector512<float> v)
    {
        var h8 = v.GetUpper() + v.GetLower();
        var h4 = h8.GetUpper() + h8.GetLower();
        return (h4[0] + h4[2]) + (h4[1] + h4[3]);
    }

    static float MaxLane(Vector512<float> v)
    {
        var h8 = Vector256.Max(v.GetUpper(), v.GetLower());
        var h4 = Vector128.Max(h8.GetUpper(), h8.GetLower());
        return MathF.Max(MathF.Max(h4[0], h4[1]), MathF.Max(h4[2], h4[3]));
    }
}
