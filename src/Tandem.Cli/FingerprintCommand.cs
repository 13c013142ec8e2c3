using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Provenance;

namespace Tandem.Cli;

/// <summary>What <c>tandem fingerprint</c> was asked to do.</summary>
public sealed record FingerprintOptions(IReadOnlyList<string> Models, bool Json, string? PlotPath);

/// <summary>
/// <c>tandem fingerprint A B [C…]</c>: was one model built from another? Every pair is compared with every provenance
/// method; <c>tandem fingerprint-eval</c> scores the methods on a benchmark set built from the shipped models.
/// </summary>
public static class FingerprintCommand
{
    public static readonly OptionSpec[] Options =
    [
        CommonOptions.Json,
        new("--plot", null, "OUT.svg", "write an SVG of the per-layer signatures"),
        CommonOptions.Help,
    ];

    public static readonly OptionSpec[] EvalOptions =
    [
        CommonOptions.Json,
        CommonOptions.Help,
    ];

    public static FingerprintOptions Read(Arguments a)
    {
        if (a.Positionals.Count < 2) throw new UsageException("fingerprint needs at least two model files: tandem fingerprint A.gguf B.gguf [C.gguf…]");
        return new FingerprintOptions(a.Positionals.ToList(), a.Flag("--json"), a.String("--plot"));
    }

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("fingerprint", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("fingerprint")); return Program.ExitOk; }
        return Run(Read(a), Console.Out);
    }

    /// <summary>Compares every pair and writes the report (text or JSON) to <paramref name="output"/>.</summary>
    public static int Run(FingerprintOptions o, TextWriter output)
    {
        var (signatures, reports) = Fingerprint.CompareAll(o.Models);
        if (o.PlotPath is not null)
        {
            var tmp = o.PlotPath + ".tmp";
            File.WriteAllText(tmp, SvgPlot.Render(signatures, reports));
            File.Move(tmp, o.PlotPath, overwrite: true);
        }
        if (o.Json) output.Write(Json(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("models");
            foreach (var s in signatures)
            {
                w.WriteStartObject();
                w.WriteString("path", s.Path);
                w.WriteString("architecture", s.Shape.Architecture);
                w.WriteNumber("layers", s.Shape.Layers);
                w.WriteNumber("embedding_length", s.Shape.Embedding);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("pairs");
            foreach (var r in reports) WritePair(w, r);
            w.WriteEndArray();
            w.WriteEndObject();
        }));
        else
            foreach (var r in reports) output.Write(Text(r));
        return Program.ExitOk;
    }

    public static string Text(PairReport r)
    {
        var b = new StringBuilder();
        b.AppendLine($"{r.A}  vs  {r.B}");
        foreach (var m in r.Results)
            b.AppendLine(m.Applicable
                ? $"  {m.Method,-20} score {m.Score,7:F3}   p {m.PValue,-8:G3} {m.Note}"
                : $"  {m.Method,-20} n/a              {m.Note}");
        b.AppendLine($"  verdict: {Name(r.Verdict)} — {r.Evidence}");
        b.AppendLine("  (honestagi-* are reported for comparison only; the verdict rests on the permutation-invariant methods)");
        return b.ToString();
    }

    static string Name(Verdict v) => v.ToString().ToLowerInvariant();

    static void WritePair(Utf8JsonWriter w, PairReport r)
    {
        w.WriteStartObject();
        w.WriteString("a", r.A);
        w.WriteString("b", r.B);
        w.WriteString("verdict", Name(r.Verdict));
        Number(w, "combined_score", r.CombinedScore);
        w.WriteString("evidence", r.Evidence);
        w.WriteStartObject("methods");
        foreach (var m in r.Results)
        {
            w.WriteStartObject(m.Method);
            w.WriteBoolean("applicable", m.Applicable);
            Number(w, "score", m.Score);
            Number(w, "p_value", m.PValue);
            w.WriteString("note", m.Note);
            if (m.Layers.Count > 0)
            {
                w.WriteStartArray("layers");
                foreach (var (la, lb, s) in m.Layers)
                {
                    w.WriteStartObject();
                    w.WriteNumber("a", la);
                    w.WriteNumber("b", lb);
                    Number(w, "similarity", s);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsNaN(v) || double.IsInfinity(v)) w.WriteNull(name);
        else w.WriteNumber(name, Math.Round(v, 6));
    }

    static string Json(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    // ---------------- fingerprint-eval ----------------

    public static int ExecuteEval(string[] args)
    {
        var a = Arguments.Parse("fingerprint-eval", args, EvalOptions);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("fingerprint-eval")); return Program.ExitOk; }
        a.AllowPositionals(0, "nothing");
        return RunEval(a.Flag("--json"), Console.Out, Console.Error);
    }

    /// <summary>The benchmark's base models: shipped next to the executable or in the repository.</summary>
    public static BenchmarkOptions DefaultBenchmark(string workDirectory, Action<string>? progress)
    {
        string root = FindModels();
        string Tm(string f) => Path.Combine(root, "testdata", "models", f);
        string qwen2 = Tm("mini-qwen2-f32.gguf"), qwen3 = Tm("mini-qwen3-f32.gguf"), stories = Path.Combine(root, "models", "stories260K.gguf");
        return new BenchmarkOptions
        {
            Bases = [qwen2, qwen3, stories],
            Siblings = new Dictionary<string, IReadOnlyList<string>>
            {
                [qwen2] = new[] { "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_1", "q3_k_m", "q2_k" }.Select(q => Tm($"mini-qwen2-{q}.gguf")).ToList(),
                [qwen3] = new[] { "q8_0", "q4_k_m" }.Select(q => Tm($"mini-qwen3-{q}.gguf")).ToList(),
            },
            WorkDirectory = workDirectory,
            Progress = progress,
        };
    }

    static string FindModels()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        for (; dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "testdata", "models", "mini-qwen2-f32.gguf"))) return dir.FullName;
        dir = new DirectoryInfo(Directory.GetCurrentDirectory());
        for (; dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "testdata", "models", "mini-qwen2-f32.gguf"))) return dir.FullName;
        throw new FileNotFoundException("fingerprint-eval needs the repository's testdata/models (mini-qwen2-f32.gguf …); run it from a Tandem checkout");
    }

    public static int RunEval(bool json, TextWriter output, TextWriter progress)
    {
        string work = Path.Combine(Path.GetTempPath(), $"tandem-fingerprint-eval-{Guid.NewGuid():N}");
        try
        {
            var report = Evaluation.Run(DefaultBenchmark(work, line => progress.WriteLine(line)));
            output.Write(json ? EvalJson(report) : EvalText(report));
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
        return Program.ExitOk;
    }

    public static string EvalText(EvaluationReport r)
    {
        var b = new StringBuilder();
        b.AppendLine($"{r.Pairs.Count} pairs: {r.Pairs.Count(p => p.Derived)} derived, {r.Pairs.Count(p => !p.Derived)} unrelated");
        b.AppendLine();
        b.AppendLine("method               threshold    AUC    derived→ d / u / ?    unrelated→ d / u / ?    FPR    TPR   n/a");
        foreach (var m in r.Methods.Append(r.Combined))
        {
            var c = m.Confusion;
            b.AppendLine($"{m.Method,-20} {m.Threshold,9:F2} {m.Auc,6:F3}    {c.DerivedAsDerived,8} / {c.DerivedAsUnrelated,2} / {c.DerivedAsInconclusive,2}    {c.UnrelatedAsDerived,10} / {c.UnrelatedAsUnrelated,2} / {c.UnrelatedAsInconclusive,2}  {c.FalsePositiveRate,5:F3}  {c.TruePositiveRate,5:F3}  {m.NotApplicable,4}");
        }
        b.AppendLine();
        b.AppendLine($"raw HonestAGI statistic ≥ {Calibration.HonestAgiClaimLevel} on {r.UnrelatedSameShapePairs} unrelated same-shape pairs: false-positive rate {r.HonestAgiRawFalsePositiveRate:F3}");
        b.AppendLine();
        b.AppendLine("pairs (verdict, combined score; scores of honestagi-raw / -centered / bias-norm / layer-invariant / embedding):");
        foreach (var p in r.Pairs)
        {
            string scores = string.Join(" ", Provenance.Methods.All.Select(m => p.Report[m].Applicable ? p.Report[m].Score.ToString("F3", System.Globalization.CultureInfo.InvariantCulture) : "n/a"));
            string mark = (p.Report.Verdict == Verdict.Derived) == p.Derived && p.Report.Verdict != Verdict.Inconclusive ? " " : "✗";
            b.AppendLine($"{mark} {(p.Derived ? "derived  " : "unrelated")} {p.Family,-16} {p.A} vs {p.B}: {Name(p.Report.Verdict)} {p.Report.CombinedScore:F3} [{scores}]");
        }
        return b.ToString();
    }

    public static string EvalJson(EvaluationReport r) => Json(w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("methods");
        foreach (var m in r.Methods.Append(r.Combined))
        {
            w.WriteStartObject();
            w.WriteString("method", m.Method);
            Number(w, "threshold", m.Threshold);
            Number(w, "auc", m.Auc);
            Number(w, "false_positive_rate", m.Confusion.FalsePositiveRate);
            Number(w, "true_positive_rate", m.Confusion.TruePositiveRate);
            w.WriteNumber("not_applicable", m.NotApplicable);
            w.WriteStartObject("confusion");
            var c = m.Confusion;
            w.WriteStartObject("derived");
            w.WriteNumber("derived", c.DerivedAsDerived); w.WriteNumber("unrelated", c.DerivedAsUnrelated); w.WriteNumber("inconclusive", c.DerivedAsInconclusive);
            w.WriteEndObject();
            w.WriteStartObject("unrelated");
            w.WriteNumber("derived", c.UnrelatedAsDerived); w.WriteNumber("unrelated", c.UnrelatedAsUnrelated); w.WriteNumber("inconclusive", c.UnrelatedAsInconclusive);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Number(w, "honestagi_raw_false_positive_rate", r.HonestAgiRawFalsePositiveRate);
        w.WriteNumber("unrelated_same_shape_pairs", r.UnrelatedSameShapePairs);
        w.WriteStartArray("pairs");
        foreach (var p in r.Pairs)
        {
            w.WriteStartObject();
            w.WriteString("family", p.Family);
            w.WriteBoolean("derived", p.Derived);
            w.WriteString("a", p.A);
            w.WriteString("b", p.B);
            w.WriteString("verdict", Name(p.Report.Verdict));
            Number(w, "combined_score", p.Report.CombinedScore);
            w.WriteStartObject("scores");
            foreach (var m in p.Report.Results) Number(w, m.Method, m.Score);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
