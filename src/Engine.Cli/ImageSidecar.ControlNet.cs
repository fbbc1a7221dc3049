using Engine.Generation;

namespace Engine.Cli;

/// <summary>The sidecar's ControlNet fields: each net (folder, scale, window, control image file and its SHA-256) and guess mode.</summary>
public sealed partial record ImageSidecar
{
    /// <summary>The ControlNets in order, or null when none steered the image.</summary>
    public SidecarControlNet[]? ControlNets { get; init; }

    /// <summary>True when the ControlNets ran in guess mode; null otherwise.</summary>
    public bool? GuessMode { get; init; }

    private static SidecarControlNet[]? DescribeControlNets(GenerationRequest request) => request.ControlNets.Count == 0 ? null :
        [.. request.ControlNets.Select(c => new SidecarControlNet(c.Path, c.Scale, c.Start, c.End, c.Image.File, c.Image.Sha256))];

    /// <summary>
    /// <paramref name="request"/> with the recorded ControlNets, their images read again and checked against their
    /// SHA-256, per-image ones cut to the request's first <see cref="GenerationRequest.Count"/> images.
    /// </summary>
    private GenerationRequest WithControlNets(GenerationRequest request, string path)
    {
        if (ControlNets is null)
        {
            if (GuessMode == true) throw new InvalidDataException($"{path}: guess_mode is recorded without controlnets.");
            return request;
        }
        var specs = new List<ControlNetSpec>();
        foreach (var net in ControlNets)
        {
            if (string.IsNullOrEmpty(net.Folder)) throw new InvalidDataException($"{path}: a 'controlnets' entry has no 'folder'.");
            if (string.IsNullOrEmpty(net.Image)) throw new InvalidDataException($"{path}: ControlNet '{net.Folder}' has no control image file recorded ('image').");
            if (!System.IO.File.Exists(net.Image)) throw new FileNotFoundException($"{path}: control image '{net.Image}' does not exist.", net.Image);
            var image = ControlImage.Load(net.Image);
            if (net.ImageSha256 is { } sha && !string.Equals(sha, image.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"{path}: control image '{net.Image}' has changed since the image was made (SHA-256 {image.Sha256}, recorded {sha}).");
            if (image.Count > 1 && image.Count != RequestCount)
                throw new InvalidDataException($"{path}: control image '{net.Image}' holds {image.Count} images for a request of {RequestCount}.");
            if (image.Count > request.Count)
            {
                int length = image.Channels * image.Height * image.Width;
                image = image with { Count = request.Count, Pixels = image.Pixels[..(request.Count * length)] };
            }
            specs.Add(new ControlNetSpec(net.Folder, image) { Scale = net.Scale, Start = net.Start, End = net.End });
        }
        return request with { ControlNets = specs, GuessMode = GuessMode == true };
    }
}

/// <summary>One ControlNet as a sidecar records it.</summary>
/// <param name="Folder">Full path of the ControlNetModel folder.</param>
/// <param name="Scale">Its conditioning scale.</param>
/// <param name="Start">control_guidance_start.</param>
/// <param name="End">control_guidance_end.</param>
/// <param name="Image">Full path of its control image file.</param>
/// <param name="ImageSha256">Lower-case hex SHA-256 of that file.</param>
public sealed record SidecarControlNet(string Folder, double Scale, double Start, double End, string? Image, string? ImageSha256);
