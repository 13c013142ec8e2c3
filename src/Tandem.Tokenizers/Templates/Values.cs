using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tandem.Tokenizers.Templates;

// Template values follow Python's data model, since that is what Jinja (and so every chat template) computes with:
//   null                                   None
//   bool, long, double, string             bool, int, float, str
//   List<object?>                          list
//   object?[]                              tuple
//   OrderedDictionary<string, object?>     dict (insertion order kept, as json.dumps writes it)
//   Undefined                              jinja2.Undefined: prints as "", is falsy, iterates as empty
//   Namespace, Macro, Callable, LoopInfo   namespace(), macros, functions and bound methods, the 'loop' variable

/// <summary>Jinja's default Undefined: what a missing variable, key or attribute evaluates to.</summary>
sealed class Undefined(string description)
{
    /// <summary>Says what was missing, e.g. "'foo' is undefined" or "'dict object' has no attribute 'x'".</summary>
    public string Description { get; } = description;
    public override string ToString() => "";
}

sealed class Namespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new();
}

/// <summary>A function the template can call: builtins, bound string/dict methods, macros, loop.cycle.</summary>
sealed class Callable(string name, Func<CallArguments, object?> invoke)
{
    public string Name { get; } = name;
    public object? Invoke(CallArguments args) => invoke(args);
}

sealed class LoopInfo
{
    public long Index0;
    public long Length;
    public object? Previous = Values.Missing;
    public object? Next = Values.Missing;
}

/// <summary>Evaluated call arguments with Python's binding rules for named parameters.</summary>
sealed class CallArguments(string function, List<object?> positional, List<(string Name, object? Value)> named)
{
    public string Function { get; } = function;
    public List<object?> Positional { get; } = positional;
    public List<(string Name, object? Value)> Named { get; } = named;

    /// <summary>The argument at position <paramref name="index"/> or named <paramref name="name"/>, else the default.</summary>
    public object? Get(int index, string name, object? fallback = null)
    {
        foreach (var (n, v) in Named) if (n == name) return v;
        return index >= 0 && index < Positional.Count ? Positional[index] : fallback;
    }
    public bool Has(int index, string name) => (index >= 0 && index < Positional.Count) || Named.Exists(a => a.Name == name);

    public object? Required(int index, string name) =>
        Has(index, name) ? Get(index, name) : throw new TemplateRuntimeError($"{Function}() is missing its '{name}' argument");

    /// <summary>Fails on more positional arguments than <paramref name="max"/> or a name not in <paramref name="known"/>.</summary>
    public CallArguments Check(int max, params string[] known)
    {
        if (Positional.Count > max)
            throw new TemplateRuntimeError($"{Function}() takes at most {max} positional argument{(max == 1 ? "" : "s")}, {Positional.Count} given");
        foreach (var (n, _) in Named)
            if (!known.Contains(n)) throw new TemplateRuntimeError($"{Function}() got an unexpected keyword argument '{n}'");
        return this;
    }
}

/// <summary>An error while rendering; the renderer adds the template position of the expression that raised it.</summary>
sealed class TemplateRuntimeError(string message) : Exception(message);

static class Values
{
    /// <summary>Marks "no value" where None is a value (loop.previtem on the first item).</summary>
    public static readonly object Missing = new Undefined("there is no such item");

    /// <summary>Converts a host (JSON-like .NET) value to a template value, recursively.</summary>
    public static object? Import(object? v) => v switch
    {
        null => null,
        string or bool or long or double or Undefined or Namespace or Callable => v,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        ulong ul => (long)ul,
        float f => (double)f,
        decimal m => (double)m,
        char c => c.ToString(),
        Enum e => e.ToString(),
        JsonElement je => ImportJson(je),
        JsonNode jn => ImportJson(JsonSerializer.SerializeToElement(jn)),
        OrderedDictionary<string, object?> d => ImportDictionary(d),
        IDictionary<string, object?> d => ImportDictionary(d),
        IReadOnlyDictionary<string, object?> d => ImportDictionary(d),
        IDictionary d => ImportDictionary(d.Keys.Cast<object>().Select(k => new KeyValuePair<string, object?>(Convert.ToString(k, CultureInfo.InvariantCulture)!, d[k]))),
        object?[] a => a.Select(Import).ToArray(),
        IEnumerable e => e.Cast<object?>().Select(Import).ToList(),
        _ => throw new ArgumentException($"a template value must be JSON-like (dictionary, list, string, number, bool or null), not {v.GetType().Name}"),
    };

