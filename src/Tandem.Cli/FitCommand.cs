using System.Text.Json;
using Tandem.Compression.Pruning;
using Tandem.Engine;

namespace Tandem.Cli;

/// <summary><c>tandem fit</c>: will a model meet a device's memory and time budget, and if not, what plan would.</summary>
public static class FitCommand
{
    public static readonly OptionSpec[] Options =
    [
        new("--model", "-m", "FILE", "GGUF model to measure"),
        new("--preset", null, "NAME", "a model shape without weights instead of -m: " + string.Join(", ", ModelShape.Presets.Keys)),
        new("--device", null, "PROFILE", "built-in profile (" + string.Join(", ", DeviceProfile.Builtin.Select(p => p.Name)) + ") or a JSON file (required)"),
        new("--ctx", "-c", "N", "context length the KV cache is sized for (default 4096)"),
        CommonOptions.Threads,
        CommonOptions.Json,
        CommonOptions.Help,
    ];

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("fit", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("fit")); return Program.ExitOk; }
        a.AllowPositionals(0, "");
        var profile = DeviceProfile.Resolve(a.String("--device") ?? throw new UsageException("missing device: --device PROFILE"));
        int ctx = a.Int("--ctx", 4096, min: 32);
        FitReport r;
        if (a.String("--preset") is { } preset)
        {
            if (a.Has("--model")) throw new UsageException("give either -m MODEL or --preset NAME, not both");
            var shape = ModelShape.Presets.TryGetValue(preset, out var s) ? s
                : throw new UsageException($"unknown preset '{preset}'; expected {string.Join(", ", ModelShape.Presets.Keys)}");
            r = DeviceFit.CheckPreset(shape, profile, ctx);
        }
        else
        {
            string path = a.String("--model") ?? throw new UsageException("missing model: -m MODEL or --preset NAME");
            if (!File.Exists(path)) throw new FileNotFoundException($"model file not found: {path}", path);
            int threads = a.Int("--threads", 0, min: 1);
            using var model = Model.Load(path);
            r = DeviceFit.Check(model, profile, Math.Min(ctx, Math.Max(32, model.Config.TrainedContextLength)), threads == 0 ? SystemInfo.PhysicalCores() : threads);
        }
        if (a.Flag("--json")) EvaluationInput.WriteJson(w => Json(w, r));
        else Console.Out.Write(Text(r));
        return Program.ExitOk;
    }

    static string Text(FitReport r)
    {
        var b = new System.Text.StringBuilder();
        b.AppendLine($"device   {r.Profile.Name}: {SystemInfo.Bytes(r.Profile.MemoryBytes)}" + (r.Profile.TtftSeconds is { } t ? $", TTFT <= {t:F2} s for {r.Profile.PromptTokens} tokens" : "") + $" (speed x{r.Profile.SpeedFactor})");
        b.AppendLine($"model    {r.Model.Name}: {r.Model.Parameters(r.Model.Prunable):N0} parameters, context {r.Context}");
        b.AppendLine($"memory   weights {SystemInfo.Bytes(r.WeightBytes)} + KV {SystemInfo.Bytes(r.KvBytes)} + runtime {SystemInfo.Bytes(r.RuntimeBytes)} = {SystemInfo.Bytes(r.TotalBytes)} -> {(r.MemoryFits ? "fits" : "does not fit")}");
        if (r.Timings is { } tm)
            b.AppendLine($"speed    here: TTFT {tm.TtftSeconds:F3} s ({tm.PromptTokens} tokens), decode {tm.DecodeTokensPerSecond:F1} tok/s; on the device: TTFT {tm.DeviceTtftSeconds:F3} s, decode {tm.DeviceDecodeTokensPerSecond:F1} tok/s"
                + (r.TtftFits is { } ok ? (ok ? " -> fits" : " -> too slow") : ""));
        if (r.Proposal is { } p)
            b.AppendLine($"plan     quantize to {p.Format.Name}; blocks {p.Shape.Blocks}, heads {p.Shape.Heads}/{p.Shape.HeadsKv} kv, ffn {p.Shape.FeedForward}: {p.Parameters:N0} parameters, {SystemInfo.Bytes(p.TotalBytes)} in all (predicted)");
        else if (!r.Fits)
            b.AppendLine("plan     none found: even the smallest plan exceeds the budget");
        return b.ToString();
    }

    static void Json(Utf8JsonWriter w, FitReport r)
    {
        w.WriteString("model", r.Model.Name);
        w.WriteString("device", r.Profile.Name);
        w.WriteNumber("ctx", r.Context);
        w.WriteNumber("parameters", r.Model.Parameters(r.Model.Prunable));
        w.WriteNumber("weight_bytes", r.WeightBytes);
        w.WriteNumber("kv_bytes", r.KvBytes);
        w.WriteNumber("runtime_bytes", r.RuntimeBytes);
        w.WriteNumber("total_bytes", r.TotalBytes);
        w.WriteNumber("budget_bytes", r.Profile.MemoryBytes);
        w.WriteBoolean("memory_fits", r.MemoryFits);
        if (r.TtftFits is { } tf) w.WriteBoolean("ttft_fits", tf); else w.WriteNull("ttft_fits");
        w.WriteBoolean("fits", r.Fits);
        if (r.Timings is { } t)
        {
            w.WriteStartObject("timings");
            w.WriteNumber("prompt_tokens", t.PromptTokens);
            w.WriteNumber("ttft_s", t.TtftSeconds);
            w.WriteNumber("decode_tok_s", t.DecodeTokensPerSecond);
            w.WriteNumber("device_ttft_s", t.DeviceTtftSeconds);
            w.WriteNumber("device_decode_tok_s", t.DeviceDecodeTokensPerSecond);
            w.WriteEndObject();
        }
        else w.WriteNull("timings");
        if (r.Proposal is { } p)
        {
            w.WriteStartObject("plan");
            w.WriteString("quantize", p.Format.Name);
            w.WriteNumber("block_count", p.Shape.Blocks);
            w.WriteNumber("head_count", p.Shape.Heads);
            w.WriteNumber("head_count_kv", p.Shape.HeadsKv);
            w.WriteNumber("feed_forward_length", p.Shape.FeedForward);
            w.WriteNumber("parameters", p.Parameters);
            w.WriteNumber("weight_bytes", p.WeightBytes);
            w.WriteNumber("kv_bytes", p.KvBytes);
            w.WriteNumber("runtime_bytes", p.RuntimeBytes);
            w.WriteNumber("total_bytes", p.TotalBytes);
            w.WriteEndObject();
        }
        else w.WriteNull("plan");
    }
}
