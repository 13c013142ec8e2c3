namespace Tandem.Gguf;

/// <summary>
/// Edits of an ordered metadata list, for tools that rewrite a file with a few keys changed
/// (e.g. a quantizer setting general.file_type). The input is never modified; order is kept.
/// </summary>
public static class GgufMetadata
{
    /// <summary>A copy with <paramref name="key"/> set to <paramref name="value"/>: replaced where it was, or appended.</summary>
    public static List<KeyValuePair<string, GgufValue>> With(this IEnumerable<KeyValuePair<string, GgufValue>> metadata, string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        var result = new List<KeyValuePair<string, GgufValue>>(metadata);
        int index = result.FindIndex(kv => kv.Key == key);
        if (index >= 0) result[index] = new(key, value);
        else result.Add(new(key, value));
        return result;
    }

    /// <summary>A copy without the given keys (keys that are absent are ignored).</summary>
    public static List<KeyValuePair<string, GgufValue>> Without(this IEnumerable<KeyValuePair<string, GgufValue>> metadata, params string[] keys)
    {
        var remove = new HashSet<string>(keys, StringComparer.Ordinal);
        return metadata.Where(kv => !remove.Contains(kv.Key)).ToList();
    }
}
