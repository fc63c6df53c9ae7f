using DeepScaleLM.Interop;

namespace DeepScaleLM.Native.Cuda;

/// <summary>
/// A caching device allocator (the PyTorch / llm.c habit): requests are rounded up to a size bucket, and a freed
/// block goes to its bucket's free list instead of back to the driver, so a model that allocates the same shapes
/// again (activations each step, workspaces) never calls <c>cuMemAlloc</c> twice. Buckets are powers of two from
/// 256 bytes up to 1 MiB, then multiples of 2 MiB. When the driver runs out of memory every cached block is freed
/// and the allocation tried once more.
/// </summary>
/// <remarks>
/// Thread safety: <see cref="Return"/> may come from a finalizer thread and only touches managed lists under a
/// lock. <see cref="Allocate"/> and <see cref="Dispose"/> call the driver and run on the backend's thread with its
/// context current.
/// </remarks>
internal sealed class CudaAllocator : IDisposable
{
    private const long SmallestBlock = 256, LargeBlockStep = 2L << 20;
    // CUDA_ERROR_OUT_OF_MEMORY (cuda.h).
    private const int OutOfMemory = 2;
    private readonly Dictionary<long, Stack<ulong>> _free = [];
    private readonly HashSet<ulong> _live = [];
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>Bytes currently held from the driver (live and cached blocks).</summary>
    public long ReservedBytes { get; private set; }

    /// <summary>Driver allocations made so far (cache misses).</summary>
    public long DriverAllocations { get; private set; }

    /// <summary>The block size a request of <paramref name="bytes"/> is served from.</summary>
    public static long BucketSize(long bytes)
    {
        if (bytes <= SmallestBlock) return SmallestBlock;
        if (bytes <= 1L << 20) return (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)bytes);
        return (bytes + LargeBlockStep - 1) / LargeBlockStep * LargeBlockStep;
    }

    /// <summary>A block of at least <paramref name="bytes"/> bytes: its pointer and its bucket size.</summary>
    /// <exception cref="CudaException">The driver could not allocate it even after the cache was emptied.</exception>
    public (ulong Pointer, long BlockBytes) Allocate(long bytes)
    {
        long size = BucketSize(bytes);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryGetValue(size, out var stack) && stack.TryPop(out ulong cached))
            {
                _live.Add(cached);
                return (cached, size);
            }
        }
        int result = CudaDriver.cuMemAlloc_v2(out ulong pointer, (nuint)size);
        if (result == OutOfMemory)
        {
            ReleaseCached();
            result = CudaDriver.cuMemAlloc_v2(out pointer, (nuint)size);
        }
        CudaCheck.Check(CudaLibrary.Driver, result, nameof(CudaDriver.cuMemAlloc_v2), size);
        lock (_gate)
        {
            _live.Add(pointer);
            ReservedBytes += size;
            DriverAllocations++;
        }
        return (pointer, size);
    }

    /// <summary>Hands a block back to the cache (managed only: safe from a finalizer). Ignored after disposal,
    /// when the memory has already been freed.</summary>
    public void Return(ulong pointer, long blockBytes)
    {
        lock (_gate)
        {
            if (_disposed || !_live.Remove(pointer)) return;
            if (!_free.TryGetValue(blockBytes, out var stack)) _free[blockBytes] = stack = new Stack<ulong>();
            stack.Push(pointer);
        }
    }

    /// <summary>Frees every cached (not live) block back to the driver.</summary>
    public void ReleaseCached()
    {
        lock (_gate)
        {
            foreach (var (size, stack) in _free)
                while (stack.TryPop(out ulong pointer))
                {
                    CudaDriver.cuMemFree_v2(pointer);
                    ReservedBytes -= size;
                }
        }
    }

    /// <summary>Frees every block, live ones included: tensors of a disposed backend are unusable.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            ReleaseCached();
            foreach (ulong pointer in _live) CudaDriver.cuMemFree_v2(pointer);
            _live.Clear();
            ReservedBytes = 0;
            _disposed = true;
        }
    }
}
