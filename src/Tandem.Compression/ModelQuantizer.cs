using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

// Layout: reads a GGUF file (GgufFile.cs) and writes a GGUF v3 file (GgufWriter.cs) that differs from it only in
//   - metadata: general.quantization_version and general.file_type removed (and split.*), then appended in that
//     order: u32 2 and u32 llama_ftype;
//   - tensors: re-ordered as llama-quantize orders them (outside-block tensors first, then blk.0, blk.1, … numerically;
//     by name within each group), each with its new type and data packed at 32-byte (general.alignment) offsets.

namespace Tandem.Compression;

/// <summary>What <see cref="ModelQuantizer.Quantize"/> is asked to do.</summary>
public sealed record QuantizeOptions
{
    public required string InputPath { get; init; }
    public required string OutputPath { get; init; }
    public required QuantizationType Type { get; init; }
    /// <summary>Threads that quantize rows in parallel (default: all logical CPUs).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Every quantizable tensor gets the default type (llama-quantize --pure): no mix, no Q6_K output.</summary>
    public bool Pure { get; init; }
    /// <summary>Called as tensors are written (from the writing thread).</summary>
    public Action<WriteProgress>? Progress { get; init; }
}

/// <summary>One tensor of a quantization plan.</summary>
public sealed record TensorPlan(string Name, long[] Dimensions, GgmlType From, GgmlType To)
{
    public long Elements => Dimensions.Aggregate(1L, (a, d) => a * d);
    public long BytesIn => new GgufTensorInfo(Name, Dimensions, From, 0).ByteSize;
    public long BytesOut => new GgufTensorInfo(Name, Dimensions, To, 0).ByteSize;
}

/// <summary>Where a write is: tensor <see cref="TensorIndex"/> of <see cref="TensorCount"/>, and elements done overall.</summary>
public sealed record WriteProgress(int TensorIndex, int TensorCount, TensorPlan Tensor, long ElementsDone, long ElementsTotal, bool TensorFinished);

/// <summary>What a quantization did.</summary>
public sealed record QuantizeResult(QuantizationType Type, IReadOnlyList<TensorPlan> Tensors, int Fallbacks, long InputFileBytes, long OutputFileBytes, TimeSpan Elapsed);

/// <summary>
/// <c>tandem quantize</c>: rewrites an F32/F16/BF16 GGUF model with quantized weights, as llama-quantize does without
/// an importance matrix: the same per-tensor types (<see cref="TensorTypePolicy"/>), the same bytes (ggml's reference
/// quantizers, <see cref="Quantizer"/>), the same tensor order and metadata (general.quantization_version = 2 and
/// general.file_type moved to the end). Tensors are streamed one at a time and the file is renamed into place only
/// when complete.
/// </summary>
public static class ModelQuantizer
{
    public const uint QuantizationVersion = 2;

