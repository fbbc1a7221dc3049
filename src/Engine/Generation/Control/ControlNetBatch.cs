using Engine.Core;
using Engine.Models.Networks;
using Engine.Sampling.Guidance;

namespace Engine.Generation;

/// <summary>
/// The ControlNets of one batch of outputs inside the sampling loop: at each model call, every net whose window
/// keeps the call runs on the guided batch (rows [cond; uncond; perturbed], each block of <c>n</c> rows getting the
/// batch's control images), or in guess mode on the conditional block alone with zeros for the other rows; the
/// residuals are summed in net order. Everything stays on the device.
/// </summary>
internal sealed class ControlNetBatch(
    (ControlNetSpec Spec, ControlNetModel Net, Tensor Images)[] nets, bool guessMode, int rows, int calls) : IDisposable
{
    private int _call;

    /// <summary>
    /// The summed residuals for the call with <paramref name="sample"/> [R, ...] and <paramref name="timesteps"/> [R];
    /// null when no net runs at this call. Advances the call counter.
    /// </summary>
    public UNetResiduals? Residuals(Tensor sample, Tensor timesteps, ConditioningBatch batch)
    {
        // Calls past the planned count (predictor-corrector extras) count as the last call.
        int call = Math.Min(_call++, calls - 1);
        int total = sample.Dim(0);
        if (total % rows != 0) throw new InvalidOperationException($"ControlNet: the guided batch of {total} rows is not a multiple of the batch's {rows} images.");
        var context = batch.Embeddings ?? throw new InvalidOperationException("ControlNet: the guided batch has no text embeddings.");
        int used = guessMode ? rows : total;
        UNetResiduals? sum = null;
        try
        {
            foreach (var (spec, net, images) in nets)
            {
                if (!spec.Keeps(call, calls)) continue;
                var inputs = new ControlNetInputs(sample.Slice(0, used), timesteps.Slice(0, used), context.Slice(0, used), images.Slice(0, used))
                {
                    Added = batch.Pooled?.Slice(0, used),
                    Scale = (float)spec.Scale,
                    GuessMode = guessMode,
                };
                var r = net.Forward(inputs);
                if (sum is null && used == total) { sum = r; continue; }
                using (r)
                {
                    sum ??= Zeros(r, total);
                    for (int j = 0; j < r.Down.Count; j++) AddRows(sum.Down[j], r.Down[j]);
                    AddRows(sum.Mid, r.Mid);
                }
            }
            return sum;
        }
        catch
        {
            sum?.Dispose();
            throw;
        }
    }

    // Guess mode: the unconditional (and perturbed) rows get zero residuals, as diffusers' cat([zeros, r]).
    private static UNetResiduals Zeros(UNetResiduals like, int total)
    {
        var device = like.Mid.Device;
        Tensor Make(Tensor t)
        {
            var shape = t.ShapeArray();
            shape[0] = total;
            return device.Zeros(shape);
        }
        return new UNetResiduals(like.Down.Select(Make).ToList(), Make(like.Mid));
    }

    private static void AddRows(Tensor sum, Tensor r)
    {
        var target = sum.Slice(0, r.Dim(0));
        sum.Device.Add(target, r, target);
    }

    public void Dispose()
    {
        foreach (var (_, _, images) in nets) images.Dispose();
    }
}
