namespace Tandem.Tokenizers.Templates;

/// <summary>
/// Recursive-descent parser over the lexer's tokens, with Jinja's grammar and operator precedence (loosest first):
/// conditional 'a if c else b'; or; and; not; comparisons and 'in' / 'not in'; + -; ~; * / // %; **; unary - +;
/// then a primary with its postfixes (.attr, [key], [a:b:c], (call)) and filters ('|f') and tests ('is t').
/// </summary>
sealed class Parser
{
    /// <summary>Deeper nesting of expressions or blocks is refused, so that no template can overflow the stack.</summary>
    const int MaxDepth = 128;

    readonly List<Token> tokens;
    int i;
    int depth;

    void Enter()
    {
        if (++depth > MaxDepth) throw Error($"the template nests expressions or blocks more than {MaxDepth} deep", Current);
    }

    Parser(List<Token> tokens) { this.tokens = tokens; }

    public static List<Node> Parse(List<Token> tokens)
    {
        var p = new Parser(tokens);
        var body = p.Body([], out _);
        return body;
    }

    Token Current => tokens[i];
    Token Next() => tokens[i++];
    Token Peek(int ahead = 1) => tokens[Math.Min(i + ahead, tokens.Count - 1)];

    static TemplateException Error(string message, Token at) => new(message, at.Line, at.Column);

    Token Expect(TokenKind kind, string? text, string what)
    {
        var t = Current;
        if (t.Kind != kind || (text is not null && t.Text != text)) throw Error($"expected {what}, found {t}", t);
        i++;
        return t;
    }
    void ExpectOp(string op) => Expect(TokenKind.Operator, op, $"'{op}'");
    void ExpectBlockEnd() => Expect(TokenKind.BlockEnd, null, "end of statement block '%}'");
    string ExpectName() => Expect(TokenKind.Name, null, "a name").Text;

