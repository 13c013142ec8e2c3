using Tandem.Gguf;

namespace Tandem.Tokenizers;

/// <summary>
/// A text tokenizer: byte-level BPE or SentencePiece, built from GGUF metadata or a Hugging Face tokenizer.json.
/// SKELETON: the public surface is fixed; the implementation is being written.
/// </summary>
public abstract class Tokenizer
{
    /// <summary>Builds the tokenizer described by a GGUF file's <c>tokenizer.*</c> metadata.</summary>
    public static Tokenizer FromGguf(GgufFile file) => throw new NotImplementedException();

    /// <summary>Builds a tokenizer from a Hugging Face <c>tokenizer.json</c>.</summary>
    public static Tokenizer FromHuggingFace(string tokenizerJsonPath) => throw new NotImplementedException();

    public abstract int VocabSize { get; }
    public int? BosId { get; protected init; }
    public int? EosId { get; protected init; }
    /// <summary>Whether <see cref="Encode"/> with addSpecial prepends BOS (tokenizer.ggml.add_bos_token or the model family's default).</summary>
    public bool AddBos { get; protected init; }
    public bool AddEos { get; protected init; }

    /// <summary>Encodes text. addSpecial: add BOS/EOS as the model's defaults say; parseSpecial: recognise special/control token texts such as &lt;|im_start|&gt;.</summary>
    public abstract int[] Encode(string text, bool addSpecial, bool parseSpecial);

    /// <summary>The raw bytes a token stands for when detokenized (control tokens give their text only when renderSpecial).</summary>
    public abstract byte[] TokenBytes(int id, bool renderSpecial = false);

    /// <summary>The vocabulary string of a token, as stored.</summary>
    public abstract string TokenText(int id);

    /// <summary>True for tokens that end a generation (EOS, EOT, &lt;|im_end|&gt;, &lt;|eot_id|&gt;, …).</summary>
    public abstract bool IsEndOfGeneration(int id);

    /// <summary>True for control/special tokens (not normal text).</summary>
    public abstract bool IsControl(int id);

    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false) => throw new NotImplementedException();
}

/// <summary>Incremental detokenizer: feeds tokens one at a time and returns only complete UTF-8 text.</summary>
public sealed class StreamingDecoder(Tokenizer tokenizer, bool renderSpecial = false)
{
    public Tokenizer Tokenizer { get; } = tokenizer;
    public bool RenderSpecial { get; } = renderSpecial;

    /// <summary>Adds a token; returns the text that became complete (possibly empty).</summary>
    public string Push(int id) => throw new NotImplementedException();

    /// <summary>Returns whatever bytes remain, with invalid sequences replaced by U+FFFD.</summary>
    public string Flush() => throw new NotImplementedException();
}
