using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Assistant;

/// <summary>The matcher's text handling: language, normalization (number words to digits), keyword search, and the
/// slots — rooms, numbers, durations, times of day, contacts.</summary>
public sealed partial class IntentMatcher
{
    // ---- language and normalization ----

    static string Language(string s)
    {
        foreach (char c in s) if (c >= '\u3400' && c <= '\u9fff') return "zh";
        string l = " " + s.ToLowerInvariant() + " ";
        foreach (var w in FrenchMarkers) if (l.Contains(w, StringComparison.Ordinal)) return "fr";
        return "en";
    }

    static readonly string[] FrenchMarkers =
        [" le ", " la ", " les ", " du ", " de ", " des ", " à ", "é", "è", "ç", "ê", " mets ", " règle ", " allume", " éteins", " appelle", " minuteur", " réveil", " s'il ", " un ", " une "];

    /// <summary>
    /// Lower case, apostrophes unified, hyphens and punctuation as spaces, "percent"/"pour cent"/"百分之" as "%", number
    /// words turned into digits (English, French — "quatre-vingt-dix" — and Chinese numerals), a decimal comma or
    /// "point" as a dot; single spaces, padded with spaces.
    /// </summary>
    static string Normalize(string s, string lang)
    {
        s = s.ToLowerInvariant().Replace('’', '\'').Replace('，', ' ').Replace('。', ' ').Replace('？', ' ').Replace('！', ' ')
             .Replace('：', ':').Replace('％', '%').Replace("½", " half ").Replace("1/2", " half ");
        if (lang == "zh")
        {
            // 百分之五十 first: its 百 is "per cent", not a hundred.
            s = ChinesePercent().Replace(s, m => ChineseNumerals(m.Groups[1].Value) + "%");
            s = ChineseNumerals(s);
            s = ChineseDecimal().Replace(s, "$1.$2$3");
            return " " + s + " ";
        }
        s = DecimalComma().Replace(s, "$1.$2");
        s = ElidedNumber().Replace(s, "$1 ");   // "d'une heure" → "d' une heure", so that "une" is read as 1
        var words = WordSplit().Split(s).Where(w => w.Length > 0).ToList();
        var output = new List<string>();
        for (int i = 0; i < words.Count; i++)
        {
            string w = words[i];
            if (w is "percent" or "pourcent" or "pourcents" || w is "per" or "pour" && i + 1 < words.Count && words[i + 1] is "cent" or "cents")
            {
                output.Add("%");
                if (w is "per" or "pour") i++;
                continue;
            }
            if (w is "point" or "virgule" && output.Count > 0 && IsDigits(output[^1]) && i + 1 < words.Count && NumberWords.TryGetValue(words[i + 1], out int frac) && frac < 10)
            {
                output[^1] += "." + frac.ToString(CultureInfo.InvariantCulture);
                i++;
                continue;
            }
            if (StartsNumber(words, i) && ReadNumber(words, ref i) is { } n)
            {
                output.Add(n.ToString(CultureInfo.InvariantCulture));
                continue;
            }
            output.Add(w);
        }
        return " " + string.Join(' ', output) + " ";
    }

    static bool IsDigits(string w) => w.Length > 0 && w.All(char.IsAsciiDigit);

    /// <summary>Whether words[i] begins a number: a number word, except the articles "a"/"an", which count only before a
    /// unit ("a minute", "an hour", "a hundred") and not in "half a minute".</summary>
    static bool StartsNumber(List<string> words, int i)
    {
        if (!NumberWords.ContainsKey(words[i])) return false;
        if (words[i] is not ("a" or "an")) return true;
        return i + 1 < words.Count && words[i + 1] is "hour" or "minute" or "second" or "hundred" && !(i > 0 && words[i - 1] == "half");
    }

