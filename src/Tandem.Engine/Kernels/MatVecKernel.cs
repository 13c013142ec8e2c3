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
    // The F16 table is built before any kernel runs: a kernel loop compiled straight to optimized code
    // (AggressiveOptimization) while the table's class was still uninitialized keeps a class-init helper call in the
    // loop, and that call spills every vector register around it (a two-row GEMV ran at half speed).
    protected MatVecKernel() => _ = Tandem.Gguf.Quants.HalfTable.ToF32((ushort)0);

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

    /// <summary>Row ranges given to <see cref="MatMul"/> by worker splits start at multiples of this (rows stored in
    /// groups, e.g. interleaved at load); other starts still work, only slower.</summary>
    public virtual int RowGranularity => 1;

    /// <summary>
    /// The dot for token <paramref name="token"/> of a matrix multiplication over <paramref name="tokens"/> tokens.
    /// llama.cpp sums in a different order for batches (llamafile's tinyBLAS, repacked GEMMs) than for a single token
    /// (vec_dot); kernels that reproduce that order override this. The integer parts are identical either way; only
    /// the float rounding of the sums differs.
    /// </summary>
    public virtual float DotInMatMul(byte* weightRow, byte* activationRow, int n, int token, int tokens) => Dot(weightRow, activationRow, n);

    /// <summary>
    /// Output rows [<paramref name="rowStart"/>, <paramref name="rowEnd"/>) of a matrix multiplication, for every token:
    /// output[t, r] = DotInMatMul(row r, token t) + bias[r]. Kernels override this to decode each weight block once for
    /// several tokens (prefill and batched decode); every output keeps exactly the summation order of
    /// <see cref="DotInMatMul"/>, so the results are bit-identical to the one-dot-at-a-time loop here.
    /// </summary>
    public virtual void MatMul(in MatMulOperands op, int rowStart, int rowEnd)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = op.Weights + r * op.RowBytes;
            float b = op.Bias is null ? 0f : op.Bias[r];
            for (int t = 0; t < op.Tokens; t++)
                op.Output[(long)t * op.OutputStride + r] = DotInMatMul(row, op.Activations + t * op.ActivationRowBytes, op.N, t, op.Tokens) + b;
        }
    }
}

/// <summary>
/// The operands of one matrix multiplication: <see cref="Tokens"/> prepared activation rows against a weight matrix of
/// rows of <see cref="N"/> elements, written to <see cref="Output"/> as [token, row] with <see cref="OutputStride"/>
/// floats per token.
/// </summary>
public readonly unsafe struct MatMulOperands
{
    public byte* Weights { get; init; }
    public long RowBytes { get; init; }
    public byte* Activations { get; init; }
    public long ActivationRowBytes { get; init; }
    public int Tokens { get; init; }
    public int N { get; init; }
    public float* Output { get; init; }
    public int OutputStride { get; init; }
    public float[]? Bias { get; init; }
}
