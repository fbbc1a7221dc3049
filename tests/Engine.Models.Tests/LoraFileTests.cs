using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Adapters;

namespace Engine.Models.Tests;

/// <summary>
/// LoRA files read on their own: <c>FILE[:SCALE]</c> specs (Windows paths keep their drive), the kohya and
/// diffusers layouts with their alphas (alpha = rank where none is stored, F16 alphas widened), and the clear
/// errors for keys that belong to no module and for layouts the engine does not read (LoHa, LoKr, DoRA).
/// </summary>
public class LoraFileTests
{
    [TestCase("a.safetensors", "a.safetensors", 1.0)]
    [TestCase("a.safetensors:0.6", "a.safetensors", 0.6)]
    [TestCase("a.safetensors:-1e-1", "a.safetensors", -0.1)]
    [TestCase(@"C:\loras\a.safetensors", @"C:\loras\a.safetensors", 1.0)]
    [TestCase(@"C:\loras\a.safetensors:0.5", @"C:\loras\a.safetensors", 0.5)]
    [TestCase("dir:with/colon.safetensors", "dir:with/colon.safetensors", 1.0)]
    [TestCase("file.safetensors:1:2", "file.safetensors:1", 2.0)]
    public void SpecTakesTheScaleAfterTheLastColonOnlyWhenItIsANumber(string text, string path, double scale)
    {
        var spec = LoraSpec.Parse(text);
        Assert.That((spec.Path, spec.Scale), Is.EqualTo((path, scale)));
    }

    [Test]
    public void SpecRejectsNonFiniteScales() =>
        Assert.That(() => LoraSpec.Parse("a.safetensors:NaN"), Throws.TypeOf<FormatException>().With.Message.Contains("finite"));

    [Test]
    public void ReadsKohyaAlphaAndDiffusersRankAsAlpha()
    {
        using var dir = new TempDir();
        Write(dir["kohya.safetensors"], ("lora_unet_a_b.lora_down.weight", [2, 3], DType.F32), ("lora_unet_a_b.lora_up.weight", [4, 2], DType.F32), ("lora_unet_a_b.alpha", [], DType.F16));
        Write(dir["peft.safetensors"], ("unet.a.b.lora_A.weight", [3, 5, 3, 3], DType.F32), ("unet.a.b.lora_B.weight", [4, 3, 1, 1], DType.F32));
        using (var kohya = LoraFile.Open(dir["kohya.safetensors"]))
        {
            Assert.That(kohya.Layout, Is.EqualTo("kohya"));
            var m = kohya.Modules.Single();
            Assert.That((m.Name, m.Rank, m.Out, m.InElements, m.Alpha), Is.EqualTo(("lora_unet_a_b", 2, 4, 3L, 1.5f)));
            Assert.That(kohya.Sha256, Is.EqualTo(LoraFile.Hash(dir["kohya.safetensors"])).And.Length.EqualTo(64));
        }
        using var peft = LoraFile.Open(dir["peft.safetensors"]);
        var p = peft.Modules.Single();
        Assert.That((peft.Layout, p.Name, p.Rank, p.InElements, p.Alpha), Is.EqualTo(("diffusers", "unet.a.b", 3, 45L, 3f)));
    }

    [TestCase("hada_w1_a", "LoHa")]
    [TestCase("lokr_w1", "LoKr")]
    [TestCase("dora_scale", "DoRA")]
    [TestCase("lora_magnitude_vector", "DoRA")]
    [TestCase("lora_mid.weight", "lora_mid")]
    public void RefusesLayoutsItDoesNotRead(string suffix, string layout)
    {
        using var dir = new TempDir();
        Write(dir["x.safetensors"], ("lora_unet_a.lora_down.weight", [2, 3], DType.F32), ("lora_unet_a.lora_up.weight", [4, 2], DType.F32), ($"lora_unet_b.{suffix}", [2, 2], DType.F32));
        Assert.That(() => LoraFile.Open(dir["x.safetensors"]), Throws.TypeOf<NotSupportedException>()
            .With.Message.Contains(layout).And.Message.Contains("not supported").And.Message.Contains(dir["x.safetensors"]).And.Message.Contains($"lora_unet_b.{suffix}"));
    }

    [Test]
    public void KeysOutsideAnyModuleAreNamed()
    {
        using var dir = new TempDir();
        Write(dir["stray.safetensors"], ("lora_unet_a.lora_down.weight", [2, 3], DType.F32), ("lora_unet_a.lora_up.weight", [4, 2], DType.F32), ("lora_unet_a.scale", [1], DType.F32));
        Assert.That(() => LoraFile.Open(dir["stray.safetensors"]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("lora_unet_a.scale"));
        Write(dir["half.safetensors"], ("lora_unet_a.lora_down.weight", [2, 3], DType.F32));
        Assert.That(() => LoraFile.Open(dir["half.safetensors"]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("lora_unet_a (without its up half)"));
        Write(dir["pair.safetensors"], ("lora_unet_a.lora_down.weight", [2, 3], DType.F32), ("lora_unet_a.lora_up.weight", [4, 3], DType.F32));
        Assert.That(() => LoraFile.Open(dir["pair.safetensors"]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("not a LoRA pair"));
        Write(dir["none.safetensors"], ("model.weight", [2, 3], DType.F32));
        Assert.That(() => LoraFile.Open(dir["none.safetensors"]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("no LoRA tensors"));
    }

    private static void Write(string path, params (string Name, int[] Shape, DType DType)[] tensors) =>
        SafetensorsWriter.Write(path, tensors.Select(t => new SafetensorsWriter.Entry(t.Name, t.Shape,
            Enumerable.Range(0, (int)Tensor.ShapeLength(t.Shape)).Select(i => 1.5f + 0.25f * i).ToArray(), t.DType)));

    private sealed class TempDir : IDisposable
    {
        private readonly string _path = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lora-{Guid.NewGuid():N}")).FullName;

        public string this[string name] => Path.Combine(_path, name);

        public void Dispose() => Directory.Delete(_path, recursive: true);
    }
}
