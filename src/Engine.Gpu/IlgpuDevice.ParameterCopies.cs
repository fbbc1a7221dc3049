using System.Runtime.CompilerServices;
using Engine.Core;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    private readonly ParameterCopies _parameterCopies = new();

    /// <summary>The copy of <paramref name="parameter"/> in <paramref name="dtype"/> the tensor-core routes keep, if any (tests).</summary>
    internal Tensor? ParameterCopy(Tensor parameter, DType dtype) => _parameterCopies.Find(parameter, dtype);

    /// <summary>
    /// Model parameters in the storage a kernel reads: a convolution weight in the activations' 16-bit type,
    /// 16-byte aligned, for the tensor-core convolution; a half bias as float32 for the tensor-core epilogues. A
    /// parameter that already is so is used as it is; any other is converted once on first use and kept while the
    /// parameter tensor lives (models never write a bound parameter in place; LoRA binds new tensors), so the
    /// sampling loop converts nothing. Copies whose parameter was collected are freed at the next conversion, the
    /// rest with the device.
    /// </summary>
    private sealed class ParameterCopies : IDisposable
    {
        private readonly Dictionary<DType, ConditionalWeakTable<Tensor, Tensor>> _tables = [];
        private readonly List<(WeakReference<Tensor> Parameter, Tensor Copy)> _copies = [];

        /// <summary>The copy of <paramref name="parameter"/> in <paramref name="dtype"/> kept so far, if any (tests).</summary>
        public Tensor? Find(Tensor parameter, DType dtype)
        {
            lock (_copies) return _tables.TryGetValue(dtype, out var table) && table.TryGetValue(parameter, out var copy) ? copy : null;
        }

        /// <summary><paramref name="parameter"/> in <paramref name="dtype"/>; half copies start on a 16-byte boundary.</summary>
        public Tensor For(IlgpuDevice device, Tensor parameter, DType dtype)
        {
            if (parameter.DType == dtype && (dtype == DType.F32 || parameter.Offset % 8 == 0)) return parameter;
            lock (_copies)
            {
                if (!_tables.TryGetValue(dtype, out var table)) _tables[dtype] = table = new();
                if (table.TryGetValue(parameter, out var copy)) return copy;
                Sweep();
                copy = device.Convert(parameter, dtype);
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
