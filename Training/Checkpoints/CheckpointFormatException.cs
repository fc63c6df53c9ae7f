namespace DeepScaleLM.Training.Checkpoints;

/// <summary>A checkpoint file other than a safetensors one (trainer-state.json, config.json) is missing, truncated,
/// corrupt, of another format version, or does not belong with the rest of the checkpoint. The message starts with
/// the file path and names the problem.</summary>
public sealed class CheckpointFormatException : IOException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>.</summary>
    public CheckpointFormatException(string filePath, string problem, Exception? inner = null)
        : base($"{filePath}: {problem}", inner)
    {
        FilePath = filePath;
        Problem = problem;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong, without the file path.</summary>
    public string Problem { get; }
}
