using System.Globalization;
using System.Text;

namespace Tandem.Tokenizers.Templates;

enum TokenKind { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

readonly record struct Token(TokenKind Kind, string Text, object? Value, int Line, int Column)
{
    public bool Is(TokenKind kind, string text) => Kind == kind && Text == text;
    public bool IsOp(string text) => Kind == TokenKind.Operator && Text == text;
    public bool IsName(string text) => Kind == TokenKind.Name && Text == text;
    public override string ToString() => Kind switch
    {
        TokenKind.Data => "template text",
        TokenKind.VarEnd => "end of print statement '}}'",
        TokenKind.BlockEnd => "end of statement block '%}'",
        TokenKind.End => "end of template",
        TokenKind.String => "string literal",
        _ => $"'{Text}'",
    };
}

/// <summary>
/// Splits template source into text and tags as Jinja's lexer does, with its whitespace control: '-' after an opening
/// or before a closing delimiter strips all whitespace on that side; '+' turns off lstrip_blocks / trim_blocks for
/// that tag; trim_blocks drops one newline after a block or comment; lstrip_blocks drops spaces and tabs before a block
/// or comment that starts its line. Tag contents become expression tokens (names, literals, operators); a tag ends
/// only at a closing delimiter outside brackets, so '}}' inside a dict literal does not end it.
/// </summary>
sealed class Lexer
{
    readonly string src;
    readonly TemplateOptions options;
    readonly List<Token> tokens = [];
    readonly int[] lineStarts;
    int pos;
    bool lineStarting = true;

    Lexer(string source, TemplateOptions options)
    {
        // Jinja normalizes newlines and, unless keep_trailing_newline, drops one trailing newline.
        source = source.Replace("\r\n", "\n").Replace('\r', '\n');
        if (!options.KeepTrailingNewline && source.EndsWith('\n')) source = source[..^1];
        src = source;
        this.options = options;
        var starts = new List<int> { 0 };
        for (int i = 0; i < src.Length; i++) if (src[i] == '\n') starts.Add(i + 1);
        lineStarts = [.. starts];
    }

    public static List<Token> Tokenize(string source, TemplateOptions options)
    {
        var lexer = new Lexer(source, options);
        lexer.Run();
        return lexer.tokens;
    }

    (int Line, int Column) Where(int offset)
    {
        int i = Array.BinarySearch(lineStarts, offset);
        if (i < 0) i = ~i - 1;
        return (i + 1, offset - lineStarts[i] + 1);
    }

    TemplateException Error(string message, int offset)
    {
        var (l, c) = Where(offset);
        return new TemplateException(message, l, c);
    }

    void Add(TokenKind kind, string text, object? value, int offset)
    {
        var (l, c) = Where(offset);
        tokens.Add(new Token(kind, text, value, l, c));
    }

    void Run()
    {
        while (true)
        {
            int open = NextOpening(pos);
            if (open < 0)
            {
                if (pos < src.Length) Add(TokenKind.Data, src[pos..], null, pos);
                Add(TokenKind.End, "", null, src.Length);
                return;
            }
            char kind = src[open + 1];
            char sign = open + 2 < src.Length && (src[open + 2] == '-' || src[open + 2] == '+') ? src[open + 2] : '\0';
            string text = src[pos..open];
            if (sign == '-') text = text.TrimEnd();
            else if (sign != '+' && options.LstripBlocks && kind != '{')
            {
                int lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.Length && IsBlank(text.AsSpan(lineStart)))
                    text = text[..lineStart];
            }
            if (text.Length > 0) Add(TokenKind.Data, text, null, pos);
            int body = open + 2 + (sign != '\0' ? 1 : 0);
            switch (kind)
            {
                case '#': Comment(open, body); break;
                case '%' when IsRawStart(body, out int afterRaw): Raw(open, afterRaw); break;
                case '%': Tag(open, body, block: true); break;
                default: Tag(open, body, block: false); break;
            }
        }
    }

