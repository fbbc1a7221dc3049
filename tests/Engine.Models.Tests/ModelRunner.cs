using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Models.Tests;

/// <summary>Loads a model folder and runs it on the tensors of an io file named as diffusers' forward arguments.</summary>
public static class ModelRunner
{
    public sealed record Output(int[] Shape, float[] Data);

    public static Dictionary<string, Output> Run(Device device, string modelFolder, string ioPath, DType weightStorage = DType.F32, DType activations = DType.F32)
    {
        using var model = ModelLoader.Load(device, modelFolder, weightStorage);
        model.Activations = activations;
        using var io = SafetensorsFile.Open(ioPath);
        var results = new Dictionary<string, Output>();
        var owned = new List<Tensor>();
        Tensor? Input(string name)
        {
            if (!io.Contains(name)) return null;
            var t = io.Load(device, name);
            owned.Add(t);
            return t;
        }
        void Keep(string name, Tensor t)
        {
            using (t) results[name] = new Output(t.ShapeArray(), t.ToArray());
        }
        Tensor Detach(Tensor t)
        {
            var copy = device.Allocate(t.ShapeArray());
            device.Copy(t, copy);
            return copy;
        }
        try
        {
            switch (model)
            {
                case DiffusionModel denoiser:
                    var sample = Input("sample") ?? Input("hidden_states") ?? throw new InvalidDataException($"{ioPath}: no 'sample' or 'hidden_states'.");
                    Keep("output", denoiser.Forward(sample, Input("timestep") ?? throw new InvalidDataException($"{ioPath}: no 'timestep'."),
                        Input("class_labels"), Input("encoder_hidden_states"), Input("pooled_projections")));
                    break;
                case AutoencoderKL vae:
                    if (Input("image") is { } image)
                    {
                        Keep("enc_moments", vae.EncodeMoments(image));
                        using var dist = vae.Encode(image);
                        Keep("enc_mean", Detach(dist.Mean));
                        Keep("enc_logvar", Detach(dist.LogVar));
                        Keep("enc_std", Detach(dist.Std));
                    }
                    if (Input("latent") is { } latent) Keep("decoded", vae.Decode(latent));
                    break;
                default:
                    throw new InvalidOperationException($"{model.GetType().Name} has no runner.");
            }
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
        return results;
    }
}
