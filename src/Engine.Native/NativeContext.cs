using Engine.Core;
using Engine.Generation;

namespace Engine.Native;

/// <summary>
/// State behind one <c>engine_context</c>: a generator on its own device, the models it loaded,
/// the progress callback and the cancellation of the run in progress. Generation and model
/// changes are serialised by <see cref="_runLock"/>; <see cref="Cancel"/> only takes the small
/// <see cref="_cancelLock"/>, so it works from any thread, including from inside the callback.
/// </summary>
internal sealed unsafe class NativeContext : IDisposable
{
    private readonly object _runLock = new();
    private readonly object _cancelLock = new();
    private readonly HashSet<NativeModel> _models = new();
    private CancellationTokenSource? _running;
    // True while Generate runs. Only the generating thread can see it set inside _runLock (the
    // lock is reentrant; other threads wait), i.e. a call made from the progress callback.
    private bool _generating;
    private delegate* unmanaged<int, int, int, void*, int> _progress;
    private void* _progressUserData;
    private delegate* unmanaged<int, float*, nuint, void*, int> _image;
    private void* _imageUserData;

    private readonly Device _device;

    /// <summary>Creates a context that owns <paramref name="device"/> and a generator on it that loads weights as <paramref name="weightStorage"/>.</summary>
    public NativeContext(Device device, DType weightStorage)
    {
        _device = device;
        Generator = new Generator(device) { WeightStorage = weightStorage };
    }

    public Generator Generator { get; }

    /// <summary>Loads a model folder; the model belongs to this context until released.</summary>
    public NativeModel LoadModel(string path)
    {
        lock (_runLock)
        {
            NotFromCallback("engine_load_model");
            var model = new NativeModel(this, Generator.LoadModel(path));
            _models.Add(model);
            return model;
        }
    }

    /// <summary>Releases a model of this context.</summary>
    public void ReleaseModel(NativeModel model)
    {
        lock (_runLock)
        {
            NotFromCallback("engine_release_model");
            if (!_models.Remove(model)) throw new ArgumentException("model does not belong to this context or was already released");
            model.Model.Dispose();
        }
    }

    /// <summary>Number of models still loaded (a context is released only when this is 0).</summary>
    public int ModelCount { get { lock (_runLock) return _models.Count; } }

    public void SetProgress(delegate* unmanaged<int, int, int, void*, int> callback, void* userData)
    {
        lock (_runLock)
        {
            _progress = callback;
            _progressUserData = userData;
        }
    }

    public void SetImageCallback(delegate* unmanaged<int, float*, nuint, void*, int> callback, void* userData)
    {
        lock (_runLock)
        {
            _image = callback;
            _imageUserData = userData;
        }
    }

    /// <summary>Cancels the run in progress, if any.</summary>
    public void Cancel()
    {
        lock (_cancelLock) _running?.Cancel();
    }

    /// <summary>Output shape of a request on a model of this context.</summary>
    public (int Count, int Channels, int Height, int Width) OutputShape(NativeModel model, GenerationRequest request)
    {
        lock (_runLock)
        {
            NotFromCallback("engine_output_size");
            Own(model);
            return ImageShape(model, request);
        }
    }

    /// <summary>The shape engine_generate writes: the samples, or for a pipeline folder the decoded RGB image.</summary>
    private (int Count, int Channels, int Height, int Width) ImageShape(NativeModel model, GenerationRequest request)
    {
        NativePrecision.Check(_device, request); // UNSUPPORTED rather than a bad argument, before any work
        var (count, channels, height, width) = Generator.OutputShape(model.Model, request);
        int scale = model.Model.PixelScale;
        return model.Model.Pipeline is null ? (count, channels, height, width) : (count, 3, height * scale, width * scale);
    }

