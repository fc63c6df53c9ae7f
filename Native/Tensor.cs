using System.Runtime.CompilerServices;
using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Native;

/// <summary>
/// A dense row-major view (shape + dtype) of a range of a <see cref="TensorStorage"/> on one device. Tensors made
/// by <see cref="Backend.Allocate(DType, ReadOnlySpan{int})"/> own their storage; <see cref="View"/> and
/// <see cref="Slice"/> make views that share it and never free it.
/// </summary>
public sealed class Tensor : IDisposable
{
    internal Tensor(TensorStorage storage, long offset, TensorShape shape, DType dtype, bool ownsStorage)
    {
        if (offset < 0 || (offset + shape.ElementCount) * dtype.SizeInBytes() > storage.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"a {dtype} view {shape} at element {offset} does not fit a storage of {storage.ByteLength} bytes");
        Storage = storage;
        Offset = offset;
        Shape = shape;
        DType = dtype;
        _ownsStorage = ownsStorage;
    }

    private readonly bool _ownsStorage;

    /// <summary>The memory this tensor views.</summary>
    public TensorStorage Storage { get; }

    /// <summary>First element of the view, counted in elements from the start of the storage.</summary>
    public long Offset { get; }

    /// <summary>Dimensions.</summary>
    public TensorShape Shape { get; }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Where the data lives.</summary>
    public Device Device => Storage.Device;

    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.ElementCount;

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Rank;

    /// <summary>The same elements seen with another shape of equal element count.</summary>
    /// <exception cref="ArgumentException">The element counts differ.</exception>
    public Tensor View(params ReadOnlySpan<int> dims)
    {
        var shape = new TensorShape(dims);
        if (shape.ElementCount != ElementCount)
            throw new ArgumentException($"cannot view {Shape} ({ElementCount} elements) as {shape} ({shape.ElementCount} elements)", nameof(dims));
        return new Tensor(Storage, Offset, shape, DType, ownsStorage: false);
    }

    /// <summary>The elements <c>[start, start + product(dims))</c> of this tensor, seen with shape <paramref name="dims"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range leaves this tensor.</exception>
    public Tensor Slice(long start, params ReadOnlySpan<int> dims)
    {
        var shape = new TensorShape(dims);
        if (start < 0 || start + shape.ElementCount > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(start),
                $"slice {shape} at element {start} leaves tensor {Shape} of {ElementCount} elements");
        return new Tensor(Storage, Offset + start, shape, DType, ownsStorage: false);
    }

    /// <summary>The elements as a span (CPU tensors only).</summary>
    /// <remarks>The span points into native memory and does not keep the tensor alive: hold the tensor (a
    /// <c>using</c> does) for as long as the span is used, or its storage may be freed under it.</remarks>
    /// <exception cref="InvalidOperationException">The tensor is not on the CPU, or holds another dtype.</exception>
    /// <exception cref="ObjectDisposedException">The storage has been released.</exception>
    public unsafe Span<T> AsSpan<T>() where T : unmanaged
    {
        if (DTypeExtensions.Of<T>() != DType)
            throw new InvalidOperationException($"tensor {Shape} holds {DType}, not {typeof(T).Name}");
        if (Storage is not CpuStorage cpu)
            throw new InvalidOperationException($"tensor {Shape} lives on {Device}; copy it to the host to read it");
        ObjectDisposedException.ThrowIf(cpu.IsDisposed, this);
        if (ElementCount > int.MaxValue)
            throw new InvalidOperationException($"tensor {Shape} has more than {int.MaxValue} elements; slice it first");
        return new Span<T>(cpu.Pointer + Offset * Unsafe.SizeOf<T>(), (int)ElementCount);
    }

    /// <summary>Releases the storage if this tensor owns it; views do nothing.</summary>
    public void Dispose()
    {
        if (_ownsStorage) Storage.Dispose();
    }

    /// <summary>Like <c>Float32 [2, 3] on cpu</c>.</summary>
    public override string ToString() => $"{DType} {Shape} on {Device}";
}
