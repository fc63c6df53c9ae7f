namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// A training checkpoint folder: <c>model.safetensors</c> (parameters), <c>config.json</c> (architecture),
/// <c>training.json</c> (the run's options), <c>trainer-state.json</c> (<see cref="TrainerState"/>) and <c>optimizer.safetensors</c>
/// (<see cref="OptimizerMoments"/>), written as a whole by <see cref="CheckpointDirectory"/>: when any file fails,
/// the previous checkpoint stays intact and loadable.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The run's options (the Trainer's TrainingOptions as JSON), so a resume continues the same run.</summary>
    public const string OptionsFile = "training.json";

    /// <summary>Writes a complete checkpoint to <paramref name="directory"/>, replacing the previous one only when
    /// every file is on disk.</summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="configJson">The model config's JSON, stored as config.json; its SHA-256 must be the state's.</param>
    /// <param name="optionsJson">The run's options as JSON, stored as training.json.</param>
    /// <param name="writeModel">Writes model.safetensors (e.g. with <see cref="SafeTensorsFile.Write(Stream, DeepScaleLM.Native.Backend, IReadOnlyList{ValueTuple{string, DeepScaleLM.Native.Tensor}}, IReadOnlyDictionary{string, string})"/>).</param>
    /// <param name="state">The trainer state.</param>
    /// <param name="parameters">Parameter names and shapes in the order of the flat moment buffers.</param>
    /// <param name="firstMoment">AdamW's m for every parameter, flat.</param>
    /// <param name="secondMoment">AdamW's v for every parameter, flat.</param>
    /// <exception cref="ArgumentException">The state's config hash is not the hash of <paramref name="configJson"/>.</exception>
    public static void Write(string directory, ReadOnlyMemory<byte> configJson, ReadOnlyMemory<byte> optionsJson, Action<Stream> writeModel, TrainerState state,
        IReadOnlyList<(string Name, int[] Shape)> parameters, ReadOnlyMemory<float> firstMoment, ReadOnlyMemory<float> secondMoment)
    {
        ArgumentNullException.ThrowIfNull(writeModel);
        ArgumentNullException.ThrowIfNull(state);
        string hash = TrainerState.HashConfig(configJson.Span);
        if (hash != state.ConfigSha256)
            throw new ArgumentException($"the trainer state's config_sha256 {state.ConfigSha256} is not the SHA-256 of the config JSON ({hash})", nameof(state));
        CheckpointDirectory.Write(directory,
        [
            (CheckpointDirectory.ModelFile, writeModel),
            (CheckpointDirectory.ConfigFile, stream => stream.Write(configJson.Span)),
            (OptionsFile, stream => stream.Write(optionsJson.Span)),
            (CheckpointDirectory.TrainerStateFile, state.Write),
            (CheckpointDirectory.OptimizerFile, stream => OptimizerMoments.Write(stream, parameters, state.OptimizerStep, firstMoment.Span, secondMoment.Span)),
        ]);
    }

    /// <summary>Recovers <paramref name="directory"/> after a crash (<see cref="CheckpointDirectory.Recover"/>),
    /// checks that the five files are present and belong together, and returns the trainer state. The model and
    /// the moments are then read with <see cref="SafeTensorsReader"/> and <see cref="ReadOptimizerMoments"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">There is no checkpoint at <paramref name="directory"/>.</exception>
    /// <exception cref="CheckpointFormatException">A file is missing, the trainer state is invalid, or config.json is
    /// not the one the state was written with.</exception>
    /// <exception cref="SafeTensorsFormatException">model.safetensors or optimizer.safetensors has an invalid header.</exception>
    public static TrainerState ReadState(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!CheckpointDirectory.Recover(directory)) throw new DirectoryNotFoundException($"no checkpoint at '{directory}'");
        foreach (string name in new[] { CheckpointDirectory.ModelFile, CheckpointDirectory.ConfigFile, OptionsFile, CheckpointDirectory.TrainerStateFile, CheckpointDirectory.OptimizerFile })
        {
            string file = Path.Combine(directory, name);
            if (!File.Exists(file)) throw new CheckpointFormatException(file, "missing: a checkpoint folder holds model.safetensors, config.json, training.json, trainer-state.json and optimizer.safetensors");
        }
        var state = TrainerState.Read(Path.Combine(directory, CheckpointDirectory.TrainerStateFile));
        string configPath = Path.Combine(directory, CheckpointDirectory.ConfigFile);
        string hash = TrainerState.HashConfig(File.ReadAllBytes(configPath));
        if (hash != state.ConfigSha256)
            throw new CheckpointFormatException(configPath, $"SHA-256 {hash} differs from the config_sha256 {state.ConfigSha256} in {CheckpointDirectory.TrainerStateFile}: the config does not belong to this trainer state");
        using (SafeTensorsReader.Open(Path.Combine(directory, CheckpointDirectory.ModelFile))) { } // header check only
        return state;
    }

    /// <summary>Reads the optimizer moments of the checkpoint in <paramref name="directory"/> whose state is
    /// <paramref name="state"/> (see <see cref="OptimizerMoments.Read"/> for the checks).</summary>
    public static void ReadOptimizerMoments(string directory, TrainerState state, IReadOnlyList<(string Name, int[] Shape)> parameters,
        Span<float> firstMoment, Span<float> secondMoment)
    {
        ArgumentNullException.ThrowIfNull(state);
        OptimizerMoments.Read(Path.Combine(directory, CheckpointDirectory.OptimizerFile), parameters, state.OptimizerStep, firstMoment, secondMoment);
    }
}
