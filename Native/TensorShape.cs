using System.Collections.Immutable;

namespace DeepScaleLM.Native;

/// <summary>The dimensions of a dense, row-major tensor (last dimension contiguous).</summary>
public readonly struct TensorShape : IEquatable<TensorShape>
{
    private readonly ImmutableArray<int> _dims;

    private readonly long _elementCount;

    /// <summary>
    /// Most elements a shape may hold, 2^60: byte counts (up to 8 bytes an element) and element offsets then never
    /// overflow a long.
    /// </summary>
    public const long MaxElementCount = 1L << 60;

    /// <summary>A shape with the given dimensions.</summary>
    /// <exception cref="ArgumentException">A dimension is negative, or the shape holds more than <see cref="MaxElementCount"/> elements.</exception>
    public TensorShape(params ReadOnlySpan<int> dims)
    {
        for (int i = 0; i < dims.Length; i++)
            if (dims[i] < 0)
                throw new ArgumentException($"dimension {i} of shape {Format(dims)} is negative", nameof(dims));
        // The product is bounded after every factor: a wrapped one (say 2^64 -> 0) would give a tensor whose
        // dimensions the kernels index by a storage of a few bytes.
        long count = dims.Contains(0) ? 0 : 1;
        for (int i = 0; i < dims.Length && count != 0; i++)
        {
            if (count > MaxElementCount / dims[i])
                throw new ArgumentException($"shape {Format(dims)} holds more than {MaxElementCount} elements", nameof(dims));
            count *= dims[i];
        }
        _dims = [.. dims];
        _elementCount = count;
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank => _dims.IsDefault ? 0 : _dims.Length;

    /// <summary>Dimension <paramref name="axis"/>; negative axes count from the end.</summary>
    public int this[int axis] => _dims[axis < 0 ? Rank + axis : axis];

    /// <summary>The dimensions.</summary>
    public ReadOnlySpan<int> Dimensions => _dims.IsDefault ? default : _dims.AsSpan();

    /// <summary>Product of the dimensions (1 for a scalar), computed once.</summary>
    public long ElementCount => _dims.IsDefault ? 1 : _elementCount;

    /// <inheritdoc/>
    public bool Equals(TensorShape other) => Dimensions.SequenceEqual(other.Dimensions);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is TensorShape s && Equals(s);
    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in Dimensions) h.Add(d);
        return h.ToHashCode();
    }
    /// <summary>Equal dimensions.</summary>
    public static bool operator ==(TensorShape a, TensorShape b) => a.Equals(b);
    /// <summary>Different dimensions.</summary>
    public static bool operator !=(TensorShape a, TensorShape b) => !a.Equals(b);

    /// <summary>The shape as <c>[2, 3, 4]</c>.</summary>
    public override string ToString() => Format(Dimensions);

    internal static string Format(ReadOnlySpan<int> dims) => "[" + string.Join(", ", dims.ToArray()) + "]";
}
