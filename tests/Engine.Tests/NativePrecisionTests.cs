using System.Text;
using System.Text.Json.Nodes;
using Engine.Core;
using Engine.Generation;
using Engine.Native;
using Engine.Sampling.Rng;

namespace Engine.Tests;

/// <summary>
/// The fields of <c>engine_request</c> since interface 0.7.0 read into a <see cref="GenerationRequest"/>: precision
/// and compute enum values, SDXL's negative micro-conditioning sizes (the C fields reproduce diffusers'
/// controlnet/pipelines/sdxl_tiny reference_0 run without its ControlNet), every bad value named by its field.
/// </summary>
public unsafe class NativePrecisionTests
{
    private static NativeRequest Plain() => new() { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Count = 1 };

    private static GenerationRequest Read(NativeRequest native) => NativeRequest.ToRequest(&native);

    private static string Refusal(NativeRequest native) => Assert.Throws<ArgumentException>(() => Read(native))!.Message;

    [Test]
    public void PrecisionAndComputeValuesMapOntoTheRequest()
    {
        var native = Plain();
        var defaults = Read(native);
        Assert.That((defaults.Precision, defaults.Compute), Is.EqualTo(((DType?)null, ComputeMode.F32)), "zeroed fields: the device's precision, float32 compute");
        Assert.That(new[] { 1, 2, 3 }.Select(v => Read(native with { Precision = v }).Precision), Is.EqualTo(new DType?[] { DType.F32, DType.F16, DType.BF16 }));
        Assert.That(new[] { 0, 1, 2 }.Select(v => Read(native with { Compute = v }).Compute), Is.EqualTo(new[] { ComputeMode.F32, ComputeMode.Bf16, ComputeMode.Auto }));
        Assert.That(Refusal(native with { Precision = 4 }), Does.Contain("request.precision 4 is not an engine_precision").And.Contain("ENGINE_PRECISION_BF16 3"));
        Assert.That(Refusal(native with { Precision = -1 }), Does.Contain("request.precision -1"));
        Assert.That(Refusal(native with { Compute = 3 }), Does.Contain("request.compute 3 is not an engine_compute").And.Contain("ENGINE_COMPUTE_AUTO 2"));
        Assert.That(Refusal(native with { Compute = int.MinValue }), Does.Contain($"request.compute {int.MinValue}"));
    }

    [Test]
    public void NegativeSizesMapOntoTheRequestAndBadOnesAreNamed()
    {
        var native = Plain();
        Assert.That(Read(native).NegativeOriginalSize, Is.Null, "{0, 0} = not given");
        native.NegativeOriginalSize[0] = 32; native.NegativeOriginalSize[1] = 48;
        native.NegativeCropTopLeft[0] = 0; native.NegativeCropTopLeft[1] = 8;
        native.NegativeTargetSize[0] = 24; native.NegativeTargetSize[1] = 16;
        var request = Read(native);
        Assert.That((request.NegativeOriginalSize, request.NegativeCropTopLeft, request.NegativeTargetSize), Is.EqualTo((new[] { 32, 48 }, new[] { 0, 8 }, new[] { 24, 16 })));

        var bad = native;
        bad.NegativeOriginalSize[1] = -48;
        Assert.That(Refusal(bad), Does.Contain("request.negative_original_size {32, -48} must be positive"));
        bad = native;
        bad.NegativeTargetSize[0] = 0;
        Assert.That(Refusal(bad), Does.Contain("request.negative_target_size {0, 16} must be positive"));
        bad = native;
        bad.NegativeCropTopLeft[0] = -1;
        Assert.That(Refusal(bad), Does.Contain("request.negative_crop_top_left {-1, 8} must be non-negative"));
        bad = native;
        bad.NegativeTargetSize[0] = 0; bad.NegativeTargetSize[1] = 0;
        Assert.That(Refusal(bad), Does.Contain("request.negative_original_size and request.negative_target_size go together"));
        bad.NegativeOriginalSize[0] = 0; bad.NegativeOriginalSize[1] = 0;
        Assert.That(Refusal(bad), Does.Contain("request.negative_crop_top_left needs"));
    }

