using System.Globalization;
using System.Text;

namespace Tandem.Tokenizers.Templates;

/// <summary>
/// Executes a parsed template. Scopes follow Jinja: a for-loop body and a macro body get their own scope (a 'set'
/// inside them is not seen after them), an if-block does not; namespace() objects are how templates carry values out
/// of a loop. Errors are reported at the innermost expression or statement that failed.
/// </summary>
sealed class Renderer
{
    sealed class Scope(Scope? parent)
    {
        public readonly Dictionary<string, object?> Vars = new();
        public readonly Scope? Parent = parent;

        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s is not null; s = s.Parent)
                if (s.Vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
    }

    enum Flow { Normal, Break, Continue }

    /// <summary>Deeper macro recursion is an error, not a stack overflow that would take the process down.</summary>
    const int MaxCallDepth = 100;

    readonly TimeProvider clock;
    readonly Scope globals = new(null);
    int callDepth;

    public Renderer(IReadOnlyDictionary<string, object?> variables, TimeProvider clock)
    {
        this.clock = clock;
        globals.Vars["range"] = new Callable("range", Range);
        globals.Vars["namespace"] = new Callable("namespace", a =>
        {
            var ns = new Namespace();
            foreach (var p in a.Positional)
            {
                if (p is not OrderedDictionary<string, object?> d) throw new TemplateRuntimeError("namespace() takes keyword arguments or a dict");
                foreach (var (k, v) in d) ns.Attributes[k] = v;
            }
            foreach (var (k, v) in a.Named) ns.Attributes[k] = v;
            return ns;
        });
        globals.Vars["dict"] = new Callable("dict", a =>
        {
            var d = new OrderedDictionary<string, object?>();
            foreach (var p in a.Positional)
                if (p is OrderedDictionary<string, object?> src) foreach (var (k, v) in src) d[k] = v;
            foreach (var (k, v) in a.Named) d[k] = v;
            return d;
        });
        globals.Vars["raise_exception"] = new Callable("raise_exception",
            a => throw new RaisedError(Values.Str(a.Get(0, "message", ""))));
        globals.Vars["strftime_now"] = new Callable("strftime_now",
            a => Strftime(clock.GetLocalNow().DateTime, Values.Str(a.Required(0, "format"))));
        foreach (var (k, v) in variables) globals.Vars[k] = Values.Import(v);
    }

    sealed class RaisedError(string message) : Exception(message);

    public string Render(List<Node> nodes)
    {
        var sb = new StringBuilder();
        var flow = RenderBody(nodes, sb, new Scope(globals));
        if (flow != Flow.Normal) throw new TemplateException($"'{(flow == Flow.Break ? "break" : "continue")}' outside a loop", 1, 1);
        return sb.ToString();
    }

