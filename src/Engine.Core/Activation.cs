namespace Engine.Core;

/// <summary>Element-wise activation, applied by <see cref="Device.Activate"/> or fused into GEMM epilogues.</summary>
public enum Activation
{
    /// <summary>Identity.</summary>
    None,
    /// <summary>x * sigmoid(x).</summary>
    SiLU,
    /// <summary>Exact GELU: 0.5 x (1 + erf(x / sqrt 2)).</summary>
    GeluErf,
    /// <summary>GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    GeluTanh,
    /// <summary>max(x, 0).</summary>
    Relu,
}

/// <summary>Binary element-wise operation with NumPy broadcasting (<see cref="Device.Binary"/>).</summary>
public enum BinaryOp
{
    /// <summary>a + b.</summary>
    Add,
    /// <summary>a - b.</summary>
    Sub,
    /// <summary>a * b.</summary>
    Mul,
    /// <summary>a / b.</summary>
    Div,
}
