using Engine.Core;
using Engine.Models.Networks;
using Engine.Sampling;

namespace Engine.Generation;

/// <summary>
/// The denoiser a sampler sees for a class-conditional (or unconditional) network: with guidance,
/// one batched forward on [cond; null] and eps = eps_null + w (eps_cond - eps_null); for
/// learned-sigma networks only the prediction channels are kept. All buffers are allocated once per
/// batch and reused every step; nothing leaves the device.
/// </summary>
internal sealed class ClassifierFreeDenoiser : IDenoiser, IDisposable
{
    private readonly DiffusionModel _network;
    private readonly Device _device;
    private readonly int _n;
    private readonly float _scale;
    private readonly bool _guided;
    private readonly Tensor _timestep;
    private readonly Tensor? _labels;
    private readonly Tensor? _doubled;
    private readonly Tensor? _channels;
    private readonly Tensor _output;

    public ClassifierFreeDenoiser(DiffusionModel network, Device device, int[] sampleShape, int[]? labels, int nullClass, float scale)
    {
        _network = network;
        _device = device;
        _n = sampleShape[0];
        _scale = scale;
        _guided = labels is not null && scale != 1f;
        _timestep = device.Allocate(1);
        if (labels is not null)
        {
            var rows = _guided ? labels.Select(l => (float)l).Concat(Enumerable.Repeat((float)nullClass, _n)).ToArray() : labels.Select(l => (float)l).ToArray();
            _labels = device.Upload(rows, rows.Length);
        }
        int batchRows = _guided ? 2 * _n : _n;
        if (_guided) _doubled = device.Allocate([batchRows, .. sampleShape[1..]]);
        if (network.OutChannels != sampleShape[1]) _channels = device.Allocate([batchRows, .. sampleShape[1..]]);
        _output = device.Allocate(sampleShape);
        ModelCalls = 0;
    }

    /// <summary>Batched network evaluations so far.</summary>
    public int ModelCalls { get; private set; }

    public Tensor Predict(Tensor modelInput, in DenoiserCall call)
    {
        _device.Fill(_timestep, (float)call.Timestep);
        Tensor input = modelInput;
        if (_guided)
        {
            _device.Copy(modelInput, _doubled!.Slice(0, _n));
            _device.Copy(modelInput, _doubled.Slice(_n, _n));
            input = _doubled;
        }
        using var raw = _network.Forward(input, _timestep, _labels);
        ModelCalls++;
        var prediction = raw;
        if (_channels is not null)
        {
            // Learned-sigma networks return [prediction; variance] channels: keep the prediction.
            _device.SliceChannels(raw, 0, _channels);
            prediction = _channels;
        }
        if (_guided)
            _device.LinearCombination(_output, [prediction.Slice(_n, _n), prediction.Slice(0, _n)], [1f - _scale, _scale]);
        else
            _device.Copy(prediction, _output);
        return _output;
    }

    public void Dispose()
    {
        _timestep.Dispose();
        _labels?.Dispose();
        _doubled?.Dispose();
        _channels?.Dispose();
        _output.Dispose();
    }
}
