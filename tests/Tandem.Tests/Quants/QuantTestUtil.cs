using Tandem.Gguf;

namespace Tandem.Tests.Quants;

static unsafe class QuantTestUtil
{
    /// <summary>Dequantizes a whole tensor (row by row) to F32.</summary>
    public static float[] DequantizeTensor(GgufFile file, GgufTensorInfo t)
    {
        long cols = t.Columns, rows = t.Rows;
        var result = new float[cols * rows];
        long rowBytes = GgmlTypeInfo.Of(t.Type).RowBytes(cols);
        byte* p = file.TensorPointer(t);
        fixed (float* dst = result)
            for (long r = 0; r < rows; r++)
                Tandem.Engine.Kernels.KernelRegistry.DequantizeRow(t.Type, p + r * rowBytes, dst + r * cols, (int)cols);
        return result;
    }

    public static double Rms(ReadOnlySpan<float> a)
    {
        double s = 0;
        foreach (var v in a) s += (double)v * v;
        return Math.Sqrt(s / Math.Max(1, a.Length));
    }

    public static double RmsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) { double d = (double)a[i] - b[i]; s += d * d; }
        return Math.Sqrt(s / Math.Max(1, a.Length));
    }

    public static float[] RandomFloats(Random rng, int n, float scale = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            // roughly Gaussian with some outliers, like activations
            double g = rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5;
            x[i] = (float)(g * 2 * scale * (rng.Next(50) == 0 ? 8 : 1));
        }
        return x;
    }
}
