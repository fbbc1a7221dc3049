using System.Runtime.InteropServices;
using System.Security;
using System.Text;
using System.Text.Json;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Models;

namespace Engine.Native;

/// <summary>
/// Turns exceptions into status codes and error texts. The text goes to the C side's
/// thread-local last error through the setter handed over at start-up, so C-side and managed
/// failures are read the same way (<c>engine_last_error</c>).
/// </summary>
internal static unsafe class NativeErrors
{
    private static delegate* unmanaged<byte*, void> s_setError;

    /// <summary>Installs the C side's error setter (once, at start-up).</summary>
    public static void Install(delegate* unmanaged<byte*, void> setError) => s_setError = setError;

    /// <summary>Reports <paramref name="message"/> as this thread's last error and returns <paramref name="status"/>.</summary>
    public static int Fail(NativeStatus status, string message)
    {
        var setError = s_setError;
        if (setError != null)
        {
            // NUL-terminated UTF-8: on the stack for short texts, on the heap otherwise.
            int max = Encoding.UTF8.GetMaxByteCount(message.Length) + 1;
            byte[]? rented = max > 1024 ? new byte[max] : null;
            Span<byte> buffer = rented ?? stackalloc byte[max];
            int n = Encoding.UTF8.GetBytes(message, buffer);
            buffer[n] = 0;
            fixed (byte* p = buffer) setError(p);
        }
        return (int)status;
    }

    /// <summary>Maps an exception to a status (see engine.h for the meaning of each) and reports it.</summary>
    public static int Fail(Exception exception) => Fail(StatusOf(exception), Describe(exception));

    /// <summary>The status an exception maps to.</summary>
    public static NativeStatus StatusOf(Exception exception) => exception switch
    {
        OperationCanceledException => NativeStatus.Cancelled,
        NonFiniteException => NativeStatus.NonFinite,
        ModelLoadException { Failure: ModelLoadFailure.NotFound } => NativeStatus.NotFound,
        ModelLoadException { Failure: ModelLoadFailure.UnsupportedClass } => NativeStatus.InvalidArgument,
        ModelLoadException or SafetensorsException => NativeStatus.InvalidData,
        FileNotFoundException or DirectoryNotFoundException => NativeStatus.NotFound,
        ObjectDisposedException => NativeStatus.InvalidArgument,
        ArgumentException => NativeStatus.InvalidArgument,
        InvalidDataException or JsonException or FormatException => NativeStatus.InvalidData,
        PlatformNotSupportedException or NotSupportedException => NativeStatus.Unsupported,
        OutOfMemoryException or InsufficientExecutionStackException => NativeStatus.OutOfMemory,
        UnauthorizedAccessException or SecurityException or IOException => NativeStatus.RuntimeError,
        ExternalException => NativeStatus.RuntimeError,
        _ => NativeStatus.Internal,
    };

    /// <summary>
    /// Error text: the message, followed by inner exception messages that add information.
    /// Unexpected exceptions also carry their type and the throwing method, since their message
    /// alone rarely says where things went wrong.
    /// </summary>
    public static string Describe(Exception exception)
    {
        var text = new StringBuilder(exception.Message);
        for (var inner = exception.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (!exception.Message.Contains(inner.Message, StringComparison.Ordinal))
                text.Append(" (").Append(inner.Message).Append(')');
        }
        if (StatusOf(exception) == NativeStatus.Internal)
        {
            text.Insert(0, exception.GetType().FullName + ": ");
            if (exception.TargetSite is { } site)
                text.Append(" [in ").Append(site.DeclaringType?.FullName).Append('.').Append(site.Name).Append(']');
        }
        return text.ToString();
    }

    /// <summary>Reads a NUL-terminated UTF-8 string (null for a NULL pointer).</summary>
    public static string? Utf8(byte* text) => text == null ? null : Marshal.PtrToStringUTF8((nint)text);
}
