using System.Text.Json;

namespace Engine.Jobs;

/// <summary>
/// One generation job, as one line of a job file holds it. Optional settings are null when the line
/// leaves them to the defaults of whoever runs the job.
/// </summary>
public sealed class GenerationJob
{
    /// <summary>Creates a job; <see cref="JobFile"/> validates lines before building one.</summary>
    public GenerationJob(int line, string model, IReadOnlyList<ulong> seeds, IReadOnlyList<int>? classes)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0) throw new ArgumentException("A job needs at least one seed.", nameof(seeds));
        if (classes is { Count: 0 }) throw new ArgumentException("An explicit class list must not be empty.", nameof(classes));
        Line = line; Model = model; Seeds = seeds; Classes = classes;
    }

    /// <summary>1-based line of the job file this job came from.</summary>
    public int Line { get; }

    /// <summary>Model folder or built-in model name (<c>model</c>).</summary>
    public string Model { get; }

    /// <summary>Sampler name (<c>sampler</c>).</summary>
    public string? Sampler { get; init; }

    /// <summary>Scheduler configuration file overriding the model's (<c>scheduler_config</c>).</summary>
    public string? SchedulerConfig { get; init; }

    /// <summary>Number of sampling steps (<c>steps</c>).</summary>
    public int? Steps { get; init; }

    /// <summary>Classifier-free guidance scale (<c>cfg</c>).</summary>
    public double? Cfg { get; init; }

    /// <summary>Class labels (<c>class</c> or <c>classes</c>), assigned to the images in turn; null for unconditional.</summary>
    public IReadOnlyList<int>? Classes { get; }

    /// <summary>One seed per image (<c>seed</c> with <c>count</c>, or <c>seeds</c>).</summary>
    public IReadOnlyList<ulong> Seeds { get; }

    /// <summary>Number of images.</summary>
    public int Count => Seeds.Count;

    /// <summary>Images per model batch (<c>batch</c>).</summary>
    public int? Batch { get; init; }

    /// <summary>Device kind (<c>device</c>).</summary>
    public string? Device { get; init; }

    /// <summary>Output folder (<c>out</c>).</summary>
    public string? Out { get; init; }

    /// <summary>Free-form options for plug-ins and guidance (<c>options</c>), passed through unread.</summary>
    public IReadOnlyDictionary<string, JsonElement> Options { get; init; } = new Dictionary<string, JsonElement>();

    /// <summary>The images this job produces, in order; image i takes class Classes[i % Classes.Count].</summary>
    public IReadOnlyList<JobImage> Images()
    {
        var images = new JobImage[Seeds.Count];
        for (int i = 0; i < images.Length; i++)
        {
            int? label = Classes is null ? null : Classes[i % Classes.Count];
            images[i] = new JobImage(i, Seeds[i], label, JobImage.NameFor(Seeds[i], label));
        }
        return images;
    }
}
