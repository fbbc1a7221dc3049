namespace Engine.Cli.Tests;

/// <summary>The sidecar's mapping onto the request: the batch it is regenerated in, its classes, and seed-list images.</summary>
public class SidecarRequestTests
{
    private static ImageSidecar Sidecar(int index, int count, int? label, int[]? classes) => new()
    {
        File = "x.png", Model = "/m", Sampler = "euler", Steps = 4, Cfg = 2.5, Seed = 9,
        SampleIndex = index, RequestCount = count, Class = label, RequestClasses = classes, Height = 28, Width = 28,
    };

    [Test]
    public void Request_EndsWithTheImagesBatch()
    {
        var request = Sidecar(17, 40, 2, [1, 2]).ToRequest("x.json");
        Assert.That((request.Seed, request.Count, request.Steps, request.GuidanceScale, request.Sampler), Is.EqualTo((9UL, 32, 4, 2.5, "euler")));
        Assert.That(request.ClassLabels![17], Is.EqualTo(2));
    }

    [Test]
    public void SeedListSidecarRecordingTheWholeCycle_TakesItsOwnClass() =>
        Assert.That(Sidecar(0, 1, 4, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).ToRequest("x.json").ClassLabels, Is.EqualTo(new[] { 4 }));

    [Test]
    public void ClassThatContradictsTheCycle_IsRejectedNamingTheFile() =>
        Assert.That(() => Sidecar(1, 3, 5, [1, 2]).ToRequest("x.json"), Throws.TypeOf<InvalidDataException>().With.Message.Contains("x.json"));

    [Test]
    public void SeedListImagesOfACyclingModel_RegenerateFromTheirSidecars()
    {
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("generate", "--seeds", "3,4", "--steps", "2", "--sampler", "euler", "--out", scratch["a"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        foreach (var name in new[] { "seed000003_class0", "seed000004_class1" })
        {
            r = Cli.Run("generate", "--from-sidecar", scratch[$"a/{name}.json"], "--out", scratch["b"]);
            Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
            Assert.That(File.ReadAllBytes(scratch[$"b/{name}.png"]), Is.EqualTo(File.ReadAllBytes(scratch[$"a/{name}.png"])), name);
            Assert.That(File.ReadAllText(scratch[$"b/{name}.json"]), Is.EqualTo(File.ReadAllText(scratch[$"a/{name}.json"])), name);
        }
    }

    /// <summary>A pipeline sidecar as the engine wrote it before the request fields were shared with the job line.</summary>
    private const string WrittenSidecar = """
        {
          "engine_version": "1.0.0+549a4e1d44a6334960208843918114b8994727a4",
          "file": "seed000003_i0000.png",
          "model": "/work/shared/fixtures/pipelines/sdxl_tiny/pipeline",
          "device": "cpu",
          "device_name": "cpu (2 threads, AVX-512)",
          "precision": "f32",
          "sampler": "ddim",
          "scheduler_class": "DDIMScheduler",
          "steps": 2,
          "cfg": 3,
          "eta": 0.5,
          "timesteps": [
            999,
            499
          ],
          "seed": 3,
          "sample_index": 0,
          "request_count": 2,
          "request_batch": 0,
          "options": [],
          "height": 32,
          "width": 32,
          "request_prompts": [
            "a cat"
          ],
          "request_negative_prompts": [
            "blur"
          ],
          "clip_skip": 1,
          "original_size": [
            64,
            48
          ],
          "crop_top_left": [
            2,
            4
          ],
          "target_size": [
            32,
            32
          ],
          "negative_original_size": [
            16,
            16
          ],
          "negative_crop_top_left": [
            1,
            0
          ],
          "negative_target_size": [
            24,
            24
          ],
          "png_size": 2922,
          "png_sha256": "39969b9aa5bef33d612aae270878fad4ff8634f96cb4c581a3147cc67d9ebdfe",
          "vae_tiling": "auto"
        }
        """;

    [Test]
    public void WrittenSidecar_ReadsIntoTheRequestAndWritesBackByteForByte()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["old.json"], WrittenSidecar + "\n");
        var sidecar = ImageSidecar.Read(scratch["old.json"]);
        Assert.That(sidecar.ToJson(), Is.EqualTo(WrittenSidecar.ReplaceLineEndings("\n")));
        var request = sidecar.ToRequest(scratch["old.json"]);
        Assert.That((request.Eta, request.Timesteps, request.ClipSkip), Is.EqualTo(((double?)0.5, new[] { 999, 499 }, (int?)1)));
        Assert.That((request.OriginalSize, request.CropTopLeft, request.TargetSize), Is.EqualTo((new[] { 64, 48 }, new[] { 2, 4 }, new[] { 32, 32 })));
        Assert.That((request.NegativeOriginalSize, request.NegativeCropTopLeft, request.NegativeTargetSize), Is.EqualTo((new[] { 16, 16 }, new[] { 1, 0 }, new[] { 24, 24 })));
        Assert.That((request.Prompts, request.NegativePrompts, request.Count, request.Seed), Is.EqualTo((new[] { "a cat" }, new[] { "blur" }, 2, 3UL)));
    }

    [Test]
    public void SidecarWithoutTheRequestFields_LeavesThemUnset()
    {
        var request = Sidecar(0, 1, 3, null).ToRequest("x.json");
        Assert.That((request.Eta, request.Timesteps, request.ClipSkip, request.OriginalSize, request.NegativeTargetSize), Is.EqualTo(((double?)null, (int[]?)null, (int?)null, (int[]?)null, (int[]?)null)));
        Assert.That(Sidecar(0, 1, 3, null).ToJson(), Does.Not.Contain("eta").And.Not.Contain("clip_skip").And.Not.Contain("original_size"));
    }
}
