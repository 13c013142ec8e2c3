using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Compression.Evaluation;
using Tandem.Engine;

namespace Tandem.Cli;

/// <summary><c>tandem perplexity</c>: llama-perplexity's measurement of a model on a text.</summary>
public static class PerplexityCommand
{
    public static readonly OptionSpec[] Options =
    [
        CommonOptions.Model,
        CommonOptions.TextFile,
        CommonOptions.WindowContext,
        CommonOptions.Chunks,
        CommonOptions.Threads,
        CommonOptions.Json,
        CommonOptions.Help,
    ];

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("perplexity", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("perplexity")); return Program.ExitOk; }
        a.AllowPositionals(0, "");
        var model = CommonOptions.ReadModel(a);
        string text = EvaluationInput.ReadText(a);
        var options = EvaluationInput.ReadOptions(a, model.Threads, "perplexity");
        using var m = Model.Load(model.Path);
        var r = Perplexity.Measure(m, text, options);
        if (a.Flag("--json"))
        {
            EvaluationInput.WriteJson(w =>
            {
                w.WriteString("model", model.Path);
                w.WriteNumber("perplexity", r.Perplexity);
                w.WriteNumber("uncertainty", r.Uncertainty);
                w.WriteNumber("mean_nll", r.MeanNll);
                w.WriteNumber("ctx", r.ContextLength);
                w.WriteNumber("chunks", r.Chunks);
                w.WriteNumber("scored_tokens", r.ScoredTokens);
                w.WriteNumber("text_tokens", r.TextTokens);
            });
        }
        else
            Console.Out.WriteLine($"PPL = {r.Perplexity:F4} +/- {r.Uncertainty:F5} ({r.Chunks} chunks of {r.ContextLength} tokens, {r.ScoredTokens} scored)");
        return Program.ExitOk;
    }
}

/// <summary>Options and output shared by <c>perplexity</c> and <c>kl</c>.</summary>
static class EvaluationInput
{
    public static string ReadText(Arguments a)
    {
        string path = a.String("--file") ?? throw new UsageException("missing text file: -f TEXT");
        if (!File.Exists(path)) throw new FileNotFoundException($"text file not found: {path}", path);
        return File.ReadAllText(path);
    }

    public static EvaluationOptions ReadOptions(Arguments a, int threads, string label)
    {
        var progress = a.Flag("--json") && Console.IsErrorRedirected ? null : new ConsoleProgress(label);
        return new EvaluationOptions
        {
            ContextLength = a.Int("--ctx", 512, min: 4),
            MaxChunks = a.Int("--chunks", 0, min: 1),
            Threads = threads,
            Progress = progress is null ? null : progress.Report,
        };
    }

    public static void WriteJson(Action<Utf8JsonWriter> body)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        stdout.Write("\n"u8);
    }
}