    /// <summary>
    /// Runs <paramref name="request"/> and copies the samples into <paramref name="output"/>.
    /// The buffer length is checked against the request's shape before any work is done.
    /// </summary>
    public NativeStatus Generate(NativeModel model, GenerationRequest request, Span<float> output, out string? error)
    {
        lock (_runLock)
        {
            NotFromCallback("engine_generate");
            Own(model);
            var (count, channels, height, width) = ImageShape(model, request);
            long needed = (long)count * channels * height * width;
            if (output.Length < needed)
            {
                error = $"output buffer holds {output.Length} floats but the request needs {needed} " +
                        $"({count} x {channels} x {height} x {width}, NCHW); size it with engine_output_size";
                return NativeStatus.BufferTooSmall;
            }

            using var cancellation = new CancellationTokenSource();
            lock (_cancelLock) _running = cancellation;
            _generating = true;
            try
            {
                var callback = _progress;
                void* userData = _progressUserData;
                Func<GenerationProgress, bool>? progress = callback == null
                    ? null
                    : p =>
                    {
                        // Nonzero from the host means "stop", exactly like engine_cancel.
                        if (callback(p.Step, p.TotalSteps, p.ImageIndex, userData) != 0) cancellation.Cancel();
                        return !cancellation.IsCancellationRequested;
                    };
                var result = Generator.Generate(model.Model, request, null, progress, cancellation.Token, ImageReporter(cancellation));
                // A stop requested at the last step still counts: the caller asked to stop.
                cancellation.Token.ThrowIfCancellationRequested();
                if (result.Image is { } image)
                {
                    // A pipeline's decoded image is in [0, 1]; the C interface speaks [-1, 1] for every model.
                    var pixels = output[..(int)needed];
                    System.Numerics.Tensors.TensorPrimitives.Multiply(image.AsSpan(0, (int)needed), 2f, pixels);
                    System.Numerics.Tensors.TensorPrimitives.Add(pixels, -1f, pixels);
                    System.Numerics.Tensors.TensorPrimitives.Clamp(pixels, -1f, 1f, pixels);
                }
                else
                {
                    // Images, not raw sampler states: clamp to [-1, 1] as the image writers do.
                    System.Numerics.Tensors.TensorPrimitives.Clamp(result.Samples.AsSpan(0, (int)needed), -1f, 1f, output);
                }
                error = null;
                return NativeStatus.Ok;
            }
            finally
            {
                _generating = false;
                lock (_cancelLock) _running = null;
            }
        }
    }

    /// <summary>Hands each finite image of a finished batch to the finished-image callback, clamped as the output buffer is.</summary>
    private BatchFinished? ImageReporter(CancellationTokenSource cancellation)
    {
        var callback = _image;
        void* userData = _imageUserData;
        if (callback == null) return null;
        return (in GeneratedBatch batch) =>
        {
            int length = batch.Samples.Length / batch.Count;
            var pixels = new float[length];
            for (int k = 0; k < batch.Count; k++)
            {
                if (!batch.Finite[k]) continue;
                System.Numerics.Tensors.TensorPrimitives.Clamp(batch.Samples.Slice(k * length, length), -1f, 1f, pixels);
                int stop;
                fixed (float* p = pixels) stop = callback(batch.Start + k, p, (nuint)length, userData);
                // A host that says stop hears of no more images.
                if (stop != 0)
                {
                    cancellation.Cancel();
                    return;
                }
            }
        };
    }

    private void NotFromCallback(string function)
    {
        if (_generating)
            throw new ArgumentException($"{function} cannot be called on a context from its own progress callback " +
                                        "(only engine_cancel can); use another context");
    }

    private void Own(NativeModel model)
    {
        if (!ReferenceEquals(model.Context, this)) throw new ArgumentException("model was loaded by another context");
        if (!_models.Contains(model)) throw new ArgumentException("model was already released");
    }

    /// <summary>Releases the generator and the device (models must have been released).</summary>
    public void Dispose()
    {
        Generator.Dispose();
        _device.Dispose();
    }
}

/// <summary>State behind one <c>engine_model</c>.</summary>
internal sealed class NativeModel(NativeContext context, LoadedDenoiser model)
{
    public NativeContext Context { get; } = context;
    public LoadedDenoiser Model { get; } = model;
}
