using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Gpu;
using Engine.Imaging;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine generate</c>'s output side: runs the planned requests, writing each image with its sidecar as its batch
/// ends, then the grid and the <c>--output-tensor</c> file; reads <c>--init-noise</c> files; regenerates one image from its sidecar.
/// </summary>
public sealed partial class GenerateCommand
{
    private int Execute(Generator generator, LoadedDenoiser model, LoadedDenoiser? teacher, List<PlannedRequest> requests, string outDir, string? outputTensor, int? gridColumns, CommandContext context, bool writeGrid = true)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int totalImages = requests.Sum(r => r.Images.Count);
        var gridImages = new List<PixelImage>();
        var samples = new List<float[]>();
        var decoded = new List<float[]>();
        int[]? sampleShape = null, imageShape = null;
        int written = 0;
        try
        {
            ProgressDisplay.Run(context, Name, requests.Sum(r => r.Request.Count), requests[0].Request.Steps, meter =>
            {
                foreach (var planned in requests)
                {
                    context.Cancellation.ThrowIfCancellationRequested();
                    // Each image is on disk as soon as its batch finishes; the grid gathers them as they come.
                    var (result, _) = planned.Run(generator, model, teacher, meter, outDir, context.Cancellation, image =>
                    {
                        written++;
                        if (gridImages.Count < MaxGridImages) gridImages.Add(image);
                    });
                    if (outputTensor is not null)
                    {
                        samples.Add(result.Samples);
                        sampleShape = [result.Channels, result.Height, result.Width];
                        if (result.Image is { } image)
                        {
                            decoded.Add(image);
                            imageShape = [image.Length / (result.Count * result.ImageHeight * result.ImageWidth), result.ImageHeight, result.ImageWidth];
                        }
                    }
                }
                return 0;
            });
        }
        catch (Exception e) when (e is OperationCanceledException or NonFiniteException)
        {
            // Stopped or failed part way: the finished images are on disk, whole (the grid is made only by a run that ends).
            if (written > 0) context.Error.WriteLine($"engine {Name}: {written} finished image{(written == 1 ? " is" : "s are")} in {Path.GetFullPath(outDir)}.");
            throw;
        }
        if (writeGrid && gridImages.Count > 0) WriteGrid(outDir, gridImages, gridColumns);
        if (outputTensor is not null && sampleShape is not null)
        {
            var all = samples.SelectMany(s => s).ToArray();
            var entries = new List<SafetensorsWriter.Entry> { new("samples", [all.Length / (sampleShape[0] * sampleShape[1] * sampleShape[2]), .. sampleShape], all) };
            if (imageShape is not null)
            {
                var pixels = decoded.SelectMany(s => s).ToArray();
                entries.Add(new("image", [pixels.Length / (imageShape[0] * imageShape[1] * imageShape[2]), .. imageShape], pixels));
            }
            SafetensorsWriter.Write(outputTensor, entries,
                new Dictionary<string, string> { ["engine_version"] = EngineVersion.Text, ["model"] = requests[0].Request.Model ?? model.Path });
        }
        context.Output.WriteLine($"wrote {written} image{(written == 1 ? " with its sidecar" : "s with sidecars")}{(writeGrid && gridImages.Count > 0 ? $" and {GridFileName}" : "")} to {Path.GetFullPath(outDir)}" +
            $"{(outputTensor is null ? "" : $", samples to {outputTensor}")} in {clock.Elapsed.TotalSeconds:F1} s ({generator.Device.Name})");
        return ExitCodes.Success;
    }

    private static void WriteGrid(string outDir, List<PixelImage> images, int? columns) =>
        PngCodec.Write(Path.Combine(outDir, GridFileName), ImageGrid.Create(images, columns: columns is { } c ? Math.Min(c, images.Count) : null));

    private int FromSidecar(string path, string outDir, string? device, CommandContext context)
    {
        var sidecar = ImageSidecar.Read(path);
        if (!Directory.Exists(sidecar.Model) && !File.Exists(sidecar.Model)) throw new DirectoryNotFoundException($"{path}: model folder or file '{sidecar.Model}' does not exist.");
        var request = sidecar.ToRequest(path);
        request = request with { Device = device ?? request.Device };
        try { request = SamplingSettings.Validated(request, Name); }
        // Validated's usage errors start with "generate: ", which the failure line prints once already.
        catch (UsageException e) { throw new InvalidDataException($"{path}: {e.Message[(Name.Length + 2)..]}", e); }
        if (request.InitialNoiseFile is { } noisePath)
        {
            var (values, shape, steps) = ReadInitNoise(noisePath);
            int length = shape[1] * shape[2] * shape[3];
            if (shape[0] < request.Count) throw new InvalidDataException($"{noisePath}: x_T holds {shape[0]} images; the sidecar needs {request.Count}.");
            request = request with { InitialNoise = values[..(request.Count * length)], StepNoise = steps is null ? null : FirstRows(steps, shape[0] * length, request.Count * length) };
            if (request.InitImage is { } image && ImageToImageOptions.ReadEncodeNoise(noisePath, image.Count > 1 ? shape[0] : 1) is { } draw)
                request = request with { InitImage = image with { EncodeNoise = draw[..(image.Count * draw.Length / (image.Count > 1 ? shape[0] : 1))] } };
        }
        using var dev = DeviceFactory.Create(request.Device);
        using var generator = new Generator(dev) { WeightStorage = request.WeightStorage };
        using var model = generator.LoadModel(sidecar.Model, request.Checkpoint);
        if (request.Teacher is { } tp && !Directory.Exists(tp)) throw new DirectoryNotFoundException($"{path}: teacher folder '{tp}' does not exist.");
        using var teacher = request.Teacher is null ? null : generator.LoadModel(request.Teacher);
        var planned = new PlannedRequest(request, [new PlannedImage(sidecar.SampleIndex, sidecar.File, sidecar.Class)], sidecar.RequestClasses);
        return Execute(generator, model, teacher, [planned], outDir, null, null, context, writeGrid: false);
    }

    /// <summary>x_T [N, C, H, W] and, when the file has it, step_noise [K, N, C, H, W] (the sampler's recorded draws).</summary>
    private static (float[] Values, int[] Shape, float[]? StepNoise) ReadInitNoise(string path)
    {
        using var file = SafetensorsFile.Open(path);
        if (!file.Contains("x_T")) throw new InvalidDataException($"{path}: no tensor 'x_T' (has {string.Join(", ", file.Tensors.Keys)}).");
        var shape = file.Info("x_T").Shape;
        if (shape.Length != 4 || shape.Any(d => d < 1)) throw new InvalidDataException($"{path}: x_T must be [N, C, H, W]; got {Tensor.ShapeString(shape)}.");
        var values = file.ReadFloats("x_T");
        if (values.Any(v => !float.IsFinite(v))) throw new InvalidDataException($"{path}: x_T holds a non-finite value.");
        float[]? steps = null;
        if (file.Contains("step_noise"))
        {
            var s = file.Info("step_noise").Shape;
            if (s.Length != 5 || !s.AsSpan(1).SequenceEqual(shape)) throw new InvalidDataException($"{path}: step_noise must be [K, {string.Join(", ", shape)}] (K draws of x_T's shape); got {Tensor.ShapeString(s)}.");
            steps = file.ReadFloats("step_noise");
            if (steps.Any(v => !float.IsFinite(v))) throw new InvalidDataException($"{path}: step_noise holds a non-finite value.");
        }
        return (values, shape.ToArray(), steps);
    }

    /// <summary>The first <paramref name="keep"/> values of every draw of <paramref name="drawLength"/> values.</summary>
    private static float[] FirstRows(float[] draws, int drawLength, int keep) =>
        Enumerable.Range(0, draws.Length / drawLength).SelectMany(k => draws.AsSpan(k * drawLength, keep).ToArray()).ToArray();
}
