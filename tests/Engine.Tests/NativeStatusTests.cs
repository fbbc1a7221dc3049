using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Native;

namespace Engine.Tests;

/// <summary>
/// The C ABI's managed entry points (what libengine calls through hostfxr), called through function pointers as
/// the C side does: every malformed model folder gets the status engine.h documents for it, never ENGINE_INTERNAL,
/// and samples gone NaN get ENGINE_NON_FINITE.
/// </summary>
public unsafe class NativeStatusTests
{
    // engine_status values of engine.h.
    private const int Ok = 0, InvalidArgument = 1, NotFound = 2, Unsupported = 5, InvalidData = 7, Internal = 9, NonFinite = 10;

    [ThreadStatic] private static string? t_lastError;

    [UnmanagedCallersOnly]
    private static void SetError(byte* text) => t_lastError = Marshal.PtrToStringUTF8((nint)text);

    private nint _context;
    private string _scratch = "";

    [OneTimeSetUp]
    public void CreateContext()
    {
        delegate* unmanaged<delegate* unmanaged<byte*, void>, int, int, int> initialize = &NativeExports.Initialize;
        Assert.That(initialize(&SetError, sizeof(NativeOptions), sizeof(NativeRequest)), Is.EqualTo(Ok));
        delegate* unmanaged<byte*, byte*, nint*, int> create = &NativeExports.CreateContext;
        nint context;
        fixed (byte* cpu = "cpu\0"u8) Assert.That(create(cpu, null, &context), Is.EqualTo(Ok), t_lastError);
        _context = context;
        _scratch = Path.Combine(Path.GetTempPath(), $"engine-native-{Guid.NewGuid():N}");
    }

    [OneTimeTearDown]
    public void Release()
    {
        delegate* unmanaged<nint, int> release = &NativeExports.ReleaseContext;
        if (_context != 0) release(_context);
        if (Directory.Exists(_scratch)) Directory.Delete(_scratch, recursive: true);
    }

    private (int Status, string Error, nint Model) Load(string folder)
    {
        delegate* unmanaged<nint, byte*, nint*, int> load = &NativeExports.LoadModel;
        nint model = 0;
        t_lastError = null;
        var path = Encoding.UTF8.GetBytes(folder + "\0");
        int status;
        fixed (byte* p = path) status = load(_context, p, &model);
        return (status, t_lastError ?? "", model);
    }

    private string Folder([CallerMemberName] string name = "") => Path.Combine(_scratch, name);

