using System.Globalization;
using Tandem.Compression.Evaluation;
using Tandem.Compression.Pruning;

namespace Tandem.Cli;

/// <summary><c>tandem prune</c>: structured pruning of a GGUF into a smaller one of the same architecture.</summary>
public static class PruneCommand
{
    /// <summary>The calibration text shipped next to the executable (the stories260K sample).</summary>
    public const string DefaultCalibrationRelativePath = "calibration/stories260K-sample.txt";

    public static readonly OptionSpec[] Options =
    [
        new("--drop-layers", null, "N", "remove the N least important blocks (default 0)"),
        new("--heads-keep", null, "F", "share of attention heads to keep, by GQA group (default 1)"),
        new("--ffn-keep", null, "F", "share of feed-forward channels to keep (default 1)"),
        new("--target-params", null, "N", "prune to at most N parameters (picks the amounts above)"),
        new("--target-bytes", null, "N", "prune to at most N bytes of tensor data (picks the amounts above)"),
        new("--calib", null, "FILE", "calibration text (default: the shipped stories sample)"),
        new("--calib-chunks", null, "N", "calibration windows of 128 tokens to run (default 8)"),
        CommonOptions.Threads,
        CommonOptions.Json,
        CommonOptions.Help,
    ];

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("prune", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("prune")); return Program.ExitOk; }
        a.AllowPositionals(2, "IN OUT");
        if (a.Positionals.Count < 2) throw new UsageException("expected an input and an output file: tandem prune IN OUT");
        string input = a.Positionals[0], output = a.Positionals[1];
        if (!File.Exists(input)) throw new FileNotFoundException($"model file not found: {input}", input);
        if (a.Has("--target-params") && a.Has("--target-bytes")) throw new UsageException("give either --target-params or --target-bytes, not both");
        if ((a.Has("--target-params") || a.Has("--target-bytes")) && (a.Has("--drop-layers") || a.Has("--heads-keep") || a.Has("--ffn-keep")))
            throw new UsageException("a target size chooses the amounts itself; leave out --drop-layers, --heads-keep and --ffn-keep");
        string calib = a.String("--calib") ?? Path.Combine(AppContext.BaseDirectory, DefaultCalibrationRelativePath);
        if (!File.Exists(calib)) throw new FileNotFoundException($"calibration text not found: {calib}", calib);
        int threads = a.Int("--threads", 0, min: 1);
        var bars = new Dictionary<string, ConsoleProgress>();
        bool quiet = a.Flag("--json") && Console.IsErrorRedirected;
        var options = new PruneOptions
        {
            DropLayers = a.Int("--drop-layers", 0, min: 0),
            HeadsKeep = a.Float("--heads-keep", 1, min: float.Epsilon, max: 1),
            FfnKeep = a.Float("--ffn-keep", 1, min: float.Epsilon, max: 1),
            TargetParams = a.Has("--target-params") ? (long?)a.ULong("--target-params") : null,
            TargetBytes = a.Has("--target-bytes") ? (long?)a.ULong("--target-bytes") : null,
            CalibrationText = File.ReadAllText(calib),
            CalibrationChunks = a.Int("--calib-chunks", 8, min: 1),
            Threads = threads == 0 ? SystemInfo.PhysicalCores() : threads,
            Progress = quiet ? null : (stage, done, total) =>
            {
                if (!bars.TryGetValue(stage, out var bar)) bars[stage] = bar = new ConsoleProgress(stage);
                bar.Report(done, total);
            },
        };
        var r = ModelPruner.Prune(input, output, options);
        var p = r.Plan;
        if (a.Flag("--json"))
        {
            EvaluationInput.WriteJson(w =>
            {
                w.WriteString("input", input);
                w.WriteString("output", output);
                w.WriteNumber("original_parameters", r.OriginalParameters);
                w.WriteNumber("original_bytes", r.OriginalBytes);
                w.WriteNumber("parameters", r.Parameters);
                w.WriteNumber("bytes", r.Bytes);
                w.WriteStartObject("original");
                Shape(w, p.Original);
                w.WriteEndObject();
                w.WriteStartObject("result");
                Shape(w, p.Result);
                w.WriteEndObject();
                w.WriteStartArray("dropped_layers");
                foreach (int l in p.DroppedLayers) w.WriteNumberValue(l);
                w.WriteEndArray();
                if (r.Scores is not null)
                {
                    w.WriteStartArray("layer_angular_distance");
                    foreach (double d in r.Scores.LayerAngularDistance) w.WriteNumberValue(d);
                    w.WriteEndArray();
                }
            });
        }
        else
        {
            Console.Out.WriteLine($"blocks {p.Original.Blocks} -> {p.Result.Blocks}" + (p.DroppedLayers.Length > 0 ? $" (dropped {string.Join(", ", p.DroppedLayers)})" : ""));
            Console.Out.WriteLine($"heads  {p.Original.Heads}/{p.Original.HeadsKv} kv -> {p.Result.Heads}/{p.Result.HeadsKv} kv");
            Console.Out.WriteLine($"ffn    {p.Original.FeedForward} -> {p.Result.FeedForward}");
            Console.Out.WriteLine($"params {r.OriginalParameters.ToString("N0", CultureInfo.InvariantCulture)} -> {r.Parameters.ToString("N0", CultureInfo.InvariantCulture)} ({100.0 * r.Parameters / r.OriginalParameters:F1} %)");
            Console.Out.WriteLine($"bytes  {SystemInfo.Bytes(r.OriginalBytes)} -> {SystemInfo.Bytes(r.Bytes)}; wrote {output}");
        }
        return Program.ExitOk;
    }

    static void Shape(System.Text.Json.Utf8JsonWriter w, PruneShape s)
    {
        w.WriteNumber("block_count", s.Blocks);
        w.WriteNumber("head_count", s.Heads);
        w.WriteNumber("head_count_kv", s.HeadsKv);
        w.WriteNumber("feed_forward_length", s.FeedForward);
    }
}