    static OrderedDictionary<string, object?> ImportDictionary(IEnumerable<KeyValuePair<string, object?>> d)
    {
        var result = new OrderedDictionary<string, object?>();
        foreach (var (k, v) in d) result[k] = Import(v);
        return result;
    }

    static object? ImportJson(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var d = new OrderedDictionary<string, object?>();
                foreach (var p in e.EnumerateObject()) d[p.Name] = ImportJson(p.Value);
                return d;
            case JsonValueKind.Array: return e.EnumerateArray().Select(ImportJson).ToList();
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.Number: return e.TryGetInt64(out long l) ? (object)l : e.GetDouble();
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            default: return null;
        }
    }

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "Namespace",
        LoopInfo => "LoopContext",
        Callable => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python truthiness.</summary>
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>Python's str(): what {{ value }} prints.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        _ => Repr(v),
    };

    /// <summary>Python's repr(), used for values inside printed lists and dicts.</summary>
    public static string Repr(object? v)
    {
        switch (v)
        {
            case string s: return StringRepr(s);
            case List<object?> list: return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case object?[] tuple: return tuple.Length == 1 ? "(" + Repr(tuple[0]) + ",)" : "(" + string.Join(", ", tuple.Select(Repr)) + ")";
            case OrderedDictionary<string, object?> d: return "{" + string.Join(", ", d.Select(p => StringRepr(p.Key) + ": " + Repr(p.Value))) + "}";
            case Namespace ns: return "<Namespace " + Repr(ns.Attributes) + ">";
            case Callable c: return $"<function {c.Name}>";
            case LoopInfo: return "<LoopContext>";
            default: return Str(v);
        }
    }

    static string StringRepr(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>Python's repr() of a float: the shortest round-trip digits, exponent form below 1e-4 or from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // Shortest round-trip digits: "R" gives them, in either fixed or exponent form; normalize to digits + exponent.
        string shortest = d.ToString("R", CultureInfo.InvariantCulture);
        bool negative = shortest[0] == '-';
        if (negative) shortest = shortest[1..];
        int exp;
        string mantissa;
        int e = shortest.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exp = int.Parse(shortest[(e + 1)..], CultureInfo.InvariantCulture);
            mantissa = shortest[..e];
        }
        else { exp = 0; mantissa = shortest; }
        int dot = mantissa.IndexOf('.');
        string digits = dot >= 0 ? mantissa.Remove(dot, 1) : mantissa;
        int pointPos = (dot >= 0 ? dot : mantissa.Length) + exp; // digits[0..pointPos) is the integer part
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; pointPos--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int sciExp = pointPos - 1;
        string body;
        if (sciExp < -4 || sciExp >= 16)
        {
            body = digits[..1] + (digits.Length > 1 ? "." + digits[1..] : "") + "e" + (sciExp < 0 ? "-" : "+") + Math.Abs(sciExp).ToString("00", CultureInfo.InvariantCulture);
        }
        else if (pointPos <= 0) body = "0." + new string('0', -pointPos) + digits;
        else if (pointPos >= digits.Length) body = digits + new string('0', pointPos - digits.Length) + ".0";
        else body = digits[..pointPos] + "." + digits[pointPos..];
        return negative ? "-" + body : body;
    }

    /// <summary>Python ==, including 1 == 1.0 == True and element-wise list and dict equality.</summary>
    public static new bool Equals(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        if (a is string sa) return b is string sb && sa == sb;
        if (a is List<object?> la) return b is List<object?> lb && la.Count == lb.Count && la.Zip(lb).All(p => Equals(p.First, p.Second));
        if (a is object?[] ta) return b is object?[] tb && ta.Length == tb.Length && ta.Zip(tb).All(p => Equals(p.First, p.Second));
        if (a is OrderedDictionary<string, object?> da)
            return b is OrderedDictionary<string, object?> db && da.Count == db.Count
                && da.All(p => db.TryGetValue(p.Key, out var v) && Equals(p.Value, v));
        return ReferenceEquals(a, b);
    }

    /// <summary>Python ordering (&lt;, &gt;…) between numbers, strings, or lists of them.</summary>
    public static int Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a).CompareTo(ToDouble(b)) : ToLong(a).CompareTo(ToLong(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb) switch { < 0 => -1, > 0 => 1, _ => 0 };
        if (a is IList la && b is IList lb && (a is List<object?>) == (b is List<object?>))
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (Equals(la[i], lb[i])) continue;
                return Compare(la[i], lb[i]);
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new TemplateRuntimeError($"'<' is not supported between {TypeName(a)} and {TypeName(b)}");
    }

    public static double ToDouble(object? v) => v switch
    {
        double d => d,
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new TemplateRuntimeError($"expected a number, got {TypeName(v)}"),
    };

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new TemplateRuntimeError($"expected an integer, got {TypeName(v)}"),
    };

    /// <summary>The items iterating over a value yields: list items, dict keys, string characters; Undefined is empty.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        List<object?> l => l,
        object?[] t => [.. t],
        OrderedDictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => Chars(s).Cast<object?>().ToList(),
        Undefined => [],
        _ => throw new TemplateRuntimeError($"'{TypeName(v)}' object is not iterable"),
    };

    /// <summary>A string's characters as Python counts them: code points (a surrogate pair is one).</summary>
    public static List<string> Chars(string s)
    {
        var result = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { result.Add(s.Substring(i, 2)); i++; }
            else result.Add(s[i].ToString());
        }
        return result;
    }

    public static bool HasSurrogates(string s)
    {
        foreach (char c in s) if (char.IsSurrogate(c)) return true;
        return false;
    }

    public static long Length(object? v) => v switch
    {
        string s => HasSurrogates(s) ? Chars(s).Count : s.Length,
        ICollection c => c.Count,
        Namespace ns => ns.Attributes.Count,
        Undefined => 0,
        _ => throw new TemplateRuntimeError($"object of type '{TypeName(v)}' has no len()"),
    };

    /// <summary>'a in b': substring, list membership or dict key.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : throw new TemplateRuntimeError($"'in <string>' requires a string as left operand, not {TypeName(item)}"),
        OrderedDictionary<string, object?> d => item is string k && d.ContainsKey(k),
        List<object?> or object?[] => Iterate(container).Any(x => Equals(x, item)),
        Undefined => false,
        _ => throw new TemplateRuntimeError($"argument of type '{TypeName(container)}' is not iterable"),
    };

    /// <summary>Python slicing of a list, tuple or string (negative bounds count from the end; step may be negative).</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        long st = step is null or Undefined ? 1 : ToLong(step);
        if (st == 0) throw new TemplateRuntimeError("slice step cannot be zero");
        IList? items = target switch
        {
            string s => HasSurrogates(s) ? Chars(s) : s.ToCharArray(),
            List<object?> l => l,
            object?[] t => t,
            Undefined u => throw new TemplateRuntimeError(u.Description),
            _ => null,
        };
        // Jinja's getitem turns "not subscriptable" into Undefined, as for a missing key.
        if (items is null) return new Undefined($"'{TypeName(target)}' object is not subscriptable");
        long n = items.Count;
        long Bound(object? v, long whenMissing)
        {
            if (v is null or Undefined) return whenMissing;
            long x = ToLong(v);
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long a = Bound(start, st > 0 ? 0 : n - 1), b = Bound(stop, st > 0 ? n : -1);
        var picked = new List<object?>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) picked.Add(items[(int)i]);
        return target switch
        {
            string => string.Concat(picked.Select(x => x is char c ? c.ToString() : (string)x!)),
            object?[] => picked.ToArray(),
            _ => picked,
        };
    }
}
