using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Chooses kernels by weight type (and, where llama.cpp's path depends on it, by matrix shape).
/// <para>
/// Every weight type has a scalar reference (<see cref="ScalarDot"/>, computed as ggml's reference vec_dot functions:
/// integer sums per block, then scaled) and the kernel the engine uses, which reproduces the float arithmetic of
/// llama.cpp's x86 build path by path (<see cref="GgmlFloatKernel"/>, <see cref="GgmlQ0Kernel"/>,
/// <see cref="GgmlKQuantKernel"/>, <see cref="GgmlKQuant2Kernel"/>), each with a scalar and an AVX2 form that give the
/// same bits. Integer partial sums are exact everywhere; kernels differ from the reference only in float rounding.
/// </para>
/// <para>
/// Activations are prepared as ggml's CPU backend prepares them on x86 (see <see cref="ActivationQuant"/>).
/// </para>
/// </summary>
public static unsafe class KernelRegistry
{
    static readonly Dictionary<GgmlType, MatVecKernel> ReferenceKernels = BuildReference();
    static readonly Dictionary<GgmlType, MatVecKernel> BestKernels = BuildBest();

    /// <summary>Weight types with kernels.</summary>
    public static IReadOnlyCollection<GgmlType> SupportedTypes => ReferenceKernels.Keys;

    /// <summary>The kernel the engine uses for the weight type (llama.cpp's single-token and batch arithmetic).</summary>
    public static MatVecKernel For(GgmlType weightType) =>
        BestKernels.TryGetValue(weightType, out var k) ? k : throw new NotSupportedException($"No kernel for weight type {weightType}.");

    static readonly MatVecKernel RepackedQ4_0 = new GgmlQ0Kernel(GgmlType.Q4_0, repacked: true);

    /// <summary>The repacked Q4_0 kernel over weights interleaved at load (x86 with AVX2; see <see cref="Blocks.Linear"/>).</summary>
    public static MatVecKernel InterleavedQ4_0 => _interleavedQ4_0 ??= new GgmlQ0Kernel(GgmlType.Q4_0, repacked: true, interleaved: true);
    static MatVecKernel? _interleavedQ4_0;
    /// <summary>The Q5_0 kernel over weights interleaved at load (x86 with AVX2; see <see cref="Q5_0Lanes"/>).</summary>
    public static MatVecKernel InterleavedQ5_0 => _interleavedQ5_0 ??= new GgmlQ0Kernel(GgmlType.Q5_0, interleaved: true);
    static MatVecKernel? _interleavedQ5_0;
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

    /// <summary>Every kernel for the weight type, the scalar reference first, then the engine's (plain and repacked-matrix forms).</summary>
    public static IReadOnlyList<MatVecKernel> Available(GgmlType weightType)
    {
        var list = new List<MatVecKernel> { Reference(weightType), For(weightType) };
        var repacked = ForWeights(weightType, rows: 8);
        if (!list.Contains(repacked)) list.Add(repacked);
        return list;
    }

    /// <summary>One line per weight type: activation type and the kernels (for diagnostics).</summary>
    public static IEnumerable<string> Describe() =>
        ReferenceKernels.Keys.Select(t =>
            $"{GgmlTypeInfo.Of(t).Name,-5} x {GgmlTypeInfo.Of(ActivationQuant.VecDotType(t)).Name,-5}: {string.Join(", ", Available(t))}");

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