    Flow RenderBody(List<Node> nodes, StringBuilder sb, Scope scope)
    {
        foreach (var node in nodes)
        {
            var flow = RenderNode(node, sb, scope);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    Flow RenderNode(Node node, StringBuilder sb, Scope scope)
    {
        switch (node)
        {
            case TextNode t: sb.Append(t.Text); return Flow.Normal;
            case PrintNode p: sb.Append(Values.Str(Eval(p.Value, scope))); return Flow.Normal;
            case IfNode n:
                foreach (var (test, body) in n.Branches)
                    if (Values.Truthy(Eval(test, scope))) return RenderBody(body, sb, scope);
                return n.Else is null ? Flow.Normal : RenderBody(n.Else, sb, scope);
            case ForNode f: RenderFor(f, sb, scope); return Flow.Normal;
            case SetNode s: Assign(s.Target, Eval(s.Value, scope), scope); return Flow.Normal;
            case SetBlockNode s:
            {
                var inner = new StringBuilder();
                RenderBody(s.Body, inner, scope);
                Assign(s.Target, ApplyFilters(s.Filters, inner.ToString(), scope), scope);
                return Flow.Normal;
            }
            case FilterBlockNode f:
            {
                var inner = new StringBuilder();
                RenderBody(f.Body, inner, scope);
                sb.Append(Values.Str(ApplyFilters(f.Filters, inner.ToString(), scope)));
                return Flow.Normal;
            }
            case MacroNode m: scope.Vars[m.Name] = MakeMacro(m, scope); return Flow.Normal;
            case ScopeNode s: return RenderBody(s.Body, sb, scope);
            case BreakNode: return Flow.Break;
            case ContinueNode: return Flow.Continue;
            default: throw new TemplateException($"cannot render {node.GetType().Name}", node.Line, node.Column);
        }
    }

    void RenderFor(ForNode f, StringBuilder sb, Scope scope)
    {
        var source = Guard(f.Iterable, () => Values.Iterate(Eval(f.Iterable, scope)));
        var items = source;
        if (f.Filter is not null)
        {
            items = [];
            foreach (var item in source)
            {
                var probe = new Scope(scope);
                Assign(f.Target, item, probe);
                if (Values.Truthy(Eval(f.Filter, probe))) items.Add(item);
            }
        }
        if (items.Count == 0)
        {
            if (f.Else is not null) RenderBody(f.Else, sb, scope);
            return;
        }
        // loop.depth counts recursive-loop levels, which are not supported: a nested for loop is depth 1 too, as in Jinja.
        var loop = new LoopInfo { Length = items.Count };
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            loop.Previous = i > 0 ? items[i - 1] : Values.Missing;
            loop.Next = i + 1 < items.Count ? items[i + 1] : Values.Missing;
            var body = new Scope(scope);
            body.Vars["loop"] = loop;
            Assign(f.Target, items[i], body);
            if (RenderBody(f.Body, sb, body) == Flow.Break) break;
        }
    }

    void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameExpr n: scope.Vars[n.Name] = value; break;
            case AttrExpr { Target: NameExpr owner } a:
                if (!scope.TryGet(owner.Name, out var ns) || ns is not Namespace nsObject)
                    throw new TemplateException($"cannot assign attribute '{a.Name}' on '{owner.Name}': only a namespace() object's attributes can be set", a.Line, a.Column);
                nsObject.Attributes[a.Name] = value;
                break;
            case TupleExpr t:
            {
                var items = Guard(t, () => Values.Iterate(value));
                if (items.Count != t.Items.Count)
                    throw new TemplateException($"cannot unpack {items.Count} values into {t.Items.Count} names", t.Line, t.Column);
                for (int i = 0; i < items.Count; i++) Assign(t.Items[i], items[i], scope);
                break;
            }
            default: throw new TemplateException("cannot assign to this expression", target.Line, target.Column);
        }
    }

    Callable MakeMacro(MacroNode m, Scope definedIn) => new(m.Name, args =>
    {
        if (args.Positional.Count > m.Parameters.Count)
            throw new TemplateRuntimeError($"macro '{m.Name}' takes not more than {m.Parameters.Count} argument(s)");
        var scope = new Scope(definedIn);
        for (int i = 0; i < m.Parameters.Count; i++)
        {
            string p = m.Parameters[i];
            if (args.Has(i, p)) scope.Vars[p] = args.Get(i, p);
            else scope.Vars[p] = m.Defaults[i] is { } d ? Eval(d, scope) : new Undefined($"'{p}' is undefined");
        }
        foreach (var (n, _) in args.Named)
            if (!m.Parameters.Contains(n)) throw new TemplateRuntimeError($"macro '{m.Name}' takes no keyword argument '{n}'");
        if (++callDepth > MaxCallDepth)
        {
            callDepth = 0;
            throw new TemplateRuntimeError($"macro '{m.Name}' recursed more than {MaxCallDepth} calls deep");
        }
        try
        {
            var sb = new StringBuilder();
            RenderBody(m.Body, sb, scope);
            return sb.ToString();
        }
        finally { if (callDepth > 0) callDepth--; }
    });

    object? ApplyFilters(List<FilterExpr> filters, object? value, Scope scope)
    {
        foreach (var f in filters) value = ApplyFilter(f, value, scope);
        return value;
    }

    object? ApplyFilter(FilterExpr f, object? value, Scope scope)
    {
        var args = EvalArguments(f.Name, f.Args, f.Kwargs, scope);
        return Guard(f, () => Builtins.Filters[f.Name](value, args, this));
    }

    CallArguments EvalArguments(string function, List<Expr> args, List<(string Name, Expr Value)> kwargs, Scope scope) =>
        new(function, args.Select(a => Eval(a, scope)).ToList(), kwargs.Select(k => (k.Name, Eval(k.Value, scope))).ToList());

    /// <summary>Runs <paramref name="action"/>, turning a runtime error into a TemplateException at <paramref name="at"/>.</summary>
    static T Guard<T>(Node at, Func<T> action)
    {
        try { return action(); }
        catch (TemplateRuntimeError e) { throw new TemplateException(e.Message, at.Line, at.Column); }
        catch (RaisedError e) { throw new TemplateRaisedException(e.Message, at.Line, at.Column); }
    }

    object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case ConstExpr c: return c.Value;
            case NameExpr n: return scope.TryGet(n.Name, out var v) ? v : new Undefined($"'{n.Name}' is undefined");
            case AttrExpr a: { var target = Eval(a.Target, scope); return Guard(a, () => GetAttribute(target, a.Name)); }
            case ItemExpr i: { var target = Eval(i.Target, scope); var key = Eval(i.Key, scope); return Guard(i, () => GetItem(target, key)); }
            case SliceExpr s:
            {
                var target = Eval(s.Target, scope);
                object? a = s.Start is null ? null : Eval(s.Start, scope), b = s.Stop is null ? null : Eval(s.Stop, scope), c = s.Step is null ? null : Eval(s.Step, scope);
                return Guard(s, () => Values.Slice(target, a, b, c));
            }
            case CallExpr call:
            {
                var callee = Eval(call.Callee, scope);
                var args = EvalArguments(call.Callee is NameExpr ne ? ne.Name : call.Callee is AttrExpr ae ? ae.Name : "function", call.Args, call.Kwargs, scope);
                return Guard(call, () => callee switch
                {
                    Callable f => f.Invoke(args),
                    Undefined u => throw new TemplateRuntimeError(u.Description),
                    _ => throw new TemplateRuntimeError($"'{Values.TypeName(callee)}' object is not callable"),
                });
            }
            case FilterExpr f: return ApplyFilter(f, Eval(f.Target!, scope), scope);
            case TestExpr t:
            {
                var value = Eval(t.Target, scope);
                var args = t.Args.Select(a => Eval(a, scope)).ToList();
                return Guard(t, () => Builtins.RunTest(t.Name, value, args) != t.Negated);
            }
            case UnaryExpr u: { var v1 = Eval(u.Operand, scope); return Guard(u, () => Operators.Unary(u.Op, v1)); }
            case BinaryExpr { Op: "and" } b: { var l = Eval(b.Left, scope); return Values.Truthy(l) ? Eval(b.Right, scope) : l; }
            case BinaryExpr { Op: "or" } b: { var l = Eval(b.Left, scope); return Values.Truthy(l) ? l : Eval(b.Right, scope); }
            case BinaryExpr b: { var l = Eval(b.Left, scope); var r = Eval(b.Right, scope); return Guard(b, () => Operators.Binary(b.Op, l, r)); }
            case CompareExpr c:
            {
                var left = Eval(c.First, scope);
                foreach (var (op, operand) in c.Rest)
                {
                    var right = Eval(operand, scope);
                    if (!Guard(c, () => Operators.Compare(op, left, right))) return false;
                    left = right;
                }
                return true;
            }
            case CondExpr c:
                return Values.Truthy(Eval(c.Test, scope)) ? Eval(c.Then, scope)
                    : c.Else is null ? new Undefined("the conditional expression had no else branch") : Eval(c.Else, scope);
            case ListExpr l: return l.Items.Select(x => Eval(x, scope)).ToList();
            case TupleExpr t: return t.Items.Select(x => Eval(x, scope)).ToArray();
            case DictExpr d:
            {
                var dict = new OrderedDictionary<string, object?>();
                foreach (var (k, val) in d.Items)
                {
                    var key = Eval(k, scope);
                    if (key is not string ks) throw new TemplateException($"dict keys must be strings here, not {Values.TypeName(key)}", k.Line, k.Column);
                    dict[ks] = Eval(val, scope);
                }
                return dict;
            }
            default: throw new TemplateException($"cannot evaluate {e.GetType().Name}", e.Line, e.Column);
        }
    }

    /// <summary>obj.name as Jinja does it: Python attributes (methods) first, then the item with that key.</summary>
    public object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined u: throw new TemplateRuntimeError(u.Description);
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var v) ? v : new Undefined($"'Namespace' object has no attribute '{name}'");
            case LoopInfo loop: return LoopAttribute(loop, name);
        }
        if (Builtins.Method(target, name) is { } method) return method;
        if (target is OrderedDictionary<string, object?> d && d.TryGetValue(name, out var item)) return item;
        return new Undefined($"'{Values.TypeName(target)} object' has no attribute '{name}'");
    }

    /// <summary>obj[key] as Jinja does it: the item first, then (for a string key) the attribute.</summary>
    public object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined u: throw new TemplateRuntimeError(u.Description);
            case OrderedDictionary<string, object?> d when key is string k && d.TryGetValue(k, out var v): return v;
            case List<object?> or object?[] when key is long or bool:
            {
                var list = (IList<object?>)target;
                long i = Values.ToLong(key);
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : new Undefined($"{Values.TypeName(target)} index {key} out of range");
            }
            case string s when key is long or bool:
            {
                var chars = Values.HasSurrogates(s) ? Values.Chars(s) : null;
                long n = chars?.Count ?? s.Length, i = Values.ToLong(key);
                if (i < 0) i += n;
                return i >= 0 && i < n ? (chars is null ? s[(int)i].ToString() : chars[(int)i]) : new Undefined($"string index {key} out of range");
            }
        }
        if (key is string name) return GetAttribute(target, name);
        return new Undefined($"'{Values.TypeName(target)} object' has no item {Values.Repr(key)}");
    }

    /// <summary>For filters with attribute=: "a.b" walks into nested values, an integer indexes.</summary>
    public object? GetAttributeOrItem(object? target, object? attribute)
    {
        if (attribute is long) return GetItem(target, attribute);
        foreach (var part in Values.Str(attribute).Split('.'))
        {
            if (target is Undefined) return target;
            target = long.TryParse(part, CultureInfo.InvariantCulture, out long n) ? GetItem(target, n) : GetItem(target, part);
        }
        return target;
    }

    static object? LoopAttribute(LoopInfo loop, string name) => name switch
    {
        "index" => loop.Index0 + 1,
        "index0" => loop.Index0,
        "revindex" => loop.Length - loop.Index0,
        "revindex0" => loop.Length - loop.Index0 - 1,
        "first" => loop.Index0 == 0,
        "last" => loop.Index0 == loop.Length - 1,
        "length" => loop.Length,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => loop.Previous == Values.Missing ? new Undefined("there is no previous item") : loop.Previous,
        "nextitem" => loop.Next == Values.Missing ? new Undefined("there is no next item") : loop.Next,
        "cycle" => new Callable("loop.cycle", a => a.Positional.Count == 0
            ? throw new TemplateRuntimeError("loop.cycle() needs at least one item")
            : a.Positional[(int)(loop.Index0 % a.Positional.Count)]),
        _ => new Undefined($"'LoopContext' object has no attribute '{name}'"),
    };

    static object? Range(CallArguments a)
    {
        long start = 0, stop, step = 1;
        if (a.Positional.Count == 1) stop = Values.ToLong(a.Positional[0]);
        else if (a.Positional.Count is 2 or 3)
        {
            start = Values.ToLong(a.Positional[0]);
            stop = Values.ToLong(a.Positional[1]);
            if (a.Positional.Count == 3) step = Values.ToLong(a.Positional[2]);
        }
        else throw new TemplateRuntimeError("range() takes 1 to 3 arguments");
        if (step == 0) throw new TemplateRuntimeError("range() step must not be zero");
        var result = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (result.Count >= 100_000) throw new TemplateRuntimeError("range() is too large (the limit is 100000 items)");
            result.Add(i);
        }
        return result;
    }

    /// <summary>Python's strftime for the directives templates use (%d %b %Y, %B, %H:%M …), in English.</summary>
    static string Strftime(DateTime t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            sb.Append(c switch
            {
                'd' => t.ToString("dd", inv),
                'm' => t.ToString("MM", inv),
                'Y' => t.ToString("yyyy", inv),
                'y' => t.ToString("yy", inv),
                'b' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'H' => t.ToString("HH", inv),
                'I' => t.ToString("hh", inv),
                'M' => t.ToString("mm", inv),
                'S' => t.ToString("ss", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", inv),
                'e' => t.Day.ToString(inv).PadLeft(2),
                '-' when i + 1 < format.Length => format[++i] switch
                {
                    'd' => t.Day.ToString(inv),
                    'm' => t.Month.ToString(inv),
                    'H' => t.Hour.ToString(inv),
                    _ => "%-" + format[i],
                },
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
