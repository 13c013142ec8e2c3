using System.Diagnostics;

namespace Tandem.Cli;

/// <summary>
/// Progress on stderr: on a terminal, one line redrawn in place (a bar, the percentage and what is being done);
/// when stderr is redirected, plain lines, one per finished step, so logs stay readable.
/// </summary>
public sealed class ProgressLine
{
    const int BarWidth = 30;
    readonly TextWriter _err = Console.Error;
    readonly bool _inPlace = !Console.IsErrorRedirected;
    readonly Stopwatch _sinceDraw = Stopwatch.StartNew();
    int _lastLength;

    /// <summary>Redraws the line (at most ten times a second unless <paramref name="force"/>); no-op when not on a terminal.</summary>
    public void Update(double fraction, string text, bool force = false)
    {
        if (!_inPlace || (!force && _sinceDraw.ElapsedMilliseconds < 100)) return;
        _sinceDraw.Restart();
        fraction = Math.Clamp(fraction, 0, 1);
        int filled = (int)(fraction * BarWidth);
        string line = $"[{new string('#', filled)}{new string('.', BarWidth - filled)}] {fraction * 100,5:0.0}% {text}";
        int width = Console.IsErrorRedirected ? 120 : Math.Max(40, SafeWidth() - 1);
        if (line.Length > width) line = line[..width];
        _err.Write("\r" + line + new string(' ', Math.Max(0, _lastLength - line.Length)));
        _lastLength = line.Length;
    }

    /// <summary>A finished step: a plain line when not on a terminal (on a terminal the redrawn line shows it).</summary>
    public void Step(string text)
    {
        if (!_inPlace) _err.WriteLine(text);
    }

    /// <summary>Ends the redrawn line so that what follows starts on a fresh line.</summary>
    public void Finish()
    {
        if (_inPlace && _lastLength > 0) _err.WriteLine();
        _lastLength = 0;
    }

    static int SafeWidth()
    {
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 120; }
        catch (IOException) { return 120; }
    }
}
