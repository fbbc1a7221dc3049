using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Models.Networks;

namespace Engine.Tests;

/// <summary>
/// The tiny pipeline fixtures on the other test devices (ILGPU's CPU accelerator unless <c>ENGINE_TEST_ILGPU=0</c>,
/// CUDA where <c>ENGINE_TEST_CUDA=1</c>), component by component from reference 0's recorded tensors (guidance 1, so
/// every recorded denoiser call holds the positive conditioning alone): the text encoders from the recorded token ids
/// (embeddings within 1e-4), the denoiser at its first and last recorded call, and the VAE decoder on the recorded
/// decode input (within 1e-3 of the largest reference value); and one whole pipeline call, the cheapest reference
/// (DiT, DDIM, 6 steps), whose final latents and image meet 1e-3 as on the CPU device. These are the tolerances
/// <see cref="PipelineReferenceTests"/> holds the CPU device to; that class runs every whole reference there.
/// The components run on the second batch row alone (the longer prompt): the CPU accelerator's time grows with the
/// rows, and the rows differ only in their data.
/// </summary>
public class PipelineAcceleratorTests
{
    private const double EmbeddingTolerance = 1e-4, Tolerance = 1e-3;

    // The batch row the component tests run: the second prompt of each reference, the longer one.
    private const int Row = 1;

    private static readonly string[] Pipelines = ["sd_tiny", "sdxl_tiny", "sd3_tiny_pipe", "dit_pipe_tiny"];

    private static IEnumerable<string> AcceleratorKinds => TestDevices.Kinds.Where(k => k != "cpu");

    public static IEnumerable<TestCaseData> ComponentCases(string test, bool textOnly)
    {
        if (Fixtures.Root is null) yield break;
        foreach (var kind in AcceleratorKinds)
            foreach (var pipeline in Pipelines.Where(p => !textOnly || p != "dit_pipe_tiny"))
                yield return new TestCaseData(kind, pipeline).SetName($"{test}({kind},{pipeline})");
    }

    public static IEnumerable<TestCaseData> TextEncoderCases() => ComponentCases("PipelineTextEncoders", textOnly: true);

    public static IEnumerable<TestCaseData> DenoiserCases() => ComponentCases("PipelineDenoiser", textOnly: false);

    public static IEnumerable<TestCaseData> VaeCases() => ComponentCases("PipelineVaeDecode", textOnly: false);

    public static IEnumerable<TestCaseData> WholeCases()
    {
        if (Fixtures.Root is null) yield break;
        foreach (var kind in AcceleratorKinds)
            yield return new TestCaseData(kind, "dit_pipe_tiny", "reference_0").SetName($"PipelineWhole({kind},dit_pipe_tiny,reference_0)");
    }

    private static LoadedDenoiser Load(Device device, string pipeline) =>
        new Generator(device).LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", pipeline, "pipeline"));

    private static SafetensorsFile Reference(string pipeline) => Fixtures.Tensors($"pipelines/{pipeline}/reference_0.safetensors");

    /// <summary>
    /// Each encoder's part of the recorded embeddings from the recorded ids: SD's last hidden state; SDXL's and SD3's
    /// hidden_states[-2] in their channel columns (SD3: the first 77 tokens, the rest being the absent T5's zeros),
    /// and the projected pooled output (SDXL: the last encoder's; SD3: every encoder's, side by side).
    /// </summary>
    [TestCaseSource(nameof(TextEncoderCases))]
    public void TextEncodersFromRecordedIds(string kind, string pipeline)
    {
        var device = TestDevices.Get(kind);
        using var tensors = Reference(pipeline);
        using var model = Load(device, pipeline);
        var encoders = model.Pipeline!.Prompts!.Encoders;
        bool single = encoders.Count == 1, sd3 = pipeline == "sd3_tiny_pipe";
        var embeds = Host.Of(tensors, "prompt_embeds").Row(Row);
        var pooled = single ? null : Host.Of(tensors, "pooled_prompt_embeds").Row(Row);
        int column = 0, pooledColumn = 0;
        for (int e = 0; e < encoders.Count; e++)
        {
            string ids = e == 0 ? "prompt_ids.tokenizer" : $"prompt_ids.tokenizer_{e + 1}";
            using var output = encoders[e].Forward(Host.Of(tensors, ids).Row(Row).Values.Select(v => (int)v).ToArray(), 1);
            var states = single ? output.LastHiddenState : output.HiddenStates[^2];
            int width = states.Dim(2);
            Compare(device, states, embeds.Window(0, states.Dim(1), column, width), EmbeddingTolerance, $"{pipeline} text encoder {e + 1} on {kind}");
            column += width;
            if (pooled is null || (!sd3 && e < encoders.Count - 1)) continue;
            var projected = output.TextEmbeds!;
            Compare(device, projected, pooled.Columns(pooledColumn, projected.Dim(1)), EmbeddingTolerance, $"{pipeline} text encoder {e + 1} text_embeds on {kind}");
            pooledColumn += projected.Dim(1);
        }
        Assert.That(pooledColumn, Is.EqualTo(pooled?.Shape[^1] ?? 0), "every pooled column checked");
        if (sd3) Assert.That(column, Is.LessThanOrEqualTo(embeds.Shape[2]), "CLIP columns within the joint width");
        else Assert.That(column, Is.EqualTo(embeds.Shape[2]), "every embedding column checked");
    }

