namespace Engine.Kernels;

/// <summary>Scalar float math shared by ILGPU kernels and the CPU device, so both round alike.</summary>
public static class KernelMath
{
    /// <summary>
    /// erf(x) in float32 precision: Abramowitz and Stegun 7.1.26 (|error| &lt;= 1.5e-7), evaluated in
    /// double so the only error left is the approximation's own.
    /// </summary>
    public static float Erf(float x)
    {
        double ax = x < 0 ? -x : x;
        double t = 1.0 / (1.0 + 0.3275911 * ax);
        double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        double y = 1.0 - poly * Math.Exp(-ax * ax);
        return (float)(x < 0 ? -y : y);
    }

    /// <summary>x * sigmoid(x).</summary>
    public static float Silu(float x) => x / (1f + MathF.Exp(-x));

    /// <summary>Exact GELU, 0.5 x (1 + erf(x / sqrt 2)).</summary>
    public static float GeluErf(float x) => 0.5f * x * (1f + Erf(x * 0.70710678118654752f));

    /// <summary>GELU with the tanh approximation.</summary>
    public static float GeluTanh(float x) => 0.5f * x * (1f + MathF.Tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));

    /// <summary>Applies activation number <paramref name="kind"/> (the order of Engine.Core.Activation).</summary>
    public static float Activate(float x, int kind) => kind switch
    {
        1 => Silu(x),
        2 => GeluErf(x),
        3 => GeluTanh(x),
        4 => x > 0f ? x : 0f,
        _ => x,
    };
}
