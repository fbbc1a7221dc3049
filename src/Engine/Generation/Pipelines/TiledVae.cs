using System.Text.Json;
using Engine.Core;
using Engine.Models.Networks;

namespace Engine.Generation.Pipelines;

/// <summary>
/// The VAE in overlapping tiles, as diffusers' <c>AutoencoderKL</c> with <c>enable_tiling()</c> (0.31): tiles of
/// <c>sample_size</c> pixels (<c>sample_size / f</c> latents) start every 3/4 tile; each tile is blended linearly
/// over a quarter tile with the (already blended) tile above, then with the one to its left, and its top-left
/// 3/4 is kept. Decoding blends the decoded pixels, encoding the moments (mean and raw log-variance) before the
/// posterior is formed. Only two rows of tiles live on the device at once; everything stays on the device.
/// </summary>
public static class TiledVae
{
    /// <summary>diffusers' <c>tile_overlap_factor</c>.</summary>
    public const double OverlapFactor = 0.25;

    /// <summary>The tile edge in pixels: the VAE config's <c>sample_size</c> (its first entry when a list).</summary>
    public static int SampleTile(AutoencoderKL vae)
    {
        ArgumentNullException.ThrowIfNull(vae);
        if (vae.Config.Root.TryGetProperty("sample_size", out var v))
        {
            if (v.ValueKind == JsonValueKind.Number) return v.GetInt32();
            if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0) return v[0].GetInt32();
        }
        return 32; // diffusers' AutoencoderKL default
    }

    /// <summary>The tile edge in latents: <c>int(sample_size / f)</c>.</summary>
    public static int LatentTile(AutoencoderKL vae) => SampleTile(vae) / vae.DownscaleFactor;

    /// <summary>
    /// Whether tiles of this VAE reassemble an image of exactly f times the latent size (the kept 3/4 tile equals
    /// the tile stride): sample_size a multiple of 4 f, as in every real config (512 or 1024 with f = 8).
    /// </summary>
    public static bool Tileable(AutoencoderKL vae)
    {
        int sample = SampleTile(vae), f = vae.DownscaleFactor;
        return sample >= 4 * f && sample % (4 * f) == 0;
    }

    /// <summary>
    /// Decodes latents [N, latent, h, w] (already divided by scaling_factor) into [N, out, h f, w f] in tiles of
    /// <paramref name="sampleTile"/> pixels (default: the config's <c>sample_size</c>; a multiple of 4 f).
    /// </summary>
    public static Tensor Decode(AutoencoderKL vae, Tensor latents, int? sampleTile = null)
    {
        int f = vae.DownscaleFactor, sample = CheckTile(vae, sampleTile), latent = sample / f;
        return Run(latents, latent, (int)(latent * (1 - OverlapFactor)), (int)(sample * OverlapFactor), sample - (int)(sample * OverlapFactor),
            vae.OutChannels, f, vae.Decode);
    }

    /// <summary>Encodes images [N, in, H, W] in tiles (see <see cref="Decode"/>) into the posterior ([N, latent, H / f, W / f] each).</summary>
    public static AutoencoderKL.LatentDistribution Encode(AutoencoderKL vae, Tensor pixels, int? sampleTile = null)
    {
        int f = vae.DownscaleFactor, sample = CheckTile(vae, sampleTile), latent = sample / f;
        if (pixels.Dim(2) % f != 0 || pixels.Dim(3) % f != 0)
            throw new ArgumentException($"image {pixels} should have H and W multiples of {f}.");
        using var moments = Run(pixels, sample, (int)(sample * (1 - OverlapFactor)), (int)(latent * OverlapFactor), latent - (int)(latent * OverlapFactor),
            2 * vae.LatentChannels, 1.0 / f, vae.EncodeMoments);
        return vae.FromMoments(moments);
    }

    private static int CheckTile(AutoencoderKL vae, int? sampleTile)
    {
        int sample = sampleTile ?? SampleTile(vae), f = vae.DownscaleFactor;
        if (sample < 4 * f || sample % (4 * f) != 0)
            throw new ArgumentException($"VAE tile of {sample} pixels must be a positive multiple of {4 * f} (4 times the VAE factor) so the tiles reassemble the image.");
        return sample;
    }

    /// <summary>
    /// The tiling loop over <paramref name="input"/>: windows of <paramref name="tile"/> every <paramref name="stride"/>,
    /// each mapped by <paramref name="map"/> (scale <paramref name="scale"/>), blended over <paramref name="blend"/>
    /// and cropped to <paramref name="keep"/>.
    /// </summary>
    private static Tensor Run(Tensor input, int tile, int stride, int blend, int keep, int outChannels, double scale, Func<Tensor, Tensor> map)
    {
        var device = input.Device;
        int n = input.Dim(0), c = input.Dim(1), h = input.Dim(2), w = input.Dim(3);
        if (stride < 1 || keep < 1) throw new ArgumentException($"VAE tiles of {tile} with stride {stride} keep nothing.");
        int rows = (h + stride - 1) / stride, cols = (w + stride - 1) / stride;
        int[] tileH = Enumerable.Range(0, rows).Select(i => (int)(Math.Min(tile, h - i * stride) * scale)).ToArray();
        int[] tileW = Enumerable.Range(0, cols).Select(j => (int)(Math.Min(tile, w - j * stride) * scale)).ToArray();
        int outH = tileH.Sum(t => Math.Min(t, keep)), outW = tileW.Sum(t => Math.Min(t, keep));
        // Blend weights per extent (the quarter tile, or less at a small last tile), uploaded once each.
        var weights = new Dictionary<(int Extent, bool Vertical), (Tensor Old, Tensor New)>();
        var output = device.Allocate(n, outChannels, outH, outW);
        var above = new Tensor?[cols];
        try
        {
            for (int i = 0; i < rows; i++)
            {
                var current = new Tensor?[cols];
                for (int j = 0; j < cols; j++)
                {
                    int th = Math.Min(tile, h - i * stride), tw = Math.Min(tile, w - j * stride);
                    using var window = device.Allocate(n, c, th, tw);
                    device.CopyWindow(input, i * stride, j * stride, window, 0, 0, th, tw);
                    var mapped = map(window);
                    current[j] = mapped;
                    if (i > 0) Blend(above[j]!, mapped, blend, vertical: true, weights);
                    if (j > 0) Blend(current[j - 1]!, mapped, blend, vertical: false, weights);
                    device.CopyWindow(mapped, 0, 0, output, i * keep, j * keep, Math.Min(keep, mapped.Dim(2)), Math.Min(keep, mapped.Dim(3)));
                }
                foreach (var t in above) t?.Dispose();
                above = current;
            }
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in above) t?.Dispose();
            foreach (var (old, neu) in weights.Values) { old.Dispose(); neu.Dispose(); }
        }
    }

    /// <summary>
    /// diffusers' blend_v / blend_h in place on <paramref name="b"/>: its first e rows (columns) become
    /// a's last e times (1 - y / e) plus its own times y / e, e = min(blend, both sizes); each product and the
    /// sum rounded to float32, with the weights rounded to float32 first, as torch computes them.
    /// </summary>
    private static void Blend(Tensor a, Tensor b, int blend, bool vertical, Dictionary<(int, bool), (Tensor Old, Tensor New)> weights)
    {
        var device = b.Device;
        int axis = vertical ? 2 : 3;
        int e = Math.Min(Math.Min(a.Dim(axis), b.Dim(axis)), blend);
        if (e <= 0) return;
        if (!weights.TryGetValue((e, vertical), out var wt))
        {
            var old = new float[e];
            var neu = new float[e];
            for (int y = 0; y < e; y++) { old[y] = (float)(1 - y / (double)e); neu[y] = (float)(y / (double)e); }
            int[] shape = vertical ? [1, 1, e, 1] : [1, 1, 1, e];
            wt = (device.Upload(old, shape), device.Upload(neu, shape));
            weights[(e, vertical)] = wt;
        }
        int n = b.Dim(0), c = b.Dim(1);
        int rows = vertical ? e : b.Dim(2), cols = vertical ? b.Dim(3) : e;
        using var edgeA = device.Allocate(n, c, rows, cols);
        using var edgeB = device.Allocate(n, c, rows, cols);
        device.CopyWindow(a, vertical ? a.Dim(2) - e : 0, vertical ? 0 : a.Dim(3) - e, edgeA, 0, 0, rows, cols);
        device.CopyWindow(b, 0, 0, edgeB, 0, 0, rows, cols);
        device.Mul(edgeA, wt.Old, edgeA);
        device.Mul(edgeB, wt.New, edgeB);
        device.Add(edgeA, edgeB, edgeB);
        device.CopyWindow(edgeB, 0, 0, b, 0, 0, rows, cols);
    }
}
