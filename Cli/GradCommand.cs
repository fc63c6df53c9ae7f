using System.CommandLine;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Gradients;

namespace DeepScaleLM.Cli;

/// <summary><c>dslm grad</c>: the loss and every parameter gradient of a checkpoint's model for one batch, as
/// safetensors with model.safetensors' names, for comparison with another framework (docs/gradient-dump.md).</summary>
internal static class GradCommand
{
    public static Command Create(TextWriter output)
    {
        var checkpoint = CheckpointInput.CheckpointOption();
        var tokens = new Option<string?>("--tokens")
        {
            Description = "the batch: a safetensors file with int32 'tokens' [B, T], 'targets' [B, T] (-100 ignored) and, for an " +
                "encoder-decoder model, 'source_tokens' [B, T] (docs/gradient-dump.md); required",
        };
        var outputPath = new Option<string?>("--out") { Description = "the safetensors file to write: every gradient under its parameter's name, and 'loss' (F32, shape []); required" };
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("grad",
            "Run a checkpoint's model forward and backward on one batch (dropout off, mean cross-entropy over the targets that are not -100) " +
            "and write the loss and every parameter gradient as safetensors with the names of model.safetensors.")
        {
            checkpoint, tokens, outputPath, device, threads,
        };
        command.SetAction(parse =>
        {
            string folder = CheckpointInput.Folder(parse, checkpoint);
            string batchPath = parse.GetValue(tokens) is { Length: > 0 } given ? given : throw new ArgumentException("--tokens FILE (the batch) is required");
            string destination = parse.GetValue(outputPath) is { Length: > 0 } chosen ? chosen : throw new ArgumentException("--out PATH is required");
            var batch = GradientBatch.Read(batchPath);
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var model = ModelCheckpoint.Load(backend, folder, batch.BatchSize, batch.Tokens);
            float loss = GradientDump.Compute(model, batch);
            GradientDump.Write(destination, model, batch, loss);
            output.WriteLine($"loss {loss:R} nats (mean over {batch.TargetCount} targets of a [{batch.BatchSize}, {batch.Tokens}] batch)");
            output.WriteLine($"wrote {model.NamedParameters.Count} gradients ({model.ParameterCount} values) and '{GradientDump.LossName}' to {destination}");
            return 0;
        });
        return command;
    }
}
