using Tandem.Compression.Evaluation;
using Tandem.Engine;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Compression.Pruning;

/// <summary>
/// How much each block, head and feed-forward channel matters, measured on calibration text (higher = keep):
/// blocks by the mean angular distance arccos(cos(x_in, x_out))/π between a block's input and output hidden states
/// (a block that barely turns the residual stream does little); heads by the mean norm of their attention output
/// times the norm of the output-projection columns that read it; channels by the mean |SwiGLU activation| times the
/// norm of the down-projection column that reads it.
/// </summary>
public sealed record ImportanceScores(double[] LayerAngularDistance, double[][] HeadScores, double[][] FfnScores);

public static class Importance
{
    public static ImportanceScores Measure(Model model, PruneOptions options)
    {
        var c = model.Config;
        int layers = c.BlockCount, d = c.EmbeddingLength, ff = c.FeedForwardLength, vd = c.ValueHeadDim;
        int ctx = Math.Min(options.CalibrationContext, c.TrainedContextLength);
        EvaluationWindows windows;
        try { windows = EvaluationWindows.Of(model.Tokenizer, options.CalibrationText, ctx, options.CalibrationChunks); }
        catch (ArgumentException ex) { throw new ArgumentException("calibration text too short: " + ex.Message.Replace(" or a smaller --ctx", ""), ex); }
        var angle = new double[layers];
        var headNorm = Enumerable.Range(0, layers).Select(_ => new double[c.HeadCount]).ToArray();
        var ffnMagnitude = Enumerable.Range(0, layers).Select(_ => new double[ff]).ToArray();
        var previous = new float[ctx * d];
        long tokensSeen = 0;

        using var session = WindowSession.Create(model, new EvaluationOptions { ContextLength = ctx, Threads = options.Threads }, allRows: true);
        session.Session.Trace = (name, values) =>
        {
            int dash = name.LastIndexOf('-');
            string kind = dash < 0 ? name : name[..dash];
            int layer = dash < 0 ? -1 : int.Parse(name.AsSpan(dash + 1));
            switch (kind)
            {
                case "embd":
                    values.CopyTo(previous);
                    break;
                case "l_out":
                    for (int t = 0; t * d < values.Length; t++)
                        angle[layer] += AngularDistance(previous.AsSpan(t * d, d), values.Slice(t * d, d));
                    values.CopyTo(previous);
                    break;
                case "kqv_out":
                    for (int t = 0; t * c.HeadCount * vd < values.Length; t++)
                        for (int h = 0; h < c.HeadCount; h++)
                            headNorm[layer][h] += Norm(values.Slice((t * c.HeadCount + h) * vd, vd));
                    break;
                case "ffn_swiglu":
                    for (int t = 0; t * ff < values.Length; t++)
                    {
                        var row = values.Slice(t * ff, ff);
                        var acc = ffnMagnitude[layer];
                        for (int i = 0; i < ff; i++) acc[i] += Math.Abs(row[i]);
                    }
                    break;
            }
        };
        for (int w = 0; w < windows.Chunks; w++)
        {
            session.Run(windows, w);
            tokensSeen += ctx;
            options.Progress?.Invoke("calibrating", w + 1, windows.Chunks);
        }
        session.Session.Trace = null;

        var file = model.Gguf;
        var heads = new double[layers][];
        var channels = new double[layers][];
        for (int l = 0; l < layers; l++)
        {
            angle[l] /= tokensSeen;
            // Output projections read heads and channels through their columns: a column's norm scales what it reads.
            var headColumns = ColumnNorms(file, file.GetTensor($"blk.{l}.attn_output.weight"));
            heads[l] = new double[c.HeadCount];
            for (int h = 0; h < c.HeadCount; h++)
            {
                double sq = 0;
                for (int i = 0; i < vd; i++) sq += headColumns[h * vd + i] * headColumns[h * vd + i];
                heads[l][h] = headNorm[l][h] / tokensSeen * Math.Sqrt(sq);
            }
            var downColumns = ColumnNorms(file, file.GetTensor($"blk.{l}.ffn_down.weight"));
            channels[l] = new double[ff];
            for (int i = 0; i < ff; i++) channels[l][i] = ffnMagnitude[l][i] / tokensSeen * downColumns[i];
        }
        return new ImportanceScores(angle, heads, channels);
    }

    static double AngularDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        if (na == 0 || nb == 0) return 0;
        return Math.Acos(Math.Clamp(dot / Math.Sqrt(na * nb), -1, 1)) / Math.PI;
    }

    static double Norm(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (float v in x) s += (double)v * v;
        return Math.Sqrt(s);
    }

    /// <summary>ℓ2 norm of each column (input feature) of a 2-D weight, dequantized row by row.</summary>
    static unsafe double[] ColumnNorms(GgufFile file, GgufTensorInfo t)
    {
        long cols = t.Columns, rows = t.Rows;
        var sq = new double[cols];
        var row = new float[cols];
        long rowBytes = GgmlTypeInfo.Of(t.Type).RowBytes(cols);
        byte* p = file.TensorPointer(t);
        fixed (float* r = row)
            for (long i = 0; i < rows; i++)
            {
                Dequantize.Row(t.Type, p + i * rowBytes, r, cols);
                for (long j = 0; j < cols; j++) sq[j] += (double)row[j] * row[j];
            }
        for (long j = 0; j < cols; j++) sq[j] = Math.Sqrt(sq[j]);
        return sq;
    }
}
