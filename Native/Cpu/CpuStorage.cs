using System.Runtime.InteropServices;

namespace DeepScaleLM.Native.Cpu;

/// <summary>Host memory, 64-byte aligned (one AVX-512 vector, one cache line) and zero-filled.</summary>
internal sealed unsafe class CpuStorage : TensorStorage
{
    internal const int Alignment = 64;

    public CpuStorage(long byteLength) : base(Device.Cpu, byteLength)
    {
        // Never a zero-byte allocation, so an empty tensor still has a valid (unused) pointer.
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 1), Alignment);
        NativeMemory.Clear(Pointer, (nuint)Math.Max(byteLength, 1));
    }

    /// <summary>First byte of the block.</summary>
    public byte* Pointer { get; }

    ~CpuStorage() => Release();

    protected override void Release() => NativeMemory.AlignedFree(Pointer);
}
