namespace Tandem.Routing;

/// <summary>
/// The features the complexity scorer sees. Dense: log length (chars, words), turns, share of CJK and Latin
/// letters, digit and operator density, and counts of task cues (math, code, multi-step reasoning, long-form
/// writing, tool use, device commands, home things, proofs and theory, clock and weather, software vocabulary) in
/// English, Chinese and French, and whether the text opens with a command verb, a question word or a making/explaining
/// verb. Hashed: word unigrams and bigrams and
/// character 1–3-grams, FNV-1a hashed into the scorer's buckets, L2-normalised.
/// </summary>
public sealed class RequestFeatures
{
    public static readonly IReadOnlyList<string> DenseNames =
        ["log_chars", "log_words", "turns", "cjk_share", "latin_share", "digit_share", "operator_share",
         "cue_math", "cue_code", "cue_reasoning", "cue_longform", "cue_tool", "cue_device",
         "cue_home_thing", "cue_device_state", "cue_create", "cue_howto", "numbers", "math_with_numbers", "home_thing_query",
         "cue_expert", "opens_with_command", "opens_with_question", "cue_clock_weather", "cue_software", "opens_with_task"];
    public static int DenseCount => DenseNames.Count;

    public double[] Dense { get; } = new double[DenseCount];
    public List<(int Index, double Value)> Hashed { get; } = [];

    // Cues are matched as lower-case substrings; Chinese cues need no word boundaries.
    static readonly string[] MathCues =
        ["solve", "equation", "integral", "derivative", "prove", "probability", "express", "calculate", "compute", "how many", "percent", "sqrt", "matrix",
         "方程", "证明", "求", "积分", "导数", "概率", "计算", "多少", "几何", "函数",
         "résou", "équation", "intégrale", "dérivée", "démontr", "probabilité", "calcule", "combien"];
    static readonly string[] CodeCues =
        ["code", "function", "python", "java", "sql", "algorithm", "implement", "bug", "regex", "script", "class ", "sort", "compile", "api",
         "代码", "函数", "算法", "实现", "程序", "排序", "编程", "写一个",
         "fonction", "programme", "algorithme", "implémente", "script", "tri "];
    static readonly string[] ReasoningCues =
        ["why", "explain", "step by step", "compare", "analy", "pros and cons", "trade-off", "evaluate", "strategy", "plan ", "design",
         "为什么", "解释", "分析", "比较", "优缺点", "策略", "设计", "论证", "推理",
         "pourquoi", "explique", "compare", "analyse", "avantages", "stratégie", "conçois", "étape par étape"];
    static readonly string[] LongFormCues =
        ["essay", "article", "report", "story about", "blog post", "cover letter", "summarize", "summary of", "translate", "words",
         "文章", "论文", "报告", "作文", "总结", "翻译", "字的", "故事",
         "rédige", "dissertation", "article", "rapport", "résume", "traduis", "lettre de motivation"];
    static readonly string[] ToolCues =
        ["search the web", "look up", "latest news", "book a", "stock price", "browse", "find online", "current",
         "搜索", "查一下", "最新", "预订", "股价",
         "recherche", "dernières nouvelles", "réserve", "cours de l'action"];
    static readonly string[] DeviceCues =
        ["turn on", "turn off", "switch", "set an alarm", "alarm", "timer", "volume", "brightness", "bluetooth", "wi-fi", "wifi", "flashlight",
         "remind me", "call ", "open the", "play ", "pause", "do not disturb", "screenshot", "airplane mode", "battery",
         "打开", "关闭", "闹钟", "音量", "亮度", "蓝牙", "手电筒", "提醒我", "打电话", "播放", "暂停", "勿扰", "截屏", "飞行模式", "定时",
         "allume", "éteins", "réveil", "minuterie", "volume", "luminosité", "lampe torche", "rappelle-moi", "appelle", "ouvre", "joue", "mode avion", "mets"];

    // Things in a home or on a phone that an assistant controls or reports on; "how many … are on" about these is a
    // device query, not arithmetic (a math cue counts as one only with numbers around it).
    static readonly string[] HomeThingCues =
        ["light", "lamp", "door", "window", "blind", "curtain", "shade", "cover", "garage", "lock", "thermostat", "heater", "heating",
         "fan", "tv", "speaker", "sensor", "plug", "vacuum", "camera", "air condition", "humidity", "temperature in", "sprinkler",
         "灯", "门", "窗", "帘", "车库", "锁", "空调", "暖气", "风扇", "电视", "音箱", "传感器", "插座", "扫地", "摄像头", "温度", "湿度", "加湿器",
         "lumière", "lampe", "porte", "fenêtre", "volet", "rideau", "store", "serrure", "verrou", "chauffage", "ventilateur", "télé",
         "enceinte", "capteur", "prise", "aspirateur", "caméra", "clim", "humidité", "température", "éclairage", "radiateur"];
    static readonly string[] DeviceStateCues =
        ["is on", "are on", "is off", "are off", "is open", "are open", "is closed", "are closed", "locked", "unlocked", "still on",
         "开着", "关着", "开了", "关了", "锁了", "开启", "状态",
         "allumé", "éteint", "ouvert", "fermé", "verrouillé", "en marche", "activé", "désactivé"];
    static readonly string[] CreateCues =
        ["write", "poem", "generate", "invent", "come up with", "list of", "definition", "synonym", "haiku", "lyrics", "rap ", "joke about", "rewrite", "paraphrase",
         "写", "诗", "生成", "编一个", "列出", "定义", "同义词", "改写", "创作", "描述",
         "écris", "écrit", "poème", "génère", "invente", "liste", "définition", "synonyme", "haïku", "paroles", "réécris", "reformule", "décris", "imagine"];
    static readonly string[] HowToCues =
        ["how do", "how can", "how to", "how should", "what is the difference", "what are the", "is it possible",
         "如何", "怎么", "怎样", "什么是", "区别", "有什么",
         "comment ", "quelle est la différence", "qu'est-ce que", "quels sont", "est-il possible", "faut-il"];

