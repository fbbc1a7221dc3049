using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Models.Tests;

/// <summary>
/// ControlNetModel against diffusers 0.31 (<c>fixtures/controlnet/forward</c>): every down residual and the mid
/// residual, plain and in guess mode, within 1e-4 of each tensor's absmax (the fixture README expects about 1e-5
/// from a float32 engine); and the base UNet of the tiny SD pipeline taking a ControlNet's recorded residuals
/// (teacher-forced calls of a pipeline reference) within 1e-4. Both on the CPU device and on ILGPU's CPU accelerator
/// (there one teacher-forced call: each UNet call is slow on it).
/// </summary>
[TestFixture]
public sealed class ControlNetModelTests
{
    private const double Tolerance = 1e-4;

    public static IEnumerable<TestCaseData> ForwardCases() =>
        from name in new[] { "sd_tiny", "sdxl_tiny" }
        from kind in TestDevices.Kinds
        select new TestCaseData(name, kind).SetName($"ControlNet {name} on {kind}");

    [TestCaseSource(nameof(ForwardCases))]
    public void ResidualsMatchDiffusers(string name, string kind)
    {
        var device = TestDevices.Get(kind);
        var root = Path.Combine(Fixtures.RequireRoot(), "controlnet");
        using var model = (ControlNetModel)ModelLoader.Load(device, Path.Combine(root, "models", name));
        var json = Fixtures.Json(Path.Combine("controlnet", "forward", name + ".json"));
        float scale = (float)json.GetProperty("conditioning_scale").GetDouble();
        using var io = SafetensorsFile.Open(Path.Combine(root, "forward", name + ".safetensors"));
        using var sample = io.Load(device, "sample");
        using var t = io.Load(device, "timestep");
        using var context = io.Load(device, "encoder_hidden_states");
        using var cond = io.Load(device, "controlnet_cond");
        using var added = io.Contains("added_text_embeds") ? AddedConditioning(device, io) : null;
        Assert.That(model.ResidualScales(scale, true), Is.EqualTo(io.ReadFloats("guess_mode.scales")), "guess-mode multipliers");
        foreach (var (guess, prefix) in new[] { (false, ""), (true, "guess_mode.") })
        {
            using var residuals = model.Forward(new ControlNetInputs(sample, t, context, cond) { Added = added, Scale = scale, GuessMode = guess });
            Assert.That(residuals.Down, Has.Count.EqualTo(json.GetProperty("n_down_residuals").GetInt32()));
            for (int j = 0; j < residuals.Down.Count; j++) Compare(residuals.Down[j], io, $"{prefix}down_block_res_samples.{j}", kind);
            Compare(residuals.Mid, io, $"{prefix}mid_block_res_sample", kind);
        }
    }

    /// <summary>The engine's added conditioning: text_embeds then the six time ids per row.</summary>
    private static Tensor AddedConditioning(Device device, SafetensorsFile io)
    {
        var text = io.ReadFloats("added_text_embeds");
        var ids = io.ReadFloats("added_time_ids");
        int b = io.Info("added_text_embeds").Shape[0], d = text.Length / b;
        var rows = new float[b * (d + 6)];
        for (int i = 0; i < b; i++)
        {
            text.AsSpan(i * d, d).CopyTo(rows.AsSpan(i * (d + 6)));
            ids.AsSpan(i * 6, 6).CopyTo(rows.AsSpan(i * (d + 6) + d));
        }
        return device.Upload(rows, b, d + 6);
    }

    private static void Compare(Tensor actual, SafetensorsFile io, string name, string kind)
    {
        Assert.That(actual.ShapeArray(), Is.EqualTo(io.Info(name).Shape), $"{name} shape");
        double err = Fixtures.RelativeError(actual.ToArray(), io.ReadFloats(name));
        TestContext.Out.WriteLine($"{name} on {kind}: max|err|/max|ref| = {err:E2}");
        Assert.That(err, Is.LessThanOrEqualTo(Tolerance), $"{name} on {kind}");
    }

    public static IEnumerable<TestCaseData> TeacherForcedCases() =>
        from kind in TestDevices.Kinds
        select new TestCaseData(kind, kind == "ilgpu-cpu" ? 1 : int.MaxValue).SetName($"UNet with recorded ControlNet residuals on {kind}");

    /// <summary>
    /// Each call of sd_tiny/reference_0 (the first <paramref name="maxCalls"/>: ILGPU's CPU accelerator runs one),
    /// teacher-forced: the ControlNet on the recorded input gives the recorded residuals, and the base UNet with
    /// them gives the recorded output.
    /// </summary>
    [TestCaseSource(nameof(TeacherForcedCases))]
    public void UNetAddsResidualsAsDiffusers(string kind, int maxCalls)
    {
        var device = TestDevices.Get(kind);
        var root = Fixtures.RequireRoot();
        using var unet = (UNet2DConditionModel)ModelLoader.Load(device, Path.Combine(root, "pipelines", "sd_tiny", "pipeline", "unet"));
        using var controlnet = (ControlNetModel)ModelLoader.Load(device, Path.Combine(root, "controlnet", "models", "sd_tiny"));
        using var io = SafetensorsFile.Open(Path.Combine(root, "controlnet", "pipelines", "sd_tiny", "reference_0.safetensors"));
        Assert.That(controlnet.ResidualChannels, Has.Count.EqualTo(unet.SkipCount));
        var negative = io.ReadFloats("negative_prompt_embeds");
        var positive = io.ReadFloats("prompt_embeds");
        var embedShape = io.Info("prompt_embeds").Shape;
        using var context = device.Upload([.. negative, .. positive], 2 * embedShape[0], embedShape[1], embedShape[2]);
        using var cnContext = io.Load(device, "controlnet_encoder_hidden_states");
        using var cond = io.Load(device, "controlnet_cond");
        var scales = io.ReadFloats("step_controlnet_scale");
        int calls = Math.Min(maxCalls, io.Info("step_model_input").Shape[0]);
        for (int i = 0; i < calls; i++)
        {
            using var input = Step(device, io, "step_model_input", i);
            using var cnInput = Step(device, io, "step_controlnet_input", i);
            using var t = Step(device, io, "step_model_timestep", i);
            using var cnT = Step(device, io, "step_controlnet_timestep", i);
            using var residuals = controlnet.Forward(new ControlNetInputs(cnInput, cnT, cnContext, cond) { Scale = scales[i] });
            for (int j = 0; j < residuals.Down.Count; j++) CompareStep(residuals.Down[j], io, $"step_down_residual.{j}", i);
            CompareStep(residuals.Mid, io, "step_mid_residual", i);
            using var output = unet.Forward(new DenoiserInputs(input, t) { EncoderHiddenStates = context, Residuals = residuals });
            CompareStep(output, io, "step_model_output", i);
        }
    }

    private static Tensor Step(Device device, SafetensorsFile io, string name, int i)
    {
        var shape = io.Info(name).Shape;
        var all = io.ReadFloats(name);
        int length = all.Length / shape[0];
        var rest = shape.Skip(1).ToArray();
        return device.Upload(all.AsSpan(i * length, length), rest.Length == 0 ? [1] : rest);
    }

    private static void CompareStep(Tensor actual, SafetensorsFile io, string name, int i)
    {
        var all = io.ReadFloats(name);
        int length = all.Length / io.Info(name).Shape[0];
        double err = Fixtures.RelativeError(actual.ToArray(), all.AsSpan(i * length, length));
        Assert.That(err, Is.LessThanOrEqualTo(Tolerance), $"{name}[{i}]");
    }
}
