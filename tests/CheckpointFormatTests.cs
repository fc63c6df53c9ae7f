using System.Buffers.Binary;
using System.Text;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Training.Checkpoints;

namespace DeepScaleLM.Tests;

/// <summary>The safetensors writer and reader: round trips, bytes fixed by the spec, and every corruption case
/// giving an error that names the file and the problem.</summary>
public sealed class CheckpointFormatTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("dslm-checkpoint-format-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    string PathOf(string name) => Path.Combine(_folder, name);

    /// <summary>A file built by hand from the spec: 8-byte little-endian length, the header padded with spaces to
    /// a multiple of 8, then the data. Independent of <see cref="SafeTensorsWriter"/>.</summary>
    string RawFile(string name, string header, byte[] data, long? headerLengthOverride = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        int padded = (json.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(headerLengthOverride ?? padded));
        json.CopyTo(bytes, 8);
        for (int i = 8 + json.Length; i < 8 + padded; i++) bytes[i] = (byte)' ';
        data.CopyTo(bytes, 8 + padded);
        string path = PathOf(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static SafeTensorsFormatException OpenFails(string path)
    {
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsReader.Open(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        return e;
    }

    [Fact]
    public void RoundTripOfSeveralTensorsIncludingEmptyAndScalar()
    {
        float[] matrix = Enumerable.Range(0, 24).Select(i => i * 0.5f - 3f).ToArray();
        int[] ids = [7, -1, int.MaxValue, int.MinValue, 0];
        string path = PathOf("round.safetensors");
        using (var stream = File.Create(path))
        {
            var writer = new SafeTensorsWriter(stream,
            [
                ("matrix", SafeTensorsDType.F32, [2, 3, 4]),
                ("empty", SafeTensorsDType.F32, [0]),
                ("scalar", SafeTensorsDType.F32, []),
                ("one", SafeTensorsDType.F32, [1]),
                ("ids", SafeTensorsDType.I32, [5]),
                ("empty2d", SafeTensorsDType.I32, [3, 0]),
            ]);
            writer.WriteTensor<float>(matrix);
            writer.WriteTensor<float>([]);
            writer.WriteTensor<float>([float.NaN]);
            writer.WriteTensor<float>([-0f]);
            writer.WriteTensor<int>(ids);
            writer.WriteTensor<int>([]);
            writer.Complete();
        }
        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(["matrix", "empty", "scalar", "one", "ids", "empty2d"], reader.Entries.Select(e => e.Name));
        Assert.Equal(matrix, reader.ReadFloat32("matrix"));
        Assert.Equal([2, 3, 4], reader.Get("matrix").Shape);
        Assert.Empty(reader.ReadFloat32("empty"));
        Assert.Equal([0], reader.Get("empty").Shape);
        Assert.Empty(reader.Get("scalar").Shape);
        Assert.True(float.IsNaN(reader.ReadFloat32("scalar")[0]));
        Assert.True(float.IsNegative(reader.ReadFloat32("one")[0]));
        Assert.Equal(ids, reader.ReadInt32("ids"));
        Assert.Empty(reader.ReadInt32("empty2d"));
        Assert.Equal([3, 0], reader.Get("empty2d").Shape);
        Assert.Empty(reader.Metadata);
        Assert.Equal(0, (8 + BinaryPrimitives.ReadInt64LittleEndian(File.ReadAllBytes(path))) % 8);
    }

    [Fact]
    public void MetadataRoundTrips()
    {
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["step"] = "1200", ["note"] = "ünïcode \"quoted\" \\ <tag>" };
        string path = PathOf("meta.safetensors");
        using (var stream = File.Create(path))
        {
            var writer = new SafeTensorsWriter(stream, [("w", SafeTensorsDType.F32, [1])], metadata);
            writer.WriteTensor<float>([1f]);
            writer.Complete();
        }
        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(metadata.OrderBy(p => p.Key), reader.Metadata.OrderBy(p => p.Key));
    }

    [Fact]
    public void WriterProducesTheBytesTheSpecPrescribes()
    {
        // Written by hand from the safetensors spec: u64 little-endian header length (138 bytes of JSON + 6 spaces
        // of padding = 144 = 0x90), compact JSON with __metadata__ first, then the little-endian data.
        var expected = new List<byte> { 0x90, 0, 0, 0, 0, 0, 0, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes(
            "{\"__metadata__\":{\"format\":\"pt\"}," +
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
            "\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[8,12]}}" + "      "));
        expected.AddRange([0x00, 0x00, 0x80, 0x3F]); // 1.0f
        expected.AddRange([0x00, 0x00, 0x00, 0xC0]); // -2.0f
        expected.AddRange([0x2A, 0x00, 0x00, 0x00]); // 42

        using var stream = new MemoryStream();
        var writer = new SafeTensorsWriter(stream, [("a", SafeTensorsDType.F32, [2]), ("b", SafeTensorsDType.I32, [])],
            new Dictionary<string, string> { ["format"] = "pt" });
        writer.WriteTensor<float>([1f, -2f]);
        writer.WriteTensor<int>([42]);
        writer.Complete();
        Assert.Equal(expected.ToArray(), stream.ToArray());

        // And the reader accepts the hand-written bytes.
        string path = PathOf("spec.safetensors");
        File.WriteAllBytes(path, expected.ToArray());
        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal([1f, -2f], reader.ReadFloat32("a"));
        Assert.Equal([42], reader.ReadInt32("b"));
        Assert.Equal("pt", reader.Metadata["format"]);
    }

    [Fact]
    public void ReaderAcceptsUnpaddedHeadersAndOffsetsOutOfHeaderOrder()
    {
        // Other writers may skip the padding and list tensors in any order; the spec allows both.
        var data = new byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(data, 5);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(8), 2.5f);
        string header = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        var json = Encoding.ASCII.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        string path = PathOf("unpadded.safetensors");
        File.WriteAllBytes(path, bytes);
        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal([5], reader.ReadInt32("a"));
        Assert.Equal([1.5f, 2.5f], reader.ReadFloat32("b"));
    }

    [Fact]
    public void BackendTensorsRoundTripThroughAnAtomicFile()
    {
        using var backend = new CpuBackend();
        using var weight = backend.Allocate(3, 2);
        using var ids = backend.Allocate(DType.Int32, 4);
        backend.Upload<float>(weight, [1, 2, 3, 4, 5, 6]);
        backend.Upload<int>(ids, [9, 8, 7, 6]);
        string path = PathOf("model.safetensors");
        SafeTensorsFile.Write(path, backend, [("w", weight), ("ids", ids)], new Dictionary<string, string> { ["k"] = "v" });

        using var weightBack = backend.Allocate(3, 2);
        using var idsBack = backend.Allocate(DType.Int32, 4);
        using var reader = SafeTensorsReader.Open(path);
        reader.ReadInto("w", backend, weightBack);
        reader.ReadInto("ids", backend, idsBack);
        var w = new float[6];
        var i = new int[4];
        backend.Download<float>(w, weightBack);
        backend.Download<int>(i, idsBack);
        Assert.Equal([1f, 2, 3, 4, 5, 6], w);
        Assert.Equal([9, 8, 7, 6], i);
        Assert.Equal("v", reader.Metadata["k"]);
        Assert.Single(Directory.GetFiles(_folder)); // no temporary file left
    }

    [Fact]
    public void ReadIntoAMismatchedTensorNamesFileTensorExpectedAndFound()
    {
        using var backend = new CpuBackend();
        using var weight = backend.Allocate(2, 3);
        string path = PathOf("mismatch.safetensors");
        SafeTensorsFile.Write(path, backend, [("w", weight)]);
        using var reader = SafeTensorsReader.Open(path);

        using var transposed = backend.Allocate(3, 2);
        var shape = Assert.Throws<SafeTensorsFormatException>(() => reader.ReadInto("w", backend, transposed));
        Assert.Equal($"{path}: tensor 'w': expected shape [3, 2] but found [2, 3]", shape.Message);

        using var ints = backend.Allocate(DType.Int32, 2, 3);
        var dtype = Assert.Throws<SafeTensorsFormatException>(() => reader.ReadInto("w", backend, ints));
        Assert.Equal($"{path}: tensor 'w': expected dtype I32 but found F32", dtype.Message);

        var missing = Assert.Throws<SafeTensorsFormatException>(() => reader.ReadInto("layers.0.w", backend, weight));
        Assert.Equal("layers.0.w", missing.TensorName);
        Assert.Contains("missing tensor", missing.Message);
        Assert.StartsWith(path, missing.Message);
    }

    const string OneTensor = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    [Fact]
    public void FileShorterThanTheLengthPrefix()
    {
        string path = PathOf("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        Assert.Contains("5 bytes, shorter than the 8-byte header length prefix", OpenFails(path).Problem);
    }

    [Fact]
    public void HeaderLengthLargerThanTheFile()
    {
        var flipped = OpenFails(RawFile("flipped.safetensors", OneTensor, new byte[8], headerLengthOverride: 1000));
        Assert.Contains("header length 1000 is larger than", flipped.Problem);
        var huge = OpenFails(RawFile("huge.safetensors", OneTensor, new byte[8], headerLengthOverride: long.MaxValue));
        Assert.Contains("exceeds the 100000000-byte limit", huge.Problem);
    }

    [Fact]
    public void TruncatedData()
    {
        string path = RawFile("truncated.safetensors", OneTensor, new byte[8]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);
        var e = OpenFails(path);
        Assert.Equal("a", e.TensorName);
        Assert.Contains("run past the 5 data bytes", e.Problem);
    }

    [Fact]
    public void HeaderNotUtf8()
    {
        string path = RawFile("latin1.safetensors", OneTensor, new byte[8]);
        var bytes = File.ReadAllBytes(path);
        bytes[10] = 0xFF; // inside the name "a"
        File.WriteAllBytes(path, bytes);
        Assert.Equal("header is not valid UTF-8", OpenFails(path).Problem);
    }

    [Fact]
    public void HeaderNotJson()
    {
        Assert.StartsWith("header is not valid JSON", OpenFails(RawFile("bad.safetensors", "{\"a\":{\"dtype\":", [])).Problem);
        Assert.StartsWith("header does not start with '{'", OpenFails(RawFile("array.safetensors", "[1,2]", [])).Problem);
    }

    [Fact]
    public void UnknownDtype()
    {
        var e = OpenFails(RawFile("dtype.safetensors", OneTensor.Replace("F32", "Q7"), new byte[8]));
        Assert.Equal("a", e.TensorName);
        Assert.Contains("unknown dtype 'Q7'", e.Problem);
    }

    [Fact]
    public void ReservedDtypeIsParsedButNotReadAsFloat32()
    {
        string path = RawFile("bf16.safetensors", "{\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", new byte[4]);
        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(SafeTensorsDType.BF16, reader.Get("h").DType);
        var e = Assert.Throws<SafeTensorsFormatException>(() => reader.ReadFloat32("h"));
        Assert.Equal("expected dtype F32 but found BF16", e.Problem);
    }

    [Fact]
    public void ShapeDisagreesWithOffsets()
    {
        var e = OpenFails(RawFile("shape.safetensors", OneTensor.Replace("[2]", "[3]"), new byte[8]));
        Assert.Equal("a", e.TensorName);
        Assert.Contains("shape/offset mismatch: data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12", e.Problem);
    }

    [Fact]
    public void OverlappingOffsets()
    {
        string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        var e = OpenFails(RawFile("overlap.safetensors", header, new byte[12]));
        Assert.Equal("b", e.TensorName);
        Assert.Contains("overlap tensor 'a' [0, 8]", e.Problem);
    }

    [Fact]
    public void HoleBetweenTensors()
    {
        string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        var e = OpenFails(RawFile("hole.safetensors", header, new byte[12]));
        Assert.Equal("b", e.TensorName);
        Assert.Contains("leave a hole: bytes [4, 8)", e.Problem);
    }

    [Fact]
    public void OffsetsOutOfRange()
    {
        var e = OpenFails(RawFile("range.safetensors", OneTensor.Replace("[0,8]", "[8,16]").Replace("[2]", "[2]"), new byte[8]));
        Assert.Contains("run past the 8 data bytes", e.Problem);
    }

    [Fact]
    public void TrailingBytesAfterTheData()
    {
        Assert.Contains("4 trailing bytes after the last tensor's data", OpenFails(RawFile("trailing.safetensors", OneTensor, new byte[12])).Problem);
    }

    [Fact]
    public void DuplicateNamesAndBadMetadata()
    {
        string twice = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
        Assert.Contains("appears twice", OpenFails(RawFile("twice.safetensors", twice, [])).Problem);
        Assert.Contains("is not a string", OpenFails(RawFile("meta.safetensors", "{\"__metadata__\":{\"n\":1}}", [])).Problem);
    }

    [Fact]
    public void MissingTensor()
    {
        using var reader = SafeTensorsReader.Open(RawFile("one.safetensors", OneTensor, new byte[8]));
        var e = Assert.Throws<SafeTensorsFormatException>(() => reader.ReadFloat32("b"));
        Assert.Equal("b", e.TensorName);
        Assert.Contains("missing tensor", e.Problem);
    }

    [Fact]
    public void EveryTruncationAndHeaderByteCorruptionIsANamedFormatErrorOrStillValid()
    {
        // Any damage to a valid file either leaves a file that still validates, or gives SafeTensorsFormatException:
        // never an IndexOutOfRange, Overflow, EndOfStream or JSON exception escaping.
        using var stream = new MemoryStream();
        var writer = new SafeTensorsWriter(stream, [("a", SafeTensorsDType.F32, [2, 2]), ("b", SafeTensorsDType.I32, [0]), ("c", SafeTensorsDType.I32, [])],
            new Dictionary<string, string> { ["k"] = "v" });
        writer.WriteTensor<float>([1f, 2f, 3f, 4f]);
        writer.WriteTensor<int>([]);
        writer.WriteTensor<int>([5]);
        writer.Complete();
        var valid = stream.ToArray();
        string path = PathOf("fuzz.safetensors");

        void Check(byte[] bytes)
        {
            File.WriteAllBytes(path, bytes);
            try
            {
                using var reader = SafeTensorsReader.Open(path);
                foreach (var e in reader.Entries)
                {
                    if (e.DType == SafeTensorsDType.F32) reader.ReadFloat32(e.Name);
                    else if (e.DType == SafeTensorsDType.I32) reader.ReadInt32(e.Name);
                }
            }
            catch (SafeTensorsFormatException e)
            {
                Assert.Equal(path, e.FilePath);
            }
        }

        for (int length = 0; length < valid.Length; length++) Check(valid[..length]);
        long dataStart = 8 + BinaryPrimitives.ReadInt64LittleEndian(valid);
        foreach (byte value in new byte[] { 0x00, 0x20, 0x22, 0x2C, 0x31, 0x39, 0x5B, 0x5D, 0x7B, 0x7D, 0x80, 0xFF })
        {
            for (int i = 0; i < dataStart; i++)
            {
                var bytes = (byte[])valid.Clone();
                bytes[i] = value;
                Check(bytes);
            }
        }
    }

    [Fact]
    public void WriterRejectsBadDeclarationsAndWrongData()
    {
        using var stream = new MemoryStream();
        Assert.Throws<ArgumentException>(() => new SafeTensorsWriter(stream, [("a", SafeTensorsDType.F32, [1]), ("a", SafeTensorsDType.F32, [1])]));
        Assert.Throws<ArgumentException>(() => new SafeTensorsWriter(stream, [("__metadata__", SafeTensorsDType.F32, [1])]));
        Assert.Throws<ArgumentException>(() => new SafeTensorsWriter(stream, [("a", SafeTensorsDType.F32, [-1])]));
        Assert.Throws<ArgumentException>(() => new SafeTensorsWriter(stream, [("a", SafeTensorsDType.BF16, [1])]));
        var writer = new SafeTensorsWriter(stream, [("a", SafeTensorsDType.F32, [2]), ("b", SafeTensorsDType.I32, [1])]);
        Assert.Throws<ArgumentException>(() => writer.WriteTensor<float>([1f]));
        Assert.Throws<ArgumentException>(() => writer.WriteTensor<int>([1, 2]));
        writer.WriteTensor<float>([1f, 2f]);
        Assert.Throws<InvalidOperationException>(() => writer.Complete());
        writer.WriteTensor<int>([3]);
        writer.Complete();
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensor<int>([3]));
    }
}
