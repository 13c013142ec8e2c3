using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>Chooses kernels by weight type and CPU features at run time.</summary>
public static unsafe class KernelRegistry
{
    static readonly Dictionary<GgmlType, MatVecKernel> ReferenceKernels = BuildReference();
    static readonly Dictionary<GgmlType, MatVecKernel> BestKernels = BuildBest();

    /// <summary>Weight types with kernels.</summary>
    public static IReadOnlyCollection<GgmlType> SupportedTypes => ReferenceKernels.Keys;

    /// <summary>The fastest kernel this CPU supports for the weight type.</summary>
    public static MatVecKernel For(GgmlType weightType) =>
        BestKernels.TryGetValue(weightType, out var k) ? k : throw new NotSupportedException($"No kernel for weight type {weightType}.");

    static readonly MatVecKernel RepackedQ2K = new GgmlKQuant2Kernel(GgmlType.Q2_K, repacked: true);

    /// <summary>
    /// The kernel for a weight matrix of <paramref name="rows"/> rows: as <see cref="For"/>, except where llama.cpp
    /// repacks such a matrix at load (Q2_K with a row count divisible by 8) and so sums in its repacked kernels' order.
    /// </summary>
    public static MatVecKernel ForWeights(GgmlType weightType, int rows) =>
        weightType == GgmlType.Q2_K && rows % 8 == 0 ? RepackedQ2K : For(weightType);

    /// <summary>The scalar reference kernel for the weight type.</summary>
    public static MatVecKernel Reference(GgmlType weightType) =>
        ReferenceKernels.TryGetValue(weightType, out var k) ? k : throw new NotSupportedException($"No kernel for weight type {weightType}.");

    /// <summary>All kernels usable on this CPU for the weight type (reference first).</summary>
    public static IReadOnlyList<MatVecKernel> Available(GgmlType weightType)
    {
        var list = new List<MatVecKernel> { Reference(weightType) };
        foreach (var k in SimdKernels.Create(weightType))
            list.Add(k);
        return list;
    }

    /// <summary>Dequantizes <paramref name="n"/> elements of one row of the given type to F32.</summary>
    public static void DequantizeRow(GgmlType type, byte* src, float* dst, int n) => Dequantize.Row(type, src, dst, n);

    static Dictionary<GgmlType, MatVecKernel> BuildReference() => new()
    {
        [GgmlType.F32] = new FnKernel(GgmlType.F32, "scalar", &ScalarDot.F32),
        [GgmlType.F16] = new FnKernel(GgmlType.F16, "scalar", &ScalarDot.F16),
        [GgmlType.BF16] = new FnKernel(GgmlType.BF16, "scalar", &ScalarDot.BF16),
        [GgmlType.Q4_0] = new FnKernel(GgmlType.Q4_0, "scalar", &ScalarDot.Q4_0),
        [GgmlType.Q4_1] = new FnKernel(GgmlType.Q4_1, "scalar", &ScalarDot.Q4_1),
        [GgmlType.Q5_0] = new FnKernel(GgmlType.Q5_0, "scalar", &ScalarDot.Q5_0),
        [GgmlType.Q5_1] = new FnKernel(GgmlType.Q5_1, "scalar", &ScalarDot.Q5_1),
        [GgmlType.Q8_0] = new FnKernel(GgmlType.Q8_0, "scalar", &ScalarDot.Q8_0),
        [GgmlType.Q2_K] = new FnKernel(GgmlType.Q2_K, "scalar", &ScalarDot.Q2_K),
        [GgmlType.Q3_K] = new FnKernel(GgmlType.Q3_K, "scalar", &ScalarDot.Q3_K),
        [GgmlType.Q4_K] = new FnKernel(GgmlType.Q4_K, "scalar", &ScalarDot.Q4_K),
        [GgmlType.Q5_K] = new FnKernel(GgmlType.Q5_K, "scalar", &ScalarDot.Q5_K),
        [GgmlType.Q6_K] = new FnKernel(GgmlType.Q6_K, "scalar", &ScalarDot.Q6_K),
    };

    static Dictionary<GgmlType, MatVecKernel> BuildBest()
    {
        var best = new Dictionary<GgmlType, MatVecKernel>();
        foreach (var (type, reference) in ReferenceKernels)
        {
            var simd = SimdKernels.Create(type);
            best[type] = simd.Count > 0 ? simd[^1] : reference;
        }
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
            best[type] = new GgmlFloatKernel(type);
        // Q2_K, Q3_K, Q5_K: llama.cpp's vec_dot float order (GgmlKQuantKernels2.cs).
        foreach (var type in new[] { GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q5_K })
            best[type] = new GgmlKQuant2Kernel(type);
        return best;
    }
}
