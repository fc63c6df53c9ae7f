using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;
using DeepScaleLM.Native;
using Microsoft.Win32.SafeHandles;

namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// Reads a safetensors file tensor by tensor: <see cref="Open"/> reads and validates only the header; each
/// <c>Read</c> call reads one tensor's bytes straight from the file into the destination.
/// </summary>
/// <remarks>
/// Validation follows the reference implementation: the file holds at least the 8-byte length prefix; the header
/// length is at most <see cref="MaxHeaderBytes"/> and fits in the file; the header is UTF-8 JSON whose top level is
/// an object; <c>__metadata__</c>, when present, maps strings to strings; every other key is a tensor with a
/// known dtype, non-negative shape and <c>data_offsets</c> [begin, end]; end - begin equals
/// product(shape) * dtype size; sorted by begin, the ranges start at 0 and tile the data with no hole and no
/// overlap; and the last range ends exactly at the end of the file (trailing bytes are an error). Every failure is
/// a <see cref="SafeTensorsFormatException"/> naming the file and the problem.
/// </remarks>
public sealed class SafeTensorsReader : IDisposable
{
    /// <summary>The header key that holds the string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Largest header accepted (the reference implementation's limit: 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    const int ChunkElements = 1 << 26;

    readonly SafeFileHandle _file;
    readonly long _dataStart;
    readonly Dictionary<string, SafeTensorsEntry> _byName;

    SafeTensorsReader(string path, SafeFileHandle file, long dataStart, List<SafeTensorsEntry> entries, Dictionary<string, string> metadata)
    {
        FilePath = path;
        _file = file;
        _dataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    /// <summary>The file being read.</summary>
    public string FilePath { get; }

    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }

