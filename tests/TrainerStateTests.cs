using System.Text;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Precision;

namespace DeepScaleLM.Tests;

/// <summary>The trainer state and the optimizer moments of a checkpoint: round trips, every validation error naming
/// the file and the problem, and the checkpoint folder surviving a failure mid-write with the previous one loadable.</summary>
public sealed class TrainerStateTests
{
    static readonly byte[] Config = Encoding.UTF8.GetBytes("{\"layers\":2,\"width\":4}");

    static readonly (string Name, int[] Shape)[] Parameters = [("embedding.weight", [3, 2]), ("head.bias", [3]), ("scale", [])];

    static TrainerState State(long step = 100, LossScalerState? scaler = null) =>
        new(step, step - 2, TrainerState.HashConfig(Config), TokenizerSpec.Bpe("/data/gpt2"), ulong.MaxValue, step * 1024, 12.5, scaler);

    static float[] Moment(float start) => Enumerable.Range(0, 10).Select(i => start + i).ToArray(); // 6 + 3 + 1 values

    static string WriteState(TempFolder folder, TrainerState state)
    {
        string path = folder.File("trainer-state.json");
        AtomicFile.Write(path, state.Write);
        return path;
    }

    [Fact]
    public void StateRoundTripsWithAndWithoutLossScaler()
    {
        using var folder = new TempFolder();
        foreach (var state in new[] { State(), State(scaler: new LossScalerState(2048, 2000, 1, 1 << 24, 17, 3)) })
        {
            string path = WriteState(folder, state);
            Assert.Equal(state, TrainerState.Read(path));
        }
        // SHA-256 of the config bytes, checked against the FIPS 180-2 example "abc".
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", TrainerState.HashConfig("abc"u8));
        string json = File.ReadAllText(Path.Combine(folder.Path, "trainer-state.json"));
        Assert.Contains("\"seed\": 18446744073709551615", json);
        Assert.Contains("\"tokenizer\": \"bpe:/data/gpt2\"", json);
        Assert.Contains("\"clean_steps\": 17", json);
    }

