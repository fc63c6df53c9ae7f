using System.Text.Json;
using DeepScaleLM.Layers;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Generation;
using DeepScaleLM.Training.Gradients;
using static DeepScaleLM.Tests.CliTests;

namespace DeepScaleLM.Tests;

/// <summary><c>dslm eval</c>, <c>dslm generate</c> and <c>dslm grad</c> end to end through <c>CliApp.Run</c>, on
/// checkpoints of tiny models trained a few steps on the Brown excerpt.</summary>
public sealed class CliEvalGenerateGradTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly CpuBackend _backend = new(1);
    private readonly string _corpus;

    public CliEvalGenerateGradTests()
    {
        _corpus = _folder.File("brown.tokens");
        TokenFile.Write(_corpus, 256, ByteTokenizer.Instance.Encode(BrownCorpus.Excerpt()));
    }

    public void Dispose()
    {
        _backend.Dispose();
        _folder.Dispose();
    }

    /// <summary>TrainerTests' tiny model (2 layers, d = 16, 16 positions, dropout 0.1) with GeLU.</summary>
    private static ModelConfig Tiny(ModelKind kind = ModelKind.Decoder) => TrainerTests.Tiny(kind) with { Activation = FeedForwardActivation.Gelu };

    /// <summary>A checkpoint of <paramref name="config"/> after 3 training steps (so the weights are not the init's).</summary>
    private string Checkpoint(ModelConfig config, string name)
    {
        string directory = _folder.File(name);
        using var data = TokenFile.Open(_corpus);
        using var trainer = Trainer.Create(_backend, config, new TrainingOptions { Steps = 3, BatchSize = 2, WarmupSteps = 1, LearningRate = 1e-2, Seed = 4 },
            data, TokenizerSpec.Byte);
        for (int i = 0; i < 3; i++) trainer.TrainStep();
        trainer.SaveCheckpoint(directory);
        return directory;
    }

    private static JsonElement ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.Clone();
    }

    [Fact]
    public void EvalScoresEveryNonOverlappingWindowOnceAsAFloat64ReferenceDoes()
    {
        string checkpoint = Checkpoint(Tiny(), "decoder");
        // 19 windows of 16 + 1 tokens (5 left over): two full batches of 8 and a third padded with 5 empty rows.
        string text = BrownCorpus.Excerpt()[..(19 * 16 + 6)];
        int[] ids = ByteTokenizer.Instance.Encode(text);
        Assert.Equal(19 * 16 + 6, ids.Length);
        string textPath = _folder.File("eval.txt"), tokensPath = _folder.File("eval.tokens"), json = _folder.File("eval.json");
        File.WriteAllText(textPath, text);
        TokenFile.Write(tokensPath, 256, ids);

        var (code, output, error) = Dslm("eval", "--checkpoint", checkpoint, "--data", textPath, "--batch", "8", "--threads", "1", "--json", json);
        Assert.True(code == 0, error);
        Assert.Contains("bits/byte", output);
        var result = ReadJson(json);

        // Reference: each window alone through a batch-1 model, -log softmax(logits)[target] summed in float64.
        double nats = 0;
        using (var model = ModelCheckpoint.Load(_backend, checkpoint, batchSize: 1))
        {
            var logits = new float[256];
            var ignored = Enumerable.Repeat(-100, 16).ToArray();
            for (int w = 0; w < 19; w++)
            {
                model.Forward(ids.AsSpan(w * 16, 16), ignored, training: false);
                for (int p = 0; p < 16; p++)
                {
                    model.LogitsAt(p, logits);
                    double max = logits.Max(), sum = logits.Sum(l => Math.Exp(l - max));
                    nats += max + Math.Log(sum) - logits[ids[w * 16 + p + 1]];
                }
            }
        }
        Assert.Equal(19 * 16, result.GetProperty("target_tokens").GetInt64());
        Assert.Equal(19 * 16, result.GetProperty("bytes").GetInt64());
        Assert.Equal(19, result.GetProperty("windows").GetInt64());
        Assert.Equal(3, result.GetProperty("batches").GetInt32());
        double mean = nats / (19 * 16);
        Assert.Equal(mean, result.GetProperty("loss").GetDouble(), 1e-5 * mean);
        Assert.Equal(Math.Exp(mean), result.GetProperty("perplexity").GetDouble(), 1e-4 * Math.Exp(mean));
        Assert.Equal(mean / Math.Log(2), result.GetProperty("bits_per_byte").GetDouble(), 1e-5 * mean);

        // The same text as a token file gives the same numbers; --batches 1 scores the first 8 windows only.
        Assert.Equal(0, Dslm("eval", "--checkpoint", checkpoint, "--data", tokensPath, "--threads", "1", "--json", json).Code);
        Assert.Equal(result.GetProperty("loss").GetDouble(), ReadJson(json).GetProperty("loss").GetDouble());
        Assert.Equal(0, Dslm("eval", "--checkpoint", checkpoint, "--data", tokensPath, "--batches", "1", "--json", json).Code);
        Assert.Equal(8 * 16, ReadJson(json).GetProperty("target_tokens").GetInt64());
    }

    [Fact]
    public void EvalOfAMaskedLmScoresTheMaskedPositionsOfTrainingsBatchDraws()
    {
        string checkpoint = Checkpoint(Tiny(ModelKind.Encoder), "encoder");
        string json = _folder.File("encoder.json");
        var (code, _, error) = Dslm("eval", "--checkpoint", checkpoint, "--data", _corpus, "--batches", "3", "--seed", "5", "--json", json);
        Assert.True(code == 0, error);
        var result = ReadJson(json);
        // The targets are the masked positions of TrainingBatches draws 0..2 over the whole file (mask fraction 0.15,
        // training's default, from training.json).
        using var data = TokenFile.Open(_corpus);
        var batches = new TrainingBatches(data, new TokenRange(0, data.Count), Tiny(ModelKind.Encoder), 8, 16, 0.15, 5);
        long masked = 0;
        for (int draw = 0; draw < 3; draw++)
        {
            batches.Draw(draw);
            masked += batches.Targets.Count(t => t != -100);
        }
        Assert.Equal(masked, result.GetProperty("target_tokens").GetInt64());
        Assert.Equal(24, result.GetProperty("windows").GetInt64());
        Assert.Equal("encoder", result.GetProperty("kind").GetString());
        // Deterministic: a second run gives the same loss bit for bit.
        double loss = result.GetProperty("loss").GetDouble();
        Assert.Equal(0, Dslm("eval", "--checkpoint", checkpoint, "--data", _corpus, "--batches", "3", "--seed", "5", "--json", json).Code);
        Assert.Equal(loss, ReadJson(json).GetProperty("loss").GetDouble());
    }

    [Fact]
    public void GenerateContinuesThePromptAsTheTextGeneratorDoes()
    {
        string checkpoint = Checkpoint(Tiny(), "generate");
        var (code, output, error) = Dslm("generate", "--checkpoint", checkpoint, "--prompt", "The jury", "--tokens", "24", "--temperature", "0", "--threads", "1");
        Assert.True(code == 0, error);
        using var model = ModelCheckpoint.Load(_backend, checkpoint, batchSize: 1);
        var expected = TextGenerator.Generate(model, ByteTokenizer.Instance.Encode("The jury"), 24, new TokenSampler(256, 0f, 0, 0));
        Assert.Equal(ByteTokenizer.Instance.Decode(expected) + Environment.NewLine, output);
        Assert.StartsWith("The jury", output);

        // Sampling with a seed repeats; another seed gives another text.
        string[] sampled = ["--checkpoint", checkpoint, "--tokens", "40", "--temperature", "1", "--top-k", "50"];
        var first = Dslm(["generate", .. sampled, "--seed", "3"]).Output;
        Assert.Equal(first, Dslm(["generate", .. sampled, "--seed", "3"]).Output);
        Assert.NotEqual(first, Dslm(["generate", .. sampled, "--seed", "4"]).Output);
    }

    [Fact]
    public void GradDumpsTheModelsGradientWhichMatchesFiniteDifferences()
    {
        string checkpoint = Checkpoint(Tiny(), "grad");
        var config = ModelCheckpoint.ReadConfig(checkpoint);
        var ids = ByteTokenizer.Instance.Encode(BrownCorpus.Excerpt()[..(2 * 12 + 1)]);
        int[] tokens = [.. ids[..12], .. ids[12..24]];
        int[] targets = [.. ids[1..13], .. ids[13..25]];
        targets[3] = -100;
        var batch = new GradientBatch(2, 12, tokens, targets, []);
        string batchPath = _folder.File("batch.safetensors"), dump = _folder.File("grad.safetensors");
        batch.Write(batchPath);

        var (code, output, error) = Dslm("grad", "--checkpoint", checkpoint, "--tokens", batchPath, "--out", dump, "--threads", "1");
        Assert.True(code == 0, error);
        Assert.Contains("23 targets", output);

        using var model = ModelCheckpoint.Load(_backend, checkpoint, 2, 12);
        float loss = model.Forward(tokens, targets, training: false);
        model.Backward();
        using var reader = SafeTensorsReader.Open(dump);
        using var weights = SafeTensorsReader.Open(Path.Combine(checkpoint, CheckpointDirectory.ModelFile));
        Assert.Equal([.. weights.Entries.Select(e => e.Name), GradientDump.LossName], reader.Entries.Select(e => e.Name));
        Assert.Empty(reader.Get(GradientDump.LossName).Shape);
        Assert.Equal(loss, reader.ReadFloat32(GradientDump.LossName)[0]);
        Assert.Equal("23", reader.Metadata["target_count"]);
        foreach (var parameter in model.NamedParameters)
        {
            Assert.Equal(weights.Get(parameter.Name).Shape, reader.Get(parameter.Name).Shape);
            Assert.Equal(parameter.Gradient.AsSpan<float>().ToArray(), reader.ReadFloat32(parameter.Name));
        }

        // Central differences of the fp32 loss at h = 1e-2 (rounding ~1e-5 in the quotient, h^2 terms ~1e-4 relative,
        // as in LayersGradientTests): two entries of each of five parameters.
        var values = model.Parameters.AsSpan<float>();
        var random = new Random(21);
        foreach (var parameter in model.NamedParameters.Where((_, i) => i % 4 == 0).Take(5))
        {
            var dumped = reader.ReadFloat32(parameter.Name);
            long first = parameter.Value.Offset - model.Parameters.Offset;
            for (int sample = 0; sample < 2; sample++)
            {
                int element = random.Next(dumped.Length);
                int index = (int)first + element;
                float original = values[index];
                values[index] = original + 1e-2f;
                double plus = model.Forward(tokens, targets, training: false);
                values[index] = original - 1e-2f;
                double minus = model.Forward(tokens, targets, training: false);
                values[index] = original;
                double numeric = (plus - minus) / 2e-2;
                Assert.True(Math.Abs(numeric - dumped[element]) <= 2e-2 * Math.Abs(numeric) + 3e-4,
                    $"{parameter.Name}[{element}]: dumped {dumped[element]:G6}, finite difference {numeric:G6}");
            }
        }
    }

    [Fact]
    public void GradOfAnEncoderDecoderReadsTheSourceTokensAndNeedsThem()
    {
        string checkpoint = Checkpoint(Tiny(ModelKind.EncoderDecoder), "pair");
        int[] Ids(int seed) => Support.TestData.Integers(seed, 2 * 8, 256);
        string withSource = _folder.File("pair.safetensors"), withoutSource = _folder.File("single.safetensors"), dump = _folder.File("pair-grad.safetensors");
        new GradientBatch(2, 8, Ids(1), Ids(2), Ids(3)).Write(withSource);
        new GradientBatch(2, 8, Ids(1), Ids(2), []).Write(withoutSource);
        var (code, _, error) = Dslm("grad", "--checkpoint", checkpoint, "--tokens", withSource, "--out", dump);
        Assert.True(code == 0, error);
        using (var model = ModelCheckpoint.Load(_backend, checkpoint, 2, 8))
        using (var reader = SafeTensorsReader.Open(dump))
            Assert.Equal(model.Forward(Ids(1), Ids(2), Ids(3), training: false), reader.ReadFloat32(GradientDump.LossName)[0], 1e-6f);

        var (missingCode, _, missingError) = Dslm("grad", "--checkpoint", checkpoint, "--tokens", withoutSource, "--out", dump);
        Assert.Equal(2, missingCode);
        Assert.Contains("source_tokens", missingError);
    }

    [Fact]
    public void BadInputIsANamedErrorWithTheRightExitCode()
    {
        string checkpoint = Checkpoint(Tiny(), "errors");
        string encoder = Checkpoint(Tiny(ModelKind.Encoder), "errors-encoder");
        string missing = _folder.File("nowhere");
        string floatBatch = _folder.File("float.safetensors");
        using (var stream = File.Create(floatBatch))
        {
            var writer = new SafeTensorsWriter(stream, [("tokens", SafeTensorsDType.F32, [1, 2]), ("targets", SafeTensorsDType.I32, [1, 2])]);
            writer.WriteTensor<float>([1f, 2f]);
            writer.WriteTensor<int>([1, 2]);
            writer.Complete();
        }
        string longBatch = _folder.File("long.safetensors");
        new GradientBatch(1, 17, new int[17], new int[17], []).Write(longBatch);
        string outOfVocabulary = _folder.File("vocabulary.safetensors");
        new GradientBatch(1, 2, [1, 300], [1, 2], []).Write(outOfVocabulary);
        string dump = _folder.File("out.safetensors");

        AssertFails(2, "no checkpoint at", "eval", "--checkpoint", missing, "--data", _corpus);
        AssertFails(2, "--checkpoint DIR is required", "generate");
        AssertFails(2, "--data PATH is required", "eval", "--checkpoint", checkpoint);
        AssertFails(2, "--batch must be at least 1", "eval", "--checkpoint", checkpoint, "--data", _corpus, "--batch", "0");
        AssertFails(2, "tokens must lie in [1, sequence_length = 16]", "eval", "--checkpoint", checkpoint, "--data", _corpus, "--tokens", "17");
        AssertFails(2, "differs from the tokenizer the checkpoint was trained with", "eval", "--checkpoint", checkpoint, "--data", _corpus, "--tokenizer", "cl100k");
        AssertFails(2, "does not exist", "eval", "--checkpoint", checkpoint, "--data", missing);
        AssertFails(2, "generate needs a decoder model", "generate", "--checkpoint", encoder);
        AssertFails(2, "top-k must be 0 (all tokens) or 1..256", "generate", "--checkpoint", checkpoint, "--top-k", "300");
        AssertFails(2, "--prompt encodes to no tokens", "generate", "--checkpoint", checkpoint, "--prompt", "");
        AssertFails(2, "--out PATH is required", "grad", "--checkpoint", checkpoint, "--tokens", longBatch);
        AssertFails(2, "tensor 'tokens': expected dtype I32 but found F32", "grad", "--checkpoint", checkpoint, "--tokens", floatBatch, "--out", dump);
        AssertFails(2, "tokens must lie in [1, sequence_length = 16] (got 17)", "grad", "--checkpoint", checkpoint, "--tokens", longBatch, "--out", dump);
        AssertFails(2, "'tokens'[0, 1] = 300 is outside [0, 256)", "grad", "--checkpoint", checkpoint, "--tokens", outOfVocabulary, "--out", dump);
        Assert.False(File.Exists(dump));

        // A truncated model.safetensors names the file.
        string weights = Path.Combine(checkpoint, CheckpointDirectory.ModelFile);
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..^10]);
        var (code, _, error) = Dslm("generate", "--checkpoint", checkpoint);
        Assert.Equal(2, code);
        Assert.Contains("model.safetensors", error);
    }

    /// <summary>Asserts that <paramref name="args"/> exit with <paramref name="code"/> and an error containing <paramref name="message"/>.</summary>
    private static void AssertFails(int code, string message, params string[] args)
    {
        var (actual, _, error) = Dslm(args);
        Assert.True(actual == code && error.Contains(message, StringComparison.Ordinal),
            $"dslm {string.Join(' ', args)}: expected exit {code} with '{message}', got exit {actual}: {error}");
    }
}
