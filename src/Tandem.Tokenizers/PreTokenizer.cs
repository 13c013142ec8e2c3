using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Tokenizers;

/// <summary>
/// Splits text into words before byte-level BPE. A pre-tokenizer is a sequence of split stages; each stage cuts every
/// segment produced so far into its matches and the gaps between them (the "Isolated" behaviour of HF's Split).
/// Common patterns (GPT-2, Llama-3, Qwen2) use hand-written splitters; the rest go through .NET regexes.
/// </summary>
internal sealed class PreTokenizer
{
    // Patterns as the models' tokenizer.json files spell them (and the case-expanded variants GGUF converters use).
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    public const string Gpt2PatternHf = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    const string Contractions = @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
    const string ContractionsI = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)";
    const string Llama3Tail = @"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const string Qwen2Tail = @"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const string Qwen35Tail = @"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Llama3Pattern = Contractions + Llama3Tail;
    public const string Qwen2Pattern = Contractions + Qwen2Tail;
    public const string Qwen35Pattern = Contractions + Qwen35Tail;

    readonly ISplitStage[] _stages;
    public IReadOnlyList<string> Patterns { get; }

    public PreTokenizer(IReadOnlyList<string> patterns) : this(patterns, forceRegex: false) { }

    /// <summary>forceRegex: run every pattern through the general regex machinery, even those with a hand-written splitter (for testing).</summary>
    internal PreTokenizer(IReadOnlyList<string> patterns, bool forceRegex)
    {
        Patterns = patterns;
        _stages = patterns.Select(p => forceRegex ? RegexStage.Create(p) : CreateStage(p)).ToArray();
    }

    /// <summary>Splits a string into its words (testing and diagnostics).</summary>
    internal List<string> SplitToStrings(string text)
    {
        var cps = Unicode.Codepoints(text);
        var result = new List<string>();
        int start = 0;
        foreach (var len in Split(cps))
        {
            result.Add(Unicode.FromCodepoints(cps.AsSpan(start, len)));
            start += len;
        }
        return result;
    }

    static ISplitStage CreateStage(string pattern)
    {
        if (pattern == Gpt2Pattern || pattern == Gpt2PatternHf) return new Gpt2Stage();
        if (pattern == Llama3Pattern || pattern == ContractionsI + Llama3Tail) return new Llama3Stage(3, false);
        if (pattern == Qwen2Pattern || pattern == ContractionsI + Qwen2Tail) return new Llama3Stage(1, false);
        if (pattern == Qwen35Pattern || pattern == ContractionsI + Qwen35Tail) return new Llama3Stage(1, true);
        if (pattern == "[^\\n]+|[\\n]+") return new NewlineStage();
        return RegexStage.Create(pattern);
    }

    /// <summary>The regexes llama.cpp applies for a <c>tokenizer.ggml.pre</c> value, with the flags that value implies.</summary>
    public static PreConfig ForGguf(string? pre)
    {
        const string punctDefault = @"[\p{P}\$\+<=>\^~\|]+";
        string[] llama3 = [Llama3Pattern];
        switch (pre)
        {
            case null or "" or "default":
                return new([punctDefault, Gpt2Pattern, @"\p{N}+", "[0-9][0-9][0-9]"]);
            case "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "falcon-h1" or "pixtral" or "midm-2.0" or "lfm2" or "jina-v5-nano":
                return new(llama3) { IgnoreMerges = true, AddBos = true };
            case "dbrx" or "smaug-bpe":
                return new(llama3);
            case "chatglm-bpe" or "glm4":
                return new(llama3) { NoBos = true };
            case "deepseek-llm":
                return new(["[\r\n]",
                    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+",
                    "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
                    "\\s+$",
                    "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+",
                    "\\p{N}+"]) { CleanSpaces = false };
            case "deepseek-coder":
                return new(["[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", @"\p{N}"]) { CleanSpaces = false };
            case "deepseek-v3" or "hunyuan-dense" or "joyai-llm":
                return new([@"\p{N}{1,3}", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
                    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"])
                    { CleanSpaces = false };
            case "falcon":
                return new([@"[\p{P}\$\+<=>\^~\|`]+", Gpt2Pattern, "[0-9][0-9][0-9]"]);
            case "starcoder" or "refact" or "codeshell" or "exaone" or "minerva-7b" or "mellum2":
                return new([@"\p{N}", Gpt2Pattern]);
            case "command-r" or "smollm":
                return new([@"\p{N}", Gpt2Pattern]) { CleanSpaces = false };
            case "gpt-2" or "phi-2" or "jina-es" or "jina-de" or "gigachat" or "jina-v2-es" or "jina-v2-de" or "a.x-4.0" or "mellum"
                or "modern-bert" or "jina-v1-en" or "jina-v2-code" or "roberta-bpe" or "exaone4" or "mpt" or "olmo" or "jais":
                return new([Gpt2Pattern]);
            case "trillion" or "granite-docling":
                return new([Gpt2Pattern]) { CleanSpaces = false };
            case "qwen2" or "deepseek-r1-qwen" or "kormo" or "f2llmv2" or "hunyuan" or "solar-open" or "grok-2":
                return new([Qwen2Pattern]) { CleanSpaces = false };
            case "stablelm2" or "megrez":
                return new([Qwen2Pattern]);
            case "qwen35":
                return new([Qwen35Pattern]) { CleanSpaces = false };
            case "poro-chat":
                return new([" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"]) { CleanSpaces = false };
            case "bloom" or "gpt3-finnish":
                return new([" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"]);
            case "viking":
                return new([" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+", @"\p{N}"]) { CleanSpaces = false };
            case "tekken":
                return new([@"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"])
                    { CleanSpaces = false, IgnoreMerges = true, AddBos = true };
            case "gpt-4o" or "llama4" or "kanana2" or "talkie" or "minimax-m2":
                return new([@"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+" + Contractions + @"?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*" + Contractions + @"?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"])
                    { CleanSpaces = false };
            case "seed-coder":
                return new([Contractions + @"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"]) { CleanSpaces = false };
            case "bailingmoe" or "bailingmoe2" or "llada-moe":
                return new([@"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"]) { CleanSpaces = false };
            case "minicpm5":
                return new([@"\p{N}{1,3}", Contractions + @"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"]) { IgnoreMerges = true };
            case "chameleon":
                return new(["<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", @"\p{N}", @"[\p{P}!-/:-@\[-`{-~]", Gpt2Pattern])
                    { CleanSpaces = false, AddBos = true };
            default:
                throw new NotSupportedException($"Unsupported pre-tokenizer type '{pre}' (tokenizer.ggml.pre).");
        }
    }

    /// <summary>Splits codepoints into words; returns the word lengths (in codepoints), in order.</summary>
    public List<int> Split(int[] cps)
    {
        var lens = new List<int> { cps.Length };
        if (cps.Length == 0) return [];
        string? collapsed = null;
        foreach (var stage in _stages)
        {
            if (stage is RegexStage { Collapsed: true } && collapsed is null) collapsed = Collapse(cps);
            var next = new List<int>(lens.Count * 2);
            int start = 0;
            foreach (var len in lens)
            {
                if (len > 0) stage.Split(cps, collapsed, start, len, next);
                start += len;
            }
            lens = next;
        }
        return lens;
    }

    // ---- collapsed text: one char per codepoint, non-ASCII codepoints replaced by a class marker ----

    internal const char MarkNumber = '\uE0D1', MarkLetter = '\uE0D2', MarkPunct = '\uE0D3', MarkMark = '\uE0D4', MarkSymbol = '\uE0D5', MarkOther = '\uE0D0';

    static string Collapse(int[] cps)
    {
        return string.Create(cps.Length, cps, static (span, cps) =>
        {
            for (int i = 0; i < cps.Length; i++)
            {
                int cp = cps[i];
                if (cp < 128) { span[i] = (char)cp; continue; }
                var f = Unicode.Flags(cp);
                span[i] = (f & CpFlags.Whitespace) != 0 ? '\v' : (f & CpFlags.CategoryMask) switch
                {
                    CpFlags.Number => MarkNumber,
                    CpFlags.Letter => MarkLetter,
                    CpFlags.Punctuation => MarkPunct,
                    CpFlags.Mark => MarkMark,
                    CpFlags.Symbol => MarkSymbol,
                    _ => MarkOther,
                };
            }
        });
    }

    interface ISplitStage
    {
        void Split(int[] cps, string? collapsed, int start, int len, List<int> output);
    }

    sealed class Emitter(List<int> output, int start)
    {
        int _prev = start;
        public void To(int end)
        {
            if (end > _prev) output.Add(end - _prev);
            _prev = end;
        }
    }

    static int AsciiLower(int c) => c is >= 'A' and <= 'Z' ? c + 32 : c;

    /// <summary>Contraction at pos ('s 't 'm 'd 're 've 'll): returns its length or 0.</summary>
    static int Contraction(int[] cps, int pos, int end, bool ignoreCase)
    {
        if (cps[pos] != '\'' || pos + 1 >= end) return 0;
        int a = ignoreCase ? AsciiLower(cps[pos + 1]) : cps[pos + 1];
        if (a is 's' or 't' or 'm' or 'd') return 2;
        if (pos + 2 >= end) return 0;
        int b = ignoreCase ? AsciiLower(cps[pos + 2]) : cps[pos + 2];
        return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
    }

    /// <summary>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</summary>
    sealed class Gpt2Stage : ISplitStage
    {
        public void Split(int[] cps, string? collapsed, int start, int len, List<int> output)
        {
            int end = start + len;
            var emit = new Emitter(output, start);
            CpFlags F(int p) => p < end ? Unicode.Flags(cps[p]) : CpFlags.None;
            const CpFlags wln = CpFlags.Whitespace | CpFlags.Letter | CpFlags.Number;
            int pos = start;
            while (pos < end)
            {
                int c = cps[pos];
                int k = Contraction(cps, pos, end, false);
                if (k > 0) { pos += k; emit.To(pos); continue; }
                var f2 = c == ' ' ? F(pos + 1) : F(pos);
                if ((f2 & CpFlags.Letter) != 0)
                {
                    if (c == ' ') pos++;
                    while ((F(pos) & CpFlags.Letter) != 0) pos++;
                    emit.To(pos); continue;
                }
                if ((f2 & CpFlags.Number) != 0)
                {
                    if (c == ' ') pos++;
                    while ((F(pos) & CpFlags.Number) != 0) pos++;
                    emit.To(pos); continue;
                }
                if ((f2 & wln) == 0 && f2 != CpFlags.None)
                {
                    if (c == ' ') pos++;
                    while (true) { var f = F(pos); if ((f & wln) != 0 || f == CpFlags.None) break; pos++; }
                    emit.To(pos); continue;
                }
                int nws = 0;
                while ((F(pos + nws) & CpFlags.Whitespace) != 0) nws++;
                if (nws > 1 && pos + nws < end) { pos += nws - 1; emit.To(pos); continue; }
                if (nws > 0) { pos += nws; emit.To(pos); continue; }
                pos++; emit.To(pos);
            }
        }
    }

    /// <summary>
    /// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    /// (k = 3 for Llama-3, 1 for Qwen2; with marks, letters runs also take \p{M} as in Qwen3.5).
    /// </summary>
    sealed class Llama3Stage(int maxDigits, bool marks) : ISplitStage
    {
        public void Split(int[] cps, string? collapsed, int start, int len, List<int> output)
        {
            int end = start + len;
            var emit = new Emitter(output, start);
            CpFlags F(int p) => p < end ? Unicode.Flags(cps[p]) : CpFlags.None;
            var letterMask = marks ? CpFlags.Letter | CpFlags.Mark : CpFlags.Letter;
            var wln = CpFlags.Whitespace | CpFlags.Number | letterMask;
            int pos = start;
            while (pos < end)
            {
                int c = cps[pos];
                var f = F(pos);
                int k = Contraction(cps, pos, end, true);
                if (k > 0) { pos += k; emit.To(pos); continue; }
                if (c != '\r' && c != '\n' && (f & CpFlags.Number) == 0 && ((f & letterMask) != 0 || (F(pos + 1) & letterMask) != 0))
                {
                    pos++;
                    while ((F(pos) & letterMask) != 0) pos++;
                    emit.To(pos); continue;
                }
                if ((f & CpFlags.Number) != 0)
                {
                    int n = 0;
                    while (n < maxDigits && (F(pos) & CpFlags.Number) != 0) { pos++; n++; }
                    emit.To(pos); continue;
                }
                var f2 = c == ' ' ? F(pos + 1) : f;
                if ((f2 & wln) == 0)
                {
                    if (c == ' ') pos++;
                    while (true) { var g = F(pos); if ((g & wln) != 0 || g == CpFlags.None) break; pos++; }
                    while (pos < end && (cps[pos] == '\r' || cps[pos] == '\n')) pos++;
                    emit.To(pos); continue;
                }
                int nws = 0, lastNl = -1;
                while ((F(pos + nws) & CpFlags.Whitespace) != 0)
                {
                    int w = cps[pos + nws];
                    if (w == '\r' || w == '\n') lastNl = pos + nws + 1;
                    nws++;
                }
                if (lastNl >= 0) { pos = lastNl; emit.To(pos); continue; }
                if (nws > 1 && pos + nws < end) { pos += nws - 1; emit.To(pos); continue; }
                if (nws > 0) { pos += nws; emit.To(pos); continue; }
                pos++; emit.To(pos);
            }
        }
    }

    /// <summary>[^\n]+|[\n]+</summary>
    sealed class NewlineStage : ISplitStage
    {
        public void Split(int[] cps, string? collapsed, int start, int len, List<int> output)
        {
            int end = start + len, pos = start;
            while (pos < end)
            {
                bool nl = cps[pos] == '\n';
                int s = pos;
                while (pos < end && (cps[pos] == '\n') == nl) pos++;
                output.Add(pos - s);
            }
        }
    }

    /// <summary>
    /// A general regex stage. Patterns using \p{…} classes run on the collapsed text (each non-ASCII codepoint replaced by a
    /// marker for its class, ASCII kept), the way llama.cpp runs them; other patterns run on the text itself, with
    /// supplementary-plane ranges in character classes rewritten as surrogate-pair alternatives.
    /// </summary>
    sealed class RegexStage : ISplitStage
    {
        public required Regex Regex { get; init; }
        public required bool Collapsed { get; init; }

        static readonly string[] s_classNames = ["\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}", "\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}"];

        public static RegexStage Create(string pattern)
        {
            bool collapsed = s_classNames.Any(pattern.Contains);
            string translated = collapsed ? TranslateCollapsed(pattern) : TranslateRaw(pattern);
            return new RegexStage { Regex = new Regex(translated, RegexOptions.CultureInvariant), Collapsed = collapsed };
        }

        static string Esc(char c) => "\\u" + ((int)c).ToString("X4");

        static string ClassContent(string name)
        {
            static string Chars(string s) => string.Concat(s.Select(Esc));
            return name switch
            {
                "N" => Esc(MarkNumber) + "0-9",
                "L" or "Lu" or "Ll" or "Lt" or "Lm" or "Lo" => Esc(MarkLetter) + "A-Za-z",
                "P" => Esc(MarkPunct) + Chars("!\"#%&'()*,-./:;?@[\\]_{}"),
                "M" => Esc(MarkMark),
                "S" => Esc(MarkSymbol) + Chars("$+<=>^`|"),
                _ => throw new InvalidOperationException(name),
            };
        }

        static string TranslateCollapsed(string pattern)
        {
            var sb = new StringBuilder(pattern.Length * 2);
            bool inside = false;
            for (int i = 0; i < pattern.Length; i++)
            {
                char c = pattern[i];
                if (c == '\\' && i + 1 < pattern.Length)
                {
                    if (pattern[i + 1] == 'p' && i + 2 < pattern.Length && pattern[i + 2] == '{')
                    {
                        int close = pattern.IndexOf('}', i + 3);
                        string name = close > 0 ? pattern.Substring(i + 3, close - i - 3) : "";
                        if (name is "N" or "L" or "P" or "M" or "S" or "Lu" or "Ll" or "Lt" or "Lm" or "Lo")
                        {
                            sb.Append(inside ? ClassContent(name) : "[" + ClassContent(name) + "]");
                            i = close;
                            continue;
                        }
                    }
                    sb.Append(c).Append(pattern[i + 1]);
                    i++;
                    continue;
                }
                if (c == '[' && !inside) inside = true;
                else if (c == ']' && inside) inside = false;
                else if (c == '$' && !inside) { sb.Append("\\z"); continue; }
                if (c > 127) sb.Append(Esc(c)); else sb.Append(c);
            }
            return sb.ToString();
        }

        /// <summary>Rewrites character classes that contain supplementary-plane codepoints for UTF-16 matching.</summary>
        static string TranslateRaw(string pattern)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < pattern.Length; i++)
            {
                char c = pattern[i];
                if (c == '\\' && i + 1 < pattern.Length) { sb.Append(c).Append(pattern[i + 1]); i++; continue; }
                if (c == '$') { sb.Append("\\z"); continue; }
                if (c != '[') { sb.Append(c); continue; }
                // parse a class
                int j = i + 1;
                bool negated = j < pattern.Length && pattern[j] == '^';
                if (negated) j++;
                var bmp = new StringBuilder();
                var astral = new List<(int lo, int hi)>();
                int ReadCp(ref int k)
                {
                    if (char.IsHighSurrogate(pattern[k]) && k + 1 < pattern.Length) { int v = char.ConvertToUtf32(pattern[k], pattern[k + 1]); k += 2; return v; }
                    return pattern[k++];
                }
                while (j < pattern.Length && pattern[j] != ']')
                {
                    if (pattern[j] == '\\') { bmp.Append(pattern, j, 2); j += 2; continue; }
                    int lo = ReadCp(ref j), hi = lo;
                    if (j + 1 < pattern.Length && pattern[j] == '-' && pattern[j + 1] != ']') { j++; hi = ReadCp(ref j); }
                    if (hi < 0x10000) bmp.Append(Esc((char)lo)).Append(hi != lo ? "-" + Esc((char)hi) : "");
                    else if (lo >= 0x10000) astral.Add((lo, hi));
                    else { bmp.Append(Esc((char)lo)).Append('-').Append(Esc('\uFFFF')); astral.Add((0x10000, hi)); }
                }
                if (negated && astral.Count > 0) throw new NotSupportedException("Negated character class with supplementary-plane codepoints: " + pattern);
                if (astral.Count == 0) { sb.Append('[').Append(negated ? "^" : "").Append(bmp).Append(']'); i = j; continue; }
                sb.Append("(?:");
                bool first = true;
                if (bmp.Length > 0) { sb.Append('[').Append(bmp).Append(']'); first = false; }
                foreach (var (lo, hi) in astral)
                {
                    for (int h = lo; h <= hi;)
                    {
                        int blockEnd = Math.Min(hi, (h | 0x3FF));
                        string a = char.ConvertFromUtf32(h), b = char.ConvertFromUtf32(blockEnd);
                        if (!first) sb.Append('|');
                        first = false;
                        sb.Append(Esc(a[0])).Append('[').Append(Esc(a[1])).Append('-').Append(Esc(b[1])).Append(']');
                        h = blockEnd + 1;
                    }
                }
                sb.Append(')');
                i = j;
            }
            return sb.ToString();
        }

        public void Split(int[] cps, string? collapsed, int start, int len, List<int> output)
        {
            if (Collapsed)
            {
                SplitSpan(collapsed.AsSpan(start, len), output, null);
                return;
            }
            // raw text: UTF-16 of the segment, with non-ASCII whitespace as \v (as llama.cpp does), and a map back to codepoints
            var sb = new StringBuilder(len + 8);
            var cpIndex = new List<int>(len + 8);
            for (int i = 0; i < len; i++)
            {
                int cp = cps[start + i];
                if (cp > 0x7F && Unicode.IsWhitespace(cp)) cp = 0x0B;
                if (cp < 0x10000) { sb.Append((char)cp); cpIndex.Add(i); }
                else { sb.Append(char.ConvertFromUtf32(cp)); cpIndex.Add(i); cpIndex.Add(i + 1); }
            }
            cpIndex.Add(len);
            SplitSpan(sb.ToString(), output, cpIndex);
        }

        void SplitSpan(ReadOnlySpan<char> text, List<int> output, List<int>? cpIndex)
        {
            int Cp(int utf16) => cpIndex is null ? utf16 : cpIndex[utf16];
            int prev = 0;
            foreach (var m in Regex.EnumerateMatches(text))
            {
                if (m.Length == 0) continue;
                int s = Cp(m.Index), e = Cp(m.Index + m.Length);
                if (s > prev) output.Add(s - prev);
                if (e > s) output.Add(e - s);
                prev = Math.Max(prev, e);
            }
            int total = Cp(text.Length);
            if (total > prev) output.Add(total - prev);
        }
    }
}

/// <summary>What a pre-tokenizer type implies besides its regexes (llama.cpp's per-type vocabulary flags).</summary>
internal sealed record PreConfig(string[] Patterns)
{
    public bool CleanSpaces { get; init; } = true;
    public bool IgnoreMerges { get; init; }
    public bool AddBos { get; init; }
    public bool NoBos { get; init; }
}