    /// <summary>The <c>__metadata__</c> pairs (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens <paramref name="path"/> and validates its header against the file's length.</summary>
    /// <exception cref="SafeTensorsFormatException">The file is truncated or its header is invalid.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafeTensorsReader Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors I/O assumes a little-endian machine");
        var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            long fileLength = RandomAccess.GetLength(file);
            if (fileLength < 8)
                throw new SafeTensorsFormatException(path, $"file is {fileLength} bytes, shorter than the 8-byte header length prefix");
            Span<byte> prefix = stackalloc byte[8];
            ReadExactly(file, prefix, 0);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeaderBytes)
                throw new SafeTensorsFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            if ((long)headerLength > fileLength - 8)
                throw new SafeTensorsFormatException(path, $"header length {headerLength} is larger than the {fileLength - 8} bytes after the prefix (file truncated or length corrupt)");
            var header = new byte[headerLength];
            ReadExactly(file, header, 8);
            var (entries, metadata) = ParseHeader(path, header, fileLength - 8 - (long)headerLength);
            return new SafeTensorsReader(path, file, 8 + (long)headerLength, entries, metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>True when the file holds a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The header record of <paramref name="name"/>.</summary>
    /// <exception cref="SafeTensorsFormatException">The file holds no such tensor.</exception>
    public SafeTensorsEntry Get(string name) =>
        _byName.TryGetValue(name, out var entry) ? entry
        : throw new SafeTensorsFormatException(FilePath, "missing tensor: the file holds no tensor of this name", name);

    /// <summary>Reads tensor <paramref name="name"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="SafeTensorsFormatException">The tensor is missing, has another dtype, or another element
    /// count than <paramref name="destination"/>.</exception>
    public void Read<T>(string name, Span<T> destination) where T : unmanaged
    {
        var entry = Get(name);
        var dtype = SafeTensorsDTypes.Of<T>();
        if (entry.DType != dtype)
            throw new SafeTensorsFormatException(FilePath, $"expected dtype {dtype.HeaderName()} but found {entry.DType.HeaderName()}", name);
        if (entry.ElementCount != destination.Length)
            throw new SafeTensorsFormatException(FilePath, $"expected {destination.Length} elements but found {entry.ElementCount} (shape {entry.ShapeText})", name);
        long offset = _dataStart + entry.DataBegin;
        for (int start = 0; start < destination.Length; start += ChunkElements)
        {
            var bytes = MemoryMarshal.AsBytes(destination.Slice(start, Math.Min(ChunkElements, destination.Length - start)));
            ReadExactly(_file, bytes, offset);
            offset += bytes.Length;
        }
    }

    /// <summary>Reads a float32 tensor into a new array.</summary>
    public float[] ReadFloat32(string name)
    {
        var values = new float[CheckedCount(Get(name))];
        Read<float>(name, values);
        return values;
    }

    /// <summary>Reads an int32 tensor into a new array.</summary>
    public int[] ReadInt32(string name)
    {
        var values = new int[CheckedCount(Get(name))];
        Read<int>(name, values);
        return values;
    }

    /// <summary>Reads tensor <paramref name="name"/> into <paramref name="destination"/> on
    /// <paramref name="backend"/>, after checking that dtype and shape match it exactly. A CPU tensor is filled
    /// straight from the file; other devices go through one host copy of this tensor.</summary>
    /// <exception cref="SafeTensorsFormatException">The tensor is missing or its dtype or shape differs; the
    /// message names the file, the tensor, and the expected and found values.</exception>
    public void ReadInto(string name, Backend backend, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(destination);
        var entry = Get(name);
        var expected = SafeTensorsDTypes.From(destination.DType);
        if (entry.DType != expected)
            throw new SafeTensorsFormatException(FilePath, $"expected dtype {expected.HeaderName()} but found {entry.DType.HeaderName()}", name);
        if (!entry.Shape.AsSpan().SequenceEqual(destination.Shape.Dimensions))
            throw new SafeTensorsFormatException(FilePath, $"expected shape {destination.Shape} but found {entry.ShapeText}", name);
        if (destination.Device.Kind == DeviceKind.Cpu && destination.ElementCount <= int.MaxValue)
        {
            // CPU tensors: read the file straight into the tensor's memory, no host copy.
            if (destination.DType == DType.Float32) Read(name, destination.AsSpan<float>());
            else Read(name, destination.AsSpan<int>());
            GC.KeepAlive(destination);
        }
        else if (destination.DType == DType.Float32) backend.Upload<float>(destination, ReadFloat32(name));
        else backend.Upload<int>(destination, ReadInt32(name));
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file.Dispose();

    int CheckedCount(SafeTensorsEntry entry) =>
        entry.ElementCount <= Array.MaxLength ? (int)entry.ElementCount
        : throw new SafeTensorsFormatException(FilePath, $"{entry.ElementCount} elements do not fit in one array", entry.Name);

    static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset)
    {
        while (buffer.Length > 0)
        {
            int read = RandomAccess.Read(file, buffer, offset);
            if (read == 0) throw new EndOfStreamException("the file ended early");
            buffer = buffer[read..];
            offset += read;
        }
    }

    static (List<SafeTensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        if (!Utf8.IsValid(header)) throw new SafeTensorsFormatException(path, "header is not valid UTF-8");
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new SafeTensorsFormatException(path, "header does not start with '{' (not a safetensors file, or header length corrupt)");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(path, $"header is not valid JSON: {e.Message}", inner: e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException(path, "header is not a JSON object");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                string name = property.Name;
                if (!seen.Add(name)) throw new SafeTensorsFormatException(path, "key appears twice in the header", name);
                if (name == MetadataKey)
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new SafeTensorsFormatException(path, "__metadata__ is not an object of strings");
                    foreach (var pair in property.Value.EnumerateObject())
                    {
                        if (pair.Value.ValueKind != JsonValueKind.String)
                            throw new SafeTensorsFormatException(path, $"__metadata__ value of '{pair.Name}' is not a string");
                        if (!metadata.TryAdd(pair.Name, pair.Value.GetString()!))
                            throw new SafeTensorsFormatException(path, $"__metadata__ key '{pair.Name}' appears twice");
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, name, property.Value));
            }
            CheckLayout(path, entries, dataLength);
            return (entries, metadata);
        }
    }

    static SafeTensorsEntry ParseEntry(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException(path, "header record is not an object", name);
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafeTensorsFormatException(path, "header record has no string 'dtype'", name);
        string dtypeName = dtypeElement.GetString()!;
        if (!SafeTensorsDTypes.TryParse(dtypeName, out var dtype))
            throw new SafeTensorsFormatException(path, $"unknown dtype '{dtypeName}' (known: F32, I32, BF16, F16)", name);
        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsFormatException(path, "header record has no 'shape' array", name);
        var shape = new int[shapeElement.GetArrayLength()];
        int axis = 0;
        long count = 1;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw new SafeTensorsFormatException(path, $"shape entry {axis} is not a non-negative 32-bit integer", name);
            shape[axis++] = dim;
            count = count > 0 && dim > long.MaxValue / 8 / count ? -1 : count * dim;
            if (count < 0) throw new SafeTensorsFormatException(path, "shape's element count overflows", name);
        }
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < 0)
            throw new SafeTensorsFormatException(path, "'data_offsets' is not an array of two non-negative integers", name);
        if (end < begin) throw new SafeTensorsFormatException(path, $"data_offsets [{begin}, {end}] end before they begin", name);
        long expectedBytes = count * dtype.SizeInBytes();
        if (end - begin != expectedBytes)
            throw new SafeTensorsFormatException(path,
                $"shape/offset mismatch: data_offsets [{begin}, {end}] hold {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtypeName} needs {expectedBytes}", name);
        return new SafeTensorsEntry(name, dtype, shape, begin, end);
    }

    static void CheckLayout(string path, List<SafeTensorsEntry> entries, long dataLength)
    {
        // The reference rule: sorted by begin, each range starts where the previous one ended (no hole, no
        // overlap), starting at 0, and the last ends exactly at the end of the file.
        var sorted = entries.OrderBy(e => e.DataBegin).ThenBy(e => e.DataEnd).ToArray();
        long expectedBegin = 0;
        SafeTensorsEntry? previous = null;
        foreach (var e in sorted)
        {
            if (e.DataEnd > dataLength)
                throw new SafeTensorsFormatException(path, $"data_offsets [{e.DataBegin}, {e.DataEnd}] run past the {dataLength} data bytes in the file (out of range or truncated)", e.Name);
            if (e.DataBegin < expectedBegin)
                throw new SafeTensorsFormatException(path, $"data_offsets [{e.DataBegin}, {e.DataEnd}] overlap tensor '{previous!.Name}' [{previous.DataBegin}, {previous.DataEnd}]", e.Name);
            if (e.DataBegin > expectedBegin)
                throw new SafeTensorsFormatException(path, $"data_offsets [{e.DataBegin}, {e.DataEnd}] leave a hole: bytes [{expectedBegin}, {e.DataBegin}) belong to no tensor", e.Name);
            expectedBegin = e.DataEnd;
            previous = e;
        }
        if (expectedBegin != dataLength)
            throw new SafeTensorsFormatException(path, $"{dataLength - expectedBegin} trailing bytes after the last tensor's data (the format forbids them)");
    }
}
