using Tandem.Engine.Architectures;
using Tandem.Engine.Blocks;
using Tandem.Engine.Kernels;
using Tandem.Engine.Threading;

namespace Tandem.Engine;

/// <summary>One token of a multi-sequence step: which sequence it extends, and whether its logits are wanted.</summary>
public readonly record struct BatchToken(int Sequence, int Token, bool Logits = false);

/// <summary>
/// The run state of one or more sequences: a KV cache per sequence and activation buffers, all allocated here once;
/// evaluating tokens allocates nothing. Tokens of several sequences can share one pass over the weights
/// (<see cref="Evaluate(ReadOnlySpan{BatchToken})"/>), which is how a server batches its active requests.
/// The forward pass (<see cref="Forward"/>) reads top to bottom, one step a line.
/// </summary>
public sealed unsafe class InferenceSession : IDisposable
{
    readonly Model _model;
    readonly ModelConfig _c;
    readonly TransformerWeights _w;
    readonly KvCache[] _caches;
    readonly int[] _positions;
    readonly WorkerPool _pool;
    readonly MatMulJob _matmul;
    readonly PrepareJob _prepare;
    readonly AttentionJob _attention;

    // Activations for up to BatchSize tokens, row-major [token][feature]; _gate and _up (ffn-wide) hold one
    // feed-forward slice of up to _ffnBatch tokens.
    readonly float[] _x, _xb, _xb2, _q, _k, _v, _att, _gate, _up, _logits;
    readonly int _ffnBatch;
    readonly byte[] _prepared;
    Gguf.GgmlType _preparedType;
    readonly float[] _ropeCos, _ropeSin;
    // Per token of the current step: its sequence, its position, and which rows produce logits.
    readonly int[] _stepSequence, _stepPosition, _stepTokens, _logitRows;
    int _logitCount;

    /// <summary>Receives intermediate tensors by llama.cpp's graph names ("attn_norm-0", "Qcur-0", "kqv_out-0", …) for
    /// comparison with its eval callback; [tokens × features] row-major. The feed-forward block's own tensors (ffn_norm,
    /// ffn_gate, ffn_up, ffn_swiglu) come in consecutive slices of tokens (<see cref="FeedForwardBatch"/>), one call per
    /// slice. Null in normal use (one branch per step).</summary>
    public delegate void TraceHandler(string name, ReadOnlySpan<float> values);

    public TraceHandler? Trace { get; set; }

    /// <summary>Positions filled in sequence 0 (the only sequence of a single-sequence session).</summary>
    public int Position => _positions[0];
    /// <summary>Positions each sequence's KV cache holds.</summary>
    public int ContextLength { get; }
    public int BatchSize { get; }
    /// <summary>The most tokens the feed-forward block runs over at once (<see cref="SessionOptions.FeedForwardBatch"/>).</summary>
    public int FeedForwardBatch => _ffnBatch;
    public int Sequences => _caches.Length;
    public int VocabSize => _c.VocabSize;
    public int Threads => _pool.Threads;
    public KvCache Cache => _caches[0];

    public int PositionOf(int sequence) => _positions[CheckSequence(sequence)];