    /// <summary>
    /// The reference's call (two prompts, CFG 5, positive and negative SDXL sizes, x_T from torch's generator seeded 56)
    /// made through the C fields on the tiny SDXL pipeline, without its ControlNet: diffusers' latents of the same call
    /// without ControlNet (<c>latents_final_without_controlnet</c>) within 1e-3; without the negative sizes they are missed.
    /// </summary>
    [Test]
    public void NegativeSizesReproduceTheSdxlReferenceWithoutControlNet()
    {
        const string reference = "controlnet/pipelines/sdxl_tiny/reference_0";
        var json = Fixtures.Json($"{reference}.json");
        using var tensors = Fixtures.Tensors($"{reference}.safetensors");
        var kw = json.GetProperty("call_kwargs");
        var config = JsonNode.Parse(json.GetProperty("scheduler").GetProperty("config").GetRawText())!.AsObject();
        config["_class_name"] = json.GetProperty("scheduler").GetProperty("class").GetString();
        string[] prompts = [.. kw.GetProperty("prompt").EnumerateArray().Select(e => e.GetString()!)];
        string[] negatives = [.. kw.GetProperty("negative_prompt").EnumerateArray().Select(e => e.GetString()!)];
        int[] Pair(string name) => [.. kw.GetProperty(name).EnumerateArray().Select(e => e.GetInt32())];

        using var strings = new Utf8Strings();
        var promptArray = stackalloc byte*[2];
        var negativeArray = stackalloc byte*[2];
        for (int i = 0; i < 2; i++) { promptArray[i] = strings.Add(prompts[i]); negativeArray[i] = strings.Add(negatives[i]); }
        var native = new NativeRequest
        {
            StructSize = (nuint)sizeof(NativeRequest),
            SchedulerConfigJson = strings.Add(config.ToJsonString()),
            Steps = kw.GetProperty("num_inference_steps").GetInt32(),
            GuidanceScale = kw.GetProperty("guidance_scale").GetSingle(),
            Seed = json.GetProperty("x_T_seed").GetUInt64(),
            Rng = strings.Add(RngKind.Torch.Name()),
            Count = 2,
            Height = kw.GetProperty("height").GetInt32(),
            Width = kw.GetProperty("width").GetInt32(),
            Prompts = promptArray, PromptCount = 2,
            NegativePrompts = negativeArray, NegativePromptCount = 2,
        };
        Set(native.OriginalSize, Pair("original_size"));
        Set(native.CropTopLeft, Pair("crops_coords_top_left"));
        Set(native.TargetSize, Pair("target_size"));
        var withoutNegative = native;
        Set(native.NegativeOriginalSize, Pair("negative_original_size"));
        Set(native.NegativeTargetSize, Pair("negative_target_size"));

        var device = TestDevices.Get("cpu"); // shared by the tests: not disposed here
        var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", "sdxl_tiny", "pipeline"));
        var expected = tensors.ReadFloats("latents_final_without_controlnet");
        double error = Fixtures.RelativeError(generator.Generate(model, Read(native)).Samples, expected);
        double missed = Fixtures.RelativeError(generator.Generate(model, Read(withoutNegative)).Samples, expected);
        TestContext.Out.WriteLine($"{reference} without ControlNet: {error:E2} with the negative sizes, {missed:E2} without");
        Assert.That(error, Is.LessThanOrEqualTo(1e-3));
        Assert.That(missed, Is.GreaterThan(1e-2), "the negative sizes matter to this reference");
    }

    private static void Set(int* pair, int[] values) { pair[0] = values[0]; pair[1] = values[1]; }

    /// <summary>NUL-terminated UTF-8 copies in unmanaged memory, freed together.</summary>
    private sealed class Utf8Strings : IDisposable
    {
        private readonly List<nint> _blocks = [];

        public byte* Add(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text + "\0");
            nint block = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes.Length);
            System.Runtime.InteropServices.Marshal.Copy(bytes, 0, block, bytes.Length);
            _blocks.Add(block);
            return (byte*)block;
        }

        public void Dispose() { foreach (var b in _blocks) System.Runtime.InteropServices.Marshal.FreeHGlobal(b); }
    }
}
