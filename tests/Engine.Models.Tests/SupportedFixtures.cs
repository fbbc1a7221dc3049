using Engine.Models.Loading;

namespace Engine.Models.Tests;

/// <summary>Skips model fixtures whose class the engine does not implement, naming the class.</summary>
public static class SupportedFixtures
{
    public static void RequireSupported(string fixture)
    {
        var config = ModelConfig.Load(Path.Combine(Fixtures.RequireRoot(), "models", fixture, "model", "config.json"));
        if (!ModelLoader.SupportedClasses.Contains(config.ClassName))
            Assert.Ignore($"{config.ClassName} is not implemented by the engine yet (fixture {fixture}).");
    }
}
