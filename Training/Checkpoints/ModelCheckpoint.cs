using DeepScaleLM.Layers;
using DeepScaleLM.Native;

namespace DeepScaleLM.Training.Checkpoints;

/// <summary>
/// The model half of a checkpoint folder (config.json + model.safetensors), for commands that use a trained model
/// without continuing its training: evaluation, generation, gradient dumps.
/// </summary>
public static class ModelCheckpoint
{
    /// <summary>The model of the checkpoint in <paramref name="directory"/>, built for <paramref name="batchSize"/> x
    /// <paramref name="tokens"/> (null: the model's sequence length), with the saved weights.</summary>
    /// <exception cref="DirectoryNotFoundException">There is no checkpoint at <paramref name="directory"/>.</exception>
    /// <exception cref="CheckpointFormatException">config.json is missing or invalid, or model.safetensors lacks a parameter
    /// or holds one with another shape.</exception>
    /// <exception cref="SafeTensorsFormatException">model.safetensors is truncated or corrupt.</exception>
    public static TransformerModel Load(Backend backend, string directory, int batchSize, int? tokens = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!CheckpointDirectory.Recover(directory)) throw new DirectoryNotFoundException($"no checkpoint at '{directory}'");
        var config = ReadConfig(directory);
        var model = TransformerModel.Create(backend, config, batchSize, tokens ?? config.SequenceLength);
        try
        {
            ReadWeights(model, directory);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The validated model config of the checkpoint in <paramref name="directory"/>.</summary>
    /// <exception cref="CheckpointFormatException">config.json is missing, unreadable or invalid.</exception>
    public static ModelConfig ReadConfig(string directory) => ReadJson(directory, CheckpointDirectory.ConfigFile, ModelConfig.FromJson);

    /// <summary>Reads every parameter of <paramref name="model"/> from the checkpoint's model.safetensors.</summary>
    /// <exception cref="CheckpointFormatException">A parameter is missing.</exception>
    /// <exception cref="SafeTensorsFormatException">The file is truncated or corrupt, or a shape differs.</exception>
    public static void ReadWeights(TransformerModel model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        string file = Path.Combine(directory, CheckpointDirectory.ModelFile);
        using var reader = SafeTensorsReader.Open(file);
        foreach (var parameter in model.NamedParameters)
        {
            if (!reader.Contains(parameter.Name))
                throw new CheckpointFormatException(file, $"has no tensor '{parameter.Name}' (a parameter of the model in config.json)");
            reader.ReadInto(parameter.Name, model.Backend, parameter.Value);
        }
    }

    /// <summary>Parses <paramref name="file"/> of the checkpoint folder with <paramref name="parse"/>; every problem
    /// becomes a <see cref="CheckpointFormatException"/> naming the file.</summary>
    public static T ReadJson<T>(string directory, string file, Func<string, T> parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        string path = Path.Combine(directory, file);
        try
        {
            return parse(File.ReadAllText(path));
        }
        catch (ArgumentException e)
        {
            throw new CheckpointFormatException(path, e.Message, e);
        }
        catch (IOException e)
        {
            throw new CheckpointFormatException(path, $"cannot read: {e.Message}", e);
        }
    }
}
