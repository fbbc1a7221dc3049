using Engine.Core;

namespace Engine.Sampling;

/// <summary>
/// Runs a scheduler against a denoiser on the device: scale_model_input, model call, step, for every
/// call. The only tensors it allocates are the scaled-input buffer and the scheduler's scratch slots,
/// once; nothing is copied to the host.
/// </summary>
public static class Sampler
{
    /// <summary>Fills <paramref name="sample"/> with initial noise scaled by init_noise_sigma (Philox step 0; step draws use steps 1, 2, ...).</summary>
    public static void InitialNoise(Scheduler scheduler, Tensor sample, ulong seed, int firstSampleIndex = 0)
    {
        sample.Device.RandomNormal(sample, seed, firstSampleIndex, 0);
        double s = scheduler.InitNoiseSigma;
        if (s != 1) sample.Device.Affine(sample, sample, (float)s, 0f);
    }

    /// <summary>Runs every model call of <paramref name="scheduler"/>, updating <paramref name="sample"/> in place.</summary>
    public static void Run(Scheduler scheduler, IDenoiser denoiser, Tensor sample, Action<int>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(denoiser);
        Tensor? scaled = null;
        try
        {
            for (int i = 0; i < scheduler.CallCount; i++)
            {
                double scale = scheduler.InputScale(i);
                Tensor input = sample;
                if (scale != 1)
                {
                    scaled ??= sample.Device.Allocate(sample.ShapeArray());
                    sample.Device.Affine(sample, scaled, (float)scale, 0f);
                    input = scaled;
                }
                var output = denoiser.Predict(input, scheduler.Call(i));
                scheduler.Step(output, i, sample);
                onStep?.Invoke(i);
            }
        }
        finally { scaled?.Dispose(); }
    }
}
