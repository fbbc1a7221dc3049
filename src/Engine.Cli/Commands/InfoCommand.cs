using System.CommandLine;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core;
using Engine.Gpu;

namespace Engine.Cli.Commands;

/// <summary><c>engine info</c>: version, runtime, the devices this machine offers and the CPU's SIMD support; with
/// <c>--model</c> also what a model or pipeline folder holds.</summary>
public sealed class InfoCommand : EngineCommand
{
    /// <inheritdoc />
    public override string Name => "info";

    /// <inheritdoc />
    public override string Summary => "show the version, available devices and SIMD support";

    /// <inheritdoc />
    private readonly Option<string?> _model = CliOptions.PathText("--model", "DIR",
        "also describe a model folder (class, weights) or a pipeline folder (class, support, every component with its parameters)");

    /// <inheritdoc />
    public override string Usage => "usage: engine info [--model DIR]";

    /// <inheritdoc />
    public override string Details => """
        Prints the engine version, the .NET runtime and OS, every device --device can select on this
        machine (and which one is the default), where the CPU device's memory comes from (its arena on Linux), and the
        SIMD instruction sets the CPU path can use.
        """;

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_model];

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        var o = context.Output;
        o.WriteLine($"engine {EngineVersion.Text}");
        o.WriteLine($"runtime: {RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture}), {Environment.ProcessorCount} logical cores");
        o.WriteLine("devices:");
        foreach (var line in DeviceFactory.Describe()) o.WriteLine($"  {line}");
        o.WriteLine($"  {Engine.Cpu.CpuDevice.MemoryDescription}");
        o.WriteLine("simd:");
        o.WriteLine($"  Vector<float>: {Vector<float>.Count} lanes ({Vector<byte>.Count * 8} bits), hardware accelerated: {Vector.IsHardwareAccelerated}");
        o.WriteLine($"  Vector128: {Vector128.IsHardwareAccelerated}, Vector256: {Vector256.IsHardwareAccelerated}, Vector512: {Vector512.IsHardwareAccelerated}");
        var sets = new List<string>();
        if (Sse42.IsSupported) sets.Add("SSE4.2");
        if (Avx.IsSupported) sets.Add("AVX");
        if (Avx2.IsSupported) sets.Add("AVX2");
        if (Fma.IsSupported) sets.Add("FMA");
        if (Avx512F.IsSupported) sets.Add("AVX-512F");
        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported) sets.Add("AdvSIMD");
        o.WriteLine($"  instruction sets: {(sets.Count == 0 ? "none detected" : string.Join(", ", sets))}");
        o.WriteLine($"  {Engine.Cpu.CpuDevice.Bf16Description}");
        if (parse.GetValue(_model) is { } model)
        {
            if (!Directory.Exists(model)) throw new DirectoryNotFoundException($"--model {model}: folder does not exist.");
            PipelineInspection.WriteFolder(model, o);
        }
        return ExitCodes.Success;
    }
}
