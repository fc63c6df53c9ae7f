using DeepScaleLM.Training.Checkpoints;

namespace DeepScaleLM.Tests;

/// <summary>Atomic writes: a failure injected mid-write leaves the previous file or checkpoint folder
/// byte-identical and no temporary file or folder behind.</summary>
public sealed class CheckpointAtomicityTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("dslm-checkpoint-atomic-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Passes writes through until <paramref name="limit"/> bytes, then throws, like a disk filling up.</summary>
    sealed class ThrowAfterStream(Stream inner, long limit) : Stream
    {
        long _written;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            int allowed = (int)Math.Min(buffer.Length, limit - _written);
            inner.Write(buffer[..allowed]);
            _written += allowed;
            if (allowed < buffer.Length) throw new IOException($"injected failure after {limit} bytes");
        }
    }

    static void WriteTensors(Stream stream, float fill, int count)
    {
        var writer = new SafeTensorsWriter(stream, [("a", SafeTensorsDType.F32, [count]), ("b", SafeTensorsDType.I32, [count])]);
        writer.WriteTensor<float>(Enumerable.Repeat(fill, count).ToArray());
        writer.WriteTensor<int>(Enumerable.Repeat((int)fill, count).ToArray());
        writer.Complete();
    }

    static Dictionary<string, byte[]> Snapshot(string directory) =>
        Directory.GetFiles(directory).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    [Fact]
    public void AtomicFileFailureMidWriteKeepsThePreviousFile()
    {
        string path = Path.Combine(_folder, "tensors.safetensors");
        AtomicFile.Write(path, s => WriteTensors(s, 1f, 1000));
        var before = File.ReadAllBytes(path);

        foreach (long limit in new long[] { 0, 7, 100, 4100, 8000 })
        {
            var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, s => WriteTensors(new ThrowAfterStream(s, limit), 2f, 1000)));
            Assert.Contains("injected failure", e.Message);
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Equal([path], Directory.GetFileSystemEntries(_folder)); // the temporary file is gone
        }

        AtomicFile.Write(path, s => WriteTensors(s, 3f, 10));
        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(Enumerable.Repeat(3f, 10), reader.ReadFloat32("a"));
    }

    [Fact]
    public void CheckpointDirectoryFailureInAnyFileKeepsThePreviousCheckpoint()
    {
        string dir = Path.Combine(_folder, "ckpt");
        CheckpointDirectory.Write(dir,
        [
            (CheckpointDirectory.ModelFile, s => WriteTensors(s, 1f, 100)),
            (CheckpointDirectory.ConfigFile, s => s.Write("{\"layers\":2}"u8)),
            (CheckpointDirectory.TrainerStateFile, s => WriteTensors(s, 5f, 3)),
        ]);
        var before = Snapshot(dir);
        Assert.Equal(3, before.Count);

        // The failure hits the second file after the first is complete, and the third file mid-write.
        Assert.Throws<IOException>(() => CheckpointDirectory.Write(dir,
        [
            (CheckpointDirectory.ModelFile, s => WriteTensors(s, 2f, 100)),
            (CheckpointDirectory.ConfigFile, s => s.Write("{\"layers\":3}"u8)),
            (CheckpointDirectory.TrainerStateFile, s => WriteTensors(new ThrowAfterStream(s, 50), 6f, 3)),
        ]));
        Assert.Throws<InvalidOperationException>(() => CheckpointDirectory.Write(dir,
        [
            (CheckpointDirectory.ModelFile, s => WriteTensors(s, 2f, 100)),
            (CheckpointDirectory.ConfigFile, _ => throw new InvalidOperationException("config failed")),
        ]));

        var after = Snapshot(dir);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (name, bytes) in before) Assert.Equal(bytes, after[name]);
        Assert.Equal([dir], Directory.GetFileSystemEntries(_folder)); // no staging folder left
    }

    [Fact]
    public void CheckpointDirectorySuccessReplacesEveryFile()
    {
        string dir = Path.Combine(_folder, "ckpt");
        CheckpointDirectory.Write(dir, [("old-only.json", s => s.Write("{}"u8)), (CheckpointDirectory.ConfigFile, s => s.Write("1"u8))]);
        CheckpointDirectory.Write(dir, [(CheckpointDirectory.ConfigFile, s => s.Write("2"u8)), (CheckpointDirectory.ModelFile, s => WriteTensors(s, 4f, 2))]);
        Assert.Equal([CheckpointDirectory.ConfigFile, CheckpointDirectory.ModelFile], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        Assert.Equal("2", File.ReadAllText(Path.Combine(dir, CheckpointDirectory.ConfigFile)));
        Assert.Equal([dir], Directory.GetFileSystemEntries(_folder));
    }

    [Fact]
    public void RecoverRestoresThePreviousCheckpointAfterACrashBetweenTheRenames()
    {
        string dir = Path.Combine(_folder, "ckpt");
        // The state a crash between "DIR -> DIR.old-X" and "DIR.tmp-X -> DIR" leaves behind.
        Directory.CreateDirectory(dir + ".old-abc");
        File.WriteAllText(Path.Combine(dir + ".old-abc", "config.json"), "previous");
        Directory.CreateDirectory(dir + ".tmp-abc");
        File.WriteAllText(Path.Combine(dir + ".tmp-abc", "config.json"), "new but unconfirmed");

        Assert.True(CheckpointDirectory.Recover(dir));
        Assert.Equal("previous", File.ReadAllText(Path.Combine(dir, "config.json")));
        Assert.Equal([dir], Directory.GetFileSystemEntries(_folder));
        Assert.False(CheckpointDirectory.Recover(Path.Combine(_folder, "never-written")));
    }

    [Fact]
    public void CheckpointDirectoryRejectsFileNamesWithFolders()
    {
        Assert.Throws<ArgumentException>(() => CheckpointDirectory.Write(Path.Combine(_folder, "c"), [("../escape", _ => { })]));
        Assert.Throws<ArgumentException>(() => CheckpointDirectory.Write(Path.Combine(_folder, "c"), [("a", _ => { }), ("a", _ => { })]));
        Assert.Empty(Directory.GetFileSystemEntries(_folder));
    }
}