    [Theory]
    [InlineData("\"format_version\": 1", "\"format_version\": 2", "format version 2 is not supported (this build reads version 1)")]
    [InlineData("\"format\": \"dslm-trainer-state\"", "\"format\": \"other\"", "format is 'other', expected 'dslm-trainer-state'")]
    [InlineData("\"seed\": 18446744073709551615,", "", "missing field 'seed'")]
    [InlineData("\"step\": 100", "\"step\": \"100\"", "field 'step' is String, expected Number")]
    [InlineData("\"optimizer_step\": 98", "\"optimizer_step\": 101", "optimizer_step 101 exceeds step 100")]
    [InlineData("\"tokenizer\": \"bpe:/data/gpt2\"", "\"tokenizer\": \"wordpiece\"", "field 'tokenizer': unknown tokenizer 'wordpiece'")]
    [InlineData("\"scale\": 2048", "\"scale\": 3000", "field 'loss_scaler' is inconsistent")]
    [InlineData("\"clean_steps\": 17", "\"clean_steps\": -1", "field 'loss_scaler.clean_steps' must be an integer >= 0")]
    [InlineData("\"loss_scaler\": {", "\"loss_scaler_x\": {", "missing field 'loss_scaler'")]
    public void InvalidStateIsAnErrorNamingTheFileAndTheProblem(string find, string replace, string problem)
    {
        using var folder = new TempFolder();
        string path = WriteState(folder, State(scaler: new LossScalerState(2048, 2000, 1, 1 << 24, 17, 3)));
        string json = File.ReadAllText(path);
        Assert.Contains(find, json);
        File.WriteAllText(path, json.Replace(find, replace));
        var e = Assert.Throws<CheckpointFormatException>(() => TrainerState.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void TruncatedOrCorruptStateIsAnError()
    {
        using var folder = new TempFolder();
        string path = WriteState(folder, State());
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Contains("not valid JSON (truncated or corrupt)", Assert.Throws<CheckpointFormatException>(() => TrainerState.Read(path)).Message);
        File.WriteAllBytes(path, [0x00, 0xFF, 0x10]);
        Assert.Contains("not valid JSON", Assert.Throws<CheckpointFormatException>(() => TrainerState.Read(path)).Message);
        Assert.Contains("cannot read", Assert.Throws<CheckpointFormatException>(() => TrainerState.Read(path + ".missing")).Message);
    }

    [Fact]
    public void OptimizerMomentsRoundTripByParameterName()
    {
        using var folder = new TempFolder();
        string path = folder.File("optimizer.safetensors");
        AtomicFile.Write(path, stream => OptimizerMoments.Write(stream, Parameters, 98, Moment(0), Moment(100)));

        using (var reader = SafeTensorsReader.Open(path))
        {
            Assert.Equal(["optimizer.first_moment.embedding.weight", "optimizer.second_moment.embedding.weight", "optimizer.first_moment.head.bias",
                "optimizer.second_moment.head.bias", "optimizer.first_moment.scale", "optimizer.second_moment.scale"], reader.Entries.Select(e => e.Name));
            Assert.Equal([106f, 107f, 108f], reader.ReadFloat32("optimizer.second_moment.head.bias"));
            Assert.Equal("98", reader.Metadata["optimizer_step"]);
        }
        var first = new float[10];
        var second = new float[10];
        OptimizerMoments.Read(path, Parameters, 98, first, second);
        Assert.Equal(Moment(0), first);
        Assert.Equal(Moment(100), second);
    }

    [Fact]
    public void MismatchedOptimizerMomentsAreErrorsNamingTheTensor()
    {
        using var folder = new TempFolder();
        string path = folder.File("optimizer.safetensors");
        AtomicFile.Write(path, stream => OptimizerMoments.Write(stream, Parameters, 98, Moment(0), Moment(100)));
        var first = new float[10];
        var second = new float[10];
        SafeTensorsFormatException Fails((string, int[])[] parameters, long step = 98) =>
            Assert.Throws<SafeTensorsFormatException>(() => OptimizerMoments.Read(path, parameters, step, first, second));

        var shape = Fails([("embedding.weight", [2, 3]), ("head.bias", [3]), ("scale", [])]);
        Assert.Equal("optimizer.first_moment.embedding.weight", shape.TensorName);
        Assert.Contains("expected shape [2, 3] but found [3, 2]", shape.Message);

        var missing = Fails([("embedding.weight", [3, 2]), ("head.weight", [3]), ("scale", [])]);
        Assert.Equal("optimizer.first_moment.head.weight", missing.TensorName);
        Assert.Contains("missing tensor", missing.Message);

        var extra = Assert.Throws<SafeTensorsFormatException>(() => OptimizerMoments.Read(path, [("embedding.weight", [3, 2]), ("head.bias", [3])], 98, new float[9], new float[9]));
        Assert.Equal("optimizer.first_moment.scale", extra.TensorName);

        Assert.Contains("optimizer_step is 98 but the trainer state says 99", Fails(Parameters, step: 99).Message);

        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);
        var truncated = Fails(Parameters);
        Assert.StartsWith(path + ": ", truncated.Message);
        Assert.Contains("truncated", truncated.Message);
    }

    static void WriteCheckpoint(string directory, TrainerState state, float weight, Action<Stream>? model = null) =>
        TrainingCheckpoint.Write(directory, Config, "{}"u8.ToArray(), model ?? (stream => WriteModel(stream, weight)), state, Parameters, Moment(weight), Moment(-weight));

    static void WriteModel(Stream stream, float weight)
    {
        var writer = new SafeTensorsWriter(stream, [("w", SafeTensorsDType.F32, [1000])]);
        writer.WriteTensor<float>(Enumerable.Repeat(weight, 1000).ToArray());
        writer.Complete();
    }

    static (TrainerState State, float Weight, float[] First) Load(string directory)
    {
        var state = TrainingCheckpoint.ReadState(directory);
        var first = new float[10];
        TrainingCheckpoint.ReadOptimizerMoments(directory, state, Parameters, first, new float[10]);
        using var model = SafeTensorsReader.Open(Path.Combine(directory, CheckpointDirectory.ModelFile));
        return (state, model.ReadFloat32("w")[999], first);
    }

    [Fact]
    public void CheckpointFolderHoldsTheFiveFilesAndLoadsBack()
    {
        using var folder = new TempFolder();
        string directory = Path.Combine(folder.Path, "checkpoint");
        WriteCheckpoint(directory, State(), 1);
        Assert.Equal(["config.json", "model.safetensors", "optimizer.safetensors", "trainer-state.json", "training.json"], Directory.GetFiles(directory).Select(Path.GetFileName).Order());
        Assert.Equal(Config, File.ReadAllBytes(Path.Combine(directory, "config.json")));
        var (state, weight, first) = Load(directory);
        Assert.Equal(State(), state);
        Assert.Equal(1f, weight);
        Assert.Equal(Moment(1), first);
    }

    [Fact]
    public void FailureMidWriteLeavesThePreviousCheckpointLoadable()
    {
        using var folder = new TempFolder();
        string directory = Path.Combine(folder.Path, "checkpoint");
        WriteCheckpoint(directory, State(step: 100), 1);

        // The model file fails halfway (a full disk, say): half its bytes are out when the writer throws.
        Assert.Throws<IOException>(() => WriteCheckpoint(directory, State(step: 200), 2, stream =>
        {
            stream.Write(new byte[2000]);
            throw new IOException("disk full");
        }));
        var (state, weight, first) = Load(directory);
        Assert.Equal(100, state.Step);
        Assert.Equal(1f, weight);
        Assert.Equal(Moment(1), first);
        Assert.Equal([directory], Directory.GetDirectories(folder.Path)); // no staging folder left behind

        // A crash between the two renames leaves only DIR.old-X: reading recovers it.
        Directory.Move(directory, directory + ".old-0123456789ab");
        Assert.Equal(100, Load(directory).State.Step);

        WriteCheckpoint(directory, State(step: 300), 3);
        Assert.Equal((300L, 3f), (Load(directory).State.Step, Load(directory).Weight));
    }

    [Fact]
    public void MismatchedOrMissingCheckpointFilesAreErrorsNamingTheFile()
    {
        using var folder = new TempFolder();
        string directory = Path.Combine(folder.Path, "checkpoint");
        Assert.Throws<DirectoryNotFoundException>(() => TrainingCheckpoint.ReadState(directory));
        var hashMismatch = Assert.Throws<ArgumentException>(() => WriteCheckpoint(directory, State() with { ConfigSha256 = new string('0', 64) }, 1));
        Assert.Contains("is not the SHA-256 of the config JSON", hashMismatch.Message);

        WriteCheckpoint(directory, State(), 1);
        string config = Path.Combine(directory, "config.json");
        File.WriteAllText(config, "{\"layers\":3,\"width\":4}");
        var e = Assert.Throws<CheckpointFormatException>(() => TrainingCheckpoint.ReadState(directory));
        Assert.Equal(config, e.FilePath);
        Assert.Contains("the config does not belong to this trainer state", e.Message);

        File.Delete(Path.Combine(directory, "optimizer.safetensors"));
        var missing = Assert.Throws<CheckpointFormatException>(() => TrainingCheckpoint.ReadState(directory));
        Assert.Equal(Path.Combine(directory, "optimizer.safetensors"), missing.FilePath);
        Assert.Contains("missing", missing.Message);
    }
}
