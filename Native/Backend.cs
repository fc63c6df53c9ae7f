using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native;

/// <summary>
/// The op contract: every fused operation a transformer needs, forward and backward, over tensors on one
/// device. Each public method validates its operands once, here, and then runs the backend's kernel
/// (<c>...Core</c>), so every backend rejects bad input with the same <see cref="ArgumentException"/>.
/// </summary>
/// <remarks>
/// Conventions, kept by every op:
/// <list type="bullet">
/// <item>Outputs come first, then inputs, then options (as in llm.c).</item>
/// <item>Forward ops overwrite their outputs. Backward ops ACCUMULATE (<c>+=</c>) into every gradient they
/// write, so a tensor read by several ops collects all its gradients; zero gradients before a backward pass.
/// A null gradient output is skipped.</item>
/// <item>Tensors are dense row-major; shapes are documented as <c>[batch, tokens, channels]</c>.</item>
/// <item>Ops allocate nothing per call on the host; workspaces grow once and are reused.</item>
/// <item>A backend runs one op at a time, like a CUDA stream: its workspaces belong to it, not to a call, so
/// threads that run ops concurrently need a backend each. A backend may throw
/// <see cref="InvalidOperationException"/> when entered concurrently (the CPU backend does, in the ops that use
/// its workspaces).</item>
/// <item>Outputs may not partly overlap an input they are computed from, nor each other; where an op allows it,
/// an output may be the very same view as an input (in place) or as another output.</item>
/// </list>
/// </remarks>
public abstract partial class Backend : IDisposable
{
    /// <summary>The device every tensor of this backend lives on.</summary>
    public abstract Device Device { get; }

    /// <summary>A new zero-filled tensor that owns its memory.</summary>
    /// <exception cref="ArgumentException">A dimension is negative.</exception>
    public Tensor Allocate(DType dtype, params ReadOnlySpan<int> dims)
    {
        var shape = new TensorShape(dims);
        return new Tensor(AllocateStorage(shape.ElementCount * dtype.SizeInBytes()), 0, shape, dtype, ownsStorage: true);
    }

    /// <summary>A new zero-filled float32 tensor that owns its memory.</summary>
    public Tensor Allocate(params ReadOnlySpan<int> dims) => Allocate(DType.Float32, dims);

    /// <summary>Copies host values into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">The lengths or dtypes differ.</exception>
    public void Upload<T>(Tensor destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        Check.Operand(this, destination, nameof(destination), DTypeExtensions.Of<T>());
        if (source.Length != destination.ElementCount)
            throw new ArgumentException($"source has {source.Length} elements but destination {destination.Shape} has {destination.ElementCount}", nameof(source));
        UploadCore(destination, source);
        KeepAlive(destination);
    }

    /// <summary>Copies <paramref name="source"/> into host memory.</summary>
    /// <exception cref="ArgumentException">The lengths or dtypes differ.</exception>
    public void Download<T>(Span<T> destination, Tensor source) where T : unmanaged
    {
        Check.Operand(this, source, nameof(source), DTypeExtensions.Of<T>());
        if (destination.Length != source.ElementCount)
            throw new ArgumentException($"destination has {destination.Length} elements but source {source.Shape} has {source.ElementCount}", nameof(destination));
        DownloadCore(destination, source);
        KeepAlive(source);
    }

    /// <summary>Sets every element of <paramref name="tensor"/> to zero.</summary>
    public void Zero(Tensor tensor)
    {
        Check.Operand(this, tensor, nameof(tensor), tensor.DType);
        ZeroCore(tensor);
        KeepAlive(tensor);
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (same shape and dtype).</summary>
    public void Copy(Tensor destination, Tensor source)
    {
        Check.Operand(this, source, nameof(source), source.DType);
        Check.Operand(this, destination, nameof(destination), source.DType);
        Check.SameShape(destination, nameof(destination), source, nameof(source));
        CopyCore(destination, source);
        KeepAlive(destination, source);
    }

    /// <summary>
    /// Waits until every op issued so far has finished. Ops of an asynchronous device (CUDA) return once queued, so a
    /// host-clock timing must call this before reading the clock; the CPU backend runs ops synchronously (no-op).
    /// </summary>
    public virtual void Synchronize() { }

    /// <summary>
    /// Called after each kernel with its operands: keeps them reachable until the kernel has returned. Kernels work
    /// on raw pointers into the storage, so without this an operand the caller no longer references (a temporary)
    /// could be finalized, and its memory freed, while the kernel still reads or writes it. (A stack-held span of
    /// references: nothing is allocated.)
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private protected static void KeepAlive(params ReadOnlySpan<object?> operands) { }

    /// <summary><see cref="KeepAlive(ReadOnlySpan{object?})"/> for a list of operands.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private protected static void KeepAlive(ReadOnlySpan<Tensor> operands) { }

    /// <summary>Allocates <paramref name="byteLength"/> zero-filled bytes on this device.</summary>
    protected abstract TensorStorage AllocateStorage(long byteLength);
    /// <summary>Kernel of <see cref="Upload{T}"/>; operands already validated.</summary>
    protected abstract void UploadCore<T>(Tensor destination, ReadOnlySpan<T> source) where T : unmanaged;
    /// <summary>Kernel of <see cref="Download{T}"/>; operands already validated.</summary>
    protected abstract void DownloadCore<T>(Span<T> destination, Tensor source) where T : unmanaged;
    /// <summary>Kernel of <see cref="Zero"/>; operands already validated.</summary>
    protected abstract void ZeroCore(Tensor tensor);
    /// <summary>Kernel of <see cref="Copy"/>; operands already validated.</summary>
    protected abstract void CopyCore(Tensor destination, Tensor source);

    /// <summary>Releases the backend's workspaces and threads (not the tensors it made).</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases resources; <paramref name="disposing"/> is false from a finalizer.</summary>
    protected virtual void Dispose(bool disposing) { }
}
