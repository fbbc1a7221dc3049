using System.Runtime.CompilerServices;
using Engine.Core;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    private readonly ParameterCopies _parameterCopies = new();

    /// <summary>The copy of <paramref name="parameter"/> in <paramref name="dtype"/> (reordered tap-major when <paramref name="tapMajor"/>) the tensor-core routes keep, if any (tests).</summary>
    internal Tensor? ParameterCopy(Tensor parameter, DType dtype, bool tapMajor = false) => _parameterCopies.Find(parameter, dtype, tapMajor);

    /// <summary>
    /// A convolution weight [Cout, Cin, Kh, Kw] as a new [Cout, Kh, Kw, Cin] tensor in <paramref name="dtype"/>: K ordered
    /// (ky, kx, ci), the tap-major form of <see cref="Engine.Kernels.TcConvParams.TapMajor"/>. One transpose of [Cout, Cin, taps].
    /// </summary>
    private Tensor TapMajorCopy(Tensor weight, DType dtype)
    {
        int cout = weight.Dim(0), cin = weight.Dim(1), kh = weight.Dim(2), kw = weight.Dim(3);
        var source = weight.DType == dtype ? weight : Convert(weight, dtype);
        try
        {
            var result = Allocate(dtype, cout, kh, kw, cin);
            try { Transpose(source.Reshape(cout, cin, kh * kw), result.Reshape(cout, kh * kw, cin)); }
            catch { result.Dispose(); throw; }
            return result;
        }
        finally
        {
            if (!ReferenceEquals(source, weight)) source.Dispose();
        }
    }

    /// <summary>
    /// Model parameters in the storage and layout a kernel reads: a convolution weight in the activations' 16-bit type,
    /// 16-byte aligned, and reordered tap-major where the tensor-core convolution gathers by tap; a half bias as
    /// float32 for the tensor-core epilogues. A
    /// parameter that already is so is used as it is; any other is converted once on first use and kept while the
    /// parameter tensor lives (models never write a bound parameter in place; LoRA binds new tensors), so the
    /// sampling loop converts nothing. Copies whose parameter was collected are freed at the next conversion, the
    /// rest with the device.
    /// </summary>
    private sealed class ParameterCopies : IDisposable
    {
        private readonly Dictionary<(DType, bool TapMajor), ConditionalWeakTable<Tensor, Tensor>> _tables = [];
        private readonly List<(WeakReference<Tensor> Parameter, Tensor Copy)> _copies = [];

        /// <summary>The copy of <paramref name="parameter"/> in <paramref name="dtype"/> (and tap-major order) kept so far, if any (tests).</summary>
        public Tensor? Find(Tensor parameter, DType dtype, bool tapMajor)
        {
            lock (_copies) return _tables.TryGetValue((dtype, tapMajor), out var table) && table.TryGetValue(parameter, out var copy) ? copy : null;
        }

        /// <summary>
        /// <paramref name="parameter"/> in <paramref name="dtype"/>, and for a convolution weight with <paramref name="tapMajor"/>
        /// reordered to [Cout, Kh, Kw, Cin] (<see cref="TapMajorCopy"/>); half copies start on a 16-byte boundary.
        /// </summary>
        public Tensor For(IlgpuDevice device, Tensor parameter, DType dtype, bool tapMajor = false)
        {
            if (!tapMajor && parameter.DType == dtype && (dtype == DType.F32 || parameter.Offset % 8 == 0)) return parameter;
            lock (_copies)
            {
                if (!_tables.TryGetValue((dtype, tapMajor), out var table)) _tables[(dtype, tapMajor)] = table = new();
                if (table.TryGetValue(parameter, out var copy)) return copy;
                Sweep();
                copy = tapMajor ? device.TapMajorCopy(parameter, dtype) : device.Convert(parameter, dtype);
                table.Add(parameter, copy);
                _copies.Add((new WeakReference<Tensor>(parameter), copy));
                return copy;
            }
        }

        private void Sweep()
        {
            for (int i = _copies.Count - 1; i >= 0; i--)
                if (!_copies[i].Parameter.TryGetTarget(out _))
                {
                    _copies[i].Copy.Dispose();
                    _copies.RemoveAt(i);
                }
        }

        public void Dispose()
        {
            lock (_copies)
            {
                foreach (var (_, copy) in _copies) copy.Dispose();
                _copies.Clear();
            }
        }
    }
}
