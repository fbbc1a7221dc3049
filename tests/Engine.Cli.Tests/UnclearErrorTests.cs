using System.Text.Json.Nodes;

namespace Engine.Cli.Tests;

/// <summary>
/// The unclear errors of the hostile-user run that remained: empty paths, folders given for files, files given
/// for models, outputs that could not be written until the work was done, and sizes the network refused only at
/// its first step. Each fails before any work with the option or field named and what it accepts.
/// </summary>
[TestFixture]
public sealed class UnclearErrorTests
{
    private static void FailsBeforeWork(Cli.Result r, int code, params string[] message)
    {
        Assert.That(r.Code, Is.EqualTo(code), r.ToString);
        foreach (var m in message) Assert.That(r.Err, Does.Contain(m), r.ToString);
        Assert.That(r.Err, Does.Not.Contain("(Parameter '"), "no .NET argument text");
        Assert.That(r.Out + r.Err, Does.Not.Match(@"step \d+/\d+").And.Not.Contain("wrote").And.Not.Contain("rms error"), "no work may start");
    }

    private static string Fixture(params string[] parts) => Path.Combine([Fixtures.RequireRoot(), .. parts]);

    private static string UnetIo => Fixture("models", "unet2d_tiny", "io.safetensors");

    private static string Gaussian => Fixture("schedulers", "ddim_lin_x0_n5.safetensors");

    // Was "The value cannot be an empty string. (Parameter 'path')" (exit 1), naming no option.
    [TestCase("generate", "--out", "a folder path")]
    [TestCase("generate", "--output-tensor", "a file path")]
    [TestCase("generate", "--init-noise", "a file path")]
    [TestCase("generate", "--scheduler-config", "a file path")]
    [TestCase("generate", "--from-sidecar", "a file path")]
    [TestCase("forward", "--inputs", "a file path")]
    [TestCase("forward", "--output", "a file path")]
    public void EmptyPathOptionIsAUsageErrorNamingIt(string command, string option, string kind)
    {
        using var scratch = new Cli.Scratch();
        string[] args = command == "forward"
            ? ["forward", "--model", Fixture("models", "unet2d_tiny", "model"), "--inputs", UnetIo, "--output", scratch["o.safetensors"]]
            : ["generate", "--steps", "1", "--count", "1", "--out", scratch["o"]];
        int at = Array.IndexOf(args, option);
        args = at >= 0 ? [.. args[..(at + 1)], "", .. args[(at + 2)..]] : [.. args, option, ""];
        FailsBeforeWork(Cli.Run(args), 2, $"{option} is empty; give {kind}");
    }

    [TestCase("inspect", "FILE.safetensors|PIPELINE_DIR")]
    [TestCase("batch", "JOBS.jsonl")]
    [TestCase("convert", "CHECKPOINT.safetensors")]
    public void EmptyFileArgumentIsAUsageError(string command, string name) =>
        FailsBeforeWork(Cli.Run(command == "convert" ? [command, "", "--out", Path.GetTempPath()] : [command, ""]), 2, $"the {name} argument is empty");