    /// <summary>The denoiser at its first and last recorded call: recorded input, timestep and conditioning.</summary>
    [TestCaseSource(nameof(DenoiserCases))]
    public void DenoiserAtRecordedSteps(string kind, string pipeline)
    {
        var device = TestDevices.Get(kind);
        using var tensors = Reference(pipeline);
        using var model = Load(device, pipeline);
        var network = model.Network;
        using var embeds = tensors.Contains("prompt_embeds") ? Upload(device, Host.Of(tensors, "prompt_embeds").Row(Row)) : null;
        // SDXL's added conditioning is text_embeds then add_time_ids; SD3's pooled projection is the pooled embedding.
        using var pooled = !network.NeedsPooledProjections ? null
            : tensors.Contains("add_time_ids") ? Upload(device, Host.Of(tensors, "add_text_embeds").JoinColumns(Host.Of(tensors, "add_time_ids")).Row(Row))
            : Upload(device, Host.Of(tensors, "pooled_prompt_embeds").Row(Row));
        // Class labels are stored as I64: read as floats.
        using var labels = tensors.Contains("class_labels_input") ? Upload(device, Host.Of(tensors, "class_labels_input").Row(Row)) : null;
        var inputs = Host.Of(tensors, "step_model_input");
        var outputs = Host.Of(tensors, "step_model_output");
        var timesteps = tensors.ReadFloats("step_model_timestep");
        foreach (int step in new[] { 0, timesteps.Length - 1 })
        {
            using var input = Upload(device, inputs.Item(step).Row(Row));
            using var timestep = device.Upload([timesteps[step]], 1);
            using var output = network.Forward(input, timestep, labels, embeds, pooled);
            Compare(device, output, outputs.Item(step).Row(Row), Tolerance, $"{pipeline} denoiser call {step} (t = {timesteps[step]}) on {kind}");
        }
    }

    /// <summary>The VAE decoder on the recorded decode input (latents / scaling_factor + shift_factor), before clamping.</summary>
    [TestCaseSource(nameof(VaeCases))]
    public void VaeDecodesRecordedInput(string kind, string pipeline)
    {
        var device = TestDevices.Get(kind);
        using var tensors = Reference(pipeline);
        using var model = Load(device, pipeline);
        using var latents = Upload(device, Host.Of(tensors, "vae_decode_input").Row(Row));
        using var decoded = model.Pipeline!.Vae.Decode(latents);
        Compare(device, decoded, Host.Of(tensors, "vae_decode_output").Row(Row), Tolerance, $"{pipeline} VAE decode on {kind}");
    }

    /// <summary>The cheapest whole reference through <see cref="Generator.Generate"/>, as <see cref="PipelineReferenceTests"/> runs it on the CPU device.</summary>
    [TestCaseSource(nameof(WholeCases))]
    public void WholePipelineReproducesReference(string kind, string pipeline, string reference)
    {
        string folder = $"pipelines/{pipeline}";
        var json = Fixtures.Json($"{folder}/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{folder}/{reference}.safetensors");
        var generator = new Generator(TestDevices.Get(kind));
        using var model = Load(generator.Device, pipeline);
        var result = generator.Generate(model, PipelineReference.Request(json, tensors));
        PipelineReference.AssertReproduced(result, tensors, $"{pipeline} {reference} on {kind}", Tolerance);
        Assert.That(result.ModelCalls, Is.EqualTo(json.GetProperty("n_denoiser_calls").GetInt32()));
    }

    private static Tensor Upload(Device device, Host host) => device.Upload(host.Values, host.Shape);

    private static void Compare(Device device, Tensor actual, Host expected, double tolerance, string what)
    {
        Assert.That(actual.ShapeArray(), Is.EqualTo(expected.Shape), $"{what}: shape");
        double error = Fixtures.RelativeError(device.Download(actual), expected.Values);
        TestContext.Out.WriteLine($"{what}: max|err|/max|ref| = {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(tolerance), what);
    }

    /// <summary>A recorded tensor on the host, row-major, with the slices the tests compare against.</summary>
    private sealed record Host(float[] Values, int[] Shape)
    {
        public static Host Of(SafetensorsFile file, string name) => new(file.ReadFloats(name), file.Info(name).Shape.ToArray());

        /// <summary>Entry <paramref name="index"/> along the first axis.</summary>
        public Host Item(int index)
        {
            int length = Values.Length / Shape[0];
            return new Host(Values.AsSpan(index * length, length).ToArray(), Shape[1..]);
        }

        /// <summary>Entry <paramref name="index"/> along the first axis, keeping that axis (length 1).</summary>
        public Host Row(int index) => Item(index) with { Shape = [1, .. Shape[1..]] };

        /// <summary>Columns [start, start + count) of the last axis of a [rows, C] tensor.</summary>
        public Host Columns(int start, int count) => Window(0, 1, start, count) with { Shape = [Shape[0], count] };

        /// <summary>Tokens [0, tokens) and channels [start, start + count) of a [N, L, C] tensor (or [N, C] as L = 1).</summary>
        public Host Window(int token, int tokens, int start, int count)
        {
            int n = Shape[0], l = Shape.Length == 3 ? Shape[1] : 1, c = Shape[^1];
            var result = new float[n * tokens * count];
            for (int i = 0; i < n; i++)
                for (int t = 0; t < tokens; t++)
                    Array.Copy(Values, (i * l + token + t) * c + start, result, (i * tokens + t) * count, count);
            return new Host(result, [n, tokens, count]);
        }

        /// <summary>[N, A + B] of this [N, A] then <paramref name="other"/> [N, B].</summary>
        public Host JoinColumns(Host other)
        {
            int n = Shape[0], a = Shape[1], b = other.Shape[1];
            var result = new float[n * (a + b)];
            for (int i = 0; i < n; i++)
            {
                Array.Copy(Values, i * a, result, i * (a + b), a);
                Array.Copy(other.Values, i * b, result, i * (a + b) + a, b);
            }
            return new Host(result, [n, a + b]);
        }
    }
}
