using System.Text.Json.Nodes;

namespace Engine.Models.Checkpoints;

/// <summary>
/// Fills the shape-readable fields of a stock config from a component's tensor shapes (names without the
/// file prefix). What shapes cannot say (attention heads, activations, scaling factors) stays the stock value.
/// </summary>
internal static class CheckpointConfigInference
{
    public static JsonObject UNet(JsonObject config, Dictionary<string, int[]> shapes)
    {
        int layers = UNetBlockNames.LayersPerBlock(shapes.Keys) ?? throw new ModelLoadException("UNet: no downsampler (input_blocks.N.0.op) to read layers_per_block from.");
        int step = layers + 1;
        int blocks = 1 + shapes.Keys.Count(k => k.EndsWith(".0.op.weight", StringComparison.Ordinal) && k.StartsWith("input_blocks.", StringComparison.Ordinal));
        var channels = new JsonArray();
        var down = new JsonArray();
        var up = new JsonArray();
        var transformerLayers = new List<int>();
        for (int b = 0; b < blocks; b++)
        {
            string first = $"input_blocks.{1 + b * step}";
            channels.Add(Require(shapes, $"{first}.0.in_layers.2.weight")[0]);
            int depth = Depth(shapes.Keys, $"{first}.1.transformer_blocks.");
            down.Add(depth > 0 ? "CrossAttnDownBlock2D" : "DownBlock2D");
            transformerLayers.Add(Math.Max(depth, 1));
            bool upAttention = shapes.Keys.Any(k => k.StartsWith($"output_blocks.{b * step}.1.", StringComparison.Ordinal) && !k.StartsWith($"output_blocks.{b * step}.1.conv.", StringComparison.Ordinal));
            up.Add(upAttention ? "CrossAttnUpBlock2D" : "UpBlock2D");
        }
        config["in_channels"] = Require(shapes, "input_blocks.0.0.weight")[1];
        config["out_channels"] = Require(shapes, "out.2.weight")[0];
        config["block_out_channels"] = channels;
        config["layers_per_block"] = layers;
        config["down_block_types"] = down;
        config["up_block_types"] = up;
        if (shapes.FirstOrDefault(p => p.Key.EndsWith(".attn2.to_k.weight", StringComparison.Ordinal)).Value is { } toK)
            config["cross_attention_dim"] = toK[1];
        if (shapes.FirstOrDefault(p => p.Key.EndsWith(".proj_in.weight", StringComparison.Ordinal)).Value is { } projIn)
            config["use_linear_projection"] = projIn.Length == 2;
        config["transformer_layers_per_block"] = transformerLayers.All(d => d == 1) ? 1 : new JsonArray([.. transformerLayers.Select(d => (JsonNode)d)]);
        if (shapes.TryGetValue("label_emb.0.0.weight", out var label))
        {
            config["addition_embed_type"] = "text_time";
            config["projection_class_embeddings_input_dim"] = label[1];
        }
        // Heads are not in the shapes: keep the stock list when it fits the blocks, else diffusers' 8-head default per block.
        if (config["attention_head_dim"] is JsonArray heads && heads.Count != blocks)
            config["attention_head_dim"] = 8;
        return config;
    }

    public static JsonObject Vae(JsonObject config, Dictionary<string, int[]> shapes)
    {
        int blocks = Count(shapes.Keys, "encoder.down.");
        var channels = new JsonArray();
        for (int i = 0; i < blocks; i++) channels.Add(Require(shapes, $"encoder.down.{i}.block.0.conv1.weight")[0]);
        config["in_channels"] = Require(shapes, "encoder.conv_in.weight")[1];
        config["out_channels"] = Require(shapes, "decoder.conv_out.weight")[0];
        config["latent_channels"] = Require(shapes, "decoder.conv_in.weight")[1];
        config["block_out_channels"] = channels;
        config["layers_per_block"] = Count(shapes.Keys, "encoder.down.0.block.");
        config["down_block_types"] = new JsonArray([.. Enumerable.Repeat<JsonNode>("DownEncoderBlock2D", blocks).Select(n => n.DeepClone())]);
        config["up_block_types"] = new JsonArray([.. Enumerable.Repeat<JsonNode>("UpDecoderBlock2D", blocks).Select(n => n.DeepClone())]);
        config["use_quant_conv"] = shapes.ContainsKey("quant_conv.weight");
        config["use_post_quant_conv"] = shapes.ContainsKey("post_quant_conv.weight");
        config["mid_block_add_attention"] = shapes.Keys.Any(k => k.StartsWith("decoder.mid.attn_1.", StringComparison.Ordinal));
        return config;
    }

    public static JsonObject HuggingFaceClip(JsonObject config, Dictionary<string, int[]> shapes)
    {
        // Older transformers saved the text model without its "text_model." level.
        string p = shapes.ContainsKey("text_model.embeddings.token_embedding.weight") ? "text_model." : "";
        var token = Require(shapes, p + "embeddings.token_embedding.weight");
        return Text(config, token, Require(shapes, p + "embeddings.position_embedding.weight")[0],
            Count(shapes.Keys, p + "encoder.layers."), Require(shapes, p + "encoder.layers.0.mlp.fc1.weight")[0],
            shapes.TryGetValue("text_projection.weight", out var proj) ? proj[0] : null);
    }

    public static JsonObject OpenClip(JsonObject config, Dictionary<string, int[]> shapes, bool dropLast)
    {
        int layers = Count(shapes.Keys, "transformer.resblocks.");
        bool projected = config["architectures"]?[0]?.GetValue<string>() == "CLIPTextModelWithProjection";
        return Text(config, Require(shapes, "token_embedding.weight"), Require(shapes, "positional_embedding")[0],
            dropLast ? layers - 1 : layers, Require(shapes, "transformer.resblocks.0.mlp.c_fc.weight")[0],
            projected && shapes.TryGetValue("text_projection", out var proj) ? proj[1] : null);
    }

    private static JsonObject Text(JsonObject config, int[] token, int positions, int layers, int intermediate, int? projection)
    {
        int stockWidth = config["hidden_size"]!.GetValue<int>();
        config["vocab_size"] = token[0];
        config["hidden_size"] = token[1];
        config["max_position_embeddings"] = positions;
        config["num_hidden_layers"] = layers;
        config["intermediate_size"] = intermediate;
        if (projection is { } p) config["projection_dim"] = p;
        // Heads are not in the shapes: keep the stock count for the stock width, else CLIP's 64-wide heads.
        if (token[1] != stockWidth) config["num_attention_heads"] = Math.Max(1, token[1] / 64);
        return config;
    }

    private static int[] Require(Dictionary<string, int[]> shapes, string name) =>
        shapes.TryGetValue(name, out var s) ? s : throw new ModelLoadException($"tensor '{name}' is missing, so its size cannot be read.");

    /// <summary>How many distinct indices follow <paramref name="prefix"/> (prefix.0, prefix.1, ...).</summary>
    private static int Count(IEnumerable<string> names, string prefix) =>
        names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Select(n => n[prefix.Length..].Split('.')[0]).Distinct().Count();

    private static int Depth(IEnumerable<string> names, string prefix) => Count(names, prefix);
}