    internal InferenceSession(Model model, SessionOptions options)
    {
        if (options.ContextLength <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.ContextLength, "context length must be positive");
        if (options.Threads < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "threads must be 0 (all cores) or positive");
        if (options.Sequences < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Sequences, "need at least one sequence");
        _model = model;
        _c = model.Config;
        _w = model.Weights;
        ContextLength = options.ContextLength;
        BatchSize = Math.Clamp(options.BatchSize, 1, ContextLength);
        _caches = new KvCache[options.Sequences];
        for (int i = 0; i < _caches.Length; i++) _caches[i] = new KvCache(_c, ContextLength);
        _positions = new int[options.Sequences];
        _pool = new WorkerPool(options.Threads == 0 ? Environment.ProcessorCount : options.Threads);
        int b = BatchSize, d = _c.EmbeddingLength, ff = _c.FeedForwardLength;
        _ffnBatch = Math.Min(b, Math.Max(2 * FeedForwardGrain, options.FeedForwardBatch / FeedForwardGrain * FeedForwardGrain));
        int attended = _c.HeadCount * _c.ValueHeadDim;
        _x = new float[b * d];
        // Buffers whose uses never overlap share memory: the attention output (_att) is written after the normalized
        // input (_xb) was last read (by Q/K/V), the attention projection's output (_xb2) after the queries (_q) were
        // last read (by attention); _xb2 is consumed (residual) before the next layer's queries are written.
        _xb = _att = new float[b * Math.Max(d, attended)];
        _q = _xb2 = new float[b * Math.Max(Math.Max(d, attended), _c.QueryLength)];
        _k = new float[b * _c.KeyValueLength];
        _v = new float[b * _c.ValueLength];
        _gate = new float[_ffnBatch * ff];
        _up = new float[_ffnBatch * ff];
        _logits = new float[(long)b * _c.VocabSize];
        // Prepared activations: a whole batch of model-wide rows, or one feed-forward slice of ffn-wide rows.
        long widest = Math.Max(d, _c.HeadCount * _c.ValueHeadDim);
        _prepared = new byte[Math.Max(b * MaxPreparedRowBytes((int)widest), _ffnBatch * MaxPreparedRowBytes(ff))];
        _ropeCos = new float[b * Math.Max(1, _c.RopeDimensions / 2)];
        _ropeSin = new float[b * Math.Max(1, _c.RopeDimensions / 2)];
        _stepSequence = new int[b];
        _stepPosition = new int[b];
        _stepTokens = new int[b];
        _logitRows = new int[b];
        _matmul = new MatMulJob();
        _prepare = new PrepareJob();
        _attention = new AttentionJob(_pool.Threads, _c, ContextLength, BatchSize, options.Sequences);
    }

    static long MaxPreparedRowBytes(int n)
    {
        // F32 activations are the widest preparation (4 bytes/element); quantized ones are smaller.
        return (long)n * sizeof(float) + 64;
    }

