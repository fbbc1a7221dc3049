using System.CommandLine;
using Engine.Sampling;
using Engine.Sampling.Guidance;

namespace Engine.Cli.Commands;

/// <summary><c>engine samplers</c>: the samplers, schedules, guidance methods and plug-ins, one per line.</summary>
public sealed class SamplersCommand : EngineCommand
{
    /// <inheritdoc />
    public override string Name => "samplers";

    /// <inheritdoc />
    public override string Summary => "list samplers, schedules, guidance methods and plug-ins";

    /// <inheritdoc />
    public override string Usage => "usage: engine samplers";

    /// <inheritdoc />
    public override string Details => """
        Lists the sampler names (--sampler), schedule names (--schedule) and the guidance methods and
        plug-ins with the KEY=VALUE options that switch them on (--option), one per line.
        """;

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [];

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        var o = context.Output;
        o.Write(SamplerNames.Describe());
        o.WriteLine("Guidance and plug-ins (--option KEY=VALUE):");
        foreach (var e in SamplingOptionCatalog.Entries)
            o.WriteLine($"  {e.Name,-18} {e.Description} [{string.Join(", ", e.Keys)}]");
        return ExitCodes.Success;
    }
}
