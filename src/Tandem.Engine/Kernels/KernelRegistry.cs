using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Chooses kernels by weight type and CPU features at run time.
/// <para>
/// Every weight type has a scalar reference (<see cref="ScalarDot"/>, computed as ggml's reference vec_dot functions) and,
/// where the hardware allows, SIMD kernels: portable Vector128 (<see cref="SimdDot128"/>, NEON/sdot on ARM64),
/// AVX2 and AVX-VNNI (<see cref="SimdDot"/>, 256-bit integer kernels for all quantized types) and AVX-512 for
/// F32/F16/BF16. Integer partial sums are exact in every kernel; K-quant kernels agree with the reference bit for bit;
/// the others differ only by float summation order.
/// </para>
/// <para>
/// Activations are prepared as ggml's CPU backend prepares them on x86 (see <see cref="ActivationQuant"/>), so that
/// results land closest to llama.cpp's.
/// </para>
/// </summary>
public static unsafe class KernelRegistry
{
    static readonly Dictionary<GgmlType, MatVecKernel> ReferenceKernels = BuildReference();
    static readonly Dictionary<GgmlType, MatVecKernel> BestKernels = BuildBest();

    /// <summary>Weight types with kernels.</summary>
    public static IReadOnlyCollection<GgmlType> SupportedTypes => ReferenceKernels.Keys;

    /// <summary>The fastest kernel this CPU supports for the weight type.</summary>
    public static MatVecKernel For(GgmlType weightType) =>
        BestKernels.TryGetValue(weightType, out var k) ? k : throw new NotSupportedException($"No kernel for weight type {weightType}.");

    static readonly MatVecKernel RepackedQ4_0 = new GgmlQ0Kernel(GgmlType.Q4_0, repacked: true);
    static readonly MatVecKernel RepackedQ2K = new GgmlKQuant2Kernel(GgmlType.Q2_K, repacked: true);

    /// <summary>
    /// The kernel for a weight matrix of <paramref name="rows"/> rows: as <see cref="For"/>, except where llama.cpp's
    /// choice of path (and so its summation order) depends on the matrix: tinyBLAS takes float matrices only when the
    /// row count is a multiple of 4, and the CPU backend repacks some quantized matrices at load (Q4_0, Q4_K and, with
    /// AVX-512, Q2_K, when the row count is a multiple of 8). <paramref name="repackable"/> is false for matrices llama.cpp never repacks (the token
    /// embedding, which it also reads with get_rows).
    /// </summary>
    public static MatVecKernel ForWeights(GgmlType weightType, int rows, bool repackable = true) => weightType switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 when rows % 4 != 0 => new GgmlFloatKernel(weightType, tinyBlasRows: false),
        _ when repackable && GgmlQ0Kernel.IsRepacked(weightType, rows) => RepackedQ4_0,
        GgmlType.Q4_K when repackable && rows % 8 == 0 => GgmlKQuantKernel.Q4KRepacked,
        GgmlType.Q2_K when repackable && rows % 8 == 0 => RepackedQ2K,
        _ => For(weightType),
    };

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

    /// <summary>One line per weight type: the kernels usable here and the one <see cref="For"/> picks (for diagnostics).</summary>
    public static IEnumerable<string> Describe() =>
        ReferenceKernels.Keys.Select(t =>
            $"{GgmlTypeInfo.Of(t).Name,-5} x {GgmlTypeInfo.Of(ActivationQuant.VecDotType(t)).Name,-5}: {For(t).Isa,-12} (available: {string.Join(", ", Available(t).Select(k => k.Isa))})");

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

        // --- Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 in llama.cpp's x86 order (vec_dot / tinyBLAS); repacked Q4_0 via ForWeights ---
        foreach (var type in GgmlQ0Kernel.Types)
            best[type] = new GgmlQ0Kernel(type);
        // --- end Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 ---

        // K-quants Q4_K / Q6_K: llama.cpp's x86 vec_dot float arithmetic (repacked Q4_K: see ForWeights).
        best[GgmlType.Q4_K] = GgmlKQuantKernel.Q4K;
        best[GgmlType.Q6_K] = GgmlKQuantKernel.Q6K;

        // Q2_K, Q3_K, Q5_K: llama.cpp's vec_dot float order (GgmlKQuantKernels2.cs).
        foreach (var type in new[] { GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q5_K })
            best[type] = new GgmlKQuant2Kernel(type);
        return best;
    }
}
