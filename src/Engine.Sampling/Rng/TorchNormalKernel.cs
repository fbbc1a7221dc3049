namespace Engine.Sampling.Rng;

/// <summary>
/// Which of PyTorch's two CPU kernels the float32 block path (16 or more values) reproduces. They differ
/// in the last bits only (at most about 2e-6 for standard normals); draws under 16 values are identical.
/// </summary>
public enum TorchNormalKernel
{
    /// <summary>The AVX2 kernel: what PyTorch uses on ordinary x86-64 PCs (and AVX-512 machines). Bit-exact.</summary>
    Avx2,

    /// <summary>The portable C++ kernel (no AVX2, other architectures): float <c>logf/cosf/sinf</c> of the C library.</summary>
    Portable,
}
