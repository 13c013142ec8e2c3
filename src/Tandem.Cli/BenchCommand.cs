using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Engine;
using Tandem.Gguf;

namespace Tandem.Cli;

/// <summary>What <c>tandem bench</c> measures: llama-bench's pp (prompt) and tg (generation) tests.</summary>
public sealed record BenchOptions
{
    public required string ModelPath { get; init; }
    /// <summary>Prompt tokens of the pp test (0 skips it).</summary>
    public int PromptTokens { get; init; } = 512;
    /// <summary>Generated tokens of the tg test (0 skips it).</summary>
    public int GeneratedTokens { get; init; } = 128;
    public int Threads { get; init; } = 2;
    public int Repetitions { get; init; } = 3;
    /// <summary>Seed of the random token ids.</summary>
    public int Seed { get; init; } = 1234;
    public bool Warmup { get; init; } = true;
    /// <summary>Also measure the machine's read-bandwidth roofline (<see cref="MemoryRoofline"/>) at the same threads.</summary>
    public bool Roofline { get; init; }
}

/// <summary>One test's repetitions: tokens per second, wall time, and the derived figures.</summary>
public sealed record BenchTest(string Name, int PromptTokens, int GeneratedTokens, double[] TokensPerSecond, double[] Milliseconds)
{
    /// <summary>pp only: time from the prompt to the first sampled token, per repetition.</summary>
    public double[]? TimeToFirstTokenMs { get; init; }
    /// <summary>tg only: weight bytes read per token × tokens per second, in GB/s, per repetition.</summary>
    public double[]? BandwidthGBps { get; init; }
}

public sealed record BenchResult(BenchOptions Options, string ModelName, long ParameterCount, long FileBytes, long WeightBytesPerToken,
    IReadOnlyList<BenchTest> Tests, long PeakRssBytes)
{
    /// <summary>The machine's read bandwidth at the same thread count, when asked for (GB/s).</summary>
    public double? RooflineGBps { get; init; }
}

