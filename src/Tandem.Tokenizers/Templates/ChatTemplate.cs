using System.Text.Json;
using Tandem.Gguf;

namespace Tandem.Tokenizers.Templates;

/// <summary>A tool call an assistant message made, in the OpenAI shape templates read (tool_call.function.name …).</summary>
/// <param name="Arguments">A JSON-like object (dictionary) or a JSON string; templates print either.</param>
public sealed record ChatToolCall(string Name, object? Arguments, string? Id = null);

/// <summary>One message of a conversation as chat templates see it; optional parts are left out when null.</summary>
public sealed record ChatTemplateMessage(string Role, string? Content)
{
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }
    /// <summary>The assistant's thinking, which Qwen3's template writes inside &lt;think&gt;…&lt;/think&gt;.</summary>
    public string? ReasoningContent { get; init; }
    /// <summary>For role "tool": the id of the call this answers.</summary>
    public string? ToolCallId { get; init; }
    public string? Name { get; init; }

    /// <summary>The message as the dictionary apply_chat_template passes: only the keys that are set.</summary>
    public OrderedDictionary<string, object?> ToDictionary()
    {
        var d = new OrderedDictionary<string, object?> { ["role"] = Role, ["content"] = Content };
        if (Name is not null) d["name"] = Name;
        if (ReasoningContent is not null) d["reasoning_content"] = ReasoningContent;
        if (ToolCallId is not null) d["tool_call_id"] = ToolCallId;
        if (ToolCalls is not null)
            d["tool_calls"] = ToolCalls.Select(c =>
            {
                var call = new OrderedDictionary<string, object?>();
                if (c.Id is not null) call["id"] = c.Id;
                call["type"] = "function";
                call["function"] = new OrderedDictionary<string, object?> { ["name"] = c.Name, ["arguments"] = c.Arguments };
                return (object?)call;
            }).ToList();
        return d;
    }
}

/// <summary>What else apply_chat_template passes to the template besides the messages.</summary>
public sealed record ChatTemplateOptions
{
    /// <summary>End with the header of the assistant's turn, so the model writes the reply.</summary>
    public bool AddGenerationPrompt { get; init; }
    /// <summary>Tool schemas (JSON-like: dictionaries/lists or JsonElement), in the OpenAI {"type":"function",…} shape.</summary>
    public IReadOnlyList<object?>? Tools { get; init; }
    public IReadOnlyList<object?>? Documents { get; init; }
    /// <summary>Qwen3's switch; null leaves it undefined in the template, as when the caller does not pass it.</summary>
    public bool? EnableThinking { get; init; }
    /// <summary>Further template variables (e.g. Llama 3's date_string), as extra keyword arguments would be.</summary>
    public IReadOnlyDictionary<string, object?>? Variables { get; init; }
    /// <summary>The clock strftime_now reads (templates that print today's date); the system clock by default.</summary>
    public TimeProvider? Clock { get; init; }
}

/// <summary>
/// A model's chat template (GGUF tokenizer.chat_template or tokenizer_config.json's chat_template), rendered as
/// Hugging Face transformers' apply_chat_template renders it: Jinja with trim_blocks and lstrip_blocks on, tojson as
/// json.dumps with ensure_ascii=False, raise_exception and strftime_now as globals, the special tokens (bos_token,
/// eos_token …) as variables, tools and documents None when not given.
/// </summary>
public sealed class ChatTemplate
{
    readonly JinjaTemplate template;

    public string Source { get; }
    /// <summary>Special-token texts the template can use by name (bos_token, eos_token, …); unset ones are undefined.</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; }

    public ChatTemplate(string source, IReadOnlyDictionary<string, string>? specialTokens = null)
    {
        Source = source;
        SpecialTokens = specialTokens ?? new Dictionary<string, string>();
        template = JinjaTemplate.Parse(source, TemplateOptions.HuggingFace);
    }

    /// <summary>The template in a GGUF file, with bos_token/eos_token from its vocabulary; null when it has none.</summary>
    public static ChatTemplate? FromGguf(GgufFile file)
    {
        string? source = file.GetString("tokenizer.chat_template");
        if (string.IsNullOrEmpty(source)) return null;
        // only the few special tokens' texts are decoded (reading Items would make a string of every token)
        var tokens = file.GetArray("tokenizer.ggml.tokens") is { ElementType: GgufValueType.String } texts ? texts : null;
        var special = new Dictionary<string, string>();
        foreach (var (key, name) in new[] { ("tokenizer.ggml.bos_token_id", "bos_token"), ("tokenizer.ggml.eos_token_id", "eos_token"),
                     ("tokenizer.ggml.unknown_token_id", "unk_token"), ("tokenizer.ggml.padding_token_id", "pad_token") })
            if (file.GetInt(key) is { } id && tokens is not null && id >= 0 && id < tokens.Count) special[name] = System.Text.Encoding.UTF8.GetString(tokens.GetUtf8((int)id));
        return new ChatTemplate(source, special);
    }

    /// <summary>
    /// The template in a Hugging Face tokenizer_config.json (a string, or a list of named templates of which "default"
    /// is taken), with its special tokens (strings or {"content": …} objects); null when it has none.
    /// </summary>
    public static ChatTemplate? FromTokenizerConfig(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"{path}: expected a JSON object");
        string? source = null;
        if (root.TryGetProperty("chat_template", out var t))
        {
            if (t.ValueKind == JsonValueKind.String) source = t.GetString();
            else if (t.ValueKind == JsonValueKind.Array)
                foreach (var named in t.EnumerateArray())
                    if (named.TryGetProperty("name", out var n) && n.GetString() == "default" && named.TryGetProperty("template", out var body))
                        source = body.GetString();
        }
        if (string.IsNullOrEmpty(source)) return null;
        var special = new Dictionary<string, string>();
        foreach (var name in new[] { "bos_token", "eos_token", "unk_token", "pad_token" })
        {
            if (!root.TryGetProperty(name, out var v)) continue;
            if (v.ValueKind == JsonValueKind.String) special[name] = v.GetString()!;
            else if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) special[name] = c.GetString()!;
        }
        return new ChatTemplate(source, special);
    }

    public string Render(IReadOnlyList<ChatTemplateMessage> messages, ChatTemplateOptions? options = null) =>
        RenderDictionaries(messages.Select(m => (object?)m.ToDictionary()).ToList(), options);

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) =>
        Render(messages.Select(m => new ChatTemplateMessage(m.Role, m.Content)).ToList(), new ChatTemplateOptions { AddGenerationPrompt = addGenerationPrompt });

    /// <summary>Renders messages given as JSON-like values (dictionaries or JsonElements), e.g. straight from an API request.</summary>
    public string RenderDictionaries(IReadOnlyList<object?> messages, ChatTemplateOptions? options = null)
    {
        options ??= new ChatTemplateOptions();
        var variables = new Dictionary<string, object?>();
        foreach (var (k, v) in SpecialTokens) variables[k] = v;
        variables["messages"] = messages;
        variables["tools"] = options.Tools;
        variables["documents"] = options.Documents;
        variables["add_generation_prompt"] = options.AddGenerationPrompt;
        if (options.EnableThinking is { } thinking) variables["enable_thinking"] = thinking;
        if (options.Variables is not null) foreach (var (k, v) in options.Variables) variables[k] = v;
        return template.Render(variables, options.Clock);
    }
}
