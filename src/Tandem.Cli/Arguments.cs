using System.Globalization;

namespace Tandem.Cli;

/// <summary>One command-line option. A null <see cref="Value"/> makes it a flag.</summary>
public sealed record OptionSpec(string Long, string? Short, string? Value, string Help, bool Repeatable = false);

/// <summary>
/// A small GNU-style parser: <c>--name value</c>, <c>--name=value</c>, <c>-x value</c>, flags, positionals,
/// and <c>--</c> to end options. An option that takes a value takes the next argument whatever it is,
/// so prompts and negative numbers can start with '-'.
/// </summary>
public sealed class Arguments
{
    readonly string _command;
    readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    public List<string> Positionals { get; } = [];

    Arguments(string command) => _command = command;

    public static Arguments Parse(string command, IReadOnlyList<string> args, IReadOnlyList<OptionSpec> specs)
    {
        var result = new Arguments(command);
        bool optionsEnded = false;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (optionsEnded || arg.Length < 2 || arg[0] != '-')
            {
                result.Positionals.Add(arg);
                continue;
            }
            if (arg == "--") { optionsEnded = true; continue; }

            string name = arg;
            string? inline = null;
            int eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 2) { name = arg[..eq]; inline = arg[(eq + 1)..]; }

            var spec = specs.FirstOrDefault(s => s.Long == name || s.Short == name)
                ?? throw new UsageException($"unknown option '{name}' for 'tandem {command}'; see 'tandem {command} --help'");
            string value;
            if (spec.Value is null)
            {
                if (inline is not null) throw new UsageException($"option {spec.Long} takes no value");
                value = "true";
            }
            else if (inline is not null) value = inline;
            else if (i + 1 < args.Count) value = args[++i];
            else throw new UsageException($"option {spec.Long} needs a value ({spec.Value})");

            if (!result._values.TryGetValue(spec.Long, out var list)) result._values[spec.Long] = list = [];
            else if (!spec.Repeatable) throw new UsageException($"option {spec.Long} given more than once");
            list.Add(value);
        }
        return result;
    }

    public bool Has(string name) => _values.ContainsKey(name);
    public string? String(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;
    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var v) ? v : [];
    public bool Flag(string name) => Has(name);

    public int Int(string name, int fallback, int min = int.MinValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
            throw new UsageException($"option {name} expects an integer, got '{s}'");
        if (v < min) throw new UsageException($"option {name} must be at least {min}, got {v}");
        return v;
    }

    public float Float(string name, float fallback, float min = float.NegativeInfinity, float max = float.PositiveInfinity) =>
        Real(name, fallback, min, max);

    /// <summary>Like <see cref="Float"/> at double precision, for settings that must round-trip exactly (e.g. 1e-4).</summary>
    public double Double(string name, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity) =>
        Real(name, fallback, min, max);

    T Real<T>(string name, T fallback, T min, T max) where T : struct, System.Numerics.IFloatingPointIeee754<T>
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!T.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out T v) || T.IsNaN(v))
            throw new UsageException($"option {name} expects a number, got '{s}'");
        if (v < min || v > max) throw new UsageException($"option {name} must be between {min} and {max}, got {s}");
        return v;
    }

    public ulong? ULong(string name)
    {
        var s = String(name);
        if (s is null) return null;
        if (!ulong.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong v))
            throw new UsageException($"option {name} expects a non-negative integer, got '{s}'");
        return v;
    }

    /// <summary>Fails on positionals beyond <paramref name="max"/>.</summary>
    public void AllowPositionals(int max, string what)
    {
        if (Positionals.Count > max)
            throw new UsageException($"unexpected argument '{Positionals[max]}' for 'tandem {_command}'" + (max > 0 ? $" (expected {what})" : "") + $"; see 'tandem {_command} --help'");
    }
}