    /// <summary>Evaluates tokens at the next positions of sequence 0 (batched prefill when several); returns the last token's logits, valid until the next call.</summary>
    public ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) throw new ArgumentException("no tokens to evaluate", nameof(tokens));
        CheckFits(0, tokens.Length);
        for (int start = 0; start < tokens.Length; start += BatchSize)
        {
            var chunk = tokens.Slice(start, Math.Min(BatchSize, tokens.Length - start));
            bool last = start + chunk.Length == tokens.Length;
            StageSingleSequence(chunk, logitsFrom: last ? chunk.Length - 1 : chunk.Length);
            Forward(chunk.Length);
        }
        return _logits.AsSpan(0, _c.VocabSize);
    }

    /// <summary>Evaluates tokens of sequence 0 and writes every position's logits into <paramref name="allLogits"/> (tokens.Length × VocabSize).</summary>
    public void Evaluate(ReadOnlySpan<int> tokens, Span<float> allLogits)
    {
        if (tokens.IsEmpty) throw new ArgumentException("no tokens to evaluate", nameof(tokens));
        if (allLogits.Length < (long)tokens.Length * _c.VocabSize)
            throw new ArgumentException($"logits buffer holds {allLogits.Length} floats; {tokens.Length} tokens need {(long)tokens.Length * _c.VocabSize}", nameof(allLogits));
        CheckFits(0, tokens.Length);
        for (int start = 0; start < tokens.Length; start += BatchSize)
        {
            var chunk = tokens.Slice(start, Math.Min(BatchSize, tokens.Length - start));
            StageSingleSequence(chunk, logitsFrom: 0);
            Forward(chunk.Length);
            _logits.AsSpan(0, chunk.Length * _c.VocabSize).CopyTo(allLogits.Slice(start * _c.VocabSize));
        }
    }

    /// <summary>
    /// One pass over the weights for tokens of several sequences (at most <see cref="BatchSize"/>): each token goes to
    /// the next position of its sequence, in order. Returns one row of logits per token flagged
    /// <see cref="BatchToken.Logits"/>, in order, valid until the next call. Nothing is evaluated when a check fails.
    /// </summary>
    public ReadOnlySpan<float> Evaluate(ReadOnlySpan<BatchToken> batch)
    {
        if (batch.IsEmpty) throw new ArgumentException("no tokens to evaluate", nameof(batch));
        if (batch.Length > BatchSize)
            throw new ArgumentException($"a step holds at most {BatchSize} tokens; got {batch.Length}", nameof(batch));
        _logitCount = 0;
        for (int t = 0; t < batch.Length; t++)
        {
            var item = batch[t];
            CheckSequence(item.Sequence);
            if ((uint)item.Token >= (uint)_c.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(batch), item.Token, $"token id {item.Token} is outside the vocabulary of {_c.VocabSize}");
            int position = _positions[item.Sequence];
            for (int u = 0; u < t; u++) if (_stepSequence[u] == item.Sequence) position++;
            if (position >= ContextLength)
                throw new ContextOverflowException($"sequence {item.Sequence} would need position {position}, but its context holds {ContextLength}");
            _stepSequence[t] = item.Sequence;
            _stepPosition[t] = position;
            _stepTokens[t] = item.Token;
            if (item.Logits) _logitRows[_logitCount++] = t;
        }
        Forward(batch.Length);
        return _logits.AsSpan(0, _logitCount * _c.VocabSize);
    }

    /// <summary>Forgets everything of sequence 0 from <paramref name="position"/> onward (the cached prefix stays).</summary>
    public void Truncate(int position) => Truncate(0, position);

    /// <summary>Forgets everything of a sequence from <paramref name="position"/> onward (0 frees it entirely).</summary>
    public void Truncate(int sequence, int position)
    {
        CheckSequence(sequence);
        if (position < 0 || position > _positions[sequence])
            throw new ArgumentOutOfRangeException(nameof(position), position, $"must be within 0..{_positions[sequence]}");
        _positions[sequence] = position;
    }

    /// <summary>Makes <paramref name="to"/> start with the first <paramref name="length"/> positions of <paramref name="from"/>
    /// (a shared prompt prefix is computed once and copied, not recomputed).</summary>
    public void CopyPrefix(int from, int to, int length)
    {
        CheckSequence(from);
        CheckSequence(to);
        if (length < 0 || length > _positions[from])
            throw new ArgumentOutOfRangeException(nameof(length), length, $"sequence {from} holds {_positions[from]} positions");
        if (from != to) _caches[from].CopyTo(_caches[to], length);
        _positions[to] = length;
    }

    int CheckSequence(int sequence) =>
        (uint)sequence < (uint)_caches.Length ? sequence
            : throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"the session has sequences 0..{_caches.Length - 1}");

    void CheckFits(int sequence, int count)
    {
        int position = _positions[sequence];
        if ((long)position + count > ContextLength)
            throw new ContextOverflowException($"evaluating {count} tokens at position {position} needs {position + count} positions, but the context holds {ContextLength} (raise it with -c/--ctx)");
    }

    void StageSingleSequence(ReadOnlySpan<int> tokens, int logitsFrom)
    {
        int p0 = _positions[0];
        _logitCount = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            if ((uint)tokens[t] >= (uint)_c.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[t], $"token id {tokens[t]} is outside the vocabulary of {_c.VocabSize}");
            _stepSequence[t] = 0;
            _stepPosition[t] = p0 + t;
            _stepTokens[t] = tokens[t];
            if (t >= logitsFrom) _logitRows[_logitCount++] = t;
        }
    }

    /// <summary>One pass of the decoder over the <paramref name="n"/> staged tokens (sequence, position, token); logits for the staged rows.</summary>
    void Forward(int n)
    {
        int d = _c.EmbeddingLength;
        for (int t = 0; t < n; t++) _positions[_stepSequence[t]] = Math.Max(_positions[_stepSequence[t]], _stepPosition[t] + 1);
        Embed(n);
        Emit("embd", _x, n * d);
        ComputeRopeAngles(n);
        for (int layer = 0; layer < _c.BlockCount; layer++)
        {
            var lw = _w.Layers[layer];
            Prepare(lw.Query, _xb, n, RowStep.Norm, _x, lw.AttentionNorm);
            Emit("attn_norm", layer, _xb, n * d);
            MatMul(lw.Query, _xb, n, _q, sameInput: true);
            MatMul(lw.Key, _xb, n, _k, sameInput: true);
            MatMul(lw.Value, _xb, n, _v, sameInput: true);
            Emit("Vcur", layer, _v, n * _c.ValueLength);
            if (lw.QueryNorm is not null) NormHeads(_q, lw.QueryNorm, n * _c.HeadCount);
            if (lw.KeyNorm is not null) NormHeads(_k, lw.KeyNorm, n * _c.HeadCountKv);
            RotateHeads(_q, _c.HeadCount, n);
            RotateHeads(_k, _c.HeadCountKv, n);
            Emit("Qcur", layer, _q, n * _c.QueryLength);
            Emit("Kcur", layer, _k, n * _c.KeyValueLength);
            StoreKeysAndValues(layer, n);
            Attend(layer, n);
            Emit("kqv_out", layer, _att, n * _c.HeadCount * _c.ValueHeadDim);
            MatMul(lw.AttentionOutput, _att, n, _xb2);
            Emit("attn_out", layer, _xb2, n * d);
            if (layer == _c.BlockCount - 1 && _logitCount < n && (n = KeepLogitRows()) == 0) return;
            AddRows(_x, _xb2, n * d);
            Emit("ffn_inp", layer, _x, n * d);
            for (int first = 0, count; first < n; first += count)
            {
                count = FeedForwardSlice(n - first, _ffnBatch);
                FeedForward(lw, layer, first, count);
            }
            Emit("ffn_out", layer, _xb2, n * d);
            AddRows(_x, _xb2, n * d);
            Emit("l_out", layer, _x, n * d);
        }
        if (_logitCount == 0) return;
        Prepare(_w.Output, _xb, _logitCount, RowStep.Norm, _x, _w.OutputNorm);
        Emit("result_norm", _xb, _logitCount * d);
        MatMul(_w.Output, _xb, _logitCount, _logits, sameInput: true);
    }

    /// <summary>The multiple of tokens feed-forward slices are cut at (the widest token tile of the kernels).</summary>
    const int FeedForwardGrain = 16;

    /// <summary>
    /// How many of the <paramref name="remaining"/> tokens the next feed-forward slice takes. A kernel's summation order
    /// may depend on a token's place in its matrix product (llama.cpp's GEMM for the first tokens − tokens % 4, vec_dot
    /// for the rest; the one-token path when tokens &lt; 2), so slices are whole multiples of 16 tokens and never leave a
    /// single token alone: every token then takes the same path as in one product over the whole batch, and results
    /// are bit-identical to it.
    /// </summary>
    static int FeedForwardSlice(int remaining, int slice)
    {
        if (remaining <= slice) return remaining;
        return remaining - slice == 1 ? slice - FeedForwardGrain : slice;
    }

    /// <summary>The feed-forward block (norm, gate and up, SwiGLU, down) of batch rows [first, first + count): the
    /// ffn-wide intermediates live in slice-sized buffers; the output lands in rows first.. of _xb2.</summary>
    void FeedForward(LayerWeights lw, int layer, int first, int count)
    {
        int d = _c.EmbeddingLength, ff = _c.FeedForwardLength;
        Prepare(lw.Gate, _xb, count, RowStep.Norm, _x, lw.FeedForwardNorm, firstRow: first);
        Emit("ffn_norm", layer, _xb, first * d, count * d);
        MatMul(lw.Gate, _xb, count, _gate, sameInput: true, inputFirstRow: first);
        MatMul(lw.Up, _xb, count, _up, sameInput: true, inputFirstRow: first);
        Emit("ffn_gate", layer, _gate, 0, count * ff);
        Emit("ffn_up", layer, _up, 0, count * ff);
        Prepare(lw.Down, _gate, count, RowStep.SwiGlu, _up, null);
        Emit("ffn_swiglu", layer, _gate, 0, count * ff);
        MatMul(lw.Down, _gate, count, _xb2, sameInput: true, outputFirstRow: first);
    }

    /// <summary>
    /// After the last layer's attention only the rows that produce logits matter, so (as llama.cpp does) the residual
    /// and the attention output are compacted to those rows and the last feed-forward runs on them alone (every token's
    /// keys and values are already in the cache). Afterwards the logit rows are the first rows.
    /// </summary>
    int KeepLogitRows()
    {
        int d = _c.EmbeddingLength;
        for (int r = 0; r < _logitCount; r++)
        {
            int row = _logitRows[r];
            if (row == r) continue;
            _x.AsSpan(row * d, d).CopyTo(_x.AsSpan(r * d, d));
            _xb2.AsSpan(row * d, d).CopyTo(_xb2.AsSpan(r * d, d));
            _logitRows[r] = r;
        }
        return _logitCount;
    }

    void Emit(string name, float[] values, int count) => Trace?.Invoke(name, values.AsSpan(0, count));

    void Emit(string name, int layer, float[] values, int count) => Emit(name, layer, values, 0, count);

    void Emit(string name, int layer, float[] values, int start, int count)
    {
        if (Trace is { } trace) trace($"{name}-{layer}", values.AsSpan(start, count));
    }

    void Embed(int n)
    {
        var type = _w.TokenEmbedding.Type;
        long rowBytes = Gguf.GgmlTypeInfo.Of(type).RowBytes(_c.EmbeddingLength);
        fixed (float* x = _x)
            for (int t = 0; t < n; t++)
                KernelRegistry.DequantizeRow(type, _w.TokenEmbeddingData + _stepTokens[t] * rowBytes, x + t * _c.EmbeddingLength, _c.EmbeddingLength);
    }

    void NormHeads(float[] heads, float[] weight, int count)
    {
        int hd = _c.HeadDim;
        for (int h = 0; h < count; h++)
            RmsNorm.Apply(heads.AsSpan(h * hd, hd), weight, heads.AsSpan(h * hd, hd), _c.RmsEps);
    }

    void ComputeRopeAngles(int n)
    {
        int half = _c.RopeDimensions / 2;
        for (int t = 0; t < n; t++)
            Rope.Angles(_stepPosition[t], _c.Rope, _w.RopeFrequencyFactors, _ropeCos.AsSpan(t * half, half), _ropeSin.AsSpan(t * half, half));
    }

    void RotateHeads(float[] heads, int headCount, int n)
    {
        int hd = _c.HeadDim, half = _c.RopeDimensions / 2;
        for (int t = 0; t < n; t++)
        {
            var cos = _ropeCos.AsSpan(t * half, half);
            var sin = _ropeSin.AsSpan(t * half, half);
            for (int h = 0; h < headCount; h++)
                Rope.Apply(heads.AsSpan((t * headCount + h) * hd, hd), _c.RopeDimensions, _c.RopeLayout, cos, sin);
        }
    }

    static void AddRows(float[] x, float[] delta, int count)
    {
        for (int i = 0; i < count; i++) x[i] += delta[i];
    }

    /// <param name="sameInput">the input is unchanged since the previous MatMul (Q/K/V, gate/up): when that one prepared the
    /// activations in the same type, they are reused rather than converted again.</param>
    /// <param name="inputFirstRow">the first of the input's rows (a feed-forward slice's place in the batch).</param>
    /// <param name="outputFirstRow">the first of the output's rows written.</param>
    void MatMul(Linear w, float[] input, int rows, float[] output, bool sameInput = false, int inputFirstRow = 0, int outputFirstRow = 0)
    {
        var kernel = w.Kernel;
        long preparedRow = kernel.ActivationRowBytes(w.InFeatures);
        if (!(sameInput && _preparedType == kernel.ActivationType))
            Prepare(w, input, rows, RowStep.None, null, null, inputFirstRow);
        fixed (byte* prepared = _prepared)
        fixed (float* outPtr = output)
        {
            _matmul.Set(w, prepared, preparedRow, rows, outPtr + (long)outputFirstRow * w.OutFeatures);
            _pool.Run(_matmul);
        }
    }

    /// <summary>
    /// Prepares <paramref name="rows"/> rows of <paramref name="input"/> as <paramref name="w"/>'s kernel wants them,
    /// split across the workers by rows, after an optional per-row step fused into the same pass: RMS-normalizing
    /// <paramref name="source"/> into the input row, or SwiGLU of the input (gate) row with <paramref name="source"/>'s
    /// (up) row. The input rows are written too (the trace and the residual path read them). Rows are taken from
    /// <paramref name="firstRow"/> on in input and source; the prepared rows always start at 0.
    /// </summary>
    void Prepare(Linear w, float[] input, int rows, RowStep step, float[]? source, float[]? normWeight, int firstRow = 0)
    {
        _prepare.Set(w.Kernel, input, w.InFeatures, firstRow, rows, step, source, normWeight, _c.RmsEps);
        fixed (byte* prepared = _prepared)
        {
            _prepare.Prepared = prepared;
            if (rows == 1) _prepare.Execute(0, 1); // a decode step: not worth waking the workers
            else _pool.Run(_prepare);
        }
        _preparedType = w.Kernel.ActivationType;
    }

    enum RowStep { None, Norm, SwiGlu }

    sealed class PrepareJob : IPoolJob
    {
        MatVecKernel _kernel = null!;
        float[] _input = null!;
        float[]? _source, _normWeight;
        int _width, _firstRow, _rows;
        float _eps;
        RowStep _step;
        public byte* Prepared;

        public void Set(MatVecKernel kernel, float[] input, int width, int firstRow, int rows, RowStep step, float[]? source, float[]? normWeight, float eps)
        {
            _kernel = kernel; _input = input; _width = width; _firstRow = firstRow; _rows = rows; _step = step; _source = source; _normWeight = normWeight; _eps = eps;
        }

        public void Execute(int worker, int workers)
        {
            var (start, end) = WorkerPool.Split(_rows, worker, workers);
            long preparedRow = _kernel.ActivationRowBytes(_width);
            for (int t = start; t < end; t++)
            {
                int at = (_firstRow + t) * _width;
                var row = _input.AsSpan(at, _width);
                if (_step == RowStep.Norm) RmsNorm.Apply(_source.AsSpan(at, _width), _normWeight, row, _eps);
                else if (_step == RowStep.SwiGlu) SwiGlu.Apply(row, _source.AsSpan(at, _width), _width);
                _kernel.PrepareActivation(row, new Span<byte>(Prepared + t * preparedRow, (int)preparedRow));
            }
        }
    }

    void StoreKeysAndValues(int layer, int n)
    {
        for (int t = 0; t < n; t++)
            _caches[_stepSequence[t]].Store(layer, _stepPosition[t],
                _k.AsSpan(t * _c.KeyValueLength, _c.KeyValueLength), _v.AsSpan(t * _c.ValueLength, _c.ValueLength));
    }

    void Attend(int layer, int n)
    {
        _attention.Set(layer, _caches, _q, _att, _stepSequence, _stepPosition, n, _pool.Threads);
        _pool.Run(_attention);
    }

    public void Dispose() => _pool.Dispose();

    /// <summary>Output rows split across workers; each worker computes its rows for every token (weights read once per batch).</summary>
    sealed class MatMulJob : IPoolJob
    {
        Linear _w = null!;
        byte* _prepared;
        long _preparedRow;
        int _tokens;
        float* _output;

        public void Set(Linear w, byte* prepared, long preparedRow, int tokens, float* output)
        {
            _w = w; _prepared = prepared; _preparedRow = preparedRow; _tokens = tokens; _output = output;
        }

        public void Execute(int worker, int workers)
        {
            var (start, end) = WorkerPool.Split(_w.OutFeatures, worker, workers, _w.Kernel.RowGranularity);
            var operands = new MatMulOperands
            {
                Weights = _w.Data, RowBytes = _w.RowBytes, Activations = _prepared, ActivationRowBytes = _preparedRow,
                Tokens = _tokens, N = _w.InFeatures, Output = _output, OutputStride = _w.OutFeatures, Bias = _w.Bias,
            };
            _w.Kernel.MatMul(operands, start, end);
        }
    }

    /// <summary>
    /// Attention of a batch, split across workers by (sequence, KV head, share of that head's query heads): an item
    /// widens its KV head's cached keys and values to F32 once, then runs every query head of its share for every token
    /// of its sequence in the batch — rather than converting each cached row once per query head and token.
    /// </summary>
    sealed class AttentionJob : IPoolJob
    {
        readonly ModelConfig _c;
        readonly Attention.Scratch[] _scratch;
        readonly int[] _order, _sequenceStart, _sequenceEnd, _sequenceId, _maxPosition;
        float[] _q = null!, _att = null!;
        KvCache[] _caches = null!;
        int[] _position = null!;
        int _layer, _sequences, _shares;

        public AttentionJob(int workers, ModelConfig c, int contextLength, int batchSize, int sequences)
        {
            _c = c;
            _scratch = Enumerable.Range(0, workers).Select(_ => new Attention.Scratch(c.HeadDim, c.ValueHeadDim, contextLength)).ToArray();
            _order = new int[batchSize];
            _sequenceStart = new int[sequences];
            _sequenceEnd = new int[sequences];
            _sequenceId = new int[sequences];
            _maxPosition = new int[sequences];
        }

        public void Set(int layer, KvCache[] caches, float[] q, float[] att, int[] sequence, int[] position, int tokens, int workers)
        {
            _layer = layer; _caches = caches; _q = q; _att = att; _position = position;
            // Group the batch's tokens by sequence (stable, no allocation): _order[_sequenceStart[i].._sequenceEnd[i]).
            _sequences = 0;
            for (int t = 0; t < tokens; t++)
            {
                int i = 0;
                while (i < _sequences && _sequenceId[i] != sequence[t]) i++;
                if (i == _sequences) { _sequenceId[i] = sequence[t]; _sequenceEnd[i] = 0; _maxPosition[i] = 0; _sequences++; }
                _sequenceEnd[i]++;
                _maxPosition[i] = Math.Max(_maxPosition[i], position[t]);
            }
            for (int i = 0, start = 0; i < _sequences; i++) { int count = _sequenceEnd[i]; _sequenceStart[i] = start; _sequenceEnd[i] = start; start += count; }
            for (int t = 0; t < tokens; t++)
            {
                int i = 0;
                while (_sequenceId[i] != sequence[t]) i++;
                _order[_sequenceEnd[i]++] = t;
            }
            int group = _c.HeadCount / _c.HeadCountKv;
            _shares = Math.Clamp((workers + _sequences * _c.HeadCountKv - 1) / (_sequences * _c.HeadCountKv), 1, group);
        }

        public void Execute(int worker, int workers)
        {
            int heads = _c.HeadCount, group = heads / _c.HeadCountKv, hd = _c.HeadDim, vd = _c.ValueHeadDim;
            float scale = 1f / MathF.Sqrt(hd);
            int items = _sequences * _c.HeadCountKv * _shares;
            var (start, end) = WorkerPool.Split(items, worker, workers);
            var scratch = _scratch[worker];
            for (int item = start; item < end; item++)
            {
                int share = item % _shares, kvHead = item / _shares % _c.HeadCountKv, s = item / _shares / _c.HeadCountKv;
                var cache = _caches[_sequenceId[s]];
                var geometry = new Attention.HeadGeometry(hd, vd, _c.KeyValueLength, kvHead * hd, _c.ValueLength, kvHead * vd, scale);
                scratch.Widen(cache.Keys[_layer], cache.Values[_layer], geometry, _maxPosition[s] + 1);
                var (first, last) = WorkerPool.Split(group, share, _shares);
                // llama.cpp picks its flash-attention kernel by the batch's query rows; so do we, per sequence.
                bool tiled = _sequenceEnd[s] - _sequenceStart[s] >= Attention.TiledMinTokens;
                for (int k = _sequenceStart[s]; k < _sequenceEnd[s]; k++)
                {
                    int t = _order[k];
                    for (int h = kvHead * group + first; h < kvHead * group + last; h++)
                    {
                        int row = t * heads + h;
                        if (tiled)
                            Attention.HeadWidenedTiled(_q.AsSpan(row * hd, hd), cache.Keys[_layer], cache.Values[_layer], geometry, _position[t] + 1, scratch, _att.AsSpan(row * vd, vd));
                        else
                            Attention.HeadWidened(_q.AsSpan(row * hd, hd), geometry, _position[t] + 1, scratch, _att.AsSpan(row * vd, vd));
                    }
                }
            }
        }
    }
}
