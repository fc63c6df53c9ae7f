using DeepScaleLM.Native;

namespace DeepScaleLM.Training.Checkpoints;

/// <summary>One-call writes of backend tensors as a safetensors file or stream.</summary>
public static class SafeTensorsFile
{
    /// <summary>Writes <paramref name="tensors"/> (downloaded one at a time) to <paramref name="destination"/>.</summary>
    public static void Write(Stream destination, Backend backend, IReadOnlyList<(string Name, Tensor Tensor)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(tensors);
        var declarations = tensors.Select(t => (t.Name, SafeTensorsDTypes.From(t.Tensor.DType), t.Tensor.Shape.Dimensions.ToArray())).ToArray();
        var writer = new SafeTensorsWriter(destination, declarations, metadata);
        foreach (var (_, tensor) in tensors) writer.WriteTensor(backend, tensor);
        writer.Complete();
    }

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> atomically (see
    /// <see cref="AtomicFile"/>): on any failure the previous file stays intact.</summary>
    public static void Write(string path, Backend backend, IReadOnlyList<(string Name, Tensor Tensor)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, stream => Write(stream, backend, tensors, metadata));
}
