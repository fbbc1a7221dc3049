using Engine.Generation.Pipelines;
using Engine.Sampling;
using Engine.Sampling.Guidance;
using Engine.Sampling.Rng;
using Engine.Sampling.Schedules;

namespace Engine.Generation;

/// <summary>
/// How a request resolves against the loaded model before sampling: its class labels, guidance options, prompt and
/// micro-conditioning checks, and its scheduler with the request's step arguments.
/// </summary>
public sealed partial class Generator
{
    private static int[] ResolveLabels(LoadedDenoiser model, GenerationRequest request, int count)
    {
        int classes = model.ClassCount;
        if (classes == 0)
        {
            if (request.ClassLabels is { Length: > 0 })
                throw new ArgumentException($"model '{model.Path}' is unconditional; class labels cannot be given.");
            return new int[count]; // ignored by unconditional networks
        }
        var given = request.ClassLabels;
        if (given is null || given.Length == 0) return Enumerable.Range(0, count).Select(i => i % classes).ToArray();
        if (given.Length != 1 && given.Length != count)
            throw new ArgumentException($"{given.Length} class labels given for {count} images: give one label for all or one per image.");
        foreach (int label in given)
            if (label < 0 || label > model.NullClass)
                throw new ArgumentException($"class label {label} is out of range: model '{model.Path}' has classes 0-{classes - 1} (and {model.NullClass}, the null class).");
        return given.Length == 1 ? Enumerable.Repeat(given[0], count).ToArray() : (int[])given.Clone();
    }

    private static SamplingOptions ResolveOptions(LoadedDenoiser model, GenerationRequest request)
    {
        if (request.Options.Any(o => o.TrimStart().StartsWith("cfg_scale=", StringComparison.Ordinal)))
            throw new ArgumentException("Option 'cfg_scale' is set by the guidance scale of the request (--cfg), not as an option.");
        var options = SamplingOptionCatalog.Parse(request.Options);
        // Unconditional networks have nothing to guide: the conditional branch alone is the model.
        // Pipelines guide only above 1, as diffusers' do_classifier_free_guidance.
        float scale = model.Pipeline is not null ? (request.GuidanceScale > 1 ? (float)request.GuidanceScale : 1f)
            : model.ClassCount == 0 ? 1f : (float)request.GuidanceScale;
        return options with { Guidance = options.Guidance with { Scale = scale } };
    }

    private static void CheckPrompts(LoadedDenoiser model, GenerationRequest request)
    {
        int prompts = request.Prompts?.Count ?? 0, negatives = request.NegativePrompts?.Count ?? 0;
        if (model.Pipeline is not { Prompts: { } prompter } pipeline)
        {
            if (prompts > 0 || negatives > 0 || request.ClipSkip is not null)
                throw new ArgumentException($"model '{model.Path}' has no text encoder; prompts, negative prompts and clip skip need a text-to-image pipeline folder (model_index.json).");
            // A plain model folder ignored them silently before.
            if (MicroConditioning.Given(request))
                throw new ArgumentException($"original size, crop top-left and target size (--original-size, --crop-top-left, --target-size) are SDXL micro-conditioning; '{model.Path}' ({model.Pipeline?.Index.ClassName ?? model.Network.Config.ClassName}) does not take them (nor their --negative- forms).");
            return;
        }
        if (prompts == 0) throw new ArgumentException($"pipeline '{model.Path}' ({pipeline.Index.ClassName}) needs a prompt (--prompt).");
        if (prompts != 1 && prompts != request.Count)
            throw new ArgumentException($"{prompts} prompts given for {request.Count} images: give one prompt for all or one per image.");
        if (negatives > 1 && negatives != request.Count)
            throw new ArgumentException($"{negatives} negative prompts given for {request.Count} images: give one for all or one per image.");
        prompter.CheckClipSkip(request.ClipSkip);
        MicroConditioning.Check(request, pipeline.UsesMicroConditioning, $"pipeline '{model.Path}' ({pipeline.Index.ClassName})");
    }

    private static SchedulerConfig ResolveScheduler(LoadedDenoiser model, GenerationRequest request)
    {
        if (!string.IsNullOrWhiteSpace(request.SchedulerConfigJson)) return WithCall(SchedulerConfig.ParseJson(request.SchedulerConfigJson), request);
        string sampler = request.Sampler ?? GenerationRequest.DefaultSampler;
        var call = WithCall(SamplerNames.Resolve(model.TrainingSchedule, sampler, request.Schedule), request);
        // ComfyUI's samplers take no step eta: it is dropped (OutputShape warns), as for a diffusers class without one.
        return SamplerNames.ConventionOf(sampler) == NameConvention.ComfyUI ? call with { Eta = null } : call;
    }

    // The result's scheduler: the config's class, or the short name's (ComfyUI names: "ComfyUI NAME (SCHEDULE)").
    private static string SchedulerLabel(LoadedDenoiser model, GenerationRequest request)
    {
        if (!string.IsNullOrWhiteSpace(request.SchedulerConfigJson)) return ResolveScheduler(model, request).ClassName;
        return SamplerNames.Label(model.TrainingSchedule, request.Sampler ?? GenerationRequest.DefaultSampler, request.Schedule);
    }

    private static Scheduler CreateScheduler(LoadedDenoiser model, GenerationRequest request)
    {
        if (!string.IsNullOrWhiteSpace(request.SchedulerConfigJson))
            return SchedulerFactory.Create(WithCall(SchedulerConfig.ParseJson(request.SchedulerConfigJson), request), request.Steps);
        // The step arguments go on the model's config only for the class the short name resolves to.
        var call = WithCall(ResolveScheduler(model, request), request);
        return SamplerNames.Create(model.TrainingSchedule with { Eta = call.Eta, CustomTimesteps = call.CustomTimesteps },
            request.Sampler ?? GenerationRequest.DefaultSampler, request.Schedule, request.Steps);
    }

    /// <summary>
    /// The request's step arguments on the scheduler config, as diffusers passes them to its calls: custom timesteps
    /// always (a class without them refuses them, as diffusers' retrieve_timesteps does), eta only to a class whose
    /// step takes it (diffusers' pipelines drop it for the others; <see cref="OutputShape"/> warns).
    /// </summary>
    private static SchedulerConfig WithCall(SchedulerConfig config, GenerationRequest request) =>
        config with { Eta = config.Kind?.TakesEta == true ? request.Eta : null, CustomTimesteps = request.Timesteps };

    private static RecordedNoise? RecordedDraws(GenerationRequest request, int imageLength)
    {
        if (request.StepNoise is not { } values) return null;
        int drawLength = request.Count * imageLength;
        return new RecordedNoise(values, values.Length / drawLength, drawLength);
    }
}
