using System.Buffers.Binary;
using System.Text.Json;

namespace Engine.RandomPipeline;

/// <summary>A tensor to fill with random values: its key, shape and how its values are drawn.</summary>
/// <param name="Key">Tensor name in the file.</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Fill">How the values are drawn.</param>
public readonly record struct RandomTensor(string Key, int[] Shape, FillKind Fill)
{
    /// <summary>Number of values.</summary>
    public long Length => Shape.Aggregate(1L, (n, d) => n * d);
}

/// <summary>How a tensor's values are drawn.</summary>
public enum FillKind
{
    /// <summary>Uniform in ±1/sqrt(fan_in), fan_in being the product of all but the first dimension (Linear and Conv2d weights).</summary>
    FanIn,
    /// <summary>Normal-ish with standard deviation 0.02 (embedding tables).</summary>
    Embedding,
    /// <summary>Ones (norm scales).</summary>
    One,
    /// <summary>Uniform in ±0.01 (biases).</summary>
    SmallBias,
}

/// <summary>
/// Writes a safetensors file of random F16 or F32 tensors, generating each tensor while it is written so
/// memory stays at one chunk however large the model is.
/// </summary>
public static class RandomSafetensors
{
    private const int Chunk = 1 << 20;

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> as <paramref name="dtype"/> ("F16" or "F32"), drawn from <paramref name="seed"/>.</summary>
    public static long Write(string path, IReadOnlyList<RandomTensor> tensors, string dtype, ulong seed)
    {
        int size = dtype switch { "F16" => 2, "F32" => 4, _ => throw new ArgumentException($"dtype '{dtype}' must be F16 or F32") };
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            long offset = 0;
            foreach (var t in tensors)
            {
                json.WriteStartObject(t.Key);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (int d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Length * size);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Length * size;
            }
            json.WriteEndObject();
        }
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        string temp = path + ".tmp";
        long parameters = 0;
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
            file.Write(lengthBytes);
            file.Write(header.GetBuffer(), 0, (int)header.Length);
            var buffer = new byte[Chunk * size];
            var rng = new SplitMix(seed);
            foreach (var t in tensors)
            {
                float scale = t.Fill switch
                {
                    FillKind.FanIn => 1f / MathF.Sqrt(t.Shape.Skip(1).Aggregate(1L, (n, d) => n * d)),
                    FillKind.Embedding => 0.02f * MathF.Sqrt(3f),
                    FillKind.SmallBias => 0.01f,
                    _ => 0f,
                };
                for (long done = 0; done < t.Length;)
                {
                    int n = (int)Math.Min(Chunk, t.Length - done);
                    for (int i = 0; i < n; i++)
                    {
                        float v = t.Fill == FillKind.One ? 1f : scale * rng.NextSigned();
                        if (size == 2) BinaryPrimitives.WriteHalfLittleEndian(buffer.AsSpan(2 * i), (Half)v);
                        else BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(4 * i), v);
                    }
                    file.Write(buffer, 0, n * size);
                    done += n;
                }
                parameters += t.Length;
            }
        }
        File.Move(temp, path, overwrite: true);
        return parameters;
    }

    /// <summary>SplitMix64: fast, seedable, plenty for random weights.</summary>
    private struct SplitMix(ulong state)
    {
        private ulong _state = state;

        /// <summary>Uniform in [-1, 1).</summary>
        public float NextSigned()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return (z >> 40) * (2f / (1 << 24)) - 1f;
        }
    }
}
