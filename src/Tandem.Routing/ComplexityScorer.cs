using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tandem.Routing;

/// <summary>A labelled request: the prompt and whether the device can answer it ("local") or it needs the cloud ("cloud").</summary>
public sealed record LabelledPrompt(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("lang")] string? Language = null,
    [property: JsonPropertyName("source")] string? Source = null,
    [property: JsonPropertyName("group")] string? Group = null)
{
    // "group" (optional) names items that are variations of one another (e.g. the sentences of one Home Assistant intent
    // file); cross-validation keeps a group in one fold, as the held-out split keeps it on one side.
    public bool IsCloud => Label == "cloud";

    /// <summary>Reads JSON lines; a bad line is an error naming the line.</summary>
    public static List<LabelledPrompt> ReadJsonLines(string path)
    {
        var list = new List<LabelledPrompt>();
        int n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            LabelledPrompt? p;
            try { p = JsonSerializer.Deserialize<LabelledPrompt>(line); }
            catch (JsonException ex) { throw new FormatException($"{path}:{n}: not a JSON object ({ex.Message})"); }
            if (p?.Prompt is null || p.Label is not ("local" or "cloud"))
                throw new FormatException($"{path}:{n}: expected {{\"prompt\": TEXT, \"label\": \"local\"|\"cloud\"}}");
            list.Add(p);
        }
        if (list.Count == 0) throw new FormatException($"{path}: no labelled prompts");
        return list;
    }
}

/// <summary>How training weighs examples, so that a group with many examples does not drown a small one.</summary>
public enum ClassBalance
{
    /// <summary>Every example counts once.</summary>
    None,
    /// <summary>The two labels weigh the same in total.</summary>
    Label,
    /// <summary>Every (language, label) pair weighs the same in total, so that, say, Chinese does not read as "cloud"
    /// just because the Chinese training data is mostly math.</summary>
    LanguageLabel,
}

/// <summary>Training settings for <see cref="ComplexityScorer.Train"/>.</summary>
public sealed record ScorerTrainingOptions
{
    // Defaults chosen by 5-fold cross-validation over the shipped training data (see Data/README.md).
    public int Epochs { get; init; } = 150;
    public double LearningRate { get; init; } = 0.2;
    public double L2 { get; init; } = 1e-4;
    public int Seed { get; init; } = 1;
    public double Threshold { get; init; } = 0.55;
    public ClassBalance Balance { get; init; } = ClassBalance.LanguageLabel;
}

/// <summary>
/// Complexity score of a request, P(needs the cloud), by logistic regression over a sparse feature vector:
/// dense features (length, turns, script, task cues) followed by hashed word uni/bigrams and character 1–3-grams
/// (the latter so that Chinese, written without spaces, gets n-grams too).
/// Model file (JSON): {"version":1,"buckets":B,"threshold":T,"bias":b,"dense":[w per dense feature],
/// "hashed":{"index":w,…}} — hashed weights are stored sparsely (only non-zero buckets).
/// </summary>
public sealed class ComplexityScorer
{
    public const int DefaultBuckets = 1 << 14;
    public int Buckets { get; }
    public double Threshold { get; set; }
    readonly double[] _dense = new double[RequestFeatures.DenseCount];
    readonly double[] _hashed;
    double _bias;

    public ComplexityScorer(int buckets = DefaultBuckets, double threshold = 0.5)
    {
        if (buckets <= 0 || (buckets & (buckets - 1)) != 0) throw new ArgumentException($"buckets must be a power of two, got {buckets}");
        Buckets = buckets;
        Threshold = threshold;
        _hashed = new double[buckets];
    }

    /// <summary>P(cloud) for a request text with this many turns.</summary>
    public double Score(string text, int turns = 1) => Score(RequestFeatures.Extract(text, turns, Buckets));

    public double Score(RequestFeatures f)
    {
        double z = _bias;
        for (int i = 0; i < f.Dense.Length; i++) z += _dense[i] * f.Dense[i];
        foreach (var (index, value) in f.Hashed) z += _hashed[index] * value;
        return 1 / (1 + Math.Exp(-z));
    }

    public bool NeedsCloud(string text, int turns = 1) => Score(text, turns) >= Threshold;

