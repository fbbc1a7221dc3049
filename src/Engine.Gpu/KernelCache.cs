using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Gpu;

/// <summary>
/// The compiled kernels of one accelerator. Each launcher is loaded (compiled) the first time it is
/// used and reused afterwards, so no op ever compiles per call.
/// </summary>
internal sealed partial class KernelCache(Accelerator accelerator)
{
    private readonly Accelerator _acc = accelerator;

    private Lazy<T> Auto<T>(Func<Accelerator, T> load) where T : Delegate => new(() => load(_acc), LazyThreadSafetyMode.ExecutionAndPublication);

    // Generic kernels per instantiation: (name, type arguments, variant), e.g. GEMM per storage of activations, weights and
    // output and register block, the any-storage element-wise kernels, the tensor-core kernels per block tile and element.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, Type, Type), Lazy<Delegate>> _products = new();

    /// <summary>The kernel <paramref name="name"/> for type arguments <paramref name="key"/> (and <paramref name="variant"/>), loaded on first use.</summary>
    public T Product<T>(string name, Type key, Func<Accelerator, T> load, Type? variant = null) where T : Delegate =>
        (T)_products.GetOrAdd((name, key, variant ?? typeof(void)), _ => new Lazy<Delegate>(() => load(_acc), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    /// <summary>The GEMM kernel for storages <typeparamref name="TA"/> (activations), <typeparamref name="TB"/> (weights), <typeparamref name="TC"/> (output) and register block <typeparamref name="TAcc"/>.</summary>
    public Action<KernelConfig, TA, TB, ArrayView<float>, TC, GemmParams> Gemm<TA, TB, TC, TAcc>()
        where TA : struct, IWeightView where TB : struct, IWeightView where TC : struct, IOutputView where TAcc : struct, IMicroTile =>
        Product("gemm", typeof((TA, TB, TC)), a => a.LoadStreamKernel<TA, TB, ArrayView<float>, TC, GemmParams>(GemmKernels.Gemm<TA, TB, TC, TAcc>), typeof(TAcc));

    /// <summary>The few-rows GEMM (<see cref="GemmSmallRowsKernels"/>) for storages <typeparamref name="TA"/>, <typeparamref name="TB"/> and <typeparamref name="TC"/>.</summary>
    public Action<KernelConfig, TA, TB, ArrayView<float>, TC, GemmParams> GemmSmallRows<TA, TB, TC>()
        where TA : struct, IWeightView where TB : struct, IWeightView where TC : struct, IOutputView =>
        Product("gemm-rows", typeof((TA, TB, TC)), a => a.LoadStreamKernel<TA, TB, ArrayView<float>, TC, GemmParams>(GemmSmallRowsKernels.SmallRows<TA, TB, TC>));

    /// <summary>The convolution kernel for storages <typeparamref name="TX"/> (input), <typeparamref name="TW"/> (weights), <typeparamref name="TO"/> (output) and register block <typeparamref name="TAcc"/>.</summary>
    public Action<KernelConfig, TX, TW, ArrayView<float>, TO, ConvParams> Conv2d<TX, TW, TO, TAcc>()
        where TX : struct, IWeightView where TW : struct, IWeightView where TO : struct, IOutputView where TAcc : struct, IMicroTile =>
        Product("conv", typeof((TX, TW, TO)), a => a.LoadStreamKernel<TX, TW, ArrayView<float>, TO, ConvParams>(ConvKernels.Conv2d<TX, TW, TO, TAcc>), typeof(TAcc));

    // Explicitly grouped norm and attention kernels (shared memory, barriers).
    private Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormParams>>? _groupNorm;
    private Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, GroupNormParams>>? _groupNormPartial;
    private Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormParams>>? _groupNormApply;
    private Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>>? _layerNorm;
    private Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, int>>? _softmax;
    private Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>>? _attention, _attentionTiled;

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormParams> GroupNorm =>
        (_groupNorm ??= Auto(a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormParams>(NormKernels.GroupNorm))).Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, GroupNormParams> GroupNormPartial =>
        (_groupNormPartial ??= Auto(a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, GroupNormParams>(NormKernels.GroupNormPartial))).Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormParams> GroupNormApply =>
        (_groupNormApply ??= Auto(a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormParams>(NormKernels.GroupNormApply))).Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int> LayerNorm =>
        (_layerNorm ??= Auto(a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>(NormKernels.LayerNorm))).Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> Softmax =>
        (_softmax ??= Auto(a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(NormKernels.Softmax))).Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams> Attention =>
        (_attention ??= Auto(a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(AttentionKernels.FlashAttention))).Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams> AttentionTiled =>
        (_attentionTiled ??= Auto(a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(AttentionTiledKernels.FlashAttentionTiled))).Value;

    // Implicitly grouped element-wise kernels.
    private Lazy<Action<Index1D, ArrayView<float>, float>>? _fill;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, Activation>>? _activate;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, int>>? _geglu;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BinaryOp>>? _binary;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BroadcastShape, BinaryOp>>? _binaryBroadcast;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, float, float>>? _affine;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, int, float>>? _markNonFinite;
    private Lazy<Action<Index1D, ArrayView<float>, LinearTerms>>? _linearCombination;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, TimestepParams>>? _timestep;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>>? _modulate;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>>? _gatedAdd;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>>? _upsample, _transpose;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>>? _concat;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>>? _sliceChannels;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, WindowParams>>? _copyWindow;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, PatchParams>>? _patchify;
    private Lazy<Action<Index1D, ArrayView<float>, ulong, int, int, int>>? _randomNormal;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<Half>>>? _f32ToF16;
    private Lazy<Action<Index1D, ArrayView<Half>, ArrayView<float>>>? _f16ToF32;
    private Lazy<Action<Index1D, ArrayView<float>, ArrayView<ushort>>>? _f32ToBf16;
    private Lazy<Action<Index1D, ArrayView<ushort>, ArrayView<float>>>? _bf16ToF32;
    private Lazy<Action<Index1D, ArrayView<Half>, ArrayView<ushort>>>? _f16ToBf16;
    private Lazy<Action<Index1D, ArrayView<ushort>, ArrayView<Half>>>? _bf16ToF16;

    public Action<Index1D, ArrayView<float>, float> Fill =>
        (_fill ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(PointwiseKernels.Fill))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, Activation> Activate =>
        (_activate ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Activation>(PointwiseKernels.Activate))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int> Geglu =>
        (_geglu ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(PointwiseKernels.Geglu))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BinaryOp> Binary =>
        (_binary ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BinaryOp>(PointwiseKernels.Binary))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BroadcastShape, BinaryOp> BinaryBroadcast =>
        (_binaryBroadcast ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BroadcastShape, BinaryOp>(PointwiseKernels.BinaryBroadcast))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int, float> MarkNonFinite =>
        (_markNonFinite ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, float>(PointwiseKernels.MarkNonFinite))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, float, float> Affine =>
        (_affine ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, float>(PointwiseKernels.Affine))).Value;
    public Action<Index1D, ArrayView<float>, LinearTerms> LinearCombination =>
        (_linearCombination ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, LinearTerms>(PointwiseKernels.LinearCombination))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, TimestepParams> TimestepEmbedding =>
        (_timestep ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, TimestepParams>(PointwiseKernels.TimestepEmbedding))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> Modulate =>
        (_modulate ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(PointwiseKernels.Modulate))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> GatedAdd =>
        (_gatedAdd ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(PointwiseKernels.GatedAdd))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int, int> UpsampleNearest2x =>
        (_upsample ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(LayoutKernels.UpsampleNearest2x))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int, int> Transpose =>
        (_transpose ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(LayoutKernels.Transpose))).Value;
    /// <summary><see cref="LayoutKernels.TransposeOf{T}"/> on 16-bit elements (f16 and bf16 tensors as their bits).</summary>
    public Action<Index1D, ArrayView<Half>, ArrayView<Half>, int, int> TransposeHalf =>
        Product("transpose", typeof(Half), a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<Half>, int, int>(LayoutKernels.TransposeOf<Half>));

