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

    /// <summary>
    /// diffusers' img2img <c>get_timesteps</c>: the inference step a run of <paramref name="strength"/> starts at,
    /// <c>steps - min(int(steps * strength), steps)</c>. Fails, as diffusers does, when no step would run.
    /// </summary>
    public static int StrengthStartStep(int steps, double strength)
    {
        if (!(strength > 0 && strength <= 1)) throw new ArgumentOutOfRangeException(nameof(strength), strength, $"strength {strength} must be in (0, 1].");
        int run = Math.Min((int)(steps * strength), steps);
        if (run < 1) throw new ArgumentException($"strength {strength} with {steps} steps runs int({steps} * {strength}) = 0 steps; raise the strength or the steps.");
        return steps - run;
    }

    /// <summary>
    /// Starts <paramref name="scheduler"/> where a run of <paramref name="strength"/> begins
    /// (<see cref="StrengthStartStep"/>, then <see cref="Scheduler.FirstCallOfStep"/>) and returns that call.
    /// </summary>
    public static int StartAtStrength(Scheduler scheduler, double strength)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        int call = scheduler.FirstCallOfStep(StrengthStartStep(scheduler.InferenceSteps, strength));
        scheduler.StartAt(call);
        return call;
    }

    /// <summary>
    /// diffusers' <c>scheduler.add_noise(clean, noise, timesteps[start])</c> (flow matching: <c>scale_noise</c>):
    /// <paramref name="output"/> = Alpha clean + Sigma noise with the sample coordinates of the scheduler's
    /// <see cref="Scheduler.StartCall"/>, in one kernel on the device.
    /// </summary>
    public static void AddNoise(Scheduler scheduler, Tensor clean, Tensor noise, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        var (alpha, sigma) = scheduler.CoordinatesAt(scheduler.StartCall);
        output.Device.LinearCombination(output, [clean, noise], [(float)alpha, (float)sigma]);
    }

    /// <summary>
    /// Runs the model calls of <paramref name="scheduler"/> from its <see cref="Scheduler.StartCall"/> on, updating
    /// <paramref name="sample"/> in place; <paramref name="onStep"/> gets each call's index in the full schedule.
    /// </summary>
    public static void Run(Scheduler scheduler, IDenoiser denoiser, Tensor sample, Action<int>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(denoiser);
        Tensor? scaled = null;
        try
        {
            for (int i = scheduler.StartCall; i < scheduler.CallCount; i++)
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
