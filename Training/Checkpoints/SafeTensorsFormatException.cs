namespace DeepScaleLM.Training.Checkpoints;

/// <summary>A safetensors file is truncated, corrupt, or does not match what the caller expected. The message
/// starts with the file path and names the problem (and the tensor, where one is involved).</summary>
public sealed class SafeTensorsFormatException : IOException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>.</summary>
    public SafeTensorsFormatException(string filePath, string problem, string? tensorName = null, Exception? inner = null)
        : base(tensorName is null ? $"{filePath}: {problem}" : $"{filePath}: tensor '{tensorName}': {problem}", inner)
    {
        FilePath = filePath;
        Problem = problem;
        TensorName = tensorName;
    }

    /// <summary>The file that failed to read.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong, without the file path.</summary>
    public string Problem { get; }

    /// <summary>The tensor concerned, or null when the problem is in the file as a whole.</summary>
    public string? TensorName { get; }
}
