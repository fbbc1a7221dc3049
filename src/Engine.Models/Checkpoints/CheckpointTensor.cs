namespace Engine.Models.Checkpoints;

/// <summary>
/// Where one diffusers tensor lies in a single-file checkpoint: the file's tensor, optionally only rows
/// [<paramref name="RowStart"/>, <paramref name="RowStart"/> + <paramref name="RowCount"/>) of its first axis
/// (a third of OpenCLIP's fused <c>in_proj</c>), optionally transposed (OpenCLIP's <c>text_projection</c>),
/// and the shape diffusers gives it (the VAE's 1x1-conv attention weights become Linear [C, C]).
/// </summary>
/// <param name="FileKey">The tensor's key in the file.</param>
/// <param name="Shape">The diffusers shape.</param>
/// <param name="RowStart">First row taken along axis 0.</param>
/// <param name="RowCount">Rows taken along axis 0; -1 for all.</param>
/// <param name="Transpose">Whether the 2-D file tensor is the transpose of the diffusers one.</param>
public sealed record CheckpointTensor(string FileKey, int[] Shape, int RowStart = 0, int RowCount = -1, bool Transpose = false);
