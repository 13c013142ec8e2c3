namespace Tandem.Tokenizers.Templates;

/// <summary>
/// A Jinja2-compatible template (the subset chat templates use), parsed once and rendered many times. Values are
/// JSON-like .NET objects (dictionaries, lists, strings, numbers, bools, null, JsonElement/JsonNode) and behave as the
/// Python values Jinja would see: None prints "None", a missing key is Undefined (prints nothing, is falsy).
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<Node> nodes;

    JinjaTemplate(List<Node> nodes) { this.nodes = nodes; }

    /// <summary>Parses <paramref name="source"/>; a syntax error is a <see cref="TemplateException"/> naming its position.</summary>
    public static JinjaTemplate Parse(string source, TemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new JinjaTemplate(Parser.Parse(Lexer.Tokenize(source, options ?? TemplateOptions.Jinja)));
    }

    /// <summary>
    /// Renders with the given variables. Globals: range, namespace, dict, raise_exception (throws
    /// <see cref="TemplateRaisedException"/>) and strftime_now (the local time of <paramref name="clock"/>).
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables, TimeProvider? clock = null) =>
        new Renderer(variables, clock ?? TimeProvider.System).Render(nodes);
}
