using Tandem.Compression.Evaluation;
using Tandem.Engine;

namespace Tandem.Cli;

/// <summary><c>tandem kl</c>: how far a candidate (pruned, quantized) model's predictions are from its base's.</summary>
public static class KlCommand
{
    public static readonly OptionSpec[] Options =
    [
        new("--model", "-m", "BASE", "the reference model (required)"),
        new("--model2", "-m2", "CANDIDATE", "the model compared with it (required; same vocabulary)"),
        CommonOptions.TextFile,
        CommonOptions.WindowContext,
        CommonOptions.Chunks,
        CommonOptions.Threads,
        CommonOptions.Json,
        CommonOptions.Help,
    ];

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("kl", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("kl")); return Program.ExitOk; }
        a.AllowPositionals(0, "");
        string basePath = RequireModel(a, "--model", "-m BASE");
        string candidatePath = RequireModel(a, "--model2", "-m2 CANDIDATE");
        string text = EvaluationInput.ReadText(a);
        int threads = a.Int("--threads", 0, min: 1);
        var options = EvaluationInput.ReadOptions(a, threads == 0 ? SystemInfo.PhysicalCores() : threads, "kl");
        using var baseModel = Model.Load(basePath);
        using var candidate = Model.Load(candidatePath);
        var r = KlDivergence.Measure(baseModel, candidate, text, options);
        if (a.Flag("--json"))
        {
            EvaluationInput.WriteJson(w =>
            {
                w.WriteString("base", basePath);
                w.WriteString("candidate", candidatePath);
                w.WriteNumber("mean_kl", r.MeanKl);
                w.WriteNumber("kl_uncertainty", r.KlUncertainty);
                w.WriteNumber("max_kl", r.MaxKl);
                w.WriteNumber("top1_agreement", r.Top1Agreement);
                w.WriteNumber("base_perplexity", r.BasePerplexity);
                w.WriteNumber("candidate_perplexity", r.CandidatePerplexity);
                w.WriteNumber("ctx", r.ContextLength);
                w.WriteNumber("chunks", r.Chunks);
                w.WriteNumber("scored_tokens", r.ScoredTokens);
            });
        }
        else
        {
            Console.Out.WriteLine($"mean KL(base || candidate) = {r.MeanKl:F6} +/- {r.KlUncertainty:F6} nats (max {r.MaxKl:F4})");
            Console.Out.WriteLine($"same top token             = {100 * r.Top1Agreement:F2} %");
            Console.Out.WriteLine($"perplexity base/candidate  = {r.BasePerplexity:F4} / {r.CandidatePerplexity:F4}");
            Console.Out.WriteLine($"({r.Chunks} chunks of {r.ContextLength} tokens, {r.ScoredTokens} positions scored)");
        }
        return Program.ExitOk;
    }

    static string RequireModel(Arguments a, string option, string synopsis)
    {
        string path = a.String(option) ?? throw new UsageException($"missing model: {synopsis}");
        if (!File.Exists(path)) throw new FileNotFoundException($"model file not found: {path}", path);
        return path;
    }
}
