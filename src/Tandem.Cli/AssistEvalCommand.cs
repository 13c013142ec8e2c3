using System.Globalization;
using System.Text.Json;
using Tandem.Assistant;
using Tandem.Engine;

namespace Tandem.Cli;

/// <summary>
/// <c>tandem assist-eval FILE</c>: runs every utterance of a JSON-lines set ({"lang","text","name","args"}) through the
/// voice-command path (fast matcher, then the local model under constrained decoding when unsure) and reports how many
/// became exactly the expected call, per language and per expected function, and the end-to-end latency (p50, p95,
/// max; the model is loaded once before timing starts).
/// </summary>
public static class AssistEvalCommand
{
    public static readonly OptionSpec[] Options =
    [
        CommonOptions.Model,
        new("--threshold", null, "X", "matcher confidence below which the model decides (default 1.0; 2 sends every utterance to the model)"),
        new("--no-model", null, null, "matcher only: unsure utterances get no call"),
        CommonOptions.Threads,
        CommonOptions.Json,
        CommonOptions.Help,
    ];

    public sealed record Case(string Lang, string Text, ToolCall Expected);

    public static List<Case> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"command set not found: {path}", path);
        var cases = new List<Case>();
        int line = 0;
        foreach (var raw in File.ReadLines(path))
        {
            line++;
            if (raw.Trim().Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(raw);
                var r = doc.RootElement;
                var args = r.GetProperty("args").GetRawText();
                var call = VoiceCommandPipeline.ToCall(new(r.GetProperty("name").GetString()!, args));
                cases.Add(new Case(r.GetProperty("lang").GetString()!, r.GetProperty("text").GetString()!, call));
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new FormatException($"{path}:{line}: expected {{\"lang\", \"text\", \"name\", \"args\"}} ({ex.Message})");
            }
        }
        if (cases.Count == 0) throw new FormatException($"{path}: no utterances");
        return cases;
    }

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("assist-eval", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("assist-eval")); return Program.ExitOk; }
        a.AllowPositionals(1, "FILE");
        var cases = Load(a.Positionals[0]);
        double threshold = a.Float("--threshold", 1f, 0f, 2f);
        string modelPath = a.String("--model") ?? Path.Combine(AppContext.BaseDirectory, CommonOptions.DefaultModelRelativePath);
        using var model = a.Flag("--no-model") ? null : Model.Load(modelPath);
        using var pipeline = new VoiceCommandPipeline(DeviceCommands.Default, model,
            new VoiceCommandOptions { Threshold = threshold, Threads = a.Int("--threads", 1, min: 1) });
        pipeline.Handle(cases[0].Text); // warm-up (JIT), not timed

        var results = cases.Select(c => (Case: c, Result: pipeline.Handle(c.Text))).ToList();
        bool Right((Case Case, VoiceCommandResult Result) r) => r.Result.Call is { } call && VoiceCommandPipeline.SameCall(call, r.Case.Expected);
        var ms = results.Select(r => r.Result.Elapsed.TotalMilliseconds).Order().ToArray();
        double P(double q) => ms[Math.Min(ms.Length - 1, (int)Math.Ceiling(q * ms.Length) - 1)];
        int right = results.Count(Right), byModel = results.Count(r => r.Result.Source == "model");
        var perLang = results.GroupBy(r => r.Case.Lang).OrderBy(g => g.Key)
            .Select(g => (Lang: g.Key, Right: g.Count(Right), Total: g.Count())).ToList();
        // By the expected function, so that a set dominated by one kind of command can be read fairly.
        var perFunction = results.GroupBy(r => r.Case.Expected.Name).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (Function: g.Key, Right: g.Count(Right), Total: g.Count())).ToList();

        if (a.Flag("--json"))
        {
            var o = new Dictionary<string, object?>
            {
                ["utterances"] = results.Count, ["correct"] = right, ["accuracy"] = (double)right / results.Count,
                ["by_model"] = byModel, ["model"] = model is null ? null : Path.GetFileName(modelPath),
                ["per_language"] = perLang.ToDictionary(x => x.Lang, x => new { correct = x.Right, total = x.Total }),
                ["per_function"] = perFunction.ToDictionary(x => x.Function, x => new { correct = x.Right, total = x.Total }),
                ["latency_ms"] = new { p50 = P(0.5), p95 = P(0.95), max = ms[^1] },
                ["wrong"] = results.Where(r => !Right(r)).Select(r => new { lang = r.Case.Lang, text = r.Case.Text, expected = r.Case.Expected.ToString(), got = r.Result.Call?.ToString(), source = r.Result.Source }).ToList(),
            };
            Console.Out.WriteLine(JsonSerializer.Serialize(o, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        }
        else
        {
            var inv = CultureInfo.InvariantCulture;
            Console.Out.WriteLine(string.Format(inv, "{0}/{1} right ({2:P1}); {3} decided by the model ({4})", right, results.Count, (double)right / results.Count, byModel, model is null ? "none" : Path.GetFileName(modelPath)));
            foreach (var (lang, r, t) in perLang) Console.Out.WriteLine(string.Format(inv, "  {0}: {1}/{2}", lang, r, t));
            foreach (var (function, r, t) in perFunction) Console.Out.WriteLine(string.Format(inv, "  {0}: {1}/{2}", function, r, t));
            Console.Out.WriteLine(string.Format(inv, "latency end to end: p50 {0:0.000} ms, p95 {1:0.000} ms, max {2:0.000} ms", P(0.5), P(0.95), ms[^1]));
            foreach (var (c, r) in results.Where(x => !Right(x)))
                Console.Out.WriteLine($"  wrong [{c.Lang}] {c.Text} → {r.Call?.ToString() ?? "(none: " + string.Join("; ", r.Errors) + ")"} (expected {c.Expected}, {r.Source})");
        }
        return Program.ExitOk;
    }
}