    int NextOpening(int from)
    {
        for (int i = src.IndexOf('{', from); i >= 0 && i + 1 < src.Length; i = src.IndexOf('{', i + 1))
            if (src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    static bool IsBlank(ReadOnlySpan<char> s)
    {
        foreach (char ch in s) if (!char.IsWhiteSpace(ch)) return false;
        return true;
    }

    /// <summary>After a closing delimiter: '-' strips all following whitespace, else trim_blocks eats one newline.</summary>
    void AfterClose(int afterDelimiter, bool stripAll, bool keep, bool trimmable)
    {
        pos = afterDelimiter;
        if (stripAll) while (pos < src.Length && char.IsWhiteSpace(src[pos])) pos++;
        else if (!keep && trimmable && options.TrimBlocks && pos < src.Length && src[pos] == '\n') pos++;
        lineStarting = pos > afterDelimiter && src[pos - 1] == '\n';
    }

    void Comment(int open, int body)
    {
        int end = src.IndexOf("#}", body, StringComparison.Ordinal);
        if (end < 0) throw Error("unclosed comment: '{#' without a matching '#}'", open);
        bool minus = end > body && src[end - 1] == '-';
        bool plus = end > body && src[end - 1] == '+';
        AfterClose(end + 2, minus, plus, trimmable: true);
    }

    bool IsRawStart(int body, out int after)
    {
        after = 0;
        int i = body;
        while (i < src.Length && char.IsWhiteSpace(src[i])) i++;
        if (string.CompareOrdinal(src, i, "raw", 0, 3) != 0) return false;
        i += 3;
        while (i < src.Length && char.IsWhiteSpace(src[i])) i++;
        if (i < src.Length && src[i] is '-' or '+') i++;
        if (string.CompareOrdinal(src, i, "%}", 0, 2) != 0) return false;
        after = i + 2;
        return true;
    }

    void Raw(int open, int after)
    {
        bool minusClose = src[after - 3] == '-';
        int start = after;
        if (minusClose) while (start < src.Length && char.IsWhiteSpace(src[start])) start++;
        else if (src[after - 3] != '+' && options.TrimBlocks && start < src.Length && src[start] == '\n') start++;
        for (int i = src.IndexOf("{%", start, StringComparison.Ordinal); i >= 0; i = src.IndexOf("{%", i + 2, StringComparison.Ordinal))
        {
            int j = i + 2;
            bool minus = j < src.Length && src[j] == '-';
            if (j < src.Length && src[j] is '-' or '+') j++;
            while (j < src.Length && char.IsWhiteSpace(src[j])) j++;
            if (string.CompareOrdinal(src, j, "endraw", 0, 6) != 0) continue;
            j += 6;
            while (j < src.Length && char.IsWhiteSpace(src[j])) j++;
            bool minusEnd = j < src.Length && src[j] == '-';
            bool plusEnd = j < src.Length && src[j] == '+';
            if (minusEnd || plusEnd) j++;
            if (string.CompareOrdinal(src, j, "%}", 0, 2) != 0) continue;
            string text = src[start..i];
            if (minus) text = text.TrimEnd();
            if (text.Length > 0) Add(TokenKind.Data, text, null, start);
            AfterClose(j + 2, minusEnd, plusEnd, trimmable: true);
            return;
        }
        throw Error("unclosed raw block: '{% raw %}' without '{% endraw %}'", open);
    }

    void Tag(int open, int body, bool block)
    {
        Add(block ? TokenKind.BlockBegin : TokenKind.VarBegin, block ? "{%" : "{{", null, open);
        string close = block ? "%}" : "}}";
        int depth = 0;
        int i = body;
        while (true)
        {
            while (i < src.Length && char.IsWhiteSpace(src[i])) i++;
            if (i >= src.Length)
                throw Error(block ? "unclosed tag: '{%' without a matching '%}'" : "unclosed tag: '{{' without a matching '}}'", open);
            if (depth == 0)
            {
                bool minus = src[i] == '-' && string.CompareOrdinal(src, i + 1, close, 0, 2) == 0;
                bool plus = block && src[i] == '+' && string.CompareOrdinal(src, i + 1, close, 0, 2) == 0;
                if (minus || plus || string.CompareOrdinal(src, i, close, 0, 2) == 0)
                {
                    Add(block ? TokenKind.BlockEnd : TokenKind.VarEnd, close, null, i);
                    AfterClose(i + 2 + (minus || plus ? 1 : 0), minus, plus, trimmable: block);
                    return;
                }
            }
            char c = src[i];
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int s = i;
                while (i < src.Length && (char.IsAsciiLetterOrDigit(src[i]) || src[i] == '_')) i++;
                Add(TokenKind.Name, src[s..i], null, s);
            }
            else if (char.IsAsciiDigit(c)) i = Number(i);
            else if (c is '\'' or '"') i = StringLiteral(i);
            else
            {
                string op = Operator(i) ?? throw Error($"unexpected character '{c}' in tag", i);
                if (op is "(" or "[" or "{") depth++;
                else if (op is ")" or "]" or "}")
                {
                    if (depth == 0) throw Error($"unexpected '{op}'", i);
                    depth--;
                }
                Add(TokenKind.Operator, op, null, i);
                i += op.Length;
            }
        }
    }

    static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}"];