    // Proofs, derivations and theory: short requests that still need a large model ("Prove that √2 is irrational").
    static readonly string[] ExpertCues =
        ["prove", "proof", "derive", "derivation", "theorem", "lemma", "formula", "theory", "hypothesis", "mechanism",
         "证明", "推导", "定理", "公式", "原理", "理论", "机制",
         "démontre", "preuve", "dérive", "théorème", "formule", "théorie", "hypothèse", "mécanisme"];
    // The first word of a device command is usually an imperative the assistant executes; the first word of an open
    // request is usually a question word or a writing verb. Matched against the start of the lower-cased text.
    static readonly string[] CommandOpeners =
        ["turn ", "set ", "switch ", "play ", "pause", "stop", "open ", "close ", "lock ", "unlock ", "call ", "text ", "send ", "add ",
         "remind ", "wake ", "start ", "cancel ", "dim ", "mute", "skip", "resume", "show me my", "put ",
         "打开", "关闭", "关掉", "设置", "设定", "播放", "暂停", "停止", "调高", "调低", "提醒我", "叫醒", "取消", "添加", "发送",
         "allume", "éteins", "éteint", "mets ", "mettre", "ouvre", "ferme", "lance", "joue", "arrête", "ajoute", "envoie", "appelle",
         "règle", "baisse", "monte", "augmente", "diminue", "active", "désactive", "verrouille", "déverrouille", "annule", "rappelle", "réveille"];
    // Time, date and weather questions open with a question word but the device answers them with its own tools.
    static readonly string[] ClockWeatherCues =
        ["what time", "what day", "what's the date", "what is the date", "weather", "forecast", "rain", "sunrise", "sunset",
         "几点", "星期几", "几号", "天气", "下雨", "气温", "日出", "日落",
         "quelle heure", "quel jour", "quelle date", "météo", "temps qu'il fait", "va-t-il pleuvoir", "pleut", "pression atmosphérique", "lever du soleil", "coucher du soleil"];
    // Software vocabulary: the languages, formats and data structures a one-line code instruction names ("Create an HTML
    // page with a submit button", "Create a Ruby method to convert a string to snake case", "编写函数反转链表"). Nothing a
    // phone assistant is asked about; "list" and "table" are left out (shopping lists, restaurant tables).
    static readonly string[] SoftwareCues =
        ["html", "css", "javascript", "typescript", "php", "c++", "c#", "ruby", "golang", "rust ", "kotlin", "swift ", "react", "node.js", "jquery",
         "json", "xml", "http", "ajax", "array", "string", "dictionary", "tuple", "linked list", "binary tree", "stack", "queue", "hash",
         "variable", "loop", "recursi", "integer", "boolean", "object", "method", "database", "query", "program", "web page", "webpage",
         "数组", "字符串", "列表", "字典", "链表", "二叉树", "递归", "变量", "循环", "整数", "数据库", "网页", "正则", "编写", "数据结构", "类",
         "tableau d'entiers", "chaîne de caractères", "liste chaînée", "dictionnaire", "variable", "boucle", "récursi", "entier", "base de données",
         "page web", "requête", "programme", "classe "];
    // A request that opens with a making or explaining verb asks for work (code, text, an explanation), not for an action
    // on the device: "Create a program to …", "编写一个函数…", "Écrivez une fonction…", "Explain the concept of …".
    static readonly string[] TaskOpeners =
        ["create ", "write ", "implement ", "develop ", "design ", "generate ", "build ", "construct ", "compose ", "modify ", "rewrite ",
         "edit ", "convert ", "suggest ", "describe ", "explain ", "compute ", "calculate ", "find the ", "given ", "using ", "debug ", "fix ",
         "写", "编写", "请写", "请编写", "请你写", "实现", "设计", "生成", "解释", "描述", "给定", "计算", "求", "用python", "编一",
         "écris", "écrivez", "rédige", "crée", "créez", "implémente", "génère", "explique", "décris", "calcule", "convertis", "traduis"];
    static readonly string[] QuestionOpeners =
        ["what ", "who ", "why ", "how ", "which ", "when did", "where did", "is it ", "can you explain", "tell me about",
         "为什么", "如何", "怎样",
         "qu'est", "que ", "quel", "qui ", "pourquoi", "comment", "est-ce", "est ce", "peux-tu expliquer", "parle-moi", "de quoi", "pour quand", "où "];

