using Engine.Core;

namespace Engine.Sampling.Rng;

/// <summary>
/// The noise of one request drawn as diffusers draws it from one <c>torch.Generator</c>: draw 0 is x_T for
/// all of the request's images at once (<c>randn_tensor((count, C, H, W))</c>), draw k its k-th sampler draw,
/// again for all images at once. The engine may run the request in several batches; each reads its own
/// rows of every draw (<see cref="TorchNoise"/>), and a draw is dropped once every row has been read.
/// </summary>
public sealed class TorchNoiseStream
{
    private readonly TorchCpuGenerator _generator;
    private readonly List<float[]?> _draws = [];
    private readonly List<int> _rowsRead = [];

    /// <summary>
    /// A stream of <paramref name="count"/> images of <paramref name="imageLength"/> values each, seeded like
    /// <c>manual_seed(seed)</c>. <paramref name="leadingValues"/> &gt; 0 first draws one <c>randn</c> of that many
    /// values (<see cref="Leading"/>), as diffusers' img2img draws the VAE posterior sample before x_T.
    /// </summary>
    public TorchNoiseStream(ulong seed, int count, int imageLength, TorchNormalKernel kernel = TorchNormalKernel.Avx2, int leadingValues = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(leadingValues);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(imageLength, 1);
        if ((long)count * imageLength > Array.MaxLength) throw new ArgumentException($"{count} images of {imageLength} values are too many for one draw.");
        _generator = new TorchCpuGenerator(seed, kernel);
        if (leadingValues > 0)
        {
            Leading = new float[leadingValues];
            _generator.Randn(Leading);
        }
        Count = count;
        ImageLength = imageLength;
    }

    /// <summary>The draw made before x_T (see the constructor), or null.</summary>
    public float[]? Leading { get; }

    /// <summary>Images per draw.</summary>
    public int Count { get; }

    /// <summary>Values per image.</summary>
    public int ImageLength { get; }

    /// <summary>
    /// Copies images [<paramref name="firstImage"/>, + rows of <paramref name="output"/>) of draw
    /// <paramref name="draw"/> (0 = x_T) into <paramref name="output"/>, drawing every earlier draw first.
    /// </summary>
    public void Read(int draw, int firstImage, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(draw);
        int rows = output.Dim(0);
        if (firstImage < 0 || firstImage + rows > Count || output.Length != (long)rows * ImageLength)
            throw new ArgumentException($"{output} is not images {firstImage}..{firstImage + rows - 1} of a stream of {Count} images of {ImageLength} values.");
        while (_draws.Count <= draw)
        {
            var data = new float[Count * ImageLength];
            _generator.Randn(data);
            _draws.Add(data);
            _rowsRead.Add(0);
        }
        var values = _draws[draw] ?? throw new InvalidOperationException($"Draw {draw} has been read for every image already.");
        output.Device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan(firstImage * ImageLength, rows * ImageLength)), output);
        _rowsRead[draw] += rows;
        if (_rowsRead[draw] >= Count) _draws[draw] = null;
    }
}

/// <summary>
/// One batch's view of a <see cref="TorchNoiseStream"/>: <see cref="FillInitial"/> gives its rows of x_T, and
/// the k-th <see cref="Fill"/> call its rows of sampler draw k, in call order (diffusers draws once per
/// stochastic step; the draw index a sampler passes does not pick the draw). With
/// <paramref name="drawsInitial"/> false (x_T given, as diffusers' <c>latents=</c>) the sampler draws start at draw 0.
/// </summary>
public sealed class TorchNoise(TorchNoiseStream stream, int firstImage, bool drawsInitial = true) : INoiseSource
{
    private int _next = drawsInitial ? 1 : 0;

    /// <summary>Writes this batch's rows of x_T (draw 0) into <paramref name="output"/>.</summary>
    public void FillInitial(Tensor output) => stream.Read(0, firstImage, output);

    /// <inheritdoc />
    public void Fill(Tensor output, int step) => stream.Read(_next++, firstImage, output);
}
