namespace Tandem.Gguf;

/// <summary>A GGUF file is malformed. The message names the file, the field or tensor, and what was expected.</summary>
public sealed class GgufFormatException(string file, string field, string message)
    : Exception($"{file}: {field}: {message}")
{
    public string File { get; } = file;
    public string Field { get; } = field;
    public string Problem { get; } = message;
}
