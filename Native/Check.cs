using System.Globalization;
using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native;

/// <summary>
/// Argument validation shared by every backend: each public op of <see cref="Backend"/> checks its operands
/// here before the backend's kernel runs, so every failure is an <see cref="ArgumentException"/> that names the
/// operand and the shapes involved. Nothing here allocates unless it throws.
/// </summary>
internal static class Check
{
    /// <summary>The tensor is usable by <paramref name="backend"/>: same device, expected dtype, not released.</summary>
    public static void Operand(Backend backend, Tensor tensor, string name, DType dtype = DType.Float32)
    {
        if (tensor is null)
            throw new ArgumentNullException(name, $"operand '{name}' is null");
        if (tensor.Storage.IsDisposed)
            throw new ArgumentException($"operand '{name}' {tensor.Shape} views released memory", name);
        if (tensor.Device != backend.Device)
            throw new ArgumentException($"operand '{name}' {tensor.Shape} lives on {tensor.Device}, but this backend runs on {backend.Device}", name);
        if (tensor.DType != dtype)
            throw new ArgumentException($"operand '{name}' {tensor.Shape} holds {tensor.DType}, but {dtype} is required", name);
    }

    /// <summary>Like <see cref="Operand"/> when the tensor is optional; null passes.</summary>
    public static void Optional(Backend backend, Tensor? tensor, string name, DType dtype = DType.Float32)
    {
        if (tensor is not null) Operand(backend, tensor, name, dtype);
    }

    /// <summary>
    /// The tensor has exactly the shape <paramref name="expected"/>. The context (the other operands' shapes, e.g.
    /// <c>$"a {a.Shape}, b {b.Shape}"</c>) is an interpolated string that is formatted only when the shapes differ,
    /// so a valid call allocates nothing.
    /// </summary>
    public static void Shape(Tensor tensor, string name, ReadOnlySpan<int> expected,
        [InterpolatedStringHandlerArgument(nameof(tensor), nameof(expected))] ref ShapeMismatchContext context)
    {
        if (context.IsMismatch)
            throw new ArgumentException(
                $"operand '{name}' has shape {tensor.Shape} but {TensorShape.Format(expected)} is required ({context.ToStringAndClear()})", name);
    }

    /// <summary>The tensor has the same shape as <paramref name="reference"/>.</summary>
    public static void SameShape(Tensor tensor, string name, Tensor reference, string referenceName)
    {
        if (tensor.Shape != reference.Shape)
            throw new ArgumentException(
                $"operand '{name}' has shape {tensor.Shape} but must match '{referenceName}' {reference.Shape}", name);
    }

    /// <summary>The tensor's rank lies in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static void Rank(Tensor tensor, string name, int min, int max)
    {
        if (tensor.Rank < min || tensor.Rank > max)
            throw new ArgumentException(
                $"operand '{name}' has shape {tensor.Shape} (rank {tensor.Rank}) but rank {(min == max ? $"{min}" : $"{min} to {max}")} is required", name);
    }

    /// <summary>The value is a finite number.</summary>
    public static void Finite(float value, string name)
    {
        if (!float.IsFinite(value))
            throw new ArgumentException($"'{name}' must be finite but is {value}", name);
    }

    /// <summary>The value lies in [<paramref name="min"/>, <paramref name="max"/>] (so NaN fails).</summary>
    public static void InRange(float value, string name, float min, float max)
    {
        if (!(value >= min && value <= max))
            throw new ArgumentException($"'{name}' must lie in [{min}, {max}] but is {value}", name);
    }

    /// <summary>The value lies in [0, 1) (a probability that must leave something, a decay rate); NaN fails.</summary>
    public static void Fraction(float value, string name)
    {
        if (!(value >= 0f && value < 1f))
            throw new ArgumentException($"'{name}' must lie in [0, 1) but is {value}", name);
    }

    /// <summary>The count is positive.</summary>
    public static void Positive(int value, string name)
    {
        if (value <= 0)
            throw new ArgumentException($"'{name}' must be positive but is {value}", name);
    }

    /// <summary>The two tensors share no element (an output may not overwrite an input it still reads).</summary>
    public static void Disjoint(Tensor a, string aName, Tensor b, string bName)
    {
        if (!ReferenceEquals(a.Storage, b.Storage)) return;
        int size = a.DType.SizeInBytes();
        long aStart = a.Offset * size, aEnd = aStart + a.ElementCount * size;
        long bStart = b.Offset * b.DType.SizeInBytes(), bEnd = bStart + b.ElementCount * b.DType.SizeInBytes();
        if (aStart < bEnd && bStart < aEnd && a.ElementCount > 0 && b.ElementCount > 0)
            throw new ArgumentException($"operand '{aName}' {a.Shape} overlaps '{bName}' {b.Shape} in memory", aName);
    }

    /// <summary>
    /// The two tensors are the very same view or share no element. An op may accept the same view twice where
    /// element i is only ever touched by the thread that owns element i (an element-wise op in place, two
    /// gradients of one value); a partial overlap would let one thread read or write what another is writing.
    /// </summary>
    public static void SameViewOrDisjoint(Tensor a, string aName, Tensor b, string bName)
    {
        if (ReferenceEquals(a.Storage, b.Storage) && a.Offset == b.Offset && a.DType == b.DType && a.Shape == b.Shape) return;
        Disjoint(a, aName, b, bName);
    }

    /// <summary>Every pair of the outputs an op writes (null entries skipped) is the same view or disjoint.</summary>
    public static void OutputsApart(ReadOnlySpan<(Tensor? Tensor, string Name)> outputs)
    {
        for (int j = 1; j < outputs.Length; j++)
            for (int i = 0; i < j; i++)
                if (outputs[j].Tensor is { } later && outputs[i].Tensor is { } earlier)
                    SameViewOrDisjoint(later, outputs[j].Name, earlier, outputs[i].Name);
    }
}

/// <summary>
/// The context of a <see cref="Check.Shape"/> message: an interpolated-string handler that compares the shapes
/// first and formats its holes only when they differ.
/// </summary>
[InterpolatedStringHandler]
internal ref struct ShapeMismatchContext
{
    private DefaultInterpolatedStringHandler _message;

    public ShapeMismatchContext(int literalLength, int formattedCount, Tensor tensor, ReadOnlySpan<int> expected, out bool isMismatch)
    {
        IsMismatch = isMismatch = !tensor.Shape.Dimensions.SequenceEqual(expected);
        _message = isMismatch ? new DefaultInterpolatedStringHandler(literalLength, formattedCount, CultureInfo.InvariantCulture) : default;
    }

    /// <summary>Whether the shapes differ (and the message was built).</summary>
    public bool IsMismatch { get; }

    public void AppendLiteral(string value) => _message.AppendLiteral(value);

    public void AppendFormatted<T>(T value) => _message.AppendFormatted(value);

    public string ToStringAndClear() => _message.ToStringAndClear();
}
