using System.Globalization;
using Tandem.Routing;

namespace Tandem.Cli;

/// <summary><c>tandem train-router</c>: fits the complexity scorer on labelled JSON lines and writes its model file.</summary>
public static class TrainRouterCommand
{
    public static readonly OptionSpec[] Options =
    [
        new("--data", null, "FILE", "training data: JSON lines {\"prompt\": TEXT, \"label\": \"local\"|\"cloud\"} (repeatable)", Repeatable: true),
        new("--output", "-o", "FILE", "where to write the model (JSON)"),
        new("--test", null, "FILE", "held-out data to report accuracy on (same format; repeatable)", Repeatable: true),
        new("--threshold", null, "T", "score at or above which a request goes to the cloud (default 0.55)"),
        new("--epochs", null, "N", "passes over the data (default 150)"),
        new("--seed", null, "S", "shuffling seed (default 1)"),
        new("--l2", null, "L", "L2 regularisation per update (default 1e-4)"),
        new("--learning-rate", null, "R", "initial SGD step (default 0.2)"),
        new("--balance", null, "none|label|language-label", "weigh examples so labels, or (language, label) pairs, count the same in total (default language-label)"),
        new("--cv", null, "K", "K-fold cross-validation over the --data prompts: out-of-fold accuracy per language and source and where length misleads (choose settings with this, not with --test); -o is then optional"),
        new("--cv-misses", null, "FILE", "with --cv: write the training prompts the out-of-fold models get wrong (JSON lines with their score)"),
        CommonOptions.Help,
    ];

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("train-router", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("train-router")); return Program.ExitOk; }
        a.AllowPositionals(0, "nothing");
        var data = a.All("--data");
        if (data.Count == 0) throw new UsageException("missing --data FILE");
        int cv = a.Has("--cv") ? a.Int("--cv", 5, min: 2) : 0;
        string? output = a.String("--output");
        if (output is null && cv == 0) throw new UsageException("missing -o MODEL.json");
        foreach (var f in data.Concat(a.All("--test")))
            if (!File.Exists(f)) throw new FileNotFoundException($"labelled data not found: {f}", f);
        var d = new ScorerTrainingOptions();
        var options = d with
        {
            Epochs = a.Int("--epochs", d.Epochs, min: 1),
            Seed = a.Int("--seed", d.Seed),
            Threshold = a.Double("--threshold", d.Threshold, min: 0, max: 1),
            L2 = a.Double("--l2", d.L2, min: 0),
            LearningRate = a.Double("--learning-rate", d.LearningRate, min: 0),
            Balance = a.String("--balance") switch
            {
                null => d.Balance,
                "none" => ClassBalance.None,
                "label" => ClassBalance.Label,
                "language-label" => ClassBalance.LanguageLabel,
                var other => throw new UsageException($"--balance: expected none, label or language-label, got '{other}'"),
            },
        };
        List<LabelledPrompt> train, test = [];
        try
        {
            train = data.SelectMany(LabelledPrompt.ReadJsonLines).ToList();
            test = a.All("--test").SelectMany(LabelledPrompt.ReadJsonLines).ToList();
        }
        catch (FormatException ex) { throw new ArgumentException(ex.Message); }
        if (cv > 0)
        {
            var report = ScorerCrossValidation.Run(train, cv, options);
            Console.Out.Write(report.ToString());
            if (a.String("--cv-misses") is { } missesPath)
                File.WriteAllLines(missesPath, report.Misses.Select(m => System.Text.Json.JsonSerializer.Serialize(
                    new { prompt = m.Prompt.Prompt, label = m.Prompt.Label, lang = m.Prompt.Language, source = m.Prompt.Source, score = Math.Round(m.Score, 3) },
                    new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })));
            if (output is null) return Program.ExitOk;
        }
        var scorer = ComplexityScorer.Train(train, options);
        scorer.Save(output!);
        Console.Out.WriteLine($"trained on {train.Count} prompts ({train.Count(p => p.IsCloud)} cloud) → {output}");
        Console.Out.WriteLine("train: " + ScorerEvaluation.Of(scorer, train));
        if (test.Count > 0)
        {
            Console.Out.WriteLine("test:  " + ScorerEvaluation.Of(scorer, test));
            foreach (var lang in test.Select(p => p.Language).Distinct())
                Console.Out.WriteLine($"  {lang ?? "?",-4} " + ScorerEvaluation.Of(scorer, test.Where(p => p.Language == lang)));
        }
        ReportLatency(scorer, test.Count > 0 ? test : train);
        return Program.ExitOk;
    }

    /// <summary>Scoring time per request (features + dot product), after a warm-up, as p50/p99.</summary>
    static void ReportLatency(ComplexityScorer scorer, List<LabelledPrompt> prompts)
    {
        foreach (var p in prompts) scorer.Score(p.Prompt);
        var ms = new List<double>();
        for (int rep = 0; rep < 20; rep++)
            foreach (var p in prompts)
            {
                long t = System.Diagnostics.Stopwatch.GetTimestamp();
                scorer.Score(p.Prompt);
                ms.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }
        ms.Sort();
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"scoring latency: p50 {ms[ms.Count / 2]:F3} ms, p99 {ms[(int)(ms.Count * 0.99)]:F3} ms over {ms.Count} scorings"));
    }
}
