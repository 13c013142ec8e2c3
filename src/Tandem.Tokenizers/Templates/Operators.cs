using System.Globalization;
using System.Text;

namespace Tandem.Tokenizers.Templates;

/// <summary>Python's arithmetic and string operators on template values (int / int is a float, // and % floor).</summary>
static class Operators
{
    public static object? Binary(string op, object? a, object? b)
    {
        if (op == "~") return Values.Str(a) + Values.Str(b);
        if (a is Undefined u) throw new TemplateRuntimeError(u.Description);
        if (b is Undefined v) throw new TemplateRuntimeError(v.Description);
        if (Values.IsNumber(a) && Values.IsNumber(b))
        {
            bool floating = a is double || b is double;
            switch (op)
            {
                case "+": return floating ? (object)(Values.ToDouble(a) + Values.ToDouble(b)) : Values.ToLong(a) + Values.ToLong(b);
                case "-": return floating ? (object)(Values.ToDouble(a) - Values.ToDouble(b)) : Values.ToLong(a) - Values.ToLong(b);
                case "*": return floating ? (object)(Values.ToDouble(a) * Values.ToDouble(b)) : Values.ToLong(a) * Values.ToLong(b);
                case "/":
                    if (Values.ToDouble(b) == 0) throw new TemplateRuntimeError("division by zero");
                    return Values.ToDouble(a) / Values.ToDouble(b);
                case "//":
                    if (Values.ToDouble(b) == 0) throw new TemplateRuntimeError("integer division or modulo by zero");
                    if (floating) return Math.Floor(Values.ToDouble(a) / Values.ToDouble(b));
                    return FloorDiv(Values.ToLong(a), Values.ToLong(b));
                case "%":
                    if (Values.ToDouble(b) == 0) throw new TemplateRuntimeError("integer division or modulo by zero");
                    if (floating)
                    {
                        double x = Values.ToDouble(a), y = Values.ToDouble(b), m = x % y;
                        if (m == 0) return Math.CopySign(0.0, y); // Python's float % takes the divisor's sign, zero included
                        return (m < 0) != (y < 0) ? m + y : m;
                    }
                    long p = Values.ToLong(a), q = Values.ToLong(b);
                    return p - FloorDiv(p, q) * q;
                case "**":
                    if (!floating && Values.ToLong(b) >= 0)
                    {
                        long result = 1, x = Values.ToLong(a);
                        for (long k = Values.ToLong(b); k > 0; k--) result *= x;
                        return result;
                    }
                    return Math.Pow(Values.ToDouble(a), Values.ToDouble(b));
            }
        }
        switch (op)
        {
            case "+" when a is string sa && b is string sb: return sa + sb;
            case "+" when a is List<object?> la && b is List<object?> lb: return la.Concat(lb).ToList();
            case "+" when a is object?[] ta && b is object?[] tb: return ta.Concat(tb).ToArray();
            case "*" when a is string s && b is long or bool: return Repeat(s, Values.ToLong(b));
            case "*" when b is string s && a is long or bool: return Repeat(s, Values.ToLong(a));
            case "*" when a is List<object?> l && b is long or bool: return Enumerable.Repeat(l, (int)Math.Max(0, Values.ToLong(b))).SelectMany(x => x).ToList();
            case "*" when b is List<object?> l && a is long or bool: return Enumerable.Repeat(l, (int)Math.Max(0, Values.ToLong(a))).SelectMany(x => x).ToList();
            case "%" when a is string format: return PercentFormat(format, b);
        }
        throw new TemplateRuntimeError($"unsupported operand types for {op}: '{Values.TypeName(a)}' and '{Values.TypeName(b)}'");
    }

    static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
    }

    static string Repeat(string s, long n)
    {
        var sb = new StringBuilder();
        for (long k = 0; k < n; k++) sb.Append(s);
        return sb.ToString();
    }

    /// <summary>printf-style 'format' % args with %s, %d, %r and %%.</summary>
    static string PercentFormat(string format, object? args)
    {
        var items = args is object?[] t ? t : [args];
        int next = 0;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            if (c == '%') { sb.Append('%'); continue; }
            if (next >= items.Length) throw new TemplateRuntimeError("not enough arguments for format string");
            object? v = items[next++];
            sb.Append(c switch
            {
                's' => Values.Str(v),
                'r' => Values.Repr(v),
                'd' or 'i' => Values.ToLong(v).ToString(CultureInfo.InvariantCulture),
                _ => throw new TemplateRuntimeError($"unsupported format character '{c}'"),
            });
        }
        // Python ignores unused arguments only when they come as a mapping-like value (dict, list).
        if (next < items.Length && args is not (List<object?> or OrderedDictionary<string, object?>)) throw new TemplateRuntimeError("not all arguments converted during string formatting");
        return sb.ToString();
    }

    public static object? Unary(string op, object? v)
    {
        if (op == "not") return !Values.Truthy(v);
        if (v is Undefined u) throw new TemplateRuntimeError(u.Description);
        return (op, v) switch
        {
            ("-", double d) => (object)(-d),
            ("-", long or bool) => -Values.ToLong(v),
            ("+", double d) => d,
            ("+", long or bool) => Values.ToLong(v),
            _ => throw new TemplateRuntimeError($"bad operand type for unary {op}: '{Values.TypeName(v)}'"),
        };
    }

    public static bool Compare(string op, object? a, object? b) => op switch
    {
        "==" => Values.Equals(a, b),
        "!=" => !Values.Equals(a, b),
        "<" => Values.Compare(a, b) < 0,
        "<=" => Values.Compare(a, b) <= 0,
        ">" => Values.Compare(a, b) > 0,
        ">=" => Values.Compare(a, b) >= 0,
        "in" => Values.Contains(b, a),
        "not in" => !Values.Contains(b, a),
        _ => throw new TemplateRuntimeError($"unknown comparison {op}"),
    };
}
