using Tandem.Tokenizers.Templates;

namespace Tandem.Tests.Templates;

/// <summary>
/// The template engine on its own: each expectation is what Jinja 2 (Python semantics) prints for the template,
/// worked out by hand from Jinja's and Python's documented behaviour.
/// </summary>
public class JinjaTemplateTests
{
    static string Render(string template, object? vars = null, TemplateOptions? options = null)
    {
        var variables = new Dictionary<string, object?>();
        if (vars is IReadOnlyDictionary<string, object?> d) foreach (var (k, v) in d) variables[k] = v;
        return JinjaTemplate.Parse(template, options).Render(variables, new FixedClock());
    }

    sealed class FixedClock : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 7, 26, 9, 5, 0, TimeSpan.Zero);
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    static readonly Dictionary<string, object?> Messages = new()
    {
        ["messages"] = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "system", ["content"] = "S" },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "U1" },
            new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = null },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "U2" },
        },
    };

    [Theory]
    // Python arithmetic: / is always a float, // and % floor toward minus infinity, ints stay ints.
    [InlineData("{{ 1 + 2 }} {{ 7 / 2 }} {{ 10 / 5 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.5 * 2 }}", "3 3.5 2.0 3 -4 2 1024 3.0")]
    // Python's float repr: shortest round trip, exponent from 1e16 and below 1e-4.
    [InlineData("{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 0.0001 }} {{ 1/3 }}", "0.30000000000000004 1e+20 1e-05 0.0001 0.3333333333333333")]
    // str() of None/bools; containers print their items' repr.
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }} {{ [1, 'a', none, true, 2.0] }} {{ {'a': 1, 'b': [1]} }} {{ ('x',) }} {{ [\"it's\"] }}",
        "a1NoneTrue [1, 'a', None, True, 2.0] {'a': 1, 'b': [1]} ('x',) [\"it's\"]")]
    [InlineData("{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}|{% endfor %}",
        "10TrueFalse33|21FalseFalse32|32FalseTrue31|")]
    // for-else runs on an empty sequence; a loop filter counts only the kept items (loop.last on 4, not on 3).
    [InlineData("{% for x in [] %}x{% else %}empty{% endfor %}{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.last }}{% endfor %}", "empty2False4True")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{{ {'a':1}.keys()|list }}{{ {'a':1}.get('b', 'dflt') }}{{ {'a': 1}|items|list }}",
        "a=1;b=2;['a']dflt[('a', 1)]")]
    // namespace attributes carry values out of a loop; a plain set inside a loop does not, inside an if it does.
    [InlineData("{% set ns = namespace(x=0, found=false) %}{% for i in range(5) %}{% set ns.x = ns.x + i %}{% if i == 3 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.x }} {{ ns.found }}", "10 True")]
    [InlineData("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}{% if true %}{% set x = 3 %}{% endif %}{{ x }}", "213")]
    [InlineData("{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(name='Cy', punct='.') }}",
        "Hello Ann! Hello Bob? Hello Cy.")]
    [InlineData("{% set s %}  block {{ 1 }}  {% endset %}[{{ s }}][{{ s|trim }}]{% set t | upper %}abc{% endset %}{{ t }}", "[  block 1  ][block 1]ABC")]
    [InlineData("{{ '  hi  '|trim }}|{{ 'Hello World'|length }}|{{ 'hello wORLD-x'|title }}|{{ 'hELLO'|capitalize }}|{{ 'aXbXc'|replace('X', '-') }}|{{ [1,2,3]|join(', ') }}|{{ nothing|default('d') }}|{{ ''|default('e', true) }}|{{ [3,4]|first }}{{ [3,4]|last }}|{{ 'ab'|list }}|{{ '42'|int + 1 }}|{{ 'x'|int }}|{{ 3.7|int }}",
        "hi|11|Hello World-X|Hello|a-b-c|1, 2, 3|d|e|34|['a', 'b']|43|0|3")]
    [InlineData("{{ [{'r':'a','v':1},{'r':'b','v':2},{'r':'a','v':3}]|selectattr('r','equalto','a')|map(attribute='v')|list }}{{ [{'r':'a'},{'r':'b'}]|rejectattr('r','equalto','a')|list }}{{ [1,2,3]|map('string')|join('-') }}",
        "[1, 3][{'r': 'b'}]1-2-3")]
    [InlineData("{{ '<a href=\"x\">T&\\'s</a>'|e }}|{{ '<b>bold</b>  text'|striptags }}|{{ '<i>'|safe }}", "&lt;a href=&#34;x&#34;&gt;T&amp;&#39;s&lt;/a&gt;|bold text|<i>")]
    [InlineData("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ 'a' is iterable }}{{ 1.5 is number }}{{ false is false }}{{ 1 is true }}{{ 'a' is in 'abc' }}{{ 2 is equalto 2 }}{{ x is not defined }}",
        "FalseTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrue")]
    // and/or return an operand, comparisons chain, 1 == 1.0 == True, an if without else yields Undefined ("").
    [InlineData("{{ true and 'x' }}{{ 0 or 'y' }}{{ not 0 }}{{ 'z' not in 'abc' }}{{ 1 < 2 < 3 }}{{ 1 == 1.0 }}{{ true == 1 }}{{ 'yes' if 1 > 2 else 'no' }}[{{ 'yes' if false }}]{{ [1] + [2] }}{{ 'ab' * 3 }}",
        "xyTrueTrueTrueTrueTrueno[][1, 2]ababab")]
    [InlineData("{{ ' a b  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('a') }}{{ 'abc'.endswith(('x','c')) }}|{{ 'x y'.title() }}|{{ '{} and {}'.format(1, 'two') }}",
        "a b|hi|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|TrueTrue|X Y|1 and two")]
    [InlineData("{{ [1,2,3,4][::-1] }}{{ [1,2,3,4][1:] }}{{ [1,2,3,4][:-1] }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ [1,2,3,4][::2] }}{{ [1,2,3][-1] }}[{{ [1,2,3][5] }}]{{ [1,2,3,4,5][-2:0:-1] }}",
        "[4, 3, 2, 1][2, 3, 4][1, 2, 3]elolleh[1, 3]3[][4, 3, 2]")]
    // Undefined prints as nothing, has length 0, iterates as empty and is falsy; so is a missing key.
    [InlineData("[{{ x }}|{{ x|length }}|{% for i in x %}no{% endfor %}|{% if x %}t{% else %}f{% endif %}|{{ {'a': 1}.b }}]", "[|0||f|]")]
    [InlineData("{{ [1, 2.5, 'é', none, true, {'x': []}]|tojson }}|{{ {'a': [1, {}]}|tojson(indent=2) }}|{{ 'é\\n\"'|tojson(ensure_ascii=true) }}|{{ {'b':1,'a':2}|tojson(sort_keys=true) }}",
        "[1, 2.5, \"é\", null, true, {\"x\": []}]|{\n  \"a\": [\n    1,\n    {}\n  ]\n}|\"\\u00e9\\n\\\"\"|{\"a\": 2, \"b\": 1}")]
    [InlineData("{% raw %}{{ not parsed }}{% endraw %} {{ 'ok' }}", "{{ not parsed }} ok")]
    [InlineData("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", "0134")]
    [InlineData("{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }}", "26 Jul 2026 2026-07-26 09:05")]
    [InlineData("{{ [3,1,2]|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ [1,2,2,1]|unique|list }}{{ [1,2,3]|sum }}{{ [1,5,2]|max }}{{ -3|abs }}{{ [1,2,3]|reverse|list }}",
        "[1, 2, 3][3, 2, 1][1, 2]653[3, 2, 1]")]
    [InlineData("{% set a, b = 1, 2 %}{{ a }}{{ b }}{{ 1 if true else 2 }}{{ (1 + 2) * 3 }}{{ 2 * 3 ~ 4 }}{% filter upper %}x{{ 'y' }}{% endfilter %}", "121964XY")]
    // Python counts code points: the emoji is one character.
    [InlineData("{{ 'é😀x'|length }}{{ 'é😀x'[1] }}{{ 'é😀x'[::-1] }}", "3😀x😀é")]
    // Jinja's title filter splits words at whitespace, '-' and brackets only; str.title() also after an apostrophe.
    [InlineData("{{ \"it's a x-ray (big)\"|title }}|{{ \"it's\".title() }}", "It's A X-Ray (Big)|It'S")]
    // round() is Python's: halves go to the even neighbour; float % takes the divisor's sign.
    [InlineData("{{ 2.5|round }} {{ 3.5|round }} {{ 1.2345|round(2, 'floor') }} {{ -5 % 2.5 }} {{ 7 % -3 }}", "2.0 4.0 1.23 0.0 -2")]
    [InlineData("{% for a in [1,2,3] %}{{ loop.previtem|default('-') }}{{ loop.nextitem|default('-') }}{{ loop.cycle('x','y') }} {% endfor %}", "-2x 13y 2-x ")]
    [InlineData("{% macro m(a, b=a ~ '!') %}{{ a }}{{ b }}{% endmacro %}{{ m('x') }}{{ m('x', 'y') }}", "xx!xy")]
    [InlineData("{{ range(1, 7, 2)|list }}{{ dict(a=1, b='x') }}{{ 'aaa'|replace('a', 'b', 2) }}{{ [{'n': 'a'}, {'n': 'b'}]|join(', ', attribute='n') }}", "[1, 3, 5]{'a': 1, 'b': 'x'}bbaa, b")]
    public void RendersLikeJinja(string template, string expected) => Assert.Equal(expected, Render(template));

    [Fact]
    public void ReadsJsonLikeHostValues()
    {
        Assert.Equal("S|system|4|user|2|system,user,assistant,user|U2|None",
            Render("{{ messages[0].content }}|{{ messages[0]['role'] }}|{{ messages|length }}|{{ messages[-1].role }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|map(attribute='role')|join(',') }}|{{ (messages|last).content }}|{{ messages[2].content }}", Messages));
        // A JsonElement converts to the same values, keeping key order for tojson.
        var json = System.Text.Json.JsonDocument.Parse("""{"b": 1, "a": [true, null, 1.5, "x"]}""").RootElement;
        Assert.Equal("""{"b": 1, "a": [true, null, 1.5, "x"]}|1""",
            Render("{{ v|tojson }}|{{ v.b }}", new Dictionary<string, object?> { ["v"] = json }));
    }

    [Fact]
    public void WhitespaceControlFollowsJinjaAndHuggingFaceSettings()
    {
        const string t = "a\n  {% if true %}\n  b\n  {% endif %}\n  c {# note #}\n  d\n";
        // Jinja's defaults keep the tags' lines (their indentation and newline) and drop only the final newline.
        Assert.Equal("a\n  \n  b\n  \n  c \n  d", Render(t));
        // trim_blocks eats the newline after each block tag and comment; lstrip_blocks the indentation before a tag.
        Assert.Equal("a\n  b\n  c   d", Render(t, options: TemplateOptions.HuggingFace));
        // '-' strips all whitespace on its side, newlines included; '+' keeps what lstrip/trim would remove.
        Assert.Equal("x|y", Render("  {%- if true -%}  x  {%- endif -%}  \n|{{- ' y ' | trim -}}  \n"));
        Assert.Equal("  \nx", Render("  {%+ if true +%}\nx\n{%- endif %}\n", options: TemplateOptions.HuggingFace));
    }

    [Theory]
    [InlineData("Hi {% if x %}unclosed", "needs '{% endif %}'", 1, 22)]
    [InlineData("line one\n{{ x | nosuchfilter }}", "unknown filter 'nosuchfilter'", 2, 8)]
    [InlineData("{{ x is nosuchtest }}", "unknown test 'nosuchtest'", 1, 9)]
    [InlineData("a\n\n  {{ x ", "unclosed tag: '{{' without a matching '}}'", 3, 3)]
    [InlineData("{% for %}", "expected a name", 1, 8)]
    [InlineData("{% endif %}", "unexpected 'endif'", 1, 4)]
    [InlineData("{{ 1 + }}", "expected an expression", 1, 8)]
    [InlineData("text {# unclosed", "unclosed comment", 1, 6)]
    [InlineData("{{ 'abc }}", "unterminated string literal", 1, 4)]
    [InlineData("{% include 'x' %}", "'include' statement is not supported", 1, 4)]
    public void SyntaxErrorsNameTheirPosition(string template, string reason, int line, int column)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(template));
        Assert.Contains(reason, e.Message);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.Contains($"line {line}, column {column}", e.Message);
    }

    [Theory]
    [InlineData("ok\n{{ 'a' + 1 }}", "unsupported operand types for +: 'str' and 'int'", 2, 8)]
    [InlineData("{{ missing.attr }}", "'missing' is undefined", 1, 11)]
    [InlineData("{% set other = 1 %}{% set other.x = 1 %}", "only a namespace() object's attributes can be set", 1, 27)]
    [InlineData("{{ [1][::0] }}", "slice step cannot be zero", 1, 7)]
    [InlineData("{{ {'a': 1}|tojson }}{{ x|tojson }}", "Object of type Undefined is not JSON serializable", 1, 27)]
    public void RuntimeErrorsNameTheirPosition(string template, string reason, int line, int column)
    {
        var e = Assert.Throws<TemplateException>(() => Render(template));
        Assert.Contains(reason, e.Message);
        Assert.Equal((line, column), (e.Line, e.Column));
    }

    [Fact]
    public void RaiseExceptionCarriesTheTemplatesMessage()
    {
        var e = Assert.Throws<TemplateRaisedException>(() => Render("{% if true %}{{ raise_exception('Roles must alternate') }}{% endif %}"));
        Assert.Equal("Roles must alternate", e.Reason);
        Assert.Equal((1, 32), (e.Line, e.Column)); // the call's opening parenthesis
    }

    [Fact]
    public void RunawayRecursionAndNestingAreErrorsNotStackOverflows()
    {
        // A macro that never stops calling itself (Python's RecursionError in Jinja) ends with a clear error.
        var e = Assert.Throws<TemplateException>(() => Render("{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}"));
        Assert.Contains("macro 'f' recursed more than", e.Message);
        // So does absurdly deep nesting in the source.
        var p = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}"));
        Assert.Contains("nests expressions or blocks more than", p.Message);
        // The renderer is usable again after the error.
        Assert.Equal("3", Render("{% macro f(x) %}{% if x > 0 %}{{ f(x - 1) }}{% else %}3{% endif %}{% endmacro %}{{ f(90) }}"));
    }
}
