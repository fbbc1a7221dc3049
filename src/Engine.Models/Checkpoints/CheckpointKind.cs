namespace Engine.Models.Checkpoints;

/// <summary>The model families a single-file checkpoint is recognised as, from its key prefixes.</summary>
public enum CheckpointKind
{
    /// <summary>SD 1.x: LDM layout, CLIP-L under <c>cond_stage_model.transformer.</c>.</summary>
    StableDiffusion1,

    /// <summary>SD 2.x: LDM layout, OpenCLIP-H under <c>cond_stage_model.model.</c>.</summary>
    StableDiffusion2,

    /// <summary>SDXL base: SGM layout, CLIP-L under <c>conditioner.embedders.0.transformer.</c> and OpenCLIP-bigG under <c>conditioner.embedders.1.model.</c>.</summary>
    StableDiffusionXL,
}
