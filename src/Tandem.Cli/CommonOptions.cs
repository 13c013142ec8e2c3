using System.Diagnostics;
using Tandem.Engine;
using Tandem.Engine.Sampling;

namespace Tandem.Cli;

/// <summary>Which model to load and how big a session to make.</summary>
public sealed record ModelSettings(string Path, int ContextLength, int Threads);

/// <summary>A loaded model with its session, and how long loading took.</summary>
public sealed class LoadedModel(Model model, InferenceSession session, double loadMs) : IDisposable
{
    public Model Model { get; } = model;
    public InferenceSession Session { get; } = session;
    public double LoadMs { get; } = loadMs;

    public void Dispose()
    {
        Session.Dispose();
        Model.Dispose();
    }
}

/// <summary>Options shared by <c>run</c> and <c>chat</c>: the model, the session and the sampler.</summary>
public static class CommonOptions
{
    public const string DefaultModelRelativePath = "models/stories260K.gguf";
    public const int MaxDefaultContext = 4096;

    public static readonly OptionSpec Help = new("--help", "-h", null, "show this help");
    public static readonly OptionSpec Model = new("--model", "-m", "FILE", "GGUF model (default: the embedded stories260K.gguf)");
    public static readonly OptionSpec Json = new("--json", null, null, "print one JSON object");
    public static readonly OptionSpec TextFile = new("--file", "-f", "TEXT", "text file to score (required)");
    public static readonly OptionSpec WindowContext = new("--ctx", "-c", "N", "tokens per window (default 512)");
    public static readonly OptionSpec Chunks = new("--chunks", null, "N", "score at most N windows (default: all)");
    public static readonly OptionSpec Threads = new("--threads", "-t", "N", "worker threads (default: physical cores)");
    public static readonly OptionSpec Context = new("--ctx-size", "-c", "N", $"context length in tokens (default: the model's, at most {MaxDefaultContext})");

    public static readonly OptionSpec[] Sampling =
    [
        new("--temp", null, "T", "temperature; 0 = greedy (default 0.8)"),
        new("--top-k", null, "K", "keep the K most likely tokens; 0 = off (default 40)"),
        new("--top-p", null, "P", "nucleus sampling threshold; 1 = off (default 0.95)"),
        new("--min-p", null, "P", "drop tokens below P × the top probability; 0 = off (default 0.05)"),
        new("--repeat-penalty", null, "R", "penalty for repeated tokens; 1 = off (default 1.0)"),
        new("--repeat-last-n", null, "N", "how many recent tokens the penalties look at (default 64)"),
        new("--presence-penalty", null, "P", "subtracted from seen tokens' logits (default 0)"),
        new("--frequency-penalty", null, "F", "subtracted per occurrence (default 0)"),
        new("--seed", null, "S", "random seed (default: random, printed in the summary)"),
    ];

    /// <summary>The model given with -m, or the embedded default next to the executable.</summary>
    public static ModelSettings ReadModel(Arguments a)
    {
        string path = a.String(Model.Long) ?? Path.Combine(AppContext.BaseDirectory, DefaultModelRelativePath);
        if (!File.Exists(path))
            throw new FileNotFoundException(a.Has(Model.Long)
                ? $"model file not found: {path}"
                : $"the embedded default model is missing ({path}); pass a model with -m FILE", path);
        int threads = a.Int(Threads.Long, 0, min: 1);
        return new ModelSettings(path, a.Int(Context.Long, 0, min: 1), threads == 0 ? SystemInfo.PhysicalCores() : threads);
    }

    public static SamplerOptions ReadSampler(Arguments a)
    {
        var d = new SamplerOptions();
        return new SamplerOptions
        {
            Temperature = a.Float("--temp", d.Temperature),
            TopK = a.Int("--top-k", d.TopK, min: 0),
            TopP = a.Float("--top-p", d.TopP, min: float.Epsilon, max: 1),
            MinP = a.Float("--min-p", d.MinP, min: 0, max: 1),
            RepeatPenalty = a.Float("--repeat-penalty", d.RepeatPenalty, min: float.Epsilon),
            RepeatLastN = a.Int("--repeat-last-n", d.RepeatLastN, min: 0),
            PresencePenalty = a.Float("--presence-penalty", d.PresencePenalty),
            FrequencyPenalty = a.Float("--frequency-penalty", d.FrequencyPenalty),
            Seed = a.ULong("--seed"),
        };
    }

    /// <summary>Loads the model and makes its session; the time covers both.</summary>
    public static LoadedModel Load(ModelSettings settings)
    {
        long start = Stopwatch.GetTimestamp();
        var model = Engine.Model.Load(settings.Path);
        try
        {
            int ctx = settings.ContextLength;
            if (ctx == 0)
            {
                int trained = model.Config.TrainedContextLength;
                ctx = trained > 0 ? Math.Min(trained, MaxDefaultContext) : 2048;
            }
            var session = model.CreateSession(new SessionOptions(ctx, settings.Threads));
            return new LoadedModel(model, session, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
