namespace Tandem.Compression.Evaluation;

/// <summary>
/// A progress bar on stderr: redrawn in place (carriage return) when stderr is a terminal, otherwise one plain line
/// per tenth of the work, so logs stay readable.
/// </summary>
public sealed class ConsoleProgress(string label)
{
    readonly bool _interactive = !Console.IsErrorRedirected;
    int _lastTenth = -1;

    public void Report(int done, int total)
    {
        if (total <= 0) return;
        double fraction = Math.Clamp((double)done / total, 0, 1);
        if (_interactive)
        {
            const int width = 30;
            int filled = (int)(fraction * width);
            Console.Error.Write($"\r{label} [{new string('#', filled)}{new string('.', width - filled)}] {done}/{total}");
            if (done >= total) Console.Error.WriteLine();
        }
        else
        {
            int tenth = (int)(fraction * 10);
            if (tenth == _lastTenth) return;
            _lastTenth = tenth;
            Console.Error.WriteLine($"{label}: {done}/{total}");
        }
    }
}
