using DeepScaleLM.Layers;
using DeepScaleLM.Training.Checkpoints;

namespace DeepScaleLM.Training.Gradients;

/// <summary>
/// One batch for a gradient dump, as a safetensors file another framework can write (docs/gradient-dump.md):
/// int32 tensors <c>tokens</c> [B, T] (model input ids), <c>targets</c> [B, T] (ids to predict, -100 ignored) and,
/// for an encoder-decoder model only, <c>source_tokens</c> [B, T] (encoder input ids). Nothing else may be in it.
/// </summary>
public sealed class GradientBatch
{
    /// <summary>The tensor name of the model input ids.</summary>
    public const string TokensName = "tokens";
    /// <summary>The tensor name of the targets.</summary>
    public const string TargetsName = "targets";
    /// <summary>The tensor name of the encoder input ids (encoder-decoder models).</summary>
    public const string SourceTokensName = "source_tokens";

    /// <summary>A batch of <paramref name="batchSize"/> x <paramref name="tokens"/> positions.</summary>
    /// <param name="batchSize">B, at least 1.</param>
    /// <param name="tokens">T, at least 1.</param>
    /// <param name="tokenIds">[B * T] row-major input ids.</param>
    /// <param name="targets">[B * T] targets, -100 for an ignored position.</param>
    /// <param name="sourceTokens">[B * T] encoder input ids, or empty for a one-stack model.</param>
    /// <exception cref="ArgumentException">A size is below 1 or an array is not B * T long.</exception>
    public GradientBatch(int batchSize, int tokens, int[] tokenIds, int[] targets, int[] sourceTokens)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(sourceTokens);
        if (batchSize < 1 || tokens < 1) throw new ArgumentException($"a batch needs B >= 1 and T >= 1 (got [{batchSize}, {tokens}])", nameof(batchSize));
        long rows = (long)batchSize * tokens;
        if (tokenIds.Length != rows) throw new ArgumentException($"{TokensName} holds {tokenIds.Length} ids, [{batchSize}, {tokens}] needs {rows}", nameof(tokenIds));
        if (targets.Length != rows) throw new ArgumentException($"{TargetsName} holds {targets.Length} ids, [{batchSize}, {tokens}] needs {rows}", nameof(targets));
        if (sourceTokens.Length != 0 && sourceTokens.Length != rows)
            throw new ArgumentException($"{SourceTokensName} holds {sourceTokens.Length} ids, [{batchSize}, {tokens}] needs {rows}", nameof(sourceTokens));
        BatchSize = batchSize;
        Tokens = tokens;
        TokenIds = tokenIds;
        Targets = targets;
        SourceTokens = sourceTokens;
    }

    /// <summary>B: sequences.</summary>
    public int BatchSize { get; }
    /// <summary>T: positions per sequence.</summary>
    public int Tokens { get; }
    /// <summary>[B * T] model input ids.</summary>
    public int[] TokenIds { get; }
    /// <summary>[B * T] targets (-100: ignored).</summary>
    public int[] Targets { get; }
    /// <summary>[B * T] encoder input ids, or empty.</summary>
    public int[] SourceTokens { get; }
    /// <summary>Targets that are not -100: the count the mean loss divides by.</summary>
    public int TargetCount => Targets.Count(target => target != -100);

    /// <summary>Checks that the batch fits <paramref name="config"/>: source tokens exactly for an encoder-decoder
    /// model, every id in [0, vocabulary), every target -100 or in [0, vocabulary).</summary>
    /// <exception cref="ArgumentException">The first problem, naming the tensor and the position [b, t].</exception>
    public void Validate(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        bool pair = config.Kind == ModelKind.EncoderDecoder;
        if (pair && SourceTokens.Length == 0)
            throw new ArgumentException($"the model is an encoder_decoder: the batch needs '{SourceTokensName}' [B, T] (the encoder input)");
        if (!pair && SourceTokens.Length != 0)
            throw new ArgumentException($"the model is a {config.Kind.ToString().ToLowerInvariant()}: '{SourceTokensName}' is only for encoder_decoder models");
        CheckIds(TokensName, TokenIds, config.Vocabulary, allowIgnored: false);
        CheckIds(TargetsName, Targets, config.Vocabulary, allowIgnored: true);
        CheckIds(SourceTokensName, SourceTokens, config.Vocabulary, allowIgnored: false);
    }

    private void CheckIds(string name, int[] ids, int vocabulary, bool allowIgnored)
    {
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)vocabulary && !(allowIgnored && ids[i] == -100))
                throw new ArgumentException($"'{name}'[{i / Tokens}, {i % Tokens}] = {ids[i]} is outside [0, {vocabulary}){(allowIgnored ? " and not -100" : "")}");
    }

    /// <summary>Reads a batch file.</summary>
    /// <exception cref="SafeTensorsFormatException">The file is missing a tensor, is corrupt, or a tensor is not int32
    /// [B, T] with the shape of <c>tokens</c>, or the file holds another tensor.</exception>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    public static GradientBatch Read(string path)
    {
        using var reader = SafeTensorsReader.Open(path);
        foreach (var entry in reader.Entries)
            if (entry.Name is not (TokensName or TargetsName or SourceTokensName))
                throw new SafeTensorsFormatException(path, $"unexpected tensor: a batch file holds only '{TokensName}', '{TargetsName}' and (encoder-decoder) '{SourceTokensName}'", entry.Name);
        var shape = reader.Get(TokensName).Shape;
        if (shape.Length != 2 || shape[0] < 1 || shape[1] < 1)
            throw new SafeTensorsFormatException(path, $"shape {reader.Get(TokensName).ShapeText} is not [B, T] with B, T >= 1", TokensName);
        int[] ReadIds(string name)
        {
            var entry = reader.Get(name);
            if (!entry.Shape.AsSpan().SequenceEqual(shape))
                throw new SafeTensorsFormatException(path, $"shape {entry.ShapeText} differs from '{TokensName}' [{shape[0]}, {shape[1]}]", name);
            return reader.ReadInt32(name);
        }
        return new GradientBatch(shape[0], shape[1], ReadIds(TokensName), ReadIds(TargetsName),
            reader.Contains(SourceTokensName) ? ReadIds(SourceTokensName) : []);
    }

    /// <summary>Writes this batch as a batch file, atomically.</summary>
    public void Write(string path)
    {
        var tensors = new List<(string, SafeTensorsDType, int[])> { (TokensName, SafeTensorsDType.I32, [BatchSize, Tokens]), (TargetsName, SafeTensorsDType.I32, [BatchSize, Tokens]) };
        if (SourceTokens.Length != 0) tensors.Add((SourceTokensName, SafeTensorsDType.I32, [BatchSize, Tokens]));
        AtomicFile.Write(path, stream =>
        {
            var writer = new SafeTensorsWriter(stream, tensors);
            writer.WriteTensor<int>(TokenIds);
            writer.WriteTensor<int>(Targets);
            if (SourceTokens.Length != 0) writer.WriteTensor<int>(SourceTokens);
            writer.Complete();
        });
    }
}