    /// <summary>Stochastic gradient descent on the log loss, examples shuffled by a seeded PRNG each epoch (deterministic).</summary>
    public static ComplexityScorer Train(IReadOnlyList<LabelledPrompt> data, ScorerTrainingOptions? options = null, int buckets = DefaultBuckets)
    {
        options ??= new();
        var model = new ComplexityScorer(buckets, options.Threshold);
        var features = data.Select(d => RequestFeatures.Extract(d.Prompt, 1, buckets)).ToArray();
        var weight = ExampleWeights(data, options.Balance);
        var order = Enumerable.Range(0, data.Count).ToArray();
        var rng = new Random(options.Seed);
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            rng.Shuffle(order);
            double lr = options.LearningRate / (1 + epoch * 0.1);
            foreach (int i in order)
            {
                var f = features[i];
                double err = weight[i] * (model.Score(f) - (data[i].IsCloud ? 1 : 0)); // d(weighted log loss)/dz
                model._bias -= lr * err;
                for (int j = 0; j < f.Dense.Length; j++) model._dense[j] -= lr * (err * f.Dense[j] + options.L2 * model._dense[j]);
                foreach (var (index, value) in f.Hashed) model._hashed[index] -= lr * (err * value + options.L2 * model._hashed[index]);
            }
        }
        return model;
    }

    /// <summary>Per-example loss weights: each group of <paramref name="balance"/> gets the same total, the mean weight is 1.</summary>
    static double[] ExampleWeights(IReadOnlyList<LabelledPrompt> data, ClassBalance balance)
    {
        Func<LabelledPrompt, string> group = balance switch
        {
            ClassBalance.Label => d => d.Label,
            ClassBalance.LanguageLabel => d => (d.Language ?? "?") + "/" + d.Label,
            _ => _ => "",
        };
        var counts = data.GroupBy(group).ToDictionary(g => g.Key, g => g.Count());
        return data.Select(d => (double)data.Count / (counts.Count * counts[group(d)])).ToArray();
    }

    sealed class FileModel
    {
        [JsonPropertyName("version")] public int Version { get; set; } = 1;
        [JsonPropertyName("buckets")] public int Buckets { get; set; }
        [JsonPropertyName("threshold")] public double Threshold { get; set; }
        [JsonPropertyName("bias")] public double Bias { get; set; }
        [JsonPropertyName("dense_features")] public string[] DenseNames { get; set; } = [];
        [JsonPropertyName("dense")] public double[] Dense { get; set; } = [];
        [JsonPropertyName("hashed")] public Dictionary<string, double> Hashed { get; set; } = [];
    }

    /// <summary>Writes the model file (to a temporary name first, so a failed write leaves no half file).</summary>
    public void Save(string path)
    {
        var file = new FileModel
        {
            Buckets = Buckets, Threshold = Threshold, Bias = Math.Round(_bias, 6),
            DenseNames = RequestFeatures.DenseNames.ToArray(), Dense = _dense.Select(w => Math.Round(w, 6)).ToArray(),
        };
        for (int i = 0; i < _hashed.Length; i++)
            if (Math.Abs(_hashed[i]) >= 1e-5) file.Hashed[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Math.Round(_hashed[i], 5);
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(file, new JsonSerializerOptions { WriteIndented = false }));
        File.Move(tmp, path, overwrite: true);
    }

    public static ComplexityScorer Load(string path)
    {
        FileModel? file;
        try { file = JsonSerializer.Deserialize<FileModel>(File.ReadAllText(path)); }
        catch (JsonException ex) { throw new FormatException($"{path}: not a router model ({ex.Message})"); }
        if (file is null || file.Version != 1 || file.Dense.Length != RequestFeatures.DenseCount)
            throw new FormatException($"{path}: not a version-1 router model with {RequestFeatures.DenseCount} dense features");
        var m = new ComplexityScorer(file.Buckets, file.Threshold) { _bias = file.Bias };
        file.Dense.CopyTo(m._dense, 0);
        foreach (var (k, w) in file.Hashed)
        {
            int i = int.Parse(k, System.Globalization.CultureInfo.InvariantCulture);
            if ((uint)i >= (uint)m.Buckets) throw new FormatException($"{path}: hashed index {i} outside {m.Buckets} buckets");
            m._hashed[i] = w;
        }
        return m;
    }

    /// <summary>The model shipped with Tandem (Data/router-weights.json, copied next to the assembly as routing/router-weights.json).</summary>
    public static ComplexityScorer LoadDefault() => Load(DefaultModelPath);

    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "routing", "router-weights.json");
}

/// <summary>How a scorer does on labelled prompts: accuracy and the confusion matrix (cloud = positive).</summary>
public sealed record ScorerEvaluation(int Total, int TruePositive, int FalsePositive, int TrueNegative, int FalseNegative)
{
    public double Accuracy => Total == 0 ? 0 : (double)(TruePositive + TrueNegative) / Total;
    /// <summary>Share of requests the scorer keeps on the device.</summary>
    public double LocalShare => Total == 0 ? 0 : (double)(TrueNegative + FalseNegative) / Total;

    public static ScorerEvaluation Of(ComplexityScorer scorer, IEnumerable<LabelledPrompt> data)
    {
        int tp = 0, fp = 0, tn = 0, fn = 0;
        foreach (var d in data)
        {
            bool cloud = scorer.NeedsCloud(d.Prompt);
            if (cloud && d.IsCloud) tp++; else if (cloud) fp++; else if (d.IsCloud) fn++; else tn++;
        }
        return new ScorerEvaluation(tp + fp + tn + fn, tp, fp, tn, fn);
    }

    public override string ToString() =>
        $"accuracy {Accuracy:P1} ({TruePositive + TrueNegative}/{Total}); kept local {LocalShare:P0}; confusion [label cloud→cloud {TruePositive}, cloud→local {FalseNegative}, local→cloud {FalsePositive}, local→local {TrueNegative}]";
}
