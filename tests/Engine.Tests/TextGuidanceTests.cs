using Engine.Core;
using Engine.Generation;
using Engine.Generation.Pipelines;
using Engine.Models.Networks;
using Engine.Sampling;
using Engine.Sampling.Guidance;

namespace Engine.Tests;

/// <summary>
/// Guidance options on text pipelines (SD 1.x UNet, SDXL UNet with pooled conditioning, SD3 joint attention):
/// a whole <see cref="Generator"/> run (one batched forward per call) against the same scheduler driven by
/// <see cref="BranchByBranch"/>, which evaluates each branch in a forward of its own (PAG's through the
/// whole-model identity switch, CADS on the prompt embeddings computed on the host) and combines them with
/// the formulas of docs/SAMPLERS.md in float64.
/// </summary>
public class TextGuidanceTests
{
    private const double Cfg = 5;
    private static readonly string[] Prompts = ["a photo of a cat", "a red car"];

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (pipeline, sampler) in new[] { ("sd_tiny", "euler"), ("sdxl_tiny", "ddim"), ("sd3_tiny_pipe", "flow_euler") })
            foreach (var option in new[] { "pag_scale=3", "cfg_rescale=0.7", "cfg_interval=0.5,5", "cads_scale=0.25" })
                yield return new TestCaseData(pipeline, sampler, option).SetName($"TextGuidance({pipeline},{option})");
        // PAG and CADS together on the perturbed block, on a named layer.
        yield return new TestCaseData("sd_tiny", "euler", "pag_scale=2;pag_layers=up_blocks;cads_scale=0.5;cads_seed=7;cfg_rescale=0.5").SetName("TextGuidance(sd_tiny,combined)");
    }

    [TestCaseSource(nameof(Cases))]
    public void BatchedGuidanceEqualsTheBranchesEvaluatedApart(string pipeline, string sampler, string options)
    {
        var device = TestDevices.Get("cpu");
        var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", pipeline, "pipeline"));
        const int steps = 4;
        int scale = model.PixelScale, h = 24 / scale, w = 16 / scale, c = model.Network.InChannels;
        var xT = new float[Prompts.Length * c * h * w];
        var rng = new Random(5);
        for (int i = 0; i < xT.Length; i++) xT[i] = (float)(rng.NextDouble() * 2 - 1);
        var request = new GenerationRequest
        {
            Count = Prompts.Length, Prompts = Prompts, NegativePrompts = ["blurry"], GuidanceScale = Cfg, Steps = steps,
            Sampler = sampler, Height = 24, Width = 16, InitialNoise = xT, BatchSize = 1, Options = options.Split(';'),
        };
        var result = generator.Generate(model, request);

        var parsed = SamplingOptionCatalog.Parse(request.Options).Guidance with { Scale = Cfg };
        using var text = PromptEmbeddings.Encode(model.Pipeline!, request, request.Count, 24, 16, guided: true, null);
        using var scheduler = SamplerNames.Create(model.TrainingSchedule, sampler, null, steps);
        using var sample = device.Upload(xT, request.Count, c, h, w);
        device.Affine(sample, sample, (float)scheduler.InitNoiseSigma, 0f);
        using var reference = new BranchByBranch(model.Network, text.Tensors, parsed, scheduler.CallCount);
        Sampler.Run(scheduler, reference, sample);

        double error = Fixtures.RelativeError(result.Samples, device.Download(sample));
        TestContext.Out.WriteLine($"{pipeline} {options}: {error:E2}; branches per call {string.Join(",", reference.Branches)}");
        Assert.That(error, Is.LessThanOrEqualTo(1e-5), "batched guidance against the branches apart");
        if (options.StartsWith("cfg_interval", StringComparison.Ordinal))
            Assert.That(reference.Branches, Does.Contain(1).And.Contain(2), "the interval should leave some calls unguided and guide others");
        // The options must change the result: nothing is silently ignored.
        var plain = generator.Generate(model, request with { Options = [] });
        Assert.That(Fixtures.RelativeError(result.Samples, plain.Samples), Is.GreaterThan(1e-4), $"{options} left the samples unchanged");
    }

    /// <summary>
    /// The guided model of docs/SAMPLERS.md section 3 with each branch in its own forward: out = u + w (c - u) + s (c - p),
    /// rescaled to std(c) by phi; c and p see the CADS-corrupted prompt embeddings; outside the interval only c.
    /// </summary>
    private sealed class BranchByBranch(DiffusionModel network, (Tensor Positive, Tensor? Negative, Tensor? Pooled, Tensor? NegativePooled) text,
        GuidanceOptions options, int calls) : IDenoiser, IDisposable
    {
        private Tensor? _output;

        public List<int> Branches { get; } = [];

        public Tensor Predict(Tensor modelInput, in DenoiserCall call)
        {
            var d = modelInput.Device;
            int b = modelInput.Dim(0);
            using var t = d.Upload([(float)call.Timestep], 1);
            using var corrupted = options.Cads is { } cads ? Corrupt(d, text.Positive, cads, call.Index) : null;
            var positive = corrupted ?? text.Positive;
            bool inside = call.Sigma > options.IntervalSigmaMin && call.Sigma <= options.IntervalSigmaMax;
            double[] cond = Forward(modelInput, t, positive, text.Pooled);
            double[] guided = cond;
            Branches.Add(1 + (inside ? 1 + (options.PagScale != 0 ? 1 : 0) : 0));
            if (inside)
            {
                double[] uncond = Forward(modelInput, t, text.Negative!, text.NegativePooled);
                double[]? perturbed = null;
                if (options.PagScale != 0)
                {
                    network.SetIdentityAttention(true, options.PagLayers.Count == 1 && options.PagLayers[0] == "mid_block" && network is not UNet2DConditionModel ? null : options.PagLayers);
                    try { perturbed = Forward(modelInput, t, positive, text.Pooled); }
                    finally { foreach (var a in network.SelfAttentionLayers) a.IdentityAttention = false; }
                }
                double w = Cfg, s = options.PagScale;
                guided = new double[cond.Length];
                for (int i = 0; i < cond.Length; i++)
                    guided[i] = uncond[i] + w * (cond[i] - uncond[i]) + (perturbed is null ? 0 : s * (cond[i] - perturbed[i]));
                if (options.RescalePhi > 0)
                {
                    int per = cond.Length / b;
                    for (int r = 0; r < b; r++)
                    {
                        double ratio = Std(cond, r * per, per) / Std(guided, r * per, per);
                        for (int i = r * per; i < (r + 1) * per; i++) guided[i] = options.RescalePhi * guided[i] * ratio + (1 - options.RescalePhi) * guided[i];
                    }
                }
            }
            _output?.Dispose();
            _output = d.Upload(guided.Select(v => (float)v).ToArray(), modelInput.ShapeArray());
            return _output;
        }

        private double[] Forward(Tensor x, Tensor t, Tensor embeddings, Tensor? pooled)
        {
            using var y = network.Forward(x, t, null, embeddings, network.NeedsPooledProjections ? pooled : null);
            return y.Device.Download(y).Select(v => (double)v).ToArray();
        }

        /// <summary>CADS of docs/SAMPLERS.md: y' = sqrt(g) y + s sqrt(1 - g) n, rescaled to y's mean and std, mixed by psi.</summary>
        private Tensor Corrupt(Device d, Tensor clean, CadsOptions cads, int call)
        {
            double gamma = cads.Gamma(1 - (double)call / calls);
            int b = clean.Dim(0), per = (int)(clean.Length / b);
            using var noiseT = d.Allocate(b, per);
            d.RandomNormal(noiseT, cads.Seed ^ CadsNoise.SeedMix, cads.FirstSampleIndex, call);
            var n = d.Download(noiseT);
            var y = d.Download(clean);
            var result = new float[y.Length];
            for (int r = 0; r < b; r++)
            {
                var yr = y.Skip(r * per).Take(per).Select(v => (double)v).ToArray();
                var noisy = yr.Select((v, i) => Math.Sqrt(gamma) * v + cads.NoiseScale * Math.Sqrt(1 - gamma) * n[r * per + i]).ToArray();
                double mean = yr.Average(), std = Std(yr, 0, per), mean2 = noisy.Average(), std2 = Std(noisy, 0, per);
                for (int i = 0; i < per; i++)
                {
                    double rescaled = (noisy[i] - mean2) / std2 * std + mean;
                    result[r * per + i] = (float)(gamma == 1 || cads.NoiseScale == 0 ? yr[i] : cads.Psi * rescaled + (1 - cads.Psi) * noisy[i]);
                }
            }
            return d.Upload(result, clean.ShapeArray());
        }

        private static double Std(double[] v, int start, int count)
        {
            double mean = 0, sq = 0;
            for (int i = start; i < start + count; i++) mean += v[i];
            mean /= count;
            for (int i = start; i < start + count; i++) sq += (v[i] - mean) * (v[i] - mean);
            return Math.Sqrt(sq / count);
        }

        public void Dispose() => _output?.Dispose();
    }
}
