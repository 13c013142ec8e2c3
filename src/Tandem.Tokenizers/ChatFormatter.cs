using Tandem.Gguf;

namespace Tandem.Tokenizers;

public sealed record ChatMessage(string Role, string Content);

public enum ChatFormat { ChatML, Llama3, Plain }

/// <summary>
/// Formats a conversation for a model, choosing the format from <c>tokenizer.chat_template</c> metadata
/// (ChatML for Qwen, Llama-3 headers; plain text for models without a template).
/// SKELETON: the public surface is fixed; the implementation is being written.
/// </summary>
public sealed class ChatFormatter
{
    public ChatFormat Format { get; }
    /// <summary>Strings that end the assistant's turn (e.g. "&lt;|im_end|&gt;").</summary>
    public IReadOnlyList<string> StopStrings { get; }

    public ChatFormatter(ChatFormat format, IReadOnlyList<string> stopStrings) { Format = format; StopStrings = stopStrings; }

    public static ChatFormatter FromGguf(GgufFile file) => throw new NotImplementedException();

    public static ChatFormat Detect(string? chatTemplate) => throw new NotImplementedException();

    /// <summary>Renders the messages; with addAssistantPrompt the text ends where the assistant's reply begins.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addAssistantPrompt) => throw new NotImplementedException();
}
