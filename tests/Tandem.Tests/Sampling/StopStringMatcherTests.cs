using System.Text;
using Tandem.Engine.Generation;

namespace Tandem.Tests.Sampling;

public class StopStringMatcherTests
{
    // Feeds the pieces and returns everything emitted, flushing at the end unless stopped.
    static string Feed(StopStringMatcher m, params string[] pieces)
    {
        var sb = new StringBuilder();
        foreach (var p in pieces) sb.Append(m.Push(p));
        sb.Append(m.Flush());
        return sb.ToString();
    }

    [Fact]
    public void WithoutStopStringsTextPassesThrough()
    {
        var m = new StopStringMatcher([]);
        Assert.Equal("abc", m.Push("abc"));
        Assert.Equal(0, m.HeldLength);
        Assert.False(m.Stopped);
    }

    [Fact]
    public void StopInsideOnePieceCutsBeforeIt()
    {
        var m = new StopStringMatcher(["</s>"]);
        Assert.Equal("Hello ", m.Push("Hello </s> world"));
        Assert.True(m.Stopped);
        Assert.Equal("</s>", m.Matched);
        Assert.Equal("", m.Push("more"));
        Assert.Equal("", m.Flush());
    }

    [Fact]
    public void StopSpanningPiecesIsNeverEmitted()
    {
        var m = new StopStringMatcher(["<|im_end|>"]);
        Assert.Equal("Hi ", m.Push("Hi <|"));
        Assert.Equal(2, m.HeldLength);
        Assert.Equal("", m.Push("im_"));
        Assert.Equal("", m.Push("end|> trailing"));
        Assert.True(m.Stopped);
    }

    [Fact]
    public void FalseStartIsReleasedOnceItCannotMatch()
    {
        var m = new StopStringMatcher(["STOP"]);
        Assert.Equal("a", m.Push("aST"));
        Assert.Equal("STx", m.Push("x"));
        Assert.False(m.Stopped);
    }

    [Fact]
    public void HeldTextIsReleasedByFlush()
    {
        var m = new StopStringMatcher(["\n\nUser:"]);
        Assert.Equal("end", m.Push("end\n\nUs"));
        Assert.Equal("\n\nUs", m.Flush());
    }

    [Fact]
    public void TextThatCannotStartAStopIsNotHeld()
    {
        var m = new StopStringMatcher(["abc"]);
        Assert.Equal("xyz", m.Push("xyz"));
        Assert.Equal(0, m.HeldLength);
    }

    [Fact]
    public void OverlappingPrefixesAreHandled()
    {
        Assert.Equal("a", Feed(new StopStringMatcher(["aab"]), "a", "a", "a", "b", "c"));
        Assert.Equal("xaaa", Feed(new StopStringMatcher(["aab"]), "xa", "aa"));
    }

    [Fact]
    public void EarliestOfSeveralStopsWins()
    {
        var m = new StopStringMatcher(["world", "lo w"]);
        Assert.Equal("hel", Feed(m, "hello ", "world"));
        Assert.Equal("lo w", m.Matched);
    }

    [Fact]
    public void EmptyStopStringsAreIgnored()
    {
        Assert.Equal("abc", Feed(new StopStringMatcher(["", "zz"]), "a", "bc"));
    }

    [Fact]
    public void AnySplitGivesTheSameOutputAsTheWholeText()
    {
        string[] stops = ["<|im_end|>", "\n\n", "ab ab", "é!"];
        string alphabet = "ab <|im_end>\né!x";
        var rng = new Random(17);
        for (int trial = 0; trial < 2000; trial++)
        {
            int len = rng.Next(0, 30);
            var text = new string(Enumerable.Range(0, len).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray());
            if (trial % 5 == 0) text = text.Insert(rng.Next(text.Length + 1), stops[rng.Next(stops.Length)]);

            int cut = stops.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            string expected = cut >= 0 ? text[..cut] : text;

            var pieces = new List<string>();
            for (int i = 0; i < text.Length;)
            {
                int n = Math.Min(rng.Next(0, 5), text.Length - i);
                pieces.Add(text.Substring(i, n));
                i += n;
            }
            var m = new StopStringMatcher(stops);
            Assert.Equal(expected, Feed(m, pieces.ToArray()));
            Assert.Equal(cut >= 0, m.Stopped);
        }
    }

    [Fact]
    public void PlainTextPassesWithoutCopying()
    {
        var m = new StopStringMatcher(["<|im_end|>"]);
        string piece = " once upon a time";
        Assert.Same(piece, m.Push(piece));
        Assert.Equal("x", m.Push("x<"));
        Assert.Equal("<y", m.Push("y")); // held text is released with the next piece
    }
}