    public static RequestFeatures Extract(string text, int turns, int buckets)
    {
        var f = new RequestFeatures();
        string lower = text.ToLowerInvariant();
        int cjk = 0, latin = 0, digits = 0, ops = 0, words = 0;
        bool inWord = false;
        foreach (char c in lower)
        {
            if (c is >= '\u4e00' and <= '\u9fff') cjk++;
            else if (char.IsLetter(c)) latin++;
            if (char.IsAsciiDigit(c)) digits++;
            if (c is '+' or '=' or '*' or '/' or '^' or '<' or '>' or '²' or '³' or '∫' or '√' or '{' or '}' or '(' or ')') ops++;
            bool letter = char.IsLetterOrDigit(c) && !(c is >= '\u4e00' and <= '\u9fff');
            if (letter && !inWord) words++;
            inWord = letter;
        }
        words += cjk / 2; // roughly two characters per Chinese word
        double n = Math.Max(1, text.Length);
        var d = f.Dense;
        d[0] = Math.Log(1 + text.Length) / 5;
        d[1] = Math.Log(1 + words) / 5;
        d[2] = Math.Min(turns - 1, 10) / 5.0;
        d[3] = cjk / n;
        d[4] = latin / n;
        d[5] = digits / n * 5;
        d[6] = ops / n * 10;
        d[7] = Count(lower, MathCues);
        d[8] = Count(lower, CodeCues);
        d[9] = Count(lower, ReasoningCues);
        d[10] = Count(lower, LongFormCues);
        d[11] = Count(lower, ToolCues);
        d[12] = Count(lower, DeviceCues);
        d[13] = Count(lower, HomeThingCues);
        d[14] = Count(lower, DeviceStateCues);
        d[15] = Count(lower, CreateCues);
        d[16] = Count(lower, HowToCues);
        int numbers = CountNumbers(lower);
        d[17] = Math.Min(numbers, 6) / 3.0;
        d[18] = d[7] > 0 && numbers >= 2 ? 1 : 0;
        d[19] = d[13] > 0 && (d[7] > 0 || lower.Contains('?') || lower.Contains('？')) ? 1 : 0;
        d[20] = Count(lower, ExpertCues);
        string opening = lower.TrimStart();
        d[21] = StartsWithAny(opening, CommandOpeners) ? 1 : 0;
        d[22] = StartsWithAny(opening, QuestionOpeners) ? 1 : 0;
        d[23] = Count(lower, ClockWeatherCues);
        d[24] = Count(lower, SoftwareCues);
        d[25] = StartsWithAny(opening, TaskOpeners) ? 1 : 0;

        var counts = new Dictionary<int, int>();
        int mask = buckets - 1;
        void Bump(ReadOnlySpan<char> gram, char kind)
        {
            uint h = 2166136261;
            h = (h ^ kind) * 16777619;
            foreach (char c in gram) h = (h ^ c) * 16777619;
            int i = (int)(h & (uint)mask);
            counts[i] = counts.GetValueOrDefault(i) + 1;
        }
        // word unigrams and bigrams
        var tokens = lower.Split([' ', '\t', '\n', ',', '.', '?', '!', ';', ':', '"', '\'', '，', '。', '？', '！', '、'], StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < tokens.Length; i++)
        {
            Bump(tokens[i], 'w');
            if (i + 1 < tokens.Length) Bump(tokens[i] + " " + tokens[i + 1], 'b');
        }
        // character 1..3-grams over the raw lower-cased text
        var span = lower.AsSpan();
        for (int i = 0; i < span.Length; i++)
            for (int len = 1; len <= 3 && i + len <= span.Length; len++)
                Bump(span.Slice(i, len), (char)('0' + len));
        double norm = 0;
        foreach (var c in counts.Values) norm += (double)c * c;
        norm = Math.Sqrt(Math.Max(norm, 1));
        foreach (var (i, c) in counts) f.Hashed.Add((i, c / norm));
        return f;
    }

    /// <summary>Runs of digits (and Chinese numerals), so "3x - 4y = 1, 2x + 3y = 12" counts 4.</summary>
    static int CountNumbers(string lower)
    {
        int runs = 0;
        bool inRun = false;
        foreach (char c in lower)
        {
            bool digit = char.IsAsciiDigit(c) || "零一二三四五六七八九十百千万".Contains(c);
            if (digit && !inRun) runs++;
            inRun = digit || (inRun && c is '.' or ',');
        }
        return runs;
    }

    static bool StartsWithAny(string text, string[] openers)
    {
        foreach (var o in openers) if (text.StartsWith(o, StringComparison.Ordinal)) return true;
        return false;
    }

    static double Count(string lower, string[] cues)
    {
        int k = 0;
        foreach (var cue in cues) if (lower.Contains(cue, StringComparison.Ordinal)) k++;
        return Math.Min(k, 3);
    }
}
