namespace Engine.Sampling.Schedules;

/// <summary>
/// The timesteps of consistency-distilled students (diffusers' LCMScheduler and TCDScheduler): the distillation
/// grid k - 1, 2k - 1, ..., original_steps k - 1 with k = N / original_steps, reversed, of which n steps take the
/// indices floor(linspace(0, length, n, endpoint = False)); 4 of 50 on 1000 give 999, 759, 499, 259.
/// timestep_spacing and steps_offset play no part.
/// </summary>
public static class DistillationGrid
{
    /// <summary>The n timesteps (descending) for <paramref name="originalSteps"/> distillation steps, or the config's custom timesteps.</summary>
    public static double[] Timesteps(SchedulerConfig config, int n, int originalSteps)
    {
        ArgumentNullException.ThrowIfNull(config);
        int trainSteps = config.NumTrainTimesteps;
        if (originalSteps < 1 || originalSteps > trainSteps)
            throw new SchedulerConfigException($"{config.ClassName}: original_inference_steps {originalSteps} must be between 1 and num_train_timesteps ({trainSteps}).");
        if (config.CustomTimesteps is { } custom) return custom.Select(t => (double)t).ToArray();
        if (n > originalSteps)
            throw new SchedulerConfigException($"{config.ClassName}: {n} steps cannot exceed original_inference_steps ({originalSteps}): the steps are a subset of that grid.");
        int k = trainSteps / originalSteps;
        var t = new double[n];
        for (int i = 0; i < n; i++)
        {
            // numpy's linspace (start + i * step, in double), then floor; the reversed grid's index j holds (originalSteps - j) k - 1.
            int j = (int)Math.Floor(i * ((double)originalSteps / n));
            t[i] = (originalSteps - j) * k - 1;
        }
        return t;
    }
}
