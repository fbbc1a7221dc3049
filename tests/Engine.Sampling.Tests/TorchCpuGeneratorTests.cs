using System.Text.Json;
using Engine.Sampling.Rng;

namespace Engine.Sampling.Tests;

/// <summary>
/// <see cref="TorchCpuGenerator"/> against PyTorch 1.13's recorded CPU streams (fixtures/rng): raw MT19937
/// words, every randn/rand sequence (AVX2 kernel bit-exact, portable kernel within 1 ulp of glibc's),
/// float16 draws and diffusers' randn_tensor with one generator or a list of them.
/// </summary>
[TestFixture]
public class TorchCpuGeneratorTests
{
    private static JsonElement Cases => Fixtures.Json("rng/cpu_randn.json");

    private static IEnumerable<TestCaseData> CaseIndices() =>
        Fixtures.Root is null || !File.Exists(Path.Combine(Fixtures.Root, "rng", "cpu_randn.json")) ? [] :
        Cases.GetProperty("cases").EnumerateArray().Select(c => new TestCaseData(c.GetProperty("case").GetInt32())
            .SetName($"{{m}}(case {c.GetProperty("case").GetInt32()}, {c.GetProperty("kind").GetString()}, seed {c.GetProperty("seed").GetUInt64()})"));

    [Test]
    public void RawWordsMatchMt19937Fixture()
    {
        foreach (var seed in Fixtures.Json("rng/mt19937.json").GetProperty("seeds").EnumerateObject())
        {
            var s = seed.Value.GetProperty("seed_passed_to_manual_seed").GetUInt64();
            var g = new TorchCpuGenerator(s);
            Assert.That(g.InitialSeed, Is.EqualTo(seed.Value.GetProperty("initial_seed").GetUInt64()), $"initial_seed {s}");
            var want = seed.Value.GetProperty("first_16_raw_u32").EnumerateArray().Select(v => v.GetUInt32()).ToArray();
            var got = Enumerable.Range(0, want.Length).Select(_ => g.Random32()).ToArray();
            Assert.That(got, Is.EqualTo(want), $"seed {s}");
        }
    }

    [Test]
    public void SeedsDifferingByTwoToThe32GiveOneStream()
    {
        var a = new TorchCpuGenerator(42);
        var b = new TorchCpuGenerator((1UL << 32) + 42);
        float[] x = new float[40], y = new float[40];
        a.Randn(x);
        b.Randn(y);
        Assert.That(y, Is.EqualTo(x));
        Assert.That(b.InitialSeed, Is.EqualTo((1UL << 32) + 42));
    }

    [Test]
    public void ManualSeedRestartsTheStreamAndEmptiesTheCache()
    {
        var g = new TorchCpuGenerator(7);
        var first = new float[3];
        g.Randn(first); // leaves a cached sine
        g.ManualSeed(7);
        var again = new float[3];
        g.Randn(again);
        Assert.That(again, Is.EqualTo(first));
    }

    [TestCaseSource(nameof(CaseIndices))]
    public void Avx2KernelIsBitExact(int index) => CheckCase(index, TorchNormalKernel.Avx2);

    [TestCaseSource(nameof(CaseIndices))]
    public void PortableKernelWithinOneUlp(int index) => CheckCase(index, TorchNormalKernel.Portable);

    private static void CheckCase(int index, TorchNormalKernel kernel)
    {
        var c = Cases.GetProperty("cases").EnumerateArray().Single(e => e.GetProperty("case").GetInt32() == index);
        using var t = Fixtures.Tensors("rng/cpu_randn.safetensors");
        var g = new TorchCpuGenerator(c.GetProperty("seed").GetUInt64(), kernel);
        foreach (var call in c.GetProperty("calls").EnumerateArray())
        {
            var op = call.GetProperty("op").GetString();
            int n = call.GetProperty("numel").GetInt32();
            var name = call.GetProperty("tensor").GetString()!;
            var label = $"call {call.GetProperty("call").GetInt32()} {op} {n}";
            if (op == "rand_f64")
            {
                var d = new double[n];
                g.Rand(d);
                var want = call.GetProperty("values_f64").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.That(d, Is.EqualTo(want), label);
                continue;
            }
            var got = new float[n];
            switch (op)
            {
                case "randn": g.Randn(got); break;
                case "randn_f16": g.RandnHalf(got); break;
                case "rand": g.Rand(got); break;
                default: Assert.Fail($"unknown op {op}"); break;
            }
            bool portable = kernel == TorchNormalKernel.Portable && t.Contains(name + ".scalar");
            var expected = t.ReadFloats(portable ? name + ".scalar" : name);
            if (portable) AssertWithinUlps(got, expected, 1, label);
            else AssertBitExact(got, expected, label);
        }
    }

    [Test]
    public void DiffusersRandnTensor([Values] TorchNormalKernel kernel)
    {
        using var t = Fixtures.Tensors("rng/cpu_randn.safetensors");
        foreach (var list in Fixtures.Json("rng/cpu_randn.json").GetProperty("randn_tensor_lists").EnumerateArray())
        {
            var shape = list.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            var seeds = list.GetProperty("seeds").EnumerateArray().Select(v => v.GetUInt64()).ToArray();
            int total = shape.Aggregate(1, (a, b) => a * b), item = total / shape[0];
            var perImage = new float[total];
            for (int i = 0; i < seeds.Length; i++) new TorchCpuGenerator(seeds[i], kernel).Randn(perImage.AsSpan(i * item, item));
            var batch = new float[total];
            new TorchCpuGenerator(seeds[0], kernel).Randn(batch);
            foreach (var (got, key) in new[] { (perImage, "list_of_generators"), (batch, "single_generator") })
            {
                var name = list.GetProperty(key).GetProperty("tensor").GetString()!;
                if (kernel == TorchNormalKernel.Portable && t.Contains(name + ".scalar")) AssertWithinUlps(got, t.ReadFloats(name + ".scalar"), 1, name);
                else AssertBitExact(got, t.ReadFloats(name), name);
            }
        }
    }

    private static void AssertBitExact(float[] got, float[] want, string label)
    {
        Assert.That(got, Has.Length.EqualTo(want.Length), label);
        int bad = Enumerable.Range(0, got.Length).Count(i => BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(want[i]));
        int first = Enumerable.Range(0, got.Length).FirstOrDefault(i => BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(want[i]), -1);
        Assert.That(bad, Is.Zero, first < 0 ? label : $"{label}: first at {first}: {got[first]:R} vs {want[first]:R}");
    }

    // The portable kernel calls the C library's logf/cosf/sinf: bit-exact with glibc (as here), 1 ulp allowed for other libms.
    private static void AssertWithinUlps(float[] got, float[] want, int ulps, string label)
    {
        Assert.That(got, Has.Length.EqualTo(want.Length), label);
        for (int i = 0; i < got.Length; i++)
        {
            int a = BitConverter.SingleToInt32Bits(got[i]), b = BitConverter.SingleToInt32Bits(want[i]);
            bool ok = a == b || ((a ^ b) >= 0 && Math.Abs(a - b) <= ulps) || (got[i] == 0 && want[i] == 0);
            Assert.That(ok, $"{label}: element {i}: {got[i]:R} vs {want[i]:R}");
        }
    }
}
