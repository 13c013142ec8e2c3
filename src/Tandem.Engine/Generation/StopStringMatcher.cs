using System.Buffers;
using System.Text;

namespace Tandem.Engine.Generation;

/// <summary>
/// Watches streamed text for stop strings. Text that could still turn out to be the start of a stop
/// string is held back; once a stop string appears, the text before it is released and the stop
/// string itself (and everything after it) is never emitted.
/// </summary>
public sealed class StopStringMatcher
{
    readonly string[] _stops;
    readonly SearchValues<char> _firstChars; // a stop string can only begin at one of these
    readonly StringBuilder _pending = new();

    public StopStringMatcher(IEnumerable<string> stopStrings)
    {
        _stops = stopStrings.Where(s => s.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
        _firstChars = SearchValues.Create(_stops.Select(s => s[0]).Distinct().ToArray());
    }

    public IReadOnlyList<string> StopStrings => _stops;
    /// <summary>True once a stop string has been seen; later input is ignored.</summary>
    public bool Stopped { get; private set; }
    /// <summary>The stop string that matched, if any.</summary>
    public string? Matched { get; private set; }
    /// <summary>Characters currently held back.</summary>
    public int HeldLength => _pending.Length;

    /// <summary>Adds streamed text; returns the part that is now safe to emit (possibly empty).</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        if (_stops.Length == 0) return text;
        // common case, without allocating: nothing held back and no stop string can begin in this text
        if (_pending.Length == 0 && !text.AsSpan().ContainsAny(_firstChars)) return text;
        _pending.Append(text);
        string s = _pending.ToString();

        // earliest stop string in the pending text
        int at = -1;
        foreach (var stop in _stops)
        {
            int i = s.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (at < 0 || i < at)) { at = i; Matched = stop; }
        }
        if (at >= 0)
        {
            Stopped = true;
            _pending.Clear();
            return s[..at];
        }

        // hold back the longest tail that is a proper prefix of some stop string
        int hold = 0;
        foreach (var stop in _stops)
        {
            for (int len = Math.Min(stop.Length - 1, s.Length); len > hold; len--)
                if (string.CompareOrdinal(s, s.Length - len, stop, 0, len) == 0) { hold = len; break; }
        }
        _pending.Clear();
        _pending.Append(s, s.Length - hold, hold);
        return s[..^hold];
    }

    /// <summary>At the end of generation: releases the held-back text (nothing if stopped).</summary>
    public string Flush()
    {
        string s = Stopped ? "" : _pending.ToString();
        _pending.Clear();
        return s;
    }
}
