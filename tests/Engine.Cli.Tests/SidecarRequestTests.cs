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
}