    /// <summary>
    /// Reads a run of number words from words[i] (left on its last word): "twenty five", "one hundred and five",
    /// "vingt et un", "dix-sept", "soixante-dix", "quatre-vingt-dix-neuf", "deux cents". Two numbers said one after the
    /// other ("one two") do not merge: a word joins only where the grammar of numbers allows it.
    /// </summary>
    static long? ReadNumber(List<string> words, ref int i)
    {
        long value = NumberWords[words[i]];
        if (value == 100 && words[i] is "hundred") return null; // "hundred" alone is not a number said
        int j = i + 1;
        while (j < words.Count)
        {
            int k = j;
            // "vingt et un", "one hundred and five": the connector counts only when a number word that composes follows.
            if (words[k] is "et" or "and" && k + 1 < words.Count) k++;
            if (!NumberWords.TryGetValue(words[k], out int next) || words[k] is "a" or "an" || words[k] is "un" or "une" && k == j) break;
            if (Compose(value, next) is not { } composed) break;
            value = composed;
            i = k;
            j = k + 1;
        }
        return value;
    }

    /// <summary>The number that <paramref name="value"/> followed by the word for <paramref name="next"/> says, or null when
    /// the two are separate numbers.</summary>
    static long? Compose(long value, int next)
    {
        long r = value % 100;
        if (next == 100) return value < 10 ? value * 100 : null;      // "deux cents", "one hundred"
        if (next == 20 && r == 4) return value - 4 + 80;              // "quatre-vingt(s)"
        if (r == 0) return value >= 100 && next < 100 ? value + next : null; // "cent vingt", "one hundred five"
        if (r is 60 or 80) return next < 20 ? value + next : null;     // "soixante-dix", "quatre-vingt-onze"
        if (r >= 20 && r % 10 == 0) return next < 10 ? value + next : null; // "twenty five", "vingt-deux", "quatre-vingt-dix-sept"
        if (r == 10) return next is >= 7 and <= 9 ? value + next : null;    // "dix-sept"
        return null;
    }

    static readonly Dictionary<string, int> NumberWords = new(StringComparer.Ordinal)
    {
        ["zero"] = 0, ["one"] = 1, ["two"] = 2, ["three"] = 3, ["four"] = 4, ["five"] = 5, ["six"] = 6, ["seven"] = 7, ["eight"] = 8,
        ["nine"] = 9, ["ten"] = 10, ["eleven"] = 11, ["twelve"] = 12, ["thirteen"] = 13, ["fourteen"] = 14, ["fifteen"] = 15,
        ["sixteen"] = 16, ["seventeen"] = 17, ["eighteen"] = 18, ["nineteen"] = 19, ["twenty"] = 20, ["thirty"] = 30, ["forty"] = 40,
        ["fifty"] = 50, ["sixty"] = 60, ["seventy"] = 70, ["eighty"] = 80, ["ninety"] = 90, ["hundred"] = 100, ["a"] = 1, ["an"] = 1,
        ["zéro"] = 0, ["un"] = 1, ["une"] = 1, ["deux"] = 2, ["trois"] = 3, ["quatre"] = 4, ["cinq"] = 5, ["sept"] = 7, ["huit"] = 8,
        ["neuf"] = 9, ["dix"] = 10, ["onze"] = 11, ["douze"] = 12, ["treize"] = 13, ["quatorze"] = 14, ["quinze"] = 15, ["seize"] = 16,
        ["vingt"] = 20, ["vingts"] = 20, ["trente"] = 30, ["quarante"] = 40, ["cinquante"] = 50, ["soixante"] = 60, ["cent"] = 100, ["cents"] = 100,
    };

