using System.Globalization;
using System.Text;

namespace Tandem.Tokenizers.Templates;

/// <summary>
/// Python's json.dumps, which is what transformers' tojson filter calls (ensure_ascii=False unless the template asks):
/// separators ", " and ": " (with an indent, "," at line ends), keys in insertion order unless sort_keys, floats as
/// Python writes them, NaN/Infinity unquoted, and only '"', '\\' and control characters escaped (plus non-ASCII as
/// \uXXXX under ensure_ascii).
/// </summary>
static class PythonJson
{
    public sealed record Options
    {
        public string? Indent { get; init; }
        public bool EnsureAscii { get; init; }
        public bool SortKeys { get; init; }
        public string ItemSeparator { get; init; } = ", ";
        public string KeySeparator { get; init; } = ": ";
    }

    public static string Dumps(object? value, Options options)
    {
        var sb = new StringBuilder();
        Write(sb, value, options, 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, object? v, Options o, int depth)
    {
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : Values.FloatRepr(d));
                break;
            case string s: WriteString(sb, s, o.EnsureAscii); break;
            case List<object?> or object?[]:
                WriteSequence(sb, Values.Iterate(v), o, depth, '[', ']', (item, d) => Write(sb, item, o, d));
                break;
            case OrderedDictionary<string, object?> dict:
                IEnumerable<KeyValuePair<string, object?>> pairs = o.SortKeys ? dict.OrderBy(p => p.Key, StringComparer.Ordinal) : dict;
                WriteSequence(sb, pairs.Cast<object?>().ToList(), o, depth, '{', '}', (item, d) =>
                {
                    var (k, val) = (KeyValuePair<string, object?>)item!;
                    WriteString(sb, k, o.EnsureAscii);
                    sb.Append(o.KeySeparator);
                    Write(sb, val, o, d);
                });
                break;
            case Namespace ns: Write(sb, ns.Attributes, o, depth); break;
            default:
                throw new TemplateRuntimeError($"Object of type {Values.TypeName(v)} is not JSON serializable");
        }
    }

    static void WriteSequence(StringBuilder sb, List<object?> items, Options o, int depth, char open, char close, Action<object?, int> writeItem)
    {
        sb.Append(open);
        if (items.Count == 0) { sb.Append(close); return; }
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) sb.Append(o.ItemSeparator);
            if (o.Indent is not null) NewLine(sb, o.Indent, depth + 1);
            writeItem(items[i], depth + 1);
        }
        if (o.Indent is not null) NewLine(sb, o.Indent, depth);
        sb.Append(close);
    }

    static void NewLine(StringBuilder sb, string indent, int depth)
    {
        sb.Append('\n');
        for (int i = 0; i < depth; i++) sb.Append(indent);
    }

    static void WriteString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e))
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
