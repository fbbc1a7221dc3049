using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>ResnetBlock2D</c> (pre-norm, SiLU): norm1, conv1, optional time-embedding projection
/// (added per channel for <c>default</c>, scale/shift after norm2 for <c>scale_shift</c>), norm2, conv2,
/// a 1x1 <c>conv_shortcut</c> when the channel count changes, and division by <c>output_scale_factor</c>.
/// </summary>
public sealed class ResnetBlock2D
{
    private readonly GroupNorm _norm1, _norm2;
    private readonly Conv2d _conv1, _conv2;
    private readonly Conv2d? _shortcut;
    private readonly Linear? _timeProj;
    private readonly bool _scaleShift;
    private readonly float _outputScale;

    /// <summary>Declares the parameters in <paramref name="scope"/>; <paramref name="tembChannels"/> null means no time embedding.</summary>
    public ResnetBlock2D(ParameterScope scope, int inChannels, int outChannels, int? tembChannels, int groups, float eps,
        string timeEmbeddingNorm = "default", float outputScaleFactor = 1f)
    {
        if (timeEmbeddingNorm is not ("default" or "scale_shift"))
            throw new ArgumentException($"ResnetBlock2D '{scope.Path}': time_embedding_norm '{timeEmbeddingNorm}' is not supported; supported: default, scale_shift.");
        _scaleShift = timeEmbeddingNorm == "scale_shift";
        _outputScale = outputScaleFactor;
        InChannels = inChannels;
        OutChannels = outChannels;
        _norm1 = new GroupNorm(scope, "norm1", groups, inChannels, eps);
        _conv1 = new Conv2d(scope, "conv1", inChannels, outChannels, 3, 1, 1);
        if (tembChannels is int t) _timeProj = new Linear(scope, "time_emb_proj", t, _scaleShift ? 2 * outChannels : outChannels);
        _norm2 = new GroupNorm(scope, "norm2", groups, outChannels, eps);
        _conv2 = new Conv2d(scope, "conv2", outChannels, outChannels, 3, 1, 1);
        if (inChannels != outChannels) _shortcut = new Conv2d(scope, "conv_shortcut", inChannels, outChannels, 1);
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Applies the block to x [B, in, H, W] with temb [B, temb] (or null), returning a new tensor.</summary>
    public Tensor Forward(Tensor x, Tensor? temb)
    {
        var device = x.Device;
        int b = x.Dim(0), c = OutChannels;
        Tensor h;
        using (var n1 = _norm1.Forward(x, silu: true)) h = _conv1.Forward(n1);
        try
        {
            Tensor? scale = null, shift = null;
            if (_timeProj is not null && temb is not null)
            {
                using var act = device.Allocate(temb.ShapeArray());
                device.Activate(temb, act, Activation.SiLU);
                if (_scaleShift)
                {
                    scale = _timeProj.ForwardChunk(act, 0, c);
                    shift = _timeProj.ForwardChunk(act, c, c);
                }
                else
                {
                    using var proj = _timeProj.Forward(act);
                    device.Add(h, proj.Reshape(b, c, 1, 1), h);
                }
            }
            Tensor h2;
            if (scale is not null && shift is not null)
            {
                using var n2 = _norm2.Forward(h);
                device.Affine(scale, scale, 1f, 1f);
                device.Mul(n2, scale.Reshape(b, c, 1, 1), n2);
                device.Add(n2, shift.Reshape(b, c, 1, 1), n2);
                device.Activate(n2, n2, Activation.SiLU);
                scale.Dispose(); shift.Dispose();
                h2 = _conv2.Forward(n2);
            }
            else
            {
                using var n2 = _norm2.Forward(h, silu: true);
                h2 = _conv2.Forward(n2);
            }
            if (_shortcut is not null)
            {
                using var s = _shortcut.Forward(x);
                device.Add(h2, s, h2);
            }
            else device.Add(h2, x, h2);
            if (_outputScale != 1f) device.Affine(h2, h2, 1f / _outputScale, 0f);
            return h2;
        }
        finally { h.Dispose(); }
    }
}
