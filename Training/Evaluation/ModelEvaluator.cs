using DeepScaleLM.Layers;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Training.Evaluation;

/// <summary>What <see cref="ModelEvaluator.Evaluate"/> measured.</summary>
/// <param name="Metrics">Loss, perplexity, bits per token and bits per byte.</param>
/// <param name="Batches">Forward passes run.</param>
/// <param name="Windows">Sequences scored (the padding rows of a last partial batch not counted).</param>
public sealed record CorpusEvaluation(EvaluationMetrics Metrics, int Batches, long Windows);

/// <summary>
/// Evaluates a trained model on a whole token file, deterministically, without dropout (docs/training.md,
/// "Evaluation and generation of a checkpoint"):
/// <list type="bullet">
/// <item>Decoder: every non-overlapping window in file order. Window w holds tokens [wT, wT + T]; its inputs are
/// the first T and its targets the last T, so every token after the first is predicted exactly once, from the
/// context since its window began. The last batch is padded with rows whose targets are all -100.</item>
/// <item>Encoder (masked LM) and encoder-decoder: the batches training draws (<see cref="TrainingBatches"/> over the
/// whole file, draws 0, 1, 2, ... with the given seed and mask fraction): masking and source/target pairs exactly as
/// in training, as many windows as would tile the file (T ids per encoder window, 2T + 1 per encoder-decoder one).</item>
/// </list>
/// </summary>
public static class ModelEvaluator
{
    /// <summary>Scores <paramref name="data"/> with <paramref name="model"/>.</summary>
    /// <param name="model">The model; its batch size and token count set the windows.</param>
    /// <param name="data">Token file written with <paramref name="tokenizer"/>.</param>
    /// <param name="tokenizer">Decodes targets to count their bytes (bits per byte).</param>
    /// <param name="maxBatches">Stop after this many batches; null: the whole file.</param>
    /// <param name="maskFraction">Masked LM only: the fraction of positions masked.</param>
    /// <param name="seed">Encoder and encoder-decoder only: the seed of the drawn windows and masks.</param>
    /// <exception cref="ArgumentException">The file's vocabulary is not the tokenizer's or does not fit the model, the
    /// file is shorter than one window, or <paramref name="maxBatches"/> is below 1.</exception>
    public static CorpusEvaluation Evaluate(TransformerModel model, TokenFileReader data, ITokenizer tokenizer, int? maxBatches = null,
        double maskFraction = 0.15, ulong seed = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (maxBatches is < 1) throw new ArgumentException($"the batch limit must be at least 1 (got {maxBatches})", nameof(maxBatches));
        if (data.VocabularySize != tokenizer.VocabularySize)
            throw new ArgumentException($"'{data.FilePath}' has a vocabulary of {data.VocabularySize}, the tokenizer one of {tokenizer.VocabularySize}: it was written with another tokenizer", nameof(data));
        var totals = new EvaluationTotals(tokenizer);
        return model.Config.Kind == ModelKind.Decoder
            ? Sequential(model, data, totals, maxBatches)
            : Drawn(model, data, totals, maxBatches, maskFraction, seed);
    }

    private static CorpusEvaluation Sequential(TransformerModel model, TokenFileReader data, EvaluationTotals totals, int? maxBatches)
    {
        if (data.VocabularySize > model.Config.Vocabulary)
            throw new ArgumentException($"'{data.FilePath}' has a vocabulary of {data.VocabularySize}, more than the model's {model.Config.Vocabulary}", nameof(data));
        int batchSize = model.BatchSize, tokens = model.Tokens;
        long windows = (data.Count - 1) / tokens;
        if (windows < 1)
            throw new ArgumentException($"'{data.FilePath}' holds {data.Count} tokens, fewer than one window of {tokens + 1} (context {tokens} + 1 target)", nameof(data));
        int batches = (int)Math.Min((windows + batchSize - 1) / batchSize, maxBatches ?? int.MaxValue);
        var inputs = new int[batchSize * tokens];
        var targets = new int[batchSize * tokens];
        var window = new int[tokens + 1];
        long scored = 0;
        for (int b = 0; b < batches; b++)
        {
            for (int row = 0; row < batchSize; row++)
            {
                long w = (long)b * batchSize + row;
                var rowInputs = inputs.AsSpan(row * tokens, tokens);
                var rowTargets = targets.AsSpan(row * tokens, tokens);
                if (w >= windows)
                {
                    rowInputs.Clear();
                    rowTargets.Fill(-100);
                    continue;
                }
                data.Read(w * tokens, window);
                window.AsSpan(0, tokens).CopyTo(rowInputs);
                window.AsSpan(1, tokens).CopyTo(rowTargets);
                scored++;
            }
            totals.Add(model.Forward(inputs, targets, training: false), targets);
        }
        return new CorpusEvaluation(totals.Metrics(), batches, scored);
    }

    private static CorpusEvaluation Drawn(TransformerModel model, TokenFileReader data, EvaluationTotals totals, int? maxBatches, double maskFraction, ulong seed)
    {
        var batches = new TrainingBatches(data, new TokenRange(0, data.Count), model.Config, model.BatchSize, model.Tokens, maskFraction, seed);
        long windowLength = model.Config.Kind == ModelKind.Encoder ? model.Tokens : 2L * model.Tokens + 1;
        long tiling = Math.Max(data.Count / windowLength, 1);
        int count = (int)Math.Min((tiling + model.BatchSize - 1) / model.BatchSize, maxBatches ?? int.MaxValue);
        for (int draw = 0; draw < count; draw++)
        {
            batches.Draw(draw);
            totals.Add(model.Forward(batches.Inputs, batches.Targets, batches.SourceTokens, training: false), batches.Targets);
        }
        return new CorpusEvaluation(totals.Metrics(), count, (long)count * model.BatchSize);
    }
}
