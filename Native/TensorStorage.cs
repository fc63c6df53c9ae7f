namespace DeepScaleLM.Native;

/// <summary>
/// A block of device memory that one or more <see cref="Tensor"/> views read and write. Backends derive their
/// own storage; models carve all their tensors out of a few large storages (parameters, gradients, ...).
/// </summary>
public abstract class TensorStorage : IDisposable
{
    /// <summary>A storage of <paramref name="byteLength"/> bytes on <paramref name="device"/>.</summary>
    protected TensorStorage(Device device, long byteLength)
    {
        Device = device;
        ByteLength = byteLength;
    }

    /// <summary>Where the memory lives.</summary>
    public Device Device { get; }

    /// <summary>Size in bytes.</summary>
    public long ByteLength { get; }

    /// <summary>True once the memory has been released.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Releases the memory; every view of it becomes unusable.</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the memory exactly once.</summary>
    protected abstract void Release();
}