    private static IEnumerable<TestCaseData> MalformedFolders()
    {
        TestCaseData Case(string name, int status, string inError, Func<string, string> make) =>
            new TestCaseData(make, status, inError).SetName($"LoadModel({name})");
        yield return Case("truncated weights", InvalidData, BrokenModels.Weights, f =>
        {
            BrokenModels.Copy(f);
            var weights = Path.Combine(f, BrokenModels.Weights);
            var bytes = File.ReadAllBytes(weights);
            File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
            return f;
        });
        yield return Case("bad JSON", InvalidData, "not valid JSON", f =>
        {
            BrokenModels.Copy(f);
            File.WriteAllText(Path.Combine(f, "config.json"), "{\"_class_name\": \"UNet2DModel\",");
            return f;
        });
        yield return Case("missing tensor", InvalidData, "'conv_in.bias'", f => BrokenModels.WithWeights(f, e => e.Where(t => t.Name != "conv_in.bias")));
        yield return Case("NaN weight", InvalidData, "NaN or infinity", f => BrokenModels.WithNaNWeight(f, BrokenModels.SomeTensor));
        yield return Case("unknown class", InvalidArgument, "UNet9000", f => BrokenModels.WithConfig(f, "_class_name", "UNet9000"));
        yield return Case("no config.json", NotFound, "config.json", f =>
        {
            BrokenModels.Copy(f);
            File.Delete(Path.Combine(f, "config.json"));
            return f;
        });
        yield return Case("no weights", NotFound, BrokenModels.Weights, f =>
        {
            BrokenModels.Copy(f);
            File.Delete(Path.Combine(f, BrokenModels.Weights));
            return f;
        });
        yield return Case("bad scheduler_config.json", InvalidData, "scheduler_config.json", f =>
        {
            BrokenModels.Copy(f);
            File.WriteAllText(Path.Combine(f, "scheduler_config.json"), "[1, 2");
            return f;
        });
        yield return Case("missing folder", NotFound, "does not exist", f => f);
        yield return Case("scheduler_config value out of range", InvalidData, "beta_start 0.5 must be less than beta_end 0.1", f =>
        {
            BrokenModels.Copy(f);
            string path = Path.Combine(f, "scheduler_config.json");
            var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            config["beta_start"] = 0.5;
            config["beta_end"] = 0.1;
            File.WriteAllText(path, config.ToJsonString());
            return f;
        });
        yield return Case("config.json value out of range", InvalidData, "'in_channels' = -1 is invalid; expected an integer from 1 to 65536", f => BrokenModels.WithConfig(f, "in_channels", -1));
        yield return Case("a plain file", InvalidArgument, "is a file, not a model", f =>
        {
            Directory.CreateDirectory(f);
            File.WriteAllText(Path.Combine(f, "notes.txt"), "x");
            return Path.Combine(f, "notes.txt");
        });
        yield return Case("pipeline with bad model_index.json", InvalidData, "model_index.json", f =>
        {
            CopyTree(Path.Combine(Fixtures.RequireRoot(), "pipelines", "sd_tiny", "pipeline"), f);
            File.WriteAllText(Path.Combine(f, "model_index.json"), "{\"_class_name\": ");
            return f;
        });
        yield return Case("pipeline missing a component", NotFound, "vae", f =>
        {
            CopyTree(Path.Combine(Fixtures.RequireRoot(), "pipelines", "sd_tiny", "pipeline"), f);
            Directory.Delete(Path.Combine(f, "vae"), recursive: true);
            return f;
        });
        yield return Case("truncated single file", InvalidData, "sd_tiny_f32.safetensors", f =>
        {
            Directory.CreateDirectory(f);
            var bytes = File.ReadAllBytes(Path.Combine(Fixtures.RequireRoot(), "single_file", "sd_tiny_f32.safetensors"));
            string file = Path.Combine(f, "sd_tiny_f32.safetensors");
            File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);
            return file;
        });
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(from, to));
    }

    [TestCaseSource(nameof(MalformedFolders))]
    public void MalformedModelGetsItsDocumentedStatus(Func<string, string> make, int status, string inError)
    {
        string folder = make(Folder() + "-" + status + "-" + Guid.NewGuid().ToString("N")[..6]);
        var (got, error, model) = Load(folder);
        Assert.That(model, Is.EqualTo((nint)0), "no model handle on failure");
        Assert.That(got, Is.Not.EqualTo(Internal), error);
        Assert.That(got, Is.EqualTo(status), error);
        Assert.That(error, Does.Contain(inError));
    }

    private static readonly List<(int Index, float[] Pixels)> s_images = [];

    [UnmanagedCallersOnly]
    private static int OnImage(int index, float* pixels, nuint length, void* stopAfter)
    {
        s_images.Add((index, new ReadOnlySpan<float>(pixels, (int)length).ToArray()));
        return s_images.Count >= *(int*)stopAfter ? 1 : 0;
    }

    [Test]
    public void ImageCallbackHandsOutFinishedImagesBeforeACancel()
    {
        var (status, error, model) = Load(Path.Combine(TestPaths.Models, "fmnist-unet"));
        Assert.That(status, Is.EqualTo(Ok), error);
        delegate* unmanaged<nint, nint, NativeRequest*, float*, nuint, int> generate = &NativeExports.Generate;
        delegate* unmanaged<nint, delegate* unmanaged<int, float*, nuint, void*, int>, void*, int> setImage = &NativeExports.SetImageCallback;
        try
        {
            var request = new NativeRequest { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Seed = 9, Count = 5, BatchSize = 2 };
            var whole = new float[5 * 28 * 28];
            fixed (float* p = whole) Assert.That(generate(_context, model, &request, p, (nuint)whole.Length), Is.EqualTo(Ok), t_lastError);

            // The host stops the run from the callback after the third image: images 0-2 were handed out whole.
            int stopAfter = 3;
            s_images.Clear();
            Assert.That(setImage(_context, &OnImage, &stopAfter), Is.EqualTo(Ok));
            var pixels = new float[whole.Length];
            fixed (float* p = pixels) status = generate(_context, model, &request, p, (nuint)pixels.Length);
            Assert.That(setImage(_context, null, null), Is.EqualTo(Ok));
            Assert.That(status, Is.EqualTo(4 /* ENGINE_CANCELLED */), t_lastError);
            Assert.That(s_images.Select(i => i.Index), Is.EqualTo(new[] { 0, 1, 2 }), "no image after the stop");
            foreach (var (index, image) in s_images)
                Assert.That(image, Is.EqualTo(whole.AsSpan(index * 784, 784).ToArray()), $"image {index} equals the uncancelled run's");
        }
        finally
        {
            setImage(_context, null, null);
            delegate* unmanaged<nint, nint, int> release = &NativeExports.ReleaseModel;
            Assert.That(release(_context, model), Is.EqualTo(Ok));
        }
    }

    [Test]
    public void PrecisionTheDeviceCannotDoIsUnsupportedAndUnknownValuesAreInvalid()
    {
        var (status, error, model) = Load(Path.Combine(TestPaths.Models, "fmnist-unet"));
        Assert.That(status, Is.EqualTo(Ok), error);
        delegate* unmanaged<nint, nint, NativeRequest*, float*, nuint, int> generate = &NativeExports.Generate;
        delegate* unmanaged<nint, nint, NativeRequest*, int*, int> shape = &NativeExports.OutputShape;
        try
        {
            var pixels = new float[28 * 28];
            int Run(NativeRequest request)
            {
                t_lastError = null;
                fixed (float* p = pixels) return generate(_context, model, &request, p, (nuint)pixels.Length);
            }
            int Shape(NativeRequest request)
            {
                t_lastError = null;
                int* dims = stackalloc int[4];
                return shape(_context, model, &request, dims);
            }
            var request = new NativeRequest { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Count = 1, Seed = 4 };
            Assert.That(Run(request), Is.EqualTo(Ok), t_lastError);
            var plain = (float[])pixels.Clone();
            Assert.That(Run(request with { Precision = 1 /* F32 */ }), Is.EqualTo(Ok), t_lastError);
            Assert.That(pixels, Is.EqualTo(plain), "explicit f32 is the CPU's default");

            // The managed CPU device computes with float32 activations: a valid half precision is UNSUPPORTED, before any work.
            foreach (var (value, name) in new[] { (2, "ENGINE_PRECISION_F16"), (3, "ENGINE_PRECISION_BF16") })
            {
                Assert.That(Run(request with { Precision = value }), Is.EqualTo(Unsupported), t_lastError);
                Assert.That(t_lastError, Does.Contain($"request.precision {name}").And.Contain("f32 activations only"));
                Assert.That(Shape(request with { Precision = value }), Is.EqualTo(Unsupported), t_lastError);
            }
            Assert.That(Run(request with { Precision = 4 }), Is.EqualTo(InvalidArgument), t_lastError);
            Assert.That(t_lastError, Does.Contain("request.precision 4 is not an engine_precision"));
            Assert.That(Shape(request with { Compute = 3 }), Is.EqualTo(InvalidArgument), t_lastError);
            Assert.That(t_lastError, Does.Contain("request.compute 3 is not an engine_compute"));
            var cpu = TestDevices.Get("cpu");
            if (cpu.ComputeUnavailableReason(Engine.Core.ComputePrecision.Bf16) is { } reason)
            {
                Assert.That(Run(request with { Compute = 1 /* BF16 */ }), Is.EqualTo(Unsupported), t_lastError);
                Assert.That(t_lastError, Does.Contain("request.compute ENGINE_COMPUTE_BF16").And.Contain(reason));
            }
            else
            {
                // Two steps from sigma_max amplify bf16's rounding of the first noise prediction (x0 = x - sigma eps), so no
                // tolerance here: test_precision.c and PipelineReferenceTests bound bf16 on the tiny pipelines (2e-2).
                Assert.That(Run(request with { Compute = 1 /* BF16 */ }), Is.EqualTo(Ok), t_lastError);
                Assert.That(pixels.All(float.IsFinite), Is.True);
                Assert.That(pixels, Is.Not.EqualTo(plain), "bf16 compute reached the kernels");
            }
            Assert.That(Run(request), Is.EqualTo(Ok), t_lastError);
            Assert.That(pixels, Is.EqualTo(plain), "the request's compute mode is not kept for the next one");
        }
        finally
        {
            delegate* unmanaged<nint, nint, int> release = &NativeExports.ReleaseModel;
            Assert.That(release(_context, model), Is.EqualTo(Ok));
        }
    }

    [Test]
    public void SamplesGoneNaNReturnNonFinite()
    {
        var (status, error, model) = Load(BrokenModels.Overflowing(Folder()));
        Assert.That(status, Is.EqualTo(Ok), error);
        try
        {
            var request = new NativeRequest { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Count = 2 };
            var pixels = new float[2 * 28 * 28];
            delegate* unmanaged<nint, nint, NativeRequest*, float*, nuint, int> generate = &NativeExports.Generate;
            t_lastError = null;
            fixed (float* p = pixels) status = generate(_context, model, &request, p, (nuint)pixels.Length);
            Assert.That(status, Is.EqualTo(NonFinite), t_lastError);
            Assert.That(t_lastError, Does.Contain("NaN or infinite at step 1 of 2"));
        }
        finally
        {
            delegate* unmanaged<nint, nint, int> release = &NativeExports.ReleaseModel;
            Assert.That(release(_context, model), Is.EqualTo(Ok));
        }
    }
}