    string? Operator(int i)
    {
        foreach (var op in Operators)
            if (string.CompareOrdinal(src, i, op, 0, op.Length) == 0) return op;
        return null;
    }

    int Number(int i)
    {
        int s = i;
        while (i < src.Length && (char.IsAsciiDigit(src[i]) || src[i] == '_')) i++;
        bool isFloat = false;
        if (i + 1 < src.Length && src[i] == '.' && char.IsAsciiDigit(src[i + 1]))
        {
            isFloat = true;
            i++;
            while (i < src.Length && (char.IsAsciiDigit(src[i]) || src[i] == '_')) i++;
        }
        if (i < src.Length && src[i] is 'e' or 'E')
        {
            int j = i + 1;
            if (j < src.Length && src[j] is '+' or '-') j++;
            if (j < src.Length && char.IsAsciiDigit(src[j]))
            {
                isFloat = true;
                i = j;
                while (i < src.Length && char.IsAsciiDigit(src[i])) i++;
            }
        }
        string text = src[s..i].Replace("_", "");
        if (isFloat) Add(TokenKind.Float, text, double.Parse(text, CultureInfo.InvariantCulture), s);
        else Add(TokenKind.Integer, text, long.TryParse(text, CultureInfo.InvariantCulture, out long v) ? v
            : throw Error($"integer literal {text} is too large", s), s);
        return i;
    }

    int StringLiteral(int i)
    {
        char quote = src[i];
        int s = i++;
        var sb = new StringBuilder();
        while (true)
        {
            if (i >= src.Length) throw Error("unterminated string literal", s);
            char c = src[i++];
            if (c == quote) break;
            if (c != '\\') { sb.Append(c); continue; }
            if (i >= src.Length) throw Error("unterminated string literal", s);
            char e = src[i++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\\': case '\'': case '"': sb.Append(e); break;
                case '\n': break; // a backslash before a newline continues the line
                case 'x': sb.Append((char)Hex(ref i, 2, s)); break;
                case 'u': sb.Append((char)Hex(ref i, 4, s)); break;
                case 'U': sb.Append(char.ConvertFromUtf32(Hex(ref i, 8, s))); break;
                default: sb.Append('\\').Append(e); break; // Python keeps unknown escapes as written
            }
        }
        Add(TokenKind.String, src[s..i], sb.ToString(), s);
        return i;
    }

    int Hex(ref int i, int digits, int start)
    {
        if (i + digits > src.Length || !int.TryParse(src.AsSpan(i, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v))
            throw Error("bad escape sequence in string literal", start);
        i += digits;
        return v;
    }
}
