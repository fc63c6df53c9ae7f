using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using DeepScaleLM.Native;

namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// Streams a safetensors file: the header is written when the writer is created (all names, dtypes and shapes
/// are declared up front, so the offsets are known), then each tensor's data is written in declaration order with
/// <see cref="WriteTensor{T}"/>. Only one tensor is ever held in memory, never the whole file.
/// </summary>
/// <remarks>
/// Produces what the Hugging Face reference writer produces: an 8-byte little-endian header length N, N bytes of
/// compact UTF-8 JSON (<c>__metadata__</c> first when given, then the tensors in declaration order, each as
/// <c>{"dtype":..,"shape":[..],"data_offsets":[begin,end]}</c>), padded with spaces so the data starts at a
/// multiple of 8 bytes, then the tensors' bytes back to back, little-endian, with no holes.
/// </remarks>
public sealed class SafeTensorsWriter
{
    const int ChunkElements = 1 << 26; // keeps each span's byte length well under int.MaxValue

    readonly Stream _destination;
    readonly SafeTensorsEntry[] _entries;
    int _next;

    /// <summary>Validates the declarations and writes the header to <paramref name="destination"/>.</summary>
    /// <param name="destination">A writable stream positioned where the file starts.</param>
    /// <param name="tensors">Name, dtype and shape of every tensor, in the order their data will be written.</param>
    /// <param name="metadata">Optional string pairs stored under <c>__metadata__</c>.</param>
    /// <exception cref="ArgumentException">A name is empty, repeated or <c>__metadata__</c>; a dimension is negative;
    /// a dtype is not yet supported for writing.</exception>
    /// <exception cref="PlatformNotSupportedException">The machine is big-endian.</exception>
    public SafeTensorsWriter(Stream destination, IReadOnlyList<(string Name, SafeTensorsDType DType, int[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors I/O assumes a little-endian machine");
        _destination = destination;
        _entries = new SafeTensorsEntry[tensors.Count];
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var (name, dtype, shape) = tensors[i];
            if (string.IsNullOrEmpty(name)) throw new ArgumentException($"tensor {i} has an empty name", nameof(tensors));
            if (name == SafeTensorsReader.MetadataKey) throw new ArgumentException($"'{name}' is reserved for metadata", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"tensor name '{name}' appears twice", nameof(tensors));
            if (dtype is not (SafeTensorsDType.F32 or SafeTensorsDType.I32))
                throw new ArgumentException($"tensor '{name}': dtype {dtype.HeaderName()} is reserved but not yet written", nameof(tensors));
            ArgumentNullException.ThrowIfNull(shape);
            long count = 1;
            foreach (int d in shape)
            {
                if (d < 0) throw new ArgumentException($"tensor '{name}' has a negative dimension", nameof(tensors));
                count = checked(count * d);
            }
            long bytes = checked(count * dtype.SizeInBytes());
            _entries[i] = new SafeTensorsEntry(name, dtype, (int[])shape.Clone(), offset, offset + bytes);
            offset = checked(offset + bytes);
        }
        WriteHeader(metadata);
    }

    /// <summary>The header records, with their offsets, in write order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries => _entries;

    /// <summary>Writes the data of the next declared tensor.</summary>
    /// <exception cref="InvalidOperationException">Every declared tensor was already written.</exception>
    /// <exception cref="ArgumentException">The element type or count differs from the declaration.</exception>
    public void WriteTensor<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        if (_next == _entries.Length) throw new InvalidOperationException("every declared tensor has already been written");
        var entry = _entries[_next];
        var dtype = SafeTensorsDTypes.Of<T>();
        if (dtype != entry.DType)
            throw new ArgumentException($"tensor '{entry.Name}' is declared {entry.DType.HeaderName()} but given {dtype.HeaderName()} values", nameof(values));
        if (values.Length != entry.ElementCount)
            throw new ArgumentException($"tensor '{entry.Name}' {entry.ShapeText} has {entry.ElementCount} elements but {values.Length} were given", nameof(values));
        for (int start = 0; start < values.Length; start += ChunkElements)
            _destination.Write(MemoryMarshal.AsBytes(values.Slice(start, Math.Min(ChunkElements, values.Length - start))));
        _next++;
    }

    /// <summary>Downloads <paramref name="tensor"/> from <paramref name="backend"/> and writes it as the next
    /// declared tensor: a CPU tensor straight from its memory, others through one host copy of this tensor.</summary>
    public void WriteTensor(Backend backend, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Device.Kind == DeviceKind.Cpu && tensor.ElementCount <= int.MaxValue)
        {
            // CPU tensors: write straight from the tensor's memory, no host copy.
            if (tensor.DType == DType.Float32) WriteTensor<float>(tensor.AsSpan<float>());
            else WriteTensor<int>(tensor.AsSpan<int>());
            GC.KeepAlive(tensor);
        }
        else if (tensor.DType == DType.Float32)
        {
            var host = new float[tensor.ElementCount];
            backend.Download<float>(host, tensor);
            WriteTensor<float>(host);
        }
        else
        {
            var host = new int[tensor.ElementCount];
            backend.Download<int>(host, tensor);
            WriteTensor<int>(host);
        }
    }

    /// <summary>Checks that every declared tensor was written and flushes the stream.</summary>
    /// <exception cref="InvalidOperationException">Some declared tensors were not written.</exception>
    public void Complete()
    {
        if (_next != _entries.Length)
            throw new InvalidOperationException($"{_entries.Length - _next} declared tensors were not written (next: '{_entries[_next].Name}')");
        _destination.Flush();
    }

    void WriteHeader(IReadOnlyDictionary<string, string>? metadata)
    {
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(SafeTensorsReader.MetadataKey);
                foreach (var (key, value) in metadata) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            foreach (var e in _entries)
            {
                writer.WriteStartObject(e.Name);
                writer.WriteString("dtype", e.DType.HeaderName());
                writer.WriteStartArray("shape");
                foreach (int d in e.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(e.DataBegin);
                writer.WriteNumberValue(e.DataEnd);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        long length = json.Length;
        long padded = (length + 7) / 8 * 8; // data starts 8-byte aligned (8-byte prefix + multiple of 8)
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        _destination.Write(prefix);
        _destination.Write(json.GetBuffer().AsSpan(0, (int)length));
        for (long i = length; i < padded; i++) _destination.WriteByte((byte)' ');
    }
}
