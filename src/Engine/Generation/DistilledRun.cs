using Engine.Core;
using Engine.Sampling;
using Engine.Sampling.Distillation;
using Engine.Sampling.Guidance;
using Engine.Sampling.Schedules;

namespace Engine.Generation;

/// <summary>
/// One batch of Distillation++ (docs/SAMPLERS.md section 5): the student (a one-step student, a separately loaded
/// model, or the model with its student LoRAs selected) sampled on trailing timesteps, refined by its teacher with
/// the teacher's own CFG scale and conditioning (text models: the prompts encoded by the teacher's encoders).
/// </summary>
internal static class DistilledRun
{
    /// <summary>Timestep a one-step student is evaluated at.</summary>
    public const double OneStepStudentTimestep = 999;

    /// <summary>
    /// Samples <paramref name="sample"/> (x_T in, x0 out); <paramref name="teacher"/> null with student adapters means the
    /// model is its own teacher. Returns the batched forwards of student and teacher; <paramref name="total"/> the steps.
    /// </summary>
    public static int Run(LoadedDenoiser student, LoadedDenoiser? teacher, GenerationRequest request, SamplingOptions options,
        Conditioning conditioning, Conditioning teacherConditioning, Tensor sample, INoiseSource noise, out int total, Action<int> onStep)
    {
        bool shared = request.StudentLoras.Count > 0;
        var teacherModel = shared ? student : teacher;
        var training = new TrainingSchedule(student.TrainingSchedule);
        double[] timesteps = student.IsOneStepStudent
            ? [OneStepStudentTimestep]
            : Enumerable.Range(0, request.Steps).Select(i => Math.Round(training.Count - i * (double)training.Count / request.Steps) - 1).ToArray();
        total = timesteps.Length;
        var distill = options.Distillation with { ClampX0 = student.IsOneStepStudent ? 1 : options.Distillation.ClampX0 };
        string studentType = student.IsOneStepStudent ? "sample" : student.TrainingSchedule.PredictionType;
        // A one-step student has guidance baked in: its own CFG scale is 1. Pipelines guide only above 1, as diffusers'.
        float studentScale = student.IsOneStepStudent ? 1f : student.Pipeline is not null ? (float)options.Guidance.Scale : (float)request.GuidanceScale;
        double teacherScale = student.Pipeline is not null && options.TeacherScale <= 1 ? 1 : options.TeacherScale;
        using var network = new ConditionalNetwork(student.Network, student.TrainingSchedule.PredictionType);
        using var studentGuided = new GuidedDenoiser(network, conditioning, options.Guidance with { Scale = studentScale }, timesteps.Length);
        using var teacherNetwork = teacherModel is null ? null : new ConditionalNetwork(teacherModel.Network, teacherModel.TrainingSchedule.PredictionType);
        using var teacherGuided = teacherNetwork is null ? null
            : new GuidedDenoiser(teacherNetwork, teacherConditioning, new GuidanceOptions { Scale = teacherScale }, timesteps.Length);
        IDenoiser studentDenoiser = shared ? new AdapterSelection(studentGuided, student, true) : studentGuided;
        IDenoiser? teacherDenoiser = shared && teacherGuided is not null ? new AdapterSelection(teacherGuided, student, false) : teacherGuided;
        using var sampler = new DistillationSampler(training, timesteps, studentType, teacherModel?.TrainingSchedule.PredictionType ?? "epsilon", distill);
        try { sampler.Run(studentDenoiser, teacherDenoiser, sample, noise, onStep); }
        finally { if (shared) student.Adapters.StudentSelected = false; }
        return studentGuided.Forwards + (teacherGuided?.Forwards ?? 0);
    }

    /// <summary>Refuses what Distillation++ cannot run, naming the models and options, before any work.</summary>
    public static void Check(LoadedDenoiser model, LoadedDenoiser? teacher, GenerationRequest request, int channels, bool distilled)
    {
        if (request.InitImage is not null && distilled)
            throw new ArgumentException("img2img (--init-image) runs with a scheduler; distilled students and teachers do not take an init image.");
        if (model.IsOneStepStudent && model.Pipeline is not null)
            throw new ArgumentException($"'{model.Path}' is a pipeline folder; one-step students ({LoadedDenoiser.OneStepStudentFile}) are single-model folders only.");
        if (request.StudentLoras.Count > 0 && (teacher is not null || model.IsOneStepStudent))
            throw new ArgumentException($"student LoRAs (--student-lora) make '{model.Path}' its own teacher; do not give a teacher (--teacher) or a one-step student too.");
        foreach (var m in new[] { model, teacher })
            if (distilled && m is { IsOneStepStudent: false } && m.TrainingSchedule.PredictionType is not ("epsilon" or "v_prediction" or "sample"))
                throw new ArgumentException($"Distillation++ runs VP (DDPM-type) models; '{m.Path}' predicts '{m.TrainingSchedule.PredictionType}' (flow matching), which it does not support.");
        if (teacher is null) return;
        if ((teacher.Pipeline is null) != (model.Pipeline is null))
            throw new ArgumentException($"teacher '{teacher.Path}' and student '{model.Path}' must both be pipeline folders (model_index.json) or both model folders.");
        if (teacher.Network.InChannels != channels || teacher.ClassCount != model.ClassCount || teacher.PixelScale != model.PixelScale)
            throw new ArgumentException($"teacher '{teacher.Path}' ({teacher.Network.InChannels} channels, {teacher.ClassCount} classes, VAE factor {teacher.PixelScale}) does not match the student '{model.Path}' ({channels} channels, {model.ClassCount} classes, VAE factor {model.PixelScale}).");
        if (model.Pipeline is not null && teacher.Pipeline!.Prompts is null != (model.Pipeline.Prompts is null))
            throw new ArgumentException($"teacher '{teacher.Path}' ({teacher.Pipeline.Index.ClassName}) and student '{model.Path}' ({model.Pipeline.Index.ClassName}) must both take prompts or both class labels.");
    }

    /// <summary>Selects the student's or the shared weights of one model before each evaluation (a pointer switch).</summary>
    private sealed class AdapterSelection(IDenoiser inner, LoadedDenoiser model, bool student) : IDenoiser
    {
        public Tensor Predict(Tensor modelInput, in DenoiserCall call)
        {
            model.Adapters.StudentSelected = student;
            return inner.Predict(modelInput, call);
        }
    }
}
