using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Tokenizers.Templates;

/// <summary>
/// Jinja's filters and tests and the Python str/dict/list methods that chat templates call, with the behaviour of
/// their Python originals (e.g. split() without a separator splits on runs of whitespace; title() capitalizes after
/// every non-letter).
/// </summary>
static partial class Builtins
{
    public delegate object? Filter(object? value, CallArguments args, Renderer renderer);

    public static readonly Dictionary<string, Filter> Filters = new()
    {
        ["tojson"] = (v, a, _) => ToJson(v, a.Check(0, "indent", "ensure_ascii", "separators", "sort_keys")),
        ["trim"] = (v, a, _) => a.Has(0, "chars") ? Strip(Values.Str(v), a.Get(0, "chars"), true, true) : Values.Str(v).Trim(),
        ["length"] = (v, _, _) => Values.Length(v),
        ["count"] = (v, _, _) => Values.Length(v),
        ["upper"] = (v, _, _) => Values.Str(v).ToUpperInvariant(),
        ["lower"] = (v, _, _) => Values.Str(v).ToLowerInvariant(),
        ["title"] = (v, _, _) => TitleFilter(Values.Str(v)),
        ["capitalize"] = (v, _, _) => Capitalize(Values.Str(v)),
        ["replace"] = (v, a, _) => Replace(Values.Str(v), a.Required(0, "old"), a.Required(1, "new"), a.Get(2, "count")),
        ["join"] = (v, a, r) => string.Join(Values.Str(a.Get(0, "d", "")),
            Values.Iterate(v).Select(x => Values.Str(a.Has(1, "attribute") ? r.GetAttributeOrItem(x, a.Get(1, "attribute")) : x))),
        ["default"] = Default,
        ["d"] = Default,
        ["first"] = (v, _, _) => Values.Iterate(v) is { Count: > 0 } l ? l[0] : new Undefined("no first item, the sequence was empty"),
        ["last"] = (v, _, _) => Values.Iterate(v) is { Count: > 0 } l ? l[^1] : new Undefined("no last item, the sequence was empty"),
        ["list"] = (v, _, _) => Values.Iterate(v).ToList(),
        ["items"] = (v, _, _) => v switch
        {
            OrderedDictionary<string, object?> d => d.Select(p => (object?)new object?[] { p.Key, p.Value }).ToList(),
            Undefined => new List<object?>(),
            _ => throw new TemplateRuntimeError($"can only get item pairs from a mapping, not {Values.TypeName(v)}"),
        },
        ["string"] = (v, _, _) => Values.Str(v),
        ["int"] = (v, a, _) => v is Undefined u ? throw new TemplateRuntimeError(u.Description) : ToInt(v, a.Get(0, "default", 0L)),
        ["float"] = (v, a, _) => v is Undefined u ? throw new TemplateRuntimeError(u.Description) : ToFloat(v, a.Get(0, "default", 0.0)),
        ["abs"] = (v, _, _) => v is double d ? (object)Math.Abs(d) : Math.Abs(Values.ToLong(v)),
        ["round"] = (v, a, _) => Round(v, a),
        ["selectattr"] = (v, a, r) => Select(v, a, r, byAttribute: true, keep: true),
        ["rejectattr"] = (v, a, r) => Select(v, a, r, byAttribute: true, keep: false),
        ["select"] = (v, a, r) => Select(v, a, r, byAttribute: false, keep: true),
        ["reject"] = (v, a, r) => Select(v, a, r, byAttribute: false, keep: false),
        ["map"] = Map,
        ["safe"] = (v, _, _) => v,
        ["e"] = (v, _, _) => Escape(v),
        ["escape"] = (v, _, _) => Escape(v),
        ["striptags"] = (v, _, _) => string.Join(' ', Tags().Replace(Values.Str(v), "").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)),
        ["unique"] = (v, _, _) => Values.Iterate(v).Aggregate(new List<object?>(), (acc, x) => { if (!acc.Any(y => Values.Equals(x, y))) acc.Add(x); return acc; }),
        ["reverse"] = (v, _, _) => v is string s ? Values.Slice(s, null, null, -1L) : Enumerable.Reverse(Values.Iterate(v)).ToList(),
        ["sort"] = Sort,
        ["dictsort"] = (v, _, _) => v is OrderedDictionary<string, object?> d
            ? d.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase).Select(p => (object?)new object?[] { p.Key, p.Value }).ToList()
            : throw new TemplateRuntimeError("dictsort needs a mapping"),
        ["sum"] = (v, a, r) => Values.Iterate(v).Aggregate(a.Get(1, "start", 0L), (acc, x) => Operators.Binary("+", acc, a.Has(0, "attribute") ? r.GetAttributeOrItem(x, a.Get(0, "attribute")) : x)),
        ["min"] = (v, _, _) => Values.Iterate(v) is { Count: > 0 } l ? l.Aggregate((x, y) => Values.Compare(y, x) < 0 ? y : x) : new Undefined("min() of an empty sequence"),
        ["max"] = (v, _, _) => Values.Iterate(v) is { Count: > 0 } l ? l.Aggregate((x, y) => Values.Compare(y, x) > 0 ? y : x) : new Undefined("max() of an empty sequence"),
        ["wordcount"] = (v, _, _) => (long)Words().Matches(Values.Str(v)).Count,
        ["center"] = (v, a, _) => Center(Values.Str(v), (int)Values.ToLong(a.Get(0, "width", 80L))),
        ["indent"] = Indent,
        ["batch"] = (v, a, _) => Values.Iterate(v).Chunk((int)Values.ToLong(a.Required(0, "linecount"))).Select(c => (object?)c.ToList()).ToList(),
    };

    public delegate bool Test(object? value, List<object?> args);

    public static readonly Dictionary<string, Test> Tests = new()
    {
        ["defined"] = (v, _) => v is not Undefined,
        ["undefined"] = (v, _) => v is Undefined,
        ["none"] = (v, _) => v is null,
        ["string"] = (v, _) => v is string,
        ["mapping"] = (v, _) => v is OrderedDictionary<string, object?>,
        ["iterable"] = (v, _) => v is string or List<object?> or object?[] or OrderedDictionary<string, object?> or Undefined,
        ["sequence"] = (v, _) => v is string or List<object?> or object?[] or OrderedDictionary<string, object?>,
        ["number"] = (v, _) => v is long or double or bool,
        ["integer"] = (v, _) => v is long,
        ["float"] = (v, _) => v is double,
        ["boolean"] = (v, _) => v is bool,
        ["true"] = (v, _) => v is true,
        ["false"] = (v, _) => v is false,
        ["callable"] = (v, _) => v is Callable,
        ["odd"] = (v, _) => Values.ToLong(v) % 2 != 0,
        ["even"] = (v, _) => Values.ToLong(v) % 2 == 0,
        ["divisibleby"] = (v, a) => Values.ToLong(v) % Values.ToLong(Arg(a, 0, "divisibleby")) == 0,
        ["lower"] = (v, _) => v is string s && s == s.ToLowerInvariant(),
        ["upper"] = (v, _) => v is string s && s == s.ToUpperInvariant(),
        ["in"] = (v, a) => Values.Contains(Arg(a, 0, "in"), v),
        ["equalto"] = (v, a) => Values.Equals(v, Arg(a, 0, "equalto")),
        ["eq"] = (v, a) => Values.Equals(v, Arg(a, 0, "eq")),
        ["=="] = (v, a) => Values.Equals(v, Arg(a, 0, "==")),
        ["ne"] = (v, a) => !Values.Equals(v, Arg(a, 0, "ne")),
        ["!="] = (v, a) => !Values.Equals(v, Arg(a, 0, "!=")),
        ["sameas"] = (v, a) => Arg(a, 0, "sameas") is var o && (v is null || v is bool ? Values.Equals(v, o) && v?.GetType() == o?.GetType() : ReferenceEquals(v, o)),
        ["lt"] = (v, a) => Values.Compare(v, Arg(a, 0, "lt")) < 0,
        ["<"] = (v, a) => Values.Compare(v, Arg(a, 0, "<")) < 0,
        ["le"] = (v, a) => Values.Compare(v, Arg(a, 0, "le")) <= 0,
        ["<="] = (v, a) => Values.Compare(v, Arg(a, 0, "<=")) <= 0,
        ["gt"] = (v, a) => Values.Compare(v, Arg(a, 0, "gt")) > 0,
        [">"] = (v, a) => Values.Compare(v, Arg(a, 0, ">")) > 0,
        ["ge"] = (v, a) => Values.Compare(v, Arg(a, 0, "ge")) >= 0,
        [">="] = (v, a) => Values.Compare(v, Arg(a, 0, ">=")) >= 0,
    };

    static object? Arg(List<object?> args, int i, string test) =>
        i < args.Count ? args[i] : throw new TemplateRuntimeError($"the '{test}' test needs an argument");

    [GeneratedRegex("<!--.*?-->|<[^>]*>", RegexOptions.Singleline)]
    private static partial Regex Tags();
    [GeneratedRegex(@"\w+")]
    private static partial Regex Words();

    static object? Default(object? v, CallArguments a, Renderer _)
    {
        bool boolean = Values.Truthy(a.Get(1, "boolean", false));
        return v is Undefined || (boolean && !Values.Truthy(v)) ? a.Get(0, "default_value", "") : v;
    }

    static object? ToJson(object? v, CallArguments a)
    {
        object? indent = a.Get(0, "indent");
        var options = new PythonJson.Options
        {
            Indent = indent switch { null or Undefined => null, long n => new string(' ', (int)Math.Max(0, n)), string s => s, _ => throw new TemplateRuntimeError("tojson indent must be an integer or a string") },
            EnsureAscii = Values.Truthy(a.Get(-1, "ensure_ascii", false)),
            SortKeys = Values.Truthy(a.Get(-1, "sort_keys", false)),
        };
        options = options with { ItemSeparator = options.Indent is null ? ", " : "," };
        if (a.Get(-1, "separators") is IList<object?> { Count: 2 } seps)
            options = options with { ItemSeparator = Values.Str(seps[0]), KeySeparator = Values.Str(seps[1]) };
        return PythonJson.Dumps(v, options);
    }

    static object? ToInt(object? v, object? fallback)
    {
        switch (v)
        {
            case long or bool: return Values.ToLong(v);
            case double d: return (long)Math.Truncate(d);
            case string s:
                s = s.Trim().Replace("_", "");
                if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return l;
                if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double x)) return (long)Math.Truncate(x);
                return fallback;
            default: return fallback;
        }
    }

    static object? ToFloat(object? v, object? fallback) => v switch
    {
        long or bool or double => Values.ToDouble(v),
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double x) => x,
        _ => fallback,
    };

    static object? Round(object? v, CallArguments a)
    {
        int precision = (int)Values.ToLong(a.Get(0, "precision", 0L));
        string method = Values.Str(a.Get(1, "method", "common"));
        double x = Values.ToDouble(v), scale = Math.Pow(10, precision);
        double r = method switch
        {
            "common" => Math.Round(x, Math.Clamp(precision, 0, 15), MidpointRounding.ToEven), // Python's round(): halves to even
            "floor" => Math.Floor(x * scale) / scale,
            "ceil" => Math.Ceiling(x * scale) / scale,
            _ => throw new TemplateRuntimeError("round method must be 'common', 'ceil' or 'floor'"),
        };
        return r;
    }

    static object? Select(object? v, CallArguments a, Renderer r, bool byAttribute, bool keep)
    {
        int next = 0;
        object? attribute = byAttribute ? a.Required(next++, "attribute") : null;
        string? test = a.Positional.Count > next ? Values.Str(a.Positional[next++]) : null;
        var testArgs = a.Positional.Skip(next).ToList();
        var result = new List<object?>();
        foreach (var item in Values.Iterate(v))
        {
            object? subject = byAttribute ? r.GetAttributeOrItem(item, attribute) : item;
            bool ok = test is null ? Values.Truthy(subject) : RunTest(test, subject, testArgs);
            if (ok == keep) result.Add(item);
        }
        return result;
    }

    public static bool RunTest(string name, object? value, List<object?> args) =>
        Tests.TryGetValue(name, out var t) ? t(value, args) : throw new TemplateRuntimeError($"unknown test '{name}'");

    static object? Map(object? v, CallArguments a, Renderer r)
    {
        var items = Values.Iterate(v);
        if (a.Has(-1, "attribute"))
        {
            object? attribute = a.Get(-1, "attribute");
            bool hasDefault = a.Has(-1, "default");
            return items.Select(x =>
            {
                var value = r.GetAttributeOrItem(x, attribute);
                return value is Undefined && hasDefault ? a.Get(-1, "default") : value;
            }).ToList();
        }
        string name = Values.Str(a.Required(0, "filter"));
        if (!Filters.TryGetValue(name, out var f)) throw new TemplateRuntimeError($"unknown filter '{name}'");
        var rest = new CallArguments(name, a.Positional.Skip(1).ToList(), a.Named);
        return items.Select(x => f(x, rest, r)).ToList();
    }

    static object? Sort(object? v, CallArguments a, Renderer r)
    {
        bool reverse = Values.Truthy(a.Get(0, "reverse", false));
        bool caseSensitive = Values.Truthy(a.Get(1, "case_sensitive", false));
        object? attribute = a.Get(2, "attribute");
        object? Key(object? x)
        {
            var k = attribute is null ? x : r.GetAttributeOrItem(x, attribute);
            return !caseSensitive && k is string s ? s.ToLowerInvariant() : k;
        }
        var sorted = Values.Iterate(v).Select((x, i) => (x, i)).ToList();
        sorted.Sort((p, q) => { int c = Values.Compare(Key(p.x), Key(q.x)); return c != 0 ? (reverse ? -c : c) : p.i.CompareTo(q.i); });
        return sorted.Select(p => p.x).ToList();
    }

    /// <summary>markupsafe's escape: &amp; &lt; &gt; " ' as entities.</summary>
    static object? Escape(object? v) => Values.Str(v).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;")
        .Replace("\"", "&#34;").Replace("'", "&#39;");

    static object? Indent(object? v, CallArguments a, Renderer _)
    {
        object? width = a.Get(0, "width", 4L);
        string pad = width is string s ? s : new string(' ', (int)Values.ToLong(width));
        bool first = Values.Truthy(a.Get(1, "first", false)), blank = Values.Truthy(a.Get(2, "blank", false));
        var lines = Values.Str(v).Split('\n');
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            if (i > 0) sb.Append('\n');
            if ((i > 0 || first) && (blank || lines[i].Length > 0)) sb.Append(pad);
            sb.Append(lines[i]);
        }
        return sb.ToString();
    }

    static string Center(string s, int width)
    {
        if (s.Length >= width) return s;
        int total = width - s.Length, left = total / 2 + (total & width & 1);
        return new string(' ', left) + s + new string(' ', total - left);
    }

    // ---------------- Python string methods ----------------

    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Jinja's title filter (unlike str.title): each word, split at whitespace, '-', and opening brackets, gets its first
    /// character upper-cased and the rest lower-cased, so "it's" stays "It's".
    /// </summary>
    static string TitleFilter(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool wordStart = true;
        foreach (char c in s)
        {
            bool separator = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
            sb.Append(separator ? c : wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            wordStart = separator;
        }
        return sb.ToString();
    }

    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    static string Replace(string s, object? old, object? replacement, object? count)
    {
        string o = Values.Str(old), n = Values.Str(replacement);
        long max = count is null or Undefined ? -1 : Values.ToLong(count);
        if (max < 0) return o.Length == 0 ? string.Join(n, ["", .. Values.Chars(s), ""]) : s.Replace(o, n, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long k = 0; k < max; k++)
        {
            int at = s.IndexOf(o, pos, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(s, pos, at - pos).Append(n);
            pos = at + o.Length;
            if (o.Length == 0) { if (pos >= s.Length) break; sb.Append(s[pos]); pos++; }
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    static string Strip(string s, object? chars, bool left, bool right)
    {
        Func<char, bool> strip = chars is null or Undefined ? char.IsWhiteSpace : Values.Str(chars).Contains;
        int a = 0, b = s.Length;
        if (left) while (a < b && strip(s[a])) a++;
        if (right) while (b > a && strip(s[b - 1])) b--;
        return s[a..b];
    }

    static List<object?> Split(string s, object? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null or Undefined)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxSplit >= 0 && parts.Count == maxSplit) { parts.Add(s[i..]); break; } // Python keeps the rest as is
                int j = i;
                while (j < s.Length && !char.IsWhiteSpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        string sep = Values.Str(separator);
        if (sep.Length == 0) throw new TemplateRuntimeError("split(): empty separator");
        int pos = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (at < 0) break;
            parts.Add(s[pos..at]);
            pos = at + sep.Length;
        }
        parts.Add(s[pos..]);
        return parts;
    }

    static bool AffixMatch(string s, object? affix, bool start)
    {
        if (affix is object?[] options) return options.Any(o => AffixMatch(s, o, start));
        if (affix is not string a) throw new TemplateRuntimeError($"{(start ? "startswith" : "endswith")}() needs a string, not {Values.TypeName(affix)}");
        return start ? s.StartsWith(a, StringComparison.Ordinal) : s.EndsWith(a, StringComparison.Ordinal);
    }

    /// <summary>The method <paramref name="name"/> of a str, dict or list value, bound to it; null when it has none.</summary>
    public static Callable? Method(object? target, string name)
    {
        Func<CallArguments, object?>? f = target switch
        {
            string s => name switch
            {
                "startswith" => a => AffixMatch(s, a.Required(0, "prefix"), true),
                "endswith" => a => AffixMatch(s, a.Required(0, "suffix"), false),
                "strip" => a => Strip(s, a.Get(0, "chars"), true, true),
                "lstrip" => a => Strip(s, a.Get(0, "chars"), true, false),
                "rstrip" => a => Strip(s, a.Get(0, "chars"), false, true),
                "split" => a => Split(s, a.Get(0, "sep"), Values.ToLong(a.Get(1, "maxsplit", -1L))),
                "rsplit" => a => RSplit(s, a),
                "splitlines" => _ => SplitLines(s),
                "upper" => _ => s.ToUpperInvariant(),
                "lower" => _ => s.ToLowerInvariant(),
                "title" => _ => Title(s),
                "capitalize" => _ => Capitalize(s),
                "replace" => a => Replace(s, a.Required(0, "old"), a.Required(1, "new"), a.Get(2, "count")),
                "find" => a => (long)s.IndexOf(Values.Str(a.Required(0, "sub")), StringComparison.Ordinal),
                "rfind" => a => (long)s.LastIndexOf(Values.Str(a.Required(0, "sub")), StringComparison.Ordinal),
                "count" => a => (long)Regex.Matches(s, Regex.Escape(Values.Str(a.Required(0, "sub")))).Count,
                "join" => a => string.Join(s, Values.Iterate(a.Required(0, "iterable")).Select(Values.Str)),
                "isdigit" => _ => s.Length > 0 && s.All(char.IsDigit),
                "isalpha" => _ => s.Length > 0 && s.All(char.IsLetter),
                "isalnum" => _ => s.Length > 0 && s.All(char.IsLetterOrDigit),
                "isspace" => _ => s.Length > 0 && s.All(char.IsWhiteSpace),
                "islower" => _ => s.Any(char.IsLetter) && s == s.ToLowerInvariant(),
                "isupper" => _ => s.Any(char.IsLetter) && s == s.ToUpperInvariant(),
                "removeprefix" => a => Values.Str(a.Required(0, "prefix")) is var p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s,
                "removesuffix" => a => Values.Str(a.Required(0, "suffix")) is var p && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s,
                "format" => a => Format(s, a),
                "center" => a => Center(s, (int)Values.ToLong(a.Required(0, "width"))),
                _ => null,
            },
            OrderedDictionary<string, object?> d => name switch
            {
                "items" => _ => d.Select(p => (object?)new object?[] { p.Key, p.Value }).ToList(),
                "keys" => _ => d.Keys.Cast<object?>().ToList(),
                "values" => _ => d.Values.ToList(),
                "get" => a => a.Required(0, "key") is string k && d.TryGetValue(k, out var v) ? v : a.Get(1, "default"),
                _ => null,
            },
            List<object?> l => name switch
            {
                "index" => a => (long)l.FindIndex(x => Values.Equals(x, a.Required(0, "value"))) is var at && at >= 0 ? at
                    : throw new TemplateRuntimeError($"{Values.Repr(a.Get(0, "value"))} is not in list"),
                "count" => a => (long)l.Count(x => Values.Equals(x, a.Required(0, "value"))),
                _ => null,
            },
            _ => null,
        };
        return f is null ? null : new Callable($"{Values.TypeName(target)}.{name}", f);
    }

    static List<object?> SplitLines(string s)
    {
        var lines = s.Split('\n').Select(x => (object?)x).ToList();
        if (s.EndsWith('\n')) lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    static object? RSplit(string s, CallArguments a)
    {
        long max = Values.ToLong(a.Get(1, "maxsplit", -1L));
        object? sep = a.Get(0, "sep");
        if (max < 0 || sep is null or Undefined) return Split(s, sep, max);
        string p = Values.Str(sep);
        var parts = new List<object?>();
        int end = s.Length;
        while (parts.Count < max)
        {
            int at = end - p.Length < 0 ? -1 : s.LastIndexOf(p, end - 1, end, StringComparison.Ordinal);
            if (at < 0 || at + p.Length > end) break;
            parts.Insert(0, s[(at + p.Length)..end]);
            end = at;
        }
        parts.Insert(0, s[..end]);
        return parts;
    }

    /// <summary>str.format with {} / {0} / {name} fields (no format specs).</summary>
    static string Format(string s, CallArguments a)
    {
        int auto = 0;
        return FormatFields().Replace(s, m =>
        {
            if (m.Value == "{{") return "{";
            if (m.Value == "}}") return "}";
            string field = m.Groups[1].Value;
            if (field.Length == 0) return Values.Str(a.Get(auto++, "\0"));
            if (int.TryParse(field, out int n)) return Values.Str(a.Get(n, "\0"));
            return Values.Str(a.Get(-1, field, new Undefined($"'{field}' is undefined")));
        });
    }

    [GeneratedRegex(@"\{\{|\}\}|\{([A-Za-z0-9_]*)\}")]
    private static partial Regex FormatFields();
}
