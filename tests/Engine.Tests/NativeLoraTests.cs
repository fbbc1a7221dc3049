using System.Text;
using Engine.Native;
using NUnit.Framework;

namespace Engine.Tests;

/// <summary><c>engine_request.loras</c> (interface 0.5.0) read into <see cref="Engine.Generation.GenerationRequest.Loras"/>: paths made absolute, scales as given, bad entries named.</summary>
public unsafe class NativeLoraTests
{
    [Test]
    public void AdaptersMapOntoTheRequestInOrder()
    {
        fixed (byte* a = Encoding.UTF8.GetBytes("first.safetensors\0"))
        fixed (byte* b = Encoding.UTF8.GetBytes("/x/second.safetensors\0"))
        {
            var loras = stackalloc NativeLora[2];
            loras[0] = new NativeLora { Path = a, Scale = 0.5f };
            loras[1] = new NativeLora { Path = b, Scale = -1.25f };
            var native = new NativeRequest { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Count = 1, Loras = loras, LoraCount = 2 };
            var request = NativeRequest.ToRequest(&native);
            Assert.That(request.Loras.Select(l => (l.Path, l.Scale, l.Sha256)), Is.EqualTo(new[]
            {
                (Path.GetFullPath("first.safetensors"), 0.5, (string?)null),
                ("/x/second.safetensors", -1.25, null),
            }));
            native.LoraCount = 0;
            Assert.That(NativeRequest.ToRequest(&native).Loras, Is.Empty, "lora_count 0 = no adapters");
        }
    }

    [Test]
    public void BadAdaptersAreNamed()
    {
        var loras = stackalloc NativeLora[1];
        loras[0] = new NativeLora { Path = null, Scale = 1 };
        var native = new NativeRequest { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Count = 1, Loras = null, LoraCount = 1 };
        Assert.That(Refusal(native), Does.Contain("request.loras is NULL"));
        native.Loras = loras;
        Assert.That(Refusal(native), Does.Contain("request.loras[0].path is NULL"));
        fixed (byte* a = Encoding.UTF8.GetBytes("a.safetensors\0"))
        {
            loras[0] = new NativeLora { Path = a, Scale = float.PositiveInfinity };
            Assert.That(Refusal(native), Does.Contain("request.loras[0].scale"));
        }
    }

    /// <summary>The message of the ArgumentException reading <paramref name="native"/> throws.</summary>
    private static string Refusal(NativeRequest native)
    {
        var e = Assert.Throws<ArgumentException>(() => Read(native));
        return e!.Message;
    }

    private static void Read(NativeRequest native) => NativeRequest.ToRequest(&native);
}
