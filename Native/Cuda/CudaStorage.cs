namespace DeepScaleLM.Native.Cuda;

/// <summary>
/// Device memory of a <see cref="CudaBackend"/>: a block borrowed from its <see cref="CudaAllocator"/>. Releasing it
/// (dispose, or the finalizer when a tensor was dropped without one) only hands the block back to the allocator's
/// cache, a managed operation: no CUDA call ever runs on the finalizer thread. The backend runs every kernel and
/// copy on one stream, so a block handed back while queued work still uses it is only reused by work queued later.
/// </summary>
internal sealed class CudaStorage : TensorStorage
{
    private readonly CudaAllocator _allocator;
    private readonly long _blockBytes;

    public CudaStorage(Device device, long byteLength, ulong pointer, long blockBytes, CudaAllocator allocator) : base(device, byteLength)
    {
        Pointer = pointer;
        _blockBytes = blockBytes;
        _allocator = allocator;
    }

    /// <summary>The CUdeviceptr of the first byte.</summary>
    public ulong Pointer { get; }

    ~CudaStorage() => Release();

    protected override void Release() => _allocator.Return(Pointer, _blockBytes);
}
