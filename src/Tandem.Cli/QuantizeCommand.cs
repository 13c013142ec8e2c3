using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Compression;
using Tandem.Gguf;

namespace Tandem.Cli;

/// <summary><c>tandem quantize IN OUT TYPE</c>: llama-quantize-compatible quantization of an F32/F16/BF16 model.</summary>
public static class QuantizeCommand
{
    public static readonly OptionSpec[] Options =
    [
        new("--threads", "-t", "N", "threads that quantize rows in parallel (default: all CPUs)"),
        new("--pure", null, null, "one type for every weight: no mixes, no Q6_K output tensor (llama-quantize --pure)"),
        new("--json", null, null, "print one JSON object describing the result on stdout"),
        CommonOptions.Help,
    ];

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("quantize", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("quantize")); return Program.ExitOk; }
        a.AllowPositionals(3, "IN OUT TYPE");
        if (a.Positionals.Count < 3) throw new UsageException("expected IN OUT TYPE, e.g. 'tandem quantize model-f32.gguf model-q4_k_m.gguf Q4_K_M'");
        QuantizationType type;
        try { type = QuantizationType.Parse(a.Positionals[2]); }
        catch (ArgumentException ex) { throw new UsageException(ex.Message); }
        var progress = new ProgressLine();
        var options = new QuantizeOptions
        {
            InputPath = a.Positionals[0],
            OutputPath = a.Positionals[1],
            Type = type,
            Threads = a.Int("--threads", Environment.ProcessorCount, min: 1),
            Pure = a.Flag("--pure"),
            Progress = p => Report(progress, p),
        };
        QuantizeResult result;
        try { result = ModelQuantizer.Quantize(options); }
        finally { progress.Finish(); }

        if (a.Flag("--json")) WriteJson(options, result);
        else Console.Error.WriteLine(
            $"tandem: {options.OutputPath}: {type.Name} (file type {(uint)type.FileType}), {result.Tensors.Count} tensors, " +
            $"{SystemInfo.Bytes(result.InputFileBytes)} -> {SystemInfo.Bytes(result.OutputFileBytes)} in {result.Elapsed.TotalSeconds:0.0} s" +
            (result.Fallbacks > 0 ? $", {result.Fallbacks} tensors fell back to another type (row length)" : ""));
        return Program.ExitOk;
    }

    static void Report(ProgressLine line, WriteProgress p)
    {
        string what = $"[{p.TensorIndex + 1,4}/{p.TensorCount}] {p.Tensor.Name} {Name(p.Tensor.From)} -> {Name(p.Tensor.To)}";
        line.Update(p.ElementsTotal == 0 ? 1 : (double)p.ElementsDone / p.ElementsTotal, what, force: p.TensorFinished && p.TensorIndex + 1 == p.TensorCount);
        if (p.TensorFinished)
            line.Step($"{what} [{string.Join(", ", p.Tensor.Dimensions)}] {SystemInfo.Bytes(p.Tensor.BytesIn)} -> {SystemInfo.Bytes(p.Tensor.BytesOut)}");
    }

    static string Name(GgmlType t) => GgmlTypeInfo.Of(t).Name;

    static void WriteJson(QuantizeOptions o, QuantizeResult r)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("input", o.InputPath);
            w.WriteString("output", o.OutputPath);
            w.WriteString("type", r.Type.Name);
            w.WriteNumber("file_type", (uint)r.Type.FileType);
            w.WriteNumber("threads", o.Threads);
            w.WriteNumber("input_bytes", r.InputFileBytes);
            w.WriteNumber("output_bytes", r.OutputFileBytes);
            w.WriteNumber("elapsed_ms", Math.Round(r.Elapsed.TotalMilliseconds, 1));
            w.WriteNumber("fallbacks", r.Fallbacks);
            w.WriteStartArray("tensors");
            foreach (var t in r.Tensors)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteStartArray("shape");
                foreach (long d in t.Dimensions) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteString("from", Name(t.From));
                w.WriteString("to", Name(t.To));
                w.WriteNumber("bytes", t.BytesOut);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        stdout.Write("\n"u8);
    }
}