    /// <summary><see cref="LayoutKernels.ConcatChannelsOf{T}"/> on 16-bit elements.</summary>
    public Action<Index1D, ArrayView<Half>, ArrayView<Half>, ArrayView<Half>, int, int> ConcatChannelsHalf =>
        Product("concat", typeof(Half), a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<Half>, ArrayView<Half>, int, int>(LayoutKernels.ConcatChannelsOf<Half>));

    /// <summary><see cref="PointwiseKernels.BinaryAny{TA, TB, TO}"/> for storages <typeparamref name="TA"/>, <typeparamref name="TB"/> and <typeparamref name="TO"/>.</summary>
    public Action<Index1D, TA, TB, TO, BinaryOp> BinaryAny<TA, TB, TO>()
        where TA : struct, IWeightView where TB : struct, IWeightView where TO : struct, IOutputView =>
        Product("binary", typeof((TA, TB, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TA, TB, TO, BinaryOp>(PointwiseKernels.BinaryAny<TA, TB, TO>));

    /// <summary><see cref="PointwiseKernels.BinaryBroadcastAny{TA, TB, TO}"/> for the given storages.</summary>
    public Action<Index1D, TA, TB, TO, BroadcastShape, BinaryOp> BinaryBroadcastAny<TA, TB, TO>()
        where TA : struct, IWeightView where TB : struct, IWeightView where TO : struct, IOutputView =>
        Product("binary-broadcast", typeof((TA, TB, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TA, TB, TO, BroadcastShape, BinaryOp>(PointwiseKernels.BinaryBroadcastAny<TA, TB, TO>));

    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> ConcatChannels =>
        (_concat ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(LayoutKernels.ConcatChannels))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> SliceChannels =>
        (_sliceChannels ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(LayoutKernels.SliceChannels))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, WindowParams> CopyWindow =>
        (_copyWindow ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, WindowParams>(LayoutKernels.CopyWindow))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, PatchParams> Patchify =>
        (_patchify ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PatchParams>(LayoutKernels.Patchify))).Value;
    public Action<Index1D, ArrayView<float>, ulong, int, int, int> RandomNormal =>
        (_randomNormal ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ulong, int, int, int>(RandomKernels.RandomNormal))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<Half>> F32ToF16 =>
        (_f32ToF16 ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<Half>>(ConvertKernels.F32ToF16))).Value;
    public Action<Index1D, ArrayView<Half>, ArrayView<float>> F16ToF32 =>
        (_f16ToF32 ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<float>>(ConvertKernels.F16ToF32))).Value;
    public Action<Index1D, ArrayView<float>, ArrayView<ushort>> F32ToBF16 =>
        (_f32ToBf16 ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>>(ConvertKernels.F32ToBF16))).Value;
    public Action<Index1D, ArrayView<ushort>, ArrayView<float>> BF16ToF32 =>
        (_bf16ToF32 ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(ConvertKernels.BF16ToF32))).Value;
    public Action<Index1D, ArrayView<Half>, ArrayView<ushort>> F16ToBF16 =>
        (_f16ToBf16 ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<ushort>>(ConvertKernels.F16ToBF16))).Value;
    public Action<Index1D, ArrayView<ushort>, ArrayView<Half>> BF16ToF16 =>
        (_bf16ToF16 ??= Auto(a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<Half>>(ConvertKernels.BF16ToF16))).Value;
}