    bool SkipOp(string op)
    {
        if (!Current.IsOp(op)) return false;
        i++;
        return true;
    }
    bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        i++;
        return true;
    }

    /// <summary>Parses nodes until a block whose keyword is in <paramref name="ends"/> (left after its keyword).</summary>
    List<Node> Body(string[] ends, out string end, Token? opener = null)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var t = Current;
            switch (t.Kind)
            {
                case TokenKind.End:
                    if (ends.Length > 0)
                        throw Error($"unexpected end of template: the '{opener?.Text}' block opened at line {opener?.Line}, column {opener?.Column} needs '{{% {ends[^1]} %}}'", t);
                    end = "";
                    return nodes;
                case TokenKind.Data:
                    i++;
                    nodes.Add(new TextNode(t.Text, t.Line, t.Column));
                    break;
                case TokenKind.VarBegin:
                    i++;
                    var value = TupleOrExpression();
                    Expect(TokenKind.VarEnd, null, "end of print statement '}}'");
                    nodes.Add(new PrintNode(value, t.Line, t.Column));
                    break;
                case TokenKind.BlockBegin:
                    i++;
                    var keyword = Current;
                    if (keyword.Kind != TokenKind.Name) throw Error($"expected a statement name after '{{%', found {keyword}", keyword);
                    if (ends.Contains(keyword.Text))
                    {
                        i++;
                        end = keyword.Text;
                        return nodes;
                    }
                    nodes.Add(Statement());
                    break;
                default:
                    throw Error($"unexpected {t}", t);
            }
        }
    }

    Node Statement()
    {
        Enter();
        try { return StatementBody(); }
        finally { depth--; }
    }

    Node StatementBody()
    {
        var t = Next();
        switch (t.Text)
        {
            case "if": return If(t);
            case "for": return For(t);
            case "set": return Set(t);
            case "macro": return Macro(t);
            case "filter":
            {
                var filters = FilterChain(null);
                ExpectBlockEnd();
                var body = Body(["endfilter"], out _, t);
                ExpectBlockEnd();
                return new FilterBlockNode(filters, body, t.Line, t.Column);
            }
            case "generation":
            {
                ExpectBlockEnd();
                var body = Body(["endgeneration"], out _, t);
                ExpectBlockEnd();
                return new ScopeNode(body, t.Line, t.Column);
            }
            case "break": ExpectBlockEnd(); return new BreakNode(t.Line, t.Column);
            case "continue": ExpectBlockEnd(); return new ContinueNode(t.Line, t.Column);
            case "include" or "import" or "from" or "extends" or "block" or "call" or "with" or "do" or "autoescape":
                throw Error($"the '{t.Text}' statement is not supported in chat templates", t);
            case "elif" or "else" or "endif" or "endfor" or "endset" or "endmacro" or "endfilter" or "endraw" or "endgeneration":
                throw Error($"unexpected '{t.Text}': no open block it could close", t);
            default:
                throw Error($"unknown statement '{t.Text}'", t);
        }
    }

    IfNode If(Token t)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? otherwise = null;
        var test = Expression();
        ExpectBlockEnd();
        while (true)
        {
            var body = Body(["elif", "else", "endif"], out string end, t);
            branches.Add((test, body));
            if (end == "elif") { test = Expression(); ExpectBlockEnd(); continue; }
            ExpectBlockEnd();
            if (end == "else")
            {
                otherwise = Body(["endif"], out _, t);
                ExpectBlockEnd();
            }
            return new IfNode(branches, otherwise, t.Line, t.Column);
        }
    }

    ForNode For(Token t)
    {
        var target = AssignTarget(allowAttribute: false);
        Expect(TokenKind.Name, "in", "'in'");
        var iterable = TupleOrExpression(withCondition: false);
        Expr? filter = null;
        if (SkipName("if")) filter = Expression();
        if (Current.IsName("recursive")) throw Error("recursive loops are not supported", Current);
        ExpectBlockEnd();
        var body = Body(["else", "endfor"], out string end, t);
        ExpectBlockEnd();
        List<Node>? otherwise = null;
        if (end == "else")
        {
            otherwise = Body(["endfor"], out _, t);
            ExpectBlockEnd();
        }
        return new ForNode(target, iterable, filter, body, otherwise, t.Line, t.Column);
    }

    Node Set(Token t)
    {
        var target = AssignTarget(allowAttribute: true);
        if (SkipOp("="))
        {
            var value = TupleOrExpression();
            ExpectBlockEnd();
            return new SetNode(target, value, t.Line, t.Column);
        }
        var filters = SkipOp("|") ? FilterChain(null) : [];
        ExpectBlockEnd();
        var body = Body(["endset"], out _, t);
        ExpectBlockEnd();
        return new SetBlockNode(target, filters, body, t.Line, t.Column);
    }

    Expr AssignTarget(bool allowAttribute)
    {
        var first = Current;
        var items = new List<Expr>();
        do
        {
            var n = Current;
            string name = ExpectName();
            if (allowAttribute && SkipOp("."))
                items.Add(new AttrExpr(new NameExpr(name, n.Line, n.Column), ExpectName(), n.Line, n.Column));
            else
                items.Add(new NameExpr(name, n.Line, n.Column));
        } while (SkipOp(","));
        return items.Count == 1 ? items[0] : new TupleExpr(items, first.Line, first.Column);
    }

    MacroNode Macro(Token t)
    {
        string name = ExpectName();
        ExpectOp("(");
        var parameters = new List<string>();
        var defaults = new List<Expr?>();
        while (!Current.IsOp(")"))
        {
            if (parameters.Count > 0) ExpectOp(",");
            if (Current.IsOp(")")) break;
            parameters.Add(ExpectName());
            defaults.Add(SkipOp("=") ? Expression() : null);
        }
        ExpectOp(")");
        ExpectBlockEnd();
        var body = Body(["endmacro"], out _, t);
        if (Current.Kind == TokenKind.Name) i++; // {% endmacro name %}
        ExpectBlockEnd();
        return new MacroNode(name, parameters, defaults, body, t.Line, t.Column);
    }

    // ---------------- expressions ----------------

    Expr TupleOrExpression(bool withCondition = true)
    {
        var first = Current;
        var e = Expression(withCondition);
        if (!Current.IsOp(",")) return e;
        var items = new List<Expr> { e };
        while (SkipOp(","))
        {
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VarEnd || Current.IsOp(")") || Current.IsName("if")) break;
            items.Add(Expression(withCondition));
        }
        return new TupleExpr(items, first.Line, first.Column);
    }

    Expr Expression(bool withCondition = true)
    {
        Enter();
        try { return withCondition ? Conditional() : Or(); }
        finally { depth--; }
    }

    Expr Conditional()
    {
        var e = Or();
        while (Current.IsName("if"))
        {
            var t = Next();
            var test = Or();
            Expr? otherwise = SkipName("else") ? Conditional() : null;
            e = new CondExpr(test, e, otherwise, t.Line, t.Column);
        }
        return e;
    }

    Expr Or()
    {
        var e = And();
        while (Current.IsName("or")) { var t = Next(); e = new BinaryExpr("or", e, And(), t.Line, t.Column); }
        return e;
    }

    Expr And()
    {
        var e = Not();
        while (Current.IsName("and")) { var t = Next(); e = new BinaryExpr("and", e, Not(), t.Line, t.Column); }
        return e;
    }

    Expr Not()
    {
        if (Current.IsName("not"))
        {
            Enter();
            var t = Next();
            try { return new UnaryExpr("not", Not(), t.Line, t.Column); }
            finally { depth--; }
        }
        return Compare();
    }

    Expr Compare()
    {
        var first = Current;
        var e = Add();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var t = Current;
            if (t.Kind == TokenKind.Operator && t.Text is "==" or "!=" or "<" or ">" or "<=" or ">=") { i++; rest.Add((t.Text, Add())); }
            else if (t.IsName("in")) { i++; rest.Add(("in", Add())); }
            else if (t.IsName("not") && Peek().IsName("in")) { i += 2; rest.Add(("not in", Add())); }
            else break;
        }
        return rest.Count == 0 ? e : new CompareExpr(e, rest, first.Line, first.Column);
    }

    Expr Add()
    {
        var e = Concat();
        while (Current.IsOp("+") || Current.IsOp("-")) { var t = Next(); e = new BinaryExpr(t.Text, e, Concat(), t.Line, t.Column); }
        return e;
    }

    Expr Concat()
    {
        var e = Multiply();
        while (Current.IsOp("~")) { var t = Next(); e = new BinaryExpr("~", e, Multiply(), t.Line, t.Column); }
        return e;
    }

    Expr Multiply()
    {
        var e = Power();
        while (Current.Kind == TokenKind.Operator && Current.Text is "*" or "/" or "//" or "%")
        {
            var t = Next();
            e = new BinaryExpr(t.Text, e, Power(), t.Line, t.Column);
        }
        return e;
    }

    Expr Power()
    {
        var e = Unary(withFilter: true);
        while (Current.IsOp("**")) { var t = Next(); e = new BinaryExpr("**", e, Unary(withFilter: true), t.Line, t.Column); }
        return e;
    }

    Expr Unary(bool withFilter)
    {
        var t = Current;
        Expr e;
        if (t.IsOp("-") || t.IsOp("+"))
        {
            Enter();
            i++;
            try { e = new UnaryExpr(t.Text, Unary(withFilter: false), t.Line, t.Column); }
            finally { depth--; }
        }
        else e = Primary();
        e = Postfix(e);
        return withFilter ? FilterAndTests(e) : e;
    }

    Expr Primary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Text switch
                {
                    "true" or "True" => new ConstExpr(true, t.Line, t.Column),
                    "false" or "False" => new ConstExpr(false, t.Line, t.Column),
                    "none" or "None" => new ConstExpr(null, t.Line, t.Column),
                    _ => new NameExpr(t.Text, t.Line, t.Column),
                };
            case TokenKind.String:
            {
                string s = (string)t.Value!;
                while (Current.Kind == TokenKind.String) s += (string)Next().Value!; // adjacent literals join
                return new ConstExpr(s, t.Line, t.Column);
            }
            case TokenKind.Integer or TokenKind.Float:
                return new ConstExpr(t.Value, t.Line, t.Column);
            case TokenKind.Operator when t.Text == "(":
            {
                if (SkipOp(")")) return new TupleExpr([], t.Line, t.Column);
                var e = Expression();
                if (!Current.IsOp(",")) { ExpectOp(")"); return e; }
                var items = new List<Expr> { e };
                while (SkipOp(",") && !Current.IsOp(")")) items.Add(Expression());
                ExpectOp(")");
                return new TupleExpr(items, t.Line, t.Column);
            }
            case TokenKind.Operator when t.Text == "[":
            {
                var items = new List<Expr>();
                while (!Current.IsOp("]"))
                {
                    if (items.Count > 0) ExpectOp(",");
                    if (Current.IsOp("]")) break;
                    items.Add(Expression());
                }
                ExpectOp("]");
                return new ListExpr(items, t.Line, t.Column);
            }
            case TokenKind.Operator when t.Text == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!Current.IsOp("}"))
                {
                    if (items.Count > 0) ExpectOp(",");
                    if (Current.IsOp("}")) break;
                    var key = Expression();
                    ExpectOp(":");
                    items.Add((key, Expression()));
                }
                ExpectOp("}");
                return new DictExpr(items, t.Line, t.Column);
            }
            default:
                throw Error($"expected an expression, found {t}", t);
        }
    }

    Expr Postfix(Expr e)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOp("."))
            {
                i++;
                var name = Next();
                if (name.Kind == TokenKind.Name) e = new AttrExpr(e, name.Text, t.Line, t.Column);
                else if (name.Kind == TokenKind.Integer) e = new ItemExpr(e, new ConstExpr(name.Value, name.Line, name.Column), t.Line, t.Column);
                else throw Error($"expected an attribute name after '.', found {name}", name);
            }
            else if (t.IsOp("[")) { i++; e = Subscript(e, t); }
            else if (t.IsOp("(")) { i++; var (args, kwargs) = Arguments(); e = new CallExpr(e, args, kwargs, t.Line, t.Column); }
            else return e;
        }
    }

    Expr Subscript(Expr target, Token t)
    {
        Expr? start = null, stop = null, step = null;
        if (!Current.IsOp(":")) start = Expression();
        if (!SkipOp(":"))
        {
            ExpectOp("]");
            return new ItemExpr(target, start!, t.Line, t.Column);
        }
        if (!Current.IsOp(":") && !Current.IsOp("]")) stop = Expression();
        if (SkipOp(":") && !Current.IsOp("]")) step = Expression();
        ExpectOp("]");
        return new SliceExpr(target, start, stop, step, t.Line, t.Column);
    }

    /// <summary>Call arguments after '(' up to and including ')': positional, then name=value.</summary>
    (List<Expr>, List<(string, Expr)>) Arguments()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Current.IsOp(")"))
        {
            if (args.Count + kwargs.Count > 0) ExpectOp(",");
            if (Current.IsOp(")")) break;
            if (Current.Kind == TokenKind.Name && Peek().IsOp("="))
            {
                string name = Next().Text;
                i++;
                kwargs.Add((name, Expression()));
            }
            else
            {
                if (kwargs.Count > 0) throw Error("a positional argument follows a keyword argument", Current);
                args.Add(Expression());
            }
        }
        ExpectOp(")");
        return (args, kwargs);
    }

    Expr FilterAndTests(Expr e)
    {
        while (true)
        {
            if (Current.IsOp("|")) e = FilterChain(e)[^1];
            else if (Current.IsName("is")) e = Test(e);
            else if (Current.IsOp("(")) { var t = Next(); var (a, k) = Arguments(); e = new CallExpr(e, a, k, t.Line, t.Column); }
            else return e;
        }
    }

    /// <summary>'| f(args) | g …'; each filter wraps the previous one (a null target means the block's body).</summary>
    List<FilterExpr> FilterChain(Expr? target)
    {
        var chain = new List<FilterExpr>();
        bool first = target is null;
        while (first || Current.IsOp("|"))
        {
            if (!first) i++;
            first = false;
            var t = Current;
            string name = ExpectName();
            while (SkipOp(".")) name += "." + ExpectName(); // Jinja reads dotted filter names (none is built in)
            if (!Builtins.Filters.ContainsKey(name)) throw Error($"unknown filter '{name}'", t);
            List<Expr> args = [];
            List<(string, Expr)> kwargs = [];
            if (SkipOp("(")) (args, kwargs) = Arguments();
            var f = new FilterExpr(target, name, args, kwargs, t.Line, t.Column);
            chain.Add(f);
            target = f;
        }
        return chain;
    }

    Expr Test(Expr target)
    {
        var t = Next(); // 'is'
        bool negated = SkipName("not");
        var at = Current;
        string name = at.Kind == TokenKind.Name && at.Text is "none" or "true" or "false" ? Next().Text : ExpectName();
        if (!Builtins.Tests.ContainsKey(name)) throw Error($"unknown test '{name}'", at);
        var args = new List<Expr>();
        if (Current.IsOp("("))
        {
            i++;
            var (a, _) = Arguments();
            args = a;
        }
        else if (Current.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                 || (Current.Kind == TokenKind.Name && Current.Text is not ("else" or "or" or "and" or "if" or "in" or "not" or "is"))
                 || Current.IsOp("[") || Current.IsOp("{"))
        {
            args.Add(Postfix(Primary()));
        }
        return new TestExpr(target, name, args, negated, t.Line, t.Column);
    }
}
