using DeepScaleLM.Native;

namespace DeepScaleLM.Training.Checkpoints;

/// <summary>Element types named in a safetensors header. Only <see cref="F32"/> and <see cref="I32"/> are read and
/// written today; <see cref="BF16"/> and <see cref="F16"/> are recognised so a header naming them is reported as
/// unsupported rather than unknown.</summary>
public enum SafeTensorsDType
{
    /// <summary>IEEE-754 binary32, header name "F32".</summary>
    F32,
    /// <summary>Signed 32-bit integer, header name "I32".</summary>
    I32,
    /// <summary>bfloat16, header name "BF16" (reserved: not yet read or written).</summary>
    BF16,
    /// <summary>IEEE-754 binary16, header name "F16" (reserved: not yet read or written).</summary>
    F16,
}

/// <summary>Header names, element sizes and <see cref="DType"/> mapping of <see cref="SafeTensorsDType"/>.</summary>
public static class SafeTensorsDTypes
{
    /// <summary>The name the header uses, e.g. "F32".</summary>
    public static string HeaderName(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 => "F32",
        SafeTensorsDType.I32 => "I32",
        SafeTensorsDType.BF16 => "BF16",
        SafeTensorsDType.F16 => "F16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>Bytes one element occupies.</summary>
    public static int SizeInBytes(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.BF16 or SafeTensorsDType.F16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>Parses a header dtype name; false for a name this library does not know.</summary>
    public static bool TryParse(string name, out SafeTensorsDType dtype)
    {
        switch (name)
        {
            case "F32": dtype = SafeTensorsDType.F32; return true;
            case "I32": dtype = SafeTensorsDType.I32; return true;
            case "BF16": dtype = SafeTensorsDType.BF16; return true;
            case "F16": dtype = SafeTensorsDType.F16; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>The safetensors dtype that stores a tensor of <paramref name="dtype"/>.</summary>
    public static SafeTensorsDType From(DType dtype) => dtype switch
    {
        DType.Float32 => SafeTensorsDType.F32,
        DType.Int32 => SafeTensorsDType.I32,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no safetensors dtype for this tensor dtype"),
    };

    /// <summary>The safetensors dtype of the CLR element type <typeparamref name="T"/> (float or int).</summary>
    public static SafeTensorsDType Of<T>() where T : unmanaged => From(DTypeExtensions.Of<T>());
}
