namespace Tandem.Tokenizers.Templates;

/// <summary>
/// A template that cannot be parsed or rendered: the message names the problem and where in the template source it
/// is (1-based line and column).
/// </summary>
public class TemplateException : Exception
{
    public int Line { get; }
    public int Column { get; }
    /// <summary>The message without the position suffix.</summary>
    public string Reason { get; }

    public TemplateException(string reason, int line, int column)
        : base($"{reason} (template line {line}, column {column})")
    {
        Reason = reason; Line = line; Column = column;
    }
}

/// <summary>Raised by the template itself through <c>raise_exception(message)</c>: the message is the template's own.</summary>
public sealed class TemplateRaisedException(string reason, int line, int column) : TemplateException(reason, line, column);

/// <summary>
/// Lexer settings with Jinja's meaning. Jinja's defaults are all false; Hugging Face transformers renders chat templates
/// with TrimBlocks and LstripBlocks on (see <see cref="HuggingFace"/>).
/// </summary>
public sealed record TemplateOptions
{
    /// <summary>Remove the first newline after a block tag (<c>%}</c>) or comment.</summary>
    public bool TrimBlocks { get; init; }
    /// <summary>Remove spaces and tabs from the start of a line up to a block tag or comment.</summary>
    public bool LstripBlocks { get; init; }
    /// <summary>Keep a single newline at the end of the template (Jinja removes it by default).</summary>
    public bool KeepTrailingNewline { get; init; }

    public static TemplateOptions Jinja { get; } = new();
    /// <summary>What transformers' apply_chat_template uses: trim_blocks and lstrip_blocks on.</summary>
    public static TemplateOptions HuggingFace { get; } = new() { TrimBlocks = true, LstripBlocks = true };
}
