using Engine.Core;

namespace Engine.Sampling.Plugins;

/// <summary>
/// Base of the plug-ins that wrap the model side of any scheduler: each receives the model input and
/// call description, asks the inner denoiser (or skips it), and returns an output of the same
/// prediction type. Scratch tensors are allocated on first use and reused; the inner denoiser stays
/// owned by the caller.
/// </summary>
public abstract class DenoiserPlugin : IDenoiser, IDisposable
{
    private readonly Tensor?[] _buffers = new Tensor?[8];

    /// <summary>Wraps <paramref name="inner"/> for runs of <paramref name="scheduler"/>.</summary>
    protected DenoiserPlugin(IDenoiser inner, Scheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(scheduler);
        Inner = inner;
        PredictionType = scheduler.Config.PredictionType;
        Calls = scheduler.CallCount;
        Timesteps = scheduler.Timesteps;
    }

    /// <summary>The wrapped denoiser.</summary>
    public IDenoiser Inner { get; }

    /// <summary>The prediction type of the model outputs.</summary>
    public string PredictionType { get; }

    /// <summary>Model calls in a run.</summary>
    public int Calls { get; }

    /// <summary>The scheduler's timestep of every call.</summary>
    protected double[] Timesteps { get; }

    /// <summary>Trajectory time of call i: t = 1 - i / calls (1 at the first call).</summary>
    protected double TrajectoryTime(int i) => 1 - (double)i / Calls;

    /// <inheritdoc />
    public abstract Tensor Predict(Tensor modelInput, in DenoiserCall call);

    /// <summary>A reusable buffer shaped like <paramref name="like"/> (allocated once per slot).</summary>
    protected Tensor Buffer(int slot, Tensor like)
    {
        var t = _buffers[slot];
        if (t is null || t.Length != like.Length || !ReferenceEquals(t.Device, like.Device))
        {
            t?.Dispose();
            _buffers[slot] = t = like.Device.Allocate(like.ShapeArray());
        }
        return t.Reshape(like.ShapeArray());
    }

    /// <summary>Throws when a host coefficient is not finite (for example a conversion at a pure-noise input).</summary>
    protected void CheckFinite(double value, in DenoiserCall call, string what)
    {
        if (!double.IsFinite(value))
            throw new InvalidOperationException($"{GetType().Name}: {what} is undefined at call {call.Index} (timestep {call.Timestep}, alpha {call.InputAlpha}, sigma {call.InputSigma}).");
    }

    /// <summary>Releases the buffers.</summary>
    public virtual void Dispose()
    {
        for (int i = 0; i < _buffers.Length; i++) { _buffers[i]?.Dispose(); _buffers[i] = null; }
        GC.SuppressFinalize(this);
    }
}
