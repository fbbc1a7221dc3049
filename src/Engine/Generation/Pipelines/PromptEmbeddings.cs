using Engine.Core;
using Engine.Models.Networks;
using Engine.Sampling.Guidance;

namespace Engine.Generation.Pipelines;

/// <summary>
/// The text conditioning of one request on the device: the prompt embeddings [Count, L, D] and, when
/// classifier-free guidance is on, the negative prompt embeddings of the same shape (the empty prompt
/// where none is given, or zeros for SDXL's <c>force_zeros_for_empty_prompt</c>; clip skip applies to
/// the positive prompts only, as in diffusers). For SD3 also the pooled projections; for SDXL the added conditioning rows
/// [Count, text_embeds + 6]: the pooled text embedding, then add_time_ids (original size, crop
/// top-left, target size; laid out per row as diffusers does, see <see cref="MicroConditioning.Rows"/>).
/// </summary>
internal sealed class PromptEmbeddings : IDisposable
{
    private readonly Tensor _positive;
    private readonly Tensor? _negative, _pooled, _negativePooled;

    private PromptEmbeddings(Tensor positive, Tensor? negative, Tensor? pooled, Tensor? negativePooled)
    {
        _positive = positive;
        _negative = negative;
        _pooled = pooled;
        _negativePooled = negativePooled;
    }

    /// <summary>Encodes the prompts of <paramref name="request"/> for <paramref name="count"/> images of height x width pixels.</summary>
    public static PromptEmbeddings Encode(LatentPipeline pipeline, GenerationRequest request, int count, int height, int width, bool guided, Action<string>? warn)
    {
        var encoder = pipeline.Prompts ?? throw new ArgumentException($"{pipeline.Index.ClassName} has no text encoder.");
        var device = encoder.Encoder.Device!;
        var owned = new List<Tensor>();
        try
        {
            var (positive, pooled) = encoder.EncodeWithPooled(PerImage(request.Prompts, count), request.ClipSkip, warn);
            owned.Add(positive);
            if (pooled is not null) owned.Add(pooled);
            Tensor? negative = null, negativePooled = null;
            if (guided && pipeline.ZerosForEmptyNegative && request.NegativePrompts is not { Count: > 0 })
            {
                negative = device.Zeros(positive.ShapeArray());
                owned.Add(negative);
                if (pooled is not null) owned.Add(negativePooled = device.Zeros(pooled.ShapeArray()));
            }
            else if (guided)
            {
                (negative, negativePooled) = encoder.EncodeWithPooled(PerImage(request.NegativePrompts, count), null, warn);
                owned.Add(negative);
                if (negativePooled is not null) owned.Add(negativePooled);
            }
            // SD3's pooled projections go to the transformer as they are; SD 1.x/2.x have none.
            if (!pipeline.UsesMicroConditioning) return new PromptEmbeddings(positive, negative, pooled, negativePooled);

            var (ids, negativeIds) = MicroConditioning.Rows(request, count, height, width, negativePooled is not null);
            var added = WithTimeIds(device, pooled!, ids, count);
            owned.Add(added);
            var negativeAdded = negativePooled is null ? null : WithTimeIds(device, negativePooled, negativeIds!, count);
            if (negativeAdded is not null) owned.Add(negativeAdded);
            pooled!.Dispose();
            negativePooled?.Dispose();
            return new PromptEmbeddings(positive, negative, added, negativeAdded);
        }
        catch
        {
            foreach (var t in owned) t.Dispose();
            throw;
        }
    }

    /// <summary>The guidance conditioning of images [start, start + n): views of these tensors, owned here.</summary>
    public Conditioning Slice(int start, int n) => _pooled is null
        ? Conditioning.FromEmbeddings(_positive.Slice(start, n), _negative?.Slice(start, n))
        : Conditioning.FromEmbeddings(_positive.Slice(start, n), _negative?.Slice(start, n), _pooled.Slice(start, n), _negativePooled?.Slice(start, n));

    /// <summary>The request's tensors: prompt and negative embeddings, pooled (SDXL: with the time ids) and negative pooled.</summary>
    internal (Tensor Positive, Tensor? Negative, Tensor? Pooled, Tensor? NegativePooled) Tensors => (_positive, _negative, _pooled, _negativePooled);

    /// <summary>[count, P + 6]: each pooled row followed by its six time ids <paramref name="perRow"/> (uploaded once per request).</summary>
    private static Tensor WithTimeIds(Device device, Tensor pooled, float[] perRow, int count)
    {
        using var timeIds = device.Upload(perRow, count, UNetAdditionEmbedding.TimeIdCount);
        var added = device.Allocate(count, pooled.Dim(1) + UNetAdditionEmbedding.TimeIdCount);
        device.ConcatChannels(pooled, timeIds, added);
        return added;
    }

    /// <summary>One text per image: the list itself, its single entry repeated, or the empty prompt when none.</summary>
    private static string[] PerImage(IReadOnlyList<string>? texts, int count) =>
        Enumerable.Range(0, count).Select(i => texts is null || texts.Count == 0 ? "" : texts.Count == 1 ? texts[0] : texts[i]).ToArray();

    public void Dispose()
    {
        _positive.Dispose();
        _negative?.Dispose();
        _pooled?.Dispose();
        _negativePooled?.Dispose();
    }
}
