using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DeepScaleLM.Interop;

/// <summary>
/// NVTX ranges (libnvToolsExt.so.1) so Nsight Systems shows named regions per layer. Optional: when the library is
/// not found, <see cref="Push"/> and <see cref="Pop"/> do nothing, so code can mark ranges unconditionally.
/// </summary>
public static partial class Nvtx
{
    /// <summary>The logical library name the resolver maps to libnvToolsExt.so.1.</summary>
    public const string LibraryName = "nvToolsExt";

    static Nvtx() => NativeLibraryResolver.Register();

    /// <summary>Whether libnvToolsExt was found (decided once, on first use).</summary>
    public static bool IsAvailable => Availability.Value;

    /// <summary>Opens a nested range named <paramref name="message"/>; no-op without NVTX.</summary>
    public static void Push(string message)
    {
        if (IsAvailable) nvtxRangePushA(message);
    }

    /// <summary>Closes the innermost range; no-op without NVTX.</summary>
    public static void Pop()
    {
        if (IsAvailable) nvtxRangePop();
    }

    /// <summary><c>int nvtxRangePushA(const char* message)</c>: the nesting level, or a negative value on error.</summary>
    [LibraryImport(LibraryName, StringMarshalling = StringMarshalling.Utf8), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int nvtxRangePushA(string message);

    /// <summary><c>int nvtxRangePop(void)</c>.</summary>
    [LibraryImport(LibraryName), UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int nvtxRangePop();

    private static class Availability
    {
        public static readonly bool Value = NativeLibraryResolver.TryLoad(LibraryName, out _);
    }
}
