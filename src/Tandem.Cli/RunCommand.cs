using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Engine.Generation;
using Tandem.Engine.Sampling;

namespace Tandem.Cli;

/// <summary>What <c>tandem run</c> was asked to do.</summary>
public sealed record RunOptions(ModelSettings Model, string Prompt, int MaxTokens, SamplerOptions Sampling,
    IReadOnlyList<string> StopStrings, bool Json, bool EchoPrompt);

/// <summary><c>tandem run</c>: complete one prompt, streaming the text, then print timings.</summary>
public static class RunCommand
{
    public const int DefaultMaxTokens = 128;

    public static readonly OptionSpec[] Options =
    [
        CommonOptions.Model,
        new("--prompt", "-p", "TEXT", "the prompt (required unless --file)"),
        new("--file", "-f", "FILE", "read the prompt from a file"),
        new("--n-predict", "-n", "N", $"tokens to generate (default {DefaultMaxTokens})"),
        CommonOptions.Threads,
        CommonOptions.Context,
        .. CommonOptions.Sampling,
        new("--stop", null, "TEXT", "stop when the text contains TEXT (repeatable)", Repeatable: true),
        new("--json", null, null, "print one JSON object (prompt and generated ids, text, timings) instead of streaming"),
        new("--no-display-prompt", null, null, "do not echo the prompt before the generated text"),
        CommonOptions.Help,
    ];

    public static RunOptions Read(Arguments a)
    {
        a.AllowPositionals(0, "");
        string? prompt = a.String("--prompt");
        if (a.String("--file") is { } file)
        {
            if (prompt is not null) throw new UsageException("give the prompt with either --prompt or --file, not both");
            if (!File.Exists(file)) throw new FileNotFoundException($"prompt file not found: {file}", file);
            prompt = File.ReadAllText(file);
        }
        if (prompt is null) throw new UsageException("missing prompt: pass -p TEXT (see 'tandem run --help')");
        return new RunOptions(
            CommonOptions.ReadModel(a), prompt, a.Int("--n-predict", DefaultMaxTokens, min: 0),
            CommonOptions.ReadSampler(a), a.All("--stop"), a.Flag("--json"), !a.Flag("--no-display-prompt"));
    }

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("run", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("run")); return Program.ExitOk; }
        var o = Read(a);

        using var loaded = CommonOptions.Load(o.Model);
        var sampler = new Sampler(loaded.Session.VocabSize, o.Sampling);
        var generator = new TextGenerator(loaded.Model, loaded.Session, sampler);
        var request = new GenerationRequest { Prompt = o.Prompt, MaxTokens = o.MaxTokens, StopStrings = o.StopStrings };
        int[] promptTokens = generator.PromptTokens(request); // tokenize once, and fail before echoing anything
        generator.EnsureFits(promptTokens.Length);
        request = request with { PromptTokens = promptTokens };

        GenerationResult result;
        if (o.Json)
        {
            result = generator.Generate(request);
        }
        else
        {
            var stdout = Console.Out;
            if (o.EchoPrompt) { stdout.Write(o.Prompt); stdout.Flush(); }
            result = generator.Generate(request, piece => { stdout.Write(piece); stdout.Flush(); });
            stdout.WriteLine();
        }

        long peak = SystemInfo.PeakRssBytes();
        if (o.Json) WriteJson(o, loaded.LoadMs, sampler.Seed, result, peak);
        else Console.Error.Write(Summary(Path.GetFileName(o.Model.Path), loaded.LoadMs, sampler.Seed, result, peak));
        return Program.ExitOk;
    }

    public static string Summary(string model, double loadMs, ulong seed, GenerationResult r, long peakRss)
    {
        var t = r.Timings;
        return $"""

            tandem: {model}, seed {seed}, stopped by {Describe(r.StopReason)}
              load      {loadMs,10:0.0} ms
              prefill   {t.PrefillMs,10:0.0} ms  {t.PromptTokens,6} tokens  {t.PrefillTokensPerSecond,10:0.0} tok/s
              ttft      {t.TimeToFirstTokenMs,10:0.0} ms
              decode    {t.DecodeMs,10:0.0} ms  {t.DecodedTokens,6} tokens  {t.DecodeTokensPerSecond,10:0.0} tok/s
              peak RSS  {SystemInfo.Bytes(peakRss)}

            """;
    }

    static string Describe(StopReason reason) => reason switch
    {
        StopReason.EndOfGeneration => "end-of-generation token",
        StopReason.StopString => "stop string",
        StopReason.MaxTokens => "token limit",
        StopReason.ContextFull => "full context",
        _ => reason.ToString(),
    };

    static string JsonName(StopReason reason) => reason switch
    {
        StopReason.EndOfGeneration => "eog",
        StopReason.StopString => "stop_string",
        StopReason.MaxTokens => "max_tokens",
        StopReason.ContextFull => "context_full",
        _ => reason.ToString(),
    };

    static void WriteJson(RunOptions o, double loadMs, ulong seed, GenerationResult r, long peakRss)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("model", Path.GetFileName(o.Model.Path));
            w.WriteString("model_path", Path.GetFullPath(o.Model.Path));
            w.WriteNumber("seed", seed);
            w.WriteStartArray("prompt_tokens");
            foreach (int id in r.PromptTokens) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            foreach (int id in r.Tokens) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteString("text", r.Text);
            w.WriteString("stop_reason", JsonName(r.StopReason));
            w.WriteStartObject("timings");
            w.WriteNumber("load_ms", Math.Round(loadMs, 3));
            w.WriteNumber("prefill_ms", Math.Round(r.Timings.PrefillMs, 3));
            w.WriteNumber("ttft_ms", Math.Round(r.Timings.TimeToFirstTokenMs, 3));
            w.WriteNumber("decode_ms", Math.Round(r.Timings.DecodeMs, 3));
            w.WriteNumber("prefill_tok_s", Math.Round(r.Timings.PrefillTokensPerSecond, 3));
            w.WriteNumber("decode_tok_s", Math.Round(r.Timings.DecodeTokensPerSecond, 3));
            w.WriteEndObject();
            w.WriteNumber("peak_rss_bytes", peakRss);
            w.WriteEndObject();
        }
        stdout.Write("\n"u8);
    }
}
