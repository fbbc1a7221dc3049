namespace Engine.Native;

/// <summary>Status codes of the C interface; values match <c>engine_status</c> in engine.h.</summary>
public enum NativeStatus
{
    Ok = 0,
    InvalidArgument = 1,
    NotFound = 2,
    BufferTooSmall = 3,
    Cancelled = 4,
    Unsupported = 5,
    RuntimeError = 6,
    InvalidData = 7,
    OutOfMemory = 8,
    Internal = 9,
    NonFinite = 10,
}
