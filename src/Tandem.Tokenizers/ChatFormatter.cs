using System.Text;
using Tandem.Gguf;
using Tandem.Tokenizers.Templates;

namespace Tandem.Tokenizers;

public sealed record ChatMessage(string Role, string Content);

public enum ChatFormat { ChatML, Llama3, Plain }

/// <summary>
/// Formats a conversation for a model, choosing the format from <c>tokenizer.chat_template</c> metadata
/// (ChatML for Qwen, Llama-3 headers; plain text for models without a template), rendering as llama.cpp's built-in
/// "chatml" and "llama3" templates do. The rendered text holds special-token texts: encode it with parseSpecial.
/// Llama-3's &lt;|begin_of_text|&gt; is not written: it is the BOS token, which encoding with addSpecial adds.
/// </summary>
public sealed class ChatFormatter
{
    public ChatFormat Format { get; }
    /// <summary>Strings that end the assistant's turn (e.g. "&lt;|im_end|&gt;").</summary>
    public IReadOnlyList<string> StopStrings { get; }

    public ChatFormatter(ChatFormat format, IReadOnlyList<string> stopStrings) { Format = format; StopStrings = stopStrings; }

    /// <summary>A formatter for a format, with that format's stop strings.</summary>
    public static ChatFormatter For(ChatFormat format) => new(format, DefaultStopStrings(format));

    public static IReadOnlyList<string> DefaultStopStrings(ChatFormat format) => format switch
    {
        ChatFormat.ChatML => ["<|im_end|>", "<|endoftext|>"],
        ChatFormat.Llama3 => ["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"],
        _ => [],
    };

    /// <summary>
    /// The model's own template, executed as transformers does (tools, thinking, every family): null when the file has
    /// none or it does not parse. Render keeps using the detected family, so prompts stay what they were.
    /// </summary>
    public ChatTemplate? Template { get; private init; }

    public static ChatFormatter FromGguf(GgufFile file)
    {
        var format = Detect(file.GetString("tokenizer.chat_template"));
        ChatTemplate? template;
        try { template = ChatTemplate.FromGguf(file); }
        catch (TemplateException) { template = null; } // an unsupported template must not stop the model from loading
        return new ChatFormatter(format, DefaultStopStrings(format)) { Template = template };
    }

    /// <summary>ChatML when the template mentions &lt;|im_start|&gt;, Llama-3 when it mentions &lt;|start_header_id|&gt;, else plain.</summary>
    public static ChatFormat Detect(string? chatTemplate)
    {
        if (string.IsNullOrEmpty(chatTemplate)) return ChatFormat.Plain;
        if (chatTemplate.Contains("<|im_start|>", StringComparison.Ordinal)) return ChatFormat.ChatML;
        if (chatTemplate.Contains("<|start_header_id|>", StringComparison.Ordinal)) return ChatFormat.Llama3;
        return ChatFormat.Plain;
    }

    /// <summary>Renders the messages; with addAssistantPrompt the text ends where the assistant's reply begins.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addAssistantPrompt)
    {
        var sb = new StringBuilder();
        switch (Format)
        {
            case ChatFormat.ChatML:
                foreach (var m in messages)
                    sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
                if (addAssistantPrompt) sb.Append("<|im_start|>assistant\n");
                break;
            case ChatFormat.Llama3:
                foreach (var m in messages)
                    sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(TrimCSpace(m.Content)).Append("<|eot_id|>");
                if (addAssistantPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            default:
                foreach (var m in messages) sb.Append(m.Content);
                break;
        }
        return sb.ToString();
    }

    /// <summary>Trims ASCII whitespace (C isspace) at both ends, as llama.cpp's template code does.</summary>
    static string TrimCSpace(string s) => s.Trim(' ', '\t', '\n', '\v', '\f', '\r');
}
