using System.Text.Json.Nodes;

namespace Engine.RandomPipeline;

/// <summary>CLIP ViT-L/14's text encoder (SD 1.x's text_encoder): its transformers config and its keys and shapes.</summary>
public static class ClipL
{
    private const int Vocab = 49408, Positions = 77, Width = 768, Layers = 12, Heads = 12, Intermediate = 3072;

    /// <summary>text_encoder/config.json of SD 1.5.</summary>
    public static JsonObject Config() => new()
    {
        ["architectures"] = new JsonArray("CLIPTextModel"),
        ["attention_dropout"] = 0.0,
        ["bos_token_id"] = 0,
        ["dropout"] = 0.0,
        ["eos_token_id"] = 2,
        ["hidden_act"] = "quick_gelu",
        ["hidden_size"] = Width,
        ["initializer_factor"] = 1.0,
        ["initializer_range"] = 0.02,
        ["intermediate_size"] = Intermediate,
        ["layer_norm_eps"] = 1e-05,
        ["max_position_embeddings"] = Positions,
        ["model_type"] = "clip_text_model",
        ["num_attention_heads"] = Heads,
        ["num_hidden_layers"] = Layers,
        ["pad_token_id"] = 1,
        ["projection_dim"] = 768,
        ["torch_dtype"] = "float32",
        ["vocab_size"] = Vocab,
    };

    /// <summary>Every key of CLIPTextModel at this size (123,060,480 parameters).</summary>
    public static IReadOnlyList<RandomTensor> Tensors()
    {
        var list = new List<RandomTensor>
        {
            new("text_model.embeddings.token_embedding.weight", [Vocab, Width], FillKind.Embedding),
            new("text_model.embeddings.position_embedding.weight", [Positions, Width], FillKind.Embedding),
        };
        for (int i = 0; i < Layers; i++)
        {
            string p = $"text_model.encoder.layers.{i}.";
            foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            {
                list.Add(new(p + $"self_attn.{proj}.weight", [Width, Width], FillKind.FanIn));
                list.Add(new(p + $"self_attn.{proj}.bias", [Width], FillKind.SmallBias));
            }
            foreach (var norm in new[] { "layer_norm1", "layer_norm2" })
            {
                list.Add(new(p + $"{norm}.weight", [Width], FillKind.One));
                list.Add(new(p + $"{norm}.bias", [Width], FillKind.SmallBias));
            }
            list.Add(new(p + "mlp.fc1.weight", [Intermediate, Width], FillKind.FanIn));
            list.Add(new(p + "mlp.fc1.bias", [Intermediate], FillKind.SmallBias));
            list.Add(new(p + "mlp.fc2.weight", [Width, Intermediate], FillKind.FanIn));
            list.Add(new(p + "mlp.fc2.bias", [Width], FillKind.SmallBias));
        }
        list.Add(new("text_model.final_layer_norm.weight", [Width], FillKind.One));
        list.Add(new("text_model.final_layer_norm.bias", [Width], FillKind.SmallBias));
        return list;
    }
}
