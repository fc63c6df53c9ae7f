using System.Globalization;
using System.Text;

namespace DeepScaleLM.Interop;

/// <summary>The native library a failing call belongs to.</summary>
public enum CudaLibrary
{
    /// <summary>The CUDA driver API (libcuda.so.1); codes are <c>CUresult</c>.</summary>
    Driver,
    /// <summary>cuBLAS or cuBLASLt; codes are <c>cublasStatus_t</c>.</summary>
    CuBlas,
}

/// <summary>
/// A CUDA driver or cuBLAS call returned an error. Carries the error's name (e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>,
/// <c>CUBLAS_STATUS_NOT_SUPPORTED</c>), its numeric code, the call and the arguments it was made with. The name
/// comes from the static tables in <see cref="CudaErrorNames"/>, so it is available even where the library that
/// failed cannot describe its own error.
/// </summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception for a failed call.</summary>
    /// <param name="library">The library whose code <paramref name="code"/> is.</param>
    /// <param name="code">The numeric <c>CUresult</c> or <c>cublasStatus_t</c>.</param>
    /// <param name="call">The native entry point, e.g. <c>cuMemAlloc_v2</c>.</param>
    /// <param name="arguments">The arguments as formatted in the message (comma-separated).</param>
    /// <param name="description">An optional longer description (e.g. from <c>cuGetErrorString</c>).</param>
    public CudaException(CudaLibrary library, int code, string call, string arguments, string? description = null)
        : base(Format(library, code, call, arguments, description))
    {
        Library = library;
        Code = code;
        Call = call;
        Arguments = arguments;
        ErrorName = CudaErrorNames.Name(library, code);
    }

    /// <summary>The library the failing call belongs to.</summary>
    public CudaLibrary Library { get; }

    /// <summary>The numeric error code.</summary>
    public int Code { get; }

    /// <summary>The error's name from the header, or <c>CUresult(N)</c> / <c>cublasStatus_t(N)</c> for a code the
    /// table does not know.</summary>
    public string ErrorName { get; }

    /// <summary>The native entry point that failed.</summary>
    public string Call { get; }

    /// <summary>The arguments of the failing call, comma-separated.</summary>
    public string Arguments { get; }

    private static string Format(CudaLibrary library, int code, string call, string arguments, string? description)
    {
        string text = $"{call}({arguments}) failed with {CudaErrorNames.Name(library, code)} ({code.ToString(CultureInfo.InvariantCulture)})";
        return string.IsNullOrEmpty(description) ? text : $"{text}: {description}";
    }

    /// <summary>Formats call arguments for a message: integers in decimal, pointers and handles in hex, strings quoted.</summary>
    internal static string FormatArguments(ReadOnlySpan<object?> arguments)
    {
        var text = new StringBuilder();
        for (int i = 0; i < arguments.Length; i++)
        {
            if (i > 0) text.Append(", ");
            text.Append(FormatArgument(arguments[i]));
        }
        return text.ToString();
    }

    private static string FormatArgument(object? argument) => argument switch
    {
        null => "null",
        nint pointer => "0x" + pointer.ToString("x", CultureInfo.InvariantCulture),
        string s => "\"" + s + "\"",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => argument.ToString() ?? "",
    };
}
