namespace DeepScaleLM.Training.Checkpoints;

/// <summary>One tensor's header record: name, dtype, shape and its byte range relative to the first byte after
/// the header.</summary>
/// <param name="Name">The tensor's name (the header key).</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
/// <param name="DataBegin">First byte of the data, relative to the byte after the header.</param>
/// <param name="DataEnd">One past the last byte of the data, relative to the byte after the header.</param>
public sealed record SafeTensorsEntry(string Name, SafeTensorsDType DType, int[] Shape, long DataBegin, long DataEnd)
{
    /// <summary>Product of the dimensions (1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (int d in Shape) count *= d;
            return count;
        }
    }

    /// <summary>Bytes of data: <see cref="DataEnd"/> - <see cref="DataBegin"/>.</summary>
    public long ByteCount => DataEnd - DataBegin;

    /// <summary>The shape as "[2, 3]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
