namespace Engine.Sampling.Plugins;

/// <summary>
/// Linear conversions between a model output m of a prediction type and the noise (eps) or data (x0)
/// estimate, for a model input x = a x0 + s eps: every conversion is value = X x + M m, so a plug-in
/// computes (X, M) on the host and converts on the device with one linear combination.
/// Flow models: x = (1 - t) x0 + t eps and m = eps - x0 (a = 1 - t, s = t).
/// </summary>
public static class PredictionSpace
{
    /// <summary>eps = X x + M m.</summary>
    public static (double X, double M) NoiseFromOutput(string type, double a, double s) => type switch
    {
        "epsilon" => (0, 1),
        "sample" => (1 / s, -a / s),
        "v_prediction" => (s / (a * a + s * s), a / (a * a + s * s)),
        "flow" => (1 / (a + s), a / (a + s)),
        _ => throw Unsupported(type),
    };

    /// <summary>x0 = X x + M m.</summary>
    public static (double X, double M) DataFromOutput(string type, double a, double s) => type switch
    {
        "epsilon" => (1 / a, -s / a),
        "sample" => (0, 1),
        "v_prediction" => (a / (a * a + s * s), -s / (a * a + s * s)),
        "flow" => (1 / (a + s), -s / (a + s)),
        _ => throw Unsupported(type),
    };

    /// <summary>m = X x + E eps.</summary>
    public static (double X, double E) OutputFromNoise(string type, double a, double s) => type switch
    {
        "epsilon" => (0, 1),
        "sample" => (1 / a, -s / a),
        "v_prediction" => (-s / a, a + s * s / a),
        "flow" => (-1 / a, 1 + s / a),
        _ => throw Unsupported(type),
    };

    /// <summary>m = X x + D x0.</summary>
    public static (double X, double D) OutputFromData(string type, double a, double s) => type switch
    {
        "epsilon" => (1 / s, -a / s),
        "sample" => (0, 1),
        "v_prediction" => (a / s, -(a * a / s + s)),
        "flow" => (1 / s, -(a / s + 1)),
        _ => throw Unsupported(type),
    };

    private static ArgumentException Unsupported(string type) =>
        new($"Prediction type '{type}' is not supported by the plug-ins; supported: epsilon, sample, v_prediction, flow.");
}
