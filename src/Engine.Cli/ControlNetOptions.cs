using System.CommandLine;
using System.Globalization;
using Engine.Generation;

namespace Engine.Cli;

/// <summary>
/// The ControlNet options of <c>engine generate</c> (<c>--controlnet DIR[:SCALE]</c>, <c>--control-image FILE</c>,
/// <c>--control-start F</c>, <c>--control-end F</c>, <c>--guess-mode</c>) and how they map onto
/// <see cref="GenerationRequest.ControlNets"/>: nets and images are matched in order; one start / end applies to
/// every net, repeated ones to the nets in order.
/// </summary>
public sealed class ControlNetOptions
{
    /// <summary><c>--controlnet DIR[:SCALE]</c>, repeatable.</summary>
    public Option<List<(string Path, double Scale)>> ControlNet { get; } = CliOptions.Repeatable("--controlnet", "DIR[:SCALE]",
        "ControlNetModel folder steering an SD 1.x/2.x or SDXL pipeline, at conditioning scale SCALE (default 1; the text after the last ':' when it is a number), repeatable (residuals summed in order)",
        ParseNet);

    /// <summary><c>--control-image FILE</c>, repeatable.</summary>
    public Option<List<string>> Image { get; } = CliOptions.Repeatable("--control-image", "FILE",
        "control image of the ControlNet in the same position: a PNG (for every image) or safetensors tensor 'image' [N, C, H, W] in [0, 1] (one per image); resized to the output size (PNG: Lanczos, tensor: nearest, as diffusers), never normalised",
        t => t);

    /// <summary><c>--control-start F</c>, repeatable.</summary>
    public Option<List<double>> Start { get; } = CliOptions.Repeatable("--control-start", "F",
        "fraction of the steps before which the ControlNets are skipped (diffusers' control_guidance_start, default 0): once for all, or once per --controlnet",
        t => OptionValues.ParseNumber(t, "--control-start", 0, 1));

    /// <summary><c>--control-end F</c>, repeatable.</summary>
    public Option<List<double>> End { get; } = CliOptions.Repeatable("--control-end", "F",
        "fraction of the steps after which the ControlNets are skipped (control_guidance_end, default 1): once for all, or once per --controlnet",
        t => OptionValues.ParseNumber(t, "--control-end", 0, 1));

    /// <summary><c>--guess-mode</c>.</summary>
    public Option<bool> GuessMode { get; } = CliOptions.Flag("--guess-mode",
        "diffusers' guess_mode: with CFG the ControlNets see the conditional half only; residuals scaled from 0.1 (first) to 1 (mid block)");

    /// <summary>The options in help order.</summary>
    public IEnumerable<Option> All => [ControlNet, Image, Start, End, GuessMode];

    /// <summary><paramref name="request"/> with the ControlNets, their images (read now) and windows; usage errors name the option.</summary>
    public GenerationRequest Apply(ParseResult parse, GenerationRequest request, string command)
    {
        var nets = parse.GetValue(ControlNet) ?? [];
        var images = parse.GetValue(Image) ?? [];
        var starts = parse.GetValue(Start) ?? [];
        var ends = parse.GetValue(End) ?? [];
        bool guess = parse.GetValue(GuessMode);
        if (nets.Count == 0)
        {
            foreach (var (given, name) in new[] { (images.Count > 0, "--control-image"), (starts.Count > 0, "--control-start"), (ends.Count > 0, "--control-end"), (guess, "--guess-mode") })
                if (given) throw new UsageException($"{command}: {name} needs --controlnet.");
            return request;
        }
        if (images.Count != nets.Count)
            throw new UsageException($"{command}: {nets.Count} ControlNet(s) (--controlnet) but {images.Count} control image(s) (--control-image): give one image per ControlNet, in the same order.");
        CheckCount(starts.Count, nets.Count, "--control-start", command);
        CheckCount(ends.Count, nets.Count, "--control-end", command);
        var specs = new List<ControlNetSpec>();
        for (int k = 0; k < nets.Count; k++)
        {
            var spec = new ControlNetSpec(Path.GetFullPath(nets[k].Path), ControlImage.Load(images[k]))
            {
                Scale = nets[k].Scale,
                Start = starts.Count == 0 ? 0 : starts[Math.Min(k, starts.Count - 1)],
                End = ends.Count == 0 ? 1 : ends[Math.Min(k, ends.Count - 1)],
            };
            if (spec.Start >= spec.End)
                throw new UsageException($"{command}: --control-start {spec.Start.ToString(CultureInfo.InvariantCulture)} must be below --control-end {spec.End.ToString(CultureInfo.InvariantCulture)} (ControlNet {k + 1}).");
            specs.Add(spec);
        }
        return request with { ControlNets = specs, GuessMode = guess };
    }

    private static void CheckCount(int given, int nets, string name, string command)
    {
        if (given > 1 && given != nets)
            throw new UsageException($"{command}: {given} values of {name} for {nets} ControlNets: give one for all or one per --controlnet.");
    }

    /// <summary>DIR[:SCALE]: SCALE is the text after the last ':' when it parses as a finite number.</summary>
    public static (string Path, double Scale) ParseNet(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon > 0 && double.TryParse(text[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double scale))
        {
            if (!double.IsFinite(scale)) throw new FormatException($"--controlnet scale in '{text}' must be finite.");
            return (text[..colon], scale);
        }
        if (text.Length == 0) throw new FormatException("--controlnet needs a folder.");
        return (text, 1.0);
    }
}
