using System.Numerics.Tensors;

namespace Tandem.Engine;

/// <summary>
/// Keys and values of every layer for one sequence, stored as F16 (llama.cpp's default cache type), allocated
/// once for the whole context: per layer, position-major [position][kv head][head dim].
/// </summary>
public sealed class KvCache
{
    public int ContextLength { get; }
    public int KeyLength { get; }
    public int ValueLength { get; }
    public Half[][] Keys { get; }
    public Half[][] Values { get; }

    public KvCache(ModelConfig config, int contextLength)
    {
        ContextLength = contextLength;
        KeyLength = config.KeyValueLength;
        ValueLength = config.ValueLength;
        Keys = new Half[config.BlockCount][];
        Values = new Half[config.BlockCount][];
        for (int layer = 0; layer < config.BlockCount; layer++)
        {
            Keys[layer] = new Half[(long)contextLength * KeyLength];
            Values[layer] = new Half[(long)contextLength * ValueLength];
        }
    }

    public long Bytes => (long)Keys.Length * ContextLength * (KeyLength + ValueLength) * sizeof(short);

    /// <summary>Copies the first <paramref name="positions"/> positions of every layer into <paramref name="other"/>.</summary>
    public void CopyTo(KvCache other, int positions)
    {
        for (int layer = 0; layer < Keys.Length; layer++)
        {
            Keys[layer].AsSpan(0, positions * KeyLength).CopyTo(other.Keys[layer]);
            Values[layer].AsSpan(0, positions * ValueLength).CopyTo(other.Values[layer]);
        }
    }

    public void Store(int layer, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        // TensorPrimitives' vector conversion rounds exactly as (Half)x does (checked in KvCacheTests), a lane at a time
        // the conversion was 1.5 % of a 512-token prefill.
        TensorPrimitives.ConvertToHalf(key[..KeyLength], Keys[layer].AsSpan(position * KeyLength, KeyLength));
        TensorPrimitives.ConvertToHalf(value[..ValueLength], Values[layer].AsSpan(position * ValueLength, ValueLength));
    }
}
