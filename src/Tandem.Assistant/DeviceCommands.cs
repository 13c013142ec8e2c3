using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tandem.Assistant;

/// <summary>The JSON type of a tool argument.</summary>
public enum ArgType { String, Integer, Number }

/// <summary>One argument of a device function, as a JSON-schema-like spec: type, allowed values or range, required.</summary>
public sealed record ArgSpec(string Name, ArgType Type, string Description)
{
    public bool Required { get; init; } = true;
    public IReadOnlyList<string>? Enum { get; init; }
    public double? Minimum { get; init; }
    public double? Maximum { get; init; }
    /// <summary>A regular expression a string must match (e.g. a time of day).</summary>
    public string? Pattern { get; init; }
}

/// <summary>A function the device can perform.</summary>
public sealed record DeviceFunction(string Name, string Description, IReadOnlyList<ArgSpec> Args)
{
    /// <summary>The function as an OpenAI tool definition (<c>{"type":"function","function":{…,"parameters":JSON Schema}}</c>).</summary>
    public string ToToolJson()
    {
        var b = new MemoryStream();
        using (var w = new Utf8JsonWriter(b))
        {
            w.WriteStartObject();
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", Name);
            w.WriteString("description", Description);
            w.WriteStartObject("parameters");
            w.WriteString("type", "object");
            w.WriteStartObject("properties");
            foreach (var a in Args)
            {
                w.WriteStartObject(a.Name);
                w.WriteString("type", a.Type switch { ArgType.String => "string", ArgType.Integer => "integer", _ => "number" });
                w.WriteString("description", a.Description);
                if (a.Enum is { } e) { w.WriteStartArray("enum"); foreach (var v in e) w.WriteStringValue(v); w.WriteEndArray(); }
                if (a.Minimum is { } min) w.WriteNumber("minimum", min);
                if (a.Maximum is { } max) w.WriteNumber("maximum", max);
                if (a.Pattern is { } p) w.WriteString("pattern", p);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartArray("required");
            foreach (var a in Args.Where(a => a.Required)) w.WriteStringValue(a.Name);
            w.WriteEndArray();
            w.WriteBoolean("additionalProperties", false);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(b.ToArray());
    }
}

/// <summary>A call of a device function. Argument values are string, long or double.</summary>
public sealed record ToolCall(string Name, IReadOnlyDictionary<string, object> Arguments)
{
    /// <summary>The arguments as the JSON string OpenAI's tool_calls carry, keys sorted.</summary>
    public string ArgumentsJson()
    {
        var b = new MemoryStream();
        using (var w = new Utf8JsonWriter(b, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            foreach (var (k, v) in Arguments.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                switch (v)
                {
                    case long l: w.WriteNumber(k, l); break;
                    case double d: w.WriteNumber(k, d); break;
                    default: w.WriteString(k, Convert.ToString(v, CultureInfo.InvariantCulture)); break;
                }
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(b.ToArray());
    }

    public override string ToString() => Name + ArgumentsJson();
}

/// <summary>The registry of device functions (lights, thermostat, media, alarms, timers, calls) and call validation.</summary>
public sealed class DeviceCommands
{
    public static readonly IReadOnlyList<string> Rooms = ["living_room", "bedroom", "kitchen", "bathroom", "office", "dining_room", "hallway"];
    static readonly ArgSpec Room = new("room", ArgType.String, "the room; absent means the whole home") { Required = false, Enum = Rooms };

    public static DeviceCommands Default { get; } = new(
    [
        new("lights_set", "Turn lights on or off", [Room, new("state", ArgType.String, "on or off") { Enum = ["on", "off"] }]),
        new("lights_brightness", "Set the lights' brightness", [Room, new("level", ArgType.Integer, "brightness in percent") { Minimum = 0, Maximum = 100 }]),
        new("thermostat_set", "Set the target temperature", [Room, new("celsius", ArgType.Number, "target temperature in °C") { Minimum = 5, Maximum = 35 }]),
        new("media_control", "Control media playback", [new("action", ArgType.String, "what to do") { Enum = ["play", "pause", "resume", "stop", "next", "previous"] }]),
        new("media_volume", "Set the volume", [new("level", ArgType.Integer, "volume in percent") { Minimum = 0, Maximum = 100 }]),
        new("alarm_set", "Set an alarm", [new("time", ArgType.String, "time of day, 24-hour HH:MM") { Pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$" }]),
        new("timer_set", "Start a countdown timer", [new("seconds", ArgType.Integer, "duration in seconds") { Minimum = 1, Maximum = 86400 }]),
        new("call_contact", "Phone a contact", [new("contact", ArgType.String, "who to call, as the user named them")]),
    ]);

    readonly Dictionary<string, DeviceFunction> _functions;
    public IReadOnlyCollection<DeviceFunction> Functions => _functions.Values;

    public DeviceCommands(IEnumerable<DeviceFunction> functions) => _functions = functions.ToDictionary(f => f.Name, StringComparer.Ordinal);

    public DeviceFunction this[string name] => _functions.TryGetValue(name, out var f) ? f
        : throw new ArgumentException($"unknown device function '{name}'; expected one of {string.Join(", ", _functions.Keys)}");

    /// <summary>What is wrong with a call (empty when it is valid): unknown function or argument, missing, wrong type, out of range.</summary>
    public IReadOnlyList<string> Validate(ToolCall call)
    {
        if (!_functions.TryGetValue(call.Name, out var f)) return [$"unknown function '{call.Name}'"];
        var errors = new List<string>();
        foreach (var name in call.Arguments.Keys)
            if (!f.Args.Any(a => a.Name == name)) errors.Add($"{f.Name}: unknown argument '{name}'");
        foreach (var a in f.Args)
        {
            if (!call.Arguments.TryGetValue(a.Name, out var v)) { if (a.Required) errors.Add($"{f.Name}: missing '{a.Name}'"); continue; }
            switch (a.Type)
            {
                case ArgType.String when v is string s:
                    if (a.Enum is { } e && !e.Contains(s)) errors.Add($"{f.Name}: '{a.Name}' must be one of {string.Join(", ", e)}, got '{s}'");
                    if (a.Pattern is { } p && !System.Text.RegularExpressions.Regex.IsMatch(s, p)) errors.Add($"{f.Name}: '{a.Name}' '{s}' does not match {p}");
                    if (s.Length == 0) errors.Add($"{f.Name}: '{a.Name}' is empty");
                    break;
                case ArgType.Integer when v is long l:
                    CheckRange(a, l, f, errors);
                    break;
                case ArgType.Number when v is long or double:
                    CheckRange(a, Convert.ToDouble(v, CultureInfo.InvariantCulture), f, errors);
                    break;
                default:
                    errors.Add($"{f.Name}: '{a.Name}' must be {a.Type.ToString().ToLowerInvariant()}, got {v.GetType().Name}");
                    break;
            }
        }
        return errors;
    }

    static void CheckRange(ArgSpec a, double x, DeviceFunction f, List<string> errors)
    {
        if (a.Minimum is { } min && x < min || a.Maximum is { } max && x > max)
            errors.Add($"{f.Name}: '{a.Name}' must be between {a.Minimum} and {a.Maximum}, got {x.ToString(CultureInfo.InvariantCulture)}");
    }
}
