namespace Engine.Tools.Quality;

/// <summary>The layer kinds a classifier <c>architecture.json</c> may list.</summary>
public enum ClassifierLayerKind
{
    /// <summary>2-D convolution with weight [O, C, kh, kw] and bias [O].</summary>
    Conv2d,
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>Max pooling with a square kernel.</summary>
    MaxPool2d,
    /// <summary>NCHW to [N, C*H*W] in C, H, W order (a no-op on contiguous data).</summary>
    Flatten,
    /// <summary>y = x W^T + b with weight [out, in].</summary>
    Linear,
    /// <summary>Training-only regularisation; identity at inference.</summary>
    Dropout,
}

/// <summary>
/// One layer of a classifier as <c>architecture.json</c> describes it: the parameters it names and the
/// output shape (per sample) it promises, which loading checks.
/// </summary>
/// <param name="Index">Position in the JSON <c>layers</c> array (for error messages).</param>
/// <param name="Kind">The operation.</param>
/// <param name="Name">Weight prefix (<c>conv1</c> for <c>conv1.weight</c>), for layers with weights.</param>
/// <param name="WeightShape">Declared weight shape, for layers with weights.</param>
/// <param name="BiasShape">Declared bias shape, or null when the layer has no bias.</param>
/// <param name="Kernel">Pooling kernel size.</param>
/// <param name="Stride">Convolution or pooling stride.</param>
/// <param name="Padding">Convolution padding.</param>
/// <param name="Out">Declared output shape per sample, or null when the JSON gives none.</param>
/// <param name="IsFeatures">Whether this layer's output is the feature vector used for the Frechet distance.</param>
public sealed record ClassifierLayer(
    int Index,
    ClassifierLayerKind Kind,
    string? Name,
    int[]? WeightShape,
    int[]? BiasShape,
    int Kernel,
    int Stride,
    int Padding,
    int[]? Out,
    bool IsFeatures);