    /// <summary>Runs of Chinese numerals (零一二两三…十百) become digits: 二十五 → 25, 十 → 10, 一百 → 100. 一 in 一下
    /// ("a moment", 等一下) is not a number.</summary>
    static string ChineseNumerals(string s)
    {
        var b = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            if (ChineseDigit(s[i]) < 0 || s[i] == '一' && i + 1 < s.Length && s[i + 1] == '下') { b.Append(s[i++]); continue; }
            long total = 0, cur = 0;
            while (i < s.Length && ChineseDigit(s[i]) is var d && d >= 0)
            {
                if (d == 10) { total += (cur == 0 ? 1 : cur) * 10; cur = 0; }
                else if (d == 100) { total += (cur == 0 ? 1 : cur) * 100; cur = 0; }
                else cur = d;
                i++;
            }
            b.Append(total + cur);
        }
        return b.ToString();
    }

    static int ChineseDigit(char c) => c switch
    {
        '零' => 0, '一' => 1, '二' or '两' => 2, '三' => 3, '四' => 4, '五' => 5, '六' => 6, '七' => 7, '八' => 8, '九' => 9, '十' => 10, '百' => 100,
        _ => -1,
    };

    static bool Has(string t, params string[] keys)
    {
        foreach (var k in keys)
        {
            // Latin keywords match at a word start ("light" in "lights", not "on" in "tonight"); CJK anywhere.
            int at = 0;
            while ((at = t.IndexOf(k, at, StringComparison.Ordinal)) >= 0)
            {
                if (k[0] > '\u3000' || k[0] == ' ' || at == 0 || !char.IsLetter(t[at - 1])) return true;
                at++;
            }
        }
        return false;
    }

    static readonly string[] PoliteWords =
        ["please", "can", "could", "would", "will", "you", "for", "me", "now", "hey", "ok", "okay", "kindly", "just",
         "s'il", "te", "vous", "plaît", "stp", "svp", "peux", "pouvez", "tu", "merci"];
    static readonly string[] ChineseFillers = ["请", "帮我", "麻烦", "吧", "你", "能", "吗", "一下", "给我"];

    /// <summary>The command without politeness and fillers ("please shut off" → "shut off", "请关掉吧" → "关掉").</summary>
    static string Core(string t)
    {
        if (t.Any(c => c >= '\u3400' && c <= '\u9fff'))
        {
            string z = t.Trim();
            foreach (var f in ChineseFillers) z = z.Replace(f, "", StringComparison.Ordinal);
            return z.Trim();
        }
        return string.Join(' ', t.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(w => !PoliteWords.Contains(w)));
    }

    // ---- slots ----

    static readonly (string Room, string[] Names)[] RoomNames =
    [
        ("living_room", ["living room", "lounge", "sitting room", "family room", "客厅", "起居室", "salon", "séjour"]),
        ("dining_room", ["dining room", "餐厅", "饭厅", "salle à manger"]),
        ("bedroom", ["bedroom", "bed room", "卧室", "主卧", "次卧", "睡房", "chambre"]),
        ("kitchen", ["kitchen", "厨房", "cuisine"]),
        ("bathroom", ["bathroom", "bath room", "restroom", "浴室", "卫生间", "洗手间", "厕所", "salle de bain", "salle d'eau", "toilettes"]),
        ("office", ["office", "study", "书房", "办公室", "bureau"]),
        ("hallway", ["hallway", "hall", "corridor", "entrance", "entryway", "foyer", "走廊", "过道", "玄关", "门厅", "couloir", "entrée"]),
    ];

    static string? RoomOf(string t)
    {
        // A desk lamp ("lampe de bureau", "书房台灯" aside) names a lamp, not the office.
        t = t.Replace("lampe de bureau", "lampe", StringComparison.Ordinal).Replace("desk lamp", "lamp", StringComparison.Ordinal);
        foreach (var (room, names) in RoomNames) if (Has(t, names)) return room;
        return null;
    }

    /// <summary>The temperature said: "21 degrés et demi", "twenty and a half degrees", "二十度半" → 21.5, 20.5.</summary>
    static double? TemperatureOf(string t) => FirstNumber(DegreesAndHalf().Replace(t, m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 0.5).ToString(CultureInfo.InvariantCulture) + " " + m.Groups[2].Value));

    static double? FirstNumber(string t)
    {
        var m = NumberPattern().Match(t);
        return m.Success ? double.Parse(m.Value, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Seconds in "10 minutes", "1 hour, 15 minutes and 30 seconds", "5 and a half minutes", "half a minute",
    /// "an hour and a half", "1h30", "une heure et demie", "un quart d'heure", "五分钟", "一个半小时", "半分钟".</summary>
    static long? DurationOf(string t)
    {
        // Halves and quarters become decimals of their unit, so that one pattern reads every duration.
        t = HalfAfterNumber().Replace(t, "$1.5 $2");
        t = HalfAfterUnit().Replace(t, "$1.5 $2");
        t = HalfOfUnit().Replace(t, "0.5 $1");
        t = FrenchHalf().Replace(t, "$1.5 $2");
        t = FrenchDemi().Replace(t, "0.5 $1");
        t = FrenchHoursMinutes().Replace(t, "$1 h $2 min");
        t = QuarterHour().Replace(t, "15 minutes");
        t = ChineseHalf().Replace(t, "$1.5$2");
        t = t.Replace("半小时", "0.5小时").Replace("半个小时", "0.5小时").Replace("半个钟", "0.5钟头").Replace("半分钟", "0.5分钟").Replace("1刻钟", "15分钟");
        double total = 0;
        bool found = false;
        foreach (Match m in DurationPattern().Matches(t))
        {
            double n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            string unit = m.Groups[2].Value;
            total += n * (unit[0] is 'h' or '小' or '钟' ? 3600 : unit[0] is 's' or '秒' ? 1 : 60);
            found = true;
        }
        return found ? (long)Math.Round(total) : null;
    }

    /// <summary>24-hour "HH:MM" from "7am", "at 6:30 pm", "7 30", "早上7点半", "晚上10点", "7h30", "à 7 heures du soir", "midi".</summary>
    static string? TimeOf(string t)
    {
        int h, min = 0;
        if (Has(t, "noon", "midi", "中午12点")) return "12:00";
        if (Has(t, "midnight", "minuit", "半夜12点")) return "00:00";
        var zh = ChineseTime().Match(t);
        var fr = FrenchTime().Match(t);
        var en = EnglishTime().Match(t);
        if (zh.Success)
        {
            h = int.Parse(zh.Groups[2].Value, CultureInfo.InvariantCulture);
            string rest = zh.Groups[3].Value;
            min = rest switch { "半" => 30, "1刻" => 15, "3刻" => 45, "" => 0, _ => int.Parse(rest.TrimEnd('分'), CultureInfo.InvariantCulture) };
            if (zh.Groups[1].Value is "下午" or "晚上" or "傍晚" && h < 12) h += 12;
        }
        else if (fr.Success)
        {
            h = int.Parse(fr.Groups[1].Value, CultureInfo.InvariantCulture);
            string rest = fr.Groups[2].Value.Trim();
            min = rest switch { "" => 0, "et demie" => 30, "et quart" => 15, _ => int.Parse(rest, CultureInfo.InvariantCulture) };
            if (Has(t, "du soir", "de l'après midi", "de l'aprem") && h < 12) h += 12;
        }
        else if (en.Success)
        {
            h = int.Parse(en.Groups[1].Value, CultureInfo.InvariantCulture);
            if (en.Groups[2].Success) min = int.Parse(en.Groups[2].Value, CultureInfo.InvariantCulture);
            string ampm = en.Groups[3].Value;
            bool pm = ampm.StartsWith('p') || ampm is "in the evening" or "in the afternoon" or "tonight" || Has(t, "tonight", "this evening");
            if (pm && h < 12) h += 12;
            if (ampm.StartsWith('a') && h == 12) h = 0;
        }
        else return null;
        if (h > 23 || min > 59) return null;
        return $"{h:D2}:{min:D2}";
    }

    /// <summary>The contact in "call mom", "phone Dr. Li please", "给妈妈打电话", "打电话给张伟", "appelle Marie", "téléphone à Paul".</summary>
    static string? ContactOf(string original)
    {
        foreach (var p in new[] { EnglishCall(), ChineseCall(), ChineseCall2(), FrenchCall() })
        {
            var m = p.Match(original.Trim());
            if (m.Success && m.Groups["who"].Value.Trim() is { Length: > 0 } who) return who;
        }
        return null;
    }

    [GeneratedRegex(@"(?:[\s,;!?-]|\.(?!\d))+")]
    private static partial Regex WordSplit();
    [GeneratedRegex(@"(?<![a-zé])(d'|l')(?=(?:un|une|onze|\d)(?![a-zé]))")]
    private static partial Regex ElidedNumber();
    [GeneratedRegex(@"(\d+) ?(degrés?|degrees?|度)? ?(?:et demi|and a half|半)")]
    private static partial Regex DegreesAndHalf();
    [GeneratedRegex(@"(\d),(\d)")]
    private static partial Regex DecimalComma();
    [GeneratedRegex(@"百分之\s*([零一二两三四五六七八九十百\d]+)")]
    private static partial Regex ChinesePercent();
    [GeneratedRegex(@"(\d+)点(\d+)(度)")]
    private static partial Regex ChineseDecimal();
    [GeneratedRegex(@"\d+(?:\.\d+)?")]
    private static partial Regex NumberPattern();
    [GeneratedRegex(@"(\d+) and a half (hour|minute|second)")]
    private static partial Regex HalfAfterNumber();
    [GeneratedRegex(@"(\d+) (hour|minute|second)s? and a half")]
    private static partial Regex HalfAfterUnit();
    [GeneratedRegex(@"(?<![a-z])half (?:an? |1 )?(hour|minute|second)")]
    private static partial Regex HalfOfUnit();
    [GeneratedRegex(@"(\d+) (heures?|minutes?) et demie?")]
    private static partial Regex FrenchHalf();
    [GeneratedRegex(@"(?:1 )?demi (heure|minute)")]
    private static partial Regex FrenchDemi();
    [GeneratedRegex(@"(?<![\d:])(\d{1,2}) ?h ?(\d{1,2})(?![\d:])")]
    private static partial Regex FrenchHoursMinutes();
    [GeneratedRegex(@"(?:1 )?(?:quarter of (?:an|1) hour|quart d'heure)")]
    private static partial Regex QuarterHour();
    [GeneratedRegex(@"(\d+)\s*个?半\s*(小时|钟头|分钟)")]
    private static partial Regex ChineseHalf();
    [GeneratedRegex(@"(\d+(?:\.\d+)?)\s*(?:个)?\s*(hours?|hrs?|h\b|heures?|小时|钟头|minutes?|mins?|min\b|分钟|分(?=\s*\d)|seconds?|secs?|secondes?|秒钟?)(?![a-zé])")]
    private static partial Regex DurationPattern();
    [GeneratedRegex(@"(早上|上午|中午|下午|晚上|傍晚|凌晨)?(\d{1,2})\s*[点點:]\s*(半|1刻|3刻|\d{1,2}分?)?")]
    private static partial Regex ChineseTime();
    [GeneratedRegex(@"(?<![\d:])(\d{1,2})\s*(?:h|heures?)(?![a-z])\s*(\d{2}|et demie|et quart)?")]
    private static partial Regex FrenchTime();
    [GeneratedRegex(@"(?:at |for |to )?(?<![\d:])(\d{1,2})(?:[: ](\d{2}))?\s*(a\.?m\.?|p\.?m\.?|o'clock|in the morning|in the evening|in the afternoon|tonight)?(?=\s|$)")]
    private static partial Regex EnglishTime();
    [GeneratedRegex(@"^(?:please\s+)?(?:call|phone|dial|ring)\s+(?<who>.+?)(?:\s+(?:please|now|on speaker))?[.!?]*$", RegexOptions.IgnoreCase)]
    private static partial Regex EnglishCall();
    [GeneratedRegex(@"^(?:请|帮我)?给(?<who>.+?)打(?:个|一个|一通)?电话[。！]?$")]
    private static partial Regex ChineseCall();
    [GeneratedRegex(@"^(?:请|帮我)?(?:打电话给|呼叫|拨打|拨通)(?<who>.+?)(?:的电话)?[。！]?$")]
    private static partial Regex ChineseCall2();
    [GeneratedRegex(@"^(?:peux-tu\s+|pourrais-tu\s+)?(?:appelle|appeler|téléphone à|téléphoner à|passe un coup de fil à)\s+(?<who>.+?)(?:\s+s'il te plaît|\s+stp)?[.!?]*$", RegexOptions.IgnoreCase)]
    private static partial Regex FrenchCall();
}
