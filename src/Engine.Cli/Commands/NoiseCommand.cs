using System.CommandLine;
using Engine.Core;
using Engine.Gpu;
using Engine.Core.Safetensors;
using Engine.Sampling.Rng;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine noise</c>: writes the successive standard-normal draws a seed gives (draw_0, draw_1, ...), from
/// PyTorch's CPU generator or the engine's Philox stream, to compare the engine's noise with other tools.
/// </summary>
public sealed class NoiseCommand : EngineCommand
{
    private readonly Option<RngKind?> _rng = CliOptions.Rng();
    private readonly Option<ulong?> _seed = CliOptions.Seed("--seed", "S", "the seed (default 0)");
    private readonly Option<List<int[]>> _shape = CliOptions.Repeatable("--shape", "D1,D2,...",
        "shape of one draw (repeatable: one draw per --shape, in order, from the same generator)", text => OptionValues.IntList(text, "--shape", 1, int.MaxValue));
    private readonly Option<string?> _output = CliOptions.PathText("--output", "FILE", "safetensors file to write (tensors draw_0, draw_1, ...)");
    private readonly Option<string?> _kernel = CliOptions.Parsed<string?>("--kernel", "avx2|portable",
        "(torch) which of PyTorch's CPU kernels to reproduce for draws of 16 or more values (default avx2)", ParseKernel);

    /// <inheritdoc />
    public override string Name => "noise";

    /// <inheritdoc />
    public override string Summary => "write the Gaussian draws a seed gives (PyTorch's CPU generator or Philox)";

    /// <inheritdoc />
    public override string Usage => "usage: engine noise [--rng torch|philox] --seed S --shape D1,D2,... [--shape ...] --output FILE.safetensors";

    /// <inheritdoc />
    public override string Details => """
        Draws one standard-normal tensor per --shape, in order, from one generator seeded with S, and writes
        them as draw_0, draw_1, ... (float32).
        --rng torch: PyTorch's CPU generator, torch.Generator("cpu").manual_seed(S); draw k is the k-th
          torch.randn(shape, generator=g) call on it, bit for bit (MT19937 seeded with S mod 2^32; under 16 values
          a cached double Box-Muller, from 16 on float32 blocks of 16 with a tail re-draw).
        --rng philox (default): the engine's stream; draw k is what generate uses as x_T (k = 0) and as the noise
          of sampler step k - 1, the first dimension being the sample index.
        """;

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_rng, _seed, _shape, _output, _kernel];

    /// <inheritdoc />
    protected override IEnumerable<Option> RequiredOptions => [_shape, _output];

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        var rng = parse.GetValue(_rng) ?? RngKind.Philox;
        ulong seed = parse.GetValue(_seed) ?? 0;
        var shapes = parse.GetValue(_shape)!;
        string output = parse.GetValue(_output)!;
        OutputPaths.RequireWritableFile(output, "--output");
        if (parse.Has(_kernel) && rng != RngKind.Torch) throw new UsageException($"{Name}: --kernel goes with --rng torch.");
        var kernel = parse.GetValue(_kernel) == "portable" ? TorchNormalKernel.Portable : TorchNormalKernel.Avx2;
        foreach (var shape in shapes)
            if (shape.Aggregate(1L, (a, d) => a * d) > Array.MaxLength)
                throw new UsageException($"{Name}: --shape {string.Join(',', shape)} has too many values.");

        var draws = new List<SafetensorsWriter.Entry>();
        if (rng == RngKind.Torch)
        {
            var generator = new TorchCpuGenerator(seed, kernel);
            foreach (var shape in shapes)
            {
                var data = new float[shape.Aggregate(1, (a, d) => a * d)];
                generator.Randn(data);
                draws.Add(new SafetensorsWriter.Entry($"draw_{draws.Count}", shape, data));
            }
        }
        else
        {
            using var device = DeviceFactory.Create("cpu");
            foreach (var shape in shapes)
            {
                using var t = device.Allocate(shape);
                device.RandomNormal(t, seed, 0, draws.Count);
                draws.Add(new SafetensorsWriter.Entry($"draw_{draws.Count}", shape, device.Download(t)));
            }
        }
        SafetensorsWriter.Write(output, draws);
        foreach (var d in draws) context.Output.WriteLine($"{d.Name} {Tensor.ShapeString(d.Shape)}");
        context.Output.WriteLine($"wrote {draws.Count} draw{(draws.Count == 1 ? "" : "s")} of seed {seed} ({rng.Name()}) to {output}");
        return ExitCodes.Success;
    }

    private static string ParseKernel(string text) => text.Trim().ToLowerInvariant() switch
    {
        "avx2" => "avx2",
        "portable" => "portable",
        _ => throw new FormatException($"--kernel '{text}' must be avx2 or portable."),
    };
}
