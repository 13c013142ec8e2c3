using System.Globalization;
using System.Text;

namespace Tandem.Tokenizers;

/// <summary>Per-codepoint classification used by the pre-tokenizers (Unicode general category, collapsed to the classes regexes use).</summary>
[Flags]
internal enum CpFlags : ushort
{
    None = 0,
    Undefined = 0x0001,
    Number = 0x0002,
    Letter = 0x0004,
    Separator = 0x0008,
    Mark = 0x0010,
    Punctuation = 0x0020,
    Symbol = 0x0040,
    Control = 0x0080,
    CategoryMask = 0x00FF,
    Whitespace = 0x0100,
}

internal static class Unicode
{
    static readonly CpFlags[] s_bmp = BuildBmp();

    static CpFlags[] BuildBmp()
    {
        var t = new CpFlags[0x10000];
        for (int c = 0; c < t.Length; c++) t[c] = Compute(c);
        return t;
    }

    static CpFlags Compute(int cp)
    {
        CpFlags f = (cp >= 0xD800 && cp <= 0xDFFF) ? CpFlags.Control : CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CpFlags.Letter,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => CpFlags.Mark,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CpFlags.Number,
            UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => CpFlags.Separator,
            UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
                or UnicodeCategory.OtherPunctuation => CpFlags.Punctuation,
            UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol or UnicodeCategory.OtherSymbol => CpFlags.Symbol,
            UnicodeCategory.OtherNotAssigned => CpFlags.Undefined,
            _ => CpFlags.Control,
        };
        if (IsWhitespaceCp(cp)) f |= CpFlags.Whitespace;
        return f;
    }

    /// <summary>The Unicode White_Space property (the set regex \s stands for).</summary>
    public static bool IsWhitespaceCp(int cp) => cp switch
    {
        >= 0x09 and <= 0x0D => true,
        0x20 or 0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A => true,
        0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    public static CpFlags Flags(int cp) => (uint)cp < 0x10000 ? s_bmp[cp] : cp <= 0x10FFFF ? Compute(cp) : CpFlags.None;

    public static bool IsLetter(int cp) => (Flags(cp) & CpFlags.Letter) != 0;
    public static bool IsNumber(int cp) => (Flags(cp) & CpFlags.Number) != 0;
    public static bool IsWhitespace(int cp) => (Flags(cp) & CpFlags.Whitespace) != 0;

    /// <summary>Codepoints of a string; unpaired surrogates become U+FFFD (as UTF-8 encoding would make them).</summary>
    public static int[] Codepoints(ReadOnlySpan<char> s)
    {
        var result = new int[s.Length];
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                result[n++] = char.ConvertToUtf32(c, s[i + 1]);
                i++;
            }
            else if (char.IsSurrogate(c)) result[n++] = 0xFFFD;
            else result[n++] = c;
        }
        return n == result.Length ? result : result.AsSpan(0, n).ToArray();
    }

    public static void AppendCodepoint(StringBuilder sb, int cp)
    {
        if (cp < 0x10000) sb.Append((char)cp);
        else sb.Append(char.ConvertFromUtf32(cp));
    }

    public static string FromCodepoints(ReadOnlySpan<int> cps)
    {
        var sb = new StringBuilder(cps.Length);
        foreach (var cp in cps) AppendCodepoint(sb, cp);
        return sb.ToString();
    }

    /// <summary>Number of bytes of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).</summary>
    public static int Utf8SequenceLength(byte lead) => lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;

    // ---- GPT-2 byte <-> unicode mapping ----

    /// <summary>The printable character standing for each byte in byte-level BPE vocabularies.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();
    /// <summary>Inverse of <see cref="ByteToChar"/>: -1 for characters that stand for no byte.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        var assigned = new bool[256];
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            if (printable) { map[b] = (char)b; assigned[b] = true; }
        }
        int next = 256;
        for (int b = 0; b < 256; b++)
            if (!assigned[b]) map[b] = (char)next++;
        return map;
    }

    static short[] BuildCharToByte()
    {
        var inv = new short[512];
        Array.Fill(inv, (short)-1);
        for (int b = 0; b < 256; b++) inv[ByteToChar[b]] = (short)b;
        return inv;
    }

    public static int ByteOfChar(char c) => c < 512 ? CharToByte[c] : -1;
}
