using Tandem.Gguf;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Dot products of one weight type against activations prepared the way ggml prepares them
/// (quantized to Q8_0/Q8_1/Q8_K, or rounded to F16/BF16, or kept F32), so results land closest to llama.cpp.
/// One instance per (weight type, instruction set); <see cref="KernelRegistry"/> picks the fastest the CPU supports
/// and keeps the scalar reference for tests.
/// </summary>
public abstract unsafe class MatVecKernel
{
    /// <summary>Type of the weight rows this kernel reads.</summary>
    public abstract GgmlType WeightType { get; }

    /// <summary>Type activations are converted to before the dot (ggml's vec_dot_type).</summary>
    public abstract GgmlType ActivationType { get; }

    /// <summary>Instruction set used: "scalar", "avx2", "avx512", "avx-vnni", "avx512-vnni", "neon"/"vector128".</summary>
    public abstract string Isa { get; }

    /// <summary>Bytes of one activation row of <paramref name="n"/> elements in <see cref="ActivationType"/>.</summary>
    public long ActivationRowBytes(int n) => GgmlTypeInfo.Of(ActivationType).RowBytes(n);

    /// <summary>Converts one F32 activation row (x.Length elements, a multiple of the weight block size) into <paramref name="dst"/>.</summary>
    public abstract void PrepareActivation(ReadOnlySpan<float> x, Span<byte> dst);

    /// <summary>Dot product of one weight row with one prepared activation row, both of <paramref name="n"/> elements.</summary>
    public abstract float Dot(byte* weightRow, byte* activationRow, int n);

    /// <summary>
    /// The dot for token <paramref name="token"/> of a matrix multiplication over <paramref name="tokens"/> tokens.
    /// llama.cpp sums in a different order for batches (llamafile's tinyBLAS, repacked GEMMs) than for a single token
    /// (vec_dot); kernels that reproduce that order override this. The integer parts are identical either way; only
    /// the float rounding of the sums differs.
    /// </summary>
    public virtual float DotInMatMul(byte* weightRow, byte* activationRow, int n, int token, int tokens) => Dot(weightRow, activationRow, n);

    /// <summary>
    /// Dots <paramref name="rows"/> consecutive weight rows (<paramref name="rowStride"/> bytes apart) with one prepared
    /// activation row, writing dst[0..rows). Same results as calling <see cref="Dot"/> per row.
    /// </summary>
    public virtual void DotRows(byte* weights, long rowStride, int rows, byte* activationRow, int n, float* dst)
    {
        for (int r = 0; r < rows; r++)
            dst[r] = Dot(weights + r * rowStride, activationRow, n);
    }
}