/// <summary>
/// <c>tandem bench</c>, with llama-bench's meaning: pp = tokens/s evaluating a P-token batch from an empty cache;
/// tg = tokens/s of N single-token decodes from an empty cache. Token ids are random (fixed seed); each test is
/// repeated r times after one warm-up run; mean ± sample standard deviation are reported.
/// </summary>
public static class BenchCommand
{
    public static readonly OptionSpec[] Options =
    [
        CommonOptions.Model,
        new("--n-prompt", "-p", "N", "prompt tokens of the pp test; 0 skips it (default 512)"),
        new("--n-gen", "-n", "N", "generated tokens of the tg test; 0 skips it (default 128)"),
        new("--threads", "-t", "N", "worker threads (default 2)"),
        new("--repetitions", "-r", "N", "repetitions of each test (default 3)"),
        new("--seed", null, "S", "seed of the random token ids (default 1234)"),
        new("--no-warmup", null, null, "skip the warm-up run"),
        new("--roofline", null, null, "also measure the machine's memory read bandwidth (1 GiB, same threads) and report tg as a share of it"),
        new("--json", null, null, "print one JSON object per test (one per line) on stdout"),
        CommonOptions.Help,
    ];

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("bench", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("bench")); return Program.ExitOk; }
        a.AllowPositionals(0, "");
        var model = CommonOptions.ReadModel(a);
        var options = new BenchOptions
        {
            ModelPath = model.Path,
            PromptTokens = a.Int("--n-prompt", 512, min: 0),
            GeneratedTokens = a.Int("--n-gen", 128, min: 0),
            Threads = a.Int("--threads", 2, min: 1),
            Repetitions = a.Int("--repetitions", 3, min: 1),
            Seed = a.Int("--seed", 1234),
            Warmup = !a.Flag("--no-warmup"),
            Roofline = a.Flag("--roofline"),
        };
        if (options.PromptTokens == 0 && options.GeneratedTokens == 0) throw new UsageException("nothing to measure: -p and -n are both 0");
        var result = Run(options);
        if (a.Flag("--json")) WriteJson(result);
        else Console.Out.Write(Table(result));
        return Program.ExitOk;
    }

    public static BenchResult Run(BenchOptions o)
    {
        using var model = Model.Load(o.ModelPath);
        int context = Math.Max(1, Math.Max(o.PromptTokens, o.GeneratedTokens));
        using var session = model.CreateSession(new SessionOptions(context, o.Threads));
        var random = new Random(o.Seed);
        int vocab = session.VocabSize;
        int[] RandomTokens(int n) { var t = new int[n]; for (int i = 0; i < n; i++) t[i] = random.Next(vocab); return t; }

        // The warm-up is one whole run of each test: the JIT compiles the decode path's methods again, optimized, only
        // after some calls, so a one-token warm-up left part of that into the first measured repetition.
        if (o.Warmup)
        {
            if (o.PromptTokens > 0) { session.Truncate(0); session.Evaluate(RandomTokens(o.PromptTokens)); }
            if (o.GeneratedTokens > 0)
            {
                session.Truncate(0);
                foreach (int token in RandomTokens(o.GeneratedTokens)) session.Evaluate([token]);
            }
        }
        long bytesPerToken = WeightBytesPerToken(model.Gguf);
        var tests = new List<BenchTest>();
        if (o.PromptTokens > 0)
        {
            var tps = new double[o.Repetitions]; var ms = new double[o.Repetitions]; var ttft = new double[o.Repetitions];
            for (int r = 0; r < o.Repetitions; r++)
            {
                var prompt = RandomTokens(o.PromptTokens);
                session.Truncate(0);
                long start = Stopwatch.GetTimestamp();
                var logits = session.Evaluate(prompt);
                double evalMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                ArgMax(logits); // the first token: what a user waits for
                ttft[r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                ms[r] = evalMs;
                tps[r] = o.PromptTokens / (evalMs / 1000);
            }
            tests.Add(new BenchTest($"pp{o.PromptTokens}", o.PromptTokens, 0, tps, ms) { TimeToFirstTokenMs = ttft });
        }
        if (o.GeneratedTokens > 0)
        {
            var tps = new double[o.Repetitions]; var ms = new double[o.Repetitions]; var bw = new double[o.Repetitions];
            for (int r = 0; r < o.Repetitions; r++)
            {
                var tokens = RandomTokens(o.GeneratedTokens);
                session.Truncate(0);
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < tokens.Length; i++) session.Evaluate(tokens.AsSpan(i, 1));
                ms[r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                tps[r] = o.GeneratedTokens / (ms[r] / 1000);
                bw[r] = bytesPerToken * tps[r] / 1e9;
            }
            tests.Add(new BenchTest($"tg{o.GeneratedTokens}", 0, o.GeneratedTokens, tps, ms) { BandwidthGBps = bw });
        }
        long peakRss = SystemInfo.PeakRssBytes(); // before the roofline's buffer
        return new BenchResult(o, Path.GetFileName(o.ModelPath), model.ParameterCount, new FileInfo(o.ModelPath).Length, bytesPerToken,
            tests, peakRss)
        { RooflineGBps = o.Roofline ? MemoryRoofline.MeasureGBps(o.Threads) : null };
    }

    /// <summary>
    /// Weight bytes one decoded token reads: every tensor once, except that an untied model reads only one row of
    /// token_embd (a tied one reads all of it as the output projection). The KV cache is not counted.
    /// </summary>
    public static long WeightBytesPerToken(GgufFile file)
    {
        long total = file.Tensors.Sum(t => t.ByteSize);
        if (file.TryGetTensor("output.weight", out _) && file.TryGetTensor("token_embd.weight", out var embd))
            total -= embd.ByteSize - GgmlTypeInfo.Of(embd.Type).RowBytes(embd.Columns);
        return total;
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    public static (double Mean, double StdDev) Stats(double[] xs)
    {
        double mean = xs.Average();
        double sd = xs.Length > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Length - 1)) : 0;
        return (mean, sd);
    }

    static string Table(BenchResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var b = new System.Text.StringBuilder();
        b.AppendLine($"| model | size | params | threads | test | t/s | extra |");
        b.AppendLine($"| --- | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var t in r.Tests)
        {
            var (m, s) = Stats(t.TokensPerSecond);
            string extra = t.TimeToFirstTokenMs is { } ttft ? $"ttft {Stats(ttft).Mean.ToString("0.0", inv)} ± {Stats(ttft).StdDev.ToString("0.0", inv)} ms"
                : t.BandwidthGBps is { } bw ? $"{Stats(bw).Mean.ToString("0.00", inv)} ± {Stats(bw).StdDev.ToString("0.00", inv)} GB/s weights" : "";
            b.AppendLine(string.Create(inv, $"| {r.ModelName} | {SystemInfo.Bytes(r.FileBytes)} | {SystemInfo.Count(r.ParameterCount)} | {r.Options.Threads} | {t.Name} | {m:0.00} ± {s:0.00} | {extra} |"));
        }
        b.AppendLine($"peak RSS {SystemInfo.Bytes(r.PeakRssBytes)}; {r.Options.Repetitions} repetitions; weights read per token {SystemInfo.Bytes(r.WeightBytesPerToken)}");
        if (r.RooflineGBps is { } roof)
        {
            b.Append(string.Create(inv, $"memory read roofline {roof:0.00} GB/s at {r.Options.Threads} threads (at most {roof * 1e9 / r.WeightBytesPerToken:0.0} tok/s for this file)"));
            foreach (var t in r.Tests)
                if (t.BandwidthGBps is { } bw) b.Append(string.Create(inv, $"; {t.Name} reads at {100 * Stats(bw).Mean / roof:0}% of it"));
            b.AppendLine();
        }
        return b.ToString();
    }

    static void WriteJson(BenchResult r)
    {
        using var stdout = Console.OpenStandardOutput();
        foreach (var t in r.Tests)
        {
            using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteString("test", t.Name);
                w.WriteString("model", r.ModelName);
                w.WriteString("model_path", Path.GetFullPath(r.Options.ModelPath));
                w.WriteNumber("model_bytes", r.FileBytes);
                w.WriteNumber("parameters", r.ParameterCount);
                w.WriteNumber("threads", r.Options.Threads);
                w.WriteNumber("n_prompt", t.PromptTokens);
                w.WriteNumber("n_gen", t.GeneratedTokens);
                w.WriteNumber("repetitions", t.TokensPerSecond.Length);
                var (m, s) = Stats(t.TokensPerSecond);
                w.WriteNumber("tok_s_mean", Math.Round(m, 3));
                w.WriteNumber("tok_s_stddev", Math.Round(s, 3));
                var (mm, ms) = Stats(t.Milliseconds);
                w.WriteNumber("ms_mean", Math.Round(mm, 3));
                w.WriteNumber("ms_stddev", Math.Round(ms, 3));
                w.WriteStartArray("tok_s_samples");
                foreach (double x in t.TokensPerSecond) w.WriteNumberValue(Math.Round(x, 3));
                w.WriteEndArray();
                if (t.TimeToFirstTokenMs is { } ttft)
                {
                    w.WriteNumber("ttft_ms_mean", Math.Round(Stats(ttft).Mean, 3));
                    w.WriteNumber("ttft_ms_stddev", Math.Round(Stats(ttft).StdDev, 3));
                }
                if (t.BandwidthGBps is { } bw)
                {
                    w.WriteNumber("weight_bytes_per_token", r.WeightBytesPerToken);
                    w.WriteNumber("bandwidth_gb_s_mean", Math.Round(Stats(bw).Mean, 4));
                    w.WriteNumber("bandwidth_gb_s_stddev", Math.Round(Stats(bw).StdDev, 4));
                }
                w.WriteNumber("peak_rss_bytes", r.PeakRssBytes);
                if (r.RooflineGBps is { } roof)
                {
                    w.WriteNumber("roofline_gb_s", Math.Round(roof, 3));
                    if (t.BandwidthGBps is { } bwr) w.WriteNumber("roofline_fraction", Math.Round(Stats(bwr).Mean / roof, 4));
                }
                w.WriteEndObject();
            }
            stdout.Write("\n"u8);
        }
    }
}
