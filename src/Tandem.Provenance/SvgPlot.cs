using System.Globalization;
using System.Text;

namespace Tandem.Provenance;

/// <summary>
/// A hand-written SVG of per-layer signatures: one panel per attention projection with each model's weight std by
/// layer (the HonestAGI input, scaled by the model's largest value), and one panel with the permutation-invariant
/// similarity of every pair along its layer alignment (1 = same layer function, 0 = unrelated).
/// </summary>
public static class SvgPlot
{
    static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
    const int PanelW = 300, PanelH = 180, Pad = 40;

    public static string Render(IReadOnlyList<ModelSignature> models, IReadOnlyList<PairReport> pairs)
    {
        int panels = 5, cols = 3, rows = (panels + cols - 1) / cols;
        int width = cols * (PanelW + Pad) + Pad, legendH = 20 * (models.Count + pairs.Count) + 20;
        int height = rows * (PanelH + 2 * Pad) + legendH + Pad;
        var b = new StringBuilder();
        b.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        b.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        for (int p = 0; p < 4; p++)
        {
            var series = models.Select(m =>
            {
                double max = m.ProjectionStd.Max(s => s.Max());
                return m.ProjectionStd[p].Select(v => v / max).ToArray();
            }).ToList();
            Panel(b, p % cols, p / cols, $"{ModelSignature.ProjectionNames[p]} weight std by layer (÷ model max)", series, null);
        }
        var sims = pairs.Select(r => r.Results.First(x => x.Method == Methods.LayerInvariant))
            .Select(r =>
            {
                // indexed by A's layer; a layer with no partner (the deeper model's extra layer) stays a gap
                var row = Enumerable.Repeat(double.NaN, r.Layers.Count == 0 ? 0 : r.Layers.Max(l => l.A) + 1).ToArray();
                foreach (var l in r.Layers) row[l.A] = l.Similarity;
                return row;
            }).ToList();
        Panel(b, 4 % cols, 4 / cols, "layer-invariant similarity by layer of the pair's first model", sims, (0, 1));

        int y = rows * (PanelH + 2 * Pad) + 10;
        for (int i = 0; i < models.Count; i++, y += 20)
            Legend(b, y, Colors[i % Colors.Length], $"model {i + 1}: {System.IO.Path.GetFileName(models[i].Path)}");
        for (int i = 0; i < pairs.Count; i++, y += 20)
            Legend(b, y, Colors[i % Colors.Length], $"pair {PairName(models, pairs[i])}: {pairs[i].Verdict.ToString().ToLowerInvariant()} ({pairs[i].Evidence})");
        b.Append("</svg>\n");
        return b.ToString();
    }

    static string PairName(IReadOnlyList<ModelSignature> models, PairReport p)
    {
        int a = models.ToList().FindIndex(m => m.Path == p.A) + 1, c = models.ToList().FindIndex(m => m.Path == p.B) + 1;
        return $"{a}–{c}";
    }

    static void Legend(StringBuilder b, int y, string color, string text)
    {
        b.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Pad}\" y=\"{y}\" width=\"14\" height=\"4\" fill=\"{color}\"/>");
        b.Append(CultureInfo.InvariantCulture, $"<text x=\"{Pad + 20}\" y=\"{y + 6}\">{Escape(text)}</text>\n");
    }

    static void Panel(StringBuilder b, int col, int row, string title, IReadOnlyList<double[]> series, (double Lo, double Hi)? range)
    {
        double x0 = Pad + col * (PanelW + Pad), y0 = Pad + row * (PanelH + 2 * Pad);
        var all = series.SelectMany(s => s).Where(v => !double.IsNaN(v)).ToList();
        double lo = range?.Lo ?? (all.Count > 0 ? all.Min() : 0), hi = range?.Hi ?? (all.Count > 0 ? all.Max() : 1);
        if (range is null) { double m = (hi - lo) * 0.1 + 1e-9; lo -= m; hi += m; }
        int n = series.Count == 0 ? 1 : Math.Max(2, series.Max(s => s.Length));
        b.Append(CultureInfo.InvariantCulture, $"<text x=\"{x0}\" y=\"{y0 - 8}\" font-weight=\"bold\">{Escape(title)}</text>\n");
        b.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x0}\" y=\"{y0}\" width=\"{PanelW}\" height=\"{PanelH}\" fill=\"none\" stroke=\"#999\"/>\n");
        b.Append(CultureInfo.InvariantCulture, $"<text x=\"{x0 - 4}\" y=\"{y0 + 10}\" text-anchor=\"end\">{hi:G3}</text><text x=\"{x0 - 4}\" y=\"{y0 + PanelH}\" text-anchor=\"end\">{lo:G3}</text>\n");
        b.Append(CultureInfo.InvariantCulture, $"<text x=\"{x0}\" y=\"{y0 + PanelH + 14}\">layer 0</text><text x=\"{x0 + PanelW}\" y=\"{y0 + PanelH + 14}\" text-anchor=\"end\">layer {n - 1}</text>\n");
        for (int s = 0; s < series.Count; s++)
        {
            var pts = new StringBuilder();
            for (int i = 0; i < series[s].Length; i++)
            {
                if (double.IsNaN(series[s][i])) continue;
                double x = x0 + PanelW * i / (double)(n - 1), y = y0 + PanelH * (1 - (series[s][i] - lo) / (hi - lo));
                pts.Append(CultureInfo.InvariantCulture, $"{x:F1},{y:F1} ");
                b.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{x:F1}\" cy=\"{y:F1}\" r=\"2.5\" fill=\"{Colors[s % Colors.Length]}\"/>");
            }
            b.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{pts.ToString().Trim()}\" fill=\"none\" stroke=\"{Colors[s % Colors.Length]}\" stroke-width=\"1.5\" stroke-opacity=\"0.8\"/>\n");
        }
    }

    static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