    // Was found only after sampling: the images were written, then the tensor file failed ("Is a directory").
    [Test]
    public void OutputTensorThatCannotBeWrittenFailsBeforeSampling()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--steps", "1", "--count", "1", "--out", scratch["o"], "--output-tensor", scratch.Path), 1,
            $"--output-tensor {scratch.Path}: is a folder; give a file path");
        FailsBeforeWork(Cli.Run("generate", "--steps", "1", "--count", "1", "--out", scratch["o"], "--output-tensor", scratch["no/x.safetensors"]), 1,
            $"folder '{scratch["no"]}' does not exist");
        Assert.That(Directory.Exists(scratch["o"]), Is.False, "no image was made");
    }

    // forward ran the model first, solver-bench the whole run, noise every draw; then "Is a directory : '...'".
    [TestCase("forward")]
    [TestCase("solver-bench")]
    [TestCase("noise")]
    public void OutputFolderGivenForAFileFailsBeforeTheWork(string command)
    {
        using var scratch = new Cli.Scratch();
        string[] args = command switch
        {
            "forward" => ["forward", "--model", Fixture("models", "unet2d_tiny", "model"), "--inputs", UnetIo, "--output", scratch.Path],
            "solver-bench" => ["solver-bench", "--gaussian", Gaussian, "--samplers", "euler", "--steps", "5", "--output", scratch.Path],
            _ => ["noise", "--seed", "1", "--shape", "1,4", "--output", scratch.Path],
        };
        FailsBeforeWork(Cli.Run(args), 1, $"--output {scratch.Path}: is a folder; give a file path");
    }

    // Was "job failed: The file '...' already exists." after the job's images were sampled.
    [Test]
    public void BatchJobOutOnAFileFailsBeforeSampling()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["file"], "x");
        File.WriteAllText(scratch["jobs.jsonl"], $$"""{"model": "fmnist-unet", "steps": 1, "out": "{{scratch["file"]}}"}""" + "\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"]);
        Assert.That(r.Code, Is.EqualTo(1), r.ToString);
        Assert.That(r.Err, Does.Contain($"field 'out' {scratch["file"]}: '{scratch["file"]}' is a file"), r.ToString);
        Assert.That(r.Out, Does.Contain("0 images written"));
        Assert.That(r.Out + r.Err, Does.Not.Contain("step 1/1"), "the job never sampled");
    }

    // Each was "... does not exist" for a folder that exists.
    [Test]
    public void LoraFolderIsNamedAsAFolder()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--lora", scratch.Path, "--steps", "1", "--count", "1", "--out", scratch["o"]), 1, "--lora file is a folder; expected a file");
        File.WriteAllText(scratch["jobs.jsonl"], $$"""{"model": "fmnist-unet", "steps": 1, "lora": "{{scratch.Path}}"}""" + "\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--out", scratch["b"]);
        Assert.That(r.Err, Does.Contain($"LoRA file '{scratch.Path}' is a folder; expected a safetensors file"), r.ToString);
    }

    [Test]
    public void InitImageFolderIsNamedAsAFolder()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--init-image", scratch.Path, "--steps", "1", "--count", "1", "--out", scratch["o"]), 1,
            "(--init-image) is a folder; expected a PNG or safetensors file");
    }

    [Test]
    public void FolderGivenForAnInputFileIsNamedAsAFolder()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("convert", scratch.Path, "--out", scratch["o"]), 1, "checkpoint is a folder; expected a file");
        FailsBeforeWork(Cli.Run("solver-bench", "--gaussian", scratch.Path, "--samplers", "euler", "--steps", "5"), 1, "Gaussian spec (--gaussian) is a folder");
        FailsBeforeWork(Cli.Run("solver-bench", "--gaussian", Gaussian, "--scheduler-config", scratch.Path, "--steps", "5"), 1, "scheduler config (--scheduler-config) is a folder");
    }

    // Was "model folder '...' does not exist" for a file that exists.
    [Test]
    public void FileThatIsNotACheckpointIsNamedAsAFile()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["notes.txt"], "x");
        FailsBeforeWork(Cli.Run("generate", "--model", scratch["notes.txt"], "--steps", "1", "--count", "1", "--out", scratch["o"]), 1,
            $"--model '{scratch["notes.txt"]}' is a file, not a model", "single-file checkpoint (.safetensors)");
    }

    // Was "sample Tensor[2, 1, 30, 28] F32 on cpu ...: height and width must be multiples of 4", at the first step.
    [TestCase("fmnist-unet", "--height", "image size 30x28 (--height/--width) must be a multiple of 4", "its downsampling")]
    [TestCase("fmnist-dit", "--width", "image size 28x30 (--height/--width) must be a multiple of 4", "its patch size")]
    public void SizeTheNetworkCannotTakeIsRefusedBeforeSampling(string model, string option, string message, string why)
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--model", model, option, "30", "--steps", "1", "--count", "1", "--out", scratch["o"]), 1, message, why);
    }

    // sample_size 3 failed at the first step with a tensor dump; 65536 said "image size 0x0 must be between 1 and 4096".
    [TestCase(3, "image size 3x3 (the model's sample_size 3 (config.json)) must be a multiple of 4")]
    [TestCase(65536, "the model's sample_size 65536 (config.json of", "give --height and --width from 1 to 4096")]
    public void SampleSizeTheRunCannotUseIsNamed(int sampleSize, params string[] message)
    {
        using var scratch = new Cli.Scratch();
        string model = scratch["model"];
        Directory.CreateDirectory(model);
        string source = Path.Combine(ModelLocator.ModelsRoot()!, "fmnist-unet");
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!.AsObject();
        config["sample_size"] = sampleSize;
        File.WriteAllText(Path.Combine(model, "config.json"), config.ToJsonString());
        FailsBeforeWork(Cli.Run("generate", "--model", model, "--steps", "1", "--count", "1", "--out", scratch["o"]), 1, message);
    }

    private static Cli.Result FromSidecar(Cli.Scratch scratch, string fields)
    {
        string model = Path.Combine(ModelLocator.ModelsRoot()!, "fmnist-unet").Replace("\\", "\\\\");
        File.WriteAllText(scratch["s.json"], $$"""{"file": "s.png", "model": "{{model}}", "sample_index": 0, "request_count": 1, {{fields}}}""");
        return Cli.Run("generate", "--from-sidecar", scratch["s.json"], "--out", scratch["o"]);
    }

    // Was "not an image sidecar: The JSON value could not be converted to System.UInt64. Path: $.seed | LineNumber: 0 | ...".
    [TestCase("\"seed\": -1, \"steps\": 2, \"cfg\": 1, \"sampler\": \"euler\"", "field 'seed' = -1 is invalid; expected an integer from 0 to 18446744073709551615")]
    [TestCase("\"seed\": 0, \"steps\": \"2\", \"cfg\": 1, \"sampler\": \"euler\"", "field 'steps' = \"2\" is invalid; expected an integer")]
    [TestCase("\"seed\": 0, \"steps\": 2, \"cfg\": \"high\", \"sampler\": \"euler\"", "field 'cfg' = \"high\" is invalid; expected a number")]
    [TestCase("\"seed\": 0, \"steps\": 2, \"cfg\": 1, \"sampler\": \"euler\", \"options\": [5]", "field 'options[0]' is invalid; expected a string")]
    public void SidecarFieldOfTheWrongTypeIsNamed(string fields, string message)
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(FromSidecar(scratch, fields), 1, message);
    }

    // A missing cfg meant guidance 0 and a missing sampler the default one, silently; steps 0 said "needs 'steps'".
    [TestCase("\"seed\": 0, \"steps\": 2, \"sampler\": \"euler\"", "no 'cfg'; a sidecar records the guidance scale")]
    [TestCase("\"seed\": 0, \"steps\": 2, \"cfg\": 1", "neither 'sampler' nor 'scheduler_config'")]
    [TestCase("\"seed\": 0, \"steps\": 0, \"cfg\": 1, \"sampler\": \"euler\"", "steps 0 must be from 1 to 1000")]
    [TestCase("\"seed\": 0, \"steps\": 2, \"cfg\": 1, \"sampler\": \"ddim\", \"eta\": -1", "eta -1 must be a finite number >= 0")]
    public void SidecarMissingOrOutOfRangeSettingIsRefused(string fields, string message)
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(FromSidecar(scratch, fields), 1, message);
    }

    // Was "engine generate: s.json: generate: unknown sampler ''...": the command's name twice.
    [Test]
    public void SidecarWithAnEmptySamplerNamesTheCommandOnce()
    {
        using var scratch = new Cli.Scratch();
        var r = FromSidecar(scratch, "\"seed\": 0, \"steps\": 2, \"cfg\": 1, \"sampler\": \"\"");
        FailsBeforeWork(r, 1, $"engine generate: {scratch["s.json"]}: unknown sampler ''");
        Assert.That(r.Err.Split("generate:").Length - 1, Is.EqualTo(1), r.ToString);
    }

    // Was ignored silently on a model that is not an SDXL pipeline.
    [Test]
    public void MicroConditioningOnAPlainModelIsRefused()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--original-size", "64,64", "--steps", "1", "--count", "1", "--out", scratch["o"]), 1,
            "(--original-size, --crop-top-left, --target-size) are SDXL micro-conditioning", "(UNet2DModel) does not take them");
    }

    // Was "The number of inference steps cannot exceed num_train_timesteps (10). (Parameter 'steps') Actual value was 20."
    [Test]
    public void StepsBeyondTheTrainingScheduleNameTheOption()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["s.json"], """{"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 10}""");
        var r = Cli.Run("generate", "--scheduler-config", scratch["s.json"], "--steps", "20", "--count", "1", "--out", scratch["o"]);
        FailsBeforeWork(r, 1, "20 inference steps (--steps) cannot exceed the scheduler config's num_train_timesteps (10).");
        Assert.That(r.Err, Does.Not.Contain("Actual value"));
    }
}
