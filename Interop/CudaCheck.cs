namespace DeepScaleLM.Interop;

/// <summary>
/// Turns a failing CUDA driver or cuBLAS return code into a <see cref="CudaException"/> that names the error, the
/// call and its arguments. The generic overloads neither box nor format on success, so a checked call on the hot
/// path allocates nothing; the arguments are formatted only when the call failed.
/// </summary>
public static class CudaCheck
{
    /// <summary>Throws if <paramref name="result"/> is not success (0).</summary>
    /// <exception cref="CudaException">The call failed.</exception>
    public static void Check(CudaLibrary library, int result, string call)
    {
        if (result != 0) throw Failure(library, result, call, []);
    }

    /// <summary>Throws if <paramref name="result"/> is not success (0); the message lists the argument.</summary>
    /// <exception cref="CudaException">The call failed.</exception>
    public static void Check<T0>(CudaLibrary library, int result, string call, T0 arg0)
    {
        if (result != 0) throw Failure(library, result, call, [arg0]);
    }

    /// <summary>Throws if <paramref name="result"/> is not success (0); the message lists the arguments.</summary>
    /// <exception cref="CudaException">The call failed.</exception>
    public static void Check<T0, T1>(CudaLibrary library, int result, string call, T0 arg0, T1 arg1)
    {
        if (result != 0) throw Failure(library, result, call, [arg0, arg1]);
    }

    /// <summary>Throws if <paramref name="result"/> is not success (0); the message lists the arguments.</summary>
    /// <exception cref="CudaException">The call failed.</exception>
    public static void Check<T0, T1, T2>(CudaLibrary library, int result, string call, T0 arg0, T1 arg1, T2 arg2)
    {
        if (result != 0) throw Failure(library, result, call, [arg0, arg1, arg2]);
    }

    /// <summary>Throws if <paramref name="result"/> is not success (0); the message lists the arguments.</summary>
    /// <exception cref="CudaException">The call failed.</exception>
    public static void Check<T0, T1, T2, T3>(CudaLibrary library, int result, string call, T0 arg0, T1 arg1, T2 arg2, T3 arg3)
    {
        if (result != 0) throw Failure(library, result, call, [arg0, arg1, arg2, arg3]);
    }

    /// <summary>Throws if <paramref name="result"/> is not success (0); for calls with more than four arguments
    /// (boxes them, so keep it off the hot path or accept the allocation).</summary>
    /// <exception cref="CudaException">The call failed.</exception>
    public static void Check(CudaLibrary library, int result, string call, params ReadOnlySpan<object?> arguments)
    {
        if (result != 0) throw Failure(library, result, call, arguments);
    }

    /// <summary>
    /// Builds the exception for a failed call. For the driver it adds <c>cuGetErrorString</c>'s description when
    /// libcuda can be loaded (it was, if the call itself ran); the name always comes from
    /// <see cref="CudaErrorNames"/>.
    /// </summary>
    public static CudaException Failure(CudaLibrary library, int result, string call, ReadOnlySpan<object?> arguments)
    {
        string? description = library == CudaLibrary.Driver ? CudaDriver.TryGetErrorString(result) : null;
        return new CudaException(library, result, call, CudaException.FormatArguments(arguments), description);
    }
}
