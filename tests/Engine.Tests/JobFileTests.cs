using Engine.Jobs;

namespace Engine.Tests;

public class JobFileTests
{
    private static JobFileResult ReadLines(params string[] lines) => JobFile.Read(new StringReader(string.Join("\n", lines)), "jobs.jsonl");

    [Test]
    public void GoodLine_ReadsEveryField()
    {
        var result = ReadLines("""{"model":"models/fmnist-unet","sampler":"dpmpp2m","scheduler_config":"s.json","steps":20,"cfg":3.5,"classes":[1,2],"seeds":"0-3","count":4,"batch":2,"device":"cpu","out":"o","options":{"pag_scale":2.0,"layers":["mid"]}}""");
        Assert.That(result.Errors, Is.Empty);
        var job = result.Jobs.Single();
        Assert.That(job.Line, Is.EqualTo(1));
        Assert.That(job.Model, Is.EqualTo("models/fmnist-unet"));
        Assert.That((job.Sampler, job.SchedulerConfig, job.Steps, job.Cfg, job.Batch, job.Device, job.Out),
            Is.EqualTo(("dpmpp2m", "s.json", (int?)20, (double?)3.5, (int?)2, "cpu", "o")));
        Assert.That(job.Seeds, Is.EqualTo(new ulong[] { 0, 1, 2, 3 }));
        Assert.That(job.Classes, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(job.Options["pag_scale"].GetDouble(), Is.EqualTo(2.0));
        Assert.That(job.Options["layers"][0].GetString(), Is.EqualTo("mid"));
        var images = job.Images();
        Assert.That(images.Select(i => i.Class), Is.EqualTo(new int?[] { 1, 2, 1, 2 }));
        Assert.That(images[3].FileName, Is.EqualTo("seed000003_class2.png"));
    }

    [Test]
    public void SdxlMicroConditioning_ReachesTheRequest()
    {
        var job = ReadLines("""{"model":"m","prompt":"a cat","original_size":[1024,768],"crop_top_left":[0,16],"target_size":[512,512]}""").Jobs.Single();
        var request = job.ToRequest();
        Assert.That((request.OriginalSize, request.CropTopLeft, request.TargetSize), Is.EqualTo((new[] { 1024, 768 }, new[] { 0, 16 }, new[] { 512, 512 })));
        Assert.That(ReadLines("""{"model":"m"}""").Jobs.Single().ToRequest().OriginalSize, Is.Null);
        var negative = ReadLines("""{"model":"m","negative_original_size":[32,32],"negative_crop_top_left":[2,0],"negative_target_size":[24,16]}""").Jobs.Single().ToRequest();
        Assert.That((negative.NegativeOriginalSize, negative.NegativeCropTopLeft, negative.NegativeTargetSize), Is.EqualTo((new[] { 32, 32 }, new[] { 2, 0 }, new[] { 24, 16 })));
        Assert.That(ReadLines("""{"model":"m","negative_target_size":[0,16]}""").Errors.Single().Message, Is.EqualTo("field 'negative_target_size' must be an array of two integers >= 1; got [0,16]"));
        var bad = ReadLines("""{"model":"m","original_size":[1024]}""", """{"model":"m","target_size":[0,512]}""", """{"model":"m","crop_top_left":"0,0"}""", """{"model":"m","crop_top_left":[-1,0]}""");
        Assert.That(bad.Jobs, Is.Empty);
        Assert.That(bad.Errors.Select(e => e.Message), Is.EqualTo(new[]
        {
            "field 'original_size' must be an array of two integers >= 1; got [1024]",
            "field 'target_size' must be an array of two integers >= 1; got [0,512]",
            "field 'crop_top_left' must be an array of two integers >= 0; got \"0,0\"",
            "field 'crop_top_left' must be an array of two integers >= 0; got [-1,0]",
        }));
    }

    [Test]
    public void EtaAndTimesteps_MapOntoTheRequest()
    {
        var job = ReadLines("""{"model":"m","sampler":"tcd","eta":0.3,"timesteps":[999,599,90,19]}""").Jobs.Single();
        var request = job.ToRequest();
        Assert.That((request.Eta, request.Steps), Is.EqualTo(((double?)0.3, 4)));
        Assert.That(request.Timesteps, Is.EqualTo(new[] { 999, 599, 90, 19 }));
        var bad = ReadLines("""{"model":"m","steps":3,"timesteps":[999,500]}""", """{"model":"m","eta":-1}""");
        Assert.That(bad.Errors.Any(e => e.Message.Contains("'timesteps' lists 2")), bad.Errors.FirstOrDefault()?.ToString());
        Assert.That(bad.Errors.Any(e => e.Message.Contains("'eta' must be a number >= 0")), string.Join("; ", bad.Errors));
    }

    [Test]
    public void SingleSeedWithCount_CountsUp()
    {
        var job = ReadLines("""{"model":"m","seed":10,"count":3,"class":4}""").Jobs.Single();
        Assert.That(job.Seeds, Is.EqualTo(new ulong[] { 10, 11, 12 }));
        Assert.That(job.Images().Select(i => i.Class), Is.All.EqualTo(4));
    }

    [Test]
    public void Defaults_OneImageSeedZeroUnconditional()
    {
        var job = ReadLines("""{"model":"m"}""").Jobs.Single();
        Assert.That(job.Seeds, Is.EqualTo(new ulong[] { 0 }));
        Assert.That(job.Classes, Is.Null);
        Assert.That(job.Images().Single().FileName, Is.EqualTo("seed000000.png"));
        Assert.That((job.Sampler, job.Steps, job.Cfg), Is.EqualTo(((string?)null, (int?)null, (double?)null)));
    }

    [Test]
    public void SeedLists_CombineRangesAndNumbers()
    {
        Assert.That(SeedRange.Parse("0-2, 7,9-10"), Is.EqualTo(new ulong[] { 0, 1, 2, 7, 9, 10 }));
        var job = ReadLines("""{"model":"m","seeds":[5,"0-1"],"classes":"3-4"}""").Jobs.Single();
        Assert.That(job.Seeds, Is.EqualTo(new ulong[] { 5, 0, 1 }));
        Assert.That(job.Classes, Is.EqualTo(new[] { 3, 4 }));
    }

    [Test]
    public void BadLines_AreReportedWithLineNumbersAndTheOthersStillRead()
    {
        var result = ReadLines(
            """{"model":"a","seeds":"0-1"}""",
            """{"model":"b", "seeds": """,
            "",
            "# a comment",
            """{"model":"c","colour":"red"}""",
            """{"model":"d","seeds":"5-2"}""",
            """{"model":"e","seeds":"0-x"}""",
            """{"model":"f","steps":0}""",
            """{"seed":1}""",
            """{"model":"g","seeds":"0-3","count":3}""",
            """{"model":"h","seed":1,"seeds":"2"}""",
            """{"model":"i","seeds":"1,1"}""",
            """{"model":"j","cfg":"high"}""",
            """[1,2]""",
            """{"model":"k","seed":3}""");
        Assert.That(result.Jobs.Select(j => (j.Model, j.Line)), Is.EqualTo(new[] { ("a", 1), ("k", 15) }));
        var errors = result.Errors.ToDictionary(e => e.Line, e => e.Message);
        Assert.That(errors.Keys, Is.EqualTo(new[] { 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 }));
        Assert.That(errors[2], Does.Contain("invalid JSON"));
        Assert.That(errors[5], Does.Contain("unknown field 'colour'"));
        Assert.That(errors[6], Does.Contain("'seeds'").And.Contain("5-2"));
        Assert.That(errors[7], Does.Contain("'seeds'").And.Contain("'x'"));
        Assert.That(errors[8], Does.Contain("'steps'"));
        Assert.That(errors[9], Does.Contain("missing required field 'model'"));
        Assert.That(errors[10], Does.Contain("'count'"));
        Assert.That(errors[11], Does.Contain("either 'seed' or 'seeds'"));
        Assert.That(errors[12], Does.Contain("seed 1 appears twice"));
        Assert.That(errors[13], Does.Contain("'cfg'"));
        Assert.That(errors[14], Does.Contain("JSON object"));
        Assert.That(result.Errors[0].ToString(), Does.StartWith("jobs.jsonl:2: "));
    }

    [Test]
    public void ControlNetField_IsReadAndItsErrorsNameTheKey()
    {
        var result = ReadLines(
            """{"model":"a","prompt":"p","controlnet":[{"folder":"cn1","image":"d.png","scale":0.5,"start":0.1,"end":0.9},{"folder":"cn2","image":"e.png"}],"guess_mode":true}""",
            """{"model":"b","prompt":"p","controlnet":{"folder":"cn1"}}""",
            """{"model":"c","prompt":"p","controlnet":{"folder":"cn1","image":"d.png","start":0.8,"end":0.3}}""",
            """{"model":"d","prompt":"p","controlnet":{"folder":"cn1","image":"d.png","end":1.5}}""",
            """{"model":"e","prompt":"p","controlnet":{"folder":"cn1","image":"d.png","start":-0.1}}""",
            """{"model":"f","prompt":"p","controlnet":{"folder":"cn1","image":"d.png","weight":1}}""",
            """{"model":"g","prompt":"p","controlnet":[]}""",
            """{"model":"h","prompt":"p","controlnet":["cn1"]}""",
            """{"model":"i","prompt":"p","guess_mode":true}""");
        var job = result.Jobs.Single();
        Assert.That(job.ControlNets.Select(n => (n.Folder, n.Image, n.Scale, n.Start, n.End)),
            Is.EqualTo(new[] { ("cn1", "d.png", 0.5, 0.1, 0.9), ("cn2", "e.png", 1.0, 0.0, 1.0) }));
        Assert.That(job.GuessMode, Is.True);
        var errors = result.Errors.ToDictionary(e => e.Line, e => e.Message);
        Assert.That(errors.Keys, Is.EqualTo(new[] { 2, 3, 4, 5, 6, 7, 8, 9 }));
        Assert.That(errors[2], Does.Contain("'controlnet'").And.Contain("'folder' and 'image'"), "an entry without its image");
        Assert.That(errors[3], Does.Contain("'controlnet'").And.Contain("start 0.8 must be below end 0.3"));
        Assert.That(errors[4], Does.Contain("'controlnet'").And.Contain("'end'").And.Contain("[0, 1]"));
        Assert.That(errors[5], Does.Contain("'controlnet'").And.Contain("'start'").And.Contain("[0, 1]"));
        Assert.That(errors[6], Does.Contain("unknown key 'weight'"));
        Assert.That(errors[7], Does.Contain("'controlnet' is an empty array"));
        Assert.That(errors[8], Does.Contain("'controlnet' must hold objects"));
        Assert.That(errors[9], Does.Contain("'guess_mode' needs 'controlnet'"));
    }

    [Test]
    public void HugeSeedRange_IsRejectedWithoutExpanding() =>
        Assert.That(() => SeedRange.Parse("0-18446744073709551615"), Throws.TypeOf<FormatException>().With.Message.Contains("more than"));

    [Test]
    public void Parse_ThrowsWithTheLineNumber() =>
        Assert.That(() => JobFile.Parse("""{"model":"m","bogus":1}""", 7),
            Throws.TypeOf<FormatException>().With.Message.Contains("line 7").And.Message.Contains("'bogus'"));

    [Test]
    public void Read_MissingFileNamesIt() =>
        Assert.That(() => JobFile.Read("/nonexistent/jobs.jsonl"), Throws.TypeOf<IOException>().With.Message.Contains("/nonexistent/jobs.jsonl"));

    [Test]
    public void Resume_ListsExistingImagesAndIgnoresTemporaryAndEmptyFiles()
    {
        string dir = Path.Combine(Path.GetTempPath(), "engine-resume-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var job = JobFile.Parse("""{"model":"m","seeds":"0-4","class":1}""");
            var names = job.Images().Select(i => i.FileName).ToArray();
            File.WriteAllBytes(Path.Combine(dir, names[0]), [1]);
            File.WriteAllBytes(Path.Combine(dir, names[3]), [1]);
            File.WriteAllBytes(Path.Combine(dir, names[4]), []); // empty: not a finished image
            File.WriteAllBytes(Path.Combine(dir, $".{names[1]}.123.abc{Engine.Imaging.AtomicFile.TempSuffix}"), [1]);
            var (done, pending) = JobResume.Check(job, dir);
            Assert.That(done.Select(i => i.Index), Is.EqualTo(new[] { 0, 3 }));
            Assert.That(pending.Select(i => i.Index), Is.EqualTo(new[] { 1, 2, 4 }));
            Assert.That(pending.Select(i => i.Seed), Is.EqualTo(new ulong[] { 1, 2, 4 }));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void Resume_OfAMissingFolderHasEverythingPending()
    {
        var job = JobFile.Parse("""{"model":"m","seeds":"0-2"}""");
        var (done, pending) = JobResume.Check(job, Path.Combine(Path.GetTempPath(), "engine-none-" + Guid.NewGuid().ToString("N")));
        Assert.That((done.Count, pending.Count), Is.EqualTo((0, 3)));
    }

    [Test]
    public void RequestFieldsSharedWithTheSidecar_ReachTheRequest()
    {
        var job = ReadLines("""{"model":"m","sampler":"tcd","eta":0.25,"timesteps":[999,499],"clip_skip":2,"original_size":[64,48],"crop_top_left":[2,4],"target_size":[32,32],"negative_original_size":[16,16],"negative_crop_top_left":[1,0],"negative_target_size":[24,24]}""").Jobs.Single();
        var request = job.ToRequest();
        Assert.That((request.Eta, request.Timesteps, request.ClipSkip, request.Steps), Is.EqualTo(((double?)0.25, new[] { 999, 499 }, (int?)2, 2)));
        Assert.That((request.OriginalSize, request.CropTopLeft, request.TargetSize), Is.EqualTo((new[] { 64, 48 }, new[] { 2, 4 }, new[] { 32, 32 })));
        Assert.That((request.NegativeOriginalSize, request.NegativeCropTopLeft, request.NegativeTargetSize), Is.EqualTo((new[] { 16, 16 }, new[] { 1, 0 }, new[] { 24, 24 })));
        Assert.That(Engine.Generation.RequestFields.All.Select(f => f.Name), Is.SubsetOf(JobFile.Fields));
        var bad = ReadLines("""{"model":"m","clip_skip":-1}""", """{"model":"m","timesteps":[]}""", """{"model":"m","timesteps":5}""", """{"model":"m","eta":0.1,"eta":0.2}""");
        Assert.That(bad.Errors.Select(e => e.Message), Is.EqualTo(new[]
        {
            "field 'clip_skip' must hold integers >= 0; got -1",
            "field 'timesteps' is empty",
            "field 'timesteps' must be an array of integers; got Number",
            "field 'eta' appears twice",
        }));
    }
}
