using System.Globalization;
using DeepScaleLM.Layers;
using DeepScaleLM.Training.Checkpoints;

namespace DeepScaleLM.Training.Gradients;

/// <summary>
/// The loss and every parameter gradient of a model for one <see cref="GradientBatch"/>, written as safetensors for
/// cross-framework verification (docs/gradient-dump.md): each gradient under its parameter's name in
/// model.safetensors (same shape, F32), and the loss as the F32 scalar tensor <c>loss</c> (shape []).
/// </summary>
public static class GradientDump
{
    /// <summary>The tensor name of the loss.</summary>
    public const string LossName = "loss";

    /// <summary>
    /// Runs <paramref name="model"/> forward on <paramref name="batch"/> with dropout off and backward from the mean
    /// loss (loss scale 1), leaving the gradients in the model's <see cref="NamedParameter.Gradient"/> tensors.
    /// </summary>
    /// <returns>The mean cross-entropy over the targets that are not -100, in nats.</returns>
    /// <exception cref="ArgumentException">The batch's shape is not the model's, or it does not fit the model
    /// (<see cref="GradientBatch.Validate"/>).</exception>
    public static float Compute(TransformerModel model, GradientBatch batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.BatchSize != model.BatchSize || batch.Tokens != model.Tokens)
            throw new ArgumentException($"the batch is [{batch.BatchSize}, {batch.Tokens}], the model was built for [{model.BatchSize}, {model.Tokens}]", nameof(batch));
        batch.Validate(model.Config);
        float loss = model.Forward(batch.TokenIds, batch.Targets, batch.SourceTokens, training: false);
        model.Backward();
        return loss;
    }

    /// <summary>Writes <paramref name="loss"/> and the model's current gradients (from <see cref="Compute"/> on
    /// <paramref name="batch"/>) to <paramref name="path"/> atomically. The metadata holds <c>format</c> = <c>pt</c>,
    /// <c>loss</c> (the same value as round-trip decimal text) and <c>target_count</c> (the targets the mean ran over).</summary>
    public static void Write(string path, TransformerModel model, GradientBatch batch, float loss)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        var declarations = model.NamedParameters.Select(p => (p.Name, SafeTensorsDType.F32, p.Gradient.Shape.Dimensions.ToArray())).ToList();
        declarations.Add((LossName, SafeTensorsDType.F32, []));
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [LossName] = loss.ToString("R", CultureInfo.InvariantCulture),
            ["target_count"] = batch.TargetCount.ToString(CultureInfo.InvariantCulture),
        };
        AtomicFile.Write(path, stream =>
        {
            var writer = new SafeTensorsWriter(stream, declarations, metadata);
            foreach (var parameter in model.NamedParameters) writer.WriteTensor(model.Backend, parameter.Gradient);
            writer.WriteTensor<float>([loss]);
            writer.Complete();
        });
    }
}
