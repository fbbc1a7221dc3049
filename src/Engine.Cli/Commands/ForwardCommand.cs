using System.CommandLine;
using Engine.Core;
using Engine.Core.Profiling;
using Engine.Core.Safetensors;
using Engine.Gpu;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine forward</c>: one forward pass of a diffusers model folder on inputs from a safetensors
/// file named as diffusers' forward arguments. Denoisers read <c>sample</c> (or <c>hidden_states</c>),
/// <c>timestep</c> and, as the model needs, <c>class_labels</c>, <c>encoder_hidden_states</c>,
/// <c>pooled_projections</c>, and write <c>output</c>. AutoencoderKL reads <c>image</c> (writes
/// <c>enc_mean</c>, <c>enc_logvar</c>, <c>enc_std</c>) and/or <c>latent</c> (writes <c>decoded</c>).
/// A transformers CLIP text encoder folder reads <c>input_ids</c> and writes <c>last_hidden_state</c>,
/// <c>pooler_output</c>, <c>text_embeds</c> (with projection) and, with <c>--hidden-states</c>, every hidden state.
/// Other tensors in the input file are ignored.
/// </summary>
public sealed class ForwardCommand : EngineCommand
{
    private readonly Option<string?> _model = CliOptions.PathText("--model", "DIR", "model or text encoder folder");
    private readonly Option<string?> _inputs = CliOptions.PathText("--inputs", "FILE", "input tensors");
    private readonly Option<string?> _output = CliOptions.PathText("--output", "FILE", "where to write the results (written atomically)");
    private readonly Option<string?> _device = CliOptions.Device("cpu, cuda, opencl or ilgpu-cpu (default: ENGINE_DEVICE, else the best available)");
    private readonly Option<DType?> _weights = CliOptions.Weights("storage of Linear/Conv2d weights: f32 (default), f16 or bf16");
    private readonly Option<DType?> _precision = CliOptions.Precision(SamplingOptions.PrecisionHelp);
    private readonly Option<ComputeMode?> _compute = CliOptions.Compute();
    private readonly Option<bool> _profile = CliOptions.Flag("--profile",
        "time every device op of the forward pass (not the weight load) by family and shape and print the table: wall and CPU time, share, calls, GFLOP/s");
    private readonly Option<string?> _profileJson = CliOptions.PathText("--profile-json", "FILE", "write the --profile table as JSON to FILE (implies --profile)");
    private readonly Option<bool> _hiddenStates = CliOptions.Flag("--hidden-states", "text encoders: also write every hidden state, hidden_states.0 (embeddings) .. hidden_states.N");

    /// <inheritdoc />
    public override string Name => "forward";

