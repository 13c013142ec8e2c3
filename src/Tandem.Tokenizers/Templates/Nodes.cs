namespace Tandem.Tokenizers.Templates;

// The parsed template: statements (rendered for their output) and expressions (evaluated to values). Every node keeps
// its position in the template source so that errors while rendering can name it.

abstract record Node(int Line, int Column);

// ---- statements ----
sealed record TextNode(string Text, int Line, int Column) : Node(Line, Column);
sealed record PrintNode(Expr Value, int Line, int Column) : Node(Line, Column);
sealed record IfNode(List<(Expr Test, List<Node> Body)> Branches, List<Node>? Else, int Line, int Column) : Node(Line, Column);
sealed record ForNode(Expr Target, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else, int Line, int Column) : Node(Line, Column);
sealed record SetNode(Expr Target, Expr Value, int Line, int Column) : Node(Line, Column);
sealed record SetBlockNode(Expr Target, List<FilterExpr> Filters, List<Node> Body, int Line, int Column) : Node(Line, Column);
sealed record MacroNode(string Name, List<string> Parameters, List<Expr?> Defaults, List<Node> Body, int Line, int Column) : Node(Line, Column);
sealed record FilterBlockNode(List<FilterExpr> Filters, List<Node> Body, int Line, int Column) : Node(Line, Column);
sealed record BreakNode(int Line, int Column) : Node(Line, Column);
sealed record ContinueNode(int Line, int Column) : Node(Line, Column);
/// <summary>A block whose body renders in place: transformers' {% generation %} (it only marks assistant text).</summary>
sealed record ScopeNode(List<Node> Body, int Line, int Column) : Node(Line, Column);

// ---- expressions ----
abstract record Expr(int Line, int Column) : Node(Line, Column);
sealed record ConstExpr(object? Value, int Line, int Column) : Expr(Line, Column);
sealed record NameExpr(string Name, int Line, int Column) : Expr(Line, Column);
sealed record AttrExpr(Expr Target, string Name, int Line, int Column) : Expr(Line, Column);
sealed record ItemExpr(Expr Target, Expr Key, int Line, int Column) : Expr(Line, Column);
sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line, int Column) : Expr(Line, Column);
sealed record CallExpr(Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line, int Column) : Expr(Line, Column);
sealed record FilterExpr(Expr? Target, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line, int Column) : Expr(Line, Column);
sealed record TestExpr(Expr Target, string Name, List<Expr> Args, bool Negated, int Line, int Column) : Expr(Line, Column);
sealed record UnaryExpr(string Op, Expr Operand, int Line, int Column) : Expr(Line, Column);
sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Line, int Column) : Expr(Line, Column);
sealed record CompareExpr(Expr First, List<(string Op, Expr Operand)> Rest, int Line, int Column) : Expr(Line, Column);
sealed record CondExpr(Expr Test, Expr Then, Expr? Else, int Line, int Column) : Expr(Line, Column);
sealed record ListExpr(List<Expr> Items, int Line, int Column) : Expr(Line, Column);
sealed record TupleExpr(List<Expr> Items, int Line, int Column) : Expr(Line, Column);
sealed record DictExpr(List<(Expr Key, Expr Value)> Items, int Line, int Column) : Expr(Line, Column);
