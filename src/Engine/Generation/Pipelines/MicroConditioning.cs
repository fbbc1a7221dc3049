namespace Engine.Generation.Pipelines;

/// <summary>
/// SDXL micro-conditioning (add_time_ids): the six values original size, crop top-left and target size of every
/// row of the guided batch, and the checks of the request's fields that set them.
/// </summary>
internal static class MicroConditioning
{
    /// <summary>The request fields with their CLI option names, for checks and messages.</summary>
    private static (int[]? Value, string Name)[] Fields(GenerationRequest request) =>
    [
        (request.OriginalSize, "original size (--original-size)"), (request.CropTopLeft, "crop top-left (--crop-top-left)"),
        (request.TargetSize, "target size (--target-size)"), (request.NegativeOriginalSize, "negative original size (--negative-original-size)"),
        (request.NegativeCropTopLeft, "negative crop top-left (--negative-crop-top-left)"), (request.NegativeTargetSize, "negative target size (--negative-target-size)"),
    ];

    /// <summary>Whether the request sets any micro-conditioning field.</summary>
    public static bool Given(GenerationRequest request) => Fields(request).Any(f => f.Value is not null);

    /// <summary>
    /// Refuses micro-conditioning on a model without it (<paramref name="subject"/> names the model), values that are
    /// not two integers >= 0, and negative sizes given without each other: diffusers uses the negative time ids only
    /// when both negative sizes are given and silently ignores one alone.
    /// </summary>
    public static void Check(GenerationRequest request, bool supported, string subject)
    {
        foreach (var (value, name) in Fields(request))
        {
            if (value is null) continue;
            if (!supported) throw new ArgumentException($"{name} is SDXL micro-conditioning; {subject} does not take it.");
            if (value.Length != 2 || value.Any(v => v < 0)) throw new ArgumentException($"{name} must be two integers >= 0.");
        }
        if ((request.NegativeOriginalSize is null) != (request.NegativeTargetSize is null))
            throw new ArgumentException("negative original size and negative target size (--negative-original-size, --negative-target-size) go together: give both or neither.");
        if (request.NegativeCropTopLeft is not null && request.NegativeOriginalSize is null)
            throw new ArgumentException("negative crop top-left (--negative-crop-top-left) needs --negative-original-size and --negative-target-size.");
    }

    /// <summary>
    /// The time ids of the <paramref name="count"/> positive rows and, when <paramref name="guided"/>, of the
    /// <paramref name="count"/> negative rows ([count * 6] each). diffusers repeats the pair [negative ids, positive ids]
    /// count times, so the 2 * count rows alternate negative/positive while the text rows are all negatives, then all
    /// positives: row r of that batch (negatives first) takes the negative ids when r is even. With equal ids this is
    /// the plain layout; with different ids and count > 1 some rows get the other branch's ids, reproduced here.
    /// </summary>
    public static (float[] Positive, float[]? Negative) Rows(GenerationRequest request, int count, int height, int width, bool guided)
    {
        float[] positive = [.. request.OriginalSize ?? [height, width], .. request.CropTopLeft ?? [0, 0], .. request.TargetSize ?? [height, width]];
        float[] negative = request.NegativeOriginalSize is { } original && request.NegativeTargetSize is { } target
            ? [.. original, .. request.NegativeCropTopLeft ?? [0, 0], .. target]
            : positive;
        float[] Fill(int first)
        {
            var rows = new float[count * positive.Length];
            for (int i = 0; i < count; i++) ((first + i) % 2 == 0 ? negative : positive).CopyTo(rows, i * positive.Length);
            return rows;
        }
        // Without guidance diffusers repeats the positive ids alone.
        return guided ? (Fill(count), Fill(0)) : (RepeatPositive(positive, count), null);
    }

    private static float[] RepeatPositive(float[] ids, int count)
    {
        var rows = new float[count * ids.Length];
        for (int i = 0; i < count; i++) ids.CopyTo(rows, i * ids.Length);
        return rows;
    }
}
