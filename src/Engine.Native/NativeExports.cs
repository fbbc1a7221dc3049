using System.Runtime.InteropServices;
using Engine.Core;
using Engine.Generation;
using Engine.Gpu;

namespace Engine.Native;

/// <summary>
/// The managed entry points behind engine.h, resolved once by libengine through hostfxr.
/// Each one catches every exception and turns it into a status code plus the thread's error text
/// (an exception escaping an <see cref="UnmanagedCallersOnlyAttribute"/> method would kill the
/// host process). Contexts and models cross the boundary as <see cref="GCHandle"/> values.
/// </summary>
public static unsafe class NativeExports
{
    /// <summary>
    /// Installs the C side's error setter and checks that both sides agree on the layout of the
    /// structs passed by pointer (a header/library mismatch must fail here, not read garbage).
    /// </summary>
    [UnmanagedCallersOnly]
    public static int Initialize(delegate* unmanaged<byte*, void> setError, int optionsSize, int requestSize)
    {
        try
        {
            NativeErrors.Install(setError);
            if (optionsSize != sizeof(NativeOptions) || requestSize != sizeof(NativeRequest))
            {
                return NativeErrors.Fail(NativeStatus.Internal,
                    $"libengine and Engine.Native disagree on struct layouts: engine_options {optionsSize} vs {sizeof(NativeOptions)} bytes, " +
                    $"engine_request {requestSize} vs {sizeof(NativeRequest)} bytes; rebuild both from the same sources");
            }
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Creates a context on the device named by <paramref name="device"/> (NULL = default).</summary>
    [UnmanagedCallersOnly]
    public static int CreateContext(byte* device, byte* weights, nint* outContext)
    {
        try
        {
            if (outContext == null) throw new ArgumentException("out_context is NULL");
            var storage = WeightStorage(NativeErrors.Utf8(weights));
            var context = new NativeContext(DeviceFactory.Create(NativeErrors.Utf8(device)), storage);
            *outContext = GCHandle.ToIntPtr(GCHandle.Alloc(context));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>engine_options.weights: NULL or "" is float32; otherwise a storage name (f32, f16, bf16).</summary>
    private static DType WeightStorage(string? name) =>
        string.IsNullOrWhiteSpace(name) ? DType.F32
        : DTypeExtensions.TryParseStorage(name, out var dtype) ? dtype
        : throw new ArgumentException($"unknown weights '{name}'; supported: {DTypeExtensions.StorageNames}");

    /// <summary>Releases a context that has no models left.</summary>
    [UnmanagedCallersOnly]
    public static int ReleaseContext(nint context)
    {
        try
        {
            var ctx = Get<NativeContext>(context, "context");
            int models = ctx.ModelCount;
            if (models > 0)
                return NativeErrors.Fail(NativeStatus.InvalidArgument,
                    $"context still has {models} loaded model(s); release them with engine_release_model first");
            // The handle goes even if disposing fails: the context is unusable either way.
            GCHandle.FromIntPtr(context).Free();
            ctx.Dispose();
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Loads a model folder on the context's device.</summary>
    [UnmanagedCallersOnly]
    public static int LoadModel(nint context, byte* path, nint* outModel)
    {
        try
        {
            var ctx = Get<NativeContext>(context, "context");
            string folder = NativeErrors.Utf8(path) ?? throw new ArgumentException("path is NULL");
            if (outModel == null) throw new ArgumentException("out_model is NULL");
            var model = ctx.LoadModel(folder);
            *outModel = GCHandle.ToIntPtr(GCHandle.Alloc(model));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Releases a model.</summary>
    [UnmanagedCallersOnly]
    public static int ReleaseModel(nint context, nint model)
    {
        try
        {
            var ctx = Get<NativeContext>(context, "context");
            var m = Get<NativeModel>(model, "model");
            ctx.ReleaseModel(m);
            GCHandle.FromIntPtr(model).Free();
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Writes {count, channels, height, width} of a request to <paramref name="outShape"/>.</summary>
    [UnmanagedCallersOnly]
    public static int OutputShape(nint context, nint model, NativeRequest* request, int* outShape)
    {
        try
        {
            var ctx = Get<NativeContext>(context, "context");
            var m = Get<NativeModel>(model, "model");
            if (outShape == null) throw new ArgumentException("out_shape is NULL");
            var (count, channels, height, width) = ctx.OutputShape(m, NativeRequest.ToRequest(request));
            outShape[0] = count;
            outShape[1] = channels;
            outShape[2] = height;
            outShape[3] = width;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Generates into the caller's buffer of <paramref name="outLength"/> floats (NCHW).</summary>
    [UnmanagedCallersOnly]
    public static int Generate(nint context, nint model, NativeRequest* request, float* outPixels, nuint outLength)
    {
        try
        {
            var ctx = Get<NativeContext>(context, "context");
            var m = Get<NativeModel>(model, "model");
            if (outPixels == null) throw new ArgumentException("out_pixels is NULL");
            // A span covers at most int.MaxValue floats; a larger buffer is simply used in part.
            var output = new Span<float>(outPixels, (int)Math.Min(outLength, (nuint)int.MaxValue));
            var status = ctx.Generate(m, NativeRequest.ToRequest(request), output, out string? error);
            return status == NativeStatus.Ok ? (int)status : NativeErrors.Fail(status, error ?? status.ToString());
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Sets or clears (NULL) the context's progress callback.</summary>
    [UnmanagedCallersOnly]
    public static int SetProgressCallback(nint context, delegate* unmanaged<int, int, int, void*, int> callback, void* userData)
    {
        try
        {
            Get<NativeContext>(context, "context").SetProgress(callback, userData);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Sets or clears (NULL) the context's finished-image callback.</summary>
    [UnmanagedCallersOnly]
    public static int SetImageCallback(nint context, delegate* unmanaged<int, float*, nuint, void*, int> callback, void* userData)
    {
        try
        {
            Get<NativeContext>(context, "context").SetImageCallback(callback, userData);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Cancels the context's run in progress (any thread).</summary>
    [UnmanagedCallersOnly]
    public static int Cancel(nint context)
    {
        try
        {
            Get<NativeContext>(context, "context").Cancel();
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>Resolves a handle made by this class, naming the parameter when it is not one.</summary>
    private static T Get<T>(nint handle, string name) where T : class
    {
        if (handle == 0) throw new ArgumentException($"{name} is NULL");
        return GCHandle.FromIntPtr(handle).Target as T
            ?? throw new ArgumentException($"{name} is not a valid engine_{name} (released?)");
    }
}
