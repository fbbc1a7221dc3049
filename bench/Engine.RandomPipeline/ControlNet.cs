using System.Text.Json.Nodes;

namespace Engine.RandomPipeline;

/// <summary>
/// A diffusers <c>ControlNetModel</c> folder for a UNet key manifest: the configuration the public SD 1.5 ControlNets
/// carry (the UNet's encoder and mid block settings, RGB conditioning embedded by widths 16, 32, 96, 256), the UNet's
/// conv_in, time embedding, down and mid block keys with their shapes, plus the conditioning embedding, one 1x1 zero
/// convolution per skip the UNet keeps and one for the mid block.
/// </summary>
public static class ControlNet
{
    /// <summary>ControlNet settings that are not the UNet's (diffusers' defaults, as every SD 1.5 ControlNet has them).</summary>
    private static readonly int[] EmbeddingWidths = [16, 32, 96, 256];
    private const int ConditioningChannels = 3;

    /// <summary>UNet config fields a ControlNetModel shares (its constructor's arguments).</summary>
    private static readonly string[] SharedFields =
    [
        "act_fn", "addition_embed_type", "addition_embed_type_num_heads", "addition_time_embed_dim", "attention_head_dim",
        "block_out_channels", "class_embed_type", "cross_attention_dim", "down_block_types", "downsample_padding",
        "encoder_hid_dim", "encoder_hid_dim_type", "flip_sin_to_cos", "freq_shift", "in_channels", "layers_per_block",
        "mid_block_scale_factor", "mid_block_type", "norm_eps", "norm_num_groups", "num_attention_heads", "num_class_embeds",
        "only_cross_attention", "projection_class_embeddings_input_dim", "resnet_time_scale_shift",
        "transformer_layers_per_block", "upcast_attention", "use_linear_projection",
    ];

    /// <summary>config.json for the ControlNet of the UNet configured by <paramref name="unetConfig"/>.</summary>
    public static JsonObject Config(JsonObject unetConfig, string diffusersVersion)
    {
        var config = new JsonObject { ["_class_name"] = "ControlNetModel", ["_diffusers_version"] = diffusersVersion };
        var fields = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["conditioning_channels"] = ConditioningChannels,
            ["conditioning_embedding_out_channels"] = new JsonArray(EmbeddingWidths.Select(w => (JsonNode?)w).ToArray()),
            ["controlnet_conditioning_channel_order"] = "rgb",
            ["global_pool_conditions"] = false,
        };
        foreach (var field in SharedFields)
        {
            if (!unetConfig.TryGetPropertyValue(field, out var value))
                throw new ArgumentException($"the UNet manifest's config has no '{field}' (needed by the ControlNet config)");
            fields[field] = value?.DeepClone();
        }
        foreach (var (key, value) in fields) config[key] = value;
        return config;
    }

    /// <summary>
    /// Every ControlNet key: the UNet manifest's conv_in, time_embedding, down_blocks and mid_block entries (same
    /// shapes), then controlnet_cond_embedding, controlnet_down_blocks.{j} and controlnet_mid_block.
    /// </summary>
    public static IReadOnlyList<RandomTensor> Tensors(JsonArray unetKeys, JsonObject unetConfig)
    {
        string[] shared = ["conv_in.", "time_embedding.", "add_embedding.", "down_blocks.", "mid_block."];
        var list = unetKeys
            .Select(k => ((string)k!["key"]!, k["shape"]!.AsArray().Select(d => (int)d!).ToArray()))
            .Where(k => shared.Any(p => k.Item1.StartsWith(p, StringComparison.Ordinal)))
            .Select(k => new RandomTensor(k.Item1, k.Item2, Program.Fill(k.Item1, k.Item2.Length)))
            .ToList();

        var channels = unetConfig["block_out_channels"]!.AsArray().Select(c => (int)c!).ToArray();
        Conv("controlnet_cond_embedding.conv_in", ConditioningChannels, EmbeddingWidths[0], 3);
        for (int i = 0; i < EmbeddingWidths.Length - 1; i++)
        {
            Conv($"controlnet_cond_embedding.blocks.{2 * i}", EmbeddingWidths[i], EmbeddingWidths[i], 3);
            Conv($"controlnet_cond_embedding.blocks.{2 * i + 1}", EmbeddingWidths[i], EmbeddingWidths[i + 1], 3);
        }
        Conv("controlnet_cond_embedding.conv_out", EmbeddingWidths[^1], channels[0], 3);

        // The skips the UNet keeps: conv_in's output, then each resnet's, then each downsampler's (all blocks but the last).
        int layers = (int)unetConfig["layers_per_block"]!;
        var skips = new List<int> { channels[0] };
        for (int b = 0; b < channels.Length; b++)
        {
            for (int l = 0; l < layers; l++) skips.Add(channels[b]);
            if (b < channels.Length - 1) skips.Add(channels[b]);
        }
        for (int j = 0; j < skips.Count; j++) Conv($"controlnet_down_blocks.{j}", skips[j], skips[j], 1);
        Conv("controlnet_mid_block", channels[^1], channels[^1], 1);
        return list;

        void Conv(string name, int input, int output, int kernel)
        {
            list.Add(new($"{name}.weight", [output, input, kernel, kernel], FillKind.FanIn));
            list.Add(new($"{name}.bias", [output], FillKind.SmallBias));
        }
    }
}
