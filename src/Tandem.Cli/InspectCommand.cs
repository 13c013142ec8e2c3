using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Gguf;

namespace Tandem.Cli;

/// <summary>What <c>tandem inspect</c> was asked to do.</summary>
public sealed record InspectOptions(string Path, bool Json);

/// <summary>What a GGUF file holds, read from its header only (no weights are touched).</summary>
public sealed record ModelSummary(
    string Path, long FileSize, uint GgufVersion, string Architecture, string? Name,
    IReadOnlyList<(string Key, object? Value)> Hyperparameters,
    long ParameterCount, int TensorCount, IReadOnlyList<TensorTypeSummary> TensorTypes,
    string? TokenizerModel, string? TokenizerPre, int? VocabSize, string ChatTemplate)
{
    /// <summary>The hyperparameters shown, as metadata keys below <c>&lt;arch&gt;.</c>.</summary>
    public static readonly string[] HyperparameterKeys =
    [
        "embedding_length", "block_count", "attention.head_count", "attention.head_count_kv", "attention.key_length",
        "feed_forward_length", "context_length", "rope.freq_base", "attention.layer_norm_rms_epsilon",
    ];

    public static ModelSummary Of(GgufFile f)
    {
        string arch = f.GetString("general.architecture") ?? "unknown";
        var hyper = new List<(string, object?)>();
        foreach (var key in HyperparameterKeys)
        {
            object? value = f.Metadata.TryGetValue($"{arch}.{key}", out var v)
                ? v.Value switch { float x => x, double x => x, _ when v.IsInteger => v.AsInt64(), _ => v.ToString() }
                : null;
            if (value is not null || key != "attention.key_length") hyper.Add((key, value));
        }
        var types = f.Tensors.GroupBy(t => t.Type)
            .Select(g => new TensorTypeSummary(GgmlTypeInfo.Of(g.Key).Name, g.Count(), g.Sum(t => t.ElementCount), g.Sum(t => t.ByteSize)))
            .OrderByDescending(t => t.Bytes).ThenBy(t => t.Type, StringComparer.Ordinal)
            .ToList();
        int? vocab = f.Metadata.TryGetValue("tokenizer.ggml.tokens", out var tokens) && tokens.Type == GgufValueType.Array ? tokens.AsArray().Count : null;
        return new ModelSummary(f.Path, f.FileLength, f.Version, arch, f.GetString("general.name"), hyper,
            f.Tensors.Sum(t => t.ElementCount), f.Tensors.Count, types,
            f.GetString("tokenizer.ggml.model"), f.GetString("tokenizer.ggml.pre"), vocab,
            ChatTemplateKind(f.Metadata.TryGetValue("tokenizer.chat_template", out var tpl) && tpl.Type == GgufValueType.String ? tpl.AsString() : null));
    }

    /// <summary>Names the family of a Jinja chat template by its markers.</summary>
    public static string ChatTemplateKind(string? template) => template switch
    {
        null or "" => "none",
        _ when template.Contains("<|im_start|>", StringComparison.Ordinal) => "chatml",
        _ when template.Contains("<|start_header_id|>", StringComparison.Ordinal) => "llama3",
        _ when template.Contains("[INST]", StringComparison.Ordinal) => "llama2",
        _ => "other",
    };
}

public sealed record TensorTypeSummary(string Type, int Count, long Elements, long Bytes);

/// <summary><c>tandem inspect</c>: describe a GGUF model file.</summary>
public static class InspectCommand
{
    public static readonly OptionSpec[] Options =
    [
        CommonOptions.Json,
        CommonOptions.Help,
    ];

    public static InspectOptions Read(Arguments a)
    {
        a.AllowPositionals(1, "one model file");
        if (a.Positionals.Count == 0) throw new UsageException("missing model file: tandem inspect MODEL.gguf");
        return new InspectOptions(a.Positionals[0], a.Flag("--json"));
    }

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("inspect", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("inspect")); return Program.ExitOk; }
        var o = Read(a);
        if (!File.Exists(o.Path)) throw new FileNotFoundException($"model file not found: {o.Path}", o.Path);
        using var f = GgufFile.Open(o.Path);
        var s = ModelSummary.Of(f);
        if (o.Json) WriteJson(s);
        else Console.Out.Write(Text(s));
        return Program.ExitOk;
    }

    public static string Text(ModelSummary s)
    {
        var b = new StringBuilder();
        b.AppendLine($"file           {s.Path} ({SystemInfo.Bytes(s.FileSize)}, GGUF v{s.GgufVersion})");
        b.AppendLine($"architecture   {s.Architecture}" + (s.Name is null || s.Name == s.Architecture ? "" : $" ({s.Name})"));
        b.AppendLine($"parameters     {SystemInfo.Count(s.ParameterCount)} ({s.ParameterCount:N0})");
        b.AppendLine("hyperparameters");
        foreach (var (key, value) in s.Hyperparameters)
            b.AppendLine($"  {key,-34} {(value?.ToString() ?? "-")}");
        b.AppendLine($"tensors        {s.TensorCount}");
        foreach (var t in s.TensorTypes)
            b.AppendLine($"  {t.Type,-6} {t.Count,5} tensors  {SystemInfo.Count(t.Elements),8} params  {SystemInfo.Bytes(t.Bytes),11}");
        b.AppendLine($"tokenizer      {s.TokenizerModel ?? "-"} (pre: {s.TokenizerPre ?? "-"}), vocab {s.VocabSize?.ToString() ?? "-"}");
        b.AppendLine($"chat template  {s.ChatTemplate}");
        return b.ToString();
    }

    static void WriteJson(ModelSummary s)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("file", s.Path);
            w.WriteNumber("file_size_bytes", s.FileSize);
            w.WriteNumber("gguf_version", s.GgufVersion);
            w.WriteString("architecture", s.Architecture);
            if (s.Name is null) w.WriteNull("name"); else w.WriteString("name", s.Name);
            w.WriteNumber("parameter_count", s.ParameterCount);
            w.WriteStartObject("hyperparameters");
            foreach (var (key, value) in s.Hyperparameters)
            {
                switch (value)
                {
                    case null: w.WriteNull(key); break;
                    case long l: w.WriteNumber(key, l); break;
                    case float x: w.WriteNumber(key, x); break;
                    case double d: w.WriteNumber(key, d); break;
                    default: w.WriteString(key, value.ToString()); break;
                }
            }
            w.WriteEndObject();
            w.WriteNumber("tensor_count", s.TensorCount);
            w.WriteStartArray("tensor_types");
            foreach (var t in s.TensorTypes)
            {
                w.WriteStartObject();
                w.WriteString("type", t.Type);
                w.WriteNumber("count", t.Count);
                w.WriteNumber("elements", t.Elements);
                w.WriteNumber("bytes", t.Bytes);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("tokenizer");
            if (s.TokenizerModel is null) w.WriteNull("model"); else w.WriteString("model", s.TokenizerModel);
            if (s.TokenizerPre is null) w.WriteNull("pre"); else w.WriteString("pre", s.TokenizerPre);
            if (s.VocabSize is null) w.WriteNull("vocab_size"); else w.WriteNumber("vocab_size", s.VocabSize.Value);
            w.WriteEndObject();
            w.WriteString("chat_template", s.ChatTemplate);
            w.WriteEndObject();
        }
        stdout.Write("\n"u8);
    }
}