    /// <summary>The tensors of <paramref name="input"/> in output order with their target types. Fails if a tensor cannot be converted.</summary>
    public static IReadOnlyList<TensorPlan> Plan(GgufFile input, QuantizationType type, bool pure, out int fallbacks)
    {
        var ordered = TensorTypePolicy.ProcessingOrder(input.Tensors, t => t.Name);
        var shapes = ordered.Select(t => new TensorShape(t.Name, t.Dimensions, t.Type)).ToList();
        var targets = TensorTypePolicy.Choose(ModelFacts.Read(input), type, shapes, pure, out fallbacks);
        var plan = new List<TensorPlan>(ordered.Count);
        for (int i = 0; i < ordered.Count; i++)
        {
            var t = ordered[i];
            if (targets[i] != t.Type && t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
                throw new ArgumentException($"{Path.GetFileName(input.Path)}: tensor '{t.Name}' is {GgmlTypeInfo.Of(t.Type).Name}; quantize reads F32, F16 or BF16 weights (re-quantizing is not supported)");
            plan.Add(new TensorPlan(t.Name, t.Dimensions, t.Type, targets[i]));
        }
        return plan;
    }

    /// <summary>The input's metadata as llama-quantize writes it: version and file type removed, then appended.</summary>
    public static List<KeyValuePair<string, GgufValue>> OutputMetadata(IEnumerable<KeyValuePair<string, GgufValue>> input, LlamaFileType fileType) =>
        input.Without("general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count")
            .With("general.quantization_version", GgufValue.Of(QuantizationVersion))
            .With("general.file_type", GgufValue.Of((uint)fileType));

    public static QuantizeResult Quantize(QuantizeOptions options)
    {
        var start = Stopwatch.GetTimestamp();
        if (!File.Exists(options.InputPath)) throw new FileNotFoundException($"input model not found: {options.InputPath}", options.InputPath);
        CheckOutputDirectory(options.OutputPath);
        using var input = GgufFile.Open(options.InputPath);
        using var reader = File.OpenHandle(options.InputPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        var plan = Plan(input, options.Type, options.Pure, out int fallbacks);
        long total = plan.Sum(p => p.Elements), done = 0;
        var tensors = new List<GgufTensorToWrite>(plan.Count);
        for (int i = 0; i < plan.Count; i++)
        {
            var p = plan[i];
            var source = input.GetTensor(p.Name);
            long offset = input.DataOffset + (long)source.Offset;
            int index = i;
            GgufTensorData data;
            if (p.From == p.To)
            {
                data = GgufTensorData.FromCallback(stream =>
                {
                    CopyRaw(reader, offset, source.ByteSize, stream);
                    done += p.Elements;
                    options.Progress?.Invoke(new WriteProgress(index, plan.Count, p, done, total, true));
                });
            }
            else
            {
                data = GgufTensorData.FromCallback(stream =>
                {
                    int columns = checked((int)source.Columns);
                    TensorEncoder.Write(stream, source.Rows, columns, p.To, RowsOf(reader, offset, source), options.Threads, rows =>
                    {
                        done += rows * columns;
                        options.Progress?.Invoke(new WriteProgress(index, plan.Count, p, done, total, false));
                    });
                    options.Progress?.Invoke(new WriteProgress(index, plan.Count, p, done, total, true));
                });
            }
            tensors.Add(new GgufTensorToWrite(p.Name, p.Dimensions, p.To, data));
        }
        GgufWriter.Write(options.OutputPath, OutputMetadata(input.MetadataList, options.Type.FileType), tensors);
        return new QuantizeResult(options.Type, plan, fallbacks, input.FileLength, new FileInfo(options.OutputPath).Length, Stopwatch.GetElapsedTime(start));
    }

    /// <summary>Fails with a clear message when the output's directory does not exist (nothing is written then).</summary>
    public static void CheckOutputDirectory(string outputPath)
    {
        string full = Path.GetFullPath(outputPath);
        if (Directory.Exists(full)) throw new IOException($"output path is a directory: {outputPath}");
        string? dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir)) throw new DirectoryNotFoundException($"output directory does not exist: {dir ?? outputPath}");
    }

    // The input is read with positioned reads rather than through GgufFile's mapping: pages of a mapping that have been
    // touched count in the process's resident set, so mapping a 2 GB F32 model would look like 2 GB of memory use.

    static void CopyRaw(SafeFileHandle input, long offset, long size, Stream stream)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(size, 1 << 24));
        try
        {
            for (long done = 0; done < size;)
            {
                int n = RandomAccess.Read(input, buffer.AsSpan(0, (int)Math.Min(buffer.Length, size - done)), offset + done);
                if (n <= 0) throw new EndOfStreamException($"input ends inside tensor data at byte {offset + done}");
                stream.Write(buffer, 0, n);
                done += n;
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>Rows of an F32/F16/BF16 tensor at <paramref name="offset"/> in the input, widened to F32. Safe to call from several threads.</summary>
    static unsafe RowSource RowsOf(SafeFileHandle input, long offset, GgufTensorInfo t)
    {
        int columns = checked((int)t.Columns);
        var type = t.Type;
        long rowBytes = GgmlTypeInfo.Of(type).RowBytes(columns);
        return (first, count, destination) =>
        {
            long position = offset + first * rowBytes;
            int bytes = checked((int)(count * rowBytes));
            if (type == GgmlType.F32)
            {
                ReadExactly(input, MemoryMarshal.AsBytes(destination[..(count * columns)]), position);
                return;
            }
            var raw = ArrayPool<byte>.Shared.Rent(bytes);
            try
            {
                ReadExactly(input, raw.AsSpan(0, bytes), position);
                fixed (byte* src = raw)
                fixed (float* dst = destination)
                    Dequantize.Row(type, src, dst, (long)count * columns);
            }
            finally { ArrayPool<byte>.Shared.Return(raw); }
        };
    }

    static void ReadExactly(SafeFileHandle input, Span<byte> destination, long offset)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(input, destination, offset);
            if (n <= 0) throw new EndOfStreamException($"input ends inside tensor data at byte {offset}");
            destination = destination[n..];
            offset += n;
        }
    }
}