    /// <inheritdoc />
    public override string Summary => "run one forward pass of a model folder on tensors from a safetensors file";

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_model, _inputs, _output, _device, _weights, _precision, _compute, _profile, _profileJson, _hiddenStates];

    /// <inheritdoc />
    protected override IEnumerable<Option> RequiredOptions => [_model, _inputs, _output];

    /// <inheritdoc />
    public override string Usage =>
        "usage: engine forward --model DIR --inputs IN.safetensors --output OUT.safetensors [--device cpu|cuda|opencl|ilgpu-cpu] [--weights f32|f16|bf16] [--precision f16|bf16|f32] [--compute f32|bf16|auto] [--profile] [--profile-json FILE] [--hidden-states]";

    /// <inheritdoc />
    public override string Details => """
        Runs one forward pass of the diffusers model in DIR (config.json + diffusion_pytorch_model.safetensors)
        or of the transformers text encoder in DIR (config.json + model.safetensors, e.g. a pipeline's
        text_encoder/). Inputs are named as the forward arguments (float32; integer-valued ones such as
        class labels and token ids are cast):
          denoisers      sample (or hidden_states), timestep, class_labels, encoder_hidden_states,
                         pooled_projections                         -> output
          ControlNetModel sample, timestep, encoder_hidden_states,  -> down_block_res_samples.0..n-1,
                         controlnet_cond, [conditioning_scale,         mid_block_res_sample
                         guess_mode, added_text_embeds, added_time_ids (SDXL)]
          AutoencoderKL  image                                      -> enc_mean, enc_logvar, enc_std
                         latent                                     -> decoded
          CLIPTextModel, input_ids [batch, length]                  -> last_hidden_state, pooler_output,
          CLIPTextModelWithProjection                                  text_embeds (with projection),
                                                                       hidden_states.0..N (--hidden-states)
        Other tensors in the input file are ignored.
        --profile times each device op of the pass (exclusive times, the device synchronised after each op) and
        prints one table per op family and one per family and shape, then the pass's memory: weights, peak live
        activations, peak live + pooled buffers, the CPU kernels' scratch, the CPU memory arena, the engine's peak
        native memory and the process's peak RSS during the pass (docs/PERFORMANCE.md, "UNet step memory");
        --profile-json FILE writes the tables as JSON.
        """;

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        var output = context.Output;
        // Required options: the parser has checked they are there.
        string model = parse.GetValue(_model)!, inputs = parse.GetValue(_inputs)!, outputPath = parse.GetValue(_output)!;
        string? kind = parse.GetValue(_device);
        var weights = parse.GetValue(_weights) ?? DType.F32;
        OutputPaths.RequireWritableFile(outputPath, "--output");
        string? profileJson = parse.GetValue(_profileJson);
        if (profileJson is not null) OutputPaths.RequireWritableFile(profileJson, "--profile-json");
        var profiler = parse.GetValue(_profile) || profileJson is not null ? new OpProfiler() : null;
        var memory = profiler is not null ? new MemoryProbe() : null;
        using var device = DeviceFactory.Create(kind);
        var activations = Engine.Generation.ActivationPrecision.Resolve(device, parse.GetValue(_precision));
        CliOptions.ApplyCompute(device, parse.GetValue(_compute) ?? ComputeMode.F32, Name);
        bool hidden = parse.GetValue(_hiddenStates);
        List<SafetensorsWriter.Entry> results;
        if (TextEncoderForward.IsTextEncoderFolder(model))
        {
            if (profiler is not null) throw new UsageException($"{Name}: --profile applies to denoiser, VAE and ControlNet folders; {model} is a text encoder.");
            results = TextEncoderForward.Execute(device, model, inputs, weights, hidden, activations);
        }
        else if (hidden) throw new UsageException($"{Name}: --hidden-states applies to text encoder folders; {model} is not one.");
        else results = Execute(device, model, inputs, weights, activations, profiler, memory);
        var dir = Path.GetDirectoryName(Path.GetFullPath(outputPath));
        if (dir is not null && !Directory.Exists(dir)) throw new DirectoryNotFoundException($"{outputPath}: output folder {dir} does not exist.");
        SafetensorsWriter.Write(outputPath, results);
        output.WriteLine($"wrote {string.Join(", ", results.Select(r => $"{r.Name} {Tensor.ShapeString(r.Shape)}"))} to {outputPath} ({device.Name})");
        if (profiler is not null)
        {
            var profile = profiler.Snapshot();
            output.Write(profile.Format());
            if (memory is not null) output.Write(memory.Format(device));
            if (profileJson is not null)
            {
                ProfileReport.WriteJson(profileJson, profile, new Dictionary<string, string>
                {
                    ["command"] = Name, ["model"] = model, ["inputs"] = inputs, ["device"] = device.Name,
                    ["weights"] = weights.ToString().ToLowerInvariant(), ["compute"] = device.Compute.ToString().ToLowerInvariant(),
                    ["activations"] = activations.ToString().ToLowerInvariant(),
                });
                output.WriteLine($"wrote the op profile to {profileJson}");
            }
        }
        return ExitCodes.Success;
    }

    /// <summary>
    /// Loads the model onto <paramref name="device"/> (Linear/Conv2d weights in <paramref name="weights"/>, activations in
    /// <paramref name="activations"/>), runs it on the inputs and returns the named outputs (float32). A
    /// <paramref name="profiler"/> is attached to the device for the forward pass only (after the weights load);
    /// <paramref name="memory"/>, when given, notes the weights and resets the memory peaks after the load.
    /// </summary>
    public static List<SafetensorsWriter.Entry> Execute(Device device, string modelFolder, string inputsPath, DType weights = DType.F32, DType activations = DType.F32,
        OpProfiler? profiler = null, MemoryProbe? memory = null)
    {
        using var model = ModelLoader.Load(device, modelFolder, weights);
        memory?.AfterLoad(device);
        model.Activations = activations;
        device.Profiler = profiler;
        using var file = SafetensorsFile.Open(inputsPath);
        var owned = new List<Tensor>();
        var results = new List<SafetensorsWriter.Entry>();
        Tensor? Input(string name, Func<float[], string?>? validate = null)
        {
            if (!file.Contains(name)) return null;
            var values = file.ReadFloats(name);
            foreach (var v in values)
                if (!float.IsFinite(v)) throw new InvalidDataException($"{inputsPath}: tensor '{name}' holds a non-finite value ({v}).");
            if (validate?.Invoke(values) is { } problem) throw new InvalidDataException($"{inputsPath}: tensor '{name}' {problem}.");
            var shape = file.Info(name).Shape.ToArray();
            var t = device.Upload(values, shape);
            owned.Add(t);
            return t;
        }
        void Keep(string name, Tensor t)
        {
            using (t) results.Add(new SafetensorsWriter.Entry(name, t.ShapeArray(), t.ToArray()));
        }
        try
        {
            switch (model)
            {
                case DiffusionModel denoiser:
                {
                    var sample = Input("sample") ?? Input("hidden_states") ?? throw new InvalidDataException($"{inputsPath}: no input 'sample' (or 'hidden_states').");
                    var timestep = Input("timestep") ?? throw new InvalidDataException($"{inputsPath}: no input 'timestep'.");
                    Tensor? labels = null;
                    if (denoiser.ClassCount is int rows)
                        labels = Input("class_labels", v => v.All(x => x == MathF.Floor(x) && x >= 0 && x < rows) ? null : $"must hold integer labels in [0, {rows - 1}]")
                            ?? throw new InvalidDataException($"{inputsPath}: the model is class-conditional; input 'class_labels' is required.");
                    var context = denoiser.NeedsEncoderHiddenStates
                        ? Input("encoder_hidden_states") ?? throw new InvalidDataException($"{inputsPath}: the model needs input 'encoder_hidden_states'.")
                        : null;
                    var pooled = denoiser.NeedsPooledProjections
                        ? Input("pooled_projections") ?? throw new InvalidDataException($"{inputsPath}: the model needs input 'pooled_projections'.")
                        : null;
                    Keep("output", denoiser.Forward(sample, timestep, labels, context, pooled));
                    break;
                }
                case AutoencoderKL vae:
                {
                    var image = Input("image");
                    var latent = Input("latent");
                    if (image is null && latent is null) throw new InvalidDataException($"{inputsPath}: AutoencoderKL needs input 'image' (to encode) or 'latent' (to decode).");
                    if (image is not null)
                    {
                        var dist = vae.Encode(image);
                        Keep("enc_mean", dist.Mean);
                        Keep("enc_logvar", dist.LogVar);
                        Keep("enc_std", dist.Std);
                    }
                    if (latent is not null) Keep("decoded", vae.Decode(latent));
                    break;
                }
                case ControlNetModel controlnet:
                    ControlNetForward.Run(controlnet, inputsPath, name => Input(name), Keep);
                    break;
                default:
                    throw new InvalidOperationException($"{modelFolder}: '{model.Config.ClassName}' has no forward command.");
            }
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{inputsPath}: {e.Message}", e);
        }
        finally
        {
            device.Profiler = null;
            foreach (var t in owned) t.Dispose();
        }
        return results;
    }
}
